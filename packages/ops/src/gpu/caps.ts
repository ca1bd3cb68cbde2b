/**
 * What the adapter can do, read once when the device is created. Every choice that depends on the adapter
 * (which kernel variant, how large a binding may be) reads this, and the variant table lives in
 * `variants.ts`.
 * @module
 */
/// <reference types="@webgpu/types" />

/** The adapter's capabilities and limits that the kernels care about. */
export interface GpuCaps {
  /** `shader-f16` is enabled on the device. */
  f16: boolean;
  /** `subgroups` is enabled on the device. */
  subgroups: boolean;
  /** The smallest subgroup the adapter may run (0 without `subgroups` or when it does not say). */
  subgroupMinSize: number;
  /** `timestamp-query` is enabled on the device: {@link WebGpuDevice.startProfile} can time kernels. */
  timestamps: boolean;
  /** The adapter is a CPU implementation (lavapipe, SwiftShader, WARP): kernels want CPU-shaped loops. */
  software: boolean;
  /** Largest storage binding in bytes; larger tensors are bound in several ranges. */
  maxStorageBindingSize: number;
  /** Largest buffer in bytes. */
  maxBufferSize: number;
  /** Largest workgroup count per dimension. */
  maxWorkgroupsPerDimension: number;
  /** Largest workgroup size (x * y * z). */
  maxInvocationsPerWorkgroup: number;
  /** Workgroup shared memory in bytes. */
  maxWorkgroupStorageSize: number;
  /** Storage binding offsets must be multiples of this. */
  storageOffsetAlignment: number;
  /** Uniform binding offsets must be multiples of this. */
  uniformOffsetAlignment: number;
}

/** Reads the capabilities of an adapter/device pair. */
export function readCaps(adapter: GPUAdapter, device: GPUDevice): GpuCaps {
  const info = adapter.info;
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`.toLowerCase();
  const l = device.limits;
  return {
    f16: device.features.has('shader-f16'),
    subgroups: device.features.has('subgroups'),
    subgroupMinSize: device.features.has('subgroups')
      ? ((info as { subgroupMinSize?: number }).subgroupMinSize ?? 0)
      : 0,
    timestamps: device.features.has('timestamp-query'),
    software:
      Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter) ||
      /llvmpipe|lavapipe|swiftshader|software|warp/.test(text),
    maxStorageBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    storageOffsetAlignment: l.minStorageBufferOffsetAlignment,
    uniformOffsetAlignment: l.minUniformBufferOffsetAlignment,
  };
}

/** A one-line description of an adapter, for logs and benchmark results. */
export function describeAdapter(adapter: GPUAdapter): string {
  const i = adapter.info;
  const parts = [i.description, i.vendor && `vendor ${i.vendor}`, i.architecture && `arch ${i.architecture}`];
  // Firefox tells pages nothing about the adapter but whether it is a fallback (software) one.
  const fallback = (i as { isFallbackAdapter?: boolean }).isFallbackAdapter
    ? 'fallback (software) adapter'
    : '';
  return parts.filter(Boolean).join(', ') || fallback || 'unknown adapter';
}
