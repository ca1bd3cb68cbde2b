/**
 * Writing safetensors data. The layout is deterministic (same tensors, same bytes, whatever order they are
 * passed in): tensors are ordered by element size, largest first, then by name, which also keeps every
 * tensor aligned to its element size in the file so readers can view it as a typed array without copying.
 * The header is padded with spaces to a multiple of 8 bytes, as the reference implementation does.
 * @module
 */
import { DTYPES, type DType } from '../dtype.js';
import type { Tensor } from '../tensor.js';
import {
  fromCoreDType,
  isSafetensorsDType,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsDType,
} from './dtypes.js';
import { SafetensorsError } from './errors.js';
import { SAFETENSORS_METADATA_KEY } from './header.js';

/** One tensor to write. */
export interface SafetensorsEntry {
  /** The tensor's name; any string but `__metadata__`, unique within the file. */
  readonly name: string;
  /** Element type: a core dtype (`'bf16'`) or a safetensors dtype string (`'BF16'`). */
  readonly dtype: DType | SafetensorsDType;
  /** Dims, outermost first. */
  readonly shape: readonly number[];
  /** Row-major little-endian bytes; exactly product(shape) x element size of them. */
  readonly data: Uint8Array;
}

/** The entries of named tensors (their bytes read back from any device), ready to write. */
export async function tensorEntries(
  tensors: Iterable<readonly [string, Tensor]>,
): Promise<SafetensorsEntry[]> {
  return Promise.all(
    [...tensors].map(async ([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: await t.bytes() })),
  );
}

/** A validated write: the header bytes (length prefix included) and the tensors in file order. */
export interface SafetensorsLayout {
  /** The 8-byte length prefix followed by the space-padded JSON header. */
  readonly header: Uint8Array;
  /** The entries in the order their data follows the header. */
  readonly entries: readonly SafetensorsEntry[];
  /** Total file size in bytes. */
  readonly byteLength: number;
}

/**
 * Validates `entries` and `metadata` and lays them out. `file` names the destination in error messages.
 * Shared by `serializeSafetensors` and the streaming file writer so both produce identical bytes.
 */
export function planSafetensors(
  entries: readonly SafetensorsEntry[],
  metadata?: Readonly<Record<string, string>>,
  file?: string,
): SafetensorsLayout {
  const seen = new Set<string>();
  const checked = entries.map((entry) => {
    const dtype = checkEntry(entry, file);
    if (seen.has(entry.name))
      throw new SafetensorsError('duplicate tensor name', { file, tensor: entry.name });
    seen.add(entry.name);
    return { entry, dtype, size: SAFETENSORS_DTYPE_BYTES[dtype] };
  });
  checked.sort((a, b) => b.size - a.size || compareNames(a.entry.name, b.entry.name));

  const parts: string[] = [];
  const meta = metadata ?? {};
  const metaKeys = Object.keys(meta).sort(compareNames);
  if (metaKeys.length > 0) {
    const fields = metaKeys.map((key) => {
      const value = meta[key];
      if (typeof value !== 'string') {
        throw new SafetensorsError(`metadata '${key}' must be a string, got ${typeof value}`, { file });
      }
      return `${JSON.stringify(key)}:${JSON.stringify(value)}`;
    });
    parts.push(`${JSON.stringify(SAFETENSORS_METADATA_KEY)}:{${fields.join(',')}}`);
  }
  let offset = 0;
  for (const { entry, dtype } of checked) {
    const end = offset + entry.data.byteLength;
    // Built by hand rather than from an object: JS objects put integer-like keys first, breaking the order.
    const fields = `"dtype":"${dtype}","shape":${JSON.stringify(entry.shape)},"data_offsets":[${offset},${end}]`;
    parts.push(`${JSON.stringify(entry.name)}:{${fields}}`);
    offset = end;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(8 + padded).fill(0x20, 8 + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  return { header, entries: checked.map((c) => c.entry), byteLength: header.byteLength + offset };
}

/** The complete safetensors file for `entries` (plus optional string `metadata`), in memory. */
export function serializeSafetensors(
  entries: readonly SafetensorsEntry[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const layout = planSafetensors(entries, metadata);
  const out = new Uint8Array(layout.byteLength);
  out.set(layout.header, 0);
  let offset = layout.header.byteLength;
  for (const entry of layout.entries) {
    out.set(entry.data, offset);
    offset += entry.data.byteLength;
  }
  return out;
}

/** Checks one entry and returns its safetensors dtype. */
function checkEntry(entry: SafetensorsEntry, file: string | undefined): SafetensorsDType {
  const name = entry.name;
  const fail = (problem: string): never => {
    throw new SafetensorsError(problem, { file, tensor: String(name) });
  };
  if (typeof name !== 'string') return fail('tensor name must be a string');
  if (name === SAFETENSORS_METADATA_KEY)
    return fail(`'${SAFETENSORS_METADATA_KEY}' is reserved for metadata`);
  const raw: string = entry.dtype;
  const dtype = isSafetensorsDType(raw) ? raw : isCoreDType(raw) ? fromCoreDType(raw) : undefined;
  if (dtype === undefined) return fail(`unknown dtype '${raw}'`);
  if (!Array.isArray(entry.shape)) return fail('shape must be an array');
  let elements = 1;
  for (const d of entry.shape) {
    if (!Number.isSafeInteger(d) || d < 0)
      return fail(`shape [${entry.shape}] must hold non-negative integers`);
    elements *= d;
  }
  if (!(entry.data instanceof Uint8Array)) return fail('data must be a Uint8Array');
  const expected = elements * SAFETENSORS_DTYPE_BYTES[dtype];
  if (entry.data.byteLength !== expected) {
    fail(`shape [${entry.shape}] of ${dtype} needs ${expected} bytes, data has ${entry.data.byteLength}`);
  }
  return dtype;
}

function isCoreDType(value: string): value is DType {
  return (DTYPES as readonly string[]).includes(value);
}

/** Orders by UTF-16 code units, independent of locale, so the layout is the same everywhere. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
