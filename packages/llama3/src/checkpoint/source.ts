/**
 * One read interface over both checkpoint formats (safetensors, single or sharded; Meta's `.pth`), so the
 * loader does not care which it got.
 * @module
 */
import { type DType, type SafetensorsReader, toCoreDType } from '@proj/core';
import { openCheckpoint, openFileSource } from '@proj/core/node';
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

function fromSafetensors(reader: SafetensorsReader): TensorSource {
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

/** Opens a safetensors checkpoint: a directory (single file or sharded with an index) or a file. */
export async function openSafetensorsSource(path: string): Promise<TensorSource> {
  return fromSafetensors(await openCheckpoint(path));
}

/** Opens Meta's `consolidated.00.pth` (a zip of a pickle and raw storages; the pickle is never executed). */
export async function openPthSource(path: string): Promise<TensorSource> {
  const source = await openFileSource(path);
  try {
    const pth = await openPth(source, path);
    return {
      names: () => pth.names(),
      info: (name) => pth.info(name),
      read: (name, offset, length, into) => pth.read(name, offset, length, into),
      close: () => pth.close(),
    };
  } catch (error) {
    await source.close?.();
    throw error;
  }
}
