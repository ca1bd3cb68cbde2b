/**
 * Streaming decode must equal whole decode, and no chunk may hold half a character.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from './load.js';
import { StreamingDecoder } from './streaming-decoder.js';
import { CORPUS, rng } from './test-data.fixture.js';
import type { Tokenizer } from './tokenizer.js';

let tokenizer: Tokenizer;

beforeAll(async () => {
  tokenizer = await loadTokenizer();
});

function streamed(ids: readonly number[]): string[] {
  const stream = new StreamingDecoder(tokenizer);
  const chunks = ids.map((id) => stream.push(id));
  chunks.push(stream.flush());
  return chunks;
}

describe('StreamingDecoder', () => {
  it.each(CORPUS.filter(([, text]) => text.length < 10_000))('equals whole decode: %s', (_name, text) => {
    const ids = tokenizer.encode(text, { allowSpecial: true });
    const chunks = streamed(ids);
    expect(chunks.join('')).toBe(tokenizer.decode(ids));
    // Valid UTF-8 in, so no chunk may show a replacement char: partial characters were held back.
    expect(chunks.some((chunk) => chunk.includes('\ufffd'))).toBe(text.includes('\ufffd'));
  });

  it('holds the bytes of a split character until it is complete', () => {
    expect(streamed([9468, 239, 233])).toEqual(['', '', '👋', '']);
  });

  it('equals whole decode on random ids, which are often not valid UTF-8', () => {
    const random = rng(3);
    for (let i = 0; i < 300; i++) {
      const ids = Array.from({ length: 1 + Math.floor(random() * 20) }, () => Math.floor(random() * 128256));
      expect(streamed(ids).join(''), JSON.stringify(ids)).toBe(tokenizer.decode(ids));
    }
  });

  it('flushes an unfinished character as U+FFFD and can be reused after', () => {
    const stream = new StreamingDecoder(tokenizer);
    expect(stream.push(9468)).toBe('');
    expect(stream.flush()).toBe('\ufffd');
    expect(stream.pushAll(tokenizer.encode('ok 👋'))).toBe('ok 👋');
    expect(stream.flush()).toBe('');
  });

  it('throws a RangeError for an id outside the vocabulary', () => {
    expect(() => new StreamingDecoder(tokenizer).push(128256)).toThrow(RangeError);
  });
});
