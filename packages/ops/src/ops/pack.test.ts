import { cpuData, cpuFloats, randn, tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { GpuCaps } from '../gpu/caps.js';
import type { WebGpuDevice } from '../gpu/device.js';
import {
  packedBytes,
  packedWord,
  packGroups,
  packRowsReference,
  type RowPacking,
  unpackGroups,
  unpackRowsReference,
} from '../gpu/packing.js';
import { weightPacking } from '../gpu/variants.js';
import { sameBytes } from '../testing.js';
import { add } from './binary.js';
import { embedding } from './embedding.js';
import { cast, narrow, transpose } from './layout.js';
import {
  emptyLinearWeight,
  linearWeightPacking,
  packingOf,
  packLinearWeight,
  prepareLinearWeight,
  unpackLinearWeight,
  writable,
  writeRows,
} from './pack.js';

const layout = (rows: number, rowBytes: number): RowPacking => ({ lanes: 8, rowsPerLane: 4, rows, rowBytes });

describe('the packed layout (CPU)', () => {
  it('puts the words the 8 lanes load together next to each other', () => {
    const p = layout(64, 32); // 2 words per row, 2 groups
    // Lane l owns rows 4l..4l+3 of its group; word c of row (l, j) is at ((g kc + c) 4 + j) 8 + l.
    expect([0, 4, 8, 28].map((row) => packedWord(p, row, 0))).toEqual([0, 1, 2, 7]);
    expect(packedWord(p, 1, 0)).toBe(8); // j = 1: the next run of 8
    expect(packedWord(p, 0, 1)).toBe(32); // word 1 after all 4 rows' word 0
    expect(packedWord(p, 32, 0)).toBe(64); // group 1 starts where row 32 starts row-major
  });

  it('maps the words one to one, pads to whole groups with zeros, and unpacks back', () => {
    for (const [rows, rowBytes] of [
      [1, 16],
      [31, 48],
      [32, 16],
      [33, 32],
      [100, 64],
    ] as const) {
      const p = layout(rows, rowBytes);
      const kc = rowBytes / 16;
      const seen = new Set<number>();
      for (let r = 0; r < rows; r++) for (let c = 0; c < kc; c++) seen.add(packedWord(p, r, c));
      expect(seen.size).toBe(rows * kc);
      expect(Math.max(...seen)).toBeLessThan(packedBytes(p) / 16);
      const bytes = Uint8Array.from({ length: rows * rowBytes }, (_, i) => 1 + ((i * 37) % 250));
      const packed = packRowsReference(bytes, p);
      expect(packed.length).toBe(Math.ceil(rows / 32) * 32 * rowBytes);
      const padding = packed.length - bytes.length;
      expect(packed.filter((b) => b === 0).length).toBe(padding); // the data has no zero bytes
      expect(unpackRowsReference(packed, p)).toEqual(bytes);
    }
  });

  it('packs and unpacks whole groups on the host exactly as the references do', () => {
    for (const [rows, rowBytes] of [
      [32, 16],
      [64, 48],
      [70, 32], // the last group partial: zero padding rows
      [5, 64],
    ] as const) {
      const p = layout(rows, rowBytes);
      const bytes = Uint8Array.from({ length: rows * rowBytes }, (_, i) => 1 + ((i * 31) % 250));
      expect(packGroups(bytes, p)).toEqual(packRowsReference(bytes, p));
      expect(unpackGroups(packRowsReference(bytes, p), p)).toEqual(bytes);
      expect(packGroups(bytes.subarray(0, 32 * rowBytes), p)).toEqual(
        packRowsReference(bytes.subarray(0, 32 * rowBytes), { ...p, rows: Math.min(rows, 32) }),
      );
    }
  });

  it('is what software adapters with subgroups get, and only they', () => {
    const caps = (software: boolean, subgroups: boolean) => ({ software, subgroups }) as GpuCaps;
    expect(weightPacking(caps(true, true))).toEqual({ lanes: 8, rowsPerLane: 4 });
    expect(weightPacking(caps(true, false))).toBeUndefined();
    expect(weightPacking(caps(false, true))).toBeUndefined();
  });

  it('prepareLinearWeight keeps CPU tensors as they are; writeRows writes their rows', async () => {
    const w = randn([4, 8]);
    expect(prepareLinearWeight(w)).toBe(w);
    writeRows(w, 2, new Uint8Array(new Float32Array(8).fill(5).buffer));
    expect((await w.toArray()).slice(16, 24)).toEqual(new Float32Array(8).fill(5));
  });
});

describe('packed weights on WebGPU', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  // The small device binds 1 to 4 row groups at a time.
  useTestDevices([{}, { maxStorageBindingSize: 2048 }], (d) => ([gpu, small] = d));

  it('packs and unpacks on the device, whole and in ranges; toArray reads row-major', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    if (!gpu.caps.subgroups) return skip('packed weights need subgroups, which this adapter lacks');
    for (const device of [gpu, small]) {
      for (const [n, k, dtype] of [
        [1, 8, 'bf16'],
        [33, 24, 'f16'],
        [100, 8, 'f32'],
        [70, 16, 'bf16'],
      ] as const) {
        const w = randn([n, k], { seed: n + k, dtype });
        const expected = await w.toArray();
        const packed = packLinearWeight(await w.to(device));
        expect(packingOf(packed)).toMatchObject({ rows: n, rowBytes: k * (dtype === 'f32' ? 4 : 2) });
        expect(packed.shape).toEqual([n, k]);
        expect(await packed.toArray()).toEqual(expected); // host unpacking of the device's packing
        const back = unpackLinearWeight(packed);
        expect(packingOf(back)).toBeUndefined();
        expect(await back.toArray()).toEqual(expected); // device unpacking
        for (const t of [packed, back]) t.dispose();
      }
    }
  });

  it('writeRows fills a packed weight in runs of rows that start and end inside groups', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    if (!gpu.caps.subgroups) return skip('packed weights need subgroups, which this adapter lacks');
    for (const device of [gpu, small]) {
      const w = packLinearWeight(await randn([70, 24], { seed: 1, dtype: 'f16' }).to(device));
      const fresh = randn([70, 24], { seed: 2, dtype: 'f16' });
      const bytes = new Uint8Array(cpuData(fresh).buffer);
      for (let row = 0; row < 70; row += 9) {
        writeRows(w, row, bytes.subarray(row * 48, Math.min(70, row + 9) * 48)); // 9 rows of 48 bytes
      }
      expect(await w.toArray()).toEqual(await fresh.toArray());
      // Whole groups (packed on the host), then the partial last group.
      const next = randn([70, 24], { seed: 3, dtype: 'f16' });
      const again = new Uint8Array(cpuData(next).buffer);
      writeRows(w, 0, again.subarray(0, 32 * 48));
      writeRows(w, 32, again.subarray(32 * 48, 64 * 48));
      writeRows(w, 64, again.subarray(64 * 48));
      expect(await w.toArray()).toEqual(await next.toArray());
      expect(() => writeRows(w, 69, bytes.subarray(0, 96))).toThrow('are not whole rows of [70, 24] f16');
      w.dispose();
    }
  });

  it('writeRows packs chunks of whole groups straight into staging memory, paced by writable()', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // 1 MiB chunks of a 6 MiB weight (the staged path starts at 1 MiB); the last chunk ends in a partial
    // group. Packed on software adapters, row-major on GPUs: toArray reads either back row-major.
    const rows = 3001;
    const fresh = randn([rows, 1024], { seed: 4, dtype: 'bf16' });
    const bytes = new Uint8Array(cpuData(fresh).buffer);
    const w = emptyLinearWeight([rows, 1024], 'bf16', gpu);
    const rowsPerChunk = 512; // 16 groups of 32 rows
    for (let row = 0; row < rows; row += rowsPerChunk) {
      await writable(gpu);
      writeRows(w, row, bytes.subarray(row * 2048, Math.min(rows, row + rowsPerChunk) * 2048));
    }
    expect(sameBytes(await w.bytes(), bytes)).toBe(true);
    w.dispose();
  });

  it('emptyLinearWeight allocates the layout the adapter prefers', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const w = emptyLinearWeight([40, 16], 'bf16', gpu);
    expect(packingOf(w)).toEqual(linearWeightPacking(gpu, [40, 16], 'bf16'));
    expect(packingOf(w) !== undefined).toBe(weightPacking(gpu.caps) !== undefined);
    w.dispose();
  });

  it('prepareLinearWeight packs where the adapter prefers it, and frees the row-major input', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const wants = weightPacking(gpu.caps) !== undefined;
    const w = await randn([40, 16], { dtype: 'bf16' }).to(gpu);
    const prepared = prepareLinearWeight(w);
    expect(packingOf(prepared) !== undefined).toBe(wants);
    if (wants) expect(() => w.storage).toThrow('used after dispose()');
    // K = 13 does not fill 16-byte words: never packed.
    const odd = await randn([40, 13], { dtype: 'bf16' }).to(gpu);
    expect(prepareLinearWeight(odd)).toBe(odd);
    for (const t of [prepared, odd]) t.dispose();
  });

  it('embedding reads a packed table (the tied head), whole and in ranges', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    if (!gpu.caps.subgroups) return skip('packed weights need subgroups, which this adapter lacks');
    const table = randn([200, 8], { seed: 3, dtype: 'bf16' }); // 7 groups: 2 ranges of 4 on the small device
    const ids = tensor([199, 0, 31, 32, 33, 128, 150], [7], { dtype: 'i32' });
    const reference = await embedding(ids, table).toArray(); // the CPU reference
    for (const device of [gpu, small]) {
      const packed = packLinearWeight(await table.to(device));
      const rows = embedding(ids, packed);
      expect(await rows.toArray()).toEqual(reference);
      for (const t of [packed, rows]) t.dispose();
    }
  });

  it('the layout ops see the row-major tensor; other ops refuse it by name', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    if (!gpu.caps.subgroups) return skip('packed weights need subgroups, which this adapter lacks');
    const w = randn([40, 16], { seed: 9 });
    const values = cpuFloats(w);
    const packed = packLinearWeight(await w.to(gpu));
    const rows = narrow(packed, 0, 33, 2); // rows 33 and 34: the second group
    expect(await rows.toArray()).toEqual(values.slice(33 * 16, 35 * 16));
    const t = transpose(packed);
    expect((await t.toArray())[1]).toBe(values[16]);
    const half = cast(packed, 'bf16');
    expect(packingOf(half)).toBeUndefined();
    expect(() => add(packed, packed)).toThrow('add: ');
    expect(() => add(packed, packed)).toThrow('unpackLinearWeight');
    expect(() => gpu!.write(packed.storage, 0, new Uint8Array(4))).toThrow('packed weight');
    for (const x of [packed, rows, t, half]) x.dispose();
  });
});
