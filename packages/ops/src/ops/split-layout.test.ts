import { randn, type Tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { sameBytes } from '../testing.js';
import { cast, concat, copyInto, narrow, permute, transpose } from './layout.js';

// The layout ops on tensors over a 1 KiB binding limit: the destination is written in ranges of words
// that fit a binding, each from the windows of the source it reads. As in split.test.ts, each result must
// equal, bit for bit, the same op on a device that binds the tensors whole (layout.test.ts compares that
// one with the CPU). Sizes are odd so that 16-bit destinations split in the middle of words, ranges and
// windows start between aligned offsets, and windows cut rows. f16 needs no adapter feature here: the
// kernel moves bits (as in layout.test.ts).
describe('layout ops on tensors larger than one binding', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  useTestDevices([{}, { maxStorageBindingSize: 1024 }], (d) => ([gpu, small] = d));

  /**
   * Runs `op` with its inputs on each device; the stored bytes must be equal, and the split run must take
   * more dispatches than the whole-binding one (one per move), exactly `dispatches` when given.
   */
  async function same(
    name: string,
    inputs: Tensor[],
    op: (...xs: Tensor[]) => Tensor,
    dispatches?: number,
  ): Promise<void> {
    const run = async (device: WebGpuDevice) => {
      const onDevice = await Promise.all(inputs.map((t) => t.to(device)));
      const before = device.stats.dispatches;
      const out = op(...onDevice);
      const count = device.stats.dispatches - before;
      const bytes = await out.bytes();
      for (const t of new Set([...onDevice, out])) t.dispose();
      return { bytes, count };
    };
    const whole = await run(gpu!);
    const split = await run(small!);
    if (dispatches === undefined) expect(split.count, `${name}: dispatches`).toBeGreaterThan(whole.count);
    else expect(split.count, `${name}: dispatches`).toBe(dispatches);
    expect(sameBytes(split.bytes, whole.bytes), name).toBe(true);
  }

  it('permute and transpose read every source window for each destination range', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([7, 9, 11], { seed: 1 }); // 2772 bytes: 4 windows of 192 elements
    const h = randn([7, 9, 11], { seed: 2, dtype: 'bf16' }); // 693 elements: 1386 bytes
    await same('permute f32 [2, 0, 1]', [x], (t) => permute(t, [2, 0, 1]));
    await same('permute bf16 [1, 2, 0]', [h], (t) => permute(t, [1, 2, 0]));
    await same('transpose f32', [randn([23, 19], { seed: 3 })], transpose);
    await same('transpose f16', [randn([13, 41], { seed: 4, dtype: 'f16' })], transpose);
    await same('transpose bf16, batched', [randn([3, 11, 17], { seed: 5, dtype: 'bf16' })], transpose);
  });

  it('narrow on inner and outer axes', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([41, 17], { seed: 6 }); // 2788 bytes
    const h = randn([33, 17], { seed: 7, dtype: 'bf16' }); // 1122 bytes
    // Along the first axis the 13 rows are one contiguous stretch of the source: each destination range
    // (192 elements, 884 bytes in all) binds only the part of the source it reads, 2 dispatches.
    await same('narrow f32 axis 0', [x], (t) => narrow(t, 0, 5, 13), 2);
    await same('narrow f32 axis 1', [x], (t) => narrow(t, 1, 3, 9));
    await same('narrow bf16 axis 1', [h], (t) => narrow(t, -1, 5, 7));
    await same('narrow bf16 axis 0', [h], (t) => narrow(t, 0, 1, 31));
  });

  it('concat along inner and outer axes', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const a = randn([11, 5, 7], { seed: 8, dtype: 'bf16' });
    const b = randn([11, 4, 7], { seed: 9, dtype: 'bf16' }); // out [11, 9, 7]: 693 elements, 1386 bytes
    await same('concat bf16 axis 1', [a, b], (...xs) => concat(xs, 1));
    const c = randn([13, 3, 5], { seed: 10 });
    const d = randn([29, 3, 5], { seed: 11 }); // out [42, 3, 5] f32: 2520 bytes
    await same('concat f32 axis 0', [c, d], (...xs) => concat(xs, 0));
    await same('concat f32 axis 2', [c, randn([13, 3, 2], { seed: 12 })], (...xs) => concat(xs, -1));
  });

  it('cast f32 <-> bf16, f32 -> f16 and f16 -> f32', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([1001], { seed: 13, std: 4 }); // 4004 bytes
    // A contiguous copy reads one window per destination range: 1001 elements in ranges of 192.
    await same('cast f32 -> bf16', [x], (t) => cast(t, 'bf16'), Math.ceil(1001 / 192));
    await same('cast f32 -> f16', [x], (t) => cast(t, 'f16'));
    await same('cast bf16 -> f32', [randn([1001], { seed: 14, dtype: 'bf16' })], (t) => cast(t, 'f32'));
    await same('cast f16 -> f32', [randn([777], { seed: 15, dtype: 'f16' })], (t) => cast(t, 'f32'));
  });

  it('copyInto writes its rows and keeps the others, across ranges and windows', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    // A bf16 destination of 555 elements (odd rows of 15) takes f32 rows 7..19; an f32 destination takes
    // bf16 rows 11..39. The destination is returned: rows outside the copy must be as they were.
    const into = (offset: number) => (dst: Tensor, src: Tensor) => {
      copyInto(dst, src, { axis0Offset: offset });
      return dst;
    };
    const cache = randn([37, 3, 5], { seed: 16, dtype: 'bf16' });
    await same('copyInto bf16', [cache, randn([13, 3, 5], { seed: 17 })], into(7));
    const rows = randn([50, 7], { seed: 18 });
    await same('copyInto f32', [rows, randn([29, 7], { seed: 19, dtype: 'bf16' })], into(11));
  });
});
