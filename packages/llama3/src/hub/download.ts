/**
 * Downloading one file into the cache with HTTP Range requests, written here because `@huggingface/hub`'s
 * `downloadFileToCacheDir` truncates `blobs/<etag>.incomplete` and starts over on every try, checks no
 * size, and reports no progress. This one appends to the `.incomplete` file (so an interrupted download,
 * even one left by another process or by Python, goes on from where it stopped), retries dropped
 * connections, checks the size the hub reported, and only then renames the file to its blob name: a blob
 * without the suffix is always complete.
 * @module
 */
import { mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { HubApiError } from '@huggingface/hub';
import { sizeOf } from './cache.js';

/** What {@link downloadBlob} needs to know about one file. */
export interface BlobDownload {
  /** The file's name in the repo, for messages. */
  name: string;
  /** Where to get it: `<hub>/<repo>/resolve/<commit>/<path>` (the hub may redirect to a CDN). */
  url: string;
  /** The blob to create; the download goes to `<blob>.incomplete` first. */
  blob: string;
  /** The size the hub reported: the download must end with exactly this many bytes. */
  size: number;
  /** Extra request headers (`Authorization`). */
  headers?: Record<string, string>;
  /** Called with the bytes on disk after each chunk (and once at the start, where a resume begins). */
  onBytes?: (loadedBytes: number) => void;
  /** Tries before a dropped connection is an error (default 5). */
  attempts?: number;
  /** Wait before try `n + 1` is `n` times this (default 250 ms). */
  retryDelayMs?: number;
}

/** Whether `err` is fetch failing to connect (`fetch failed`) or losing the connection mid-body (`terminated`). */
export function isNetworkError(err: unknown): boolean {
  return err instanceof TypeError && (err.message === 'fetch failed' || err.message === 'terminated');
}

/** Errors worth another try: network errors and the hub's 5xx and 429 answers. */
function isTransient(err: unknown): boolean {
  if (err instanceof HubApiError) return err.statusCode >= 500 || err.statusCode === 429;
  return isNetworkError(err);
}

/**
 * One request for the bytes from `offset` on, appended to `partial`. Returns how many bytes were written,
 * or 0 when the server has none past `offset` (416): a file shorter than reported, caught by the caller.
 */
async function fetchFrom(job: BlobDownload, partial: string, offset: number): Promise<number> {
  const headers: Record<string, string> = {
    ...job.headers,
    // Ranges count bytes of the encoded body: ask for the plain bytes so they count the file's.
    'Accept-Encoding': 'identity',
  };
  if (offset > 0) headers.Range = `bytes=${offset}-`;
  const res = await fetch(job.url, { headers, redirect: 'follow' });
  if (res.status === 416) {
    await res.body?.cancel();
    return 0;
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel();
    const message = `${job.name}: HTTP ${res.status} from ${job.url}`;
    throw new HubApiError(job.url, res.status, res.headers.get('x-request-id') ?? undefined, message);
  }
  // 206 continues the partial file; anything else (200: the server ignored the range) is the whole file.
  let start = 0;
  if (res.status === 206) {
    const range = /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '');
    start = Number(range?.[1] ?? Number.NaN);
    if (start !== offset) {
      await res.body.cancel();
      throw new Error(`${job.name}: asked for bytes from ${offset}, got ${res.headers.get('content-range')}`);
    }
  }
  const file = await open(partial, start === 0 ? 'w' : 'a');
  let loaded = start;
  try {
    job.onBytes?.(loaded);
    for await (const chunk of res.body) {
      await file.write(chunk);
      loaded += chunk.byteLength;
      job.onBytes?.(loaded);
    }
  } finally {
    await file.close();
  }
  return loaded - start;
}

/**
 * Downloads `job.url` into `job.blob`, resuming any `.incomplete` file already there. After at most
 * `attempts` tries the file must have `job.size` bytes: otherwise it is removed and the error names the
 * file and both sizes. A dropped connection on the last try leaves the `.incomplete` file for a later run.
 */
export async function downloadBlob(job: BlobDownload): Promise<void> {
  const partial = `${job.blob}.incomplete`;
  const attempts = job.attempts ?? 5;
  await mkdir(dirname(job.blob), { recursive: true });
  if (job.size === 0) {
    await writeFile(partial, ''); // nothing to fetch, but the blob must exist
    job.onBytes?.(0);
  }
  for (let attempt = 1; attempt <= attempts; attempt++) {
    let offset = (await sizeOf(partial)) ?? 0;
    if (offset > job.size) {
      await rm(partial); // longer than the file can be: not a prefix of it
      offset = 0;
    }
    if (offset === job.size) break;
    try {
      // A clean end short of the size may be a proxy cutting the body: try again from there, and stop
      // when the server has nothing more to give.
      if ((await fetchFrom(job, partial, offset)) === 0) break;
    } catch (err) {
      if (!isTransient(err) || attempt === attempts) throw err;
      await sleep(attempt * (job.retryDelayMs ?? 250));
    }
  }
  const got = (await sizeOf(partial)) ?? 0;
  if (got !== job.size) {
    await rm(partial, { force: true });
    throw new Error(
      `${job.name}: downloaded ${got} bytes but the hub reported ${job.size}; the file was removed, run again to retry`,
    );
  }
  await rename(partial, job.blob);
}
