/**
 * The element types a safetensors file can declare, their sizes, and how they map onto the core's dtypes.
 * A file may hold types the core cannot compute with (F64, I64, ...); they are still parsed and readable as
 * raw bytes, and only asking for them as a core dtype fails.
 * @module
 */
import type { DType } from '../dtype.js';
import { SafetensorsError } from './errors.js';

/** Bytes per element of every dtype string the safetensors format defines with a whole-byte size. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  C64: 8,
  F64: 8,
  I64: 8,
  U64: 8,
} as const satisfies Record<string, number>;

/** A dtype string as written in a safetensors header (`"F32"`, `"BF16"`, ...). */
export type SafetensorsDType = keyof typeof SAFETENSORS_DTYPE_BYTES;

/** True when `value` is a dtype string this reader knows. */
export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(SAFETENSORS_DTYPE_BYTES, value);
}

const TO_CORE: Partial<Record<SafetensorsDType, DType>> = {
  F32: 'f32',
  F16: 'f16',
  BF16: 'bf16',
  I32: 'i32',
  U32: 'u32',
};

const FROM_CORE: Record<DType, SafetensorsDType> = {
  f32: 'F32',
  f16: 'F16',
  bf16: 'BF16',
  i32: 'I32',
  u32: 'U32',
};

/**
 * The core dtype for a safetensors dtype. Throws a `SafetensorsError` naming `tensor` (and `file`) for
 * types the core has no equivalent of, such as F64 or I64.
 */
export function toCoreDType(dtype: SafetensorsDType, tensor?: string, file?: string): DType {
  const core = TO_CORE[dtype];
  if (core === undefined) {
    const supported = Object.keys(TO_CORE).join(', ');
    throw new SafetensorsError(`dtype ${dtype} has no core equivalent (supported: ${supported})`, {
      tensor,
      file,
    });
  }
  return core;
}

/** The safetensors dtype string for a core dtype. */
export function fromCoreDType(dtype: DType): SafetensorsDType {
  return FROM_CORE[dtype];
}
