/**
 * Property test: any Unicode string without lone surrogates survives encode → decode unchanged, and the ids
 * equal Hugging Face's for the same string. Lone surrogates are excluded because UTF-8 cannot carry them
 * (every implementation turns them into U+FFFD). Seeds are fixed so failures can be replayed.
 */
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { tokenizerFromHfJson } from './from-data.js';
import { StreamingDecoder } from './streaming-decoder.js';
import { defaultTokenizerJson, randomText, rng } from './test-data.fixture.js';
import type { Tokenizer } from './tokenizer.js';

let tokenizer: Tokenizer;
let hf: HfTokenizer;

beforeAll(async () => {
  const json = await defaultTokenizerJson();
  tokenizer = tokenizerFromHfJson(json);
  hf = new HfTokenizer(JSON.parse(json), {});
});

describe('random Unicode strings', () => {
  it('round-trip through encode and decode, also when streamed', () => {
    const seed = 42;
    const random = rng(seed);
    for (let i = 0; i < 1000; i++) {
      const text = randomText(random, Math.floor(random() * 120));
      const ids = tokenizer.encode(text);
      expect(tokenizer.decode(ids), `seed ${seed} case ${i}`).toBe(text);
      const stream = new StreamingDecoder(tokenizer);
      expect(ids.map((id) => stream.push(id)).join('') + stream.flush()).toBe(text);
    }
  });

  it('encode to the ids @huggingface/tokenizers gives', () => {
    const seed = 43;
    const random = rng(seed);
    for (let i = 0; i < 500; i++) {
      const text = randomText(random, Math.floor(random() * 120));
      expect(tokenizer.encode(text), `seed ${seed} case ${i}: ${JSON.stringify(text)}`).toEqual(
        hf.encode(text, { add_special_tokens: false }).ids,
      );
    }
  });

  it('turn lone surrogates into U+FFFD, as UTF-8 requires', () => {
    expect(tokenizer.decode(tokenizer.encode('a\ud800b\udc00'))).toBe('a\ufffdb\ufffd');
  });
});
