/**
 * Safetensors checkpoints on a web server: the HTTP counterpart of `openCheckpoint` (`@proj/core/node`),
 * for browsers. Every tensor is read by Range requests when it is asked for.
 * @module
 */
import { type HttpSourceOptions, openHttpSource, readBody } from '../io/http-source.js';
import { SafetensorsError } from './errors.js';
import { SafetensorsFile, type SafetensorsReader } from './reader.js';
import {
  MAX_INDEX_BYTES,
  parseSafetensorsIndex,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  ShardedSafetensors,
} from './sharded.js';

/**
 * Opens the safetensors checkpoint of the model directory at `baseUrl`, laid out as a Hugging Face repo:
 * `model.safetensors.index.json` and its shards where the index exists, else `model.safetensors`. The
 * index is fetched whole (at most 64 MiB) and validated before any shard is opened; shards and tensors are
 * then read by Range requests ({@link openHttpSource}). Close the result when done.
 *
 * @example
 * ```ts
 * // doc-example: no-run (needs a server)
 * import { openHttpCheckpoint } from '@proj/core';
 * const weights = await openHttpCheckpoint('https://example.org/Llama-3.2-3B/');
 * console.log(weights.names().length);
 * ```
 */
export async function openHttpCheckpoint(
  baseUrl: string | URL,
  options: HttpSourceOptions = {},
): Promise<SafetensorsReader> {
  const base = String(baseUrl).replace(/\/?$/, '/');
  const openFile = async (name: string) => {
    const url = new URL(name, base).href;
    return SafetensorsFile.open(await openHttpSource(url, options), url);
  };
  const indexUrl = new URL(SAFETENSORS_INDEX_FILE, base).href;
  const response = await (options.fetch ?? globalThis.fetch)(indexUrl, { headers: { ...options.headers } });
  if (response.status === 404) {
    await response.body?.cancel();
    return openFile(SAFETENSORS_FILE);
  }
  if (!response.ok) throw new Error(`${indexUrl}: HTTP ${response.status} ${response.statusText}`);
  // Read with a cap, whatever the server declares (a chunked response declares no length).
  const text = await readBody(response, MAX_INDEX_BYTES, 'index').catch((error: Error) => {
    throw new SafetensorsError(error.message, { file: indexUrl, cause: error });
  });
  const index = parseSafetensorsIndex(new TextDecoder().decode(text), indexUrl);
  return ShardedSafetensors.open(index, openFile, indexUrl);
}
