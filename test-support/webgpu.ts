/**
 * The WebGPU devices of a test file: created before its tests (`undefined` where there is no adapter and
 * `REQUIRE_WEBGPU` is not set, so that tests skip) and destroyed after them.
 */
import { afterAll, beforeAll } from 'vitest';
import type { WebGpuDevice, WebGpuDeviceOptions } from '../packages/ops/src/gpu/device.js';
import { testDevice } from '../packages/ops/src/testing.js';

/**
 * Creates one device per entry of `options` before the tests of the enclosing `describe` (or file) and
 * hands them to `assign` in the same order; destroys them after the tests. The split-binding tests pair a
 * whole-binding device with one whose bindings are small:
 *
 * ```ts
 * let gpu: WebGpuDevice | undefined;
 * let small: WebGpuDevice | undefined;
 * useTestDevices([{}, { maxStorageBindingSize: 1024 }], (d) => ([gpu, small] = d));
 * ```
 */
export function useTestDevices(
  options: readonly WebGpuDeviceOptions[],
  assign: (devices: (WebGpuDevice | undefined)[]) => void,
): void {
  let devices: (WebGpuDevice | undefined)[] = [];
  beforeAll(async () => {
    devices = [];
    for (const o of options) devices.push(await testDevice(o));
    assign(devices);
  });
  afterAll(() => {
    for (const d of devices) d?.destroy();
  });
}
