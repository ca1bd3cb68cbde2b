/**
 * Sharded safetensors checkpoints: a `model.safetensors.index.json` maps every tensor name to one shard file
 * in the same directory. The index is validated before any shard is opened (shard names must be plain file
 * names, so a hostile index cannot reach outside the checkpoint's directory), and the shards are checked
 * against it (every mapped tensor is where the index says, no tensor is in two shards).
 *
 * Browser-safe: shards are opened through a callback, so the same code serves files and HTTP ranges.
 * @module
 */
import { SafetensorsError } from './errors.js';
import type { TensorInfo } from './header.js';
import type { SafetensorsFile, SafetensorsReader } from './reader.js';

/** The conventional name of a single-file safetensors checkpoint. */
export const SAFETENSORS_FILE = 'model.safetensors';

/** The conventional name of a sharded checkpoint's index file. */
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';

/** Largest index JSON read (the index only lists names; real ones are well under 1 MB). */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** A validated `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  /** The index's `metadata`, each value as a string (HF writes `total_size` as a number). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensor name -> shard file name. */
  readonly weightMap: ReadonlyMap<string, string>;
  /** The distinct shard file names, sorted. */
  readonly shards: readonly string[];
}

/**
 * True when `name` is a plain file name: not empty, not `.` or `..`, and free of path separators, drive
 * colons and NUL, so joining it to a directory can only name a file inside that directory.
 */
export function isPlainFileName(name: string): boolean {
  return name.length > 0 && name !== '.' && name !== '..' && !/[/\\:\0]/.test(name);
}

/** Parses and validates index JSON (`text`, or an already parsed value). `file` names it in errors. */
export function parseSafetensorsIndex(text: string | unknown, file?: string): SafetensorsIndex {
  let json: unknown = text;
  if (typeof text === 'string') {
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new SafetensorsError(`index is not valid JSON (${(cause as Error).message})`, { file, cause });
    }
  }
  if (!isObject(json)) throw new SafetensorsError('index must be a JSON object', { file });
  const metadata = Object.create(null) as Record<string, string>;
  const rawMeta = json.metadata;
  if (rawMeta !== undefined && rawMeta !== null) {
    if (!isObject(rawMeta)) throw new SafetensorsError('index metadata must be an object', { file });
    for (const [key, value] of Object.entries(rawMeta)) {
      metadata[key] = typeof value === 'string' ? value : JSON.stringify(value);
    }
  }
  const rawMap = json.weight_map;
  if (!isObject(rawMap)) throw new SafetensorsError('index has no weight_map object', { file });
  const weightMap = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(rawMap)) {
    if (typeof shard !== 'string') {
      throw new SafetensorsError('weight_map value must be a shard file name string', { file, tensor });
    }
    if (!isPlainFileName(shard)) {
      throw new SafetensorsError(
        `shard '${shard}' is not a plain file name in the checkpoint's directory (no paths, no '..')`,
        { file, tensor },
      );
    }
    weightMap.set(tensor, shard);
  }
  if (weightMap.size === 0) throw new SafetensorsError('index weight_map is empty', { file });
  const shards = [...new Set(weightMap.values())].sort();
  return { metadata, weightMap, shards };
}

/** Several safetensors shards read as one checkpoint, as listed by an index. */
export class ShardedSafetensors implements SafetensorsReader {
  /** The index's metadata, values as strings. */
  readonly metadata: Readonly<Record<string, string>>;
  /** The open shards by file name, sorted by name. */
  readonly shards: ReadonlyMap<string, SafetensorsFile>;
  /** Tensor name -> the shard's file name, in `names()` order. */
  readonly #owner = new Map<string, string>();

  private constructor(index: SafetensorsIndex, shards: Map<string, SafetensorsFile>) {
    this.metadata = index.metadata;
    this.shards = shards;
    for (const [shardName, shard] of shards)
      for (const name of shard.names()) this.#owner.set(name, shardName);
  }

  /**
   * Opens every shard named by `index` with `openShard` and checks them against it. On failure, shards
   * already opened are closed. `file` names the index in error messages.
   */
  static async open(
    index: SafetensorsIndex,
    openShard: (fileName: string) => Promise<SafetensorsFile>,
    file?: string,
  ): Promise<ShardedSafetensors> {
    const shards = new Map<string, SafetensorsFile>();
    try {
      const seenIn = new Map<string, string>();
      for (const shardName of index.shards) {
        const shard = await openShard(shardName);
        shards.set(shardName, shard);
        for (const tensor of shard.names()) {
          const other = seenIn.get(tensor);
          if (other !== undefined) {
            throw new SafetensorsError(`is in two shards, '${other}' and '${shardName}'`, { file, tensor });
          }
          seenIn.set(tensor, shardName);
          if (!index.weightMap.has(tensor)) {
            throw new SafetensorsError(`is in shard '${shardName}' but not in the index's weight_map`, {
              file,
              tensor,
            });
          }
        }
      }
      for (const [tensor, shardName] of index.weightMap) {
        const actual = seenIn.get(tensor);
        if (actual !== shardName) {
          const where = actual === undefined ? 'in no shard' : `in '${actual}'`;
          throw new SafetensorsError(`the index maps it to '${shardName}' but it is ${where}`, {
            file,
            tensor,
          });
        }
      }
    } catch (e) {
      await Promise.allSettled([...shards.values()].map((s) => s.close()));
      throw e;
    }
    return new ShardedSafetensors(index, shards);
  }

  /** Every tensor name: shards in file-name order, each in storage order. */
  names(): string[] {
    return [...this.#owner.keys()];
  }

  /** True when some shard has a tensor called `name`. */
  has(name: string): boolean {
    return this.#owner.has(name);
  }

  /** Where tensor `name` is (offsets within its shard) and what it holds. */
  info(name: string): TensorInfo {
    return this.#shardOf(name).info(name);
  }

  /** The shard file name holding tensor `name`. */
  shardOf(name: string): string {
    const shardName = this.#owner.get(name);
    if (shardName === undefined) {
      throw new SafetensorsError(`no such tensor in ${this.shards.size} shards`, { tensor: name });
    }
    return shardName;
  }

  /** The raw bytes of tensor `name`, read from its shard now (into `into` when it fits, as `read` says). */
  read(name: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    return this.#shardOf(name).read(name, offset, length, into);
  }

  /** Closes every shard. */
  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((s) => s.close()));
  }

  #shardOf(name: string): SafetensorsFile {
    return this.shards.get(this.shardOf(name))!;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
