/**
 * Causal scaled dot-product attention with grouped-query heads (GQA), the way Llama 3 uses it:
 * `softmax(q k^T * scale + mask) v` per head, where query head `h` reads key/value head `h / (Hq / Hkv)`.
 *
 * Positions: query row `i` sits at absolute position `offset + i` and sees key rows `j < length` with
 * `j <= offset + i` (when causal). `k`/`v` may be a preallocated cache with more rows than `length`; rows at
 * or past `length` are never read.
 *
 * On WebGPU, k and v may be larger than one storage binding (a long context's KV cache): when their first
 * `length` rows do not fit one, the keys are read in windows of whole chunks that do, one dispatch per
 * window, and the merge kernel combines the chunks. Query rows go in runs when q, the output or the
 * chunks' partial sums do not fit a binding.
 * @module
 */
import {
  type Check,
  checkShape,
  cpuFloats,
  type DimsMatch,
  empty,
  formatShape,
  type Last,
  type Shape,
  type ShapesMatch,
  type Tensor,
} from '@proj/core';
import type { BufferBinding, WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { type AttentionKernel, attentionKernel, lanesAttentionFits } from '../gpu/variants.js';
import {
  bind,
  bindSpan,
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
import { enableF16, LINEAR_WORKGROUP, params } from '../wgsl.js';
import { recordLanesAttention } from './attention-lanes.js';
import type { RopeTables } from './rope.js';

/**
 * The compile-time rule of {@link attention}: q, k, v have rank 3, q and k share `Dh`, v has k's shape.
 * (That `Hq` is a multiple of `Hkv` is checked at run time.)
 */
export type AttentionCheck<Q extends Shape, K extends Shape, V extends Shape> = Check<
  ShapesMatch<Q, readonly [number, number, number]> extends true
    ? ShapesMatch<K, readonly [number, number, number]> extends true
      ? DimsMatch<Last<Q>, Last<K>> extends true
        ? ShapesMatch<K, V>
        : false
      : false
    : false,
  'attention: q must be [S, Hq, Dh], k and v both [T, Hkv, Dh]'
>;

/** Options of {@link attention}; `out` is the result's dtype (f16 needs `shader-f16` on WebGPU). */
export interface AttentionOptions<O extends OutDType = 'f32'> extends OutOptions<O> {
  /** Absolute position of query row 0 (the number of tokens before this call; Meta's `start_pos`). */
  offset: number;
  /** Key rows to attend to, `<= T` (default `offset + S`: every token up to the last query). */
  length?: number;
  /** Multiplies the logits (default `1 / sqrt(Dh)`). */
  scale?: number;
  /** Mask keys after each query's position (default true). */
  causal?: boolean;
  /**
   * WebGPU tuning: keys per workgroup (rounded up to 64). Fewer than `length` splits each (row, head) over
   * several workgroups whose partial softmaxes a second kernel merges, so a decode step (few rows, many
   * keys) fills a GPU. Default: no split on software adapters (their few cores are busy anyway); on GPUs,
   * chunks of a power of two of keys, at least 64, for about 1024 workgroups (see `chunking` in the
   * source). Keys larger than one storage binding are split anyway, into chunks no larger than a binding
   * holds (see the module).
   */
  keysPerWorkgroup?: number;
  /**
   * WebGPU tuning: the kernel (`AttentionKernel` in `gpu/variants.ts`). Default: `lanes` on software
   * adapters where it fits (subgroups of 8 or more, Dh a multiple of 32), else `blocks`, which is also what
   * `keysPerWorkgroup` and keys larger than one storage binding take.
   */
  kernel?: AttentionKernel;
}

/** The sizes of one attention call, as the reference and the kernel see them. */
export interface AttentionDims {
  /** Query rows. */
  seq: number;
  /** Query heads. */
  heads: number;
  /** Key/value heads (`heads` is a multiple of it). */
  kvHeads: number;
  /** Elements per head. */
  headDim: number;
  /** Key/value rows stored (the first `length` of them are read). */
  keys: number;
}

/** `options` with every default filled in (the WebGPU tuning aside). */
export type ResolvedAttentionOptions = Required<
  Omit<AttentionOptions, 'keysPerWorkgroup' | 'kernel' | 'out'>
>;

/** Checks shapes and options (errors name the op and the sizes) and fills in the defaults. */
export function attentionShape(
  q: Shape,
  k: Shape,
  v: Shape,
  options: AttentionOptions<OutDType>,
): { dims: AttentionDims; options: ResolvedAttentionOptions } {
  const op = 'attention';
  const shapes = () => `q ${formatShape(q)}, k ${formatShape(k)}, v ${formatShape(v)}`;
  checkShape(
    q.length === 3 && k.length === 3,
    op,
    () => `q must be [S, Hq, Dh], k [T, Hkv, Dh]: ${shapes()}`,
  );
  const [seq, heads, headDim] = q as [number, number, number];
  const [keys, kvHeads, kDim] = k as [number, number, number];
  checkShape(
    kDim === headDim,
    op,
    () => `head dims differ: q has Dh = ${headDim}, k has ${kDim} (${shapes()})`,
  );
  checkShape(
    v.length === 3 && v.every((d, i) => d === k[i]),
    op,
    () => `v must have k's shape [T, Hkv, Dh]: ${shapes()}`,
  );
  checkShape(
    kvHeads > 0 && heads % kvHeads === 0,
    op,
    () => `q's ${heads} heads are not a multiple of k's ${kvHeads} kv heads (${shapes()})`,
  );
  const { offset } = options;
  const length = options.length ?? offset + seq;
  checkShape(Number.isSafeInteger(offset) && offset >= 0, op, () => `offset ${offset} is not a position`);
  checkShape(
    Number.isSafeInteger(length) && length >= 0 && length <= keys,
    op,
    () => `length ${length} is outside k's ${keys} rows (${shapes()}, offset ${offset})`,
  );
  return {
    dims: { seq, heads, kvHeads, headDim, keys },
    options: {
      offset,
      length,
      scale: options.scale ?? 1 / Math.sqrt(headDim),
      causal: options.causal ?? true,
    },
  };
}

/**
 * The CPU reference, in f64 with a max-subtracted softmax: `q [S, Hq, Dh]`, `k`/`v [T, Hkv, Dh]` ->
 * `[S, Hq, Dh]`. Rows that see no key (only when `length` is 0) are 0.
 */
export function attentionReference(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dims: AttentionDims,
  options: ResolvedAttentionOptions,
): Float32Array {
  const { seq, heads, kvHeads, headDim } = dims;
  const { offset, length, scale, causal } = options;
  const group = heads / kvHeads;
  const out = new Float32Array(seq * heads * headDim);
  const scores = new Float64Array(length);
  const acc = new Float64Array(headDim);
  for (let i = 0; i < seq; i++) {
    const limit = causal ? Math.min(length, offset + i + 1) : length;
    for (let h = 0; h < heads; h++) {
      const qBase = (i * heads + h) * headDim;
      const kvBase = Math.floor(h / group) * headDim;
      let max = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < limit; j++) {
        const kBase = j * kvHeads * headDim + kvBase;
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += q[qBase + d]! * k[kBase + d]!;
        scores[j] = dot * scale;
        max = Math.max(max, dot * scale);
      }
      acc.fill(0);
      let sum = 0;
      for (let j = 0; j < limit; j++) {
        const p = Math.exp(scores[j]! - max);
        sum += p;
        const vBase = j * kvHeads * headDim + kvBase;
        for (let d = 0; d < headDim; d++) acc[d]! += p * v[vBase + d]!;
      }
      for (let d = 0; d < headDim; d++) out[qBase + d] = sum > 0 ? acc[d]! / sum : 0;
    }
  }
  return out;
}

// Keys per block and invocations per workgroup. 64 keeps lavapipe's SIMD lanes busy and is a common GPU wave.
const BLOCK = 64;
// The most positions a replayed decode step looks ahead for a change of its chunks (see sameFor below).
const MAX_SAME_FOR = 4096;
// Keys that one workgroup per (row, head) reads in about the time of a split and its merge on a GPU.
const SHORT_CACHE = 4 * BLOCK;
// Start of the running max: finite (WGSL may assume no infinities) yet exp(NO_SCORE - m) is 0 for any real m.
const NO_SCORE = '-3.0e38';

// The head size is a uniform, not a constant: LLVM (lavapipe) fully unrolls constant-bound loops, which made
// the Dh = 128 pipeline take seconds to compile, and one pipeline now serves every head size.
// q and out may be f16 (`vec4<f16>`, with shader-f16): q is widened on load, out rounded once on store; the
// softmax and sums stay f32. When the keys are split, out is the f32 partial buffer and the merge rounds.
// With \`rope\` (a decode step, see ropeQkvAttention): q is the fused projection qkv [1, (Hq + 2 Hkv) Dh];
// the kernel rotates q and this step's key by the position (half-split pairs, cos/sin tables [positions,
// Dh / 2]), uses the key and value of the position straight from qkv, and one workgroup per kv head (its
// first query head, the chunk holding the position) writes them to the cache, which no other workgroup
// reads at that row.
const wgsl = (qType: OutDType, outType: OutDType, rope = false) => `${enableF16(qType, outType)}
@group(0) @binding(0) var<storage, read> q: array<vec4<${qType}>>;
@group(0) @binding(1) var<storage, ${rope ? 'read_write' : 'read'}> k: array<vec4f>;
@group(0) @binding(2) var<storage, ${rope ? 'read_write' : 'read'}> v: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<${outType}>>;
${
  rope
    ? `@group(0) @binding(4) var<storage, read> cosT: array<vec4f>;
@group(0) @binding(5) var<storage, read> sinT: array<vec4f>;
var<workgroup> kp: array<vec4f, ${BLOCK}>; // the position's key, rotated
var<workgroup> vp: array<vec4f, ${BLOCK}>; // and its value
// vec4 c of the head starting at vec4 \`at\` of qkv, rotated by cos/sin vec4 t: pairs (d, d + Dh / 2).
fn rotated(at: u32, c: u32, half: u32, cs: vec4f, sn: vec4f) -> vec4f {
  let x = vec4f(q[at + c]);
  if (c < half) { return x * cs - vec4f(q[at + c + half]) * sn; }
  return x * cs + vec4f(q[at + c - half]) * sn;
}`
    : ''
}
${params(rope ? 6 : 4, { rows: 'u32', heads: 'u32', group: 'u32', kvHeads: 'u32', offset: 'u32', length: 'u32', causal: 'u32', scale: 'f32', cols: 'u32', subsets: 'u32', parts: 'u32', split: 'u32', row0: 'u32', q0: 'u32', o0: 'u32', key0: 'u32', part0: 'u32', wparts: 'u32' })}
const B = ${BLOCK}u;
var<workgroup> qs: array<vec4f, B>; // this row's query, already scaled (Dh / 4 <= B columns)
var<workgroup> scores: array<vec4f, ${BLOCK / 4}>; // this block's logits (vec4 so the max takes B / 4 steps)
var<workgroup> probs: array<f32, B>; // exp(logit - running max)
var<workgroup> partAcc: array<vec4f, B>;
var<workgroup> partSum: array<f32, B>;

// One workgroup per (query row, head, chunk of p.split keys); keys stream through in blocks of B with an
// online softmax, so no score matrix is written to memory. Per block: lane t scores key t, every lane finds
// the block max, lane t writes its probability, then each lane sums probability * v over its keys for its
// column. With one chunk the result goes to out [S, Hq, Dh]; with several, each writes its unnormalised
// sum and (max, sum of exp) to out [S * Hq, parts, C + 1] for the merge kernel.
// A dispatch covers query rows [row0, row0 + rows) and chunks [part0, part0 + wparts), whose keys start at
// row key0: q and out are bound from row row0 (at vec4 q0 and o0 of their bindings), k and v from key row
// key0, so that tensors larger than one binding are read in parts. Bound whole: all 0.
@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows * p.heads * p.wparts) { return; }
  // Output phase: lane t owns vec4 column t % C for the keys j = t / C (mod KS) of each block; the KS
  // partial sums are combined at the end.
  let C = p.cols; // vec4 columns per head
  let KS = p.subsets; // B / C
  let rh = wg / p.wparts; // (row - row0) * Hq + head
  let part = p.part0 + wg % p.wparts;
  let i = p.row0 + rh / p.heads;
  let kvBase = (rh % p.heads) / p.group * C;
  let kvStride = p.kvHeads * C;
${
  rope
    ? `  let pos = p.offset; // the one query row's position, and the row of its key
  let half = C / 2u;
  let head = rh % p.heads;
  let kvHead = head / p.group;
  for (var c = lid; c < C; c += B) {
    let t = pos * half + c % half;
    let cs = cosT[t];
    let sn = sinT[t];
    qs[c] = rotated(p.q0 + head * C, c, half, cs, sn) * p.scale;
    kp[c] = rotated(p.q0 + (p.heads + kvHead) * C, c, half, cs, sn);
    vp[c] = vec4f(q[p.q0 + (p.heads + p.kvHeads + kvHead) * C + c]);
    if (head % p.group == 0u && part == pos / p.split) {
      k[(pos - p.key0) * kvStride + kvBase + c] = kp[c];
      v[(pos - p.key0) * kvStride + kvBase + c] = vp[c];
    }
  }`
    : `  let qBase = p.q0 + rh * C; // q and out are [S, Hq, Dh]: row i, head h starts at (i * Hq + h) * Dh
  for (var c = lid; c < C; c += B) { qs[c] = vec4f(q[qBase + c]) * p.scale; }`
}
  var limit = p.length;
  if (p.causal != 0u) { limit = min(limit, p.offset + i + 1u); }
  let begin = part * p.split;
  let end = min(limit, begin + p.split);
  let col = lid % C;
  let sub = lid / C;
  workgroupBarrier();
  var m = ${NO_SCORE}; // running max of the logits
  var l = 0.0; // running sum of exp(logit - m) over this lane's keys
  var acc = vec4f(0.0); // running sum of exp(logit - m) * v over this lane's keys
  for (var j0 = begin; j0 < end; j0 += B) {
    let n = min(B, end - j0);
    var s = ${NO_SCORE};
    if (lid < n) {
      let kRow = (j0 + lid - p.key0) * kvStride + kvBase;
      var dot4 = vec4f(0.0);
      ${
        rope
          ? `if (j0 + lid == pos) {
        for (var c = 0u; c < C; c++) { dot4 += qs[c] * kp[c]; }
      } else {
        for (var c = 0u; c < C; c++) { dot4 += qs[c] * k[kRow + c]; }
      }`
          : 'for (var c = 0u; c < C; c++) { dot4 += qs[c] * k[kRow + c]; }'
      }
      s = dot4.x + dot4.y + dot4.z + dot4.w;
    }
    scores[lid / 4u][lid % 4u] = s;
    workgroupBarrier();
    var max4 = vec4f(m);
    for (var j = 0u; j < B / 4u; j++) { max4 = max(max4, scores[j]); }
    let mNew = max(max(max4.x, max4.y), max(max4.z, max4.w));
    probs[lid] = exp(s - mNew);
    // One barrier per phase is enough: the next block rewrites probs only after its first barrier.
    workgroupBarrier();
    let alpha = exp(m - mNew); // rescales what was summed under the old max
    m = mNew;
    acc *= alpha;
    l *= alpha;
    if (sub < KS) {
      for (var j = sub; j < n; j += KS) {
        let pj = probs[j];
        l += pj;
        ${
          rope
            ? `if (j0 + j == pos) { acc += pj * vp[col]; } else { acc += pj * v[(j0 + j - p.key0) * kvStride + kvBase + col]; }`
            : 'acc += pj * v[(j0 + j - p.key0) * kvStride + kvBase + col];'
        }
      }
    }
  }
  partAcc[lid] = acc;
  partSum[lid] = l;
  workgroupBarrier();
  if (lid < C) {
    var total = vec4f(0.0);
    var sum = 0.0;
    for (var t = lid; t < KS * C; t += C) {
      total += partAcc[t];
      sum += partSum[t];
    }
    if (p.parts == 1u) {
      out[p.o0 + rh * C + lid] = vec4<${outType}>(select(vec4f(0.0), total / sum, sum > 0.0));
    } else {
      let at = p.o0 + (rh * p.parts + part) * (C + 1u);
      out[at + lid] = vec4<${outType}>(total);
      if (lid == 0u) { out[at + C] = vec4<${outType}>(vec4f(m, sum, 0.0, 0.0)); }
    }
  }
}`;

// Merges the chunks of each (row, head): rescales every chunk's sums to the largest max, then divides.
// partial and out are bound from the dispatch's first row, at vec4 p0 and o0 of their bindings.
const mergeWgsl = (outType: OutDType) => `${enableF16(outType)}
@group(0) @binding(0) var<storage, read> partial: array<vec4f>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<${outType}>>;
${params(2, { count: 'u32', cols: 'u32', parts: 'u32', p0: 'u32', o0: 'u32' })}
@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let C = p.cols;
  if (wg >= p.count || lid >= C) { return; }
  let base = p.p0 + wg * p.parts * (C + 1u);
  var mMax = ${NO_SCORE};
  for (var part = 0u; part < p.parts; part++) { mMax = max(mMax, partial[base + part * (C + 1u) + C].x); }
  var sum = 0.0;
  var total = vec4f(0.0);
  for (var part = 0u; part < p.parts; part++) {
    let at = base + part * (C + 1u);
    let stats = partial[at + C]; // (max, sum of exp); an empty chunk has max NO_SCORE and weighs 0
    let w = exp(stats.x - mMax);
    sum += w * stats.y;
    total += w * partial[at + lid];
  }
  out[p.o0 + wg * C + lid] = vec4<${outType}>(select(vec4f(0.0), total / sum, sum > 0.0));
}`;

/**
 * Keys per workgroup (`split`) and chunks per (query row, head) (`parts`) for `length` keys of a cache of
 * `capacity` rows. Requested: that many keys, in as many chunks as `length` needs. Software adapters: one
 * chunk. GPUs: one chunk for a cache of at most 256 rows, else up to ceil(1024 / rowHeads) chunks (about
 * 1024 workgroups) of a power of two of keys, at least 64, enough to cover `length`; the number of chunks
 * then follows the capacity, not `length` (a chunk past it is a workgroup that exits at once), so a decode
 * step's dispatches stay the same until the chunk size doubles, and a replayed step
 * (`WebGpuDevice.capture`) lasts that long. On an H100, 1B decode at 300 cached positions took 0.6 ms
 * more per token with chunks of at least 256 keys, which left 32 to 64 workgroups to stream every key.
 */
function chunking(
  software: boolean,
  rowHeads: number,
  length: number,
  capacity: number,
  requested?: number,
): { split: number; parts: number } {
  const whole = (keys: number) => Math.ceil(Math.max(1, keys) / BLOCK) * BLOCK;
  if (requested !== undefined) {
    const split = Math.min(whole(requested), whole(length));
    return { split, parts: Math.max(1, Math.ceil(length / split)) };
  }
  if (software) return { split: whole(length), parts: 1 };
  // A short cache: one chunk, so no merge kernel (one dispatch less per layer than splitting it).
  if (capacity <= SHORT_CACHE) return { split: whole(capacity), parts: 1 };
  const most = Math.ceil(1024 / rowHeads);
  const split = Math.max(BLOCK, 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(length / most)))));
  return { split, parts: Math.max(1, Math.min(most, Math.ceil(capacity / split))) };
}

/** Key rows `[first, first + count)` of k and v as one dispatch binds them (from row `first`). */
interface KeyWindow {
  /** The window's first key row (a multiple of the chunk size). */
  first: number;
  /** Key rows in the window. */
  count: number;
  /** k's binding, from row `first`. */
  k: BufferBinding;
  /** v's binding, laid out like k's. */
  v: BufferBinding;
}

/**
 * How k and v are bound, and the keys per chunk. When k and v fit one binding, or their first `length`
 * rows do, there is one window and the requested chunk size: the dispatches of a call that does not split
 * (one, or one and a merge, for a decode step). Else the keys go in windows of whole chunks that each fit
 * a binding, the chunk size shrunk to one window if needed; only rows below `length` are bound (the
 * ones past it are stale).
 */
function keyWindows(
  op: string,
  k: Tensor,
  v: Tensor,
  length: number,
  requested: number,
): { split: number; windows: KeyWindow[] } {
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = (k.device as WebGpuDevice).caps;
  const row = k.shape[1]! * k.shape[2]!; // elements per key row: kvHeads * headDim
  if (k.storage.byteLength <= max && v.storage.byteLength <= max) {
    return { split: requested, windows: [{ first: 0, count: length, k: bind(op, k), v: bind(op, v) }] };
  }
  if (length * row * 4 <= max) {
    // One row at least: an empty binding is invalid (with length 0 no key is read).
    const bound = Math.max(1, length) * row;
    const [ks, vs] = [bindSpan(op, k, 0, bound), bindSpan(op, v, 0, bound)];
    return { split: requested, windows: [{ first: 0, count: length, k: ks.binding, v: vs.binding }] };
  }
  const fit = Math.floor((max - align) / (row * 4) / BLOCK) * BLOCK; // whole blocks of keys per binding
  if (fit === 0) {
    throw new GpuOpError(
      op,
      `${BLOCK} key rows of ${row * 4} bytes do not fit a binding (maxStorageBufferBindingSize = ${max})`,
    );
  }
  const split = Math.min(requested, fit);
  const perWindow = Math.floor(fit / split) * split;
  const windows: KeyWindow[] = [];
  for (let first = 0; first < length; first += perWindow) {
    // A window starts at a multiple of 64 rows of whole vec4s, 1024 bytes: a multiple of any storage
    // offset alignment (WebGPU allows at most 256), so row `first` is the first of the binding.
    const count = Math.min(perWindow, length - first);
    const [ks, vs] = [bindSpan(op, k, first * row, count * row), bindSpan(op, v, first * row, count * row)];
    if (ks.base !== 0) throw new Error(`${op}: key row ${first} does not start a binding`);
    windows.push({ first, count, k: ks.binding, v: vs.binding });
  }
  return { split, windows };
}

/** An element offset in vec4s: bindings start at aligned offsets and rows are whole vec4s, so it divides. */
function vec4s(elements: number): number {
  if (elements % 4 !== 0) throw new Error(`attention: element offset ${elements} is not a whole vec4`);
  return elements / 4;
}

/**
 * Causal attention with grouped-query heads:
 * `q [S, Hq, Dh]`, `k`/`v [T, Hkv, Dh]` -> `[S, Hq, Dh]` f32 (f16 with `out: 'f16'`), with `out[i, h] = softmax(scale * q[i, h] .
 * k[j, g]) v[j, g]` over the visible keys `j` (see the module), `g = h / (Hq / Hkv)`.
 *
 * For a decode step against a `KvCache`, see `KvCache.attend`. k and v are f32, q is f32 or f16 (f16 q
 * needs `shader-f16` on WebGPU); the softmax is f32 either way. On WebGPU `Dh` must be a multiple of 4 (the
 * kernel reads vec4s) and at most 256.
 *
 * @example
 * ```ts
 * import { randn } from '@proj/core';
 * import { attention } from '@proj/ops';
 * const q = randn([5, 8, 16], { seed: 1 }); // 5 tokens, 8 query heads of 16
 * const k = randn([5, 2, 16], { seed: 2 }); // 2 kv heads: each serves 4 query heads
 * const v = randn([5, 2, 16], { seed: 3 });
 * const out = attention(q, k, v, { offset: 0 });
 * console.log(out.shape); // [5, 8, 16]
 * ```
 */
export function attention<Q extends Shape, K extends Shape, V extends Shape, O extends OutDType = 'f32'>(
  q: Tensor<Q>,
  k: Tensor<K> & AttentionCheck<Q, K, V>,
  v: Tensor<V>,
  options: AttentionOptions<O>,
): Tensor<Q, O> {
  const op = 'attention';
  const { dims, options: o } = attentionShape(q.shape, k.shape, v.shape, options);
  if ((q.dtype !== 'f32' && q.dtype !== 'f16') || k.dtype !== 'f32' || v.dtype !== 'f32') {
    throw new Error(`${op}: q must be f32 or f16, k and v f32, got ${q.dtype}, ${k.dtype} and ${v.dtype}`);
  }
  const device = deviceOf(op, q, k, v);
  const outType = outDtype(op, device, options);
  if (!isGpu(device)) {
    const r = attentionReference(cpuFloats(q), cpuFloats(k), cpuFloats(v), dims, o);
    return cpuResult(r, q.shape, outType);
  }
  const qType = q.dtype as OutDType;
  if (qType === 'f16') outDtype(op, device, { out: 'f16' }); // an f16 q is bound as array<vec4<f16>>
  const { seq, heads, headDim } = dims;
  checkShape(
    headDim % 4 === 0 && headDim <= 4 * BLOCK,
    op,
    () => `the WebGPU kernel needs Dh a multiple of 4 and at most ${4 * BLOCK}, got Dh = ${headDim}`,
  );
  const out = empty(q.shape, outType, device);
  if (out.numel === 0) return out;
  const caps = device.caps;
  const kernel =
    options.kernel ?? (options.keysPerWorkgroup === undefined ? attentionKernel(caps, headDim) : 'blocks');
  if (kernel === 'lanes' && !lanesAttentionFits(caps, headDim)) {
    throw new GpuOpError(
      op,
      `the lanes kernel needs subgroups of 8 or more and Dh a multiple of 32 up to 256, got Dh = ${headDim}`,
    );
  }
  const row = heads * headDim;
  if (kernel === 'lanes') {
    const { windows } = keyWindows(op, k, v, o.length, o.length);
    if (windows.length === 1) {
      // Every key below length in one binding (the common case): no chunks, no merge.
      const [w] = windows as [KeyWindow];
      for (const run of runs(op, [q, out], [row, row], seq)) {
        const [qBinding, outBinding] = run.bindings as [BufferBinding, BufferBinding];
        const [q0, o0] = run.bases.map(vec4s) as [number, number];
        const types = { q: qType, out: outType };
        const bindings = { q: qBinding, q0, k: w.k, v: w.v, out: outBinding, o0 };
        recordLanesAttention(device, dims, o, types, { ...bindings, first: run.first, count: run.count });
      }
      return out;
    }
  }
  recordBlocks(device, { q, type: qType }, k, v, out, outType, dims, o, options.keysPerWorkgroup);
  return out;
}

/**
 * What the `blocks` kernel reads its queries from: `q [S, Hq, Dh]`, or with `rope` the fused projection
 * `qkv [1, (Hq + 2 Hkv) Dh]` of one decode step, whose q and key it rotates with the tables and whose key
 * and value it writes to the cache (see {@link ropeQkvAttention}).
 */
interface BlocksQueries {
  q: Tensor;
  type: OutDType;
  rope?: RopeTables;
}

/** @internal Records the `blocks` kernel (and the merge of split chunks) for `out [S, Hq, Dh]`. */
export function recordBlocks(
  device: WebGpuDevice,
  queries: BlocksQueries,
  k: Tensor,
  v: Tensor,
  out: Tensor,
  outType: OutDType,
  dims: AttentionDims,
  o: ResolvedAttentionOptions,
  keysPerWorkgroup: number | undefined,
): void {
  const op = 'attention';
  const { q, type: qType, rope } = queries;
  const { seq, heads, kvHeads, headDim } = dims;
  const caps = device.caps;
  const row = heads * headDim;
  const cols = headDim / 4;
  const plan = (length: number) => {
    const c = chunking(caps.software, seq * heads, length, k.shape[0]!, keysPerWorkgroup);
    const { split, windows } = keyWindows(op, k, v, length, c.split);
    // Keys in one binding: every chunk in one dispatch; else each window's chunks up to `length`.
    const one = windows.length === 1 && split === c.split;
    const parts = one ? c.parts : Math.max(1, Math.ceil(length / split));
    const chunks = (w: KeyWindow) => (one ? parts : Math.max(1, Math.ceil(w.count / split)));
    return { split, windows, parts, chunks };
  };
  const { split, windows, parts, chunks } = plan(o.length);
  // For replayed decode steps: how many more keys leave the chunks as they are (capped: checked once per
  // capture, and a replay that reaches the cap is captured again).
  const sameFor = () => {
    const shape = (p: ReturnType<typeof plan>) =>
      `${p.split}:${p.parts}:${p.windows.map((w) => `${w.first}+${p.chunks(w)}`)}`;
    const now = shape({ split, windows, parts, chunks });
    const last = Math.min(k.shape[0]!, o.length + MAX_SAME_FOR);
    let more = 0;
    while (o.length + more < last && shape(plan(o.length + more + 1)) === now) more++;
    return more;
  };
  // Query rows in runs whose q, out and partial sums each fit a binding (one run when they all do).
  const partialRow = heads * parts * (cols + 1) * 4; // f32 per query row: [Hq, parts, C + 1] vec4s
  const partial = parts > 1 ? empty([seq * partialRow], 'f32', device) : undefined;
  const tensors = partial ? [q, partial, out] : [q, out];
  const qRow = rope ? (heads + 2 * kvHeads) * headDim : row;
  const per = partial ? [qRow, partialRow, row] : [qRow, row];
  const tables = rope ? [bind(op, rope.cos), bind(op, rope.sin)] : [];
  for (const run of runs(op, tensors, per, seq)) {
    const [qAt, targetAt, outAt] = run.bases.map(vec4s) as [number, number, number | undefined];
    const [qBinding, targetBinding, outBinding] = run.bindings as [
      BufferBinding,
      BufferBinding,
      BufferBinding,
    ];
    for (const w of windows) {
      const wparts = chunks(w);
      const params = new Params()
        .u32(run.count)
        .u32(heads)
        .u32(heads / kvHeads)
        .u32(kvHeads)
        .position(o.offset)
        .position(o.length)
        .u32(o.causal ? 1 : 0)
        .f32(o.scale)
        .u32(cols)
        .u32(Math.floor(BLOCK / cols))
        .u32(parts)
        .u32(split)
        .u32(run.first)
        .u32(qAt)
        .u32(targetAt)
        .u32(w.first)
        .u32(w.first / split)
        .u32(wparts);
      device.dispatch({
        op,
        key: `${op}:${qType}:${partial ? 'f32' : outType}${rope ? ':rope' : ''}`,
        wgsl: () => wgsl(qType, partial ? 'f32' : outType, !!rope),
        buffers: [qBinding, w.k, w.v, targetBinding, ...tables],
        uniforms: params.data(),
        positional: params.positional,
        sameFor,
        workgroups: grid(run.count * heads * wparts, device.caps.maxWorkgroupsPerDimension),
      });
    }
    if (partial) {
      device.dispatch({
        op,
        key: `${op}-merge:${outType}`,
        wgsl: () => mergeWgsl(outType),
        buffers: [targetBinding, outBinding],
        uniforms: new Params()
          .u32(run.count * heads)
          .u32(cols)
          .u32(parts)
          .u32(targetAt)
          .u32(outAt!)
          .data(),
        workgroups: grid(run.count * heads, device.caps.maxWorkgroupsPerDimension),
      });
    }
  }
  partial?.dispose(); // back to the pool after the recorded work
}
