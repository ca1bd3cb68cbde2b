/**
 * Safetensors on the local file system (Node only): open a file, open a checkpoint directory (single file or
 * sharded), and write a file by streaming each tensor to disk rather than assembling it in memory.
 * @module
 */
import { type FileHandle, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { openFileSource } from '../io/file-source.js';
import { SafetensorsError } from './errors.js';
import { SafetensorsFile, type SafetensorsReader } from './reader.js';
import {
  MAX_INDEX_BYTES,
  parseSafetensorsIndex,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  ShardedSafetensors,
} from './sharded.js';
import { planSafetensors, type SafetensorsEntry } from './writer.js';

/** Opens the safetensors file at `path`, validating its header. Close it when done. */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const source = await openFileSource(path);
  try {
    return await SafetensorsFile.open(source, path);
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

/**
 * Opens a safetensors checkpoint. `path` may be a directory (holding `model.safetensors`, or else
 * `model.safetensors.index.json` and its shards), an index file (`*.index.json`), or a single
 * `.safetensors` file. Close the result when done.
 */
export async function openCheckpoint(path: string): Promise<SafetensorsReader> {
  const stats = await stat(path);
  if (!stats.isDirectory()) {
    return path.endsWith('.index.json') ? openShardedFile(path) : openSafetensors(path);
  }
  const single = join(path, SAFETENSORS_FILE);
  if (await isFile(single)) return openSafetensors(single);
  const index = join(path, SAFETENSORS_INDEX_FILE);
  if (await isFile(index)) return openShardedFile(index);
  throw new SafetensorsError(`no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE} in this directory`, {
    file: path,
  });
}

async function openShardedFile(indexPath: string): Promise<ShardedSafetensors> {
  const { size } = await stat(indexPath);
  if (size > MAX_INDEX_BYTES) {
    throw new SafetensorsError(`index is ${size} bytes, over the ${MAX_INDEX_BYTES}-byte limit`, {
      file: indexPath,
    });
  }
  const index = parseSafetensorsIndex(await readFile(indexPath, 'utf8'), indexPath);
  const dir = dirname(indexPath);
  return ShardedSafetensors.open(index, (shard) => openSafetensors(join(dir, shard)), indexPath);
}

/**
 * Writes `entries` (and optional string `metadata`) as a safetensors file at `path`, streaming one tensor at
 * a time. The bytes equal `serializeSafetensors(entries, metadata)`. The data goes to a temporary file in the
 * same directory that is renamed over `path` at the end, so a failed write never leaves a partial file.
 */
export async function writeSafetensorsFile(
  path: string,
  entries: readonly SafetensorsEntry[],
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const layout = planSafetensors(entries, metadata, path);
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${Date.now()}.partial`);
  const handle = await open(temp, 'wx');
  try {
    let position = 0;
    position = await writeAll(handle, layout.header, position);
    for (const entry of layout.entries) position = await writeAll(handle, entry.data, position);
    await handle.close();
    await rename(temp, path);
  } catch (e) {
    await handle.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw e;
  }
}

/** Writes all of `bytes` at `position` (a write may be partial) and returns the position after them. */
async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<number> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, position + done);
    done += bytesWritten;
  }
  return position + done;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}
