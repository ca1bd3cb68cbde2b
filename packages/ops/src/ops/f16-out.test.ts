// f16 outputs (`{ out: 'f16' }`) of the ops the Llama forward pass uses: the kernel computes in f32 and
// rounds once on store, the CPU reference computes in f32 and rounds with core's f32 -> f16, so the two
// agree to one f16 step. Tolerance: rtol 1e-3 >= 2^-10 (one f16 ulp, relative: the f32 results may sit on
// either side of a rounding midpoint, and WGSL lets f16() round to either neighbour) plus each op's own
// f32 atol (f16 subnormals near 0 are spaced 6e-8, well below it).
import { cpu, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { attention } from './attention.js';
import { add, mul } from './binary.js';
import { embedding } from './embedding.js';
import { KvCache } from './kv-cache.js';
import { cast } from './layout.js';
import { linear } from './linear.js';
import { argmax } from './reduce.js';
import { rmsnorm } from './rmsnorm.js';
import { ropeTables } from './rope.js';
import { ropeQkv } from './rope-qkv.js';
import { swigluPacked } from './swiglu-packed.js';

const RTOL = 1e-3;
const invFreq = (half: number) => Float32Array.from({ length: half }, (_, i) => 10000 ** (-i / half));

describe("ops with { out: 'f16' }", () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  /** Checks that `got` (GPU) and `want` (CPU) are f16 and agree within `atol + RTOL |want|`. */
  async function expectF16(got: Tensor, want: Tensor, atol: number, what: string): Promise<void> {
    expect(got.dtype, what).toBe('f16');
    expect(want.dtype, what).toBe('f16');
    expectClose(await got.toArray(), await want.toArray(), { atol, rtol: RTOL, what });
  }

  it('runs on the test adapter (lavapipe offers shader-f16)', ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    if (!gpu.caps.f16) return skip('adapter without shader-f16');
    expect(gpu.caps.f16).toBe(true);
  });

  // Odd element counts: neighbouring invocations write the two halves of one 32-bit word.
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [13, 257],
  ] as const) {
    it(`add / mul [${rows}, ${cols}]`, async ({ skip }) => {
      if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
      const a = randn([rows, cols], { seed: 1 });
      const b = randn([cols], { seed: 2 });
      const [ga, gb] = [await a.to(gpu), await b.to(gpu)];
      // One f32 add or multiply, correctly rounded on both sides: the f16 rounding is the only difference.
      await expectF16(add(ga, gb, { out: 'f16' }), add(a, b, { out: 'f16' }), 0, 'add');
      await expectF16(mul(ga, gb, { out: 'f16' }), mul(a, b, { out: 'f16' }), 0, 'mul');
    });

    it(`rmsnorm, swigluPacked [${rows}, ${2 * cols}]`, async ({ skip }) => {
      if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
      const x = randn([rows, 2 * cols], { seed: 3 });
      const w = randn([2 * cols], { seed: 4, dtype: 'bf16' });
      const [gx, gw] = [await x.to(gpu), await w.to(gpu)];
      // rmsnorm.test allows 1e-5 (f32 sum order); swiglu's exp differs by a few f32 ulps.
      await expectF16(
        rmsnorm(gx, gw, 1e-5, { out: 'f16' }),
        rmsnorm(x, w, 1e-5, { out: 'f16' }),
        1e-5,
        'rmsnorm',
      );
      await expectF16(swigluPacked(gx, { out: 'f16' }), swigluPacked(x, { out: 'f16' }), 1e-5, 'swiglu');
    });
  }

  it('embedding (bf16 table) and argmax of an f16 input', async ({ skip }) => {
    if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
    const table = randn([11, 13], { seed: 5, dtype: 'bf16' });
    const ids = tensor([3, 0, 10, 3, 7], [5], { dtype: 'i32' });
    const got = embedding(ids, await table.to(gpu), { out: 'f16' });
    // A lookup: bf16 -> f32 is exact, so both sides round the same f32 value (atol 0).
    await expectF16(got, embedding(ids, table, { out: 'f16' }), 0, 'embedding');
    // argmax reads f16 through the loader: it must pick the same ids as the CPU on the same f16 values.
    expect([...(await argmax(got).toArray())]).toEqual([
      ...(await argmax(embedding(ids, table, { out: 'f16' })).toArray()),
    ]);
  });

  it('ropeQkv writes an f16 q and keeps the f32 cache', async ({ skip }) => {
    if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
    const [S, H, Hkv, Dh] = [7, 4, 2, 16];
    const qkv = randn([S, (H + 2 * Hkv) * Dh], { seed: 6 });
    const cpuCache = new KvCache(cpu, { maxSeq: 32, kvHeads: Hkv, headDim: Dh });
    const gpuCache = new KvCache(gpu, { maxSeq: 32, kvHeads: Hkv, headDim: Dh });
    const q = ropeQkv(qkv, ropeTables(invFreq(Dh / 2), 32), cpuCache, { heads: H, out: 'f16' });
    const gq = ropeQkv(await cast(qkv, 'f16').to(gpu), ropeTables(invFreq(Dh / 2), 32, gpu), gpuCache, {
      heads: H,
      out: 'f16',
    });
    expect(gpuCache.k.dtype).toBe('f32');
    // The GPU read an f16 qkv: its inputs differ from the CPU's by up to 2^-11 relative (|x| <= ~5, so
    // 2.5e-3 absolute after a rotation that mixes two of them), then rope-qkv.test's 2e-6.
    await expectF16(gq, q, 5e-3, 'q');
    gpuCache.dispose();
  });

  for (const keysPerWorkgroup of [undefined, 64]) {
    it(`attention with an f16 q and f16 out (keys per workgroup: ${keysPerWorkgroup ?? 'default'})`, async ({
      skip,
    }) => {
      if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
      const [S, T, H, Hkv, Dh] = [3, 150, 4, 2, 16];
      const q = cast(randn([S, H, Dh], { seed: 7 }), 'f16');
      const k = randn([T, Hkv, Dh], { seed: 8 });
      const v = randn([T, Hkv, Dh], { seed: 9 });
      const o = { offset: T - S, out: 'f16' as const, keysPerWorkgroup };
      const got = attention(await q.to(gpu), await k.to(gpu), await v.to(gpu), o);
      // attention.test's f32 tolerance is 2e-5 (exp and sum order); both sides read the same f16 q.
      await expectF16(got, attention(q, k, v, o), 2e-5, 'attention');
    });
  }

  for (const [m, k, n] of [
    [1, 64, 33],
    [5, 40, 17],
    [20, 64, 70],
  ] as const) {
    it(`linear [${m}, ${k}] f16 x @ [${n}, ${k}] bf16 W^T -> f16`, async ({ skip }) => {
      if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
      const x = cast(randn([m, k], { seed: m }), 'f16');
      const w = randn([n, k], { seed: n, dtype: 'bf16' });
      const got = linear(await x.to(gpu), await w.to(gpu), { out: 'f16' });
      // linear.test allows 1e-4 * sqrt(K) for f32 sum order; sums here reach ~|10|.
      await expectF16(got, linear(x, w, { out: 'f16' }), 1e-4 * Math.sqrt(k), 'linear');
      // An f16 x with an f32 result equals the f32 path on the widened x.
      expectClose(await linear(await x.to(gpu), await w.to(gpu)).toArray(), await linear(x, w).toArray(), {
        atol: 1e-4 * Math.sqrt(k),
        what: 'linear f16 x -> f32',
      });
    });
  }

  it('f16 output on an adapter without shader-f16 is an error naming the op', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const plain = await testDevice({ f16: false });
    if (!plain) return skip('no second device');
    try {
      const x = await randn([2, 4]).to(plain);
      expect(() => add(x, x, { out: 'f16' })).toThrow(/add.*shader-f16/);
      expect(() => linear(x, x, { out: 'f16' })).toThrow(/linear.*shader-f16/);
    } finally {
      plain.destroy();
    }
  });
});
