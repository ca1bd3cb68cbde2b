/**
 * SwiGLU on a fused gate/up projection: `x [..., 2F]` holds `gate` in its first F columns and `up` in the
 * last F, as produced by one matmul with the gate and up weights stacked; the result is
 * `silu(gate) * up`, `[..., F]` (f32, or f16 with `{ out: 'f16' }`, computed in f32). Saves a matmul dispatch and a pass over the activations per layer.
 * @module
 */
import { checkShape, cpuFloats, empty, formatShape, type Init, type Shape, type Tensor } from '@proj/core';
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
import { activationReference } from './activations.js';

const WORKGROUP = 256;

/** CPU reference: rows of `2f` values -> rows of `f` values `silu(gate) * up`. */
export function swigluPackedReference(x: Float32Array, f: number): Float32Array {
  const rows = x.length / (2 * f);
  const gate = new Float32Array(rows * f);
  const up = new Float32Array(rows * f);
  for (let r = 0; r < rows; r++) {
    gate.set(x.subarray(2 * r * f, 2 * r * f + f), r * f);
    up.set(x.subarray(2 * r * f + f, 2 * (r + 1) * f), r * f);
  }
  return activationReference('swiglu', gate, up);
}

/**
 * `silu(x[..., :F]) * x[..., F:]` for `x [..., 2F]`, giving `[..., F]`; `{ out: 'f16' }` writes f16 (needs
 * `shader-f16` on WebGPU).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { swigluPacked } from '@proj/ops';
 * const h = swigluPacked(tensor([1, -2, 3, 4], [1, 4])); // gate [1, -2], up [3, 4]
 * console.log(h.shape); // [1, 2]
 * ```
 */
export function swigluPacked<S extends Shape, O extends OutDType = 'f32'>(
  x: Tensor<S>,
  options: OutOptions<O> = {},
): Tensor<readonly [...Init<S>, number], O> {
  const op = 'swigluPacked';
  const last = x.shape[x.rank - 1] ?? 0;
  checkShape(
    x.rank >= 1 && last % 2 === 0,
    op,
    () => `x ${formatShape(x.shape)} must have an even last dim (gate and up side by side)`,
  );
  checkFloat(op, x);
  const f = last / 2;
  const shape = [...x.shape.slice(0, -1), f] as unknown as readonly [...Init<S>, number];
  const device = deviceOf(op, x);
  const o = outDtype(op, device, options);
  if (!isGpu(device)) return cpuResult(swigluPackedReference(cpuFloats(x), f), shape, o);
  const out = empty(shape, o, device);
  const rows = f === 0 ? 0 : out.numel / f;
  for (const run of runs(op, [x, out], [2 * f, f], rows)) {
    device.dispatch({
      op,
      key: `${op}:${x.dtype}:${o}`,
      wgsl: () => `${enableF16(o)}
${declare(0, 'x', x.dtype)}
${declareOut(1, 'out', o)}
${params(2, { rows: 'u32', f: 'u32', x0: 'u32', o0: 'u32' })}
${loader('x', x.dtype)}
fn sigmoid(v: f32) -> f32 { let e = exp(-abs(v)); return select(e / (1.0 + e), 1.0 / (1.0 + e), v >= 0.0); }
// One workgroup per row of the run (x0 and o0: where the run starts in the bindings), its invocations
// striding along the row: no division per element, which costs a software driver a scalar division per lane.
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; }
  let gate = p.x0 + 2u * wg * p.f;
  let at = p.o0 + wg * p.f;
  for (var col = lid; col < p.f; col += ${WORKGROUP}u) {
    let g = x_at(gate + col);
    out[at + col] = ${stored(o, 'g * sigmoid(g) * x_at(gate + p.f + col)')};
  }
}`,
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).u32(f).u32(run.bases[0]!).u32(run.bases[1]!).data(),
      workgroups: grid(run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}
