import { cpuFloats, randn, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { type GemmVariant, NAIVE_GEMM } from '../gpu/variants.js';
import { expectClose, testDevice } from '../testing.js';
import { matmul, matmulReference, matmulWith } from './matmul.js';

/**
 * Tolerance against the f64 reference for sums of K products of N(0, 1) values: f32 summation rounds each
 * of K partial sums (of size about sqrt(K)) by up to 2^-24, a random walk of about 2^-24 * K in all; we
 * allow 4x that, plus an rtol for the final rounding of both sides.
 */
const tolerance = (k: number) => ({ atol: 4 * 2 ** -24 * k + 1e-30, rtol: 2 ** -22 });

async function check(
  gpu: WebGpuDevice,
  aShape: number[],
  bShape: number[],
  dtype: 'f32' | 'bf16' | 'f16',
  variant?: GemmVariant,
) {
  const a = randn(aShape, { seed: aShape.reduce((s, d) => s * 31 + d, 1) });
  const b = randn(bShape, { seed: bShape.reduce((s, d) => s * 17 + d, 2), dtype });
  const [ga, gb] = await Promise.all([a.to(gpu), b.to(gpu)]);
  const y = matmulWith(ga, gb, variant);
  const [m, k] = aShape.slice(-2) as [number, number];
  const n = bShape[bShape.length - 1]!;
  const batches = aShape.slice(0, -2).reduce((s, d) => s * d, 1);
  const expected = matmulReference(cpuFloats(a), cpuFloats(b), {
    batches,
    m,
    k,
    n,
    bBatched: bShape.length > 2,
  });
  expect(y.shape).toEqual([...aShape.slice(0, -2), m, n]);
  expectClose(await y.toArray(), expected, {
    ...tolerance(k),
    what: `matmul [${aShape}] x [${bShape}] ${dtype} ${variant?.kind ?? 'default'}`,
  });
  for (const t of [ga, gb, y]) t.dispose();
}

describe('matmul on the CPU', () => {
  it('multiplies [M, K] x [K, N]', async () => {
    const y = matmul(tensor([1, 2, 3, 4, 5, 6], [2, 3]), tensor([1, 0, 0, 1, 1, 1], [3, 2]));
    expect(y.shape).toEqual([2, 2]);
    expect([...(await y.toArray())]).toEqual([4, 5, 10, 11]);
  });
  it('batches [B, M, K] x [B, K, N] and broadcasts [B, M, K] x [K, N]', () => {
    expect(matmul(randn([3, 2, 4]), randn([3, 4, 5])).shape).toEqual([3, 2, 5]);
    expect(matmul(randn([3, 2, 4]), randn([4, 5])).shape).toEqual([3, 2, 5]);
  });
  it('rejects mismatched inner dims, naming the op, both shapes and the dims', () => {
    const a = randn([2, 3] as number[]);
    const b = randn([4, 5] as number[]);
    expect(() => matmul(a, b)).toThrow('matmul: inner dims differ: [2, 3] x [4, 5] (3 != 4)');
  });
  it('rejects mismatched batch dims', () => {
    const a = randn([2, 2, 3] as number[]);
    const b = randn([3, 3, 4] as number[]);
    expect(() => matmul(a, b)).toThrow('matmul: batch dims differ: [2, 2, 3] x [3, 3, 4]');
  });
});

// Every variant runs on whatever adapter the tests have, so the real-GPU kernel is checked on lavapipe too.
const VARIANTS: (GemmVariant | undefined)[] = [
  undefined,
  { kind: 'register', tileM: 4, tileN: 4, groupN: 8, groupM: 1 },
  { kind: 'register', tileM: 3, tileN: 2, groupN: 4, groupM: 4 },
  { kind: 'tiled', tileM: 4, tileN: 4, groupN: 16, groupM: 16 },
  NAIVE_GEMM,
];

describe('matmul on WebGPU matches the f64 reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // 1, odd, primes, and sizes that are not multiples of any tile (4, 16, 32, 64).
  const cases: [number[], number[]][] = [
    [
      [1, 1],
      [1, 1],
    ],
    [
      [7, 13],
      [13, 5],
    ],
    [
      [67, 31],
      [31, 131],
    ],
    [
      [3, 17, 9],
      [3, 9, 23],
    ],
    [
      [2, 33, 16],
      [16, 65],
    ],
  ];
  for (const [aShape, bShape] of cases) {
    it(`[${aShape}] x [${bShape}], every variant and dtype`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      for (const variant of VARIANTS) {
        for (const dtype of ['f32', 'bf16', 'f16'] as const) await check(gpu, aShape, bShape, dtype, variant);
      }
    });
  }

  it('K = 8192 (the tolerance grows with K)', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await check(gpu, [5, 8192], [8192, 11], 'f32');
    await check(gpu, [5, 8192], [8192, 11], 'bf16', VARIANTS[3]);
  });

  it('many batches: more workgroups than one grid dimension takes is folded into two', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await check(gpu, [70000, 1, 2], [2, 3], 'f32', NAIVE_GEMM);
  });
});
