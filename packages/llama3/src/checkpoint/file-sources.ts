/**
 * The checkpoint sources over files (Node only).
 * @module
 */
import { openCheckpoint, openFileSource } from '@proj/core/node';
import { pthSource, safetensorsSource, type TensorSource } from './source.js';

/** Opens a safetensors checkpoint: a directory (single file or sharded with an index) or a file. */
export async function openSafetensorsSource(path: string): Promise<TensorSource> {
  return safetensorsSource(await openCheckpoint(path));
}

/** Opens Meta's `consolidated.00.pth` (a zip of a pickle and raw storages; the pickle is never executed). */
export async function openPthSource(path: string): Promise<TensorSource> {
  const source = await openFileSource(path);
  try {
    return await pthSource(source, path);
  } catch (error) {
    await source.close?.();
    throw error;
  }
}
