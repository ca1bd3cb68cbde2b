/**
 * Element types and exact conversions between them.
 *
 * f16 and bf16 are stored as their raw 16-bit patterns (`Uint16Array`); every conversion from f32 rounds to
 * nearest, ties to even, and keeps NaN, ±Infinity and subnormals.
 * @module
 */

/** The element types a tensor can hold. */
export type DType = 'f32' | 'f16' | 'bf16' | 'i32' | 'u32';

/** Every dtype, in a stable order. */
export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'i32', 'u32'];

/** The typed array that stores each dtype's elements on the CPU. */
export interface StorageArrays {
  /** 32-bit IEEE floats. */
  f32: Float32Array;
  /** IEEE half floats as raw bit patterns. */
  f16: Uint16Array;
  /** bfloat16 (the top half of an f32) as raw bit patterns. */
  bf16: Uint16Array;
  /** Signed 32-bit integers. */
  i32: Int32Array;
  /** Unsigned 32-bit integers. */
  u32: Uint32Array;
}

/** The typed array for dtype `D`. */
export type StorageArray<D extends DType> = StorageArrays[D];

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4 };

/** True for the floating-point dtypes. */
export function isFloat(dtype: DType): boolean {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16';
}

/** Throws unless `value` names a dtype. */
export function assertDType(value: string): asserts value is DType {
  if (!(DTYPES as readonly string[]).includes(value)) {
    throw new Error(`unknown dtype '${value}' (expected one of ${DTYPES.join(', ')})`);
  }
}

/** A typed array of dtype `dtype` viewing `bytes` (which must be aligned to the element size). */
export function viewAs<D extends DType>(dtype: D, bytes: Uint8Array): StorageArray<D> {
  const size = DTYPE_BYTES[dtype];
  if (bytes.byteLength % size !== 0) {
    throw new Error(`viewAs: ${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  let b = bytes;
  if (b.byteOffset % size !== 0) b = b.slice(); // typed arrays need aligned offsets
  const n = b.byteLength / size;
  const arrays = {
    f32: () => new Float32Array(b.buffer, b.byteOffset, n),
    f16: () => new Uint16Array(b.buffer, b.byteOffset, n),
    bf16: () => new Uint16Array(b.buffer, b.byteOffset, n),
    i32: () => new Int32Array(b.buffer, b.byteOffset, n),
    u32: () => new Uint32Array(b.buffer, b.byteOffset, n),
  };
  return arrays[dtype]() as StorageArray<D>;
}

/** A new zero-filled array of `n` elements of `dtype`. */
export function allocArray<D extends DType>(dtype: D, n: number): StorageArray<D> {
  return viewAs(dtype, new Uint8Array(n * DTYPE_BYTES[dtype]));
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bf16 bit pattern nearest to `x` (round to nearest even; NaN stays NaN). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN, keep sign
  const roundingBias = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + roundingBias) >>> 16) & 0xffff;
}

/** The f32 value of a bf16 bit pattern (exact). */
export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0]!;
}

/** The f16 bit pattern nearest to `x` (round to nearest even; overflow to ±Inf; subnormals kept). */
export function f32ToF16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0); // Inf or NaN
  const e = exp - 127 + 15; // re-biased exponent
  if (e >= 0x1f) return sign | 0x7c00; // too large: Inf
  if (e <= 0) {
    // subnormal in f16 (or zero): shift the implicit 1 in and round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && (h & 1) === 1)) h += 1;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h += 1; // may carry into the exponent: correct
  return sign | h;
}

/** The f32 value of an f16 bit pattern (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Converts any dtype's array to f32 values (f16/bf16 decoded, integers widened). */
export function toFloat32(dtype: DType, data: StorageArray<DType>): Float32Array {
  if (dtype === 'f32') return data as Float32Array;
  const out = new Float32Array(data.length);
  if (dtype === 'bf16') {
    const src = data as Uint16Array;
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  } else if (dtype === 'f16') {
    for (let i = 0; i < data.length; i++) out[i] = f16ToF32(data[i]!);
  } else {
    for (let i = 0; i < data.length; i++) out[i] = data[i]!;
  }
  return out;
}

/** Converts f32 values to `dtype` (rounding to nearest even for f16/bf16, truncating toward zero for ints). */
export function fromFloat32<D extends DType>(dtype: D, values: ArrayLike<number>): StorageArray<D> {
  const out = allocArray(dtype, values.length);
  const n = values.length;
  if (dtype === 'bf16') for (let i = 0; i < n; i++) out[i] = f32ToBf16(values[i]!);
  else if (dtype === 'f16') for (let i = 0; i < n; i++) out[i] = f32ToF16(values[i]!);
  else for (let i = 0; i < n; i++) out[i] = values[i]!;
  return out;
}
