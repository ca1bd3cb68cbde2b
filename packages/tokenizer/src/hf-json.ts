/**
 * Hugging Face `tokenizer.json` for byte-level BPE models such as Llama 3.
 *
 * Only the parts that decide ids are read: the vocabulary (whose ids are the BPE ranks, as in every vocabulary
 * converted from tiktoken, Llama 3's included), the added tokens, and the split pattern of the pre-tokenizer.
 * Anything this package would not reproduce exactly (a normalizer, another model type, another pre-tokenizer
 * layout) is refused with an error instead of silently giving different ids.
 * @module
 */

import { byteLevelToByteString } from './byte-level.js';
import { scanHfJson } from './hf-json-scan.js';
import { toJsPattern } from './split-pattern.js';
import { checkVocabulary, type SpecialToken, type Vocabulary, withLlama31Names } from './vocabulary.js';

const SOURCE = 'tokenizer.json';

/** A plain JSON object, for narrowing `unknown`. */
type JsonObject = Record<string, unknown>;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads the split pattern out of a `pre_tokenizer`: one `Split` regex, optionally followed by `ByteLevel`. */
function readPattern(preTokenizer: unknown): string {
  const steps =
    isObject(preTokenizer) && preTokenizer.type === 'Sequence' ? preTokenizer.pretokenizers : [preTokenizer];
  if (!Array.isArray(steps)) throw new Error(`${SOURCE}: pre_tokenizer.pretokenizers is not a list`);
  let pattern: string | undefined;
  for (const step of steps) {
    if (!isObject(step)) throw new Error(`${SOURCE}: a pre_tokenizer step is not an object`);
    if (step.type === 'Split' && pattern === undefined) {
      const regex = isObject(step.pattern) ? step.pattern.Regex : undefined;
      if (typeof regex !== 'string' || step.behavior !== 'Isolated' || step.invert === true) {
        throw new Error(`${SOURCE}: unsupported Split pre-tokenizer (need an Isolated Regex split)`);
      }
      pattern = regex;
    } else if (step.type === 'ByteLevel' && step.use_regex === false && step.add_prefix_space !== true) {
      // Only maps bytes to the byte-level alphabet, which this package undoes on load anyway.
    } else {
      throw new Error(
        `${SOURCE}: unsupported pre-tokenizer step ${JSON.stringify(step.type)} (expected Llama 3's)`,
      );
    }
  }
  if (pattern === undefined) throw new Error(`${SOURCE}: the pre-tokenizer has no Split regex`);
  return toJsPattern(pattern);
}

/** Reads `model.vocab` into byte-string ranks. */
function readRanks(model: JsonObject): Map<string, number> {
  if (!isObject(model.vocab)) throw new Error(`${SOURCE}: model.vocab is missing or not an object`);
  const vocab = model.vocab;
  const ranks = new Map<string, number>();
  // for-in, not Object.entries: no 128000 pair arrays, noticeably faster to load.
  for (const symbol in vocab) {
    const id = vocab[symbol];
    const bytes = byteLevelToByteString(symbol);
    if (bytes === undefined) {
      throw new Error(`${SOURCE}: vocab entry ${JSON.stringify(symbol)} is not in the byte-level alphabet`);
    }
    if (typeof id !== 'number')
      throw new Error(`${SOURCE}: vocab entry ${JSON.stringify(symbol)} has a non-numeric id`);
    if (ranks.has(bytes))
      throw new Error(`${SOURCE}: vocab entry ${JSON.stringify(symbol)} repeats a token's bytes`);
    ranks.set(bytes, id);
  }
  return ranks;
}

/** Reads `added_tokens` as special tokens. */
function readAddedTokens(added: unknown): SpecialToken[] {
  if (added === undefined || added === null) return [];
  if (!Array.isArray(added)) throw new Error(`${SOURCE}: added_tokens is not a list`);
  return added.map((token, i) => {
    if (!isObject(token) || typeof token.content !== 'string' || typeof token.id !== 'number') {
      throw new Error(`${SOURCE}: added_tokens[${i}] needs a string content and a numeric id`);
    }
    return { name: token.content, id: token.id };
  });
}

/**
 * Reads a Hugging Face `tokenizer.json` (text, UTF-8 bytes, or the parsed object) into a {@link Vocabulary}.
 * Throws a message naming the problem for invalid JSON, a non-BPE model, a vocabulary outside the byte-level
 * alphabet, or a normalizer/pre-tokenizer this package does not reproduce.
 */
export function parseHfJson(data: string | Uint8Array | object): Vocabulary {
  let root: unknown = data;
  let ranks: Map<string, number> | undefined;
  if (typeof data === 'string' || data instanceof Uint8Array) {
    const text = typeof data === 'string' ? data : new TextDecoder().decode(data);
    const scanned = scanHfJson(text);
    if (scanned !== undefined) {
      root = scanned.root;
      ranks = scanned.ranks;
    } else {
      try {
        root = JSON.parse(text);
      } catch (error) {
        throw new Error(`${SOURCE}: not valid JSON (${(error as Error).message})`);
      }
    }
  }
  if (!isObject(root)) throw new Error(`${SOURCE}: the top level is not an object`);
  const model = root.model;
  if (!isObject(model)) throw new Error(`${SOURCE}: no "model" object`);
  if (model.type !== undefined && model.type !== 'BPE') {
    throw new Error(`${SOURCE}: model type ${JSON.stringify(model.type)} is not supported (need BPE)`);
  }
  if (root.normalizer !== undefined && root.normalizer !== null) {
    throw new Error(`${SOURCE}: normalizers are not supported (Llama 3 has none)`);
  }
  const vocab: Vocabulary = {
    ranks: ranks ?? readRanks(model),
    specialTokens: withLlama31Names(readAddedTokens(root.added_tokens)),
    pattern: readPattern(root.pre_tokenizer),
  };
  checkVocabulary(vocab, SOURCE);
  return vocab;
}
