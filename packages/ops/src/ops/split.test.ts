import { randn, type Tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { gelu, scale, silu, swiglu } from './activations.js';
import { add, mul } from './binary.js';
import { layernorm } from './layernorm.js';
import { matmul } from './matmul.js';
import { argmax, topk } from './reduce.js';
import { rmsnorm } from './rmsnorm.js';
import { softmax } from './softmax.js';
import { swigluPacked } from './swiglu-packed.js';

// Tensors over a 1 KiB binding limit, so that the elementwise and row ops run in several dispatches, each
// binding its part of every tensor from an aligned offset before it. Each result must equal, bit for bit,
// the same op on a device that binds the tensors whole: the kernel and its arithmetic are the same, only
// the split differs (the ops' own tests compare the kernels with the CPU references).
describe('elementwise and row ops on tensors larger than one binding', () => {
  let gpu: WebGpuDevice | undefined;
  let small: WebGpuDevice | undefined;
  useTestDevices([{}, { maxStorageBindingSize: 1024 }], (d) => ([gpu, small] = d));

  /** Runs `op` with its inputs moved to each device; the split run must be several dispatches. */
  async function same(name: string, op: (to: (t: Tensor) => Promise<Tensor>) => Promise<Tensor>) {
    const whole = await op((t) => t.to(gpu!));
    const before = small!.stats.dispatches;
    const split = await op((t) => t.to(small!));
    expect(small!.stats.dispatches - before, `${name}: dispatches`).toBeGreaterThan(2);
    expect(await split.toArray(), name).toEqual(await whole.toArray());
  }

  it('add and mul: same-shape and broadcast operands, f32 and bf16', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const a = randn([37, 13], { seed: 1 }); // 1924 bytes
    const b = randn([37, 13], { seed: 2, dtype: 'bf16' });
    const row = randn([13], { seed: 3 });
    const h = randn([1001], { seed: 4, dtype: 'bf16' }); // 2002 bytes, an odd count of 16-bit values
    await same('add a + b', async (to) => add(await to(a), await to(b)));
    await same('mul a * row', async (to) => mul(await to(a), await to(row)));
    await same('add bf16', async (to) => add(await to(h), await to(h)));
  });

  it('silu, gelu, scale, swiglu and swigluPacked', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([700], { seed: 5 });
    const y = randn([700], { seed: 6, dtype: 'bf16' });
    const packed = randn([21, 30], { seed: 7 }); // rows of 15 gate and 15 up values
    await same('silu', async (to) => silu(await to(x)));
    await same('gelu', async (to) => gelu(await to(y)));
    await same('scale', async (to) => scale(await to(x), 0.5));
    await same('swiglu', async (to) => swiglu(await to(x), await to(y)));
    await same('swigluPacked', async (to) => swigluPacked(await to(packed)));
  });

  it('softmax, argmax, topk, rmsnorm and layernorm split by whole rows', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const x = randn([23, 50], { seed: 8 }); // 200-byte rows: 3 per run
    const w = randn([50], { seed: 9 });
    const bias = randn([50], { seed: 10 });
    await same('softmax', async (to) => softmax(await to(x)));
    await same('argmax', async (to) => argmax(await to(x)));
    await same('topk values', async (to) => topk(await to(x), 5).values);
    await same('topk indices', async (to) => topk(await to(x), 5).indices);
    await same('rmsnorm', async (to) => rmsnorm(await to(x), await to(w)));
    await same('layernorm', async (to) => layernorm(await to(x), await to(w), await to(bias)));
  });

  it('matmul split by whole batches, with a batched or a shared b', async ({ skip }) => {
    if (!gpu || !small) return skip('no WebGPU adapter');
    const a = randn([7, 5, 6], { seed: 13 }); // 120-byte batches, 840 bytes in all
    const b = randn([7, 6, 9], { seed: 14 }); // 216-byte batches
    const shared = randn([6, 9], { seed: 15 });
    const wide = randn([20, 4, 6], { seed: 16, dtype: 'bf16' }); // out [20, 4, 9]: 2880 bytes
    await same('matmul batched', async (to) => matmul(await to(a), await to(b)));
    await same('matmul shared b', async (to) => matmul(await to(wide), await to(shared)));
  });

  it('throws naming the op when one row, or an operand bound whole, does not fit', async ({ skip }) => {
    if (!small) return skip('no WebGPU adapter');
    const wide = await randn([2, 300], { seed: 11 }).to(small); // 1200-byte rows
    expect(() => softmax(wide)).toThrow(GpuOpError);
    expect(() => softmax(wide)).toThrow('softmax: one unit of 1200 bytes does not fit a binding');
    const big = await randn([300], { seed: 12 }).to(small); // a weight over the limit
    expect(() => rmsnorm(wide, big)).toThrow('rmsnorm: ');
    for (const t of [wide, big]) t.dispose();
  });
});
