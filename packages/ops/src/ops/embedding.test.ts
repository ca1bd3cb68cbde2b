import { cpuData, fromArray, randint, randn, type Tensor, tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { embedding, embeddingRanges, embeddingReference } from './embedding.js';

const FLOATS = ['f32', 'bf16', 'f16'] as const;

function reference(ids: Tensor, table: Tensor<readonly [number, number]>): Float32Array {
  const data = cpuData(table) as Float32Array | Uint16Array;
  return embeddingReference(cpuData(ids), data, table.shape[1], table.dtype as 'f32');
}

describe('embedding on the CPU', () => {
  it('gathers rows', async () => {
    const table = tensor([0, 0.5, 1, 1.5, 2, 2.5], [3, 2]);
    const x = embedding(tensor([2, 0, 2], [3], { dtype: 'u32' }), table);
    expect(x.shape).toEqual([3, 2]);
    expect([...(await x.toArray())]).toEqual([2, 2.5, 0, 0.5, 2, 2.5]);
  });
  it('throws for ids outside [0, V), naming the id and its position', () => {
    const table = tensor([1, 2, 3, 4], [2, 2]);
    expect(() => embedding(tensor([0, 2], [2], { dtype: 'i32' }), table)).toThrow(
      'embedding: id 2 at position 1 is outside [0, 2)',
    );
    expect(() => embedding(tensor([-1], [1], { dtype: 'i32' }), table)).toThrow('id -1 at position 0');
  });
  it('splits a table into aligned row ranges that fit one binding', () => {
    // 26-byte rows (bf16, D = 13) and 256-byte alignment: starts every 128 rows (3328 bytes).
    expect(embeddingRanges(1000, 26, 8192, 256)).toEqual([
      { first: 0, count: 256 },
      { first: 256, count: 256 },
      { first: 512, count: 256 },
      { first: 768, count: 232 },
    ]);
    expect(embeddingRanges(10, 26, 8192, 256)).toEqual([{ first: 0, count: 10 }]);
    expect(() => embeddingRanges(1000, 26, 3000, 256)).toThrow('the smallest aligned range');
    // Llama 3's table on lavapipe: 128256 rows of 4096 bytes in 128 MiB ranges -> 4 ranges.
    expect(embeddingRanges(128256, 4096, 2 ** 27, 256)).toHaveLength(4);
  });
});

describe('embedding on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined; // binds at most 4 KiB: forces the split path on small tables
  useTestDevices([{}, { maxStorageBindingSize: 4096 }], (d) => ([gpu, small] = d));

  // Exact (atol 0): the kernel copies (and for f16/bf16 decodes, which is exact) the stored values.
  async function check(
    device: WebGpuDevice,
    ids: Tensor<readonly [number], 'i32' | 'u32'>,
    table: Tensor<readonly [number, number]>,
  ) {
    const gt = await table.to(device);
    const gids = await ids.to(device);
    const before = device.stats.dispatches;
    const fromGpuIds = embedding(gids, gt);
    const fromCpuIds = embedding(ids, gt);
    const want = reference(ids, table);
    expect([...(await fromGpuIds.toArray())]).toEqual([...want]);
    expect([...(await fromCpuIds.toArray())]).toEqual([...want]);
    const dispatches = (device.stats.dispatches - before) / 2; // per call
    for (const t of [gt, gids, fromGpuIds, fromCpuIds]) t.dispose();
    return dispatches;
  }

  const cases: [number, number, number][] = [
    [1, 1, 1],
    [7, 3, 5],
    [257, 13, 31],
    [1000, 64, 128],
    [300, 517, 9], // rows longer than a workgroup (256), not a multiple of it
    [128256, 64, 37],
  ];
  for (const [vocab, dim, seq] of cases) {
    for (const dtype of FLOATS) {
      if (vocab === 128256 && dtype === 'f16') continue; // the same path as bf16, and 16 MB to upload
      it(`table [${vocab}, ${dim}] ${dtype}, ${seq} ids`, async ({ skip }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const table = randn([vocab, dim], { seed: vocab + dim, dtype, std: 0.1 });
        const ids = randint([seq], 0, vocab, { seed: seq, dtype: seq % 2 ? 'i32' : 'u32' });
        cpuData(ids)[0] = vocab - 1; // the last row is reachable
        expect(await check(gpu, ids, table)).toBe(1);
      });
    }
  }

  for (const dtype of FLOATS) {
    it(`a ${dtype} table larger than one binding is looked up range by range`, async ({ skip }) => {
      if (!small) return skip('no WebGPU adapter');
      // 1000 x 13: 26 kB (bf16/f16) or 52 kB (f32), bound in 4 KiB ranges; 50 ids over every range.
      const table = randn([1000, 13], { seed: 3, dtype });
      const ids = randint([50], 0, 1000, { seed: 4 });
      cpuData(ids).set([0, 999, 127, 128, 255, 256]);
      const dispatches = await check(small, ids, table);
      expect(dispatches).toBeGreaterThan(4);
    });
  }

  it('looks up a bf16 table over the real binding limit (144 MB on lavapipe)', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const dim = 1024;
    const vocab = Math.ceil((gpu.caps.maxStorageBindingSize * 1.05) / (2 * dim));
    if (vocab * dim * 2 > Math.min(gpu.caps.maxBufferSize, 2 ** 28)) {
      return skip(
        `a table over the ${gpu.caps.maxStorageBindingSize}-byte binding limit is too large to test`,
      );
    }
    const bits = new Uint16Array(vocab * dim);
    for (let i = 0; i < bits.length; i++) bits[i] = (i * 7) % 0x7f00; // finite bf16 patterns, distinct per row
    const table = fromArray(bits, [vocab, dim], { dtype: 'bf16' });
    const ids = tensor([vocab - 1, 0, vocab >> 1, vocab - 2], [4], { dtype: 'i32' });
    expect(await check(gpu, ids, table)).toBe(2);
  });

  it('gives zero rows for out-of-range ids already on the GPU, and validates CPU ids', async ({ skip }) => {
    if (!small) return skip('no WebGPU adapter');
    const table = await randn([1000, 13], { seed: 5, dtype: 'bf16' }).to(small);
    const ids = await tensor([3, -1, 1000, 2 ** 31 - 1, 999], [5], { dtype: 'i32' }).to(small);
    const x = await embedding(ids, table).toArray();
    expect(x.subarray(13, 4 * 13).every((v) => v === 0)).toBe(true);
    expect(x.subarray(0, 13).some((v) => v !== 0)).toBe(true);
    expect(x.subarray(4 * 13).some((v) => v !== 0)).toBe(true);
    expect(() => embedding(tensor([5, 1000], [2], { dtype: 'u32' }), table)).toThrow(
      'embedding: id 1000 at position 1 is outside [0, 1000)',
    );
    table.dispose();
    ids.dispose();
  });
});
