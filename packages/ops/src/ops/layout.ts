/**
 * Data movement: `transpose`, `permute`, `narrow`, `concat`, `cast` and the in-place `copyInto` (the KV cache
 * append). Every op keeps the bytes of its elements (a bf16 weight stays bf16) except `cast`, and
 * `copyInto`, which converts to the destination's dtype.
 *
 * On the GPU they are all one kernel, a strided gather: destination element `e` of a region reads source
 * element `off + sum(digit_k(e) * stride_k)`. For 16-bit destinations each invocation owns one u32 word (two
 * elements), so no two invocations race on a word; a word shared with data outside the region is
 * read, modified and written back by its one owner.
 *
 * Tensors larger than one storage binding are split: the destination into ranges of words that each fit a
 * binding, and for each range the source elements it reads into windows that fit one (just one window when
 * the range reads a contiguous stretch that fits, as copies and narrows along the first axis do). A
 * dispatch writes the elements of its range whose source lies in its window; a 16-bit destination keeps
 * the half of a word that another window fills.
 * @module
 */
import {
  axisOf,
  type Check,
  checkShape,
  cpuData,
  DTYPE_BYTES,
  type DType,
  empty,
  formatShape,
  fromFloat32,
  numel,
  type Permute,
  type SetDim,
  type Shape,
  type ShapesMatch,
  type StorageArray,
  stridesOf,
  type Tensor,
  type Transpose,
  toFloat32,
  viewAs,
} from '@proj/core';
import { bind, bindSpan, deviceOf, grid, isGpu, Params, type Span } from '../op.js';
import { LINEAR_WORKGROUP } from '../wgsl.js';
import { packingOf, unpackLinearWeight } from './pack.js';

const WORKGROUP = 256;

/** `S` with dim `A` set to `N`; plain `Shape` when `A` is negative or not a literal (known at run time). */
export type WithDim<S extends Shape, A extends number, N extends number> = number extends A
  ? Shape
  : `${A}` extends `-${string}`
    ? Shape
    : SetDim<S, A, N>;

/** All dims but the first. */
export type Rest<S extends Shape> = S extends readonly [number, ...infer R extends Shape] ? R : Shape;

/** Options of {@link copyInto}. */
export interface CopyIntoOptions {
  /** The first row of `dst` written (e.g. the number of tokens already in a KV cache). */
  axis0Offset: number;
}

/**
 * The CPU reference of the gathers: `out[e] = src[offset + sum_k digit_k(e) * strides[k]]`, where
 * `digit_k(e)` are the row-major digits of `e` in `shape`. Works on the stored elements of any dtype.
 */
export function gatherReference<A extends StorageArray<DType>>(
  src: A,
  offset: number,
  shape: readonly number[],
  strides: readonly number[],
): A {
  const out = new (src.constructor as new (n: number) => A)(numel(shape));
  const index = new Array<number>(shape.length).fill(0);
  let s = offset;
  for (let e = 0; e < out.length; e++) {
    out[e] = src[s]!;
    for (let k = shape.length - 1; k >= 0; k--) {
      s += strides[k]!;
      if (++index[k]! < shape[k]!) break;
      s -= strides[k]! * shape[k]!;
      index[k] = 0;
    }
  }
  return out;
}

/**
 * The CPU reference of {@link cast}: floats round to nearest even (core's `f32ToBf16` / `f32ToF16`), floats
 * to integers truncate toward zero, i32 <-> u32 keep the bits.
 */
export function castReference<D extends DType>(
  data: StorageArray<DType>,
  from: DType,
  to: D,
): StorageArray<D> {
  const isInt = (d: DType) => d === 'i32' || d === 'u32';
  if (from === to || (isInt(from) && isInt(to))) {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return viewAs(to, bytes.slice());
  }
  return fromFloat32(to, isInt(from) ? data : toFloat32(from, data));
}

// Conversions in WGSL, bit for bit as core's: f32 -> bf16 / f16 round to nearest even on the integer bits
// (pack2x16float's rounding is unspecified), f16 -> f32 decodes the bits (subnormals included), and large
// integers round to nearest even too. Each
// dtype's stored bits decode to an f32 and encode back; unused functions cost nothing.
const CONVERSIONS = `
fn decode_f32(b: u32) -> f32 { return bitcast<f32>(b); }
fn decode_bf16(b: u32) -> f32 { return bitcast<f32>(b << 16u); }
fn decode_i32(b: u32) -> f32 {
  let negative = bitcast<i32>(b) < 0;
  let magnitude = integer_to_f32(select(b, 0u - b, negative));
  return select(magnitude, -magnitude, negative);
}
fn decode_u32(b: u32) -> f32 { return integer_to_f32(b); }
// An integer to f32, rounded to nearest even. WGSL lets f32(v) round either way when v needs more than 24
// bits (SwiftShader truncates), so those are rounded here from the bits.
fn integer_to_f32(v: u32) -> f32 {
  if (v < 0x1000000u) { return f32(v); } // exact
  let top = firstLeadingBit(v); // 24..31
  let shift = top - 23u;
  var m = v >> shift; // 24 bits
  let rest = v & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (m & 1u) == 1u)) { m += 1u; }
  return bitcast<f32>(((top + 127u) << 23u) + (m - 0x800000u)); // a carry out of m raises the exponent
}
fn decode_f16(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let exp = (h >> 10u) & 0x1fu;
  let mant = h & 0x3ffu;
  if (exp == 0u) { let v = f32(mant) * bitcast<f32>(0x33800000u); return select(v, -v, sign != 0u); } // 2^-24
  if (exp == 0x1fu) { return bitcast<f32>(sign | 0x7f800000u | (mant << 13u)); }
  return bitcast<f32>(sign | ((exp + 112u) << 23u) | (mant << 13u));
}
fn encode_f32(v: f32) -> u32 { return bitcast<u32>(v); }
fn encode_i32(v: f32) -> u32 { return bitcast<u32>(i32(v)); }
fn encode_u32(v: f32) -> u32 { return u32(v); }
fn encode_bf16(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return ((b >> 16u) | 0x40u) & 0xffffu; } // quiet NaN
  return ((b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u) & 0xffffu;
}
fn encode_f16(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  let sign = (b >> 16u) & 0x8000u;
  let exp = (b >> 23u) & 0xffu;
  var mant = b & 0x7fffffu;
  if (exp == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u | (mant >> 13u), mant != 0u); }
  let e = i32(exp) - 112; // re-biased: 127 - 15
  if (e >= 31) { return sign | 0x7c00u; }
  var shift = 13u;
  var h = u32(max(e, 0)) << 10u;
  if (e <= 0) { // subnormal half (or zero): shift the implicit 1 in
    if (e < -10) { return sign; }
    mant = mant | 0x800000u;
    shift = u32(14 - e);
  }
  let rest = mant & ((1u << shift) - 1u);
  let halfway = 1u << (shift - 1u);
  h = h | (mant >> shift);
  if (rest > halfway || (rest == halfway && (h & 1u) == 1u)) { h += 1u; } // may carry into the exponent
  return sign | h;
}`;

/** `fn convert(b: u32) -> u32`: a stored element of `from` to the stored bits of `to`. */
function convertWgsl(from: DType, to: DType): string {
  const isInt = (d: DType) => d === 'i32' || d === 'u32';
  const same = from === to || (isInt(from) && isInt(to));
  return `${CONVERSIONS}\nfn convert(b: u32) -> u32 { return ${same ? 'b' : `encode_${to}(decode_${from}(b))`}; }`;
}

/** Drops size-1 dims and merges dims that are contiguous in the source (fewer index digits per element). */
function simplify(shape: readonly number[], strides: readonly number[]): [number[], number[]] {
  const dims: number[] = [];
  const steps: number[] = [];
  for (const [k, d] of shape.entries()) {
    const last = dims.length - 1;
    if (d === 1) continue;
    if (last >= 0 && steps[last] === strides[k]! * d)
      [dims[last], steps[last]] = [dims[last]! * d, strides[k]!];
    else [dims[dims.length], steps[steps.length]] = [d, strides[k]!];
  }
  return dims.length ? [dims, steps] : [[1], [1]];
}

/** A region of the destination filled by one move, and where its elements come from. */
interface Move {
  /** Elements `[e0, e1)` of the destination are considered... */
  e0: number;
  e1: number;
  /** ...and of those, the first `width` of every `row` elements (counted from `e0`) are written. */
  row: number;
  width: number;
  /** Source element of region element `l`: `offset + sum(digit_k(l) * strides[k])` over `shape`. */
  offset: number;
  shape: readonly number[];
  strides: readonly number[];
}

/** The move that fills `n` consecutive destination elements from `e0` with the source's first `n`. */
function contiguous(e0: number, n: number): Move {
  return { e0, e1: e0 + n, row: n, width: n, offset: 0, shape: [n], strides: [1] };
}

// One invocation per destination element (32-bit) or word (16-bit) of the units [first, first + count).
// dst is bound from unit `first`, which is its word or element dbase; src is bound from the window's first
// element s0, which is its element sbase, and only source elements in [s0, s1) are read: a destination
// element whose source lies outside the window is left for the dispatch that binds it.
function moveKernel(rank: number, from: DType, to: DType): string {
  const fields = ['count', 'first', 'e0', 'e1', 'row', 'width', 'off', 'dbase', 's0', 's1', 'sbase'];
  for (let k = 0; k < rank; k++) fields.push(`d${k}`, `t${k}`);
  let digits = '';
  for (let k = rank - 1; k > 0; k--) digits += `  s += (r % p.d${k}) * p.t${k}; r = r / p.d${k};\n`;
  const body =
    DTYPE_BYTES[to] === 2
      ? `let sa = source(2u * i); let sb = source(2u * i + 1u);
  if (sa == NONE && sb == NONE) { return; }
  var word = 0u;
  if (sa == NONE || sb == NONE) { word = dst[w]; } // the other half is outside the region or the window: keep it
  if (sa != NONE) { word = (word & 0xffff0000u) | convert(src_at(sa)); }
  if (sb != NONE) { word = (word & 0x0000ffffu) | (convert(src_at(sb)) << 16u); }
  dst[w] = word;`
      : `let s = source(i);
  if (s != NONE) { dst[w] = convert(src_at(s)); }`;
  const raw = DTYPE_BYTES[from] === 2 ? '(src[i >> 1u] >> ((i & 1u) * 16u)) & 0xffffu' : 'src[i]';
  return `
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
struct Params { ${fields.map((f) => `${f}: u32,`).join(' ')} }
@group(0) @binding(2) var<uniform> p: Params;
const NONE = 0xffffffffu; // no source element (element indices are below 2^32 - 1)
fn src_raw(i: u32) -> u32 { return ${raw}; }
fn src_at(s: u32) -> u32 { return src_raw(s - p.s0 + p.sbase); } // sbase - s0 is even for 16-bit sources
fn in_region(e: u32) -> bool { return e >= p.e0 && e < p.e1 && (e - p.e0) % p.row < p.width; }
fn local(e: u32) -> u32 { let r = e - p.e0; return (r / p.row) * p.width + r % p.row; }
fn src_index(l: u32) -> u32 {
  var r = l;
  var s = p.off;
${digits}  return s + r * p.t0;
}
// The source element of destination element e, if this dispatch writes e; else NONE.
fn source(e: u32) -> u32 {
  if (!in_region(e)) { return NONE; }
  let s = src_index(local(e));
  return select(NONE, s, s >= p.s0 && s < p.s1);
}
${convertWgsl(from, to)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let n = wg * ${WORKGROUP}u + lid;
  if (n >= p.count) { return; }
  let i = p.first + n; // the destination element (or, for 16-bit destinations, word) this invocation owns
  let w = p.dbase + n; // ... and where it is in dst's binding
  ${body}
}`;
}

/** Region elements before destination element `e` (the local index of the first one at or after it). */
function regionBefore(m: Move, e: number): number {
  if (e <= m.e0) return 0;
  const r = Math.min(e, m.e1) - m.e0;
  return Math.floor(r / m.row) * m.width + Math.min(r % m.row, m.width);
}

/**
 * Source elements `[lo, hi)` that region elements `[la, lb)` may read, for the simplified gather `shape` /
 * `strides` from `offset`: exact along the first dim, every element of the inner dims' blocks (a contiguous
 * copy gets exactly its elements, a transpose about all of the source).
 */
function sourceBounds(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  la: number,
  lb: number,
): [number, number] {
  const inner = numel(shape.slice(1));
  const innerSpan = shape.slice(1).reduce((sum, d, k) => sum + (d - 1) * strides[k + 1]!, 0);
  const [first, last] = [Math.floor(la / inner), Math.floor((lb - 1) / inner)];
  return [offset + first * strides[0]!, offset + last * strides[0]! + innerSpan + 1];
}

/**
 * Fills a region of `dst` from `src`, converting to `dst`'s dtype. On the CPU: gather, convert, then copy
 * row by row; on the GPU: one invocation per destination element (32-bit) or word (16-bit), in one
 * dispatch when both tensors fit a binding, else one per (destination range, source window) pair.
 */
function move(op: string, src: Tensor, dst: Tensor, m: Move): void {
  if (m.e1 <= m.e0 || m.width === 0) return;
  const device = deviceOf(op, src, dst);
  if (!isGpu(device)) {
    const gathered = gatherReference(cpuData(src), m.offset, m.shape, m.strides);
    const values = castReference(gathered, src.dtype, dst.dtype);
    const out = cpuData(dst);
    for (let r = 0; r * m.width < values.length; r++) {
      out.set(values.subarray(r * m.width, (r + 1) * m.width), m.e0 + r * m.row);
    }
    return;
  }
  if (packingOf(src)) {
    // A weight packed for linear reads as the row-major tensor it stands for: unpack it first (a copy).
    const rowMajor = unpackLinearWeight(src);
    move(op, rowMajor, dst, m);
    rowMajor.dispose();
    return;
  }
  const [shape, strides] = simplify(m.shape, m.strides);
  const perUnit = DTYPE_BYTES[dst.dtype] === 2 ? 2 : 1; // destination elements per invocation
  const first = Math.floor(m.e0 / perUnit);
  const count = Math.ceil(m.e1 / perUnit) - first;
  const dispatch = (units: [number, number], to: Span, window: [number, number], from: Span) => {
    const uniforms = new Params();
    for (const v of [units[1], units[0], m.e0, m.e1, m.row, m.width, m.offset]) uniforms.u32(v);
    uniforms
      .u32(to.base / perUnit)
      .u32(window[0])
      .u32(window[1])
      .u32(from.base);
    for (const [k, d] of shape.entries()) uniforms.u32(d).u32(strides[k]!);
    device.dispatch({
      op,
      key: `move:${shape.length}:${src.dtype}:${dst.dtype}`,
      wgsl: () => moveKernel(shape.length, src.dtype, dst.dtype),
      buffers: [from.binding, to.binding],
      uniforms: uniforms.data(),
      workgroups: grid(Math.ceil(units[1] / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
  };
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = device.caps;
  if (src.storage.byteLength <= max && dst.storage.byteLength <= max) {
    const whole = (t: Tensor, base: number): Span => ({ binding: bind(op, t), base });
    dispatch([first, count], whole(dst, first * perUnit), [0, src.numel], whole(src, 0));
    return;
  }
  // Source elements per window, and destination units per range: no more than a window's worth of
  // elements, so that a contiguous copy reads one window per range.
  const window = Math.floor((max - align) / DTYPE_BYTES[src.dtype]);
  const unitsPerRange = Math.min(Math.floor((max - align) / 4), Math.floor(window / perUnit));
  for (let u0 = first; u0 < first + count; u0 += unitsPerRange) {
    const n = Math.min(unitsPerRange, first + count - u0);
    const la = regionBefore(m, u0 * perUnit);
    const lb = regionBefore(m, (u0 + n) * perUnit);
    if (la >= lb) continue; // the range holds no element of the region (another input's part of a concat)
    const to = bindSpan(op, dst, u0 * perUnit, n * perUnit);
    const [lo, hi] = sourceBounds(shape, strides, m.offset, la, lb);
    for (let s0 = lo; s0 < hi; s0 += window) {
      const s1 = Math.min(hi, s0 + window);
      dispatch([u0, n], to, [s0, s1], bindSpan(op, src, s0, s1 - s0));
    }
  }
}

/** A new tensor of `shape` gathered from `x` (same dtype and device). */
function gather<S extends Shape, D extends DType>(
  op: string,
  x: Tensor<Shape, D>,
  shape: S,
  offset: number,
  strides: readonly number[],
): Tensor<S, D> {
  const out = empty(shape, x.dtype, x.device);
  const n = out.numel;
  move(op, x, out, { e0: 0, e1: n, row: n, width: n, offset, shape, strides });
  return out;
}

/**
 * Reorders the dims: output dim `k` is input dim `perm[k]`. Keeps the dtype.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { permute } from '@proj/ops';
 * const x = tensor([1, 2, 3, 4, 5, 6], [1, 2, 3]);
 * const y = permute(x, [2, 0, 1]); // [3, 1, 2]
 * console.log(await y.toArray()); // Float32Array [1, 4, 2, 5, 3, 6]
 * ```
 */
export function permute<S extends Shape, const P extends readonly number[], D extends DType>(
  x: Tensor<S, D>,
  perm: P,
): Tensor<Permute<S, P>, D> {
  return permuteAs('permute', x, perm) as Tensor<Permute<S, P>, D>;
}

/** {@link permute} under the name of the op that called it (for its errors). */
function permuteAs<D extends DType>(
  op: string,
  x: Tensor<Shape, D>,
  perm: readonly number[],
): Tensor<Shape, D> {
  const rank = x.shape.length;
  checkShape(
    perm.length === rank && [...perm].sort((a, b) => a - b).every((p, k) => p === k),
    op,
    () => `[${perm.join(', ')}] is not a permutation of the ${rank} dims of x ${formatShape(x.shape)}`,
  );
  const strides = stridesOf(x.shape);
  const shape = perm.map((p) => x.shape[p]!);
  return gather(
    op,
    x,
    shape,
    0,
    perm.map((p) => strides[p]!),
  );
}

/**
 * Swaps the last two dims: `[..., A, B]` -> `[..., B, A]`. Keeps the dtype.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { transpose } from '@proj/ops';
 * console.log(await transpose(tensor([1, 2, 3, 4, 5, 6], [2, 3])).toArray()); // [1, 4, 2, 5, 3, 6]
 * ```
 */
export function transpose<S extends Shape, D extends DType>(x: Tensor<S, D>): Tensor<Transpose<S>, D> {
  const rank = x.shape.length;
  checkShape(rank >= 2, 'transpose', () => `x ${formatShape(x.shape)} needs at least 2 dims`);
  const perm = [...Array(rank - 2).keys(), rank - 1, rank - 2];
  return permuteAs('transpose', x, perm) as unknown as Tensor<Transpose<S>, D>;
}

/**
 * The slice `[start, start + length)` of dim `axis` (negative counts from the end). Keeps the dtype.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { narrow } from '@proj/ops';
 * console.log(await narrow(tensor([1, 2, 3, 4, 5, 6], [2, 3]), 1, 1, 2).toArray()); // [2, 3, 5, 6]
 * ```
 */
export function narrow<S extends Shape, D extends DType, const A extends number, const L extends number>(
  x: Tensor<S, D>,
  axis: A,
  start: number,
  length: L,
): Tensor<WithDim<S, A, L>, D> {
  const a = axisOf('narrow', x.shape, axis);
  const size = x.shape[a]!;
  checkShape(
    Number.isSafeInteger(start) &&
      Number.isSafeInteger(length) &&
      start >= 0 &&
      length >= 0 &&
      start + length <= size,
    'narrow',
    () => `[${start}, ${start + length}) is not inside dim ${a} (size ${size}) of x ${formatShape(x.shape)}`,
  );
  const strides = stridesOf(x.shape);
  const shape = x.shape.map((d, k) => (k === a ? length : d)) as unknown as WithDim<S, A, L>;
  return gather('narrow', x, shape, start * strides[a]!, strides);
}

/**
 * Joins tensors along `axis`; all other dims, the dtype and the device must agree. Keeps the dtype.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { concat } from '@proj/ops';
 * const y = concat([tensor([1, 2], [2, 1]), tensor([3, 4, 5, 6], [2, 2])], 1); // [2, 3]
 * console.log(await y.toArray()); // Float32Array [1, 3, 4, 2, 5, 6]
 * ```
 */
export function concat<D extends DType>(xs: readonly Tensor<Shape, D>[], axis: number): Tensor<Shape, D> {
  const x0 = xs[0];
  checkShape(x0 !== undefined, 'concat', () => 'needs at least one tensor');
  const a = axisOf('concat', x0.shape, axis);
  const list = xs.map((x) => `${formatShape(x.shape)} ${x.dtype}`).join(', ');
  checkShape(
    xs.every(
      (x) =>
        x.dtype === x0.dtype &&
        x.shape.length === x0.shape.length &&
        x.shape.every((d, k) => k === a || d === x0.shape[k]),
    ),
    'concat',
    () => `tensors ${list} must have one dtype and equal dims except dim ${a}`,
  );
  const device = deviceOf('concat', ...xs);
  const total = xs.reduce((sum, x) => sum + x.shape[a]!, 0);
  const shape = x0.shape.map((d, k) => (k === a ? total : d));
  const outer = numel(x0.shape.slice(0, a));
  const inner = numel(x0.shape.slice(a + 1));
  const out = empty(shape, x0.dtype, device);
  let start = 0;
  for (const x of xs) {
    // Input x fills `width` elements of every output row of `total * inner`, from column `start * inner`.
    const [e0, row, width] = [start * inner, total * inner, x.shape[a]! * inner];
    const region = { e0, e1: e0 + (outer - 1) * row + width, row, width };
    if (outer > 0) move('concat', x, out, { ...region, offset: 0, shape: [x.numel], strides: [1] });
    start += x.shape[a]!;
  }
  return out;
}

/**
 * Converts to `dtype`: f32 -> f16/bf16 rounds to nearest even, bit for bit as core's `f32ToF16` /
 * `f32ToBf16` do; f16/bf16 -> f32 is exact; floats -> integers truncate toward zero (out-of-range values
 * and NaN are unspecified: the CPU wraps like JS typed arrays, GPUs saturate); i32 <-> u32 keep the bits;
 * integers -> floats are exact up to 2^24. Casting to the tensor's own dtype gives a copy.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { cast } from '@proj/ops';
 * const h = cast(tensor([1, 1 / 3], [2]), 'bf16');
 * console.log(h.dtype, await h.toArray()); // bf16 Float32Array [1, 0.333984375]
 * ```
 */
export function cast<S extends Shape, To extends DType>(x: Tensor<S>, dtype: To): Tensor<S, To> {
  const out = empty(x.shape, dtype, x.device);
  move('cast', x, out, contiguous(0, x.numel));
  return out;
}

/**
 * Writes `src [r, ...rest]` into rows `[axis0Offset, axis0Offset + r)` of `dst [R, ...rest]`, in place,
 * converting to `dst`'s dtype as {@link cast} does (so a bf16 KV cache takes f32 keys).
 *
 * @example
 * ```ts
 * import { tensor, zeros } from '@proj/core';
 * import { copyInto } from '@proj/ops';
 * const cache = zeros([4, 2]);
 * copyInto(cache, tensor([1, 2, 3, 4], [2, 2]), { axis0Offset: 1 });
 * console.log(await cache.toArray()); // Float32Array [0, 0, 1, 2, 3, 4, 0, 0]
 * ```
 */
export function copyInto<R extends Shape, S extends Shape>(
  dst: Tensor<R>,
  src: Tensor<S> &
    Check<ShapesMatch<Rest<R>, Rest<S>>, 'copyInto: src and dst must agree on every dim but the first'>,
  options: CopyIntoOptions,
): void {
  const offset = options.axis0Offset;
  const rows = src.shape[0] ?? 0;
  checkShape(
    dst.shape.length >= 1 &&
      src.shape.length === dst.shape.length &&
      src.shape.every((d, k) => k === 0 || d === dst.shape[k]) &&
      Number.isSafeInteger(offset) &&
      offset >= 0 &&
      offset + rows <= dst.shape[0]!,
    'copyInto',
    () => `src ${formatShape(src.shape)} does not fit dst ${formatShape(dst.shape)} at row ${offset}`,
  );
  if (src.storage === dst.storage) throw new Error('copyInto: src and dst share storage');
  move('copyInto', src, dst, contiguous(offset * numel(dst.shape.slice(1)), src.numel));
}
