/**
 * Building a {@link Tokenizer} from file contents already in memory: works in browsers and workers as well
 * as Node, because nothing here touches a file system.
 * @module
 */

import { parseHfJson } from './hf-json.js';
import { parseTiktoken } from './tiktoken-format.js';
import { Tokenizer } from './tokenizer.js';

/** A tokenizer from the text or bytes of Meta's `tokenizer.model` (tiktoken format). */
export function tokenizerFromTiktoken(data: string | Uint8Array): Tokenizer {
  return new Tokenizer(parseTiktoken(data));
}

/** A tokenizer from a Hugging Face `tokenizer.json`: its text, its bytes, or the parsed object. */
export function tokenizerFromHfJson(data: string | Uint8Array | object): Tokenizer {
  return new Tokenizer(parseHfJson(data));
}

/**
 * A tokenizer from the contents of either file format, told apart by content: a `tokenizer.json` is a JSON
 * object (its first non-blank char is `{`), which a base64 line of a `tokenizer.model` can never start with.
 */
export function tokenizerFromData(data: string | Uint8Array): Tokenizer {
  return looksLikeJson(data) ? tokenizerFromHfJson(data) : tokenizerFromTiktoken(data);
}

function looksLikeJson(data: string | Uint8Array): boolean {
  const at = (i: number): number => (typeof data === 'string' ? data.charCodeAt(i) : data[i]!);
  let i = 0;
  if (at(0) === 0xfeff)
    i = 1; // BOM in a string
  else if (at(0) === 0xef && at(1) === 0xbb && at(2) === 0xbf) i = 3; // BOM in UTF-8 bytes
  while (i < data.length && (at(i) === 0x20 || at(i) === 0x0a || at(i) === 0x0d || at(i) === 0x09)) i++;
  return at(i) === 0x7b;
}
