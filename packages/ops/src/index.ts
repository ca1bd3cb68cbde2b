/**
 * `@proj/ops`: the op set. Each op is typed by shape, implemented in WGSL for WebGPU devices and in plain
 * TypeScript for the CPU device (the reference the tests compare against).
 * @packageDocumentation
 */
export * from './gpu/acquire.js';
export * from './gpu/caps.js';
export * from './gpu/device.js';
export * from './gpu/errors.js';
export { sizeClass } from './gpu/pool.js';
export * from './ops/binary.js';
