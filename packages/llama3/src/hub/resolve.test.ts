import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { describeWithShared, fixture } from '../../../../test-support/fixtures.js';
import { type HubServer, startHubServer } from './hub-server.fixture.js';
import { type DownloadProgress, parseHubId, resolveModel } from './resolve.js';

const COMMIT = 'a'.repeat(40);
const TOKEN = 'hf_test_token';
const weights = randomBytes(64 * 1024);
const config = JSON.stringify({ architectures: ['LlamaForCausalLM'], hidden_size: 64 });
const shard1 = randomBytes(3000);
const shard2 = randomBytes(5000);
const index = JSON.stringify({
  metadata: { total_size: 8000 },
  weight_map: {
    a: 'model-00001-of-00002.safetensors',
    b: 'model-00002-of-00002.safetensors',
    c: 'model-00001-of-00002.safetensors',
  },
});

let hub: HubServer;
let scratch: string;
let cacheDir: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'hub-test-'));
  const tiny = {
    'config.json': config,
    'generation_config.json': '{"bos_token_id":1}',
    'tokenizer.json': '{"model":{}}',
    'tokenizer_config.json': '',
    'model.safetensors': weights,
    'README.md': '# not wanted',
    'original/params.json': '{}',
    'original/consolidated.00.pth': randomBytes(100),
  };
  hub = await startHubServer([
    { repo: 'test-org/tiny', commit: COMMIT, files: tiny },
    {
      repo: 'test-org/sharded',
      commit: 'b'.repeat(40),
      files: {
        'config.json': config,
        'model.safetensors.index.json': index,
        'model-00001-of-00002.safetensors': shard1,
        'model-00002-of-00002.safetensors': shard2,
        'tokenizer_config.json': '{}',
      },
    },
    {
      repo: 'meta-llama/gated',
      commit: 'c'.repeat(40),
      files: { 'config.json': config, 'model.safetensors': weights },
      token: TOKEN,
    },
    {
      repo: 'test-org/liar',
      commit: 'd'.repeat(40),
      files: { 'config.json': config, 'model.safetensors': weights },
      reportedSizes: { 'model.safetensors': weights.byteLength + 100 },
    },
    {
      repo: 'test-org/meta-only',
      commit: 'e'.repeat(40),
      files: { 'original/params.json': '{}', 'original/consolidated.00.pth': shard1 },
    },
    { repo: 'test-org/empty', commit: 'f'.repeat(40), files: { 'README.md': 'hi' } },
  ]);
});

afterAll(async () => {
  await hub?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

beforeEach(async () => {
  cacheDir = await mkdtemp(join(scratch, 'cache-'));
  hub.requests.length = 0;
  hub.pageSize = 1000;
  // The developer's own settings must not leak in (nor the real cache be touched).
  for (const name of ['HF_TOKEN', 'HF_ENDPOINT', 'HF_HUB_OFFLINE']) vi.stubEnv(name, '');
  vi.stubEnv('HF_HUB_CACHE', join(scratch, 'env-cache'));
});

afterEach(() => {
  vi.unstubAllEnvs();
});

/** Requests for file bytes (resolve or CDN), as opposed to metadata. */
const dataRequests = () => hub.requests.filter((r) => r.method === 'GET' && !r.url.startsWith('/api/'));

/** Requests for LFS file bytes (the hub's resolve URL redirects them to its CDN). */
const cdnRequests = () => hub.requests.filter((r) => r.url.startsWith('/cdn/'));

/** Records progress and checks it as it comes: per file, loaded never goes back nor past the total. */
function progressLog() {
  const events: DownloadProgress[] = [];
  const onProgress = (p: DownloadProgress) => {
    const last = events.at(-1);
    if (last && last.fileIndex === p.fileIndex)
      expect(p.loadedBytes).toBeGreaterThanOrEqual(last.loadedBytes);
    expect(p.loadedBytes).toBeLessThanOrEqual(p.totalBytes);
    events.push(p);
  };
  return { events, onProgress };
}

describe('parseHubId', () => {
  it('reads owner/name and an optional @revision', () => {
    expect(parseHubId('meta-llama/Llama-3.2-1B')).toEqual({ repo: 'meta-llama/Llama-3.2-1B' });
    expect(parseHubId('meta-llama/Llama-3.2-1B@main')).toEqual({
      repo: 'meta-llama/Llama-3.2-1B',
      revision: 'main',
    });
    expect(parseHubId(`a/b@${COMMIT}`)).toEqual({ repo: 'a/b', revision: COMMIT });
  });

  it('rejects paths and malformed ids', () => {
    for (const text of [
      './x/y',
      '../a/b',
      '/abs/path',
      'a/b/c',
      'model',
      'a--b/c',
      'a/b..c',
      'a/b@',
      '.a/b',
      'a/ b',
    ]) {
      expect(parseHubId(text), text).toBeUndefined();
    }
  });
});

describe('resolveModel', () => {
  it('returns an existing directory as it is, without network', async () => {
    expect(await resolveModel(scratch, { hubUrl: hub.url })).toBe(scratch);
    expect(hub.requests).toHaveLength(0);
  });

  it('rejects what is neither a directory nor a hub id', async () => {
    await expect(resolveModel(join(scratch, 'nope'))).rejects.toThrow(/not a directory and not a hub id/);
    const file = join(scratch, 'file.txt');
    await writeFile(file, 'x');
    await expect(resolveModel(file)).rejects.toThrow(/a file, not a directory and not a hub id/);
  });

  it('downloads the checkpoint files into the HF cache layout', async () => {
    const { events, onProgress } = progressLog();
    const dir = await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir, onProgress });
    const repoDir = join(cacheDir, 'models--test-org--tiny');
    expect(dir).toBe(join(repoDir, 'snapshots', COMMIT));
    expect(readFileSync(join(repoDir, 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(readFileSync(join(dir, 'config.json'), 'utf8')).toBe(config);
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
    // Snapshot entries are relative links into blobs/, named by git oid (small files) or sha256 (LFS).
    expect(await readlink(join(dir, 'config.json'))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40}$/);
    expect(await readlink(join(dir, 'model.safetensors'))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
    expect((await readdir(join(repoDir, 'blobs'))).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    // Neither the .pth copy nor the README was asked for.
    expect(hub.requests.filter((r) => /README|original/.test(r.url))).toEqual([]);

    const files = [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'model.safetensors',
    ];
    expect(new Set(events.map((e) => e.file))).toEqual(new Set(files));
    for (const [i, file] of files.entries()) {
      const mine = events.filter((e) => e.file === file);
      expect(mine.every((e) => e.fileIndex === i && e.fileCount === files.length)).toBe(true);
      expect(mine.at(-1)!.loadedBytes).toBe(mine.at(-1)!.totalBytes);
    }
    expect(events.filter((e) => e.file === 'model.safetensors').at(-1)!.totalBytes).toBe(weights.byteLength);
  });

  it('makes no data requests when the files are cached', async () => {
    await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    hub.requests.length = 0;
    const { events, onProgress } = progressLog();
    const dir = await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir, onProgress });
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(true);
    expect(dataRequests()).toEqual([]);
    // Each cached file reports once, complete.
    expect(events.map((e) => [e.file, e.loadedBytes === e.totalBytes])).toEqual([
      ['config.json', true],
      ['generation_config.json', true],
      ['tokenizer.json', true],
      ['tokenizer_config.json', true],
      ['model.safetensors', true],
    ]);
  });

  it('fetches a sharded checkpoint through its index, following paged file lists', async () => {
    hub.pageSize = 2;
    const dir = await resolveModel('test-org/sharded@main', { hubUrl: hub.url, cacheDir });
    expect(readFileSync(join(dir, 'model-00001-of-00002.safetensors')).equals(shard1)).toBe(true);
    expect(readFileSync(join(dir, 'model-00002-of-00002.safetensors')).equals(shard2)).toBe(true);
    expect(existsSync(join(dir, 'tokenizer_config.json'))).toBe(true);
    expect(hub.requests.filter((r) => r.url.includes('/tree/')).length).toBe(3);
    // The index is fetched once, then only reported (from the cache) in the main pass.
    expect(dataRequests().filter((r) => r.url.endsWith('.index.json'))).toHaveLength(1);
  });

  it('falls back to Meta original/ files only when there are no safetensors', async () => {
    const dir = await resolveModel('test-org/meta-only', { hubUrl: hub.url, cacheDir });
    expect(readFileSync(join(dir, 'original/consolidated.00.pth')).equals(shard1)).toBe(true);
    await expect(resolveModel('test-org/empty', { hubUrl: hub.url, cacheDir })).rejects.toThrow(
      /has no Llama checkpoint.*README\.md/,
    );
  });

  it('explains 401 on a gated repo, and sends HF_TOKEN as a bearer token', async () => {
    const denied = resolveModel('meta-llama/gated', { hubUrl: hub.url, cacheDir });
    await expect(denied).rejects.toThrow(
      /HTTP 401.*accept the license on http:\/\/127\.0\.0\.1:\d+\/meta-llama\/gated.*HF_TOKEN/,
    );
    await expect(
      resolveModel('meta-llama/gated', { hubUrl: hub.url, cacheDir, accessToken: 'hf_wrong' }),
    ).rejects.toThrow(/HTTP 403.*token that was sent/);

    hub.requests.length = 0;
    vi.stubEnv('HF_TOKEN', TOKEN);
    const dir = await resolveModel('meta-llama/gated', { hubUrl: hub.url, cacheDir });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
    expect(hub.requests.length).toBeGreaterThan(0);
    expect(hub.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('reports unknown repos and revisions', async () => {
    await expect(resolveModel('test-org/missing', { hubUrl: hub.url, cacheDir })).rejects.toThrow(
      /HTTP 401.*do not exist \(test-org\/missing is not a local directory/,
    );
    await expect(resolveModel('test-org/tiny@v9', { hubUrl: hub.url, cacheDir })).rejects.toThrow(
      /not found on/,
    );
  });

  it('rejects a file whose size differs from the hub, leaving nothing behind', async () => {
    const err = resolveModel('test-org/liar', { hubUrl: hub.url, cacheDir });
    const want = weights.byteLength;
    await expect(err).rejects.toThrow(
      `model.safetensors: downloaded ${want} bytes but the hub reported ${want + 100}`,
    );
    const repoDir = join(cacheDir, 'models--test-org--liar');
    const blobs = await readdir(join(repoDir, 'blobs'));
    expect(blobs.filter((b) => b.length === 64 || b.endsWith('.incomplete'))).toEqual([]);
    expect(existsSync(join(repoDir, 'snapshots', 'd'.repeat(40), 'model.safetensors'))).toBe(false);
    expect(existsSync(join(repoDir, 'refs', 'main'))).toBe(false);
  });

  it('resumes with a Range request when the connection drops mid-file', async () => {
    hub.cutNext('model.safetensors', 20_000);
    const { events, onProgress } = progressLog();
    const dir = await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir, onProgress });
    expect(readFileSync(join(dir, 'model.safetensors')).equals(weights)).toBe(true);
    const cdn = cdnRequests();
    expect(cdn).toHaveLength(2);
    // Normally it goes on from byte 20000; on a loaded machine fetch may drop the received chunks with
    // the connection, and then it starts again from 0: slower, still right.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1]!.range ?? 'bytes=0-')?.[1]);
    expect(resumedAt).toBeLessThanOrEqual(20_000);
    expect(events.at(-1)).toMatchObject({ file: 'model.safetensors', loadedBytes: weights.byteLength });
  });

  it('resumes a partial file left by an earlier run, and restarts one that cannot be a prefix', async () => {
    const repoDir = join(cacheDir, 'models--test-org--tiny');
    await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    const link = await readlink(join(repoDir, 'snapshots', COMMIT, 'model.safetensors'));
    const blob = join(repoDir, 'snapshots', COMMIT, link);
    await rm(blob);
    await writeFile(`${blob}.incomplete`, weights.subarray(0, 1000));
    hub.requests.length = 0;
    await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    expect(cdnRequests().map((r) => r.range)).toEqual(['bytes=1000-']);
    expect((await readFile(blob)).equals(weights)).toBe(true);

    await rm(blob);
    await writeFile(`${blob}.incomplete`, randomBytes(weights.byteLength + 5));
    hub.requests.length = 0;
    await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    expect(cdnRequests().map((r) => r.range)).toEqual([undefined]);
    expect((await readFile(blob)).equals(weights)).toBe(true);

    // A damaged (short) blob is fetched again rather than trusted.
    await writeFile(blob, weights.subarray(0, 10));
    await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    expect((await readFile(blob)).equals(weights)).toBe(true);
  });

  it('reads HF_ENDPOINT and HF_HUB_CACHE like the Python tools', async () => {
    vi.stubEnv('HF_ENDPOINT', `${hub.url}/`);
    vi.stubEnv('HF_HUB_CACHE', cacheDir);
    const dir = await resolveModel('test-org/tiny');
    expect(dir).toBe(join(cacheDir, 'models--test-org--tiny', 'snapshots', COMMIT));
  });

  it('uses a complete cached snapshot offline or when the hub cannot be reached', async () => {
    const dir = await resolveModel('test-org/tiny', { hubUrl: hub.url, cacheDir });
    const closed = 'http://127.0.0.1:1'; // nothing listens on port 1: connections are refused at once
    expect(await resolveModel('test-org/tiny', { hubUrl: closed, cacheDir })).toBe(dir);
    vi.stubEnv('HF_HUB_OFFLINE', '1');
    expect(await resolveModel('test-org/tiny', { hubUrl: closed, cacheDir })).toBe(dir);
    await expect(resolveModel('test-org/sharded', { hubUrl: closed, cacheDir })).rejects.toThrow(/offline/);
    vi.stubEnv('HF_HUB_OFFLINE', '');
    await expect(resolveModel('test-org/sharded', { hubUrl: closed, cacheDir })).rejects.toThrow(
      /connection to http:\/\/127\.0\.0\.1:1 failed/,
    );
  });
});

describeWithShared('resolveModel with the stories260K fixture', () => {
  it('downloads it byte for byte', async () => {
    const files = Object.fromEntries(
      ['config.json', 'model.safetensors'].map((f) => [f, readFileSync(fixture(`stories260K/${f}`))]),
    );
    const local = await startHubServer([{ repo: 'karpathy/stories260K', commit: '1'.repeat(40), files }]);
    try {
      await mkdir(cacheDir, { recursive: true });
      const dir = await resolveModel('karpathy/stories260K', { hubUrl: local.url, cacheDir });
      for (const [name, data] of Object.entries(files))
        expect(readFileSync(join(dir, name)).equals(data)).toBe(true);
    } finally {
      await local.close();
    }
  });
});
