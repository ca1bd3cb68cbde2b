import { cpuFloats, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { layernorm, layernormReference } from './layernorm.js';

describe('layernorm on the CPU', () => {
  it('centres, scales to unit variance, then applies weight and bias', async () => {
    // Row [1, 3]: mean 2, variance 1 -> [-1, 1]; row [2, 2]: variance 0 -> [0, 0] (eps keeps 1/sqrt finite).
    const y = layernorm(tensor([1, 3, 2, 2], [2, 2]), tensor([1, 2], [2]), tensor([0, 1], [2]), 1e-12);
    expectClose(await y.toArray(), [-1, 3, 0, 1], { atol: 1e-5 });
  });

  it('matches PyTorch on a small row (biased variance, eps inside the sqrt)', async () => {
    // torch.nn.functional.layer_norm(torch.tensor([[1., 2., 4.]]), (3,), eps=1e-5) = [-1.0690, -0.2673, 1.3363]
    const y = layernorm(tensor([1, 2, 4], [1, 3]), tensor([1, 1, 1], [3]), tensor([0, 0, 0], [3]));
    expectClose(await y.toArray(), [-1.069042, -0.267261, 1.336303], { atol: 1e-5 });
  });

  it('rejects a weight or bias that is not [D], naming the shapes', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3] as number[]);
    const w = tensor([1, 2, 3], [3] as number[]);
    const b = tensor([1, 2], [2] as number[]);
    expect(() => layernorm(x, w, b)).toThrow(
      'layernorm: weight [3] and bias [2] must be [D] for x [2, 3] (D = 3)',
    );
  });

  it('keeps mis-shaped weights compile errors where dims are literal', () => {
    const x = tensor(new Float32Array(6), [2, 3]);
    const ok = tensor([1, 1, 1], [3]);
    // @ts-expect-error the weight is [2] but x's last dim is 3
    expect(() => layernorm(x, tensor([1, 1], [2]), ok)).toThrow('layernorm: weight [2]');
    // @ts-expect-error the bias is [2] but x's last dim is 3
    expect(() => layernorm(x, ok, tensor([1, 1], [2]))).toThrow('bias [2]');
  });
});

describe('layernorm on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  async function compare(x: Tensor, w: Tensor, b: Tensor, tol: { atol: number; rtol: number }) {
    if (!gpu) throw new Error('no device');
    const inputs = await Promise.all([x.to(gpu), w.to(gpu), b.to(gpu)]);
    const [gx, gw, gb] = inputs;
    const y = layernorm(gx!, gw!, gb!, 1e-5);
    expect(y.shape).toEqual(x.shape);
    const expected = layernormReference(cpuFloats(x), cpuFloats(w), cpuFloats(b), 1e-5);
    expectClose(await y.toArray(), expected, tol);
    for (const t of [...inputs, y]) t.dispose();
  }

  // Tolerance: the GPU sums in f32 (strided partial sums, then a tree), the reference in f64. The mean and
  // the variance are then off by about (D/64 + 6) f32 ULPs at most (relative 1e-6 for D = 8193), the
  // normalised values (|v| < 5 here) by about as much, and weight * v + bias (|out| < 10) adds one rounding:
  // atol 1e-5 covers it with room (lavapipe: 4.8e-7 at most); rtol 1e-5 for the larger outputs.
  const tol = { atol: 1e-5, rtol: 1e-5 };
  const shapes: number[][] = [
    [1, 1],
    [3, 7],
    [5, 257],
    [2, 3, 64],
    [7, 768],
    [1, 4099],
    [3, 8193],
  ];
  for (const shape of shapes) {
    for (const wtype of ['f32', 'bf16', 'f16'] as const) {
      it(`x [${shape}], ${wtype} weight and bias`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const d = shape[shape.length - 1]!;
        const x = randn(shape, { seed: d, std: 2, mean: 0.5 });
        const w = randn([d], { seed: 5, mean: 1, std: 0.1, dtype: wtype });
        const b = randn([d], { seed: 6, std: 0.1, dtype: wtype });
        await compare(x, w, b, tol);
      });
    }
  }

  it('keeps the variance of rows with a large common offset (no E[x^2] - E[x]^2 cancellation)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // Values 1000 + N(0, 1): f32 resolves them to 6e-5, so the normalised outputs agree to about 1e-4;
    // the one-pass formula would lose the variance entirely (1000^2 has no digits left for 1). Lavapipe: 3.7e-5.
    const x = randn([4, 1000], { seed: 9, mean: 1000, std: 1 });
    const ones = tensor(new Float32Array(1000).fill(1), [1000]);
    const zeros = tensor(new Float32Array(1000), [1000]);
    await compare(x, ones, zeros, { atol: 2e-4, rtol: 0 });
  });

  it('gives the bias for a constant row (variance 0, eps keeps it finite)', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const x = await tensor(new Float32Array(300).fill(3), [1, 300]).to(gpu);
    const w = await tensor(new Float32Array(300).fill(2), [300]).to(gpu);
    const b = await tensor(new Float32Array(300).fill(0.5), [300]).to(gpu);
    const y = layernorm(x, w, b);
    expect((await y.toArray()).every((v) => v === 0.5)).toBe(true);
    for (const t of [x, w, b, y]) t.dispose();
  });
});
