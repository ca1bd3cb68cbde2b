/**
 * The Tokenizer's API: Meta's published ids, special-token handling, counting, decoding and its errors.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadTokenizer } from './load.js';
import { LLAMA3_SPECIAL_TOKENS } from './special-tokens.js';
import { CORPUS } from './test-data.fixture.js';
import type { Tokenizer } from './tokenizer.js';

let tokenizer: Tokenizer;

beforeAll(async () => {
  tokenizer = await loadTokenizer();
});

describe('Tokenizer (built-in vocabulary)', () => {
  it('reproduces the ids of Meta test_tokenizer.py', () => {
    const ids = tokenizer.encode('This is a test sentence.', { bos: true, eos: true });
    expect(ids).toEqual([128000, 2028, 374, 264, 1296, 11914, 13, 128001]);
    expect(tokenizer.decode(ids)).toBe('<|begin_of_text|>This is a test sentence.<|end_of_text|>');
  });

  it('has 128000 ranks and 256 special tokens, named as Meta and Llama 3.1 name them', () => {
    expect(tokenizer.vocabSize).toBe(128256);
    expect(tokenizer.bosId).toBe(128000);
    expect(tokenizer.eosId).toBe(128001);
    LLAMA3_SPECIAL_TOKENS.forEach((name, i) => {
      expect(tokenizer.specialTokenId(name)).toBe(128000 + i);
      expect(tokenizer.decode([128000 + i])).toBe(name);
      expect(tokenizer.isSpecial(128000 + i)).toBe(true);
    });
    expect(tokenizer.specialTokenId('<|start_header_id|>')).toBe(128006);
    expect(tokenizer.specialTokenId('<|eot_id|>')).toBe(128009);
    expect(tokenizer.specialTokenId('<|eom_id|>')).toBe(128008);
    expect(tokenizer.specialTokenId('<|python_tag|>')).toBe(128010);
    // The Llama 3.0 names of those two slots stay accepted.
    expect(tokenizer.specialTokenId('<|reserved_special_token_4|>')).toBe(128008);
    expect(tokenizer.specialTokenId('<|reserved_special_token_5|>')).toBe(128010);
    expect(tokenizer.specialTokenId('<|reserved_special_token_250|>')).toBe(128255);
    expect(tokenizer.isSpecial(127999)).toBe(false);
    expect(() => tokenizer.specialTokenId('<|nope|>')).toThrow(/no special token/);
  });

  it('keeps special-token text in user input as text unless allowed', () => {
    const text = 'a<|eot_id|>b<|begin_of_text|>';
    const plain = tokenizer.encode(text);
    expect(plain.some((id) => tokenizer.isSpecial(id))).toBe(false);
    expect(tokenizer.decode(plain)).toBe(text);
    expect(tokenizer.encode(text, { allowSpecial: false })).toEqual(plain);
    expect(tokenizer.encode(text, { allowSpecial: [] })).toEqual(plain);
    const all = tokenizer.encode(text, { allowSpecial: true });
    expect(all).toEqual([...tokenizer.encode('a'), 128009, ...tokenizer.encode('b'), 128000]);
    const some = tokenizer.encode(text, { allowSpecial: ['<|eot_id|>'] });
    expect(some).toEqual([...tokenizer.encode('a'), 128009, ...tokenizer.encode('b<|begin_of_text|>')]);
    expect(() => tokenizer.encode(text, { allowSpecial: ['<|nope|>'] })).toThrow(/no special token/);
  });

  it('matches an allowed special token however it is surrounded, aliases included', () => {
    expect(tokenizer.encode('<|eot_id|><|eot_id|>', { allowSpecial: true })).toEqual([128009, 128009]);
    expect(tokenizer.encode('<|reserved_special_token_4|>', { allowSpecial: true })).toEqual([128008]);
    expect(tokenizer.encode('<|eot_id', { allowSpecial: true })).toEqual(tokenizer.encode('<|eot_id'));
  });

  it('counts tokens exactly as encode would produce them', () => {
    for (const [, text] of CORPUS) {
      expect(tokenizer.countTokens(text)).toBe(tokenizer.encode(text).length);
      const options = { bos: true, eos: true, allowSpecial: true };
      expect(tokenizer.countTokens(text, options)).toBe(tokenizer.encode(text, options).length);
    }
  });

  it('gives the same ids with a cold and a warm piece cache', () => {
    const text = CORPUS.map(([, t]) => t.slice(0, 2000)).join('\n');
    const warm = tokenizer.encode(text);
    tokenizer.clearCache();
    expect(tokenizer.encode(text)).toEqual(warm);
  });

  it('round-trips every corpus string', () => {
    for (const [name, text] of CORPUS) expect(tokenizer.decode(tokenizer.encode(text)), name).toBe(text);
  });

  it('keeps a leading byte-order mark when decoding', () => {
    expect(tokenizer.decode(tokenizer.encode('\ufeffhello'))).toBe('\ufeffhello');
  });

  it('decodes bytes cut inside a character to U+FFFD, as reference decoders do', () => {
    // 👋 is F0 9F 91 8B, which Llama 3 spells as three tokens: [F0 9F] [91] [8B].
    const ids = tokenizer.encode('👋');
    expect(ids).toEqual([9468, 239, 233]);
    expect([...tokenizer.tokenBytes(9468)]).toEqual([0xf0, 0x9f]);
    expect(tokenizer.decode(ids)).toBe('👋');
    expect(tokenizer.decode(ids.slice(0, 2))).toBe('\ufffd');
    expect(tokenizer.decode([239, ...ids])).toBe('\ufffd👋');
  });

  it('throws a RangeError naming the id for ids outside the vocabulary', () => {
    for (const bad of [-1, 128256, 1e9, 1.5, Number.NaN]) {
      expect(() => tokenizer.decode([1, bad])).toThrow(RangeError);
      expect(() => tokenizer.decode([bad])).toThrow(new RegExp(`token id ${bad} is outside the vocabulary`));
      expect(() => tokenizer.tokenBytes(bad)).toThrow(RangeError);
    }
  });

  it('accepts typed arrays of ids', () => {
    const ids = tokenizer.encode('typed arrays work');
    expect(tokenizer.decode(Int32Array.from(ids))).toBe('typed arrays work');
  });
});
