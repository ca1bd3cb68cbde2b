/**
 * LayerNorm with a bias, the normalisation of GPT-2-style blocks:
 * `(x - mean(x)) / sqrt(var(x) + eps) * weight + bias` over the last dim. Weight and bias may be f32, f16
 * or bf16; the result is f32.
 * @module
 */
import {
  type Check,
  checkShape,
  cpuFloats,
  empty,
  formatShape,
  type Last,
  type Shape,
  type ShapesMatch,
  type Tensor,
  tensor,
} from '@proj/core';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';

/** Weight and bias must both be `[D]` where `x` is `[..., D]`. */
export type LayernormCheck<S extends Shape, W extends Shape, B extends Shape> = Check<
  ShapesMatch<W, readonly [Last<S>]> extends true ? ShapesMatch<B, readonly [Last<S>]> : false,
  'layernorm: weight and bias must be [D] where x is [..., D]'
>;

/**
 * The CPU reference, in f64 and rounded once: for each row of `weight.length` values, the mean, then the
 * (biased, as PyTorch's) variance of the deviations from it, then `(x - mean) / sqrt(var + eps) * w + b`.
 */
export function layernormReference(
  x: Float32Array,
  weight: Float32Array,
  bias: Float32Array,
  eps: number,
): Float32Array {
  const d = weight.length;
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += d) {
    let sum = 0;
    for (let i = 0; i < d; i++) sum += x[base + i]!;
    const mean = sum / d;
    let squares = 0;
    for (let i = 0; i < d; i++) squares += (x[base + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(squares / d + eps);
    for (let i = 0; i < d; i++) out[base + i] = (x[base + i]! - mean) * inv * weight[i]! + bias[i]!;
  }
  return out;
}

// One workgroup per row, two reductions (strided partial sums, then a shared-memory tree) and the write.
// NOTE: the mean is summed as deviations from the row's first element and the variance as squared
// deviations from the mean (never as E[x^2] - E[x]^2): rows with a large common offset (activations of
// order 1000 varying by 1) would otherwise lose every digit of their variance to f32 cancellation.
function kernel(workgroup: number, xType: Tensor['dtype'], wType: Tensor['dtype'], bType: Tensor['dtype']) {
  return `
${declare(0, 'x', xType)}
${declare(1, 'w', wType)}
${declare(2, 'b', bType)}
${declare(3, 'out', 'f32', 'read_write')}
${params(4, { rows: 'u32', d: 'u32', eps: 'f32', x0: 'u32', o0: 'u32' })}
${loader('x', xType)}
${loader('w', wType)}
${loader('b', bType)}
var<workgroup> partial: array<f32, ${workgroup}>;
fn total(lid: u32, value: f32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var s = ${workgroup / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let sum = partial[0];
  workgroupBarrier(); // everyone has read the sum before partial is reused
  return sum;
}
@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.x0 + wg * p.d; // rows of this run; x0 and o0: where the run starts in the bindings
  let obase = p.o0 + wg * p.d;
  let shift = x_at(base);
  var acc = 0.0;
  for (var i = lid; i < p.d; i += ${workgroup}u) { acc += x_at(base + i) - shift; }
  let mean = shift + total(lid, acc) / f32(p.d);
  acc = 0.0;
  for (var i = lid; i < p.d; i += ${workgroup}u) { let dev = x_at(base + i) - mean; acc += dev * dev; }
  let inv = 1.0 / sqrt(total(lid, acc) / f32(p.d) + p.eps);
  for (var i = lid; i < p.d; i += ${workgroup}u) { out[obase + i] = (x_at(base + i) - mean) * inv * w_at(i) + b_at(i); }
}`;
}

/**
 * LayerNorm over the last dim: `(x - mean) / sqrt(var + eps) * weight + bias`, with the biased variance
 * (PyTorch's `nn.LayerNorm`). `x [..., D]`, `weight [D]`, `bias [D]` -> `[..., D]` f32.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { layernorm } from '@proj/ops';
 * const y = layernorm(tensor([1, 3, 5, 1], [2, 2]), tensor([1, 2], [2]), tensor([0, 1], [2]), 0);
 * console.log(await y.toArray()); // Float32Array [-1, 3, 1, -1]
 * ```
 */
export function layernorm<S extends Shape, W extends Shape, B extends Shape>(
  x: Tensor<S>,
  weight: Tensor<W> & LayernormCheck<S, W, B>,
  bias: Tensor<B>,
  eps = 1e-5,
): Tensor<S, 'f32'> {
  const d = x.shape[x.shape.length - 1];
  const isRow = (t: Tensor) => t.shape.length === 1 && t.shape[0] === d;
  checkShape(
    d !== undefined && isRow(weight) && isRow(bias),
    'layernorm',
    () =>
      `weight ${formatShape(weight.shape)} and bias ${formatShape(bias.shape)} must be [D] for x ${formatShape(x.shape)} (D = ${d})`,
  );
  checkFloat('layernorm', x, weight, bias);
  const device = deviceOf('layernorm', x, weight, bias);
  if (!isGpu(device)) {
    return tensor(layernormReference(cpuFloats(x), cpuFloats(weight), cpuFloats(bias), eps), x.shape);
  }
  const out = empty(x.shape, 'f32', device);
  const rows = d === 0 ? 0 : x.numel / d;
  const workgroup = d >= 8192 ? 256 : 64; // as rmsnorm: barriers are costly on software adapters
  for (const run of runs('layernorm', [x, weight, bias, out], [d, 0, 0, d], rows)) {
    device.dispatch({
      op: 'layernorm',
      key: `layernorm:${workgroup}:${x.dtype}:${weight.dtype}:${bias.dtype}`,
      wgsl: () => kernel(workgroup, x.dtype, weight.dtype, bias.dtype),
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).u32(d).f32(eps).u32(run.bases[0]!).u32(run.bases[3]!).data(),
      workgroups: grid(run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}
