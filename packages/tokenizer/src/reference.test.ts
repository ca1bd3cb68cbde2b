/**
 * Ids must equal two independent implementations given the same vocabulary: `@huggingface/tokenizers` (a JS
 * port of HF's tokenizers, its own regex translation and its own BPE over the merges list) and js-tiktoken
 * used plainly (the same rank rule, a naive implementation). Exact equality is the only tolerance: a single
 * differing id is a bug.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tiktoken } from 'js-tiktoken/lite';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizerFromHfJson } from './from-data.js';
import { parseHfJson } from './hf-json.js';
import { LLAMA3_SPLIT_PATTERN } from './split-pattern.js';
import { CORPUS, defaultTokenizerJson } from './test-data.fixture.js';
import { toJsTiktoken } from './tiktoken-format.js';
import type { Tokenizer } from './tokenizer.js';

let ours: Tokenizer;
let hf: HfTokenizer;
let tiktoken: Tiktoken;

beforeAll(async () => {
  const json = await defaultTokenizerJson();
  ours = tokenizerFromHfJson(json);
  hf = new HfTokenizer(JSON.parse(json), {});
  tiktoken = new Tiktoken(toJsTiktoken(parseHfJson(json)));
});

/** HF's ids without any template tokens (Llama 3's tokenizer.json adds none, this only makes it explicit). */
function hfIds(text: string): number[] {
  return hf.encode(text, { add_special_tokens: false }).ids;
}

/** Longest piece of `text` under the split pattern. */
function longestPiece(text: string): number {
  let longest = 0;
  for (const match of text.matchAll(new RegExp(LLAMA3_SPLIT_PATTERN, 'gu'))) {
    longest = Math.max(longest, match[0].length);
  }
  return longest;
}

describe('ids equal @huggingface/tokenizers', () => {
  it('encodes the reference prompt to the ids Meta publishes', () => {
    const prompt = 'the answer to the ultimate question of life, the universe, and everything is ';
    const expected = [
      128000, 1820, 4320, 311, 279, 17139, 3488, 315, 2324, 11, 279, 15861, 11, 323, 4395, 374, 220,
    ];
    expect(ours.encode(prompt, { bos: true })).toEqual(expected);
    expect([128000, ...hfIds(prompt)]).toEqual(expected);
  });

  // HF always turns special-token text into control tokens, so it is compared with ours allowing them;
  // the safe default differs from HF only on the 'special-token text' entry, checked separately below.
  it.each(CORPUS)('%s', (name, text) => {
    const expected = hfIds(text);
    expect(ours.encode(text, { allowSpecial: true })).toEqual(expected);
    if (name !== 'special-token text') expect(ours.encode(text)).toEqual(expected);
  });

  it("treats U+0085 as whitespace and U+FEFF as not, like HF (and Meta's Rust tiktoken)", () => {
    for (const text of ['a \u0085F', ' \u0085', '\u0085\u0085 x', 'a \ufeffb', '\ufeff \ufeff']) {
      expect(ours.encode(text)).toEqual(hfIds(text));
    }
  });

  it('keeps special-token text as plain text by default, where HF makes control tokens', () => {
    const text = 'x<|eot_id|>y';
    expect(hfIds(text)).toEqual([87, 128009, 88]);
    const plain = ours.encode(text);
    expect(plain.every((id) => id < 128000)).toBe(true);
    expect(plain).toEqual(tiktoken.encode(text, [], []));
    expect(ours.decode(plain)).toBe(text);
  });
});

describe('ids equal js-tiktoken used plainly', () => {
  // js-tiktoken's merge is quadratic and joins byte arrays into strings at every step: a single piece of
  // 100k bytes would take hours, so entries with giant pieces are left to the HF comparison above.
  const feasible = CORPUS.filter(([, text]) => longestPiece(text) <= 5000);

  it('has most of the corpus to compare', () => {
    expect(feasible.length).toBeGreaterThanOrEqual(CORPUS.length - 5);
  });

  it.each(feasible)('%s', (_name, text) => {
    // allowed = [] and disallowed = []: special-token text is encoded as text, like our default.
    expect(ours.encode(text)).toEqual(tiktoken.encode(text, [], []));
  });
});
