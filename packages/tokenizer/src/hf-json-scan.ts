/**
 * A fast path for reading the big parts of a `tokenizer.json` without `JSON.parse`.
 *
 * Llama 3's file is 9 MB: a 128000-entry `vocab` object and a 280000-entry `merges` array, which this package
 * never needs (ranks come from the vocabulary ids). Parsing everything with `JSON.parse` builds both as JS
 * objects and takes most of the load time. Instead the vocabulary is scanned straight into the rank map, the
 * merges are skipped, and only the small rest of the file goes through `JSON.parse`.
 *
 * Safe by construction: `"vocab":` cannot appear inside a JSON string (quotes in strings are escaped), so it
 * is a key; and any surprise (two such keys holding objects, a value that is not an integer, a symbol outside
 * the byte-level alphabet) makes the scan return `undefined`, and the caller parses the whole file the
 * ordinary way, which also produces the proper error message for malformed files.
 * @module
 */

import { byteLevelToByteString } from './byte-level.js';

/** The file's JSON with `model.vocab` emptied and `model.merges` dropped, plus the vocabulary as ranks. */
export interface ScannedHfJson {
  /** `JSON.parse` of everything except the vocabulary and merges. */
  readonly root: unknown;
  /** `model.vocab` as byte strings (see `utf8.ts`) → ids. */
  readonly ranks: Map<string, number>;
}

/**
 * Offset of the value of the only `"key":` in `text` whose value starts with `open`; -1 if there is none or
 * more than one. (The vocabulary itself has keys such as `"vocab"`, but their values are numbers.)
 */
function findSection(text: string, key: string, open: string): number {
  const pattern = new RegExp(`"${key}"\\s*:\\s*`, 'g');
  let found = -1;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const at = match.index + match[0].length;
    if (text[at] !== open) continue;
    if (found >= 0) return -1;
    found = at;
  }
  return found;
}

function isBlank(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** Offset just past the JSON string that starts at `start` (a quote), or -1. */
function stringEnd(text: string, start: number): number {
  let at = start + 1;
  for (;;) {
    const quote = text.indexOf('"', at);
    if (quote < 0) return -1;
    let backslashes = 0;
    while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    at = quote + 1;
  }
}

/** Offset just past the array or object that starts at `start`, skipping strings; -1 if unbalanced. */
function valueEnd(text: string, start: number): number {
  let depth = 0;
  for (let at = start; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === 0x22) {
      at = stringEnd(text, at) - 1;
      if (at < 0) return -1;
    } else if (code === 0x5b || code === 0x7b) {
      depth++;
    } else if (code === 0x5d || code === 0x7d) {
      if (--depth === 0) return at + 1;
    }
  }
  return -1;
}

/** Reads the vocab object at `start` into ranks; returns the offset past it, or -1 on anything unexpected. */
function readVocab(text: string, start: number, ranks: Map<string, number>): number {
  let at = start + 1;
  for (;;) {
    while (isBlank(text.charCodeAt(at))) at++;
    if (text.charCodeAt(at) === 0x7d && ranks.size === 0) return at + 1; // empty object
    if (text.charCodeAt(at) !== 0x22) return -1;
    const end = stringEnd(text, at);
    if (end < 0) return -1;
    let symbol = text.slice(at + 1, end - 1);
    if (symbol.includes('\\')) symbol = JSON.parse(text.slice(at, end)) as string;
    at = end;
    while (isBlank(text.charCodeAt(at))) at++;
    if (text.charCodeAt(at) !== 0x3a) return -1; // ':'
    at++;
    while (isBlank(text.charCodeAt(at))) at++;
    let id = 0;
    const digits = at;
    for (let code = text.charCodeAt(at); code >= 0x30 && code <= 0x39; code = text.charCodeAt(++at)) {
      id = id * 10 + code - 0x30;
    }
    if (at === digits || at - digits > 9) return -1;
    const bytes = byteLevelToByteString(symbol);
    if (bytes === undefined || ranks.has(bytes)) return -1;
    ranks.set(bytes, id);
    while (isBlank(text.charCodeAt(at))) at++;
    const code = text.charCodeAt(at);
    if (code === 0x7d) return at + 1; // '}'
    if (code !== 0x2c) return -1; // ','
    at++;
  }
}

/** The fast read described in the module comment, or `undefined` to fall back to `JSON.parse`. */
export function scanHfJson(text: string): ScannedHfJson | undefined {
  const vocabStart = findSection(text, 'vocab', '{');
  const mergesStart = findSection(text, 'merges', '[');
  if (vocabStart < 0 || mergesStart < 0 || mergesStart < vocabStart) return undefined;
  const ranks = new Map<string, number>();
  const vocabEnd = readVocab(text, vocabStart, ranks);
  if (vocabEnd < 0 || vocabEnd > mergesStart) return undefined;
  const mergesEnd = valueEnd(text, mergesStart);
  if (mergesEnd < 0) return undefined;
  const rest = `${text.slice(0, vocabStart)}{}${text.slice(vocabEnd, mergesStart)}[]${text.slice(mergesEnd)}`;
  try {
    return { root: JSON.parse(rest), ranks };
  } catch {
    return undefined;
  }
}
