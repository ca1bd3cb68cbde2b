/**
 * The Hugging Face cache layout, shared with the Python tools (`huggingface_hub`, transformers):
 *
 *     <cache>/models--owner--name/
 *       blobs/<etag>                  file contents, named by the hub's ETag (sha256 for LFS files)
 *       blobs/<etag>.incomplete       a download in progress (Python resumes these too)
 *       snapshots/<commit>/<path>     relative symlinks into blobs/, one folder per commit
 *       refs/<revision>               the commit a branch or tag pointed to when last resolved
 *
 * The cache folder and repo folder names come from `@huggingface/hub`; the rest is written here because the
 * library's downloader has no resume, size check or progress (see `download.ts`).
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';

/** A full commit id, as opposed to a branch or tag name. */
export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** The cache root: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub` (as Python). */
export function hubCacheDir(): string {
  return getHFHubCachePath();
}

/** The folder of model repo `repo` (`owner/name`) in cache `cacheDir`: `models--owner--name`. */
export function repoCacheDir(cacheDir: string, repo: string): string {
  return join(cacheDir, getRepoFolderName({ name: repo, type: 'model' }));
}

/** Size of the file at `path` (following symlinks), or undefined when there is none. */
export async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** Path of the blob with this ETag; ETags come from the hub, so they are checked before use as a name. */
export function blobPath(repoDir: string, etag: string): string {
  if (!/^[\w-]+$/.test(etag)) throw new Error(`unexpected ETag from the hub: ${JSON.stringify(etag)}`);
  return join(repoDir, 'blobs', etag);
}

/**
 * Points `snapshots/<commit>/<path>` at a blob with a relative symlink (the cache stays valid when moved),
 * or copies the blob where symlinks are not allowed (Windows without developer mode), as Python does.
 */
export async function linkSnapshotFile(
  repoDir: string,
  commit: string,
  path: string,
  blob: string,
): Promise<string> {
  const pointer = join(repoDir, 'snapshots', commit, path);
  await mkdir(dirname(pointer), { recursive: true });
  try {
    await lstat(pointer);
    await rm(pointer); // a stale or dangling link; replaced below
  } catch {
    // none yet
  }
  try {
    await symlink(relative(dirname(pointer), blob), pointer);
  } catch {
    await copyFile(blob, pointer);
  }
  return pointer;
}

/** The commit `refs/<revision>` names, or undefined. */
export async function readRef(repoDir: string, revision: string): Promise<string | undefined> {
  try {
    const commit = (await readFile(join(repoDir, 'refs', revision), 'utf8')).trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Records that `revision` (a branch or tag; refs are not written for commits) resolved to `commit`. */
export async function writeRef(repoDir: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = join(repoDir, 'refs', revision);
  await mkdir(dirname(ref), { recursive: true });
  await writeFile(ref, commit);
}

/** The shard files a `model.safetensors.index.json` names, each once, in order. */
export function shardsOfIndex(indexJson: string, indexPath: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(indexJson) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    throw new Error(`${indexPath}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof weightMap !== 'object' || weightMap === null) throw new Error(`${indexPath}: no weight_map`);
  const shards = [...new Set(Object.values(weightMap as Record<string, unknown>))];
  for (const shard of shards) {
    // The names are joined onto the snapshot folder: nothing may climb out of it.
    if (typeof shard !== 'string' || shard.startsWith('/') || shard.split('/').includes('..')) {
      throw new Error(`${indexPath}: bad shard name ${JSON.stringify(shard)}`);
    }
  }
  return (shards as string[]).sort();
}

/**
 * Whether snapshot folder `dir` holds a checkpoint we can load: `config.json` with `model.safetensors` or an
 * index and all its shards, or Meta's `original/params.json` with `consolidated.00.pth`. Used offline,
 * where there is no file list from the hub to compare with.
 */
export function hasCheckpoint(dir: string): boolean {
  const has = (path: string) => existsSync(join(dir, path)); // follows the links: a dangling one is missing
  if (has('original/params.json') && has('original/consolidated.00.pth')) return true;
  if (!has('config.json')) return false;
  if (has('model.safetensors')) return true;
  const index = 'model.safetensors.index.json';
  if (!has(index)) return false;
  try {
    return shardsOfIndex(readFileSync(join(dir, index), 'utf8'), index).every(has);
  } catch {
    return false;
  }
}

/** The cached snapshot folder of `revision` when it holds a loadable checkpoint, else undefined. */
export async function cachedSnapshot(repoDir: string, revision: string): Promise<string | undefined> {
  const commit = COMMIT_HASH.test(revision) ? revision : await readRef(repoDir, revision);
  if (commit === undefined) return undefined;
  const dir = join(repoDir, 'snapshots', commit);
  return hasCheckpoint(dir) ? dir : undefined;
}
