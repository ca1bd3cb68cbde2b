/**
 * Both file formats, the loader's path handling, and the errors for malformed files.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenizerFromData, tokenizerFromHfJson, tokenizerFromTiktoken } from './from-data.js';
import { parseHfJson } from './hf-json.js';
import { defaultTokenizerPath, loadTokenizer } from './load.js';
import { CORPUS, defaultTokenizerJson, META_MODEL_PATH, sharedFile } from './test-data.fixture.js';
import { parseTiktoken } from './tiktoken-format.js';
import type { Tokenizer } from './tokenizer.js';

let json: string;
let fromJson: Tokenizer;
const scratch = mkdtempSync(join(tmpdir(), 'tokenizer-test-'));

beforeAll(async () => {
  json = await defaultTokenizerJson();
  fromJson = tokenizerFromHfJson(json);
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe.skipIf(META_MODEL_PATH === undefined)("Meta's tokenizer.model", () => {
  let model: Uint8Array;
  let fromModel: Tokenizer;

  beforeAll(() => {
    model = readFileSync(META_MODEL_PATH!);
    fromModel = tokenizerFromTiktoken(model);
  });

  it('holds the same 128000 ranks as the built-in tokenizer.json, and the same special tokens', () => {
    const a = parseTiktoken(model);
    const b = parseHfJson(json);
    expect(a.ranks.size).toBe(128000);
    expect(new Map(a.ranks)).toEqual(new Map(b.ranks));
    const specials = (t: Tokenizer) => [...t.specialTokens].sort(([x], [y]) => (x < y ? -1 : 1));
    expect(specials(fromModel)).toEqual(specials(fromJson));
    for (let id = 128000; id < 128256; id++) expect(fromModel.decode([id])).toBe(fromJson.decode([id]));
  });

  it.each(CORPUS)('gives the ids tokenizer.json gives: %s', (_name, text) => {
    expect(fromModel.encode(text, { bos: true, allowSpecial: true })).toEqual(
      fromJson.encode(text, { bos: true, allowSpecial: true }),
    );
  });

  it('loads from a model directory, Meta layout (original/tokenizer.model) included', async () => {
    const dir = join(scratch, 'meta-layout');
    mkdirSync(join(dir, 'original'), { recursive: true });
    writeFileSync(join(dir, 'original', 'tokenizer.model'), model);
    const loaded = await loadTokenizer(dir);
    expect(loaded.encode('hello world', { bos: true })).toEqual([128000, 15339, 1917]);
    const flat = join(scratch, 'flat');
    mkdirSync(flat);
    writeFileSync(join(flat, 'tokenizer.model'), model);
    expect((await loadTokenizer(flat)).encode('hello world')).toEqual([15339, 1917]);
    expect((await loadTokenizer(META_MODEL_PATH)).encode('hello world')).toEqual([15339, 1917]);
    expect(tokenizerFromData(model).encode('hello world')).toEqual([15339, 1917]);
  });
});

describe('shared test data', () => {
  it('is skipped with a warning where absent, but required under CI=true', () => {
    const saved = process.env.CI;
    try {
      process.env.CI = 'true';
      expect(() => sharedFile('llama3/no-such-file')).toThrow(/no-such-file is required when CI=true/);
      process.env.CI = 'false';
      expect(sharedFile('llama3/no-such-file')).toBeUndefined();
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });
});

describe('loadTokenizer', () => {
  it('loads the built-in vocabulary without a path', async () => {
    const tokenizer = await loadTokenizer();
    expect(tokenizer.encode('hello world')).toEqual([15339, 1917]);
    expect(await defaultTokenizerPath()).toMatch(/tokenizer-llama3[\\/]models[\\/]tokenizer\.json$/);
  });

  it('loads a tokenizer.json from a path or a directory', async () => {
    const dir = join(scratch, 'hf-layout');
    mkdirSync(dir);
    writeFileSync(join(dir, 'tokenizer.json'), json);
    expect((await loadTokenizer(dir)).encode('hello world')).toEqual([15339, 1917]);
    expect((await loadTokenizer(join(dir, 'tokenizer.json'))).encode('hello world')).toEqual([15339, 1917]);
    expect(tokenizerFromData(json).encode('hello world')).toEqual([15339, 1917]);
  });

  it('names what is missing', async () => {
    await expect(loadTokenizer(join(scratch, 'nope'))).rejects.toThrow(/tokenizer path not found: .*nope/);
    const empty = join(scratch, 'empty');
    mkdirSync(empty);
    await expect(loadTokenizer(empty)).rejects.toThrow(
      /no tokenizer in .*empty \(looked for tokenizer\.json/,
    );
  });

  it('names the file in parse errors', async () => {
    const bad = join(scratch, 'bad.json');
    writeFileSync(bad, '{"model": ');
    await expect(loadTokenizer(bad)).rejects.toThrow(/bad\.json: tokenizer\.json: not valid JSON/);
  });

  it('fetches a tokenizer.json from a URL (the way in a browser), naming the URL in errors', async () => {
    const files: Record<string, string> = { '/m/tokenizer.json': json, '/bad.json': '{"model": ' };
    const server = createServer((req, res) => {
      const body = files[req.url ?? ''];
      if (body === undefined) res.writeHead(404, 'Not Found').end();
      else res.writeHead(200).end(body);
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const fetched = await loadTokenizer(`${base}/m/tokenizer.json`);
      expect(fetched.encode('hello world', { bos: true })).toEqual([128000, 15339, 1917]);
      await expect(loadTokenizer(`${base}/missing.json`)).rejects.toThrow(
        /missing\.json: HTTP 404 Not Found/,
      );
      await expect(loadTokenizer(`${base}/bad.json`)).rejects.toThrow(
        /\/bad\.json: tokenizer\.json: not valid JSON/,
      );
    } finally {
      await new Promise<void>((done) => server.close(() => done()));
    }
  });
});

describe('malformed tiktoken files', () => {
  const good = 'IQ== 0\n'; // '!' with rank 0
  it.each([
    ['an empty file', '', /no tokens/],
    ['a line without a rank', 'IQ==\n', /line 1 is not "<base64 bytes> <rank>"/],
    ['a bad rank', 'IQ== x1\n', /line 1 is not/],
    ['bad base64', `${good}!!!! 1\n`, /line 2 is not/],
    ['a repeated token', `${good}IQ== 1\n`, /line 2 repeats the token of rank 0/],
    ['a missing single byte', good, /no token for the single byte 0x00/],
  ])('rejects %s', (_name, text, message) => {
    expect(() => tokenizerFromTiktoken(text)).toThrow(message);
  });

  it('rejects a repeated rank', () => {
    const lines = Array.from({ length: 256 }, (_, b) => `${btoa(String.fromCharCode(b))} ${b}`);
    expect(() => tokenizerFromTiktoken(`${lines.join('\n')}\nYWI= 5\n`)).toThrow(
      /rank 5 is given to more than one token/,
    );
    // The same file with a fresh rank is fine: 256 bytes, and specials numbered after the last rank.
    const ok = tokenizerFromTiktoken(`${lines.join('\r\n')}\r\nYWI= 256\r\n`);
    expect(ok.encode('abab')).toEqual([256, 256]);
    expect(ok.bosId).toBe(257);
  });
});

describe('malformed tokenizer.json files', () => {
  const valid = (): Record<string, unknown> => JSON.parse(json) as Record<string, unknown>;
  const withModel = (patch: Record<string, unknown>) => {
    const root = valid();
    root.model = { ...(root.model as object), ...patch };
    return root;
  };

  it.each([
    ['invalid JSON', () => '{"model": [', /not valid JSON/],
    ['a top level that is not an object', () => '[1, 2]', /top level is not an object/],
    ['no model', () => ({ ...valid(), model: undefined }), /no "model" object/],
    ['a WordPiece model', () => withModel({ type: 'WordPiece' }), /model type "WordPiece" is not supported/],
    ['no vocab', () => withModel({ vocab: undefined }), /model\.vocab is missing/],
    [
      'a symbol outside the byte-level alphabet',
      () => withModel({ vocab: { '\u4e2d': 0 } }),
      /not in the byte-level alphabet/,
    ],
    ['a non-numeric id', () => withModel({ vocab: { a: 'x' } }), /non-numeric id/],
    ['a normalizer', () => ({ ...valid(), normalizer: { type: 'NFC' } }), /normalizers are not supported/],
    [
      'another pre-tokenizer',
      () => ({ ...valid(), pre_tokenizer: { type: 'Whitespace' } }),
      /unsupported pre-tokenizer step "Whitespace"/,
    ],
    [
      'no split regex',
      () => ({ ...valid(), pre_tokenizer: { type: 'Sequence', pretokenizers: [] } }),
      /no Split regex/,
    ],
    ['bad added tokens', () => ({ ...valid(), added_tokens: [{ id: 'x' }] }), /added_tokens\[0\]/],
    [
      'a special id inside the ranks',
      () => ({ ...valid(), added_tokens: [{ id: 5, content: '<x>' }] }),
      /reuses id 5/,
    ],
  ])('rejects %s', (_name, make, message) => {
    expect(() => tokenizerFromHfJson(make() as object)).toThrow(message);
  });
});
