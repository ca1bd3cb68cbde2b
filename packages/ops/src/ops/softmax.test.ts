import { cpuFloats, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { softmax, softmaxReference } from './softmax.js';

const NEG_INF = Number.NEGATIVE_INFINITY;

/** A causal mask applied to scores: entry (i, j) with j > i becomes -Infinity. */
function causal(scores: Float32Array, n: number): Float32Array {
  const out = scores.slice();
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) out[i * n + j] = NEG_INF;
  return out;
}

describe('softmax on the CPU', () => {
  it('normalises rows, masks -Infinity and zeros fully masked rows', async () => {
    const p = softmax(tensor([1, 2, 3, 0, 0, NEG_INF, NEG_INF, NEG_INF, NEG_INF], [3, 3]));
    expectClose(await p.toArray(), [0.090031, 0.244728, 0.665241, 0.5, 0.5, 0, 0, 0, 0], { atol: 1e-6 });
  });
  it('does not overflow on large logits', async () => {
    const p = softmax(tensor([1000, 1000, -1000], [3]));
    expectClose(await p.toArray(), [0.5, 0.5, 0], { atol: 0 });
  });
});

describe('softmax on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Tolerance: each output is exp(x - max) / sum. WGSL's exp is accurate to 3 + 2|x| ULP (|x - max| stays
  // below ~12 for these inputs where the output is not negligible), and the f32 sum of up to ~500 terms per
  // invocation plus an 8-level tree adds a relative error well below 1e-5 in practice (2^-24 per addition,
  // mostly cancelling): rtol 1e-5. atol 1e-9 covers outputs that are tiny (e^-40 and below).
  const tol = { atol: 1e-9, rtol: 1e-5 };

  async function check(x: Tensor, what: string, gpuDevice: WebGpuDevice): Promise<Float32Array> {
    const n = x.shape[x.shape.length - 1]!;
    const gx = await x.to(gpuDevice);
    const y = softmax(gx);
    const got = await y.toArray();
    expectClose(got, softmaxReference(cpuFloats(x), n), { ...tol, what });
    gx.dispose();
    y.dispose();
    return got;
  }

  const shapes: number[][] = [
    [1, 1],
    [3, 7],
    [5, 257],
    [2, 3, 100],
    [64, 1031],
    [2, 128256],
  ];
  for (const shape of shapes) {
    it(`random [${shape}]`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const x = randn(shape, { seed: shape.length * 31 + shape[shape.length - 1]!, std: 3 });
      const got = await check(x, `[${shape}]`, gpu);
      const n = shape[shape.length - 1]!;
      const firstRowSum = got.subarray(0, n).reduce((a, b) => a + b, 0);
      expect(Math.abs(firstRowSum - 1)).toBeLessThan(1e-5);
    });
  }

  it('causal mask, a fully masked row, rows of length 1, large and bf16 inputs', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const scores = cpuFloats(randn([11, 11], { seed: 3, std: 2 }));
    await check(tensor(causal(scores, 11), [11, 11]), 'causal', gpu);
    const masked = new Float32Array([NEG_INF, NEG_INF, NEG_INF, 1, NEG_INF, 2]);
    const got = await check(tensor(masked, [2, 3]), 'fully masked', gpu);
    expect([...got.subarray(0, 3)]).toEqual([0, 0, 0]);
    const single = await check(tensor([5, NEG_INF, -1e30], [3, 1]), 'length 1', gpu);
    expect([...single]).toEqual([1, 0, 1]);
    await check(tensor([3e38, -3e38, 3e38, 0], [4]), 'huge', gpu);
    await check(randn([7, 300], { seed: 4, dtype: 'bf16' }), 'bf16', gpu);
  });
});
