/**
 * A `ByteSource` over HTTP Range requests, so that a checkpoint on a web server is read a piece at a time,
 * in a browser as in Node (both have `fetch`): a 2.5 GB model never has to fit in one `ArrayBuffer`.
 * @module
 */
import { type ByteSource, checkByteRange, readTarget } from './byte-source.js';

/** Options of {@link openHttpSource}. */
export interface HttpSourceOptions {
  /** Headers sent with every request (an `Authorization` header for a private file, say). */
  headers?: Record<string, string>;
  /** The `fetch` to use (default: the global one). */
  fetch?: typeof fetch;
}

/**
 * The body of `response`, at most `max` bytes, read as it streams in: written into `into` where given (no
 * copy through a buffer of its own), else returned whole. A body longer than `max` is cancelled and is an
 * error naming `where`, so a server cannot make the reader hold more than it asked for.
 * @internal
 */
export async function readBody(
  response: Response,
  max: number,
  where: string,
  into?: Uint8Array,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = response.body?.getReader();
  for (let r = await reader?.read(); r && !r.done; r = await reader!.read()) {
    if (total + r.value.byteLength > max) {
      await reader!.cancel();
      throw new Error(`${where}: the response runs past ${max} bytes`);
    }
    if (into) into.set(r.value, total);
    else parts.push(r.value);
    total += r.value.byteLength;
  }
  if (into) return into.subarray(0, total);
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** `start`, `end` and `total` of a `Content-Range: bytes start-end/total` header. */
function parseContentRange(header: string | null): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header?.trim() ?? '');
  return m ? { start: Number(m[1]), end: Number(m[2]), total: Number(m[3]) } : undefined;
}

/**
 * Opens `url` for reading as a `ByteSource`. The size comes from a first one-byte Range request, so the
 * server must answer Range requests (206 Partial Content, as static file servers and the Hugging Face hub
 * do); one that sends the whole file instead is refused with an error saying so, rather than downloading
 * it. Every read is one request for exactly its bytes; a response of another status, another range or
 * another length is an error naming the URL and the range.
 *
 * @example
 * ```ts
 * // doc-example: no-run (needs a server)
 * import { openHttpSource, SafetensorsFile } from '@proj/core';
 * const file = await SafetensorsFile.open(await openHttpSource('https://example.org/model.safetensors'));
 * console.log(file.names());
 * ```
 */
export async function openHttpSource(
  url: string | URL,
  options: HttpSourceOptions = {},
): Promise<ByteSource> {
  const get = options.fetch ?? globalThis.fetch;
  const where = String(url);
  const request = async (start: number, end: number): Promise<Response> => {
    const response = await get(url, {
      headers: { ...options.headers, Range: `bytes=${start}-${end}` },
    }).catch((error: Error) => {
      throw new Error(`${where}: request for bytes ${start}-${end} failed: ${error.message}`, {
        cause: error,
      });
    });
    if (response.status !== 206) {
      await response.body?.cancel();
      const why =
        response.status === 200
          ? 'the server sent the whole file: it does not answer Range requests'
          : `HTTP ${response.status} ${response.statusText}`;
      throw new Error(`${where}: bytes ${start}-${end}: ${why}`);
    }
    return response;
  };

  const first = await request(0, 0);
  await first.body?.cancel();
  const range = parseContentRange(first.headers.get('content-range'));
  if (!range) {
    throw new Error(`${where}: the Content-Range of a 206 response is missing or not "bytes a-b/size"`);
  }
  const size = range.total;

  return {
    size,
    async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
      checkByteRange(size, offset, length);
      const out = readTarget(length, into);
      if (length === 0) return out;
      const end = offset + length - 1;
      const response = await request(offset, end);
      const sent = parseContentRange(response.headers.get('content-range'));
      if (sent?.start !== offset || sent.end !== end) {
        await response.body?.cancel();
        throw new Error(
          `${where}: asked for bytes ${offset}-${end}, the server sent ${sent ? `${sent.start}-${sent.end}` : 'another range'}`,
        );
      }
      const got = await readBody(response, length, `${where}: bytes ${offset}-${end}`, out);
      if (got.byteLength !== length) {
        throw new Error(`${where}: bytes ${offset}-${end}: got ${got.byteLength} bytes, expected ${length}`);
      }
      return out;
    },
  };
}
