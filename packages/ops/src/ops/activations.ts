/**
 * Elementwise activations: `silu`, the fused `swiglu` of Llama's MLP, `gelu` (tanh approximation, so that
 * GPT-2-style models can be written on the op set too) and `scale` by a scalar. Inputs may be any float
 * dtype; the result is f32 with the input's shape.
 * @module
 */
import {
  type Check,
  checkShape,
  cpuFloats,
  empty,
  formatShape,
  type Shape,
  type ShapesMatch,
  type Tensor,
  tensor,
} from '@proj/core';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';

const WORKGROUP = 256;

/** The elementwise functions this file implements. */
export type ActivationKind = 'silu' | 'gelu' | 'swiglu' | 'scale';

/** sqrt(2 / pi), the constant of the tanh approximation of GELU. */
const GELU_C = Math.sqrt(2 / Math.PI);

// NOTE: sigmoid is evaluated as exp(-|x|) so that exp never overflows; the same form runs on CPU and GPU.
function sigmoid(x: number): number {
  const e = Math.exp(-Math.abs(x));
  return x >= 0 ? 1 / (1 + e) : e / (1 + e);
}

/**
 * The CPU reference, in f64 and rounded once to f32: `silu(a) = a * sigmoid(a)`; `swiglu(a, b) = silu(a) * b`;
 * `gelu(a) = 0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3)))`; `scale(a, s) = a * s`.
 */
export function activationReference(
  kind: ActivationKind,
  a: Float32Array,
  b?: Float32Array,
  s = 1,
): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    if (kind === 'silu') out[i] = x * sigmoid(x);
    else if (kind === 'swiglu') out[i] = x * sigmoid(x) * b![i]!;
    else if (kind === 'gelu') out[i] = 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    else out[i] = x * Math.fround(s);
  }
  return out;
}

// The WGSL expression of each kind, in terms of a_at(i), b_at(i) and the uniform p.s.
// NOTE: gelu uses 0.5 (1 + tanh(u)) = sigmoid(2u): the identity avoids tanh, whose WGSL accuracy is
// unspecified and which some drivers evaluate as NaN for large arguments.
const EXPRESSIONS: Record<ActivationKind, string> = {
  silu: 'let x = a_at(p.a0 + i); out[p.o0 + i] = x * sigmoid(x);',
  swiglu: 'let x = a_at(p.a0 + i); out[p.o0 + i] = x * sigmoid(x) * b_at(p.b0 + i);',
  gelu: `let x = a_at(p.a0 + i); out[p.o0 + i] = x * sigmoid(${2 * GELU_C} * (x + 0.044715 * x * x * x));`,
  scale: 'out[p.o0 + i] = a_at(p.a0 + i) * p.s;',
};

function elementwise<S extends Shape>(
  kind: ActivationKind,
  a: Tensor<S>,
  b: Tensor | undefined,
  s: number,
): Tensor<S, 'f32'> {
  const inputs = b ? [a, b] : [a];
  checkFloat(kind, ...inputs);
  const device = deviceOf(kind, ...inputs);
  if (!isGpu(device)) {
    return tensor(activationReference(kind, cpuFloats(a), b && cpuFloats(b), s), a.shape);
  }
  const out = empty(a.shape, 'f32', device);
  const bDtype = b?.dtype ?? 'f32';
  const outBinding = b ? 2 : 1;
  const tensors = b ? [a, b, out] : [a, out];
  for (const run of runs(
    kind,
    tensors,
    tensors.map(() => 1),
    a.numel,
  )) {
    const [a0, b0, o0] = b ? run.bases : [run.bases[0]!, 0, run.bases[1]!];
    device.dispatch({
      op: kind,
      key: `${kind}:${a.dtype}:${b ? bDtype : ''}`,
      wgsl: () => `
${declare(0, 'a', a.dtype)}
${b ? declare(1, 'b', bDtype) : ''}
${declare(outBinding, 'out', 'f32', 'read_write')}
${params(outBinding + 1, { n: 'u32', s: 'f32', a0: 'u32', b0: 'u32', o0: 'u32' })}
${loader('a', a.dtype)}
${b ? loader('b', bDtype) : ''}
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  let r = 1.0 / (1.0 + e);
  return select(e * r, r, x >= 0.0);
}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let i = wg * ${WORKGROUP}u + lid; // within this run (bases a0, b0, o0 in the bindings)
  if (i >= p.n) { return; }
  ${EXPRESSIONS[kind]}
}`,
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).f32(s).u32(a0!).u32(b0!).u32(o0!).data(),
      workgroups: grid(Math.ceil(run.count / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}

/**
 * SiLU (swish): `x * sigmoid(x)`, elementwise.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { silu } from '@proj/ops';
 * const y = silu(tensor([-1, 0, 1], [3]));
 * console.log(await y.toArray()); // Float32Array [-0.2689, 0, 0.7311]
 * ```
 */
export function silu<S extends Shape>(x: Tensor<S>): Tensor<S, 'f32'> {
  return elementwise('silu', x, undefined, 1);
}

/**
 * The gated unit of Llama's MLP, fused: `silu(gate) * up`, elementwise; both have the same shape
 * (`down(swiglu(gate(x), up(x)))` is the whole feed-forward block).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { swiglu } from '@proj/ops';
 * const h = swiglu(tensor([1, -2], [1, 2]), tensor([3, 4], [1, 2]));
 * console.log(await h.toArray()); // Float32Array [2.1932, -0.9536]
 * ```
 */
export function swiglu<S extends Shape, U extends Shape>(
  gate: Tensor<S>,
  up: Tensor<U> & Check<ShapesMatch<S, U>, 'swiglu: gate and up must have the same shape'>,
): Tensor<S, 'f32'> {
  checkShape(
    gate.shape.length === up.shape.length && gate.shape.every((d, i) => d === up.shape[i]),
    'swiglu',
    () => `gate ${formatShape(gate.shape)} and up ${formatShape(up.shape)} must have the same shape`,
  );
  return elementwise('swiglu', gate, up, 1);
}

/**
 * GELU with the tanh approximation used by GPT-2 and BERT:
 * `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))` (evaluated as `x * sigmoid(2 sqrt(2/pi) (...))`,
 * which is the same function). It differs from the exact erf GELU by up to about 5e-4.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { gelu } from '@proj/ops';
 * console.log(await gelu(tensor([-1, 0, 1], [3])).toArray()); // Float32Array [-0.1588, 0, 0.8412]
 * ```
 */
export function gelu<S extends Shape>(x: Tensor<S>): Tensor<S, 'f32'> {
  return elementwise('gelu', x, undefined, 1);
}

/**
 * `x * s` for a scalar `s` (rounded to f32 first), elementwise: e.g. attention's `1 / sqrt(head_dim)`.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { scale } from '@proj/ops';
 * console.log(await scale(tensor([1, 2], [2]), 0.5).toArray()); // Float32Array [0.5, 1]
 * ```
 */
export function scale<S extends Shape>(x: Tensor<S>, s: number): Tensor<S, 'f32'> {
  return elementwise('scale', x, undefined, s);
}
