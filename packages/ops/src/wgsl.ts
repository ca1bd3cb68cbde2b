/**
 * WGSL snippets shared by the kernels: declaring a tensor binding and reading its elements as f32 whatever
 * its dtype. 16-bit floats are bound as `array<u32>` and unpacked in the kernel, so checkpoints stay in
 * their own bytes on the GPU: bf16 is exact (it is the top half of an f32), f16 uses `unpack2x16float`,
 * which is core WGSL and needs no `shader-f16`.
 * @module
 */
import type { DType } from '@proj/core';

/** The WGSL element type a tensor of `dtype` is bound as. */
export function storageType(dtype: DType): string {
  return dtype === 'f32' ? 'f32' : dtype === 'i32' ? 'i32' : 'u32';
}

/** `@binding(b) var<storage, access> name: array<T>;` for a tensor of `dtype`. */
export function declare(
  binding: number,
  name: string,
  dtype: DType,
  access: 'read' | 'read_write' = 'read',
): string {
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${storageType(dtype)}>;`;
}

/** A function `name_at(i: u32) -> f32` reading element `i` of binding `name` holding `dtype`. */
export function loader(name: string, dtype: DType): string {
  switch (dtype) {
    case 'f32':
      return `fn ${name}_at(i: u32) -> f32 { return ${name}[i]; }`;
    case 'bf16':
      return `fn ${name}_at(i: u32) -> f32 { return bitcast<f32>(((${name}[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }`;
    case 'f16':
      return `fn ${name}_at(i: u32) -> f32 { return unpack2x16float(${name}[i >> 1u])[i & 1u]; }`;
    case 'i32':
    case 'u32':
      return `fn ${name}_at(i: u32) -> f32 { return f32(${name}[i]); }`;
  }
}

/** A uniform struct declaration `struct Params { a: u32, ... }` bound at `binding`. */
export function params(binding: number, fields: Record<string, 'u32' | 'i32' | 'f32'>): string {
  const body = Object.entries(fields)
    .map(([k, t]) => `${k}: ${t},`)
    .join(' ');
  return `struct Params { ${body} }\n@group(0) @binding(${binding}) var<uniform> p: Params;`;
}

/** The linear workgroup index in a 2D grid from {@link grid} (`wid`, `nwg` are the builtins). */
export const LINEAR_WORKGROUP = 'let wg = wid.y * nwg.x + wid.x;';

/**
 * `@binding(b) var<storage, read_write> name: array<T>;` for an output of `dtype`: f16 outputs are bound as
 * `array<f16>` (needs `shader-f16` and {@link enableF16}), so each invocation writes its own 2-byte element
 * without racing its neighbour for a shared u32.
 */
export function declareOut(binding: number, name: string, dtype: 'f32' | 'f16'): string {
  return `@group(0) @binding(${binding}) var<storage, read_write> ${name}: array<${dtype}>;`;
}

/** The f32 expression `value` converted for storing into an output of `dtype` (rounded once for f16). */
export function stored(dtype: 'f32' | 'f16', value: string): string {
  return dtype === 'f16' ? `f16(${value})` : value;
}

/** `enable f16;` when any of `dtypes` is f16 (it must come before every declaration), else nothing. */
export function enableF16(...dtypes: DType[]): string {
  return dtypes.includes('f16') ? 'enable f16;' : '';
}
