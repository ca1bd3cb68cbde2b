/**
 * `@proj/ops/kernel`: the pieces the built-in ops are written with, for writing new ops outside this
 * package: binding tensors to a kernel, packing uniforms, sizing grids, and WGSL snippets that read any
 * dtype as f32. See the guide `docs/writing-an-op.md`.
 * @packageDocumentation
 */
export { bind, bindRange, checkFloat, deviceOf, grid, isGpu, Params, type Run, runs } from './op.js';
export { declare, LINEAR_WORKGROUP, loader, params, storageType } from './wgsl.js';
