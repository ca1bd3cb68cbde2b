/**
 * Rotary position embeddings. Each pair of dims of a head is rotated by the angle `position * invFreq[i]`.
 * Two layouts pair the dims differently:
 * - `'half'` (Hugging Face checkpoints): dim `i` pairs with `i + Dh/2`, i.e. `x * cos + rotate_half(x) * sin`;
 * - `'interleaved'` (Meta's checkpoints): dims `(2i, 2i + 1)` form a complex number multiplied by `e^(i angle)`.
 * They compute the same thing on differently ordered q/k rows (see the fixtures README).
 * @module
 */
import { checkShape, cpu, cpuFloats, type Device, empty, formatShape, type Tensor, tensor } from '@proj/core';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';

const WORKGROUP = 256;

/** How the dims of a head are paired for rotation. */
export type RopeLayout = 'half' | 'interleaved';

/** The cos/sin tables of {@link ropeTables}: row `p` holds position `p`. */
export interface RopeTables {
  /** `cos(p * invFreq[i])`, `[positions, headDim / 2]`. */
  readonly cos: Tensor<readonly [number, number], 'f32'>;
  /** `sin(p * invFreq[i])`, `[positions, headDim / 2]`. */
  readonly sin: Tensor<readonly [number, number], 'f32'>;
}

/** Options of {@link rope}. */
export interface RopeOptions {
  /** Position of the first row of `x` (the number of tokens already in the KV cache); default 0. */
  offset?: number;
  /** How the head dims are paired: `'half'` (default) for HF checkpoints, `'interleaved'` for Meta's. */
  layout?: RopeLayout;
}

/**
 * The cos/sin tables for `positions` positions, from the inverse frequencies (one per pair of head dims,
 * computed by the caller, e.g. with Llama 3.1's scaling). The angles are computed in f64 and rounded once,
 * so long contexts lose no precision to an f32 `position * invFreq` product.
 *
 * @example
 * ```ts
 * import { ropeTables } from '@proj/ops';
 * const invFreq = Float32Array.from({ length: 32 }, (_, i) => 500000 ** (-i / 32));
 * const { cos, sin } = ropeTables(invFreq, 4096); // [4096, 32] each, on the CPU
 * ```
 */
export function ropeTables(invFreq: Float32Array, positions: number, device: Device = cpu): RopeTables {
  const half = invFreq.length;
  checkShape(
    half > 0 && Number.isSafeInteger(positions) && positions >= 0,
    'ropeTables',
    () => `need at least one frequency and a whole number of positions, got ${half} and ${positions}`,
  );
  const cos = new Float32Array(positions * half);
  const sin = new Float32Array(positions * half);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * invFreq[i]!;
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  const shape = [positions, half] as const;
  return { cos: tensor(cos, shape, { device }), sin: tensor(sin, shape, { device }) };
}

/** Indices of the two dims rotated together: pair `i` of a head starting at `base`. */
function pairOf(layout: RopeLayout, base: number, i: number, half: number): [number, number] {
  return layout === 'half' ? [base + i, base + i + half] : [base + 2 * i, base + 2 * i + 1];
}

/**
 * The CPU reference: `x` is `[S, H, Dh]` (given as `shape`), `cos`/`sin` are `[positions, Dh/2]`; row `s`
 * uses position `offset + s`. Each pair `(a, b)` becomes `(a cos - b sin, b cos + a sin)`, in f64.
 */
export function ropeReference(
  x: Float32Array,
  shape: readonly [number, number, number],
  cos: Float32Array,
  sin: Float32Array,
  offset: number,
  layout: RopeLayout,
): Float32Array {
  const [seq, heads, dh] = shape;
  const half = dh / 2;
  const out = new Float32Array(x.length);
  for (let s = 0; s < seq; s++) {
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < half; i++) {
        const [ia, ib] = pairOf(layout, (s * heads + h) * dh, i, half);
        const c = cos[(offset + s) * half + i]!;
        const sn = sin[(offset + s) * half + i]!;
        out[ia] = x[ia]! * c - x[ib]! * sn;
        out[ib] = x[ib]! * c + x[ia]! * sn;
      }
    }
  }
  return out;
}

// One invocation per rotated pair of a run of rows. Consecutive invocations take consecutive pairs of a
// head, so for the 'half' layout both of their reads are contiguous runs. x and out are bound from their
// run's first row (x0, o0: where that row starts in the bindings), the tables whole; `offset` is the
// position of the run's first row.
function kernel(layout: RopeLayout, xType: Tensor['dtype']): string {
  const pair =
    layout === 'half'
      ? 'let ia = base + i; let ib = ia + p.half;'
      : 'let ia = base + 2u * i; let ib = ia + 1u;';
  return `
${declare(0, 'x', xType)}
${declare(1, 'cosT', 'f32')}
${declare(2, 'sinT', 'f32')}
${declare(3, 'out', 'f32', 'read_write')}
${params(4, { pairs: 'u32', half: 'u32', heads: 'u32', offset: 'u32', x0: 'u32', o0: 'u32' })}
${loader('x', xType)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let j = wg * ${WORKGROUP}u + lid;
  if (j >= p.pairs) { return; }
  let i = j % p.half;
  let head = j / p.half; // s * heads + h
  let t = (p.offset + head / p.heads) * p.half + i;
  let c = cosT[t];
  let sn = sinT[t];
  let base = head * 2u * p.half;
  ${pair}
  let a = x_at(p.x0 + ia);
  let b = x_at(p.x0 + ib);
  out[p.o0 + ia] = a * c - b * sn;
  out[p.o0 + ib] = b * c + a * sn;
}`;
}

/**
 * Rotary embeddings of queries or keys: `x [S, H, Dh]` -> `[S, H, Dh]` f32, row `s` at position
 * `offset + s` (decoding with a KV cache passes the number of cached tokens as `offset`). On WebGPU, `x`
 * and the result larger than one storage binding are split by rows, one dispatch per run of rows.
 *
 * @example
 * ```ts
 * import { randn } from '@proj/core';
 * import { rope, ropeTables } from '@proj/ops';
 * const invFreq = Float32Array.from({ length: 4 }, (_, i) => 10000 ** (-i / 4));
 * const tables = ropeTables(invFreq, 16);
 * const q = randn([3, 2, 8], { seed: 1 }); // [seq, heads, headDim]
 * const rotated = rope(q, tables, { offset: 5, layout: 'half' }); // positions 5, 6, 7
 * console.log(rotated.shape); // [3, 2, 8]
 * ```
 */
export function rope<S extends readonly [number, number, number]>(
  x: Tensor<S>,
  tables: RopeTables,
  options: RopeOptions = {},
): Tensor<S, 'f32'> {
  const { offset = 0, layout = 'half' } = options;
  const [seq, heads, dh] = x.shape as readonly number[];
  checkShape(x.shape.length === 3, 'rope', () => `x must be [S, H, Dh], got ${formatShape(x.shape)}`);
  checkShape(dh! % 2 === 0, 'rope', () => `head dim ${dh} of x ${formatShape(x.shape)} is odd`);
  const [positions, half] = tables.cos.shape;
  checkShape(
    half === dh! / 2 && tables.sin.shape[0] === positions && tables.sin.shape[1] === half,
    'rope',
    () =>
      `tables cos ${formatShape(tables.cos.shape)} / sin ${formatShape(tables.sin.shape)} must both be [positions, ${dh! / 2}] for x ${formatShape(x.shape)}`,
  );
  checkShape(
    Number.isSafeInteger(offset) && offset >= 0 && offset + seq! <= positions,
    'rope',
    () =>
      `positions ${offset} to ${offset + seq! - 1} of x ${formatShape(x.shape)} are beyond the ${positions}-position table`,
  );
  checkShape(layout === 'half' || layout === 'interleaved', 'rope', () => `unknown layout '${layout}'`);
  checkFloat('rope', x);
  const device = deviceOf('rope', x, tables.cos, tables.sin);
  if (!isGpu(device)) {
    const out = ropeReference(
      cpuFloats(x),
      [seq!, heads!, dh!],
      cpuFloats(tables.cos),
      cpuFloats(tables.sin),
      offset,
      layout,
    );
    return tensor(out, x.shape);
  }
  const out = empty(x.shape, 'f32', device);
  // Split by whole rows (tokens) when x or out is larger than one binding; the tables are bound whole.
  const row = heads! * dh!;
  for (const run of runs('rope', [x, tables.cos, tables.sin, out], [row, 0, 0, row], seq!)) {
    const [x0, , , o0] = run.bases as [number, number, number, number];
    const pairs = (run.count * row) / 2;
    device.dispatch({
      op: 'rope',
      key: `rope:${layout}:${x.dtype}`,
      wgsl: () => kernel(layout, x.dtype),
      buffers: run.bindings,
      uniforms: new Params()
        .u32(pairs)
        .u32(half)
        .u32(heads!)
        .u32(offset + run.first)
        .u32(x0)
        .u32(o0)
        .data(),
      workgroups: grid(Math.ceil(pairs / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
  }
  return out;
}
