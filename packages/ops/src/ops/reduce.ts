/**
 * Selections over the last dim: `argmax` (greedy decoding reads back one id, not 128256 logits) and
 * `topk` (top-k / top-p sampling).
 *
 * Both order the values by one total order, on the GPU as on the CPU: larger values first, `+0` above `-0`,
 * NaN below every number (so NaN is only chosen when nothing else is left), and equal values by the lower
 * index. The kernels compare integer keys made from the f32 bits, so this holds whatever the GPU's float
 * comparisons do with NaN.
 * @module
 */
import {
  checkShape,
  cpuData,
  cpuFloats,
  empty,
  formatShape,
  fromArray,
  type Init,
  type Shape,
  type Tensor,
  tensor,
} from '@proj/core';
import type { BufferBinding } from '../gpu/device.js';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';
import { BEST_OF_WORKGROUP_WGSL, ORDER_KEYS_WGSL } from './order-wgsl.js';

/** The largest `k` that {@link topk} takes (the k survivors are sorted in one workgroup's memory). */
export const MAX_TOPK = 1024;

/** The result of {@link topk}: `[..., k]` values (descending) and their indices along the last dim. */
export interface TopK<S extends Shape, K extends number> {
  /** The k largest values of each row, largest first. */
  values: Tensor<readonly [...Init<S>, K], 'f32'>;
  /** Where each value was in its row. */
  indices: Tensor<readonly [...Init<S>, K], 'i32'>;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The sort key of an f32 value: an unsigned integer whose order is the order above (NaN -> 0). */
export function orderKey(value: number): number {
  f32[0] = value;
  const b = u32[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return 0;
  return b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

/** The CPU reference of {@link argmax}: the index of the largest value in each row of `n`. */
export function argmaxReference(x: Float32Array, n: number): Int32Array {
  const out = new Int32Array(n === 0 ? 0 : x.length / n);
  for (let r = 0; r < out.length; r++) {
    let best = 0;
    let bestKey = -1;
    for (let i = 0; i < n; i++) {
      const key = orderKey(x[r * n + i]!);
      if (key > bestKey) [best, bestKey] = [i, key];
    }
    out[r] = best;
  }
  return out;
}

/** The CPU reference of {@link topk}: each row of `n` sorted by the order above, first `k` kept. */
export function topkReference(
  x: Float32Array,
  n: number,
  k: number,
): { values: Float32Array; indices: Int32Array } {
  const rows = n === 0 ? 0 : x.length / n;
  const values = new Float32Array(rows * k);
  const indices = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) {
    const keys = Float64Array.from(x.subarray(r * n, (r + 1) * n), orderKey);
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => keys[b]! - keys[a]! || a - b);
    for (let j = 0; j < k; j++) {
      indices[r * k + j] = order[j]!;
      values[r * k + j] = x[r * n + order[j]!]!;
    }
  }
  return { values, indices };
}

function rowsOf(op: string, x: Tensor): { n: number; rows: number; outer: number[] } {
  const n = x.shape[x.shape.length - 1];
  checkShape(n !== undefined && n > 0, op, () => `x ${formatShape(x.shape)} needs a last dim of at least 1`);
  return { n, rows: x.numel / n, outer: x.shape.slice(0, -1) };
}

// argmax on the GPU: each row is cut into chunks (see ArgmaxOptions.chunk). A row of one chunk is one
// workgroup, which writes its index. Longer rows take two passes: pass 1 writes the best (key, index) pair
// of each chunk to a scratch tensor, pass 2 reduces each row's pairs in one workgroup. A workgroup walks its
// chunk in blocks of BLOCK, each invocation issuing its PER loads of a block before it compares any, so that
// many loads are in flight. On an H100, 128256 f32 logits took 112 us as one workgroup scanning one load
// at a time and about 2 us in 4096-element chunks (both above a ~10 us floor of the profiler); on lavapipe
// the chunks were 5x slower than one workgroup per row, hence the software default.
const PER = 16; // elements per invocation and block
const BLOCK = 256 * PER; // elements per workgroup and block

// x [rows, n] -> workgroup wg takes chunk wg % chunks of row wg / chunks; it writes the row's index to
// out [rows] i32 when chunks = 1, else its (key, index) pair to pairs [rows, chunks, 2] u32.
function argmaxChunkKernel(xType: Tensor['dtype'], pairs: boolean): string {
  const loads = Array.from(
    { length: PER },
    (_, j) => `let v${j} = x_at(base + min(start + ${j * 256}u + lid, last));`,
  );
  const compares = Array.from(
    { length: PER },
    (_, j) =>
      `i = start + ${j * 256}u + lid; k = key_of(v${j}); if (i < end && better(k, i, bk, bi)) { bk = k; bi = i; }`,
  );
  const write = pairs
    ? 'dst[p.d0 + 2u * wg] = sk[0]; dst[p.d0 + 2u * wg + 1u] = si[0];'
    : 'dst[p.d0 + wg] = i32(si[0]);';
  return `
${declare(0, 'x', xType)}
${declare(1, 'dst', pairs ? 'u32' : 'i32', 'read_write')}
${params(2, { count: 'u32', n: 'u32', span: 'u32', chunks: 'u32', x0: 'u32', d0: 'u32' })}
${loader('x', xType)}
${ORDER_KEYS_WGSL}
${BEST_OF_WORKGROUP_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.count) { return; } // uniform: the whole workgroup leaves together
  let base = p.x0 + (wg / p.chunks) * p.n; // x0, d0: where this run starts in the bindings
  let first = (wg % p.chunks) * p.span;
  let end = min(first + p.span, p.n);
  let last = end - 1u; // loads past the chunk read its last element again; the compares skip them
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var start = first; start < end; start += ${BLOCK}u) {
    ${loads.join('\n    ')}
    var i = 0u;
    var k = 0u;
    ${compares.join('\n    ')}
  }
  reduce_best(lid, bk, bi);
  if (lid == 0u) { ${write} }
}`;
}

// pairs [rows, chunks, 2] u32 -> out [rows] i32: one workgroup per row.
function argmaxMergeKernel(): string {
  return `
${declare(0, 'pairs', 'u32')}
${declare(1, 'out', 'i32', 'read_write')}
${params(2, { rows: 'u32', chunks: 'u32', s0: 'u32', o0: 'u32' })}
${ORDER_KEYS_WGSL}
${BEST_OF_WORKGROUP_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; } // uniform: the whole workgroup leaves together
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var c = lid; c < p.chunks; c += 256u) {
    let at = p.s0 + 2u * (wg * p.chunks + c);
    if (better(pairs[at], pairs[at + 1u], bk, bi)) { bk = pairs[at]; bi = pairs[at + 1u]; }
  }
  reduce_best(lid, bk, bi);
  if (lid == 0u) { out[p.o0 + wg] = i32(si[0]); }
}`;
}

/** The options of {@link argmax}. */
export interface ArgmaxOptions {
  /** Write the indices into this i32 tensor (of the result's shape, on x's device) and return it. */
  into?: Tensor;
  /**
   * WebGPU tuning: the elements of a row that one workgroup reduces, a multiple of 4096 (rows longer than
   * that take a second pass). Default: 4096 on GPUs; the whole row on software adapters, where each
   * workgroup costs tens of microseconds of barriers.
   */
  chunk?: number;
}

/** The chunk {@link argmax} splits rows of `n` into: the requested one, or see the option. */
function chunkOf(software: boolean, n: number, requested?: number): number {
  const chunk = requested ?? (software ? Math.max(BLOCK, Math.ceil(n / BLOCK) * BLOCK) : BLOCK);
  checkShape(
    Number.isInteger(chunk) && chunk >= BLOCK && chunk % BLOCK === 0,
    'argmax',
    () => `chunk = ${chunk} must be a positive multiple of ${BLOCK}`,
  );
  return chunk;
}

/**
 * The index of the largest value along the last dim: `x [..., N]` -> `[...]` i32. Ties go to the lowest
 * index; NaN is ignored unless a row holds nothing else (see the module's order).
 *
 * With `into`, the indices are written into that existing i32 tensor, which is returned: a greedy decode loop
 * writes each chosen id where the next step reads its token, with no new tensor per step.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { argmax } from '@proj/ops';
 * const ids = argmax(tensor([0.1, 2, 2, -1, 5, 4], [2, 3]));
 * console.log(await ids.toArray()); // Int32Array [1, 1]
 * argmax(tensor([3, 1, 0, 7, 2, 9], [2, 3]), { into: ids });
 * console.log(await ids.toArray()); // Int32Array [0, 2]
 * ```
 */
export function argmax<S extends Shape>(x: Tensor<S>, options: ArgmaxOptions = {}): Tensor<Init<S>, 'i32'> {
  checkFloat('argmax', x);
  const { n, rows, outer } = rowsOf('argmax', x);
  const shape = outer as unknown as Init<S>;
  const { into } = options;
  checkShape(
    !into || (into.dtype === 'i32' && formatShape(into.shape) === formatShape(shape)),
    'argmax',
    () =>
      `into ${formatShape(into!.shape)} ${into!.dtype} must be i32 ${formatShape(shape)} for x ${formatShape(x.shape)}`,
  );
  const device = deviceOf('argmax', x, ...(into ? [into] : []));
  if (!isGpu(device)) {
    const ids = argmaxReference(cpuFloats(x), n);
    if (!into) return fromArray(ids, shape, { dtype: 'i32' });
    cpuData(into as Tensor<Shape, 'i32'>).set(ids);
    return into as Tensor<Init<S>, 'i32'>;
  }
  const out = (into as Tensor<Init<S>, 'i32'> | undefined) ?? empty(shape, 'i32', device);
  const span = chunkOf(device.caps.software, n, options.chunk);
  const chunks = Math.ceil(n / span);
  const maxPerDim = device.caps.maxWorkgroupsPerDimension;
  const pairs = chunks > 1 ? empty([rows, chunks, 2], 'u32', device) : undefined;
  const tensors = pairs ? [x, pairs, out] : [x, out];
  for (const run of runs('argmax', tensors, pairs ? [n, 2 * chunks, 1] : [n, 1], rows)) {
    const [x0, d0, o0] = run.bases as [number, number, number | undefined];
    const [xBinding, dBinding, outBinding] = run.bindings as [BufferBinding, BufferBinding, BufferBinding];
    device.dispatch({
      op: 'argmax',
      key: `argmax${pairs ? '-chunks' : ''}:${x.dtype}`,
      wgsl: () => argmaxChunkKernel(x.dtype, !!pairs),
      buffers: [xBinding, dBinding],
      uniforms: new Params()
        .u32(run.count * chunks)
        .u32(n)
        .u32(span)
        .u32(chunks)
        .u32(x0)
        .u32(d0)
        .data(),
      workgroups: grid(run.count * chunks, maxPerDim),
    });
    if (!pairs) continue;
    device.dispatch({
      op: 'argmax',
      key: 'argmax-merge',
      wgsl: argmaxMergeKernel,
      buffers: [dBinding, outBinding],
      uniforms: new Params().u32(run.count).u32(chunks).u32(d0).u32(o0!).data(),
      workgroups: grid(run.count, maxPerDim),
    });
  }
  pairs?.dispose(); // back to the pool: only work recorded after this may reuse it
  return out;
}

// topk: one workgroup per row, in three steps.
// 1. Radix select: find the k-th best (key, index) pair, one 8-bit digit per sweep over the row: 4 digits of
//    the key, then 4 of `n - 1 - index` (so that a lower index ranks higher), each sweep histogramming the
//    elements that match the digits chosen so far. The sweeps stop once the chosen bin is taken whole
//    (after 2 or 3 sweeps for typical logits; ties need the index digits).
// 2. Collect: exactly k elements rank at or above that prefix; they go to shared memory (in any order).
// 3. Bitonic sort of those k (padded to a power of two) by key, then index; write them out.
function topkKernel(size: number, xType: Tensor['dtype']): string {
  return `
${declare(0, 'x', xType)}
${declare(1, 'values', 'u32', 'read_write')}
${declare(2, 'indices', 'u32', 'read_write')}
${params(3, { rows: 'u32', n: 'u32', k: 'u32', x0: 'u32', v0: 'u32', i0: 'u32' })}
${loader('x', xType)}
${ORDER_KEYS_WGSL}
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> chosen: u32;
var<workgroup> need: u32;
var<workgroup> done: u32;
var<workgroup> count: atomic<u32>;
var<workgroup> sk: array<u32, ${size}>;
var<workgroup> si: array<u32, ${size}>;
fn digit(key: u32, lo: u32, d: u32) -> u32 {
  return select((lo >> (56u - 8u * d)) & 0xffu, (key >> (24u - 8u * d)) & 0xffu, d < 4u);
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; } // uniform: the whole workgroup leaves together
  let base = p.x0 + wg * p.n; // x0, v0, i0: where this run starts in the bindings
  // The chosen digits (pk: key, pl: low part) and which bits they cover (mk, ml); equal in every invocation.
  var pk = 0u; var pl = 0u; var mk = 0u; var ml = 0u;
  if (lid == 0u) { need = p.k; done = 0u; atomicStore(&count, 0u); }
  for (var d = 0u; d < 8u; d++) {
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    for (var i = lid; i < p.n; i += 256u) {
      let key = key_of(x_at(base + i));
      let lo = p.n - 1u - i;
      if ((key & mk) == pk && (lo & ml) == pl) { atomicAdd(&hist[digit(key, lo, d)], 1u); }
    }
    workgroupBarrier();
    if (lid == 0u) { // walk the bins from the best down to the one holding the need-th element
      var acc = 0u;
      for (var b = 255i; b >= 0i; b--) {
        let c = atomicLoad(&hist[b]);
        if (acc + c >= need) { chosen = u32(b); need -= acc; done = select(0u, 1u, c == need); break; }
        acc += c;
      }
    }
    let bin = workgroupUniformLoad(&chosen);
    if (d < 4u) { pk |= bin << (24u - 8u * d); mk |= 0xffu << (24u - 8u * d); }
    else { pl |= bin << (56u - 8u * d); ml |= 0xffu << (56u - 8u * d); }
    if (workgroupUniformLoad(&done) == 1u) { break; }
  }
  for (var t = lid; t < ${size}u; t += 256u) { sk[t] = 0u; si[t] = 0xffffffffu; } // padding sorts last
  workgroupBarrier();
  for (var i = lid; i < p.n; i += 256u) {
    let key = key_of(x_at(base + i));
    let hk = key & mk;
    let hl = (p.n - 1u - i) & ml;
    if (hk > pk || (hk == pk && hl >= pl)) {
      let slot = atomicAdd(&count, 1u);
      if (slot < ${size}u) { sk[slot] = key; si[slot] = i; }
    }
  }
  workgroupBarrier();
  for (var size = 2u; size <= ${size}u; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var t = lid; t < ${size / 2}u; t += 256u) {
        let i = 2u * t - (t & (stride - 1u));
        let j = i + stride;
        if (better(sk[j], si[j], sk[i], si[i]) == ((i & size) == 0u)) { // descending blocks want the better first
          let tk = sk[i]; sk[i] = sk[j]; sk[j] = tk;
          let ti = si[i]; si[i] = si[j]; si[j] = ti;
        }
      }
      workgroupBarrier();
    }
  }
  for (var t = lid; t < p.k; t += 256u) {
    values[p.v0 + wg * p.k + t] = key_bits(sk[t]);
    indices[p.i0 + wg * p.k + t] = si[t];
  }
}`;
}

const nextPow2 = (v: number) => 2 ** Math.ceil(Math.log2(Math.max(2, v)));

/**
 * The `k` largest values along the last dim and their indices, largest first: `x [..., N]` ->
 * `{ values [..., k] f32, indices [..., k] i32 }`, `1 <= k <= min(N, 1024)`. On the GPU one workgroup per
 * row finds the k-th largest by a radix select (a few sweeps over the row), then sorts the k survivors.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { topk } from '@proj/ops';
 * const { values, indices } = topk(tensor([0.5, 3, 2, 3], [4]), 2);
 * console.log(await values.toArray(), await indices.toArray()); // [3, 3] [1, 3]
 * ```
 */
export function topk<S extends Shape, K extends number>(x: Tensor<S>, k: K): TopK<S, K> {
  checkFloat('topk', x);
  const { n, rows, outer } = rowsOf('topk', x);
  checkShape(
    Number.isInteger(k) && k >= 1 && k <= Math.min(n, MAX_TOPK),
    'topk',
    () => `k = ${k} must be an integer in [1, min(N, ${MAX_TOPK})] for x ${formatShape(x.shape)}`,
  );
  const shape = [...outer, k] as unknown as readonly [...Init<S>, K];
  const device = deviceOf('topk', x);
  if (!isGpu(device)) {
    const ref = topkReference(cpuFloats(x), n, k);
    return { values: tensor(ref.values, shape), indices: fromArray(ref.indices, shape, { dtype: 'i32' }) };
  }
  const values = empty(shape, 'f32', device);
  const indices = empty(shape, 'i32', device);
  const size = nextPow2(k);
  for (const run of runs('topk', [x, values, indices], [n, k, k], rows)) {
    const [x0, v0, i0] = run.bases as [number, number, number];
    device.dispatch({
      op: 'topk',
      key: `topk:${size}:${x.dtype}`,
      wgsl: () => topkKernel(size, x.dtype),
      buffers: run.bindings,
      uniforms: new Params().u32(run.count).u32(n).u32(k).u32(x0).u32(v0).u32(i0).data(),
      workgroups: grid(run.count, device.caps.maxWorkgroupsPerDimension),
    });
  }
  return { values, indices };
}
