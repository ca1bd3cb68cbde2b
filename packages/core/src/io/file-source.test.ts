import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openFileSource } from './file-source.js';

let dir: string | undefined;
afterAll(async () => {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

describe('openFileSource', () => {
  it('reads ranges of a file with positional reads, and refuses reads after close', async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-source-'));
    const path = join(dir, 'bytes.bin');
    const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) & 0xff);
    await writeFile(path, bytes);
    const source = await openFileSource(path);
    expect(source.size).toBe(bytes.length);
    expect(await source.read(0, 4)).toEqual(bytes.subarray(0, 4));
    // Compared with Buffer.equals: deep-equality on megabytes of elements is slow.
    const big = await source.read(1_000_003, 2_000_000);
    expect(Buffer.from(big).equals(bytes.subarray(1_000_003, 3_000_003))).toBe(true);
    expect(await source.read(bytes.length, 0)).toEqual(new Uint8Array(0));
    await expect(source.read(bytes.length - 1, 2)).rejects.toThrow(RangeError);
    await source.close?.();
    await source.close?.(); // closing twice is harmless
    await expect(source.read(0, 1)).rejects.toThrow(/after close/);
  });

  it('reads into memory the caller lends when it is large enough, else into a new array', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'file-source-'));
    const path = join(dir, 'into.bin');
    const bytes = new Uint8Array(1000).map((_, i) => i & 0xff);
    await writeFile(path, bytes);
    const source = await openFileSource(path);
    const lent = new Uint8Array(600);
    const got = await source.read(100, 500, lent);
    expect(got.buffer).toBe(lent.buffer); // a view of the lent memory: no new allocation
    expect([got.byteOffset, got.byteLength]).toEqual([0, 500]);
    expect(got).toEqual(bytes.subarray(100, 600));
    const small = new Uint8Array(10);
    const fresh = await source.read(0, 20, small);
    expect(fresh.buffer).not.toBe(small.buffer);
    expect(fresh).toEqual(bytes.subarray(0, 20));
    await source.close?.();
  });

  it('reports a file that shrank after opening', async () => {
    dir ??= await mkdtemp(join(tmpdir(), 'file-source-'));
    const path = join(dir, 'shrinks.bin');
    await writeFile(path, new Uint8Array(100));
    const source = await openFileSource(path);
    await writeFile(path, new Uint8Array(10));
    await expect(source.read(0, 100)).rejects.toThrow(/ended at byte 10, expected 100 bytes/);
    await source.close?.();
  });

  it('fails to open a missing file', async () => {
    await expect(openFileSource(join(tmpdir(), 'no-such-dir-x7', 'f'))).rejects.toThrow(/ENOENT/);
  });
});
