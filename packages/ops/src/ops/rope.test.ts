import { cpuFloats, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { expectClose, testDevice } from '../testing.js';
import { type RopeLayout, rope, ropeReference, ropeTables } from './rope.js';

/** Meta's interleaved head dims -> HF's half-split order: HF[i] = Meta[2i], HF[i + Dh/2] = Meta[2i + 1]. */
function metaToHf(x: Float32Array, dh: number): Float32Array {
  const out = new Float32Array(x.length);
  const half = dh / 2;
  for (let base = 0; base < x.length; base += dh) {
    for (let i = 0; i < half; i++) {
      out[base + i] = x[base + 2 * i]!;
      out[base + half + i] = x[base + 2 * i + 1]!;
    }
  }
  return out;
}

const INV_FREQ = Float32Array.from({ length: 64 }, (_, i) => 500000 ** (-i / 64));

describe('rope on the CPU', () => {
  it('rotates the pair (1, 0) by the angle', async () => {
    const tables = ropeTables(new Float32Array([0.5]), 4);
    const y = rope(tensor([1, 0], [1, 1, 2]), tables, { offset: 3, layout: 'half' });
    expectClose(await y.toArray(), [Math.cos(1.5), Math.sin(1.5)], { atol: 1e-7 });
    const byDefault = rope(tensor([1, 0], [1, 1, 2]), tables, { offset: 3 }); // layout 'half' by default
    expect([...(await byDefault.toArray())]).toEqual([...(await y.toArray())]);
  });
  it('rejects an odd head dim, positions beyond the table and mismatched tables', () => {
    const tables = ropeTables(new Float32Array([1, 0.1]), 8);
    const odd = tensor(new Float32Array(6), [2, 1, 3]);
    expect(() => rope(odd, tables, { layout: 'half' })).toThrow('rope: head dim 3 of x [2, 1, 3] is odd');
    const x = tensor(new Float32Array(24), [3, 2, 4]);
    expect(() => rope(x, tables, { offset: 6, layout: 'half' })).toThrow(
      'rope: positions 6 to 8 of x [3, 2, 4] are beyond the 8-position table',
    );
    const wide = tensor(new Float32Array(48), [3, 2, 8]);
    expect(() => rope(wide, tables, { layout: 'interleaved' })).toThrow('must both be [positions, 4]');
  });
  it('both layouts agree after permuting the head dims (exactly)', async () => {
    const tables = ropeTables(INV_FREQ.subarray(0, 8), 40);
    const meta = cpuFloats(randn([5, 3, 16], { seed: 2 }));
    const viaMeta = await rope(tensor(meta, [5, 3, 16]), tables, {
      offset: 30,
      layout: 'interleaved',
    }).toArray();
    const viaHf = await rope(tensor(metaToHf(meta, 16), [5, 3, 16]), tables, {
      offset: 30,
      layout: 'half',
    }).toArray();
    expect([...viaHf]).toEqual([...metaToHf(viaMeta, 16)]);
  });
});

describe('rope on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // Tolerance: each output is a*c -/+ b*s of f32 values with |a|, |b| <= ~5 and |c|, |s| <= 1; the GPU
  // rounds each product (or fuses one into an FMA) while the reference rounds once, a difference of at most
  // ~2 ULPs of 8, i.e. about 2e-6: atol 2e-6.
  const tol = { atol: 2e-6 };
  const cases: [number, number, number, number][] = [
    [1, 1, 2, 0],
    [3, 5, 6, 7],
    [7, 3, 128, 100],
    [37, 4, 64, 2],
    [129, 8, 128, 0],
  ];
  for (const [seq, heads, dh, offset] of cases) {
    for (const layout of ['half', 'interleaved'] as const) {
      it(`[${seq}, ${heads}, ${dh}] at offset ${offset}, ${layout}`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const tables = ropeTables(INV_FREQ.subarray(0, dh / 2), offset + seq + 3, gpu);
        const x = randn([seq, heads, dh], { seed: seq * dh + offset, std: 1.5 });
        const gx = await x.to(gpu);
        const y = rope(gx, tables, { offset, layout });
        const [cos, sin] = await Promise.all([tables.cos.toArray(), tables.sin.toArray()]);
        const want = ropeReference(cpuFloats(x), [seq, heads, dh], cos, sin, offset, layout);
        expectClose(await y.toArray(), want, { ...tol, what: layout });
        for (const t of [gx, y, tables.cos, tables.sin]) t.dispose();
      });
    }
  }

  it('layouts agree after the permutation on the GPU too, and bf16 input works', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const tables = ropeTables(INV_FREQ, 64, gpu);
    const meta = cpuFloats(randn([9, 5, 128], { seed: 11 }));
    const run = async (data: Float32Array, layout: RopeLayout) => {
      const x: Tensor<readonly [9, 5, 128]> = await tensor(data, [9, 5, 128]).to(gpu!);
      const y = rope(x, tables, { offset: 50, layout });
      const out = await y.toArray();
      x.dispose();
      y.dispose();
      return out;
    };
    const viaMeta = await run(meta, 'interleaved');
    const viaHf = await run(metaToHf(meta, 128), 'half');
    // The same kernel code runs on the same pair of values, only the indices differ: bit-identical.
    expect([...viaHf]).toEqual([...metaToHf(viaMeta, 128)]);

    const b = randn([4, 3, 32], { seed: 12, dtype: 'bf16' });
    const gb = await b.to(gpu);
    const small = ropeTables(INV_FREQ.subarray(0, 16), 4, gpu);
    const y = rope(gb, small, { layout: 'interleaved' });
    const host = ropeTables(INV_FREQ.subarray(0, 16), 4);
    const want = ropeReference(
      cpuFloats(b),
      [4, 3, 32],
      cpuFloats(host.cos),
      cpuFloats(host.sin),
      0,
      'interleaved',
    );
    expectClose(await y.toArray(), want, tol);
    for (const t of [gb, y, small.cos, small.sin, tables.cos, tables.sin]) t.dispose();
  });
});
