import { cpu, cpuFloats, empty, fromArray, randn, type Tensor, tensor } from '@proj/core';
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
  it('argmax into: writes the ids into an i32 tensor of the result shape and returns it', async () => {
    const ids = fromArray(new Int32Array([-1, -1]), [2], { dtype: 'i32' });
    expect(argmax(tensor([0.1, 2, 2, -1, 5, 4], [2, 3]), { into: ids })).toBe(ids);
    expect([...(await ids.toArray())]).toEqual([1, 1]);
    const token = fromArray(new Int32Array([-1]), [], { dtype: 'i32' }); // a greedy step's next token
    expect(argmax(tensor([3, 9, 1], [3]), { into: token })).toBe(token);
    expect([...(await token.toArray())]).toEqual([1]);
  });
  it('argmax into: rejects a wrong shape or dtype', () => {
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(() => argmax(x, { into: fromArray(new Int32Array(3), [3], { dtype: 'i32' }) })).toThrow(
      'argmax: into [3] i32 must be i32 [2] for x [2, 3]',
    );
    expect(() => argmax(x, { into: tensor([0, 0], [2]) })).toThrow(
      'argmax: into [2] f32 must be i32 [2] for x [2, 3]',
    );
    expect(() => argmax(x, { into: fromArray(new Int32Array(2), [1, 2], { dtype: 'i32' }) })).toThrow(
      'argmax: into [1, 2] i32 must be i32 [2] for x [2, 3]',
    );
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

  // Exact: both sides select stored values by the same integer order; nothing is computed. Each input runs
  // with the device's default chunk (the whole row on a software adapter) and with the GPUs' 4096, so that
  // rows longer than 4096 take the two passes here too, and 8192 (two blocks per workgroup).
  async function checkArgmax(x: Tensor, device: WebGpuDevice): Promise<Int32Array> {
    const gx = await x.to(device);
    const want = [...argmaxReference(cpuFloats(x), x.shape[x.shape.length - 1]!)];
    let got: Int32Array = new Int32Array();
    for (const chunk of [undefined, 4096, 8192]) {
      const ids = argmax(gx, { chunk });
      expect(ids.shape).toEqual(x.shape.slice(0, -1));
      got = await ids.toArray();
      expect([...got], `chunk = ${chunk}`).toEqual(want);
      ids.dispose();
    }
    gx.dispose();
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

  // Rows of up to one chunk run in one pass, longer ones in two; around the GPUs' chunk of 4096: the
  // boundary, a prime 3 chunks + 1, a Llama 3 vocabulary. (Random normals: maxima are unique, so these check the chunks' merge.)
  const argmaxShapes: number[][] = [
    [1],
    [7],
    [1, 1],
    [3, 7],
    [5, 257],
    [2, 3, 100],
    [64, 1031],
    [4096],
    [4097],
    [3, 4096],
    [5, 4097],
    [12289],
    [3, 20011],
    [128256],
    [3, 128256],
  ];
  for (const shape of argmaxShapes) {
    it(`argmax [${shape}]`, async ({ skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      await checkArgmax(randn(shape, { seed: shape.reduce((a, b) => a * b, 1) }), gpu);
    });
  }

  it('argmax of f16 and bf16 rows in one pass and in two', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const dtype of ['f16', 'bf16'] as const) {
      for (const shape of [
        [3, 7],
        [4, 4096],
        [3, 4097],
        [2, 12289],
        [1, 128256],
      ]) {
        await checkArgmax(randn(shape, { seed: shape[1]!, dtype }), gpu);
      }
    }
  });

  it('argmax: one dispatch for a row of one chunk, two for a longer one; chunk a multiple of 4096', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const [n, chunk, dispatches] of [
      [4096, 4096, 1],
      [4097, 4096, 2],
      [8192, 8192, 1],
      [8193, 8192, 2],
      [128256, undefined, gpu.caps.software ? 1 : 2], // software adapters: the whole row in one workgroup
    ] as const) {
      const x = randn([2, n], { seed: n, device: gpu });
      const before = gpu.stats.dispatches;
      const ids = argmax(x, { chunk });
      expect(gpu.stats.dispatches - before, `n = ${n}, chunk = ${chunk}`).toBe(dispatches);
      for (const t of [x, ids]) t.dispose();
    }
    const x = randn([2, 5], { seed: 1, device: gpu });
    for (const chunk of [0, 1000, 6144, 4096.5]) {
      expect(() => argmax(x, { chunk })).toThrow(
        `argmax: chunk = ${chunk} must be a positive multiple of 4096`,
      );
    }
    x.dispose();
  });

  it('argmax: ties across chunks go to the lower index, NaN-only rows to 0', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const n = 3 * 4096 + 5;
    const x = cpuFloats(randn([6, n], { seed: 21 }));
    const at = (row: number, ...cols: number[]) => cols.map((c) => row * n + c);
    for (const i of at(0, 3 * 4096 + 2, 2 * 4096, 4096)) x[i] = 9; // in chunks 3, 2 and 1 (at its start)
    for (const i of at(1, 4096, 4095)) x[i] = 9; // either side of the first boundary
    for (const i of at(2, n - 1, 2 * 4096 + 7)) x[i] = 9; // the last element ties with chunk 2
    x.fill(nan, 3 * n, 4 * n); // row 3: all NaN
    x.fill(nan, 4 * n, 5 * n); // row 4: NaN but one -Infinity in the last chunk
    x[5 * n - 3] = ninf;
    x.fill(-0, 5 * n, 6 * n); // row 5: -0 everywhere but one +0 in chunk 2
    x[5 * n + 2 * 4096 + 1] = 0;
    const got = await checkArgmax(tensor(x, [6, n]), gpu);
    expect([...got]).toEqual([4096, 4095, 2 * 4096 + 7, 0, n - 3, 2 * 4096 + 1]);
    // Rows of exactly two chunks, the maximum at an edge: the last element, the start of chunk 1, the end and
    // the start of chunk 0.
    const edges = cpuFloats(randn([4, 8192], { seed: 24 }));
    for (const [row, col] of [
      [0, 8191],
      [1, 4096],
      [2, 4095],
      [3, 0],
    ] as const)
      edges[row * 8192 + col] = 9;
    expect([...(await checkArgmax(tensor(edges, [4, 8192]), gpu))]).toEqual([8191, 4096, 4095, 0]);
    const short = await checkArgmax(tensor(new Float32Array(14).fill(nan), [2, 7]), gpu);
    expect([...short]).toEqual([0, 0]);
  });

  it('argmax into: writes the ids in place on the GPU, and rejects a wrong shape, dtype or device', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const n of [1031, 20011]) {
      const x = randn([3, n], { seed: n + 1 });
      const gx = await x.to(gpu);
      const ids = empty([3], 'i32', gpu);
      expect(argmax(gx, { into: ids })).toBe(ids);
      expect([...(await ids.toArray())]).toEqual([...argmaxReference(cpuFloats(x), n)]);
      expect(() => argmax(gx, { into: empty([3, 1], 'i32', gpu!) })).toThrow(
        `argmax: into [3, 1] i32 must be i32 [3] for x [3, ${n}]`,
      );
      expect(() => argmax(gx, { into: empty([3], 'f32', gpu!) })).toThrow(
        `argmax: into [3] f32 must be i32 [3] for x [3, ${n}]`,
      );
      expect(() => argmax(gx, { into: empty([3], 'i32', cpu) })).toThrow(
        'argmax: inputs are on different devices',
      );
      for (const t of [gx, ids]) t.dispose();
    }
    // A greedy loop's next token: a scalar id written from a vocabulary row.
    const logits = randn([128256], { seed: 5, device: gpu });
    const token = empty([], 'i32', gpu);
    argmax(logits, { into: token });
    expect([...(await token.toArray())]).toEqual([...argmaxReference(await logits.toArray(), 128256)]);
    for (const t of [logits, token]) t.dispose();
  });

  it('argmax of long rows split into runs that each fit a binding', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const small = await testDevice({ maxStorageBindingSize: 64 * 1024 }); // one 36000-byte row per run
    try {
      const x = randn([5, 9000], { seed: 22 });
      const before = small!.stats.dispatches;
      await checkArgmax(x, small!);
      expect(small!.stats.dispatches - before).toBe(5 * (small!.caps.software ? 1 : 2) + 5 * 2 + 5 * 2);
      await checkArgmax(randn([7, 3000], { seed: 23, dtype: 'bf16' }), small!); // 6000-byte rows, one pass
    } finally {
      small?.destroy();
    }
  });

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
