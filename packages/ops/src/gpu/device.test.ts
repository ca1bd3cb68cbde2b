import { empty, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { add } from '../ops/binary.js';
import { linear } from '../ops/linear.js';
import { sameBytes, testDevice } from '../testing.js';
import type { GpuStorage, WebGpuDevice } from './device.js';
import { DeviceLostError, GpuOpError } from './errors.js';

describe('WebGpuDevice', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('batches dispatches into one submit per read', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const a = tensor([1, 2, 3], [3], { device: gpu });
    const before = { ...gpu.stats };
    let x = a;
    for (let i = 0; i < 10; i++) x = add(x, a);
    expect([...(await x.toArray())]).toEqual([11, 22, 33]);
    expect(gpu.stats.dispatches - before.dispatches).toBe(10);
    expect(gpu.stats.submits - before.submits).toBe(1);
  });

  it('reuses pooled buffers once tensors are disposed', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const a = tensor([1, 2, 3], [3], { device: gpu });
    const run = async () => {
      const y = add(a, a);
      await y.toArray();
      y.dispose();
    };
    await run();
    const created = gpu.memory.created;
    for (let i = 0; i < 5; i++) await run();
    expect(gpu.memory.created).toBe(created);
  });

  it('reuses a buffer freed while a batch is recorded in the same batch', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const one = tensor(new Float32Array(1000).fill(1), [1000], { device: gpu });
    let x = add(one, one);
    await x.toArray(); // the pool now has what the steps below need, except one more buffer
    const created = gpu.memory.created;
    const submits = gpu.stats.submits;
    for (let i = 0; i < 50; i++) {
      const y = add(x, one);
      x.dispose(); // freed while the batch is open: the next add may write into it
      x = y;
    }
    expect((await x.toArray())[999]).toBe(52);
    expect(gpu.memory.created - created).toBeLessThanOrEqual(1); // not one per step
    expect(gpu.stats.submits - submits).toBe(1);
  });

  it('an upload into a buffer freed in the open batch waits for the batch (which still reads it)', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const a = tensor([1, 2, 3, 4], [4], { device: gpu });
    const doubled = add(a, a); // recorded, not submitted: reads a's buffer
    const buffer = (a.storage as GpuStorage).buffer;
    a.dispose();
    const c = tensor([100, 200, 300, 400], [4], { device: gpu }); // the same size class: a's buffer
    expect((c.storage as GpuStorage).buffer).toBe(buffer);
    expect([...(await doubled.toArray())]).toEqual([2, 4, 6, 8]);
    expect([...(await c.toArray())]).toEqual([100, 200, 300, 400]);
    // The same for a write into a live tensor that a recorded kernel reads.
    const tripled = add(add(c, c), c);
    gpu.write(c.storage, 0, new Uint8Array(new Float32Array([0, 0, 0, 0]).buffer));
    expect([...(await tripled.toArray())]).toEqual([300, 600, 900, 1200]);
    expect([...(await c.toArray())]).toEqual([0, 0, 0, 0]);
  });

  it('reports a shader error with the op name when the result is read', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const out = empty([4], 'f32', gpu);
    gpu.dispatch({
      op: 'broken-op',
      key: 'broken-op:1',
      wgsl: () => '@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }',
      buffers: [],
      workgroups: [1],
    });
    const error = await out.toArray().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuOpError);
    expect((error as GpuOpError).op).toBe('broken-op');
  });

  it('reports a bind group error with the op name (the batch scope finds it by label)', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const out = empty([4], 'f32', gpu);
    // The shader's uniform struct is 32 bytes; the 16-byte binding is a validation error.
    gpu.dispatch({
      op: 'bad-binding',
      key: 'bad-binding:1',
      wgsl: () =>
        'struct P { a: vec4u, b: vec4u }\n@group(0) @binding(0) var<uniform> p: P;\n' +
        '@compute @workgroup_size(1) fn main() { _ = p.b.x; }',
      buffers: [],
      uniforms: new Uint32Array(4),
      workgroups: [1],
    });
    const error = await out.toArray().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuOpError);
    expect((error as GpuOpError).message).toContain('bad-binding');
  });

  it('writes large data through its staging buffers, and the rest through writeBuffer when they are busy', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // 72 MiB + 6 bytes: four 16 MiB staging buffers take the first 64 MiB, writeBuffer the rest; then a
    // second write of 20 MiB after the first has run reuses the staging buffers once they are mapped again.
    const words = (72 << 18) + 1;
    const data = new Uint8Array(new Uint32Array(words).map((_, i) => i * 2654435761).buffer);
    const big = gpu.alloc(data.byteLength + 8);
    gpu.write(big, 4, data.subarray(0, data.byteLength - 2)); // an odd tail of 2 bytes too
    // (sameBytes: a deep toEqual of 75 million bytes takes minutes.)
    const back = await gpu.read(big);
    const written = back.subarray(4, 4 + data.byteLength - 2);
    expect(sameBytes(written, data.subarray(0, data.byteLength - 2))).toBe(true);
    const second = data.subarray(8, 8 + (20 << 20));
    gpu.write(big, 1 << 20, second);
    expect(sameBytes((await gpu.read(big)).subarray(1 << 20, (1 << 20) + second.byteLength), second)).toBe(
      true,
    );
    big.free();
  });

  it('writable() waits for a free staging buffer, so that paced writes never fall back to writeBuffer', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const chunk = 3 << 20; // ten writes through four staging buffers: the later ones must wait for one
    const data = new Uint8Array(10 * chunk).map((_, i) => (i * 131) >> 3);
    const big = gpu.alloc(data.byteLength);
    const writeBuffer = vi.spyOn(gpu.gpu.queue, 'writeBuffer');
    try {
      for (let at = 0; at < data.byteLength; at += chunk) {
        await gpu.writable();
        gpu.write(big, at, data.subarray(at, at + chunk));
      }
      expect(writeBuffer).not.toHaveBeenCalled();
    } finally {
      writeBuffer.mockRestore();
    }
    expect(sameBytes(await gpu.read(big), data)).toBe(true);
    big.free();
  });

  it('writable() fails with DeviceLostError when the device is destroyed while it waits', async () => {
    const doomed = await testDevice();
    if (!doomed) return;
    const target = doomed.alloc(4 << 20);
    const bytes = new Uint8Array(1 << 20);
    for (let i = 0; i < 4; i++) doomed.write(target, i << 20, bytes); // every staging buffer in flight
    const waiting = doomed.writable();
    doomed.destroy();
    await expect(waiting).rejects.toThrow(DeviceLostError);
  });

  it('refuses an allocation over the device limits, naming the op', ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    expect(() => gpu!.alloc(gpu!.caps.maxBufferSize + 1)).toThrow(
      /alloc: a buffer of \d+ bytes exceeds the device limit maxBufferSize/,
    );
  });

  it('runs the kernels the same with robustness off (Dawn compiles them without bounds clamping)', async () => {
    const unchecked = await testDevice({ robustness: false });
    if (!unchecked) return;
    const x = tensor([1, -2, 3, 0.5], [1, 4], { device: unchecked });
    const w = tensor([1, 2, 3, 4, 0, 1, 0, -1], [2, 4], { device: unchecked });
    expect([...(await add(x, x).toArray())]).toEqual([2, -4, 6, 1]);
    expect([...(await linear(x, w).toArray())]).toEqual([8, -2.5]);
    unchecked.destroy();
  });

  it('turns a lost device into DeviceLostError on the next op', async () => {
    const lost = await testDevice();
    if (!lost) return;
    const a = tensor([1], [1], { device: lost });
    lost.gpu.destroy(); // what a driver reset looks like to the program
    await lost.gpu.lost; // the loss is reported asynchronously (Dawn at once, Firefox some time later)
    expect(() => add(a, a)).toThrow(DeviceLostError);
    lost.destroy();
  });
});
