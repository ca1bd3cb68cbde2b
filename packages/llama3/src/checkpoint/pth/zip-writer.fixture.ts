/**
 * Test-only: builds small zip archives the way `torch.save` lays them out (STORED records, optionally zip64
 * end records), with knobs to produce broken or unsupported ones.
 * @module
 */
import { deflateRawSync } from 'node:zlib';
import { crc32 } from './crc32.js';

/** One record to put in a test zip. */
export interface ZipInput {
  /** Path inside the archive. */
  name: string;
  /** Uncompressed contents. */
  data: Uint8Array;
  /** 8 stores it deflated (unsupported by the reader); default 0 (STORED). */
  method?: 0 | 8;
  /** General-purpose flags to write (bit 0 claims encryption). */
  flags?: number;
  /** CRC-32 of `data`, when already known (saves recomputing it for big records). */
  crc32?: number;
}

/** Options for `buildZip`. */
export interface ZipOptions {
  /** Write zip64 end records, as torch does. */
  zip64?: boolean;
  /** An archive comment after the end record. */
  comment?: string;
}

/** The bytes of a zip archive holding `inputs`. */
export function buildZip(inputs: readonly ZipInput[], options: ZipOptions = {}): Uint8Array {
  const enc = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const input of inputs) {
    const name = enc.encode(input.name);
    const method = input.method ?? 0;
    const stored = method === 8 ? new Uint8Array(deflateRawSync(input.data)) : input.data;
    const crc = input.crc32 ?? crc32(input.data);
    const local = new Uint8Array(30 + name.length);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, input.flags ?? 0, true);
    lv.setUint16(8, method, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, stored.length, true);
    lv.setUint32(22, input.data.length, true);
    lv.setUint16(26, name.length, true);
    local.set(name, 30);
    const cd = new Uint8Array(46 + name.length);
    const cv = new DataView(cd.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, input.flags ?? 0, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, stored.length, true);
    cv.setUint32(24, input.data.length, true);
    cv.setUint16(28, name.length, true);
    cv.setUint32(42, offset, true);
    cd.set(name, 46);
    central.push(cd);
    chunks.push(local, stored);
    offset += local.length + stored.length;
  }
  const cdOffset = offset;
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  chunks.push(...central);
  offset += cdSize;
  if (options.zip64) {
    const z = new Uint8Array(56 + 20);
    const zv = new DataView(z.buffer);
    zv.setUint32(0, 0x06064b50, true);
    zv.setBigUint64(4, 44n, true);
    zv.setUint16(12, 45, true);
    zv.setUint16(14, 45, true);
    zv.setBigUint64(24, BigInt(inputs.length), true);
    zv.setBigUint64(32, BigInt(inputs.length), true);
    zv.setBigUint64(40, BigInt(cdSize), true);
    zv.setBigUint64(48, BigInt(cdOffset), true);
    zv.setUint32(56, 0x07064b50, true);
    zv.setBigUint64(64, BigInt(offset), true);
    zv.setUint32(72, 1, true);
    chunks.push(z);
  }
  const comment = enc.encode(options.comment ?? '');
  const end = new Uint8Array(22 + comment.length);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, inputs.length, true);
  ev.setUint16(10, inputs.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, cdOffset, true);
  ev.setUint16(20, comment.length, true);
  end.set(comment, 22);
  chunks.push(end);
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
