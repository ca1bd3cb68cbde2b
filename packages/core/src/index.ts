/**
 * `@proj/core`: a small typed tensor core. Shapes are checked by the compiler where dims are known and at
 * run time always; dtypes f32, f16, bf16, i32, u32; CPU storage; safetensors I/O.
 *
 * Node-only pieces (reading files) live in `@proj/core/node`.
 * @packageDocumentation
 */
export * from './device.js';
export * from './dtype.js';
export * from './io/index.js';
export * from './random.js';
export * from './safetensors/index.js';
export * from './scope.js';
export * from './shape.js';
export type * from './shape-count.js';
export * from './tensor.js';
