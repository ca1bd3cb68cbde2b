import { cpu, randn } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { swiglu } from './activations.js';
import { KvCache } from './kv-cache.js';
import { narrow } from './layout.js';
import { rope, ropeTables } from './rope.js';
import { ropeQkv, ropeQkvAttention } from './rope-qkv.js';
import { swigluPacked, swigluPackedReference } from './swiglu-packed.js';

const invFreq = (half: number) => Float32Array.from({ length: half }, (_, i) => 10000 ** (-i / half));

describe('ropeQkv', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('equals rope on the q and k columns plus a cache append (CPU)', async () => {
    const [S, H, Hkv, Dh] = [5, 4, 2, 8];
    const tables = ropeTables(invFreq(Dh / 2), 32);
    const qkv = randn([S, (H + 2 * Hkv) * Dh], { seed: 1 });
    const cache = new KvCache(cpu, { maxSeq: 16, kvHeads: Hkv, headDim: Dh });
    cache.reserve(3); // start at position 3
    const q = ropeQkv(qkv, tables, cache, { heads: H });
    expect(q.shape).toEqual([S, H, Dh]);
    expect(cache.length).toBe(3 + S);
    const cols = (from: number, n: number) => narrow(qkv, 1, from * Dh, n * Dh);
    const expectedQ = rope(cols(0, H).reshape([S, H, Dh]), tables, { offset: 3 });
    const expectedK = rope(cols(H, Hkv).reshape([S, Hkv, Dh]), tables, { offset: 3 });
    expect(await q.toArray()).toEqual(await expectedQ.toArray()); // same reference code: exact
    expect(await narrow(cache.k, 0, 3, S).toArray()).toEqual(await expectedK.toArray());
    expect(await narrow(cache.v, 0, 3, S).toArray()).toEqual(await cols(H + Hkv, Hkv).toArray());
  });

  for (const [S, H, Hkv, Dh] of [
    [1, 8, 2, 64],
    [7, 4, 4, 16],
    [33, 32, 8, 128],
  ] as const) {
    it(`GPU matches the CPU reference: S=${S} heads ${H}/${Hkv} Dh=${Dh}`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const tables = ropeTables(invFreq(Dh / 2), 64);
      const gTables = ropeTables(invFreq(Dh / 2), 64, gpu);
      const qkv = randn([S, (H + 2 * Hkv) * Dh], { seed: S });
      const cpuCache = new KvCache(cpu, { maxSeq: 64, kvHeads: Hkv, headDim: Dh });
      const gpuCache = new KvCache(gpu, { maxSeq: 64, kvHeads: Hkv, headDim: Dh });
      cpuCache.reserve(5);
      gpuCache.reserve(5);
      const q = ropeQkv(qkv, tables, cpuCache, { heads: H });
      const gq = ropeQkv(await qkv.to(gpu), gTables, gpuCache, { heads: H });
      // One rotation: a*cos - b*sin in f32 (GPU, possibly fused multiply-add) vs f64 rounded once (CPU);
      // |a|, |b| <= ~5 here, so the difference stays within a few f32 ulps of 5: 2e-6.
      expectClose(await gq.toArray(), await q.toArray(), { atol: 2e-6, what: 'q' });
      expectClose(await narrow(gpuCache.k, 0, 5, S).toArray(), await narrow(cpuCache.k, 0, 5, S).toArray(), {
        atol: 2e-6,
        what: 'k',
      });
      expect(await narrow(gpuCache.v, 0, 5, S).toArray()).toEqual(
        await narrow(cpuCache.v, 0, 5, S).toArray(),
      );
      gpuCache.dispose();
    });
  }

  it('rejects a qkv width that does not match the heads, and positions past the table', () => {
    const cache = new KvCache(cpu, { maxSeq: 8, kvHeads: 2, headDim: 4 });
    const tables = ropeTables(invFreq(2), 4);
    expect(() => ropeQkv(randn([2, 20]), tables, cache, { heads: 4 })).toThrow(
      'ropeQkv: qkv [2, 20] must be [S, (4 + 2 * 2) * 4] = [S, 32]',
    );
    expect(() => ropeQkv(randn([5, 32]), tables, cache, { heads: 4 })).toThrow('beyond the 4-position table');
  });
});

describe('ropeQkvAttention', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
    // The fused decode kernel is what GPUs run; it runs on any adapter once the device says it is not a
    // software one (the kernels are the same WGSL, only the choice of variant changes).
    if (gpu) (gpu.caps as { software: boolean }).software = false;
  });
  afterAll(() => gpu?.destroy());

  /**
   * A prefill of `prefill` rows, then one row at a time up to `total`, on `device` and on the CPU: every
   * step's output and the cache rows it wrote must agree.
   */
  async function matchesCpu(device: WebGpuDevice, [H, Hkv, Dh]: number[], maxSeq: number, prefill: number) {
    const total = maxSeq - 2;
    const tables = ropeTables(invFreq(Dh! / 2), maxSeq);
    const gpuTables = { cos: await tables.cos.to(device), sin: await tables.sin.to(device) };
    const caches = [cpu, device].map((d) => new KvCache(d, { maxSeq, kvHeads: Hkv!, headDim: Dh! }));
    const all = randn([total, (H! + 2 * Hkv!) * Dh!], { seed: 7 });
    let stepDispatches = 0; // of the last step
    for (let start = 0; start < total; start = caches[0]!.length) {
      const rows = start === 0 ? prefill : 1;
      const qkv = narrow(all, 0, start, rows);
      const want = ropeQkvAttention(qkv, tables, caches[0]!, { heads: H! }).toArray();
      const onDevice = await qkv.to(device);
      const before = device.stats.dispatches;
      const a = ropeQkvAttention(onDevice, gpuTables, caches[1]!, { heads: H! });
      stepDispatches = device.stats.dispatches - before;
      const got = await a.toArray();
      // f32 dot products of Dh terms and a softmax over at most `total` keys, against the f64 reference:
      // about 1e-6 on outputs of about 1; 2e-5 leaves room for the GPU's exp and summation order.
      expectClose(got, await want, { atol: 2e-5, what: `step at ${start} (${rows} rows)` });
    }
    for (const part of ['k', 'v'] as const) {
      const [want, got] = await Promise.all(caches.map((c) => narrow(c[part], 0, 0, total).toArray()));
      expectClose(got!, want!, { atol: 1e-6, what: `cache ${part}` });
    }
    for (const c of caches) c.dispose();
    return stepDispatches;
  }

  it('runs a decode step as one kernel that matches ropeQkv and attention (short cache: one chunk)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // 4 query heads per kv head: a query head that read kv head h instead of h / 4 would not match.
    expect(await matchesCpu(gpu, [8, 2, 64], 40, 5)).toBe(1); // a decode step: one dispatch
  });

  it('matches with the keys split into chunks and merged (a cache over 256 rows), at every position', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    expect(await matchesCpu(gpu, [4, 4, 16], 300, 1)).toBe(2); // the kernel and the merge
  });

  it('falls back to the two ops where the fused kernel does not apply (Dh not a multiple of 8)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    expect(await matchesCpu(gpu, [2, 1, 4], 12, 3)).toBe(2); // ropeQkv, then attention
  });
});

describe('swigluPacked', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('equals swiglu of the two halves', async () => {
    const x = randn([3, 10], { seed: 4 });
    const gate = narrow(x, 1, 0, 5);
    const up = narrow(x, 1, 5, 5);
    expect(await swigluPacked(x).toArray()).toEqual(await swiglu(gate, up).toArray());
  });

  for (const [rows, f] of [
    [1, 1],
    [3, 257],
    [8, 8192],
  ] as const) {
    it(`GPU matches the CPU reference: [${rows}, 2 * ${f}]`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const x = randn([rows, 2 * f], { seed: f, dtype: 'f32' });
      const got = await swigluPacked(await x.to(gpu)).toArray();
      // silu via WGSL exp (within a few ulp) times up: relative error ~1e-6 (as the swiglu test states).
      expectClose(got, swigluPackedReference(await x.toArray(), f), { atol: 1e-6, rtol: 1e-5 });
    });
  }

  it('rejects an odd last dim', () => {
    expect(() => swigluPacked(randn([2, 3]))).toThrow('swigluPacked: x [2, 3] must have an even last dim');
  });
});
