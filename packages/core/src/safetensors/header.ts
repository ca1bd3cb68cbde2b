/**
 * Parsing and validation of a safetensors header. Nothing in a header is trusted until checked: the length
 * prefix is bounded before anything is allocated, and every tensor's dtype, shape and byte range is
 * checked against the others and against the file size, so later reads can never run outside the file.
 * @module
 */
import { isSafetensorsDType, SAFETENSORS_DTYPE_BYTES, type SafetensorsDType } from './dtypes.js';
import { SafetensorsError } from './errors.js';

/** Largest header this reader accepts (100 MiB, as the reference implementation does). */
export const MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024;

/** The key of the optional string-to-string metadata map in a header. */
export const SAFETENSORS_METADATA_KEY = '__metadata__';

/** Where one tensor's data lives in a safetensors file, and what it holds. */
export interface TensorInfo {
  /** The tensor's name in the file. */
  readonly name: string;
  /** Element type as declared in the header. */
  readonly dtype: SafetensorsDType;
  /** Dims, outermost first (row-major, contiguous). */
  readonly shape: readonly number[];
  /** Absolute offset of the first byte in the file (8 + header length + the header's `begin`). */
  readonly byteOffset: number;
  /** Number of bytes: product(shape) x element size. */
  readonly byteLength: number;
}

/** A validated header. */
export interface ParsedSafetensorsHeader {
  /** The `__metadata__` map (empty when absent); a null-prototype object, so any key is safe. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Every tensor, in the order of their data in the file. */
  readonly tensors: readonly TensorInfo[];
}

/**
 * Reads the 8-byte little-endian header length from the first bytes of a file of `fileSize` bytes and
 * checks it fits in the file and under `MAX_SAFETENSORS_HEADER_BYTES`, so the header can be allocated safely.
 */
export function readSafetensorsHeaderLength(prefix: Uint8Array, fileSize: number, file?: string): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new SafetensorsError(`file is ${fileSize} bytes, too short for the 8-byte header length`, { file });
  }
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const length = view.getBigUint64(0, true); // compared as a bigint: a hostile value may exceed 2^53
  if (length > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) {
    throw new SafetensorsError(
      `header length ${length} exceeds the ${MAX_SAFETENSORS_HEADER_BYTES}-byte limit`,
      {
        file,
      },
    );
  }
  if (length > BigInt(fileSize - 8)) {
    throw new SafetensorsError(
      `header length ${length} is larger than the ${fileSize - 8} bytes after the length prefix (truncated file?)`,
      { file },
    );
  }
  return Number(length);
}

/**
 * Parses and validates the JSON header `headerBytes` of a file whose data section starts at absolute
 * offset `dataStart` and is `dataSize` bytes long.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataStart: number,
  dataSize: number,
  file?: string,
): ParsedSafetensorsHeader {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch (cause) {
    throw new SafetensorsError('header is not valid UTF-8', { file, cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new SafetensorsError(`header is not valid JSON (${(cause as Error).message})`, { file, cause });
  }
  if (!isPlainObject(json)) {
    throw new SafetensorsError(`header must be a JSON object, got ${describe(json)}`, { file });
  }
  const metadata = Object.create(null) as Record<string, string>;
  const tensors: TensorInfo[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name === SAFETENSORS_METADATA_KEY) {
      readMetadata(value, metadata, file);
    } else {
      tensors.push(parseEntry(name, value, dataStart, dataSize, file));
    }
  }
  checkNoOverlap(tensors, file);
  return { metadata, tensors };
}

function readMetadata(value: unknown, into: Record<string, string>, file: string | undefined): void {
  if (value === null) return; // the reference implementation treats a null map as absent
  if (!isPlainObject(value)) {
    throw new SafetensorsError(
      `${SAFETENSORS_METADATA_KEY} must be an object of strings, got ${describe(value)}`,
      {
        file,
      },
    );
  }
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') {
      throw new SafetensorsError(
        `${SAFETENSORS_METADATA_KEY}['${key}'] must be a string, got ${describe(v)}`,
        { file },
      );
    }
    into[key] = v;
  }
}

function parseEntry(
  name: string,
  value: unknown,
  dataStart: number,
  dataSize: number,
  file: string | undefined,
): TensorInfo {
  const fail = (problem: string): never => {
    throw new SafetensorsError(problem, { file, tensor: name });
  };
  if (!isPlainObject(value)) return fail(`entry must be an object, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isSafetensorsDType(dtype)) {
    return fail(`unknown dtype ${short(dtype)}`);
  }
  if (!Array.isArray(shape)) return fail(`shape must be an array, got ${describe(shape)}`);
  for (const d of shape) {
    if (!isIndex(d)) return fail(`shape ${short(shape)} has ${describe(d)}, not a non-negative integer`);
  }
  const dims = shape as number[];
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    return fail(`data_offsets must be [begin, end], got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as unknown[];
  if (!isIndex(begin) || !isIndex(end)) {
    return fail(`data_offsets ${short(offsets)} must be non-negative integers`);
  }
  if (begin > end) return fail(`data_offsets [${begin}, ${end}]: begin is after end`);
  const elements = product(dims);
  const size = SAFETENSORS_DTYPE_BYTES[dtype];
  const byteLength = elements === undefined ? undefined : elements * size;
  if (byteLength === undefined || !Number.isSafeInteger(byteLength)) {
    return fail(`shape ${short(dims)} is too large`);
  }
  if (end - begin !== byteLength) {
    return fail(
      `shape ${short(dims)} of ${dtype} needs ${byteLength} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataSize) {
    return fail(
      `data_offsets [${begin}, ${end}] run past the ${dataSize}-byte data section (truncated file?)`,
    );
  }
  return Object.freeze({
    name,
    dtype,
    shape: Object.freeze(dims.slice()),
    byteOffset: dataStart + begin,
    byteLength,
  });
}

/** Sorts `tensors` by position in place and throws if two non-empty byte ranges share a byte. */
function checkNoOverlap(tensors: TensorInfo[], file: string | undefined): void {
  tensors.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  let last: TensorInfo | undefined;
  for (const t of tensors) {
    if (t.byteLength === 0) continue; // an empty range shares no bytes with anything
    if (last !== undefined && t.byteOffset < last.byteOffset + last.byteLength) {
      throw new SafetensorsError(`data overlaps tensor '${last.name}'`, { file, tensor: t.name });
    }
    last = t;
  }
}

/** The product of `dims`, or undefined when it is not a safe integer. */
function product(dims: readonly number[]): number | undefined {
  if (dims.includes(0)) return 0;
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (!Number.isSafeInteger(n)) return undefined;
  }
  return n;
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` as JSON, cut short so a hostile header cannot produce a megabyte-long message. */
function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 40))}`;
  return `${typeof value} ${String(value)}`;
}
