import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fromFloat32, viewAs } from '../dtype.js';
import { memorySource } from '../io/byte-source.js';
import { tensor } from '../tensor.js';
import { SafetensorsError } from './errors.js';
import { openSafetensors, writeSafetensorsFile } from './files.js';
import { SafetensorsFile } from './reader.js';
import { type SafetensorsEntry, serializeSafetensors, tensorEntries } from './writer.js';

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

const ENTRIES: SafetensorsEntry[] = [
  {
    name: 'b.bf16',
    dtype: 'bf16',
    shape: [2, 3],
    data: bytesOf(fromFloat32('bf16', [1, -2, 3.5, 0, 1e-3, 7])),
  },
  { name: 'a.f32', dtype: 'f32', shape: [3], data: bytesOf(new Float32Array([0.5, -1.25, 1e30])) },
  { name: 'ids', dtype: 'I32', shape: [4], data: bytesOf(new Int32Array([128000, -1, 0, 2 ** 31 - 1])) },
  { name: 'flags', dtype: 'U8', shape: [5], data: new Uint8Array([1, 0, 1, 1, 0]) },
  { name: 'empty', dtype: 'F16', shape: [0, 4], data: new Uint8Array(0) },
  { name: 'scalar', dtype: 'F64', shape: [], data: bytesOf(new Float64Array([Math.PI])) },
  { name: '0', dtype: 'u32', shape: [1], data: bytesOf(new Uint32Array([0xdeadbeef])) },
];

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'safetensors-writer-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('serializeSafetensors', () => {
  it('round-trips every entry, its dtype, shape, bytes and the metadata', async () => {
    const bytes = serializeSafetensors(ENTRIES, { format: 'pt', note: 'round "trip" ✓' });
    const file = await SafetensorsFile.open(memorySource(bytes), 'mem');
    expect(file.metadata).toEqual({ format: 'pt', note: 'round "trip" ✓' });
    expect(new Set(file.names())).toEqual(new Set(ENTRIES.map((e) => e.name)));
    for (const entry of ENTRIES) {
      const info = file.info(entry.name);
      expect(info.shape).toEqual(entry.shape);
      expect(info.dtype).toBe(entry.dtype.toUpperCase());
      expect(await file.read(entry.name)).toEqual(entry.data);
    }
    expect([...viewAs('i32', await file.read('ids'))]).toEqual([128000, -1, 0, 2 ** 31 - 1]);
  });

  it('is deterministic, pads the header with spaces to 8 bytes and aligns every tensor', async () => {
    const bytes = serializeSafetensors(ENTRIES, { format: 'pt' });
    expect(serializeSafetensors([...ENTRIES].reverse(), { format: 'pt' })).toEqual(bytes);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(header).toMatch(/^\{"__metadata__":\{"format":"pt"\},/);
    expect(header).toMatch(/\} *$/);
    const file = await SafetensorsFile.open(memorySource(bytes));
    // Larger elements first, then names: f64, then the 4-byte ones by name, ..., so offsets stay aligned.
    expect(file.names()).toEqual(['scalar', '0', 'a.f32', 'ids', 'b.bf16', 'empty', 'flags']);
    for (const name of file.names()) {
      const { byteOffset, dtype } = file.info(name);
      const size = { F64: 8, F32: 4, U32: 4, I32: 4, BF16: 2, F16: 2, U8: 1 }[dtype as string]!;
      expect(byteOffset % size, name).toBe(0);
    }
  });

  it('writes a file with no tensors', async () => {
    const file = await SafetensorsFile.open(memorySource(serializeSafetensors([])));
    expect(file.names()).toEqual([]);
    expect(file.metadata).toEqual({});
  });

  it('refuses inconsistent entries', () => {
    const data = new Uint8Array(8);
    const bad: [Partial<SafetensorsEntry>, RegExp][] = [
      [{ shape: [3] }, /needs 12 bytes, data has 8/],
      [{ shape: [-2] }, /non-negative integers/],
      [{ shape: [1.5] }, /non-negative integers/],
      [{ dtype: 'f64' as never }, /unknown dtype 'f64'/],
      [{ name: '__metadata__' }, /reserved/],
    ];
    for (const [change, message] of bad) {
      const entry = { name: 't', dtype: 'f32', shape: [2], data, ...change } as SafetensorsEntry;
      expect(() => serializeSafetensors([entry])).toThrow(SafetensorsError);
      expect(() => serializeSafetensors([entry])).toThrow(message);
    }
    const ok: SafetensorsEntry = { name: 't', dtype: 'f32', shape: [2], data };
    expect(() => serializeSafetensors([ok, ok])).toThrow(/tensor 't': duplicate tensor name/);
    expect(() => serializeSafetensors([ok], { n: 5 as unknown as string })).toThrow(/must be a string/);
  });
});

describe('writeSafetensorsFile', () => {
  it('streams the same bytes as serializeSafetensors and leaves no temporary file', async () => {
    const dir = await tempDir();
    const path = join(dir, 'out.safetensors');
    await writeSafetensorsFile(path, ENTRIES, { format: 'pt' });
    expect(new Uint8Array(await readFile(path))).toEqual(serializeSafetensors(ENTRIES, { format: 'pt' }));
    expect(await readdir(dir)).toEqual(['out.safetensors']);
    const file = await openSafetensors(path);
    expect(await file.read('a.f32')).toEqual(ENTRIES[1]!.data);
    await file.close();
    await expect(file.read('a.f32')).rejects.toThrow(SafetensorsError);
  });

  it('validates before creating anything', async () => {
    const dir = await tempDir();
    const entry: SafetensorsEntry = { name: 'x', dtype: 'f32', shape: [5], data: new Uint8Array(4) };
    await expect(writeSafetensorsFile(join(dir, 'bad.safetensors'), [entry])).rejects.toThrow(
      /bad\.safetensors: tensor 'x': shape \[5\] of F32 needs 20 bytes/,
    );
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('tensorEntries', () => {
  it('gives each named tensor its dtype, shape and stored bytes, which round-trip through a file', async () => {
    const a = tensor([1, 2.5, -3, 4], [2, 2], { dtype: 'bf16' });
    const b = tensor([7, 8, 9], [3], { dtype: 'i32' });
    const entries = await tensorEntries([
      ['a', a],
      ['b', b],
    ]);
    expect(entries.map((e) => [e.name, e.dtype, e.shape])).toEqual([
      ['a', 'bf16', [2, 2]],
      ['b', 'i32', [3]],
    ]);
    const file = await SafetensorsFile.open(memorySource(serializeSafetensors(entries)));
    expect([...viewAs('i32', await file.read('b'))]).toEqual([7, 8, 9]);
    expect(await file.read('a')).toEqual(await a.bytes());
  });
});
