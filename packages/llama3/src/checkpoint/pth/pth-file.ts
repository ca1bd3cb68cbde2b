/**
 * Meta's `.pth` checkpoints (`consolidated.00.pth`): a `torch.save` zip holding a pickled state dict and one
 * record per storage. The pickle is decoded with an allow-list (nothing is executed), every tensor's
 * layout is validated against its storage record, and tensor bytes are read on demand, one tensor at a time.
 * @module
 */
import type { ByteSource, DType } from '@proj/core';
import { PthError } from './errors.js';
import { unpickle } from './pickle.js';
import { describePickle, PickleDict, PickleTuple, type PickleValue } from './pickle-values.js';
import {
  isStorageRef,
  isTensorRef,
  type StorageRef,
  stateDictHooks,
  type TensorRef,
} from './torch-globals.js';
import { ZipArchive } from './zip.js';

/** Where a tensor of a `.pth` checkpoint lives and what it holds. */
export interface PthTensorInfo {
  /** The state-dict key (`layers.0.attention.wq.weight`). */
  readonly name: string;
  /** Element type. */
  readonly dtype: DType;
  /** Dims, outermost first. */
  readonly shape: readonly number[];
  /** Strides in elements (always the row-major strides of `shape`: only contiguous tensors are accepted). */
  readonly stride: readonly number[];
  /** Offset of the first element within the storage, in elements. */
  readonly storageOffset: number;
  /** Bytes of tensor data: product(shape) x element size. */
  readonly byteLength: number;
  /** The zip record holding the storage (`consolidated.00/data/3`). */
  readonly storageEntry: string;
}

interface TensorRecord {
  readonly name: string;
  readonly storage: StorageRef;
  readonly shape: readonly number[];
  readonly stride: readonly number[];
  readonly storageOffset: number;
  readonly numel: number;
  readonly entry: string;
}

/** A `.pth` checkpoint opened over a `ByteSource`. */
export class PthFile {
  /** The zip's top folder (torch names it after the file: `consolidated.00`). */
  readonly archivePrefix: string;
  /** The name used in messages (usually the path). */
  readonly file: string;
  readonly #zip: ZipArchive;
  readonly #tensors: ReadonlyMap<string, TensorRecord>;

  private constructor(zip: ZipArchive, prefix: string, file: string, tensors: Map<string, TensorRecord>) {
    this.#zip = zip;
    this.archivePrefix = prefix;
    this.file = file;
    this.#tensors = tensors;
  }

  /**
   * Opens the checkpoint in `source`: reads the zip directory and the pickle and validates every tensor.
   * `file` names it in error messages. Tensor data is not read. If opening fails, `source` is left open for
   * the caller to close; on success, `close()` closes it.
   */
  static async open(source: ByteSource, file = 'checkpoint.pth'): Promise<PthFile> {
    if (source.size >= 2) {
      const magic = await source.read(0, 2);
      if (magic[0] === 0x80) {
        throw new PthError(
          `${file}: legacy (pre-1.6) torch.save format is not supported; re-save it with torch >= 1.6`,
        );
      }
    }
    const zip = await ZipArchive.open(source, file);
    const pickles = zip.names().filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pickles.length !== 1) {
      throw new PthError(`${file}: expected one '<archive>/data.pkl' record, found ${pickles.length}`);
    }
    const prefix = pickles[0]!.slice(0, -'/data.pkl'.length);
    const byteorder = zip.entries.get(`${prefix}/byteorder`);
    if (byteorder !== undefined) {
      const order = new TextDecoder().decode(await zip.readEntry(byteorder.name));
      if (order !== 'little') throw new PthError(`${file}: byte order '${order}' is not supported`);
    }
    const pickle = await zip.readEntry(pickles[0]!);
    let root: PickleValue;
    try {
      root = unpickle(pickle, stateDictHooks());
    } catch (e) {
      if (e instanceof PthError) throw new PthError(`${file}: ${e.message}`, { cause: e });
      throw e;
    }
    return new PthFile(zip, prefix, file, collectTensors(root, file, prefix, zip));
  }

  /** Every tensor name, in the state dict's order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  /** True when the state dict has a tensor called `name`. */
  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Layout of tensor `name`; throws a `PthError` for unknown names and dtypes the core lacks. */
  info(name: string): PthTensorInfo {
    const t = this.#record(name);
    const { dtype, torchDType, name: storageName, itemSize } = t.storage.type;
    if (dtype === undefined) {
      throw new PthError(
        `${this.file}: tensor '${name}' is ${torchDType} (${storageName}), which the core does not support`,
      );
    }
    return {
      name,
      dtype,
      shape: t.shape,
      stride: t.stride,
      storageOffset: t.storageOffset,
      byteLength: t.numel * itemSize,
      storageEntry: t.entry,
    };
  }

  /**
   * The raw little-endian bytes of tensor `name` (row-major), read from its storage record now (into
   * `into` when it is large enough; use the returned array).
   */
  async read(name: string, offset = 0, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    const info = this.info(name);
    const itemSize = this.#record(name).storage.type.itemSize;
    const n = length ?? info.byteLength - offset;
    if (
      !(
        Number.isSafeInteger(offset) &&
        Number.isSafeInteger(n) &&
        offset >= 0 &&
        n >= 0 &&
        offset + n <= info.byteLength
      )
    ) {
      throw new PthError(
        `${this.file}: byte range [${offset}, ${offset + n}) is outside tensor '${name}' (${info.byteLength} bytes)`,
      );
    }
    return this.#zip.readRange(info.storageEntry, info.storageOffset * itemSize + offset, n, into);
  }

  /** Closes the underlying source. */
  async close(): Promise<void> {
    await this.#zip.close();
  }

  #record(name: string): TensorRecord {
    const t = this.#tensors.get(name);
    if (t === undefined) throw new PthError(`${this.file}: no tensor '${name}'`);
    return t;
  }
}

/** Opens a `.pth` checkpoint over `source` (see `PthFile.open`). */
export function openPth(source: ByteSource, file?: string): Promise<PthFile> {
  return PthFile.open(source, file);
}

function collectTensors(
  root: PickleValue,
  file: string,
  prefix: string,
  zip: ZipArchive,
): Map<string, TensorRecord> {
  if (!(root instanceof PickleDict))
    throw new PthError(`${file}: the pickle holds ${describePickle(root)}, not a state dict`);
  const tensors = new Map<string, TensorRecord>();
  for (const [key, value] of root.map) {
    if (typeof key !== 'string')
      throw new PthError(`${file}: state dict key ${describePickle(key)} is not a string`);
    if (!isTensorRef(value))
      throw new PthError(`${file}: '${key}' is ${describePickle(value)}, not a tensor`);
    tensors.set(key, checkTensor(key, value.value, file, prefix, zip));
  }
  return tensors;
}

/** Validates one tensor's description against its storage and the storage's zip record. */
function checkTensor(
  name: string,
  t: TensorRef,
  file: string,
  prefix: string,
  zip: ZipArchive,
): TensorRecord {
  const fail = (problem: string): never => {
    throw new PthError(`${file}: tensor '${name}': ${problem}`);
  };
  if (!isStorageRef(t.storage)) return fail(`storage is ${describePickle(t.storage)}`);
  const storage = t.storage.value;
  const shape = intTuple(t.size, 'size', fail);
  const stride = intTuple(t.stride, 'stride', fail);
  const offset = t.storageOffset;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) {
    return fail(`storage offset ${describePickle(offset)} is not a non-negative int`);
  }
  if (stride.length !== shape.length) fail(`stride has ${stride.length} dims but size has ${shape.length}`);
  let numel = 1;
  for (const d of shape) {
    numel *= d;
    if (!Number.isSafeInteger(numel)) fail(`size [${shape}] is too large`);
  }
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    // Strides of size-1 dims never matter (torch leaves them arbitrary), nor do any when there are no elements.
    if (numel > 0 && shape[i]! !== 1 && stride[i]! !== expected) {
      fail(
        `stride [${stride}] is not contiguous for size [${shape}] (non-contiguous tensors are not supported)`,
      );
    }
    expected *= shape[i]!;
  }
  if (offset + numel > storage.numel) {
    fail(
      `needs elements [${offset}, ${offset + numel}) of storage '${storage.key}', which has ${storage.numel}`,
    );
  }
  const entry = `${prefix}/data/${storage.key}`;
  const record = zip.entries.get(entry);
  if (record === undefined) return fail(`its storage record '${entry}' is missing`);
  const bytes = storage.numel * storage.type.itemSize;
  if (!Number.isSafeInteger(bytes) || record.size < bytes) {
    fail(
      `storage record '${entry}' has ${record.size} bytes, less than ${storage.numel} ${storage.type.torchDType} elements`,
    );
  }
  if (record.method !== 0)
    fail(`storage record '${entry}' is compressed (method ${record.method}); torch stores them uncompressed`);
  return { name, storage, shape, stride, storageOffset: offset, numel, entry };
}

function intTuple(value: PickleValue, what: string, fail: (problem: string) => never): number[] {
  if (!(value instanceof PickleTuple)) return fail(`${what} is ${describePickle(value)}, not a tuple`);
  return value.items.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0) {
      return fail(`${what} has ${describePickle(x)}, not a non-negative int`);
    }
    return x;
  });
}
