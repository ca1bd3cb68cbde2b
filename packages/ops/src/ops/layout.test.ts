import {
  cpuData,
  DTYPE_BYTES,
  type DType,
  f16ToF32,
  f32ToBf16,
  f32ToF16,
  fromArray,
  Rng,
  rand,
  randn,
  type Shape,
  type Tensor,
  tensor,
  zeros,
} from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { sameBytes, testDevice } from '../testing.js';
import { cast, castReference, concat, copyInto, narrow, permute, transpose } from './layout.js';

const FLOATS = ['f32', 'bf16', 'f16'] as const;

/** Random data of any dtype: floats from N(0, 4), integers in [-1000, 1000) (u32 wraps negatives). */
function random(shape: Shape, dtype: DType, seed: number): Tensor {
  if (dtype === 'i32' || dtype === 'u32') {
    const rng = new Rng(seed);
    return tensor(
      Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.int(-1000, 1000)),
      shape,
      {
        dtype,
      },
    );
  }
  return randn(shape, { seed, std: 4, dtype });
}

/** Random f32 bit patterns (every exponent, NaNs included) plus rounding edge cases of f16 and bf16. */
function awkwardFloats(n: number): Float32Array {
  const rng = new Rng(42);
  const bits = Uint32Array.from({ length: n }, () => Math.floor(rng.next() * 2 ** 32));
  const f = new Float32Array(bits.buffer);
  const edges = [
    0,
    -0,
    1,
    -1,
    65504,
    65520,
    65519.99,
    1e-8,
    2 ** -24,
    2 ** -25,
    3 * 2 ** -26,
    2 ** -14,
    1e30,
  ];
  edges.push(Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN, 1 + 2 ** -8, 1 + 3 * 2 ** -8);
  edges.push(1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 3.4028234e38, 1.17549435e-38, 1e-45);
  f.set(edges);
  return f;
}

describe('layout ops on the CPU', () => {
  it('permute, transpose, narrow, concat, cast, copyInto', async () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    expect([...(await permute(x, [2, 0, 1]).toArray())]).toEqual([1, 4, 2, 5, 3, 6]);
    const t = transpose(x);
    expect(t.shape).toEqual([1, 3, 2]);
    expect([...(await t.toArray())]).toEqual([1, 4, 2, 5, 3, 6]);
    expect([...(await narrow(x, -1, 1, 2).toArray())]).toEqual([2, 3, 5, 6]);
    const c = concat([x, narrow(x, 2, 0, 1)], 2);
    expect(c.shape).toEqual([1, 2, 4]);
    expect([...(await c.toArray())]).toEqual([1, 2, 3, 1, 4, 5, 6, 4]);
    const h = cast(tensor([1, 1 / 3, 1e5], [3]), 'f16');
    expect([...cpuData(h)]).toEqual([f32ToF16(1), f32ToF16(1 / 3), 0x7c00]);
    expect([...(await cast(tensor([-2.7, 3.9], [2]), 'i32').toArray())]).toEqual([-2, 3]);
    const cache = zeros([4, 2], { dtype: 'bf16' });
    copyInto(cache, tensor([1, 2, 3, 4], [2, 2]), { axis0Offset: 1 });
    expect([...(await cache.toArray())]).toEqual([0, 0, 1, 2, 3, 4, 0, 0]);
  });
  it('errors name the op and the shapes', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3] as number[]);
    expect(() => permute(x, [0, 0])).toThrow(
      'permute: [0, 0] is not a permutation of the 2 dims of x [2, 3]',
    );
    expect(() => narrow(x, 1, 2, 2)).toThrow('narrow: [2, 4) is not inside dim 1 (size 3) of x [2, 3]');
    expect(() => concat([x, tensor([1, 2], [1, 2] as number[])], 0)).toThrow(
      'concat: tensors [2, 3] f32, [1, 2] f32 must have one dtype and equal dims except dim 0',
    );
    expect(() => copyInto(zeros([4, 3] as number[]), x, { axis0Offset: 3 })).toThrow(
      'copyInto: src [2, 3] does not fit dst [4, 3] at row 3',
    );
    expect(() => transpose(tensor([1], [1]))).toThrow('transpose: x [1] needs at least 2 dims');
  });
});

describe('layout ops on WebGPU match the CPU bit for bit', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  /** Runs `op` on CPU copies and GPU copies of `inputs`; the stored bytes must be identical (atol 0). */
  async function same(
    inputs: Tensor[],
    op: (...xs: Tensor[]) => Tensor,
    device: WebGpuDevice,
    what = '',
  ): Promise<void> {
    const want = op(...inputs);
    const onGpu = await Promise.all(inputs.map((t) => t.to(device)));
    const got = op(...onGpu);
    expect(got.shape).toEqual(want.shape);
    expect(got.dtype).toBe(want.dtype);
    const [a, b] = [await got.bytes(), await want.bytes()];
    if (!sameBytes(a, b)) {
      const at = a.findIndex((v, i) => v !== b[i]);
      const element = Math.floor(at / DTYPE_BYTES[got.dtype]);
      const input = inputs.length === 1 ? (await inputs[0]!.toArray())[element] : undefined;
      expect.fail(
        `${what}: element ${element} (input ${input}) is ${(await got.toArray())[element]}, expected ${(await want.toArray())[element]}`,
      );
    }
    for (const t of [...onGpu, got]) t.dispose();
  }

  for (const dtype of [...FLOATS, 'i32'] as const) {
    it(`permute / transpose / narrow, ${dtype}`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const x = random([3, 5, 7], dtype, 1);
      for (const perm of [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
      ] as const) {
        await same([x], (t) => permute(t, perm), gpu);
      }
      await same([random([2, 3, 4, 5], dtype, 2)], (t) => permute(t, [3, 1, 0, 2]), gpu);
      for (const shape of [
        [1, 1],
        [7, 13],
        [5, 129, 67],
      ])
        await same([random(shape, dtype, 3)], transpose, gpu);
      const y = random([11, 13], dtype, 4);
      await same([y], (t) => narrow(t, 1, 3, 7), gpu);
      await same([y], (t) => narrow(t, 0, 5, 5), gpu);
      await same([y], (t) => narrow(t, -1, 12, 1), gpu);
      await same([y], (t) => narrow(t, 0, 2, 0), gpu);
    });

    it(`concat, ${dtype}`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const parts = [random([4, 3, 5], dtype, 5), random([4, 1, 5], dtype, 6), random([4, 2, 5], dtype, 7)];
      await same(parts, (...xs) => concat(xs, 1), gpu);
      // Odd widths: for 16-bit dtypes, words straddle two inputs.
      const thin = [random([3, 1], dtype, 8), random([3, 2], dtype, 9), random([3, 3], dtype, 10)];
      await same(thin, (...xs) => concat(xs, -1), gpu);
      await same([random([3, 5], dtype, 11), random([2, 5], dtype, 12)], (...xs) => concat(xs, 0), gpu);
      await same(
        [random([257, 1031], dtype, 13), random([257, 3], dtype, 14)],
        (...xs) => concat(xs, 1),
        gpu,
      );
    });
  }

  it('casts integers of more than 24 bits to the nearest f32, ties to even, on every adapter', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // WGSL lets f32(v) round such v either way; core (and the kernel) round to nearest even.
    const u = [2 ** 24 + 1, 2 ** 24 + 3, 2 ** 31 + 128, 2 ** 31 + 384, 4294966427, 2 ** 32 - 1];
    const f = [2 ** 24, 2 ** 24 + 4, 2 ** 31, 2 ** 31 + 512, 4294966528, 2 ** 32];
    const x = tensor(u, [u.length], { dtype: 'u32', device: gpu });
    expect([...(await cast(x, 'f32').toArray())]).toEqual(f);
    const negatives = u.map((v) => -(v % 2 ** 31)); // the same low bits as i32, negative
    const i = tensor(negatives, [u.length], { dtype: 'i32', device: gpu });
    const want = castReference(new Int32Array(negatives), 'i32', 'f32');
    expect([...(await cast(i, 'f32').toArray())]).toEqual([...want]);
    x.dispose();
    i.dispose();
  });

  it('cast between every pair of dtypes', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const all = ['f32', 'f16', 'bf16', 'i32', 'u32'] as const;
    for (const from of all) {
      const x = random([1031], from, 15);
      // Floats -> u32 only from non-negative values: negative ones are out of range (JS wraps, GPUs saturate).
      const positive =
        from === 'i32' || from === 'u32' ? x : rand([1031], { seed: 16, max: 3000, dtype: from });
      for (const to of all)
        await same([to === 'u32' ? positive : x], (t) => cast(t, to), gpu, `${from} -> ${to}`);
    }
  });

  it('f32 -> bf16 / f16 rounds like core on awkward values; f16 / bf16 -> f32 exhaustively', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const values = awkwardFloats(100_003);
    const x = await fromArray(values, [values.length], { dtype: 'f32' }).to(gpu);
    const [b, h] = [cast(x, 'bf16'), cast(x, 'f16')];
    const [bBits, hBits] = [
      new Uint16Array((await b.bytes()).buffer),
      new Uint16Array((await h.bytes()).buffer),
    ];
    // NaN payloads may differ (WGSL may canonicalise NaN in a float register: Firefox's does); NaN must
    // stay NaN.
    const isNanBf16 = (v: number) => (v & 0x7f80) === 0x7f80 && (v & 0x7f) !== 0;
    const isNan = (v: number) => (v & 0x7c00) === 0x7c00 && (v & 0x3ff) !== 0;
    for (let i = 0; i < values.length; i++) {
      const wantB = f32ToBf16(values[i]!);
      if (bBits[i] !== wantB && !(isNanBf16(wantB) && isNanBf16(bBits[i]!))) {
        throw new Error(`bf16 of ${values[i]}: ${bBits[i]!.toString(16)}, want ${wantB.toString(16)}`);
      }
      const want = f32ToF16(values[i]!);
      if (hBits[i] !== want && !(isNan(want) && isNan(hBits[i]!))) {
        throw new Error(`f16 of ${values[i]}: ${hBits[i]!.toString(16)}, want ${want.toString(16)}`);
      }
    }
    const every = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ['f16', 'bf16'] as const) {
      const g = await fromArray(every, [65536], { dtype }).to(gpu);
      const f = cast(g, 'f32');
      const got = new Float32Array((await f.bytes()).buffer);
      const want =
        dtype === 'f16'
          ? Float32Array.from(every, f16ToF32)
          : new Float32Array(Uint32Array.from(every, (v) => v << 16).buffer);
      expect(got).toEqual(want); // NaN equals NaN here
      for (const t of [g, f]) t.dispose();
    }
    for (const t of [x, b, h]) t.dispose();
  });

  it('copyInto appends rows in place, converting, without touching other rows', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const dtype of [...FLOATS, 'i32'] as const) {
      // [9, 1, 3] rows of 3 elements: with 16-bit dtypes every append starts or ends inside a word.
      const cpuCache = random([9, 1, 3], dtype, 16);
      const gpuCache = await cpuCache.to(gpu);
      let row = 0;
      for (const [k, rows] of [2, 1, 1, 3, 1, 1].entries()) {
        const src = random([rows, 1, 3], k % 2 ? 'f32' : dtype, 17 + k);
        const gsrc = await src.to(gpu);
        copyInto(cpuCache, src, { axis0Offset: row });
        copyInto(gpuCache, gsrc, { axis0Offset: row });
        gsrc.dispose();
        row += rows;
      }
      expect(sameBytes(await gpuCache.bytes(), await cpuCache.bytes())).toBe(true);
      gpuCache.dispose();
    }
    const big = zeros([300, 8, 64]);
    const gbig = await big.to(gpu);
    const chunk = randn([37, 8, 64], { seed: 3 });
    const gchunk = await chunk.to(gpu);
    copyInto(big, chunk, { axis0Offset: 201 });
    copyInto(gbig, gchunk, { axis0Offset: 201 });
    expect(sameBytes(await gbig.bytes(), await big.bytes())).toBe(true);
    for (const t of [gbig, gchunk]) t.dispose();
  });
});
