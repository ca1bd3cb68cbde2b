/**
 * Finding a WebGPU implementation: `navigator.gpu` in browsers (and runtimes that have it), Dawn through
 * the npm package `webgpu` in Node.
 * @module
 */
/// <reference types="@webgpu/types" />

/** Why no adapter could be had, with what to do about it. */
export class NoAdapterError extends Error {
  /** The message says how to get an adapter. */
  constructor(detail: string) {
    super(
      `WebGPU: no adapter available (${detail}). Install a GPU driver with Vulkan, Metal or D3D12 support, ` +
        'or on Linux without a GPU the software Vulkan driver (Mesa lavapipe: `apt-get install mesa-vulkan-drivers ' +
        'libvulkan1`, Mesa 24 or newer). Tensors can still run on the CPU device.',
    );
    this.name = 'NoAdapterError';
  }
}

/** A GPU entry point plus what must be dropped when done (Dawn keeps Node alive while its instance lives). */
export interface GpuEntry {
  /** The `navigator.gpu`-like object. */
  gpu: GPU;
  /** Where it came from. */
  source: 'navigator' | 'dawn';
}

/**
 * Dawn's options: full-precision timestamps. Dawn rounds timestamp queries down to multiples of 2^16 ns
 * by default (as browsers do, against timing attacks), which is coarser than most decode kernels; in Node
 * there is no page to protect, and the profiler needs the precision (see `WebGpuDevice.startProfile`).
 */
const DAWN_FLAGS = ['disable-dawn-features=timestamp_quantization'];

/**
 * The platform's WebGPU entry point: `navigator.gpu` if present, else Dawn's Node binding (with bounds
 * clamping in shaders unless `robustness` is false: see `WebGpuDeviceOptions.robustness`).
 */
export async function acquireGpu(options: { robustness?: boolean } = {}): Promise<GpuEntry> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return { gpu: nav.gpu, source: 'navigator' };
  let dawn: { create?(flags: string[]): GPU };
  try {
    dawn = (await import('webgpu')) as unknown as typeof dawn;
  } catch (error) {
    throw new NoAdapterError(`the Node binding 'webgpu' could not be loaded: ${(error as Error).message}`);
  }
  // Browser bundles replace the binding with an empty module (the package's "browser" field).
  if (typeof dawn.create !== 'function') throw new NoAdapterError('this browser has no navigator.gpu');
  const flags =
    options.robustness === false ? [...DAWN_FLAGS, 'enable-dawn-features=disable_robustness'] : DAWN_FLAGS;
  return { gpu: dawn.create(flags), source: 'dawn' };
}
