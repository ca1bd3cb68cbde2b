/**
 * The pre-tokenizer pattern that cuts text into pieces before BPE, and its translation to JavaScript.
 *
 * Llama 3's pattern is written for Rust regex engines. Two things change in JavaScript:
 * - the contractions sit in an inline case-insensitive group, `(?i:'s|'t|...)`, which Node 20's `RegExp` lacks;
 *   they are spelled out with case classes (`'[sS]`), as `@huggingface/tokenizers` does too;
 * - `\s` means Unicode White_Space in Rust (Meta's tiktoken) and Oniguruma (HF tokenizers), but JavaScript's
 *   `\s` adds U+FEFF and misses U+0085, so `\s`/`\S` become `\p{White_Space}`/`\P{White_Space}`.
 *
 * One difference from Meta's Rust tiktoken remains, shared with `@huggingface/tokenizers`: Rust's case folding
 * also lets `'ſ` (U+017F, long s) count as the contraction `'s`.
 * @module
 */

/** Llama 3's split pattern exactly as Meta's `tokenizer.py` and the HF `tokenizer.json` write it. */
export const LLAMA3_PATTERN_SOURCE =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/**
 * Llama 3's split pattern for JavaScript (compile with the `u` flag): the contractions spelled out with
 * explicit case classes so it runs on engines without inline modifiers, and Unicode White_Space for `\s`.
 * Digits group in runs of up to three.
 */
export const LLAMA3_SPLIT_PATTERN =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}|" +
  ' ?[^\\p{White_Space}\\p{L}\\p{N}]+[\\r\\n]*|\\p{White_Space}*[\\r\\n]+|\\p{White_Space}+(?!\\P{White_Space})|' +
  '\\p{White_Space}+';

/**
 * Translates a split pattern from a `tokenizer.json` (written for Rust engines) to JavaScript `u`-flag source:
 * every `(?i:...)` group becomes a plain group whose ASCII letters are case classes (`(?i:'s)` → `(?:'[sS])`),
 * and `\s`/`\S` become `\p{White_Space}`/`\P{White_Space}`. Throws on a character class inside such a group
 * and on other inline modifiers, which this rewrite cannot translate faithfully, rather than change which text
 * the pattern matches.
 */
export function toJsPattern(pattern: string): string {
  let out = '';
  let i = 0;
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      out += translateEscape(pattern.slice(i, i + 2));
      i += 2;
    } else if (pattern.startsWith('(?i:', i)) {
      const [body, end] = foldGroup(pattern, i + 4);
      out += '(?:' + body + ')';
      i = end + 1;
    } else if (pattern.startsWith('(?i)', i) || /^\(\?[a-zA-Z-]+[:)]/.test(pattern.slice(i, i + 8))) {
      throw new Error(
        `unsupported inline modifier at offset ${i} of split pattern ${JSON.stringify(pattern)}`,
      );
    } else {
      out += ch;
      i += 1;
    }
  }
  return out;
}

/** Case-folds the body of a `(?i:` group starting at `start`; returns it and the index of its closing paren. */
function foldGroup(pattern: string, start: number): [string, number] {
  let body = '';
  let depth = 0;
  for (let i = start; i < pattern.length; i++) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      // Keep the escape and its argument (`\p{L}` whole) untouched: escape letters are not literals.
      const braced = /^\\[pPu]\{[^}]*\}/.exec(pattern.slice(i));
      const sequence = braced ? braced[0] : pattern.slice(i, i + 2);
      body += translateEscape(sequence);
      i += sequence.length - 1;
    } else if (ch === '[') {
      throw new Error(
        `unsupported character class inside (?i:...) in split pattern ${JSON.stringify(pattern)}`,
      );
    } else if (ch === '(') {
      depth++;
      body += ch;
    } else if (ch === ')') {
      if (depth === 0) return [body, i];
      depth--;
      body += ch;
    } else if (/[a-zA-Z]/.test(ch)) {
      body += `[${ch.toLowerCase()}${ch.toUpperCase()}]`;
    } else {
      body += ch;
    }
  }
  throw new Error(`unclosed (?i: group in split pattern ${JSON.stringify(pattern)}`);
}

/** Rust's `\s` and `\S` in JavaScript; other escapes mean the same in both. */
function translateEscape(sequence: string): string {
  if (sequence === '\\s') return '\\p{White_Space}';
  if (sequence === '\\S') return '\\P{White_Space}';
  return sequence;
}
