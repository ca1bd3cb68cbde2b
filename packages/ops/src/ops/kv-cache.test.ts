import { cpu, type Device, randn, scope, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { attention } from './attention.js';
import { createKvCaches, KvCache } from './kv-cache.js';

/** Rows `[from, to)` of a `[T, ...]` tensor's values. */
async function rows(t: Tensor, from: number, to: number): Promise<Float32Array> {
  const rowSize = t.numel / t.shape[0]!;
  return ((await t.toArray()) as Float32Array).slice(from * rowSize, to * rowSize);
}

/**
 * Prefill `prefill` tokens, then decode one at a time up to `total`; every step's output must equal the
 * matching row of one causal attention over all `total` tokens.
 */
async function decodeMatchesFull(device: Device, prefill: number, total: number): Promise<void> {
  const [heads, kvHeads, headDim] = [8, 2, 64];
  const q = await randn([total, heads, headDim], { seed: 1 }).to(device);
  const k = await randn([total, kvHeads, headDim], { seed: 2 }).to(device);
  const v = await randn([total, kvHeads, headDim], { seed: 3 }).to(device);
  const full = await attention(q, k, v, { offset: 0 }).toArray();
  const rowSize = heads * headDim;
  // The host copies are sliced per step: each step feeds its own rows, as a model would.
  const [qs, ks, vs] = await Promise.all([q.toArray(), k.toArray(), v.toArray()]);
  const slice = (data: Float32Array, h: number, from: number, to: number) =>
    tensor(data.subarray(from * h * headDim, to * h * headDim), [to - from, h, headDim], { device });
  using cache = new KvCache(device, { maxSeq: total + 5, kvHeads, headDim });
  for (let start = 0; start < total; start = cache.length) {
    const end = start === 0 ? prefill : start + 1;
    cache.append(slice(ks, kvHeads, start, end), slice(vs, kvHeads, start, end));
    const out = cache.attend(slice(qs, heads, start, end));
    // Same kernel, same keys, same order of summation for each row: only a change of blocking could move
    // it, and then by f32 rounding (~1e-7 on outputs of ~1). Measured: 0.
    expectClose(await out.toArray(), full.subarray(start * rowSize, end * rowSize), {
      atol: 1e-6,
      what: `positions [${start}, ${end})`,
    });
    out.dispose();
  }
  expect(cache.length).toBe(total);
  for (const t of [q, k, v]) t.dispose();
}

describe('KvCache on the CPU', () => {
  it('appends in place and advances length; reset() starts over', async () => {
    using cache = new KvCache(cpu, { maxSeq: 6, kvHeads: 1, headDim: 2 });
    cache.append(tensor([1, 2, 3, 4], [2, 1, 2]), tensor([5, 6, 7, 8], [2, 1, 2]));
    cache.append(tensor([9, 10], [1, 1, 2]), tensor([11, 12], [1, 1, 2]));
    expect(cache.length).toBe(3);
    expect([...(await rows(cache.k, 0, 3))]).toEqual([1, 2, 3, 4, 9, 10]);
    expect([...(await rows(cache.v, 0, 3))]).toEqual([5, 6, 7, 8, 11, 12]);
    cache.reset();
    expect(cache.length).toBe(0);
    cache.append(tensor([0, -1], [1, 1, 2]), tensor([-2, -3], [1, 1, 2]));
    expect([...(await rows(cache.k, 0, 2))]).toEqual([0, -1, 3, 4]);
  });

  it('truncate(n) keeps the first n rows; the next append writes from row n', async () => {
    using cache = new KvCache(cpu, { maxSeq: 6, kvHeads: 1, headDim: 2 });
    cache.append(tensor([1, 2, 3, 4, 5, 6], [3, 1, 2]), tensor([7, 8, 9, 10, 11, 12], [3, 1, 2]));
    cache.truncate(1);
    expect(cache.length).toBe(1);
    cache.append(tensor([-1, -2], [1, 1, 2]), tensor([-3, -4], [1, 1, 2]));
    expect(cache.length).toBe(2);
    expect([...(await rows(cache.k, 0, 2))]).toEqual([1, 2, -1, -2]);
    expect([...(await rows(cache.v, 0, 2))]).toEqual([7, 8, -3, -4]);
    expect(() => cache.truncate(3)).toThrow('KvCache.truncate: length = 3 must be an integer in [0, 2]');
    expect(() => cache.truncate(-1)).toThrow('KvCache.truncate');
    cache.truncate(0);
    expect(cache.length).toBe(0);
  });

  it('decode with the cache equals a full causal recompute', async () => {
    await decodeMatchesFull(cpu, 5, 12);
  });

  it('rejects appends that do not fit, naming the sizes', () => {
    using cache = new KvCache(cpu, { maxSeq: 4, kvHeads: 2, headDim: 8 });
    const kv = randn([3, 2, 8]);
    cache.append(kv, kv);
    expect(() => cache.append(kv, kv)).toThrow(
      'KvCache.append: 3 new rows after 3 filled would pass maxSeq = 4 (k [3, 2, 8], v [3, 2, 8])',
    );
    const wide = randn([1, 4, 8] as number[]);
    expect(() => cache.append(wide, wide)).toThrow(
      "KvCache.append: k must be [S, 2, 8] (the cache's kv heads and head dim): k [1, 4, 8]",
    );
    // @ts-expect-error v's rows (2) differ from k's (1)
    expect(() => cache.append(randn([1, 2, 8]), randn([2, 2, 8]))).toThrow("v must have k's shape");
    expect(() => cache.attend(randn([4, 4, 8]))).toThrow(
      "KvCache.attend: q [4, 4, 8] has 4 rows but the cache holds 3: append this step's k and v first",
    );
    expect(() => new KvCache(cpu, { maxSeq: 0, kvHeads: 2, headDim: 8 })).toThrow('KvCache: maxSeq 0');
    // @ts-expect-error the cache's head dim is 8, not 16
    expect(() => cache.append(randn([1, 2, 16]), randn([1, 2, 16]))).toThrow('k must be [S, 2, 8]');
  });

  it('owns its tensors: a scope does not free them, dispose() does', () => {
    const cache = scope(() => new KvCache(cpu, { maxSeq: 4, kvHeads: 1, headDim: 4 }));
    expect(cache.k.disposed).toBe(false);
    cache.dispose();
    expect(cache.k.disposed && cache.v.disposed).toBe(true);
  });

  it('createKvCaches makes one cache per layer', () => {
    const caches = createKvCaches(cpu, { layers: 3, maxSeq: 10, kvHeads: 2, headDim: 4 });
    expect(caches.map((c) => c.k.shape)).toEqual([
      [10, 2, 4],
      [10, 2, 4],
      [10, 2, 4],
    ]);
    expect(new Set(caches.map((c) => c.k)).size).toBe(3);
    for (const c of caches) c.dispose();
  });
});

describe('KvCache on WebGPU', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('the copy kernel writes rows [length, length + S) and nothing else', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    using cache = new KvCache(gpu, { maxSeq: 300, kvHeads: 3, headDim: 12 });
    const a = randn([7, 3, 12], { seed: 1 });
    const b = randn([257, 3, 12], { seed: 2, dtype: 'bf16' }); // several workgroups; bf16 widens exactly
    cache.append(await a.to(gpu), await a.to(gpu));
    cache.append(await b.to(gpu), await b.to(gpu));
    expect(cache.length).toBe(264);
    const expected = new Float32Array([...(await a.toArray()), ...(await b.toArray())]);
    expectClose(await rows(cache.k, 0, 264), expected, { atol: 0, what: 'k' });
    expectClose(await rows(cache.v, 0, 264), expected, { atol: 0, what: 'v' });
    expect(() => cache.append(b, b)).toThrow('KvCache.append: 257 new rows after 264 filled');
  });

  it('decode with the cache equals a full causal recompute (crossing the 64-key block boundary)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await decodeMatchesFull(gpu, 7, 70);
  });

  it("decode with a GPU's chunking of the keys (empty chunks past the length) equals a full recompute", async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // The chunking GPUs get, on any adapter: a cache of over 256 rows is split into chunks of 64 keys and
    // more, as many as its capacity needs (most of them empty at short lengths), and merged.
    const gpuLike = (await testDevice())!;
    (gpuLike.caps as { software: boolean }).software = false;
    try {
      await decodeMatchesFull(gpuLike, 3, 300);
    } finally {
      gpuLike.destroy();
    }
  });
});
