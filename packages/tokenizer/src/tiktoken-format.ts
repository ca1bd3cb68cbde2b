/**
 * Meta's `tokenizer.model`: the tiktoken BPE format, one `base64(token bytes) rank` line per mergeable token.
 * The file holds no special tokens and no pattern; Meta's code adds Llama 3's, and so does this reader.
 * @module
 */

import type { TiktokenBPE } from 'js-tiktoken/lite';
import { LLAMA3_SPECIAL_TOKENS } from './special-tokens.js';
import { LLAMA3_SPLIT_PATTERN } from './split-pattern.js';
import { checkVocabulary, type SpecialToken, type Vocabulary } from './vocabulary.js';

/** Base64 char code → 6-bit value, or -1. */
const BASE64_VALUE: Int8Array = (() => {
  const table = new Int8Array(128).fill(-1);
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i;
  return table;
})();

/**
 * Decodes `text[start, end)` as base64 into a byte string, or returns `undefined` when it is not base64.
 * Written out by hand (not `atob`) because it runs 128000 times while loading and this is faster.
 */
function base64ToByteString(text: string, start: number, end: number): string | undefined {
  while (end > start && text.charCodeAt(end - 1) === 61) end--; // '=' padding
  let out = '';
  let acc = 0;
  let bits = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? BASE64_VALUE[code]! : -1;
    if (value < 0) return undefined;
    acc = ((acc << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((acc >> bits) & 0xff);
    }
  }
  return out;
}

/** Parses a decimal integer made only of digits in `text[start, end)`, or returns -1. */
function parseRank(text: string, start: number, end: number): number {
  if (end <= start || end - start > 9) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return -1;
    value = value * 10 + digit;
  }
  return value;
}

/**
 * Reads a tiktoken-format file (Meta's `tokenizer.model`) into a {@link Vocabulary}: its ranks, Llama 3's
 * split pattern, and Llama 3's 256 special tokens numbered from the rank count, as Meta's `tokenizer.py` does.
 * Throws with the line number on any line that is not `base64 rank`, and on repeated tokens or ranks.
 */
export function parseTiktoken(data: string | Uint8Array): Vocabulary {
  const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
  const source = 'tiktoken file';
  const ranks = new Map<string, number>();
  let line = 0;
  for (let pos = 0; pos < text.length; ) {
    line++;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const next = end + 1;
    if (end > pos && text.charCodeAt(end - 1) === 13) end--; // tolerate CRLF
    if (end > pos) {
      const space = text.indexOf(' ', pos);
      const bytes = space > pos && space < end ? base64ToByteString(text, pos, space) : undefined;
      const rank = bytes === undefined ? -1 : parseRank(text, space + 1, end);
      if (bytes === undefined || bytes.length === 0 || rank < 0) {
        const shown = JSON.stringify(text.slice(pos, Math.min(end, pos + 60)));
        const hint =
          line === 1 ? ' (a SentencePiece model, as in Llama 2? Llama 3 uses this text format)' : '';
        throw new Error(`${source}: line ${line} is not "<base64 bytes> <rank>": ${shown}${hint}`);
      }
      if (ranks.has(bytes))
        throw new Error(`${source}: line ${line} repeats the token of rank ${ranks.get(bytes)}`);
      ranks.set(bytes, rank);
    }
    pos = next;
  }
  if (ranks.size === 0) throw new Error(`${source}: no tokens (empty file?)`);
  let firstSpecial = 0;
  for (const rank of ranks.values()) if (rank >= firstSpecial) firstSpecial = rank + 1;
  const specialTokens: SpecialToken[] = LLAMA3_SPECIAL_TOKENS.map((name, i) => ({
    name,
    id: firstSpecial + i,
  }));
  // Accept the Llama 3.0 names of the two slots Llama 3.1 named, as aliases.
  specialTokens.push({ name: '<|reserved_special_token_4|>', id: firstSpecial + 8 });
  specialTokens.push({ name: '<|reserved_special_token_5|>', id: firstSpecial + 10 });
  const vocab: Vocabulary = { ranks, specialTokens, pattern: LLAMA3_SPLIT_PATTERN };
  checkVocabulary(vocab, source);
  return vocab;
}

/**
 * The vocabulary in js-tiktoken's own format, to run the very same ranks, pattern and special tokens through
 * `new Tiktoken(...)` from `js-tiktoken/lite`: the baseline this package is checked and benchmarked against.
 * js-tiktoken wants lines of `<ignored> <first rank> <base64 token> <base64 token> ...`, one per run of
 * consecutive ranks.
 */
export function toJsTiktoken(vocab: Vocabulary): TiktokenBPE {
  const byRank = [...vocab.ranks].sort((a, b) => a[1] - b[1]);
  const lines: string[] = [];
  let line: string[] = [];
  let expected = -1;
  for (const [bytes, rank] of byRank) {
    if (rank !== expected) {
      if (line.length > 0) lines.push(line.join(' '));
      line = ['!', String(rank)];
    }
    line.push(btoa(bytes));
    expected = rank + 1;
  }
  lines.push(line.join(' '));
  const special_tokens: Record<string, number> = {};
  for (const { name, id } of vocab.specialTokens) special_tokens[name] = id;
  return { pat_str: vocab.pattern, special_tokens, bpe_ranks: lines.join('\n') };
}
