import { type ByteSource, memorySource, Rng } from '@proj/core';
import { openFileSource } from '@proj/core/node';
import { describe, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../../../test-support/fixtures.js';
import { crc32 } from './crc32.js';
import { PthError } from './errors.js';
import { stateDictPickle, type TensorSpec } from './pickle-writer.fixture.js';
import { openPth } from './pth-file.js';
import { ZipArchive } from './zip.js';
import { buildZip, type ZipInput } from './zip-writer.fixture.js';

/** A seeded generator (core's mulberry32 `Rng`), so every fuzz run (and any failure) is reproducible. */
function seeded(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** A checkpoint as its records: the pickle, and every other record (storages, version, ...). */
interface Base {
  name: string;
  prefix: string;
  pickle: Uint8Array;
  others: ZipInput[];
}

function syntheticBase(): Base {
  const tensors: TensorSpec[] = [
    {
      name: 'tok_embeddings.weight',
      key: '0',
      storageType: 'BFloat16Storage',
      storageNumel: 40,
      offset: 0,
      size: [10, 4],
    },
    {
      name: 'layers.0.attention.wq.weight',
      key: '1',
      storageType: 'FloatStorage',
      storageNumel: 16,
      offset: 0,
      size: [4, 4],
    },
    { name: 'norm.weight', key: '1', storageType: 'FloatStorage', storageNumel: 16, offset: 12, size: [4] },
    { name: 'ids', key: '2', storageType: 'IntStorage', storageNumel: 3, offset: 0, size: [3] },
    { name: 'h', key: '3', storageType: 'HalfStorage', storageNumel: 7000, offset: 5, size: [2, 30, 100] },
  ];
  const storages: [string, number][] = [
    ['0', 80],
    ['1', 64],
    ['2', 12],
    ['3', 14000],
  ];
  const others = storages.map(([key, n]) => ({
    name: `archive/data/${key}`,
    data: new Uint8Array(n).fill(7),
  }));
  return { name: 'synthetic', prefix: 'archive', pickle: stateDictPickle(tensors), others };
}

async function fixtureBase(): Promise<Base> {
  const zip = await ZipArchive.open(
    await openFileSource(fixture('tiny-llama32-tied/original/consolidated.00.pth')),
  );
  const others: ZipInput[] = [];
  let pickle: Uint8Array = new Uint8Array(0);
  for (const name of zip.names()) {
    const data = await zip.readEntry(name);
    if (name.endsWith('/data.pkl')) pickle = data;
    else others.push({ name, data, crc32: crc32(data) });
  }
  await zip.close();
  return { name: 'fixture', prefix: 'consolidated.00', pickle, others };
}

const OPCODES = [
  0x28, 0x2e, 0x4b, 0x4d, 0x4a, 0x58, 0x71, 0x68, 0x63, 0x52, 0x51, 0x74, 0x86, 0x75, 0x7d, 0x29, 0x62, 0x8a,
];

function mutatePickle(pickle: Uint8Array, rand: () => number): Uint8Array {
  const b = Array.from(pickle);
  const at = Math.floor(rand() * b.length);
  const kind = rand();
  if (kind < 0.35) {
    for (let i = 0, n = 1 + Math.floor(rand() * 4); i < n; i++)
      b[Math.floor(rand() * b.length)]! ^= 1 << Math.floor(rand() * 8);
  } else if (kind < 0.55) {
    b[at] = OPCODES[Math.floor(rand() * OPCODES.length)]!;
  } else if (kind < 0.7) {
    b.splice(at, 1 + Math.floor(rand() * 12));
  } else if (kind < 0.85) {
    const from = Math.floor(rand() * b.length);
    b.splice(at, 0, ...b.slice(from, from + 1 + Math.floor(rand() * 40)));
  } else {
    b.length = at;
  }
  return new Uint8Array(b);
}

function mutateFile(file: Uint8Array, rand: () => number, dataStart: number): Uint8Array {
  const kind = rand();
  if (kind < 0.2) return file.subarray(0, Math.floor(rand() * file.length));
  const out = file.slice();
  for (let i = 0, n = 1 + Math.floor(rand() * 6); i < n; i++) {
    // Mostly in the zip's own structure: local headers up front and the directory at the end.
    const region = rand();
    const at =
      region < 0.5
        ? dataStart + Math.floor(rand() * (out.length - dataStart))
        : region < 0.8
          ? Math.floor(rand() * 64)
          : Math.floor(rand() * out.length);
    if (rand() < 0.5) out[at]! ^= 1 << Math.floor(rand() * 8);
    else out[at] = [0x00, 0xff, 0x50, 0x4b, 0x08, 0x01][Math.floor(rand() * 6)]!;
  }
  return out;
}

/** Opens and reads everything; returns a problem description, or undefined when the outcome is acceptable. */
async function exercise(
  bytes: Uint8Array,
  label: string,
  counts: { ok: number; refused: number },
): Promise<string | undefined> {
  const inner = memorySource(bytes);
  let bad: string | undefined;
  const source: ByteSource = {
    size: inner.size,
    read: (offset, length) => {
      if (!(offset >= 0 && length >= 0 && offset + length <= inner.size))
        bad = `read(${offset}, ${length}) of ${inner.size}`;
      return inner.read(offset, length);
    },
  };
  try {
    const pth = await openPth(source, label);
    for (const name of pth.names()) {
      try {
        const data = await pth.read(name);
        if (data.byteLength !== pth.info(name).byteLength) return `${label}: '${name}' read the wrong length`;
      } catch (e) {
        if (!(e instanceof PthError)) throw e;
      }
    }
    counts.ok++;
  } catch (e) {
    if (!(e instanceof PthError))
      return `${label}: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`;
    counts.refused++;
  }
  return bad === undefined ? undefined : `${label}: out-of-range ${bad}`;
}

async function fuzz(base: Base, seed: number, pickleCases: number, fileCases: number): Promise<void> {
  const rand = seeded(seed);
  const problems: string[] = [];
  const counts = { ok: 0, refused: 0 };
  const withPickle = (pickle: Uint8Array): Uint8Array =>
    buildZip([{ name: `${base.prefix}/data.pkl`, data: pickle }, ...base.others], { zip64: true });
  const started = performance.now();
  for (let i = 0; i < pickleCases; i++) {
    const problem = await exercise(
      withPickle(mutatePickle(base.pickle, rand)),
      `${base.name} pickle case ${i}`,
      counts,
    );
    if (problem !== undefined) problems.push(problem);
  }
  const file = withPickle(base.pickle);
  const dataStart = file.length - 2000; // roughly the central directory and end records
  for (let i = 0; i < fileCases; i++) {
    const problem = await exercise(
      mutateFile(file, rand, Math.max(0, dataStart)),
      `${base.name} file case ${i}`,
      counts,
    );
    if (problem !== undefined) problems.push(problem);
  }
  expect(problems.slice(0, 20)).toEqual([]);
  // Both outcomes must be common, or the mutations are not reaching the validation.
  expect(counts.ok).toBeGreaterThan((pickleCases + fileCases) / 20);
  expect(counts.refused).toBeGreaterThan((pickleCases + fileCases) / 2);
  expect(performance.now() - started).toBeLessThan(10_000);
}

describe('.pth fuzz', () => {
  it('mutated synthetic checkpoints open and read, or fail with PthError', async () => {
    await fuzz(syntheticBase(), 0x7eb1, 4000, 3000);
  });
});

describeWithShared('.pth fuzz on the real checkpoint', () => {
  it('mutated copies of consolidated.00.pth open and read, or fail with PthError', async () => {
    await fuzz(await fixtureBase(), 0xc0ffee, 1500, 1000);
  });
});
