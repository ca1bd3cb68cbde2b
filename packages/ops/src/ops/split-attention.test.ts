import { cpuFloats, randn, type Tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { lanesAttentionFits } from '../gpu/variants.js';
import { expectClose, sameBytes } from '../testing.js';
import { attention, attentionReference, attentionShape } from './attention.js';
import { KvCache } from './kv-cache.js';
import { rope, ropeTables } from './rope.js';
import { ropeQkv } from './rope-qkv.js';

// rope, ropeQkv, KvCache.append and attention on tensors over a small binding limit, so that they bind
// their tensors in parts (rows of x, the written rows of a KV cache, windows of key rows). As in
// split.test.ts, each result must equal the same op on a device that binds whole tensors, bit for bit:
// the kernels and their arithmetic are the same, only the bindings differ. Sizes are such that parts start
// between aligned offsets (rows of 80 or 120 bytes), so that the kernels must add where a part begins.

const invFreq = (half: number) => Float32Array.from({ length: half }, (_, i) => 10000 ** (-i / half));

/** The stored bytes of rows `[0, rows)` of a `[T, ...]` tensor (rows past them may be uninitialised). */
async function leadingRows(t: Tensor, rows: number): Promise<Uint8Array> {
  return (await t.bytes()).subarray(0, (t.storage.byteLength / t.shape[0]!) * rows);
}

describe('rope, ropeQkv and KvCache.append on tensors larger than one binding', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  useTestDevices([{}, { maxStorageBindingSize: 1024 }], (d) => ([gpu, small] = d));

  /** Runs `op` on each device; each byte array it returns must be equal, and the split run several dispatches. */
  async function same(name: string, op: (device: WebGpuDevice) => Promise<Uint8Array[]>) {
    const whole = await op(gpu!);
    const before = small!.stats.dispatches;
    const split = await op(small!);
    expect(small!.stats.dispatches - before, `${name}: dispatches`).toBeGreaterThan(2);
    expect(split.length).toBe(whole.length);
    for (const [i, bytes] of split.entries()) {
      expect(sameBytes(bytes, whole[i]!), `${name}: result ${i}`).toBe(true);
    }
  }

  it('rope splits x and out by rows (both layouts, with an offset); the tables are bound whole', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([29, 3, 10], { seed: 1 }); // 120-byte rows, 3480 bytes: 6 rows per run
    const h = randn([29, 3, 10], { seed: 2, dtype: 'bf16' }); // 60-byte rows; out is f32
    type Rows = Tensor<readonly [number, number, number]>;
    const run = (t: Rows, offset: number, layout: 'half' | 'interleaved') => async (d: WebGpuDevice) => {
      const tables = ropeTables(invFreq(5), 40, d); // 800 bytes each
      return [await rope(await t.to(d), tables, { offset, layout }).bytes()];
    };
    await same('rope half', run(x, 7, 'half'));
    await same('rope interleaved bf16', run(h, 3, 'interleaved'));
  });

  it('KvCache.append and ropeQkv bind only the cache rows they write, past the first binding', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const [maxSeq, heads, kvHeads, headDim] = [48, 4, 2, 10]; // cache: 80-byte rows, 3840 bytes
    const k = randn([40, kvHeads, headDim], { seed: 3 }); // 3200 bytes: 9 rows per run
    const v = randn([40, kvHeads, headDim], { seed: 4, dtype: 'bf16' }); // cache rows twice its rows
    const prefill = randn([5, (heads + 2 * kvHeads) * headDim], { seed: 5 }); // 320-byte rows
    const decode = randn([1, (heads + 2 * kvHeads) * headDim], { seed: 6, dtype: 'bf16' });
    await same('append + ropeQkv', async (d) => {
      const tables = ropeTables(invFreq(headDim / 2), maxSeq, d); // 960 bytes each: bound whole
      using cache = new KvCache(d, { maxSeq, kvHeads, headDim });
      cache.append(await k.to(d), await v.to(d)); // rows [0, 40)
      const q1 = ropeQkv(await prefill.to(d), tables, cache, { heads }); // rows [40, 45): byte 3200 on
      const q2 = ropeQkv(await decode.to(d), tables, cache, { heads }); // row 45
      expect(cache.length).toBe(46);
      return [
        await q1.bytes(),
        await q2.bytes(),
        await leadingRows(cache.k, 46),
        await leadingRows(cache.v, 46),
      ];
    });
  });
});

describe('attention over a KV cache larger than one binding', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  // kv rows of 2 heads x 8 = 64 bytes: one 64-key block (4096 bytes) fits a binding after the 256-byte
  // alignment slack (and 128 bytes more), so each window holds one block and 300 keys take 5 windows.
  const [heads, kvHeads, headDim, maxSeq] = [4, 2, 8, 320];
  useTestDevices([{}, { maxStorageBindingSize: 4096 + 256 + 128 }], (d) => ([gpu, small] = d));

  /**
   * Fills a cache on `device` with `length` rows and attends with `seq` query rows (the last `seq`
   * positions); returns the output and the dispatches of the attention alone.
   */
  async function attend(device: WebGpuDevice, length: number, seq: number, keysPerWorkgroup?: number) {
    const k = randn([length, kvHeads, headDim], { seed: length });
    const v = randn([length, kvHeads, headDim], { seed: length + 1 });
    const q = randn([seq, heads, headDim], { seed: length + 2 });
    using cache = new KvCache(device, { maxSeq, kvHeads, headDim });
    cache.append(await k.to(device), await v.to(device));
    const gq = await q.to(device);
    const before = device.stats.dispatches;
    const out = cache.attend(gq, keysPerWorkgroup ? { keysPerWorkgroup } : {});
    const dispatches = device.stats.dispatches - before;
    const { dims, options } = attentionShape(q.shape, k.shape, v.shape, { offset: length - seq, length });
    const reference = attentionReference(cpuFloats(q), cpuFloats(k), cpuFloats(v), dims, options);
    return { bytes: await out.bytes(), values: await out.toArray(), dispatches, reference };
  }

  // [length, query rows, dispatches on the whole-binding device and on the split one, with 64-key
  // chunks]: a decode step, and causal prefills of several rows; lengths 50, 130 and 300 are not multiples
  // of 64. Each window of keys is one dispatch, then one merge. Query rows go in runs when q, out (128-byte
  // rows) or the partial sums (192 bytes a row per chunk) do not fit a binding, each run its windows and
  // merge: 17 rows at 5 chunks in runs of 4, 40 rows at 3 chunks in runs of 7. 50 keys fit one binding:
  // one chunk, no merge, 40 query rows in runs of 33. Most runs start between aligned offsets.
  const cases = [
    [300, 1, 2, 5 + 1],
    [300, 17, 2, 5 * (5 + 1)],
    [130, 3, 2, 3 + 1],
    [130, 40, 2, 6 * (3 + 1)],
    [50, 40, 1, 2],
  ] as const;

  it('with 64-key chunks on both devices: bit for bit, one dispatch per window and a merge', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    for (const [length, seq, wholeDispatches, splitDispatches] of cases) {
      // Both split the keys into the same 64-key chunks, so every chunk's partial softmax and the merge
      // are the same arithmetic; only which dispatch computes a chunk differs.
      const whole = await attend(gpu, length, seq, 64);
      const split = await attend(small, length, seq, 64);
      expect(whole.dispatches, `whole ${length}/${seq}`).toBe(wholeDispatches);
      expect(split.dispatches, `split ${length}/${seq}`).toBe(splitDispatches);
      expect(sameBytes(split.bytes, whole.bytes), `${length}/${seq}`).toBe(true);
    }
  });

  it('by default: the same as the reference (the whole-binding device does not split keys here)', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    for (const [length, seq] of cases) {
      // A software adapter attends to all keys in one chunk when they fit one binding, the split device
      // in 64-key windows merged after: a different order of summation, so not bit for bit. Both are
      // held to the tolerance of attention.test.ts (f32 against the f64 reference: 1e-5).
      const whole = await attend(gpu, length, seq);
      const split = await attend(small, length, seq);
      expect(whole.dispatches).toBe(1);
      expect(split.dispatches).toBeGreaterThan(1);
      expectClose(whole.values, whole.reference, { atol: 1e-5, what: `whole ${length}/${seq}` });
      expectClose(split.values, split.reference, { atol: 1e-5, what: `split ${length}/${seq}` });
    }
  });

  it('the lanes kernel runs query rows in runs when q and out do not fit a binding: bit for bit', async ({
    skip,
  }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    if (!lanesAttentionFits(small.caps, 32)) return skip('this adapter cannot run the lanes kernel');
    // Dh 32, one kv head: 30 key rows of 128 bytes fit one binding; q and out rows are 384 bytes, so 17
    // rows go in runs of 11, the second starting 128 bytes past an aligned offset (the kernel must add
    // where its rows begin). Each row's arithmetic is the same in any run.
    const q = randn([17, 3, 32], { seed: 11 });
    const k = randn([30, 1, 32], { seed: 12 });
    const v = randn([30, 1, 32], { seed: 13 });
    const run = async (device: WebGpuDevice) => {
      const [gq, gk, gv] = await Promise.all([q.to(device), k.to(device), v.to(device)]);
      const before = device.stats.dispatches;
      const out = attention(gq, gk, gv, { offset: 13, kernel: 'lanes' });
      return { bytes: await out.bytes(), dispatches: device.stats.dispatches - before };
    };
    const whole = await run(gpu);
    const split = await run(small);
    expect([whole.dispatches, split.dispatches]).toEqual([1, 2]);
    expect(sameBytes(split.bytes, whole.bytes)).toBe(true);
  });

  it('throws naming the op when one block of 64 key rows does not fit a binding', async ({ skip }) => {
    if (!small) return skip('no WebGPU adapter');
    using cache = new KvCache(small, { maxSeq: 200, kvHeads: 4, headDim: 8 }); // 128-byte rows
    cache.append(await randn([150, 4, 8], { seed: 9 }).to(small), await randn([150, 4, 8]).to(small));
    const q = await randn([1, 4, 8], { seed: 10 }).to(small);
    expect(() => cache.attend(q)).toThrow(GpuOpError);
    expect(() => cache.attend(q)).toThrow('attention: 64 key rows of 128 bytes do not fit a binding');
    q.dispose();
  });
});
