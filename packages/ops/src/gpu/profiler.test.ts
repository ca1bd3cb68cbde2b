import { randn, tensor } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import { add } from '../ops/binary.js';
import { matmul } from '../ops/matmul.js';
import { softmax } from '../ops/softmax.js';
import { testDevice } from '../testing.js';
import type { WebGpuDevice } from './device.js';
import { DeviceLostError, GpuOpError } from './errors.js';

describe('WebGpuDevice.startProfile / stopProfile', () => {
  let gpu: WebGpuDevice | undefined;
  useTestDevices([{}], (d) => ([gpu] = d));

  it('times each dispatch by op, in order, without changing results', async ({ skip }) => {
    if (!gpu?.caps.timestamps) return skip('no WebGPU adapter with timestamp-query');
    const a = randn([96, 96], { seed: 1, device: gpu });
    const expected = await softmax(matmul(a, a)).toArray();
    gpu.startProfile();
    const results = [];
    for (let i = 0; i < 3; i++) results.push(softmax(matmul(a, a)));
    const profile = await gpu.stopProfile();
    for (const r of results) expect(await r.toArray()).toEqual(expected);
    expect(profile.timeline.map((d) => d.op)).toEqual([
      'matmul',
      'softmax',
      'matmul',
      'softmax',
      'matmul',
      'softmax',
    ]);
    expect(profile.kernels.map((k) => [k.op, k.calls]).sort()).toEqual([
      ['matmul', 3],
      ['softmax', 3],
    ]);
    for (const k of profile.kernels) expect(k.ms).toBeGreaterThan(0);
    expect(profile.kernels[0]!.ms).toBeGreaterThanOrEqual(profile.kernels[1]!.ms); // most time first
    const sum = profile.timeline.reduce((s, d) => s + d.ms, 0);
    expect(profile.totalMs).toBeCloseTo(sum, 9);
  });

  it('counts every dispatch over several submits, and only those between start and stop', async ({
    skip,
  }) => {
    if (!gpu?.caps.timestamps) return skip('no WebGPU adapter with timestamp-query');
    const one = tensor([1], [1], { device: gpu });
    let x = add(one, one); // recorded before the profile: not counted
    gpu.startProfile();
    // More than one submit holds (2048 dispatches), and a read in the middle flushes early.
    for (let i = 0; i < 2100; i++) {
      x = add(x, one);
      if (i === 10) await x.toArray();
    }
    const profile = await gpu.stopProfile();
    add(x, one); // after the profile: not counted either
    expect(profile.kernels).toEqual([{ op: 'add', calls: 2100, ms: expect.any(Number) }]);
    expect(profile.timeline).toHaveLength(2100);
    expect([...(await x.toArray())]).toEqual([2102]);
  });

  it('reports a device lost during the profile as DeviceLostError', async ({ skip }) => {
    const doomed = await testDevice();
    if (!doomed?.caps.timestamps) {
      doomed?.destroy();
      return skip('no WebGPU adapter with timestamp-query');
    }
    const one = tensor([1], [1], { device: doomed });
    doomed.startProfile();
    add(one, one);
    doomed.flush();
    doomed.gpu.destroy(); // what a driver reset looks like to the program
    await expect(doomed.stopProfile()).rejects.toThrow(DeviceLostError);
    doomed.destroy();
  });

  it('says what is wrong when used out of order or without timestamps', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    await expect(gpu.stopProfile()).rejects.toThrow(/no profile is running/);
    if (gpu.caps.timestamps) {
      gpu.startProfile();
      expect(() => gpu!.startProfile()).toThrow(/already running/);
      await gpu.stopProfile();
    }
    const caps = gpu.caps as { timestamps: boolean };
    const had = caps.timestamps;
    caps.timestamps = false;
    try {
      expect(() => gpu!.startProfile()).toThrow(GpuOpError);
      expect(() => gpu!.startProfile()).toThrow(/timestamp-query/);
    } finally {
      caps.timestamps = had;
    }
  });
});
