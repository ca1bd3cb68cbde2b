/**
 * `@proj/ops`: the op set. Each op is typed by shape, implemented in WGSL for WebGPU devices and in plain
 * TypeScript for the CPU device (the reference the tests compare against).
 * @packageDocumentation
 */

export * from './gpu/acquire.js';
export * from './gpu/caps.js';
export * from './gpu/device.js';
export * from './gpu/errors.js';
export { GpuGraph, type GraphEntry, type PositionalWord } from './gpu/graph.js';
export * from './gpu/packing.js';
export { sizeClass } from './gpu/pool.js';
export { type KernelTime, MAX_TIMELINE, type Profile } from './gpu/profiler.js';
export * from './gpu/variants.js';
export type { OutDType, OutOptions } from './op.js';
export * from './ops/activations.js';
export * from './ops/attention.js';
export * from './ops/binary.js';
export * from './ops/embedding.js';
export * from './ops/kv-cache.js';
export * from './ops/layernorm.js';
export * from './ops/layout.js';
export * from './ops/linear.js';
export * from './ops/matmul.js';
export * from './ops/pack.js';
export * from './ops/reduce.js';
export * from './ops/rmsnorm.js';
export * from './ops/rope.js';
export * from './ops/rope-qkv.js';
export * from './ops/sample.js';
export * from './ops/softmax.js';
export * from './ops/swiglu-packed.js';
