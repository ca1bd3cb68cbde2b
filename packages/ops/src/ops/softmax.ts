/**
 * Softmax over the last dim, numerically stable: the row max is subtracted before `exp`, so rows of large
 * logits (a 128256-wide vocabulary) do not overflow. `-Infinity` entries (masked attention scores) get
 * probability 0.
 * @module
 */
import { cpuFloats, empty, type Shape, type Tensor, tensor } from '@proj/core';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';

/**
 * The CPU reference: rows of `n` values, computed in f64 and rounded once. A row whose entries are all
 * `-Infinity` (nothing to attend to) gives zeros rather than NaN.
 */
export function softmaxReference(x: Float32Array, n: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += n) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) max = Math.max(max, x[base + i]!);
    if (max === Number.NEGATIVE_INFINITY) continue; // fully masked: zeros
    let sum = 0;
    for (let i = 0; i < n; i++) sum += Math.exp(x[base + i]! - max);
    for (let i = 0; i < n; i++) out[base + i] = Math.exp(x[base + i]! - max) / sum;
  }
  return out;
}

// One workgroup per row, three sweeps: the max (a strided max per invocation, then a tree), the sum of
// exp(x - max) (the same shape), then the write. The running max starts at the lowest finite f32 rather
// than -inf: WGSL lets compilers assume infinities are absent, so the kernel never relies on an infinite
// constant, only on exp(-inf) = 0 for masked entries; a fully masked row ends with sum 0 and writes zeros.
function kernel(workgroup: number, xType: Tensor['dtype']): string {
  return `
${declare(0, 'x', xType)}
${declare(1, 'out', 'f32', 'read_write')}
${params(2, { rows: 'u32', n: 'u32', x0: 'u32', o0: 'u32' })}
${loader('x', xType)}
var<workgroup> partial: array<f32, ${workgroup}>;
@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.x0 + wg * p.n; // rows of this run; x0 and o0: where the run starts in the bindings
  let obase = p.o0 + wg * p.n;
  var m = -3.4028234e38; // the lowest finite f32
  for (var i = lid; i < p.n; i += ${workgroup}u) { m = max(m, x_at(base + i)); }
  partial[lid] = m;
  workgroupBarrier();
  for (var s = ${workgroup / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] = max(partial[lid], partial[lid + s]); }
    workgroupBarrier();
  }
  let rowMax = partial[0];
  workgroupBarrier(); // everyone has read the max before partial is reused
  var sum = 0.0;
  for (var i = lid; i < p.n; i += ${workgroup}u) { sum += exp(x_at(base + i) - rowMax); }
  partial[lid] = sum;
  workgroupBarrier();
  for (var s = ${workgroup / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var i = lid; i < p.n; i += ${workgroup}u) { out[obase + i] = exp(x_at(base + i) - rowMax) * inv; }
}`;
}

/**
 * Softmax over the last dim: `exp(x - max) / sum(exp(x - max))` per row, f32. `-Infinity` entries give 0;
 * a row of only `-Infinity` gives zeros (not NaN); a NaN in a row makes that row's result unspecified.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { softmax } from '@proj/ops';
 * const p = softmax(tensor([1, 2, 3, 0, 0, -Infinity], [2, 3]));
 * console.log(await p.toArray()); // Float32Array [0.09, 0.2447, 0.6652, 0.5, 0.5, 0]
 * ```
 */
export function softmax<S extends Shape>(x: Tensor<S>): Tensor<S, 'f32'> {
  checkFloat('softmax', x);
  const n = x.shape[x.shape.length - 1] ?? 1; // a scalar is one row of one
  const device = deviceOf('softmax', x);
  if (!isGpu(device)) return tensor(softmaxReference(cpuFloats(x), n), x.shape);
  const out = empty(x.shape, 'f32', device);
  const rows = n === 0 ? 0 : x.numel / n;
  const workgroup = n >= 8192 ? 256 : 64; // one row of a vocabulary wants many readers on a GPU
  for (const run of runs('softmax', [x, out], [n, n], rows)) {
    device.dispatch({
      op: 'softmax',
      key: `softmax:${workgroup}:${x.dtype}`,
      wgsl: () => kernel(workgroup, x.dtype),
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).u32(n).u32(run.bases[0]!).u32(run.bases[1]!).data(),
      workgroups: grid(run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}
