/**
 * Elementwise `add` and `mul`. Broadcast rule: `b` has the shape of `a` or of a trailing part of it
 * (`[S, D] + [D]` adds a row vector to every row); the result has `a`'s shape and is f32, or f16 with
 * `{ out: 'f16' }` (computed in f32, rounded once on store).
 * @module
 */
import {
  broadcastShape,
  type Check,
  cpuFloats,
  empty,
  type IsSuffixOf,
  type Shape,
  type Tensor,
} from '@proj/core';
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

/** The compile-time broadcast rule of `add` and `mul`. */
export type BinaryCheck<A extends Shape, B extends Shape> = Check<
  IsSuffixOf<B, A>,
  'elementwise: b must have the shape of a or of a trailing part of it'
>;

const WORKGROUP = 256;

/** The CPU reference: `out[i] = op(a[i], b[i % b.length])`. */
export function binaryReference(kind: 'add' | 'mul', a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  const n = b.length;
  if (kind === 'add') for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i % n]!;
  else for (let i = 0; i < a.length; i++) out[i] = a[i]! * b[i % n]!;
  return out;
}

function binary<A extends Shape, O extends OutDType>(
  kind: 'add' | 'mul',
  a: Tensor<A>,
  b: Tensor,
  options: OutOptions<O>,
): Tensor<A, O> {
  broadcastShape(kind, a.shape, b.shape);
  checkFloat(kind, a, b);
  const device = deviceOf(kind, a, b);
  const o = outDtype(kind, device, options);
  if (!isGpu(device)) return cpuResult(binaryReference(kind, cpuFloats(a), cpuFloats(b)), a.shape, o);
  const out = empty(a.shape, o, device);
  const symbol = kind === 'add' ? '+' : '*';
  // b is as long as a (split alike) or a trailing part of it (bound whole, indexed modulo its length).
  const sameLength = b.numel === a.numel;
  for (const run of runs(kind, [a, b, out], [1, sameLength ? 1 : 0, 1], a.numel)) {
    const [a0, b0, o0] = run.bases as [number, number, number];
    device.dispatch({
      op: kind,
      key: `${kind}:${a.dtype}:${b.dtype}:${o}`,
      wgsl: () => `${enableF16(o)}
${declare(0, 'a', a.dtype)}
${declare(1, 'b', b.dtype)}
${declareOut(2, 'out', o)}
${params(3, { n: 'u32', nb: 'u32', first: 'u32', a0: 'u32', b0: 'u32', o0: 'u32', same: 'u32' })}
${loader('a', a.dtype)}
${loader('b', b.dtype)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let i = wg * ${WORKGROUP}u + lid; // within this run, which starts at element p.first
  if (i >= p.n) { return; }
  let j = select((p.first + i) % p.nb, p.b0 + i, p.same == 1u);
  out[p.o0 + i] = ${stored(o, `a_at(p.a0 + i) ${symbol} b_at(j)`)};
}`,
      buffers: run.bindings,
      uniforms: new Params()
        .u32(run.count)
        .u32(b.numel)
        .u32(run.first)
        .u32(a0)
        .u32(b0)
        .u32(o0)
        .u32(sameLength ? 1 : 0)
        .data(),
      workgroups: grid(Math.ceil(run.count / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}

/**
 * `a + b`, elementwise (see the module's broadcast rule). `{ out: 'f16' }` writes an f16 result (needs
 * `shader-f16` on WebGPU).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { add } from '@proj/ops';
 * const y = add(tensor([1, 2, 3, 4], [2, 2]), tensor([10, 20], [2]));
 * console.log(await y.toArray()); // Float32Array [11, 22, 13, 24]
 * ```
 */
export function add<A extends Shape, B extends Shape, O extends OutDType = 'f32'>(
  a: Tensor<A>,
  b: Tensor<B> & BinaryCheck<A, B>,
  options: OutOptions<O> = {},
): Tensor<A, O> {
  return binary('add', a, b, options);
}

/** `a * b`, elementwise (see the module's broadcast rule); `{ out: 'f16' }` as for {@link add}. */
export function mul<A extends Shape, B extends Shape, O extends OutDType = 'f32'>(
  a: Tensor<A>,
  b: Tensor<B> & BinaryCheck<A, B>,
  options: OutOptions<O> = {},
): Tensor<A, O> {
  return binary('mul', a, b, options);
}
