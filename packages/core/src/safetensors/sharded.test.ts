import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memorySource } from '../io/byte-source.js';
import { SafetensorsError } from './errors.js';
import { openCheckpoint, writeSafetensorsFile } from './files.js';
import { SafetensorsFile } from './reader.js';
import { isPlainFileName, parseSafetensorsIndex, ShardedSafetensors } from './sharded.js';
import { type SafetensorsEntry, serializeSafetensors } from './writer.js';

const SHARD1 = 'model-00001-of-00002.safetensors';
const SHARD2 = 'model-00002-of-00002.safetensors';

function entry(name: string, fill: number, n = 4): SafetensorsEntry {
  return { name, dtype: 'f32', shape: [n], data: new Uint8Array(n * 4).fill(fill) };
}

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** A directory with two shards (a, b | c) and an index; `index` overrides the index JSON. */
async function shardedDir(index?: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'safetensors-sharded-'));
  dirs.push(dir);
  await writeSafetensorsFile(join(dir, SHARD1), [entry('a', 1), entry('b', 2, 2)], { format: 'pt' });
  await writeSafetensorsFile(join(dir, SHARD2), [entry('c', 3, 8)], { format: 'pt' });
  const json = index ?? { metadata: { total_size: 56 }, weight_map: { a: SHARD1, b: SHARD1, c: SHARD2 } };
  await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify(json));
  return dir;
}

describe('sharded checkpoints', () => {
  it('reads every tensor of every shard through one interface', async () => {
    const dir = await shardedDir();
    for (const path of [dir, join(dir, 'model.safetensors.index.json')]) {
      const ckpt = await openCheckpoint(path);
      expect(ckpt).toBeInstanceOf(ShardedSafetensors);
      expect(ckpt.names()).toEqual(['a', 'b', 'c']);
      expect(ckpt.metadata).toEqual({ total_size: '56' });
      expect(ckpt.info('c').shape).toEqual([8]);
      expect(await ckpt.read('a')).toEqual(new Uint8Array(16).fill(1));
      expect(await ckpt.read('b')).toEqual(new Uint8Array(8).fill(2));
      expect(await ckpt.read('c')).toEqual(new Uint8Array(32).fill(3));
      expect((ckpt as ShardedSafetensors).shardOf('c')).toBe(SHARD2);
      expect(ckpt.has('zzz')).toBe(false);
      expect(() => ckpt.info('zzz')).toThrow(/tensor 'zzz': no such tensor/);
      await ckpt.close();
    }
  });

  it('opens a single model.safetensors in a directory, or any .safetensors path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'safetensors-single-'));
    dirs.push(dir);
    await writeSafetensorsFile(join(dir, 'model.safetensors'), [entry('w', 9)]);
    for (const path of [dir, join(dir, 'model.safetensors')]) {
      const ckpt = await openCheckpoint(path);
      expect(ckpt).toBeInstanceOf(SafetensorsFile);
      expect(await ckpt.read('w')).toEqual(new Uint8Array(16).fill(9));
      await ckpt.close();
    }
    const empty = await mkdtemp(join(tmpdir(), 'safetensors-empty-'));
    dirs.push(empty);
    await expect(openCheckpoint(empty)).rejects.toThrow(
      /no model\.safetensors or model\.safetensors\.index\.json/,
    );
  });

  it('accepts only plain shard file names', () => {
    for (const good of [SHARD1, 'x', 'a..b.safetensors']) expect(isPlainFileName(good), good).toBe(true);
    for (const bad of ['', '.', '..', '../x', '/etc/passwd', 'sub/x', 'a\\b', 'C:x', 'a\0b']) {
      expect(isPlainFileName(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  const hostile: [string, unknown, RegExp][] = [
    [
      'parent-directory shard',
      { weight_map: { a: '../model-00001-of-00002.safetensors' } },
      /not a plain file/,
    ],
    [
      'absolute shard',
      { weight_map: { a: '/etc/passwd' } },
      /tensor 'a': shard '\/etc\/passwd' is not a plain/,
    ],
    ['shard in a subfolder', { weight_map: { a: 'sub/x.safetensors' } }, /not a plain file name/],
    ['dot-dot shard', { weight_map: { a: '..' } }, /not a plain file name/],
    ['non-string shard', { weight_map: { a: 3 } }, /tensor 'a': weight_map value must be/],
    ['no weight_map', { metadata: {} }, /no weight_map object/],
    ['array weight_map', { weight_map: [SHARD1] }, /no weight_map object/],
    ['empty weight_map', { weight_map: {} }, /weight_map is empty/],
    ['array index', [1, 2], /index must be a JSON object/],
    ['metadata not an object', { metadata: 'x', weight_map: { a: SHARD1 } }, /metadata must be an object/],
    ['tensor in the wrong shard', { weight_map: { a: SHARD2, b: SHARD1, c: SHARD2 } }, /tensor 'a'/],
    ['tensor missing from the map', { weight_map: { a: SHARD1, c: SHARD2 } }, /tensor 'b': is in shard/],
    [
      'tensor missing from its shard',
      { weight_map: { a: SHARD1, b: SHARD1, c: SHARD2, d: SHARD2 } },
      /'d'.*no shard/,
    ],
  ];
  for (const [what, index, message] of hostile) {
    it(`rejects an index with ${what}`, async () => {
      const dir = await shardedDir(index);
      const error = await openCheckpoint(dir).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SafetensorsError);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toContain('model.safetensors.index.json');
    });
  }

  it('rejects an index that is not JSON, and a missing shard', async () => {
    const dir = await shardedDir();
    await writeFile(join(dir, 'model.safetensors.index.json'), '{"weight_map": {');
    await expect(openCheckpoint(dir)).rejects.toThrow(/index is not valid JSON/);
    const missing = await shardedDir({ weight_map: { x: 'model-00003-of-00003.safetensors' } });
    await expect(openCheckpoint(missing)).rejects.toThrow(/ENOENT.*model-00003-of-00003/);
  });

  it('rejects a tensor stored in two shards', async () => {
    const dir = await shardedDir({ weight_map: { a: SHARD1, b: SHARD1, c: SHARD2 } });
    await writeSafetensorsFile(join(dir, SHARD2), [entry('c', 3, 8), entry('a', 4)]);
    await expect(openCheckpoint(dir)).rejects.toThrow(
      `tensor 'a': is in two shards, '${SHARD1}' and '${SHARD2}'`,
    );
  });

  it('works with any shard opener (browser-style)', async () => {
    const index = parseSafetensorsIndex({ weight_map: { a: 's1' } }, 'remote');
    const bytes = serializeSafetensors([entry('a', 5)]);
    const ckpt = await ShardedSafetensors.open(index, (name) =>
      SafetensorsFile.open(memorySource(bytes), name),
    );
    expect(await ckpt.read('a')).toEqual(new Uint8Array(16).fill(5));
  });
});
