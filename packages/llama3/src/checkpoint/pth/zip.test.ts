import { memorySource } from '@proj/core';
import { openFileSource } from '@proj/core/node';
import { describe, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../../../test-support/fixtures.js';
import { ZipError } from './errors.js';
import { ZipArchive } from './zip.js';
import { buildZip } from './zip-writer.fixture.js';

const enc = new TextEncoder();
const FILES = [
  { name: 'arc/data.pkl', data: enc.encode('pickle bytes') },
  { name: 'arc/data/0', data: new Uint8Array(300).map((_, i) => i & 0xff) },
  { name: 'arc/version', data: enc.encode('3\n') },
];

async function open(bytes: Uint8Array): Promise<ZipArchive> {
  return ZipArchive.open(memorySource(bytes), 'test.zip');
}

async function failure(promise: Promise<unknown>): Promise<ZipError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ZipError);
  return error as ZipError;
}

describe('ZipArchive', () => {
  for (const zip64 of [false, true]) {
    it(`reads stored entries (${zip64 ? 'zip64' : 'classic'} end records, with a comment)`, async () => {
      const zip = await open(buildZip(FILES, { zip64, comment: 'hello PK\x05\x06 comment' }));
      expect(zip.names()).toEqual(FILES.map((f) => f.name));
      expect(await zip.readEntry('arc/data.pkl')).toEqual(FILES[0]!.data);
      expect(await zip.readRange('arc/data/0', 10, 5)).toEqual(new Uint8Array([10, 11, 12, 13, 14]));
      expect(await zip.readRange('arc/data/0', 300, 0)).toEqual(new Uint8Array(0));
      expect(zip.entry('arc/version').size).toBe(2);
      await expect(zip.readRange('arc/data/0', 299, 2)).rejects.toThrow(
        /range \[299, 301\) is outside entry/,
      );
      await expect(zip.readRange('arc/data/0', -1, 2)).rejects.toThrow(ZipError);
      expect(() => zip.entry('missing')).toThrow(/test\.zip: no entry 'missing'/);
    });
  }

  it('checks the CRC of entries read whole', async () => {
    const bytes = buildZip(FILES);
    bytes[30 + 'arc/data.pkl'.length + 3]! ^= 0x01;
    const zip = await open(bytes);
    expect((await failure(zip.readEntry('arc/data.pkl'))).message).toMatch(
      /'arc\/data\.pkl' fails its CRC-32/,
    );
  });

  it('refuses compressed and encrypted entries with a clear error', async () => {
    const zip = await open(
      buildZip([
        { ...FILES[1]!, method: 8 },
        { ...FILES[2]!, flags: 1 },
      ]),
    );
    expect((await failure(zip.readRange('arc/data/0'))).message).toMatch(
      /entry 'arc\/data\/0': uses compression method 8; only STORED \(0\)/,
    );
    expect((await failure(zip.readRange('arc/version'))).message).toMatch(/is encrypted/);
  });

  it('rejects every truncation of an archive', async () => {
    const bytes = buildZip(FILES, { zip64: true });
    for (let n = 0; n < bytes.length; n++) {
      const error = await open(bytes.subarray(0, n)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error, `truncated to ${n}`).toBeInstanceOf(ZipError);
    }
  });

  it('rejects non-zips and inconsistent directories', async () => {
    expect((await failure(open(new Uint8Array(100).fill(7)))).message).toMatch(/no end-of-central-directory/);
    expect((await failure(open(new Uint8Array(3)))).message).toMatch(/too short/);

    const classic = buildZip(FILES);
    const eocd = classic.length - 22;
    const withField = (at: number, value: number, size: 2 | 4 = 4): Uint8Array => {
      const b = classic.slice();
      const v = new DataView(b.buffer);
      if (size === 4) v.setUint32(at, value, true);
      else v.setUint16(at, value, true);
      return b;
    };
    expect((await failure(open(withField(eocd + 16, 0xfffffff0)))).message).toMatch(
      /runs past its end record/,
    );
    expect((await failure(open(withField(eocd + 12, 5)))).message).toMatch(/cannot fit/);
    expect((await failure(open(withField(eocd + 10, 2, 2)))).message).toMatch(/bytes after its 2 entries/);
    expect((await failure(open(withField(eocd + 4, 1, 2)))).message).toMatch(/multi-disk/);
    const cdStart = new DataView(classic.buffer).getUint32(eocd + 16, true);
    expect((await failure(open(withField(cdStart, 0x12345678)))).message).toMatch(/entry 0: bad signature/);
    // Entry 1's local header offset pointed at entry 0's header: the names disagree.
    const cd1 = cdStart + 46 + 'arc/data.pkl'.length;
    const moved = await open(withField(cd1 + 42, 0));
    expect((await failure(moved.readRange('arc/data/0'))).message).toMatch(
      /local header names a different file/,
    );
    const grown = withField(cd1 + 24, 350);
    new DataView(grown.buffer).setUint32(cd1 + 20, 350, true);
    const past = await open(grown);
    expect(past.entry('arc/data/0').size).toBe(350);
    expect((await failure(past.readRange('arc/data/0'))).message).toMatch(/runs into the central directory/);
    expect((await failure(open(withField(cd1 + 24, 100_000)))).message).toMatch(
      /STORED entry with size 100000/,
    );
    expect((await failure(open(withField(cd1 + 42, cdStart)))).message).toMatch(/past the entries/);

    const dup = buildZip([FILES[0]!, FILES[0]!]);
    expect((await failure(open(dup))).message).toMatch(/duplicate entry 'arc\/data\.pkl'/);

    const z64 = buildZip(FILES, { zip64: true });
    const locator = z64.length - 22 - 20;
    const bad = z64.slice();
    new DataView(bad.buffer).setBigUint64(locator + 8, 2n ** 60n, true);
    expect((await failure(open(bad))).message).toMatch(/zip64 record offset .* out of range/);
  });
});

describeWithShared('ZipArchive on a torch.save file', () => {
  it('reads the zip64 directory torch writes and checks the pickle CRC', async () => {
    const zip = await ZipArchive.open(
      await openFileSource(fixture('tiny-llama32-tied/original/consolidated.00.pth')),
      'consolidated.00.pth',
    );
    expect(zip.names().length).toBe(23);
    expect(new TextDecoder().decode(await zip.readEntry('consolidated.00/version'))).toBe('3\n');
    const pickle = await zip.readEntry('consolidated.00/data.pkl');
    expect([pickle[0], pickle[1], pickle.at(-1)]).toEqual([0x80, 2, 0x2e]);
    await zip.close();
  });
});
