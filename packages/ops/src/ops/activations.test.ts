import { cpuFloats, randn, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { activationReference, gelu, scale, silu, swiglu } from './activations.js';

describe('activations on the CPU', () => {
  it('match their definitions at a few points', async () => {
    const x = tensor([-1, 0, 1, -100, 100], [5]);
    expectClose(await silu(x).toArray(), [-0.268941, 0, 0.731059, -3.72e-42, 100], { atol: 1e-6 });
    expectClose(await gelu(x).toArray(), [-0.158808, 0, 0.841192, -0, 100], { atol: 1e-6 });
    expectClose(await swiglu(tensor([1, -2], [2]), tensor([3, 4], [2])).toArray(), [2.193176, -0.953623], {
      atol: 1e-6,
    });
    expect([...(await scale(x, 0.5).toArray())]).toEqual([-0.5, 0, 0.5, -50, 50]);
  });
  it('swiglu rejects different shapes, naming both', () => {
    const g = tensor([1, 2, 3, 4], [2, 2] as number[]);
    const u = tensor([1, 2, 3, 4], [4] as number[]);
    expect(() => swiglu(g, u)).toThrow('swiglu: gate [2, 2] and up [4] must have the same shape');
  });
});

describe('activations on WebGPU match the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Tolerance: the reference is f64 rounded once. WGSL's exp is accurate to 3 + 2|x| ULP, so for the inputs
  // here (|x| <= ~15 where the result is not saturated) sigmoid carries a relative error below ~2e-6, plus a
  // few roundings of the f32 products: rtol 1e-5. atol 1e-6 covers results near zero (silu(x) ~ 0 at x ~ 0
  // and for large negative x, where a tiny absolute error is a large relative one).
  const tol = { atol: 1e-6, rtol: 1e-5 };
  const sizes = [1, 7, 257, 1031, 65537];
  for (const n of sizes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      it(`n = ${n}, ${dtype} input`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const a = randn([n], { seed: n, std: 4, dtype });
        const b = randn([n], { seed: n + 1, dtype });
        const [ga, gb] = await Promise.all([a.to(gpu), b.to(gpu)]);
        const af = cpuFloats(a);
        const bf = cpuFloats(b);
        const outs = [silu(ga), gelu(ga), swiglu(ga, gb), scale(ga, 0.0883883)];
        expectClose(await outs[0]!.toArray(), activationReference('silu', af), { ...tol, what: 'silu' });
        expectClose(await outs[1]!.toArray(), activationReference('gelu', af), { ...tol, what: 'gelu' });
        expectClose(await outs[2]!.toArray(), activationReference('swiglu', af, bf), {
          ...tol,
          what: 'swiglu',
        });
        // Exact: one f32 multiply of the same two f32 values rounds the same everywhere.
        expectClose(await outs[3]!.toArray(), activationReference('scale', af, undefined, 0.0883883), {
          atol: 0,
          what: 'scale',
        });
        for (const t of [ga, gb, ...outs]) t.dispose();
      });
    }
  }

  it('saturates without NaN at extreme inputs', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const values = [-1e30, -1e4, -100, -20, -1e-30, 0, 1e-30, 20, 100, 1e4, 1e30];
    const x = await tensor(values, [values.length]).to(gpu);
    const f = new Float32Array(values);
    for (const [kind, y] of [
      ['silu', silu(x)],
      ['gelu', gelu(x)],
    ] as const) {
      expectClose(await y.toArray(), activationReference(kind, f), { ...tol, what: kind });
      y.dispose();
    }
    x.dispose();
  });
});
