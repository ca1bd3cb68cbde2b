/**
 * One read interface over both checkpoint formats (safetensors, single or sharded; Meta's `.pth`), so the
 * loader does not care which it got. Browser-safe: the sources over files are in `file-sources.ts`.
 * @module
 */
import type { ByteSource, DType, SafetensorsReader } from '@proj/core';
import { toCoreDType } from '@proj/core';
import { openPth } from './pth/index.js';

/** A set of named tensors whose bytes are read on demand. */
export interface TensorSource {
  /** Tensor names, in storage order. */
  names(): string[];
  /** Element type and shape of `name` (throws for unknown names or unsupported dtypes). */
  info(name: string): { dtype: DType; shape: readonly number[]; byteLength: number };
  /**
   * The raw little-endian bytes of `name`, or of the byte range `[offset, offset + length)` of it. `into`,
   * when large enough, may receive them instead of a new array (a loader reuses one): use what is returned.
   */
  read(name: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases the files. */
  close(): Promise<void>;
}

/**
 * A safetensors checkpoint (a `SafetensorsFile` over any byte source, or a sharded set) as a
 * {@link TensorSource}, for `loadLlamaFrom`.
 */
export function safetensorsSource(reader: SafetensorsReader): TensorSource {
  return {
    names: () => reader.names(),
    info: (name) => {
      const i = reader.info(name);
      return { dtype: toCoreDType(i.dtype, name), shape: i.shape, byteLength: i.byteLength };
    },
    read: (name, offset, length, into) => reader.read(name, offset, length, into),
    close: () => reader.close(),
  };
}

/**
 * Meta's `consolidated.00.pth` (a zip of a pickle and raw storages; the pickle is never executed) read from
 * any byte source, as a {@link TensorSource}; `name` is the file's name in errors. Tensors use Meta's names
 * (load with `format: 'meta'`).
 */
export async function pthSource(source: ByteSource, name: string): Promise<TensorSource> {
  const pth = await openPth(source, name);
  return {
    names: () => pth.names(),
    info: (tensor) => pth.info(tensor),
    read: (tensor, offset, length, into) => pth.read(tensor, offset, length, into),
    close: () => pth.close(),
  };
}
