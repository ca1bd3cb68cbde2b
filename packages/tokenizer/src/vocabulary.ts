/**
 * The data a tokenizer is built from, independent of the file format it came in, and its checks.
 * @module
 */

import { LLAMA31_RENAMES } from './special-tokens.js';

/** One special (control) token: its text and its id. */
export interface SpecialToken {
  /** The token's text, for example `<|eot_id|>`. */
  readonly name: string;
  /** Its id, outside the range of the mergeable ranks. */
  readonly id: number;
}

/**
 * Everything a byte-level BPE tokenizer needs, in memory. Both file formats parse into this, which is why
 * they give identical ids, and it is what a browser builds from fetched bytes.
 */
export interface Vocabulary {
  /**
   * Mergeable tokens: the token's bytes as a byte string (one char per byte, codes 0..255) → its rank, which
   * is also its id. A lower rank merges first.
   */
  readonly ranks: ReadonlyMap<string, number>;
  /**
   * Special tokens. Several names may share an id (aliases); the first entry for an id is the text that
   * decoding prints.
   */
  readonly specialTokens: readonly SpecialToken[];
  /** The split pattern as JavaScript source, compiled with the `u` flag (see `LLAMA3_SPLIT_PATTERN`). */
  readonly pattern: string;
}

/**
 * Throws a descriptive error unless `vocab` can drive byte-level BPE: integer ranks without duplicates, every
 * single byte present (so any text can be encoded), special ids clear of the ranks, a pattern that compiles.
 * `source` names where the data came from, for the message.
 */
export function checkVocabulary(vocab: Vocabulary, source: string): void {
  if (checked.has(vocab)) return;
  // Ranks are dense in practice (0..n-1): mark them in a byte array, which is much faster than a Set.
  const seen = new Uint8Array(vocab.ranks.size + vocab.specialTokens.length + 1);
  const sparse = new Set<number>();
  const isSeen = (id: number): boolean => (id < seen.length ? seen[id] === 1 : sparse.has(id));
  for (const [bytes, rank] of vocab.ranks) {
    if (!Number.isInteger(rank) || rank < 0)
      throw new Error(`${source}: rank ${rank} is not an integer >= 0`);
    if (isSeen(rank)) throw new Error(`${source}: rank ${rank} is given to more than one token`);
    if (bytes.length === 0) throw new Error(`${source}: rank ${rank} has no bytes`);
    if (rank < seen.length) seen[rank] = 1;
    else sparse.add(rank);
  }
  for (let byte = 0; byte < 256; byte++) {
    if (!vocab.ranks.has(String.fromCharCode(byte))) {
      throw new Error(`${source}: no token for the single byte 0x${byte.toString(16).padStart(2, '0')}`);
    }
  }
  const names = new Set<string>();
  for (const { name, id } of vocab.specialTokens) {
    if (!Number.isInteger(id) || id < 0) throw new Error(`${source}: special token ${name} has bad id ${id}`);
    if (isSeen(id)) throw new Error(`${source}: special token ${name} reuses id ${id} of a mergeable token`);
    if (names.has(name)) throw new Error(`${source}: special token ${name} is listed twice`);
    if (name.length === 0) throw new Error(`${source}: special token ${id} has an empty name`);
    names.add(name);
  }
  try {
    new RegExp(vocab.pattern, 'gu');
  } catch (error) {
    throw new Error(`${source}: split pattern does not compile in JavaScript: ${(error as Error).message}`);
  }
  checked.add(vocab);
}

/**
 * Vocabularies that passed {@link checkVocabulary}: parsers check what they build (naming the file in errors)
 * and the tokenizer checks what it is given, and this keeps the second check from costing load time again.
 * Callers must not mutate a vocabulary after building a tokenizer from it (its maps are typed read-only).
 */
const checked = new WeakSet<Vocabulary>();

/**
 * Applies Llama 3.1's names to a Llama 3.0 special-token list: where the list names a slot the old way and
 * lacks the new name, the new name is put first for that id and the old one stays as an alias.
 */
export function withLlama31Names(tokens: readonly SpecialToken[]): SpecialToken[] {
  const out = [...tokens];
  for (const [name, oldName] of LLAMA31_RENAMES) {
    if (out.some((t) => t.name === name)) continue;
    const index = out.findIndex((t) => t.name === oldName);
    if (index >= 0) out.splice(index, 0, { name, id: out[index]!.id });
  }
  return out;
}
