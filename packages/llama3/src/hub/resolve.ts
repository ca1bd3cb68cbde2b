/**
 * `--model <dir or hub id>`: a local checkpoint folder is used as it is; a hub id (`owner/name[@revision]`)
 * is downloaded into the shared Hugging Face cache (only the files a Llama checkpoint needs) and its
 * snapshot folder is returned. `@huggingface/hub` resolves the revision and lists the files; the bytes are
 * fetched by `download.ts`.
 * @module
 */
import { statSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { HUB_URL, HubApiError, type ListFileEntry, listFiles, modelInfo } from '@huggingface/hub';
import {
  blobPath,
  COMMIT_HASH,
  cachedSnapshot,
  hubCacheDir,
  linkSnapshotFile,
  repoCacheDir,
  shardsOfIndex,
  sizeOf,
  writeRef,
} from './cache.js';
import { downloadBlob, isNetworkError } from './download.js';

/** Progress of a model download, reported per file. */
export interface DownloadProgress {
  /** The file's path in the repo. */
  file: string;
  /** Bytes of this file on disk so far. */
  loadedBytes: number;
  /** The file's size. */
  totalBytes: number;
  /** Which file this is (0-based), of `fileCount`. */
  fileIndex: number;
  /** How many files the checkpoint has (files already cached included: they report once, complete). */
  fileCount: number;
}

/** Options of {@link resolveModel}. Each defaults to the environment variable the Python tools read. */
export interface ResolveModelOptions {
  /** The cache root (default `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`). */
  cacheDir?: string;
  /** The hub (default `$HF_ENDPOINT`, else https://huggingface.co). */
  hubUrl?: string;
  /** A token for gated and private repos (default `$HF_TOKEN`). Meta's Llama repos are gated. */
  accessToken?: string;
  /** The branch, tag or commit when the id has no `@revision` (default `main`). */
  revision?: string;
  /** Use only the cache, never the network (default: true when `$HF_HUB_OFFLINE` is `1` or `true`). */
  offline?: boolean;
  /** Called as files download; see `createProgressBar` for a ready-made renderer. */
  onProgress?: (progress: DownloadProgress) => void;
}

/** A parsed hub id. */
export interface HubId {
  /** `owner/name`. */
  repo: string;
  /** The part after `@`, if any. */
  revision?: string;
}

/** The files every checkpoint may have beside its weights, wanted when present. */
const OPTIONAL_FILES = ['generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];

/**
 * Reads `owner/name` or `owner/name@revision`, or returns undefined for anything else. Names follow the
 * hub's rules (letters, digits, `-`, `_`, `.`; not starting with `.` or `-`; no `--` or `..`), so paths
 * such as `./model` or `../x/y` are never taken for ids.
 * @example
 * ```ts
 * import { parseHubId } from '@proj/llama3';
 * console.log(parseHubId('meta-llama/Llama-3.2-1B@main')); // { repo: 'meta-llama/Llama-3.2-1B', revision: 'main' }
 * console.log(parseHubId('./Llama-3.2-1B')); // undefined
 * ```
 */
export function parseHubId(text: string): HubId | undefined {
  const match = /^([A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*)(?:@([^\s@]+))?$/.exec(text);
  if (!match || /--|\.\./.test(match[1]!)) return undefined;
  return match[2] === undefined ? { repo: match[1]! } : { repo: match[1]!, revision: match[2] };
}

/** The repo files that make up the checkpoint, given the repo's file list. */
function checkpointFiles(
  repo: string,
  files: Map<string, ListFileEntry>,
  shards: string[] | undefined,
): string[] {
  const optional = OPTIONAL_FILES.filter((f) => files.has(f));
  // HF safetensors first; Meta's `original/*.pth` copy only when the repo has nothing else.
  if (files.has('model.safetensors')) return ['config.json', ...optional, 'model.safetensors'];
  if (shards !== undefined) return ['config.json', ...optional, 'model.safetensors.index.json', ...shards];
  if (files.has('original/params.json') && files.has('original/consolidated.00.pth')) {
    const extras = ['config.json', ...optional, 'original/tokenizer.model'].filter((f) => files.has(f));
    return [...extras, 'original/params.json', 'original/consolidated.00.pth'];
  }
  const listed = [...files.keys()].slice(0, 20).join(', ');
  throw new Error(
    `${repo} has no Llama checkpoint: expected model.safetensors, model.safetensors.index.json or ` +
      `original/params.json with original/consolidated.00.pth; it has ${listed || 'no files'}`,
  );
}

/** Turns the hub's refusals into advice; other errors pass through. */
function explain(
  err: unknown,
  repo: string,
  hubUrl: string,
  token: string | undefined,
  input: string,
): unknown {
  if (!(err instanceof HubApiError)) return err;
  const notDir = `(${input} is not a local directory, so it was taken as a hub id)`;
  if (err.statusCode === 401 || err.statusCode === 403) {
    const sent = token
      ? 'The token that was sent has no access to it (yet).'
      : `No token was sent: make one at ${hubUrl}/settings/tokens.`;
    return new Error(
      `${repo}: the hub refused access (HTTP ${err.statusCode}). Meta's Llama repos are gated: accept the ` +
        `license on ${hubUrl}/${repo} and set HF_TOKEN to a token of that account. ${sent} ` +
        `The hub also answers 401 for repos that do not exist ${notDir}.`,
      { cause: err },
    );
  }
  if (err.statusCode === 404) {
    return new Error(`${repo}: not found on ${hubUrl} (check the id and revision) ${notDir}`, { cause: err });
  }
  return err;
}

/**
 * Downloads what a Llama checkpoint needs from hub repo `repo` at `revision` into the cache (files already
 * there are not fetched again) and returns the snapshot folder.
 */
async function download(
  repo: string,
  revision: string,
  hubUrl: string,
  repoDir: string,
  token: string | undefined,
  onProgress: ((progress: DownloadProgress) => void) | undefined,
): Promise<string> {
  const credentials = token === undefined ? {} : { accessToken: token };
  const commit = COMMIT_HASH.test(revision)
    ? revision
    : (await modelInfo({ name: repo, revision, hubUrl, additionalFields: ['sha'], ...credentials })).sha;
  const files = new Map<string, ListFileEntry>();
  for await (const entry of listFiles({ repo, revision: commit, recursive: true, hubUrl, ...credentials })) {
    if (entry.type === 'file') files.set(entry.path, entry);
  }
  const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
  const snapshot = join(repoDir, 'snapshots', commit);

  /** Makes `path` present and complete in the snapshot, downloading it unless its blob is cached. */
  const fetchFile = async (path: string, report?: (loaded: number, total: number) => void): Promise<void> => {
    const entry = files.get(path);
    if (entry === undefined) throw new Error(`${repo}@${commit} has no file ${path}`);
    const size = entry.lfs?.size ?? entry.size;
    const etag = entry.lfs?.oid ?? entry.oid ?? entry.xetHash;
    if (etag === undefined) throw new Error(`${repo}: the hub listed ${path} without an id`);
    const blob = blobPath(repoDir, etag);
    const cached = await sizeOf(blob);
    if (cached !== size) {
      if (cached !== undefined) await rm(blob); // a blob of the wrong size is damaged: fetch it again
      const url = `${hubUrl}/${repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
      const onBytes = report && ((loaded: number) => report(loaded, size));
      await downloadBlob({ name: path, url, blob, size, headers, onBytes });
    } else {
      report?.(size, size);
    }
    await linkSnapshotFile(repoDir, commit, path, blob);
  };

  // A sharded checkpoint's file list is in its index, so the index comes first.
  const index = 'model.safetensors.index.json';
  let shards: string[] | undefined;
  if (!files.has('model.safetensors') && files.has(index)) {
    await fetchFile(index);
    shards = shardsOfIndex(await readFile(join(snapshot, index), 'utf8'), `${repo}/${index}`);
  }
  const wanted = checkpointFiles(repo, files, shards);
  for (const [fileIndex, file] of wanted.entries()) {
    const fileCount = wanted.length;
    await fetchFile(file, (loadedBytes, totalBytes) =>
      onProgress?.({ file, loadedBytes, totalBytes, fileIndex, fileCount }),
    );
  }
  await writeRef(repoDir, revision, commit);
  return snapshot;
}

/**
 * The checkpoint folder for `--model`: `idOrPath` itself when it is a directory; for a hub id
 * (`owner/name[@revision]`) the snapshot folder in the Hugging Face cache, after downloading `config.json`,
 * `generation_config.json`, the safetensors weights (single or sharded) and the tokenizer files that are
 * missing or incomplete there. Without network (or offline) a complete cached snapshot is used.
 * @example
 * ```ts
 * // doc-example: no-run (downloads a model; Meta's repos also need HF_TOKEN)
 * import { createProgressBar, resolveModel } from '@proj/llama3';
 * const dir = await resolveModel('meta-llama/Llama-3.2-1B', { onProgress: createProgressBar() });
 * console.log(dir); // e.g. ~/.cache/huggingface/hub/models--meta-llama--Llama-3.2-1B/snapshots/<commit>
 * ```
 */
export async function resolveModel(idOrPath: string, options: ResolveModelOptions = {}): Promise<string> {
  const stats = statSync(idOrPath, { throwIfNoEntry: false });
  if (stats?.isDirectory()) return idOrPath;
  const id = parseHubId(idOrPath);
  if (id === undefined) {
    const what = stats ? 'a file, not a directory' : 'not a directory';
    throw new Error(`--model ${idOrPath}: ${what} and not a hub id (owner/name or owner/name@revision)`);
  }
  const env = process.env;
  const revision = id.revision ?? options.revision ?? 'main';
  const hubUrl = (options.hubUrl ?? env.HF_ENDPOINT ?? HUB_URL).replace(/\/+$/, '');
  const token = options.accessToken ?? (env.HF_TOKEN || undefined);
  const offline = options.offline ?? ['1', 'true', 'yes'].includes((env.HF_HUB_OFFLINE ?? '').toLowerCase());
  const repoDir = repoCacheDir(options.cacheDir ?? hubCacheDir(), id.repo);
  if (offline) {
    const dir = await cachedSnapshot(repoDir, revision);
    if (dir === undefined) throw new Error(`${id.repo}@${revision}: offline, and not complete in ${repoDir}`);
    return dir;
  }
  try {
    return await download(id.repo, revision, hubUrl, repoDir, token, options.onProgress);
  } catch (err) {
    // No network: a complete cached snapshot will do, as in Python.
    if (isNetworkError(err)) {
      const dir = await cachedSnapshot(repoDir, revision);
      if (dir !== undefined) return dir;
      const why = (err as Error).message;
      throw new Error(
        `${id.repo}: the connection to ${hubUrl} failed (${why}) and the cache has no complete copy`,
        {
          cause: err,
        },
      );
    }
    throw explain(err, id.repo, hubUrl, token, idOrPath);
  }
}
