import { cpuFloats, randn, type Shape, type Tensor, tensor, zeros } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { type AttentionKernel, lanesAttentionFits } from '../gpu/variants.js';
import { expectClose, maxAbsDiff, testDevice } from '../testing.js';
import { type AttentionOptions, attention, attentionReference, attentionShape } from './attention.js';

/** The CPU reference of `attention(q, k, v, options)` on host tensors. */
function reference(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Float32Array {
  const { dims, options: o } = attentionShape(q.shape, k.shape, v.shape, options);
  return attentionReference(cpuFloats(q), cpuFloats(k), cpuFloats(v), dims, o);
}

/** `[T, Hkv, Dh]` -> `[T, Hq, Dh]` where head h is kv head `from(h)` (Meta's repeat_kv when from = h / group). */
function expandHeads(t: Tensor, heads: number, from: (h: number) => number): Tensor<Shape, 'f32'> {
  const [rows, kvHeads, dh] = t.shape as [number, number, number];
  const src = cpuFloats(t);
  const out = new Float32Array(rows * heads * dh);
  for (let j = 0; j < rows; j++)
    for (let h = 0; h < heads; h++)
      out.set(
        src.subarray((j * kvHeads + from(h)) * dh, (j * kvHeads + from(h) + 1) * dh),
        (j * heads + h) * dh,
      );
  return tensor(out, [rows, heads, dh]);
}

/** Replaces rows `>= from` of a `[T, H, D]` tensor by other random values. */
function changeRowsFrom(t: Tensor, from: number, seed: number): Tensor {
  const data = cpuFloats(t).slice();
  const rowSize = t.numel / t.shape[0]!;
  const noise = cpuFloats(randn([t.numel], { seed }));
  for (let i = from * rowSize; i < data.length; i++) data[i] = noise[i]!;
  return tensor(data, t.shape);
}

describe('attention on the CPU', () => {
  it('with q = 0 every visible key weighs the same: row i is the mean of v rows 0..offset+i', async () => {
    const v = tensor([1, 2, 3, 4, 5, 6, 7, 8], [4, 1, 2]);
    const out = attention(zeros([2, 1, 2]), zeros([4, 1, 2]), v, { offset: 1 });
    // row 0 (position 1) sees v rows 0..1, row 1 (position 2) sees rows 0..2; row 3 is past the length
    expect([...(await out.toArray())]).toEqual([2, 3, 3, 4]);
    const open = attention(zeros([2, 1, 2]), zeros([4, 1, 2]), v, { offset: 1, causal: false });
    expect([...(await open.toArray())]).toEqual([3, 4, 3, 4]); // both rows see rows 0..2 (length 3)
  });

  it('rejects bad shapes and options, naming the op and the sizes', () => {
    const q = zeros([2, 6, 8] as number[]);
    const k = zeros([4, 4, 8] as number[]);
    expect(() => attention(q, k, k, { offset: 0 })).toThrow(
      "attention: q's 6 heads are not a multiple of k's 4 kv heads (q [2, 6, 8], k [4, 4, 8], v [4, 4, 8])",
    );
    const k16 = zeros([4, 2, 16] as number[]);
    expect(() => attention(q, k16, k16, { offset: 0 })).toThrow(
      'attention: head dims differ: q has Dh = 8, k has 16',
    );
    const k2 = zeros([4, 2, 8] as number[]);
    expect(() => attention(q, k2, zeros([3, 2, 8] as number[]), { offset: 0 })).toThrow(
      "attention: v must have k's shape [T, Hkv, Dh]: q [2, 6, 8], k [4, 2, 8], v [3, 2, 8]",
    );
    expect(() => attention(q, k2, k2, { offset: 3 })).toThrow(
      "attention: length 5 is outside k's 4 rows (q [2, 6, 8], k [4, 2, 8], v [4, 2, 8], offset 3)",
    );
    expect(() => attention(q, k2, k2, { offset: 0, length: 7 })).toThrow('attention: length 7 is outside');
    expect(() => attention(zeros([2, 48] as number[]), k2, k2, { offset: 0 })).toThrow(
      'attention: q must be [S, Hq, Dh], k [T, Hkv, Dh]: q [2, 48]',
    );
  });

  it('keeps shape errors compile errors where dims are literal', () => {
    const q = zeros([2, 4, 8]);
    const k = zeros([3, 2, 8]);
    // @ts-expect-error Dh of k (16) differs from q's (8)
    expect(() => attention(q, zeros([3, 2, 16]), zeros([3, 2, 16]), { offset: 0 })).toThrow('head dims');
    // @ts-expect-error v's shape differs from k's
    expect(() => attention(q, k, zeros([3, 1, 8]), { offset: 0 })).toThrow("v must have k's shape");
    // @ts-expect-error q must have rank 3
    expect(() => attention(zeros([2, 32]), k, k, { offset: 0 })).toThrow('q must be');
    const typed: Tensor<readonly [2, 4, 8], 'f32'> = attention(q, k, k, { offset: 1 });
    expect(typed.shape).toEqual([2, 4, 8]);
  });
});

describe('attention on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  /**
   * The kernels `attention` can run for `headDim` with `options` here: `blocks` always, `lanes` where it
   * fits (`keysPerWorkgroup` is a `blocks` option). Each test runs every one of them.
   */
  function kernels(headDim: number, options: AttentionOptions = { offset: 0 }): AttentionKernel[] {
    const lanes = lanesAttentionFits(gpu!.caps, headDim) && options.keysPerWorkgroup === undefined;
    return lanes ? ['blocks', 'lanes'] : ['blocks'];
  }

  async function compare(
    [seq, heads, kvHeads, headDim, keys]: number[],
    options: AttentionOptions,
    atol: number,
    seed = 0,
  ): Promise<void> {
    const q = randn([seq!, heads!, headDim!], { seed: seed + 1 });
    const k = randn([keys!, kvHeads!, headDim!], { seed: seed + 2 });
    const v = randn([keys!, kvHeads!, headDim!], { seed: seed + 3 });
    const [gq, gk, gv] = await Promise.all([q.to(gpu!), k.to(gpu!), v.to(gpu!)]);
    const expected = reference(q, k, v, options);
    for (const kernel of kernels(headDim!, options)) {
      const out = attention(gq, gk, gv, { ...options, kernel });
      const actual = await out.toArray();
      out.dispose();
      // f32 vs the f64 reference: each logit sums Dh products of N(0, 1) values and is scaled to ~N(0, 1),
      // so its rounding error is ~1e-7 * sqrt(Dh) (< 2e-6 at Dh = 128); exp adds a few ulp; the output is a
      // convex combination of v rows (|v| < 5), so |error| stays under ~1e-5. Measured: <= 8e-7.
      expectClose(actual, expected, {
        atol,
        what: `attention (${kernel}) ${[seq, heads, kvHeads, headDim, keys]}`,
      });
    }
    for (const t of [gq, gk, gv]) t.dispose();
  }

  // Awkward sizes: 1 row (decode), 3, 17 rows; 1, 5, 37 and 300 filled keys (300 spans 5 blocks of 64) in
  // a cache with 3 spare rows; each Dh with each head grouping.
  // (The lanes kernel takes 4, 2, 3 or 1 query heads of a kv head per workgroup, fewer for large heads:
  // groups of 1, 2, 3, 4 and 8 cover each way it divides them.)
  const headConfigs = [
    [1, 1],
    [4, 2],
    [6, 2],
    [8, 2],
    [16, 2],
    [32, 8],
  ] as const;
  for (const headDim of [8, 16, 64, 128]) {
    for (const [heads, kvHeads] of headConfigs) {
      it(`Dh ${headDim}, ${heads}/${kvHeads} heads, S in {1, 3, 17} x length in {1, 5, 37, 300}`, async ({
        skip,
      }) => {
        if (!gpu) return skip('no WebGPU adapter');
        for (const seq of [1, 3, 17]) {
          for (const length of [1, 5, 37, 300]) {
            // A prefill/decode step ends at `length` when it can; shorter lengths exercise rows past it.
            const offset = Math.max(0, length - seq);
            await compare([seq, heads, kvHeads, headDim, length + 3], { offset, length }, 1e-5);
          }
        }
      });
    }
  }

  it('non-causal, a custom scale, and very peaked softmaxes', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await compare([17, 8, 2, 64, 100], { offset: 40, length: 90, causal: false }, 1e-5, 10);
    // scale 1 makes logits ~N(0, 64): softmax is nearly one-hot and exp sees arguments down to -100s; the
    // logits are 8x larger and so is their rounding error: tolerance 10x. Measured: 1.8e-6.
    await compare([5, 4, 2, 64, 200], { offset: 195, scale: 1 }, 1e-4, 20);
  });

  it('other head sizes: 4 (one column), 96 (lanes left over), 256 (the largest); 6 is refused', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const headDim of [4, 96, 256]) await compare([3, 4, 2, headDim, 70], { offset: 67 }, 1e-5, headDim);
    const odd = await randn([1, 1, 6], { seed: 1 }).to(gpu);
    expect(() => attention(odd, odd, odd, { offset: 0 })).toThrow(
      'attention: the WebGPU kernel needs Dh a multiple of 4 and at most 256, got Dh = 6',
    );
    odd.dispose();
  });

  it('keys split over several workgroups and merged (the GPU default for decode) give the same result', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // Chunks of 64 and 128 (100 rounds up): a decode over 5 chunks; a prefill whose early rows leave
    // whole chunks empty; a non-causal call; 32/8 heads at Dh 128.
    for (const keysPerWorkgroup of [64, 100]) {
      await compare([1, 8, 2, 64, 300], { offset: 299, keysPerWorkgroup }, 1e-5, 40);
      await compare([17, 4, 2, 16, 300], { offset: 0, length: 300, keysPerWorkgroup }, 1e-5, 41);
      await compare([3, 4, 1, 8, 200], { offset: 0, causal: false, keysPerWorkgroup }, 1e-5, 42);
      await compare([2, 32, 8, 128, 1000], { offset: 998, keysPerWorkgroup }, 1e-5, 43);
    }
  });

  it('a long decode (S = 1, T = 1024, 32/8 heads, Dh 64), the Llama 3 8B layer shape', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await compare([1, 32, 8, 64, 1024], { offset: 1023 }, 1e-5, 30);
  });

  it('causal mask: rows at positions <= p ignore k/v rows > p bit for bit; causal=false does not', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const [seq, heads, kvHeads, headDim, offset] = [17, 4, 2, 32, 70]; // rows sit at positions 70..86
    const keys = offset + seq;
    const q = await randn([seq, heads, headDim], { seed: 1 }).to(gpu);
    const k = randn([keys, kvHeads, headDim], { seed: 2 });
    const v = randn([keys, kvHeads, headDim], { seed: 3 });
    for (const kernel of kernels(headDim)) {
      const run = async (kk: Tensor, vv: Tensor, causal: boolean) => {
        const [gk, gv] = await Promise.all([kk.to(gpu!), vv.to(gpu!)]);
        const out = attention(q, gk, gv, { offset, causal, kernel });
        const data = await out.toArray();
        for (const t of [gk, gv, out]) t.dispose();
        return data;
      };
      const base = await run(k, v, true);
      const baseOpen = await run(k, v, false);
      const rowSize = heads * headDim;
      for (let p = offset; p < keys - 1; p++) {
        const k2 = changeRowsFrom(k, p + 1, 100 + p);
        const v2 = changeRowsFrom(v, p + 1, 200 + p);
        const changed = await run(k2, v2, true);
        const seen = (p - offset + 1) * rowSize; // rows at positions <= p
        expect(maxAbsDiff(changed.subarray(0, seen), base.subarray(0, seen)).diff).toBe(0);
        expect(maxAbsDiff(changed.subarray(seen), base.subarray(seen)).diff).toBeGreaterThan(1e-3);
        const open = await run(k2, v2, false);
        expect(maxAbsDiff(open.subarray(0, seen), baseOpen.subarray(0, seen)).diff).toBeGreaterThan(1e-3);
      }
    }
    q.dispose();
  });

  it('GQA: query head h reads kv head h / (Hq / Hkv), not h % Hkv', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    for (const [heads, kvHeads] of [
      [8, 2],
      [32, 8],
    ] as const) {
      const group = heads / kvHeads;
      const [seq, headDim, keys] = [3, 32, 9];
      const q = randn([seq, heads, headDim], { seed: 4 });
      const k = randn([keys, kvHeads, headDim], { seed: 5 });
      // kv head g holds values near 10 * g, so using the wrong head moves the output by >= 10 - noise
      const vData = cpuFloats(randn([keys, kvHeads, headDim], { seed: 6 })).slice();
      for (let i = 0; i < vData.length; i++) vData[i]! += 10 * (Math.floor(i / headDim) % kvHeads);
      const v = tensor(vData, [keys, kvHeads, headDim]);
      const options = { offset: keys - seq };
      const [gq, gk, gv] = await Promise.all([q.to(gpu), k.to(gpu), v.to(gpu)]);
      for (const kernel of kernels(headDim)) {
        const out = attention(gq, gk, gv, { ...options, kernel });
        const actual = await out.toArray();
        out.dispose();
        expectClose(actual, reference(q, k, v, options), {
          atol: 1e-5,
          rtol: 1e-6,
          what: 'GQA vs reference',
        });
        // The reference agrees with attention over kv heads repeated Meta's way (repeat_kv: h -> h / group) ...
        const meta = (h: number) => Math.floor(h / group);
        const [mk, mv] = [expandHeads(k, heads, meta), expandHeads(v, heads, meta)];
        expectClose(actual, reference(q, mk, mv, options), {
          atol: 1e-5,
          rtol: 1e-6,
          what: 'GQA vs repeat_kv',
        });
        // ... and not with the interleaved mapping h -> h % Hkv.
        const wrong = (h: number) => h % kvHeads;
        const other = reference(q, expandHeads(k, heads, wrong), expandHeads(v, heads, wrong), options);
        expect(maxAbsDiff(actual, other).diff).toBeGreaterThan(5);
      }
      for (const t of [gq, gk, gv]) t.dispose();
    }
  });
});
