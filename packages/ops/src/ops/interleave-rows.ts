/**
 * x in groups of 4 interleaved rows, the layout the software prefill kernel of `linear` reads
 * (`GemmVariant.interleaveX`): row `4g + r`, element `e` of `x [M, K]` goes to `out[(g * K + e) * 4 + r]`,
 * f32, with zeros for the rows past M in the last group. A lane of that kernel then loads one element of 4
 * rows with one 16-byte load; on a software driver, where every load is a scalar load per lane with a
 * bounds check, that is a quarter of the x loads.
 * @module
 */
import { DTYPE_BYTES, type DType, empty, type Tensor } from '@proj/core';
import type { WebGpuDevice } from '../gpu/device.js';
import { bind, bindSpan, grid } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';

/** Rows per group. */
export const ROWS_PER_GROUP = 4;

const WORKGROUP = 256;

/** The CPU reference: `x [m, k]` in groups of 4 interleaved rows, `[ceil(m / 4) * k * 4]`. */
export function interleaveRowsReference(x: Float32Array, m: number, k: number): Float32Array {
  const out = new Float32Array(Math.ceil(m / ROWS_PER_GROUP) * k * ROWS_PER_GROUP);
  for (let row = 0; row < m; row++) {
    const g = Math.floor(row / ROWS_PER_GROUP);
    for (let e = 0; e < k; e++) {
      out[(g * k + e) * ROWS_PER_GROUP + (row % ROWS_PER_GROUP)] = x[row * k + e]!;
    }
  }
  return out;
}

function kernel(dtype: DType): string {
  return `${declare(0, 'x', dtype)}
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
${params(2, { m: 'u32', k: 'u32', xb: 'u32', groups: 'u32' })}
${loader('x', dtype)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let i = wg * ${WORKGROUP}u + lid; // output entry: group i / k, element i % k
  if (i >= p.groups * p.k) { return; }
  let first = (i / p.k) * ${ROWS_PER_GROUP}u;
  let e = i % p.k;
  var v = vec4<f32>(0.0);
  for (var r = 0u; r < ${ROWS_PER_GROUP}u; r++) {
    if (first + r < p.m) { v[r] = x_at(p.xb + (first + r) * p.k + e); }
  }
  out[i] = v;
}`;
}

/**
 * `x [m, k]` (its first `m * k` elements; f32, f16 or bf16) in groups of 4 interleaved rows, as a new f32
 * tensor of `ceil(m / 4) * k * 4` elements, recorded on `device`. Internal to `linear`, which frees it.
 */
export function interleaveRows(device: WebGpuDevice, x: Tensor, m: number, k: number): Tensor {
  const groups = Math.ceil(m / ROWS_PER_GROUP);
  const out = empty([groups * k * ROWS_PER_GROUP], 'f32', device);
  const source = bindSpan('linear', x, 0, m * k);
  device.dispatch({
    op: 'linear',
    key: `linear:interleave:${x.dtype}`,
    wgsl: () => kernel(x.dtype),
    buffers: [source.binding, bind('linear', out)],
    uniforms: new Uint32Array([m, k, source.base, groups]),
    workgroups: grid(Math.ceil((groups * k) / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
  });
  return out;
}

/** Bytes of {@link interleaveRows}'s result for `m` rows of `k`. */
export function interleavedBytes(m: number, k: number): number {
  return Math.ceil(m / ROWS_PER_GROUP) * k * ROWS_PER_GROUP * DTYPE_BYTES.f32;
}
