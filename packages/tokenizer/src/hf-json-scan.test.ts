/**
 * The fast scan of tokenizer.json must read exactly what `JSON.parse` reads, and step aside (return
 * `undefined`) whenever the file is not shaped the way it expects.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { byteLevelToByteString } from './byte-level.js';
import { parseHfJson } from './hf-json.js';
import { scanHfJson } from './hf-json-scan.js';
import { defaultTokenizerJson } from './test-data.fixture.js';

let json: string;

beforeAll(async () => {
  json = await defaultTokenizerJson();
});

/** Ranks the slow way: `JSON.parse`, then the byte-level mapping. */
function slowRanks(text: string): Map<string, number> {
  const vocab = (JSON.parse(text) as { model: { vocab: Record<string, number> } }).model.vocab;
  return new Map(Object.entries(vocab).map(([symbol, id]) => [byteLevelToByteString(symbol)!, id]));
}

describe('scanHfJson', () => {
  it('reads the built-in file exactly as JSON.parse does', () => {
    const scanned = scanHfJson(json);
    expect(scanned).toBeDefined();
    expect(scanned!.ranks).toEqual(slowRanks(json));
    const { model, ...rest } = JSON.parse(json) as { model: Record<string, unknown> };
    const { model: scannedModel, ...scannedRest } = scanned!.root as { model: Record<string, unknown> };
    expect(scannedRest).toEqual(rest);
    expect(scannedModel).toEqual({ ...model, vocab: {}, merges: [] });
  });

  it('reads compact JSON, escaped symbols, a "vocab" token, and merges given as pairs', () => {
    const vocab: Record<string, number> = { '"': 0, '\\': 1, vocab: 2, merges: 3, 'Ġ"\\': 4 };
    const text = JSON.stringify({
      added_tokens: [{ id: 9, content: '"merges": [' }],
      model: {
        type: 'BPE',
        vocab,
        merges: [
          ['a', ']'],
          ['"', '['],
        ],
      },
      pre_tokenizer: null,
    });
    const scanned = scanHfJson(text);
    expect(scanned?.ranks).toEqual(slowRanks(text));
    expect(scanned?.root).toEqual({ ...JSON.parse(text), model: { type: 'BPE', vocab: {}, merges: [] } });
  });

  it.each([
    ['no merges', '{"model": {"vocab": {"a": 0}}}'],
    ['two vocab objects', '{"model": {"vocab": {"a": 0}, "merges": []}, "x": {"vocab": {}}}'],
    ['a fractional id', '{"model": {"vocab": {"a": 0.5}, "merges": []}}'],
    ['a symbol outside the byte-level alphabet', '{"model": {"vocab": {"中": 0}, "merges": []}}'],
    ['a repeated symbol', '{"model": {"vocab": {"a": 0, "a": 1}, "merges": []}}'],
    ['broken JSON after the vocabulary', '{"model": {"vocab": {"a": 0}, "merges": []}, }'],
    ['an unclosed merges array', '{"model": {"vocab": {"a": 0}, "merges": ["a b"'],
  ])('steps aside on %s', (_name, text) => {
    expect(scanHfJson(text)).toBeUndefined();
  });

  it('leaves malformed files to the ordinary parse and its error messages', () => {
    expect(() => parseHfJson('{"model": {"vocab": {"中": 0}, "merges": []}}')).toThrow(
      /not in the byte-level alphabet/,
    );
    expect(() => parseHfJson('{"model": {"vocab": {"a": 0}, "merges": [')).toThrow(/not valid JSON/);
  });
});
