// The tiled GEMM in half precision (`GemmVariant.f16`): GPUs run it for f16 x on adapters with shader-f16;
// forced here on any adapter that has the feature (lavapipe does).
//
// Tolerance, per output: x is f16 and bf16/f16 weights convert to f16 exactly (bf16's 8 significant bits fit
// f16's 11; the values here are far from f16's range limits), f32 weights round by at most one f16 step
// (2^-10 relative: WGSL lets f16() round to either neighbour). Each of a K tile's 16 fused multiply-adds
// rounds its partial sum once, by at most 2^-10 of it, and a partial sum is at most the sum of the tile's
// |x w|, so the error is at most (16 + 1) 2^-10 sum_k |x_k w_k| (the 1 for the weights' rounding); adding the
// tiles in f32 adds the f32 error of `linear.test.ts`, far below that. A wrong index, a dropped tile or a
// lost column pair is off by the order of sum_k |x_k w_k| itself.
import { cpuFloats, randn, type Tensor, tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { type GemmVariant, gemmVariant } from '../gpu/variants.js';
import { cast } from './layout.js';
import { linear, linearReference, linearWith } from './linear.js';
import { rmsnorm } from './rmsnorm.js';

const F16_TILED: GemmVariant = { kind: 'tiled', tileM: 4, tileN: 4, groupN: 16, groupM: 16, f16: true };
const F16_STEP = 2 ** -10;

/** Checks `got` against the f64 product of the stored x and W, within the bound above (per output). */
function expectWithinF16Bound(got: Float32Array, x: Tensor, w: Tensor, what: string): void {
  const [m, k] = x.shape as [number, number];
  const n = w.shape[0]!;
  const xs = cpuFloats(x);
  const ws = cpuFloats(w);
  const want = linearReference(xs, ws, m, n, k);
  const magnitude = linearReference(xs.map(Math.abs), ws.map(Math.abs), m, n, k);
  for (let i = 0; i < want.length; i++) {
    const bound = 17 * F16_STEP * magnitude[i]! + 2 ** -24 * k;
    if (!(Math.abs(got[i]! - want[i]!) <= bound)) {
      throw new Error(
        `${what}: output ${i} is ${got[i]}, expected ${want[i]} within ${bound} (sum |x w| = ${magnitude[i]})`,
      );
    }
  }
}

describe('linear with f16 arithmetic (the tiled kernel in half precision)', () => {
  let gpu: WebGpuDevice | undefined;
  useTestDevices([{}], (d) => ([gpu] = d));

  // [M, N, K]: 1; odd and prime sizes; K not a multiple of 8 (element loads) or of the 16-step tile; N not
  // a multiple of the 64-column tile or even (a lone column in the last pair); K = 8192 (512 tiles).
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [9, 5, 40],
    [33, 71, 31],
    [70, 131, 96],
    [17, 64, 8192],
  ];
  for (const [m, n, k] of shapes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      it(`[${m}, ${k}] x [${n}, ${k}] ${dtype} W`, async ({ skip }) => {
        if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
        const x = randn([m, k], { seed: m + k, dtype: 'f16' });
        const w = randn([n, k], { seed: n + k, dtype });
        const [gx, gw] = [await x.to(gpu), await w.to(gpu)];
        const y = linearWith(gx, gw, { gemm: F16_TILED, gemvMaxRows: 0 });
        expectWithinF16Bound(await y.toArray(), x, w, `f16 tiled ${m}x${n}x${k} ${dtype} W`);
        for (const t of [gx, gw, y]) t.dispose();
      });
    }
  }

  // 1 + 2^-12 is a quarter of an f16 step above 1: a sum in f16 cannot hold it, one in f32 does. This
  // tells the f16 kernel from an f32 one, which the bound above would accept.
  it('sums in f16 within a tile, and in f32 across tiles', async ({ skip }) => {
    if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
    const k = 32; // two tiles: 1 + 2^-12 in the first, 2^-12 alone in the second
    const xs = new Float32Array(k);
    xs[0] = 1;
    xs[1] = 2 ** -12;
    xs[16] = 2 ** -12;
    const x = await tensor(xs, [1, k]).to(gpu);
    const w = await tensor(new Float32Array(k).fill(1), [1, k]).to(gpu);
    const f16 = await linearWith(x, w, { gemm: F16_TILED, gemvMaxRows: 0 }).toArray();
    const { f16: _, ...f32Tiled } = F16_TILED;
    const f32 = await linearWith(x, w, { gemm: f32Tiled, gemvMaxRows: 0 }).toArray();
    expect(f32[0]).toBe(1 + 2 ** -11);
    // The first tile's sum is 1 or its upper neighbour (1 + 2^-10); the second tile's 2^-12 survives in f32.
    expect([1 + 2 ** -12, 1 + 2 ** -10 + 2 ** -12]).toContain(f16[0]);
  });

  it('is what GPUs run for f16 x, never for f32 x or on software adapters', () => {
    const caps = { software: false, f16: true, subgroups: true, subgroupMinSize: 32 };
    const like = (over: object) => ({ ...caps, ...over }) as Parameters<typeof gemmVariant>[0];
    expect(gemmVariant(like({}), 128, true, 'f16')).toEqual(F16_TILED);
    expect(gemmVariant(like({}), 128, true, 'f32').f16).toBeUndefined();
    expect(gemmVariant(like({}), 128, true, 'bf16').f16).toBeUndefined();
    expect(gemmVariant(like({ f16: false }), 128, true, 'f16').f16).toBeUndefined();
    expect(gemmVariant(like({ software: true, subgroupMinSize: 8 }), 128, true, 'f16').kind).toBe('register');
  });

  // An RMSNorm that runs as its own op (prefill on GPUs) writes the result's dtype: with `out: 'f16'` the
  // product reads an f16 x and multiplies in half precision. Against the bound above applied to the
  // normalised x in f16 (the CPU's rmsnorm rounded as core rounds; WGSL may round the other way, one f16
  // step of x: within the 17), plus the result's own rounding to f16 (2^-10 of it).
  it("takes a separate RMSNorm's f16 output with out: 'f16' on GPUs", async ({ skip }) => {
    if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
    const [m, n, k] = [12, 37, 64];
    const x = randn([m, k], { seed: 8 });
    const g = randn([k], { seed: 9 });
    const w = randn([n, k], { seed: 10, dtype: 'bf16' });
    const caps = gpu.caps as { software: boolean };
    const was = caps.software;
    caps.software = false;
    try {
      const [gx, gg, gw] = [await x.to(gpu), await g.to(gpu), await w.to(gpu)];
      const y = linear(gx, gw, { norm: { weight: gg, eps: 1e-5 }, out: 'f16' });
      expect(y.dtype).toBe('f16');
      const got = await y.toArray();
      const normed = rmsnorm(x, g, 1e-5, { out: 'f16' });
      const want = await linear(normed, w).toArray();
      const magnitude = linearReference(cpuFloats(normed).map(Math.abs), cpuFloats(w).map(Math.abs), m, n, k);
      for (let i = 0; i < want.length; i++) {
        const bound = 18 * F16_STEP * magnitude[i]! + F16_STEP * Math.abs(want[i]!) + 2 ** -24 * k;
        expect(Math.abs(got[i]! - want[i]!), `output ${i}`).toBeLessThanOrEqual(bound);
      }
      // The CPU rounds the normalised x the same way (the op-by-op definition).
      const cpuY = await linear(x, w, { norm: { weight: g, eps: 1e-5 }, out: 'f16' }).toArray();
      const exact = linearReference(cpuFloats(normed), cpuFloats(w), m, n, k);
      for (let i = 0; i < exact.length; i++) {
        expect(Math.abs(cpuY[i]! - exact[i]!), `cpu output ${i}`).toBeLessThanOrEqual(
          F16_STEP * Math.abs(exact[i]!),
        );
      }
      for (const t of [gx, gg, gw, y]) t.dispose();
    } finally {
      caps.software = was;
    }
  });

  it('refuses the variant on a device without shader-f16, naming the op', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const x = await randn([9, 8]).to(gpu);
    const w = await randn([4, 8]).to(gpu);
    const caps = gpu.caps as { f16: boolean };
    const had = caps.f16;
    caps.f16 = false;
    try {
      expect(() => linearWith(x, w, { gemm: F16_TILED, gemvMaxRows: 0 })).toThrow(
        'linear: the f16 GEMM variant needs the shader-f16 feature',
      );
    } finally {
      caps.f16 = had;
    }
    for (const t of [x, w]) t.dispose();
  });

  // `linear` itself on a device that says it is not software: prefill rows of f16 x take the f16 kernel
  // (the sum of the test above shows it), f32 x the f32 one.
  it('runs for f16 x by default on GPUs', async ({ skip }) => {
    if (!gpu?.caps.f16) return skip('no WebGPU adapter with shader-f16');
    const row = new Float32Array(16);
    row[0] = 1;
    row[1] = 2 ** -12;
    const rows = 9; // more than the GEMV's 8
    const xs = new Float32Array(rows * 16);
    for (let i = 0; i < rows; i++) xs.set(row, i * 16);
    const w = await tensor(new Float32Array(16).fill(1), [1, 16]).to(gpu);
    const caps = gpu.caps as { software: boolean };
    const was = caps.software;
    caps.software = false;
    try {
      for (const dtype of ['f16', 'f32'] as const) {
        const x = await tensor(xs, [rows, 16]).to(gpu);
        const x16 = dtype === 'f16' ? cast(x, 'f16') : x;
        const y = await linear(x16, w).toArray();
        const sums = dtype === 'f16' ? [1, 1 + 2 ** -10] : [1 + 2 ** -12];
        for (const v of y) expect(sums, dtype).toContain(v);
        for (const t of new Set([x, x16])) t.dispose();
      }
    } finally {
      caps.software = was;
    }
    w.dispose();
  });
});
