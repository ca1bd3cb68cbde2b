import { cpuFloats, randn, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import type { RmsnormLayout } from '../gpu/variants.js';
import { expectClose, testDevice } from '../testing.js';
import { rmsnorm, rmsnormReference, rmsnormWith } from './rmsnorm.js';

describe('rmsnorm on the CPU', () => {
  it('normalises each row and multiplies by the weight', async () => {
    const y = rmsnorm(tensor([3, 4, 0, 2], [2, 2]), tensor([1, 2], [2]), 1e-5);
    expectClose(await y.toArray(), [0.848528, 2.262742, 0, 2.82842], { atol: 1e-5 });
  });
  it('rejects a weight that is not [D], naming both shapes', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3] as number[]);
    const w = tensor([1, 2], [2] as number[]);
    expect(() => rmsnorm(x, w)).toThrow('rmsnorm: weight [2] must be [D] for x [2, 3] (D = 3)');
  });
});

describe('rmsnorm on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Tolerance: the GPU sums squares in f32 (a strided sum of D / W terms per invocation, W the workgroup,
  // then log2 W more additions), the reference in f64. The sum of positive squares is off by about
  // sqrt(D / W) f32 ULPs (rounding errors of random sign): 32 ULPs (2e-6 relative) for the worst case here
  // (D = 8193, W = 8). sqrt halves that, and the division and the weight add a few ULPs, so the outputs (of
  // order 1 to 10) agree to about 1e-6 relative: rtol 1e-5 leaves a factor of 10 for unlucky rounding, and
  // atol 1e-6 covers outputs near zero.
  const tol = { atol: 1e-6, rtol: 1e-5 };
  // Every layout on every adapter: the shared-memory tree of GPUs (64 and 256), the subgroup of software ones.
  const layouts = (device: WebGpuDevice): (RmsnormLayout | undefined)[] => [
    undefined, // the adapter's own
    { workgroup: 64, lanes: false },
    { workgroup: 256, lanes: false },
    ...(device.caps.subgroupMinSize >= 8 ? [{ workgroup: 8, lanes: true }] : []),
  ];
  const shapes: number[][] = [
    [1, 1],
    [3, 7],
    [5, 257],
    [2, 3, 64],
    [7, 2048],
    [1, 4099],
    [64, 4096],
    [3, 8193],
  ];
  for (const shape of shapes) {
    for (const wtype of ['f32', 'bf16', 'f16'] as const) {
      it(`x [${shape}], ${wtype} weight`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const d = shape[shape.length - 1]!;
        const x = randn(shape, { seed: d, std: 3 });
        const w = randn([d], { seed: 5, mean: 1, std: 0.1, dtype: wtype });
        const [gx, gw] = await Promise.all([x.to(gpu), w.to(gpu)]);
        const expected = rmsnormReference(cpuFloats(x), cpuFloats(w), 1e-5);
        for (const layout of layouts(gpu)) {
          const y = rmsnormWith(gx, gw, 1e-5, {}, layout);
          expect(y.shape).toEqual(shape);
          expectClose(await y.toArray(), expected, { ...tol, what: JSON.stringify(layout) });
          y.dispose();
        }
        for (const t of [gx, gw]) t.dispose();
      });
    }
  }

  it('keeps eps in an all-zero row (no division by zero)', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const x = await tensor(new Float32Array(300), [1, 300]).to(gpu);
    const w = await tensor(new Float32Array(300).fill(1), [300]).to(gpu);
    const y = rmsnorm(x, w);
    expect((await y.toArray()).every((v) => v === 0)).toBe(true);
    for (const t of [x, w, y]) t.dispose();
  });
});
