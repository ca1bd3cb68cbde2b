import { cpuFloats, randn, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { add, binaryReference, mul } from './binary.js';

describe('add / mul on the CPU', () => {
  it('broadcasts a trailing shape', async () => {
    const y = add(tensor([1, 2, 3, 4], [2, 2]), tensor([10, 20], [2]));
    expect([...(await y.toArray())]).toEqual([11, 22, 13, 24]);
  });
  it('rejects shapes that do not broadcast, naming the op and both shapes', () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3] as number[]);
    const b = tensor([1, 2], [2] as number[]);
    expect(() => mul(a, b)).toThrow('mul: shapes [2, 3] and [2] differ');
  });
});

describe('add / mul on WebGPU match the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Sizes: 1, odd, prime, not a multiple of the 256-wide workgroup, and large enough for many workgroups.
  const sizes: [number, number][] = [
    [1, 1],
    [3, 7],
    [13, 257],
    [1000, 1031],
  ];
  for (const [rows, cols] of sizes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      it(`[${rows}, ${cols}] ${dtype} (+ row broadcast)`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const a = randn([rows, cols], { seed: rows * cols, dtype });
        const b = randn([cols], { seed: 7, dtype });
        const full = randn([rows, cols], { seed: 9, dtype });
        const [ga, gb, gfull] = await Promise.all([a.to(gpu), b.to(gpu), full.to(gpu)]);
        // Exact: one f32 add or mul of the same f32 inputs rounds identically on any IEEE device.
        const sum = add(ga, gb);
        expectClose(await sum.toArray(), binaryReference('add', cpuFloats(a), cpuFloats(b)), {
          atol: 0,
          what: 'add',
        });
        const product = mul(ga, gfull);
        expectClose(await product.toArray(), binaryReference('mul', cpuFloats(a), cpuFloats(full)), {
          atol: 0,
          what: 'mul',
        });
        for (const t of [ga, gb, gfull, sum, product]) t.dispose();
      });
    }
  }
});
