import { cpuFloats, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { testDevice } from '../testing.js';
import { argmax, argmaxReference, orderKey, topk, topkReference } from './reduce.js';

const { NaN: nan, NEGATIVE_INFINITY: ninf, POSITIVE_INFINITY: inf } = Number;

describe('argmax / topk on the CPU', () => {
  it('order: larger first, +0 above -0, NaN below -Infinity', () => {
    const sorted = [inf, 1, 0, -0, -1e-45, -1, ninf, nan].map(orderKey);
    expect(sorted).toEqual([...sorted].sort((a, b) => b - a));
    expect(new Set(sorted).size).toBe(sorted.length);
  });
  it('argmax: ties go to the lowest index, NaN is skipped, a scalar per row', async () => {
    const ids = argmax(tensor([1, 3, 3, nan, 2, nan, nan, nan, nan], [3, 3]));
    expect(ids.shape).toEqual([3]);
    expect([...(await ids.toArray())]).toEqual([1, 1, 0]);
    expect(argmax(tensor([4, 5], [2])).shape).toEqual([]);
  });
  it('topk: sorted descending, ties by index', async () => {
    const { values, indices } = topk(tensor([0.5, 3, 2, 3, nan, -0, 0], [1, 7]), 6);
    expect(values.shape).toEqual([1, 6]);
    expect([...(await values.toArray())]).toEqual([3, 3, 2, 0.5, 0, -0]);
    expect([...(await indices.toArray())]).toEqual([1, 3, 2, 0, 6, 5]);
  });
  it('rejects k outside [1, min(N, 1024)] and empty rows', () => {
    const x = tensor([1, 2, 3], [1, 3]);
    expect(() => topk(x, 4)).toThrow('topk: k = 4 must be an integer in [1, min(N, 1024)] for x [1, 3]');
    expect(() => topk(x, 0)).toThrow('topk: k = 0');
    expect(() => argmax(tensor([], [2, 0]))).toThrow('argmax: x [2, 0] needs a last dim of at least 1');
  });
});

describe('argmax / topk on WebGPU match the CPU reference exactly', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Exact: both sides select stored values by the same integer order; nothing is computed.
  async function checkArgmax(x: Tensor, device: WebGpuDevice): Promise<Int32Array> {
    const gx = await x.to(device);
    const ids = argmax(gx);
    expect(ids.shape).toEqual(x.shape.slice(0, -1));
    const got = await ids.toArray();
    expect([...got]).toEqual([...argmaxReference(cpuFloats(x), x.shape[x.shape.length - 1]!)]);
    gx.dispose();
    ids.dispose();
    return got;
  }
  async function checkTopk(x: Tensor, k: number, device: WebGpuDevice): Promise<void> {
    const gx = await x.to(device);
    const { values, indices } = topk(gx, k);
    const want = topkReference(cpuFloats(x), x.shape[x.shape.length - 1]!, k);
    expect(values.shape).toEqual([...x.shape.slice(0, -1), k]);
    expect([...(await indices.toArray())]).toEqual([...want.indices]);
    expect([...(await values.toArray())]).toEqual([...want.values]);
    for (const t of [gx, values, indices]) t.dispose();
  }

  const argmaxShapes: number[][] = [[1], [1, 1], [3, 7], [5, 257], [2, 3, 100], [64, 1031], [3, 128256]];
  for (const shape of argmaxShapes) {
    it(`argmax [${shape}]`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      await checkArgmax(randn(shape, { seed: shape.reduce((a, b) => a * b, 1) }), gpu);
    });
  }

  it('argmax over 128256 logits with ties, NaN and -Infinity', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const n = 128256;
    const rows = cpuFloats(randn([4, n], { seed: 9 }));
    // Row 0: the max appears at 100000, 5001 and 77 (77 wins; the three sit in different invocations' slices).
    for (const i of [100000, 5001, 77]) rows[i] = 10;
    // Row 1: all equal -> 0. Row 2: NaN everywhere but one -Infinity and the last element. Row 3: all NaN.
    rows.fill(0.5, n, 2 * n);
    rows.fill(nan, 2 * n, 4 * n);
    rows[2 * n + 3] = ninf;
    rows[3 * n - 1] = -1e30;
    const got = await checkArgmax(tensor(rows, [4, n]), gpu);
    expect([...got]).toEqual([77, 0, n - 1, 0]);
    // bf16 logits: many exact ties in every row.
    await checkArgmax(randn([5, 4099], { seed: 10, dtype: 'bf16' }), gpu);
  });

  const topkCases: [number[], number][] = [
    [[1], 1],
    [[7], 7],
    [[3, 257], 5],
    [[4, 1031], 64],
    [[1, 5000], 1000],
    [[2, 128256], 50],
    [[1, 128256], 256],
    [[1, 128256], 1024],
  ];
  for (const [shape, k] of topkCases) {
    it(`topk [${shape}], k = ${k}`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      await checkTopk(randn(shape, { seed: k + shape.length }), k, gpu);
    });
  }

  it('topk with ties (bf16), NaN, -0 and infinities', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await checkTopk(randn([3, 4099], { seed: 12, dtype: 'bf16' }), 100, gpu);
    const special = cpuFloats(randn([2, 3000], { seed: 13 }));
    special.set([nan, -0, 0, inf, ninf, nan, 7, 7], 1500);
    special.fill(nan, 3000, 5990); // row 1 is mostly NaN: the NaNs come after its 10 numbers, by index
    await checkTopk(tensor(special, [2, 3000]), 40, gpu);
    // Constant rows: every key ties, so the selection runs down to the index digits; k = N keeps all.
    const constant = new Float32Array(2 * 3000).fill(-0.25);
    constant.fill(0, 3000);
    constant[4500] = -0; // +0 ranks above -0
    await checkTopk(tensor(constant, [2, 3000]), 1024, gpu);
    await checkTopk(randn([5, 300], { seed: 14, dtype: 'bf16' }), 300, gpu);
  });
});
