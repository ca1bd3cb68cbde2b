/**
 * A minimal, read-only zip reader over a `ByteSource`, for the containers `torch.save` writes. It reads the
 * central directory (zip64 included, as torch uses for large files) and then only the byte ranges asked for,
 * so a multi-GB checkpoint is never loaded whole. Only STORED (uncompressed) entries can be read, which is
 * what torch writes. Every size and offset is checked against the file before it is used.
 * @module
 */
import type { ByteSource } from '@proj/core';
import { crc32 } from './crc32.js';
import { ZipError } from './errors.js';

/** One file in the archive, as the central directory describes it. */
export interface ZipEntry {
  /** Path inside the archive. */
  readonly name: string;
  /** Compression method: 0 is STORED, the only one this reader can read. */
  readonly method: number;
  /** General-purpose flags (bit 0: encrypted). */
  readonly flags: number;
  /** CRC-32 of the uncompressed data. */
  readonly crc32: number;
  /** Bytes stored in the archive. */
  readonly compressedSize: number;
  /** Bytes after decompression (equal to `compressedSize` for STORED entries). */
  readonly size: number;
  /** Offset of the entry's local header. */
  readonly localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
/** Largest central directory read (about 300 bytes per tensor in a checkpoint: far below this). */
const MAX_CENTRAL_DIRECTORY = 64 * 1024 * 1024;
/** Largest entry `readEntry` loads whole (it is meant for small records such as the pickle). */
const MAX_WHOLE_ENTRY = 256 * 1024 * 1024;

/** A zip archive opened over a `ByteSource`. */
export class ZipArchive {
  /** Every entry by name, in central-directory order. */
  readonly entries: ReadonlyMap<string, ZipEntry>;
  readonly #source: ByteSource;
  readonly #file: string;
  /** Entries' data must lie before this offset (the central directory's start). */
  readonly #dataEnd: number;
  readonly #dataOffsets = new Map<string, number>();

  private constructor(source: ByteSource, file: string, entries: Map<string, ZipEntry>, dataEnd: number) {
    this.#source = source;
    this.#file = file;
    this.entries = entries;
    this.#dataEnd = dataEnd;
  }

  /** Reads and validates the central directory of the zip in `source`; `file` names it in errors. */
  static async open(source: ByteSource, file = 'zip archive'): Promise<ZipArchive> {
    const fail = (problem: string): never => {
      throw new ZipError(`${file}: ${problem}`);
    };
    const size = source.size;
    if (!Number.isSafeInteger(size) || size < EOCD_SIZE) return fail(`${size} bytes is too short for a zip`);
    const tailLength = Math.min(size, EOCD_SIZE + MAX_COMMENT);
    const tailStart = size - tailLength;
    const tail = await readOrFail(source, tailStart, tailLength, file);
    const tv = view(tail);
    let eocd = -1;
    for (let at = tail.length - EOCD_SIZE; at >= 0; at--) {
      // The record must end exactly at the end of the file, comment included; this rejects stray signatures.
      if (
        tv.getUint32(at, true) === EOCD_SIG &&
        at + EOCD_SIZE + tv.getUint16(at + 20, true) === tail.length
      ) {
        eocd = at;
        break;
      }
    }
    if (eocd < 0) return fail('no end-of-central-directory record (not a zip file, or truncated)');
    let disk = tv.getUint16(eocd + 4, true);
    let cdDisk = tv.getUint16(eocd + 6, true);
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    let cdLimit = tailStart + eocd; // the central directory ends before the records that describe it

    if (eocd >= 20 && tv.getUint32(eocd - 20, true) === ZIP64_LOCATOR_SIG) {
      if (tv.getUint32(eocd - 16, true) !== 0 || tv.getUint32(eocd - 4, true) > 1) {
        return fail('multi-disk zip archives are not supported');
      }
      const z64Offset = safe(tv.getBigUint64(eocd - 12, true), 'zip64 record offset', file);
      if (z64Offset + 56 > tailStart + eocd - 20)
        return fail(`zip64 record offset ${z64Offset} is out of range`);
      const z = view(await readOrFail(source, z64Offset, 56, file));
      if (z.getUint32(0, true) !== ZIP64_EOCD_SIG) return fail(`no zip64 end record at offset ${z64Offset}`);
      disk = z.getUint32(16, true);
      cdDisk = z.getUint32(20, true);
      count = safe(z.getBigUint64(32, true), 'entry count', file);
      cdSize = safe(z.getBigUint64(40, true), 'central directory size', file);
      cdOffset = safe(z.getBigUint64(48, true), 'central directory offset', file);
      cdLimit = z64Offset;
    }
    if (disk !== 0 || cdDisk !== 0) return fail('multi-disk zip archives are not supported');
    if (cdOffset + cdSize > cdLimit) {
      return fail(
        `central directory [${cdOffset}, ${cdOffset + cdSize}) runs past its end record at ${cdLimit}`,
      );
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) return fail(`central directory of ${cdSize} bytes is too large`);
    if (count * 46 > cdSize) return fail(`${count} entries cannot fit in a ${cdSize}-byte central directory`);
    const cd = await readOrFail(source, cdOffset, cdSize, file);
    return new ZipArchive(source, file, parseCentralDirectory(cd, count, cdOffset, file), cdOffset);
  }

  /** Entry names in central-directory order. */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The entry called `name`; throws a `ZipError` if there is none. */
  entry(name: string): ZipEntry {
    const entry = this.entries.get(name);
    if (entry === undefined) throw new ZipError(`${this.#file}: no entry '${name}'`);
    return entry;
  }

  /**
   * `length` bytes from `offset` within the data of entry `name` (all of it by default). The entry must be
   * STORED and unencrypted; the range must lie inside it. `into` may receive the bytes (see
   * `ByteSource.read`).
   */
  async readRange(name: string, offset = 0, length?: number, into?: Uint8Array): Promise<Uint8Array> {
    const entry = this.entry(name);
    const n = length ?? entry.size - offset;
    if (
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(n) ||
      offset < 0 ||
      n < 0 ||
      offset + n > entry.size
    ) {
      throw new ZipError(
        `${this.#file}: range [${offset}, ${offset + n}) is outside entry '${name}' (${entry.size} bytes)`,
      );
    }
    const start = await this.#dataOffset(entry);
    return readOrFail(this.#source, start + offset, n, `${this.#file}: entry '${name}'`, into);
  }

  /** The whole of a small entry, checked against its CRC-32. */
  async readEntry(name: string): Promise<Uint8Array> {
    const entry = this.entry(name);
    if (entry.size > MAX_WHOLE_ENTRY) {
      throw new ZipError(`${this.#file}: entry '${name}' is ${entry.size} bytes, too large to load whole`);
    }
    const bytes = await this.readRange(name);
    if (crc32(bytes) !== entry.crc32)
      throw new ZipError(`${this.#file}: entry '${name}' fails its CRC-32 check`);
    return bytes;
  }

  /** Closes the underlying source. */
  async close(): Promise<void> {
    await this.#source.close?.();
  }

  /** Where `entry`'s data starts, from its local header (read once, then cached). */
  async #dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.#dataOffsets.get(entry.name);
    if (cached !== undefined) return cached;
    const fail = (problem: string): never => {
      throw new ZipError(`${this.#file}: entry '${entry.name}': ${problem}`);
    };
    if (entry.flags & 1) fail('is encrypted, which is not supported');
    if (entry.method !== 0) {
      fail(
        `uses compression method ${entry.method}; only STORED (0) entries are supported, as torch.save writes`,
      );
    }
    if (entry.localHeaderOffset + 30 > this.#dataEnd) fail('local header is outside the archive data');
    const header = view(await readOrFail(this.#source, entry.localHeaderOffset, 30, this.#file));
    if (header.getUint32(0, true) !== LOCAL_SIG) fail(`no local header at offset ${entry.localHeaderOffset}`);
    const nameLength = header.getUint16(26, true);
    const start = entry.localHeaderOffset + 30 + nameLength + header.getUint16(28, true);
    if (start + entry.compressedSize > this.#dataEnd) {
      fail(
        `data [${start}, ${start + entry.compressedSize}) runs into the central directory at ${this.#dataEnd}`,
      );
    }
    const localName = await readOrFail(this.#source, entry.localHeaderOffset + 30, nameLength, this.#file);
    if (decodeName(localName) !== entry.name) fail('local header names a different file');
    this.#dataOffsets.set(entry.name, start);
    return start;
  }
}

function parseCentralDirectory(
  cd: Uint8Array,
  count: number,
  cdOffset: number,
  file: string,
): Map<string, ZipEntry> {
  const entries = new Map<string, ZipEntry>();
  const v = view(cd);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const fail = (problem: string): never => {
      throw new ZipError(`${file}: central directory entry ${i}: ${problem}`);
    };
    if (at + 46 > cd.length) fail('runs past the end of the central directory');
    if (v.getUint32(at, true) !== CENTRAL_SIG) fail(`bad signature at offset ${cdOffset + at}`);
    const nameLength = v.getUint16(at + 28, true);
    const extraLength = v.getUint16(at + 30, true);
    const commentLength = v.getUint16(at + 32, true);
    const end = at + 46 + nameLength + extraLength + commentLength;
    if (end > cd.length) fail('runs past the end of the central directory');
    const name = decodeName(cd.subarray(at + 46, at + 46 + nameLength));
    if (name === undefined) fail('name is not valid UTF-8');
    let compressedSize = v.getUint32(at + 20, true);
    let size = v.getUint32(at + 24, true);
    let localHeaderOffset = v.getUint32(at + 42, true);
    // Fields that overflow 32 bits are 0xFFFFFFFF here and stored, in this order, in the zip64 extra field.
    const wide = [size, compressedSize, localHeaderOffset].map((x) => x === 0xffffffff);
    if (wide.some(Boolean)) {
      const z64 = findExtra(cd.subarray(at + 46 + nameLength, at + 46 + nameLength + extraLength), 0x0001);
      if (z64 === undefined) fail('has 0xFFFFFFFF sizes but no zip64 extra field');
      const zv = view(z64!);
      let p = 0;
      const next = (what: string): number => {
        if (p + 8 > z64!.length) fail(`zip64 extra field is missing the ${what}`);
        const value = safe(zv.getBigUint64(p, true), what, file);
        p += 8;
        return value;
      };
      if (wide[0]) size = next('size');
      if (wide[1]) compressedSize = next('compressed size');
      if (wide[2]) localHeaderOffset = next('local header offset');
    }
    if (localHeaderOffset >= cdOffset) fail(`local header offset ${localHeaderOffset} is past the entries`);
    if (compressedSize > cdOffset) fail(`compressed size ${compressedSize} is larger than the archive data`);
    const entry: ZipEntry = {
      name: name!,
      method: v.getUint16(at + 10, true),
      flags: v.getUint16(at + 8, true),
      crc32: v.getUint32(at + 16, true),
      compressedSize,
      size,
      localHeaderOffset,
    };
    if (entry.method === 0 && size !== compressedSize)
      fail(`STORED entry with size ${size} != ${compressedSize}`);
    if (entries.has(entry.name)) fail(`duplicate entry '${entry.name}'`);
    entries.set(entry.name, entry);
    at = end;
  }
  if (at !== cd.length) {
    throw new ZipError(`${file}: central directory has ${cd.length - at} bytes after its ${count} entries`);
  }
  return entries;
}

/** The data of extra field `id` within `extra`, or undefined. */
function findExtra(extra: Uint8Array, id: number): Uint8Array | undefined {
  const v = view(extra);
  for (let at = 0; at + 4 <= extra.length; ) {
    const length = v.getUint16(at + 2, true);
    if (at + 4 + length > extra.length) return undefined;
    if (v.getUint16(at, true) === id) return extra.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
  return undefined;
}

function decodeName(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A 64-bit field as a number, refusing values above 2^53 (no real archive is that large). */
function safe(value: bigint, what: string, file: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER))
    throw new ZipError(`${file}: ${what} ${value} is out of range`);
  return Number(value);
}

/** Reads from `source`; a failing read (out of range, I/O) becomes a `ZipError` naming `where`. */
async function readOrFail(
  source: ByteSource,
  offset: number,
  length: number,
  where: string,
  into?: Uint8Array,
): Promise<Uint8Array> {
  if (offset < 0 || length < 0 || offset + length > source.size) {
    throw new ZipError(
      `${where}: range [${offset}, ${offset + length}) is outside the ${source.size}-byte file`,
    );
  }
  try {
    const bytes = await source.read(offset, length, into);
    if (bytes.byteLength !== length) throw new Error(`short read: ${bytes.byteLength} of ${length} bytes`);
    return bytes;
  } catch (cause) {
    throw new ZipError(`${where}: reading ${length} bytes at ${offset} failed: ${(cause as Error).message}`, {
      cause,
    });
  }
}
