/**
 * RMSNorm: `x / sqrt(mean(x^2) + eps) * weight` over the last dim, the normalisation of every Llama block.
 * The weight may be f32, f16 or bf16 (checkpoints keep their bytes on the GPU); the result is f32, or f16
 * with `{ out: 'f16' }` (computed in f32, rounded once on store).
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
} from '@proj/core';
import { type RmsnormLayout, rmsnormLayout } from '../gpu/variants.js';
import {
  checkFloat,
  cpuResult,
  deviceOf,
  grid,
  isGpu,
  type OutDType,
  type OutOptions,
  outDtype,
  Params,
  runs,
} from '../op.js';
import { declare, declareOut, enableF16, LINEAR_WORKGROUP, loader, params, stored } from '../wgsl.js';

/** The weight must be `[D]` where `x` is `[..., D]`. */
export type RmsnormCheck<S extends Shape, W extends Shape> = Check<
  ShapesMatch<W, readonly [Last<S>]>,
  'rmsnorm: weight must be [D] where x is [..., D]'
>;

/**
 * The CPU reference. `x` holds rows of `weight.length` values; the sum of squares is taken in f64, then
 * (as Meta's code does) the row is normalised and rounded to f32 before the weight multiplies it.
 */
export function rmsnormReference(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  const d = weight.length;
  const out = new Float32Array(x.length);
  for (let base = 0; base < x.length; base += d) {
    let sum = 0;
    for (let i = 0; i < d; i++) sum += x[base + i]! * x[base + i]!;
    const inv = 1 / Math.sqrt(sum / d + eps);
    for (let i = 0; i < d; i++) out[base + i] = Math.fround(x[base + i]! * inv) * weight[i]!;
  }
  return out;
}

// One workgroup per row: each invocation sums the squares of a strided slice (consecutive invocations read
// consecutive elements), then the partial sums are added up: in a shared-memory tree, or with
// \`subgroupAdd\` when the workgroup is one subgroup (the \`lanes\` layout of software adapters, where every
// barrier switches coroutines).
function kernel(layout: RmsnormLayout, xType: Tensor['dtype'], wType: Tensor['dtype'], o: OutDType): string {
  const { workgroup, lanes } = layout;
  const reduce = lanes
    ? 'let total = subgroupAdd(acc);'
    : `partial[lid] = acc;
  workgroupBarrier();
  for (var s = ${workgroup / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let total = partial[0];`;
  return `${lanes ? 'enable subgroups;' : ''}
${enableF16(o)}
${declare(0, 'x', xType)}
${declare(1, 'w', wType)}
${declareOut(2, 'out', o)}
${params(3, { rows: 'u32', d: 'u32', eps: 'f32', x0: 'u32', o0: 'u32' })}
${loader('x', xType)}
${loader('w', wType)}
${lanes ? '' : `var<workgroup> partial: array<f32, ${workgroup}>;`}
@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.x0 + wg * p.d; // rows of this run; x0 and o0: where the run starts in the bindings
  let obase = p.o0 + wg * p.d;
  var acc = 0.0;
  for (var i = lid; i < p.d; i += ${workgroup}u) { let v = x_at(base + i); acc += v * v; }
  ${reduce}
  let inv = 1.0 / sqrt(total / f32(p.d) + p.eps);
  for (var i = lid; i < p.d; i += ${workgroup}u) { out[obase + i] = ${stored(o, '(x_at(base + i) * inv) * w_at(i)')}; }
}`;
}

/**
 * RMSNorm over the last dim: `x / sqrt(mean(x^2) + eps) * weight`, normalised in f32 and then multiplied by
 * the weight, as Meta's reference does. `x [..., D]`, `weight [D]` -> `[..., D]` f32 (or f16 with
 * `{ out: 'f16' }`, which needs `shader-f16` on WebGPU).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { rmsnorm } from '@proj/ops';
 * const y = rmsnorm(tensor([3, 4, 0, 2], [2, 2]), tensor([1, 2], [2]), 1e-5);
 * console.log(await y.toArray()); // Float32Array [0.8485, 2.2627, 0, 2.8284]
 * ```
 */
export function rmsnorm<S extends Shape, W extends Shape, O extends OutDType = 'f32'>(
  x: Tensor<S>,
  weight: Tensor<W> & RmsnormCheck<S, W>,
  eps = 1e-5,
  options: OutOptions<O> = {},
): Tensor<S, O> {
  return rmsnormWith(x, weight, eps, options) as Tensor<S, O>;
}

/** {@link rmsnorm} with a chosen workgroup layout (tests); shapes are checked at run time only. */
export function rmsnormWith<O extends OutDType = 'f32'>(
  x: Tensor,
  weight: Tensor,
  eps = 1e-5,
  options: OutOptions<O> = {},
  forced?: RmsnormLayout,
): Tensor<Shape, O> {
  const d = x.shape[x.shape.length - 1];
  checkShape(
    d !== undefined && weight.shape.length === 1 && weight.shape[0] === d,
    'rmsnorm',
    () => `weight ${formatShape(weight.shape)} must be [D] for x ${formatShape(x.shape)} (D = ${d})`,
  );
  checkFloat('rmsnorm', x, weight);
  const device = deviceOf('rmsnorm', x, weight);
  const o = outDtype('rmsnorm', device, options);
  if (!isGpu(device)) return cpuResult(rmsnormReference(cpuFloats(x), cpuFloats(weight), eps), x.shape, o);
  const out = empty(x.shape, o, device);
  const rows = d === 0 ? 0 : x.numel / d;
  const layout = forced ?? rmsnormLayout(device.caps, d);
  for (const run of runs('rmsnorm', [x, weight, out], [d, 0, d], rows)) {
    device.dispatch({
      op: 'rmsnorm',
      key: `rmsnorm:${layout.workgroup}:${layout.lanes}:${x.dtype}:${weight.dtype}:${o}`,
      wgsl: () => kernel(layout, x.dtype, weight.dtype, o),
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).u32(d).f32(eps).u32(run.bases[0]!).u32(run.bases[2]!).data(),
      workgroups: grid(run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}
