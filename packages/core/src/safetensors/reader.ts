/**
 * Reading safetensors files: the header is parsed and validated once at open time, tensor bytes are read
 * on demand through a `ByteSource`, one tensor at a time, so a multi-GB checkpoint is never in memory at once.
 * @module
 */
import type { ByteSource } from '../io/byte-source.js';
import { SafetensorsError } from './errors.js';
import { parseSafetensorsHeader, readSafetensorsHeaderLength, type TensorInfo } from './header.js';

/**
 * Read access to a set of named tensors: one safetensors file, or a sharded checkpoint that spans several.
 * Loaders program against this so they do not care which one they got.
 */
export interface SafetensorsReader {
  /** String metadata (a file's `__metadata__`; for a sharded checkpoint, the index's `metadata`). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor name, in storage order. */
  names(): string[];
  /** True when a tensor called `name` exists. */
  has(name: string): boolean;
  /** Where tensor `name` is and what it holds; throws a `SafetensorsError` for an unknown name. */
  info(name: string): TensorInfo;
  /**
   * The raw little-endian bytes of tensor `name`, read now from the underlying source; `offset` and
   * `length` select a byte range of the tensor (so a large tensor can be streamed in chunks). `into` may
   * receive the bytes instead of a new array (see `ByteSource.read`): use the returned array.
   */
  read(name: string, offset?: number, length?: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases the underlying sources; reads afterwards fail. */
  close(): Promise<void>;
}

/** One safetensors file, opened over a `ByteSource`. */
export class SafetensorsFile implements SafetensorsReader {
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor by name, in the order their data appears in the file. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The name used in error messages (usually the path), when one was given. */
  readonly file: string | undefined;
  readonly #source: ByteSource;

  private constructor(
    source: ByteSource,
    metadata: Readonly<Record<string, string>>,
    tensors: readonly TensorInfo[],
    file: string | undefined,
  ) {
    this.#source = source;
    this.metadata = metadata;
    this.tensors = new Map(tensors.map((t) => [t.name, t]));
    this.file = file;
  }

  /**
   * Parses and validates the header of the safetensors data in `source`. `file` names the source in error
   * messages. Throws a `SafetensorsError` for any malformed or inconsistent header; tensor data is not read.
   */
  static async open(source: ByteSource, file?: string): Promise<SafetensorsFile> {
    const size = source.size;
    if (!Number.isSafeInteger(size) || size < 8) {
      throw new SafetensorsError(`file is ${size} bytes, too short for the 8-byte header length`, { file });
    }
    const headerLength = readSafetensorsHeaderLength(await readOrFail(source, 0, 8, file), size, file);
    const headerBytes = await readOrFail(source, 8, headerLength, file);
    const dataStart = 8 + headerLength;
    const { metadata, tensors } = parseSafetensorsHeader(headerBytes, dataStart, size - dataStart, file);
    return new SafetensorsFile(source, metadata, tensors, file);
  }

  /** Every tensor name, in the order their data appears in the file. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  /** True when the file has a tensor called `name`. */
  has(name: string): boolean {
    return this.tensors.has(name);
  }

  /** Where tensor `name` is and what it holds; throws a `SafetensorsError` for an unknown name. */
  info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) {
      throw new SafetensorsError(`no such tensor (the file has ${this.tensors.size})`, {
        file: this.file,
        tensor: name,
      });
    }
    return info;
  }

  /**
   * The raw bytes of tensor `name` (little-endian, row-major), read from the source now; `offset`/`length`
   * select a byte range within the tensor; `into` may receive the bytes (see `ByteSource.read`).
   */
  async read(name: string, offset = 0, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    const { byteOffset, byteLength } = this.info(name);
    const n = length ?? byteLength - offset;
    if (
      !(
        Number.isSafeInteger(offset) &&
        Number.isSafeInteger(n) &&
        offset >= 0 &&
        n >= 0 &&
        offset + n <= byteLength
      )
    ) {
      throw new SafetensorsError(
        `byte range [${offset}, ${offset + n}) is outside the tensor's ${byteLength} bytes`,
        {
          file: this.file,
          tensor: name,
        },
      );
    }
    return readOrFail(this.#source, byteOffset + offset, n, this.file, name, into);
  }

  /** Closes the underlying source. */
  async close(): Promise<void> {
    await this.#source.close?.();
  }
}

/** Reads from `source`, turning a failing or short read into a `SafetensorsError` that names the file. */
async function readOrFail(
  source: ByteSource,
  offset: number,
  length: number,
  file: string | undefined,
  tensor?: string,
  into?: Uint8Array,
): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await source.read(offset, length, into);
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw new SafetensorsError(`reading ${length} bytes at offset ${offset} failed: ${why}`, {
      file,
      tensor,
      cause,
    });
  }
  if (bytes.byteLength !== length) {
    throw new SafetensorsError(`read ${bytes.byteLength} bytes at offset ${offset}, expected ${length}`, {
      file,
      tensor,
    });
  }
  return bytes;
}
