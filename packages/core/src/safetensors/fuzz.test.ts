import { describe, expect, it } from 'vitest';
import { type ByteSource, memorySource } from '../io/byte-source.js';
import { Rng } from '../random.js';
import { SafetensorsError } from './errors.js';
import { SafetensorsFile } from './reader.js';
import { serializeSafetensors } from './writer.js';

/** A seeded generator (core's mulberry32 `Rng`), so every fuzz run (and any failure) is reproducible. */
function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

const BASE = serializeSafetensors(
  [
    { name: 'w', dtype: 'F32', shape: [2, 3], data: new Uint8Array(24).map((_, i) => i) },
    { name: 'h', dtype: 'BF16', shape: [4], data: new Uint8Array(8).fill(0x3f) },
    { name: 'ids', dtype: 'I32', shape: [2], data: new Uint8Array(8).fill(1) },
    { name: 'z', dtype: 'U8', shape: [0], data: new Uint8Array(0) },
  ],
  { format: 'pt' },
);
const HEADER_LENGTH = Number(new DataView(BASE.buffer).getBigUint64(0, true));
const HEADER = JSON.parse(new TextDecoder().decode(BASE.subarray(8, 8 + HEADER_LENGTH))) as object;
const DATA = BASE.subarray(8 + HEADER_LENGTH);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const WEIRD_VALUES: Json[] = [
  -1,
  0,
  1,
  0.5,
  2 ** 31,
  2 ** 32 + 1,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  -0,
  'F32',
  'BF16',
  'X',
  '',
  null,
  true,
  [],
  [0],
  [0, 0],
  [1, 2, 3],
  {},
  { a: 1 },
];

/** Every container (object or array) in `value`, so a mutation can pick any of them. */
function containers(
  value: Json,
  out: (Json[] | { [key: string]: Json })[] = [],
): (Json[] | { [key: string]: Json })[] {
  if (typeof value === 'object' && value !== null) {
    out.push(value);
    for (const child of Object.values(value)) containers(child, out);
  }
  return out;
}

function mutateJson(rand: () => number, pick: <T>(items: readonly T[]) => T): Uint8Array {
  const json = structuredClone(HEADER) as Json;
  const edits = 1 + Math.floor(rand() * 3);
  for (let e = 0; e < edits; e++) {
    const target = pick(containers(json));
    const keys = Object.keys(target);
    if (keys.length === 0) continue;
    const key = pick(keys);
    const record = target as Record<string, Json>;
    const old = record[key]!;
    const kind = rand();
    if (kind < 0.3 && typeof old === 'number') {
      record[key] = pick([old + 1, old - 1, old * 2, -old, old + 0.5, 2 ** 53, 0]);
    } else if (kind < 0.5 && !Array.isArray(target)) {
      delete record[key];
    } else if (kind < 0.6) {
      record[key] = record[pick(keys)]!; // swap in a sibling's value
    } else {
      record[key] = structuredClone(pick(WEIRD_VALUES));
    }
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + text.byteLength + DATA.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.byteLength), true);
  out.set(text, 8);
  out.set(DATA, 8 + text.byteLength);
  return out;
}

function mutateBytes(rand: () => number, pick: <T>(items: readonly T[]) => T): Uint8Array {
  const bytes = BASE.slice();
  const kind = rand();
  if (kind < 0.35) {
    const flips = 1 + Math.floor(rand() * 8);
    for (let i = 0; i < flips; i++) {
      // Mostly inside the length prefix and header, where structure lives.
      const at = rand() < 0.8 ? Math.floor(rand() * (8 + HEADER_LENGTH)) : Math.floor(rand() * bytes.length);
      bytes[at]! ^= 1 << Math.floor(rand() * 8);
    }
    return bytes;
  }
  if (kind < 0.55) return bytes.subarray(0, Math.floor(rand() * bytes.length));
  if (kind < 0.75) {
    const length = pick([0n, 1n, 7n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, BigInt(bytes.length)]);
    new DataView(bytes.buffer).setBigUint64(0, length, true);
    return bytes;
  }
  // Delete or insert one character inside the header text (keeping the prefix consistent).
  const at = 8 + Math.floor(rand() * HEADER_LENGTH);
  const text = Array.from(bytes.subarray(8, 8 + HEADER_LENGTH));
  if (rand() < 0.5) text.splice(at - 8, 1);
  else text.splice(at - 8, 0, pick([0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x22, 0x30, 0x2d, 0x20, 0xc3]));
  const out = new Uint8Array(8 + text.length + DATA.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(DATA, 8 + text.length);
  return out;
}

describe('safetensors fuzz', () => {
  it('every mutated file either opens and reads fully, or fails with a SafetensorsError', async () => {
    const rand = seeded(0x5afe7e45);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;
    const outcomes = { ok: 0, rejected: 0 };
    const problems: string[] = [];
    const started = performance.now();
    for (let i = 0; i < 20_000; i++) {
      const bytes = rand() < 0.5 ? mutateJson(rand, pick) : mutateBytes(rand, pick);
      const inner = memorySource(bytes);
      // A strict source: any read outside the file is a reader bug, not an acceptable failure.
      const source: ByteSource = {
        size: inner.size,
        read: (offset, length) => {
          if (offset < 0 || length < 0 || offset + length > inner.size) {
            problems.push(`case ${i}: read(${offset}, ${length}) outside a ${inner.size}-byte file`);
          }
          return inner.read(offset, length);
        },
      };
      try {
        const file = await SafetensorsFile.open(source, `case-${i}`);
        for (const name of file.names()) {
          const info = file.info(name);
          const data = await file.read(name);
          if (data.byteLength !== info.byteLength)
            problems.push(`case ${i}: '${name}' read the wrong length`);
        }
        outcomes.ok++;
      } catch (e) {
        if (e instanceof SafetensorsError) outcomes.rejected++;
        else problems.push(`case ${i}: ${String(e)}`);
      }
    }
    const seconds = (performance.now() - started) / 1000;
    expect(problems).toEqual([]);
    // Both outcomes must be common, or the mutations are not exercising the validation.
    expect(outcomes.ok).toBeGreaterThan(1000);
    expect(outcomes.rejected).toBeGreaterThan(10_000);
    expect(seconds).toBeLessThan(10);
  });

  it('fails fast on a header claiming 2^53 bytes without allocating it', async () => {
    const bytes = new Uint8Array(16);
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 53n, true);
    let requested = 0;
    const source: ByteSource = {
      size: bytes.byteLength,
      read: (offset, length) => {
        requested += length;
        return memorySource(bytes).read(offset, length);
      },
    };
    await expect(SafetensorsFile.open(source)).rejects.toThrow(SafetensorsError);
    expect(requested).toBe(8); // only the length prefix was read
  });
});
