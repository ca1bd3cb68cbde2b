/**
 * A Llama-3.2-1B-shaped checkpoint with seeded random bf16 weights, written once on demand into a cache
 * directory outside the repository (it is 2.5 GB), so the end-to-end benchmark runs real-sized work
 * without downloading Meta's weights. Tensors are generated and written one at a time.
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, open, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { f32ToBf16, numel } from '@proj/core';
import { expectedHfTensors, hfConfigJson, type LlamaConfig } from '@proj/llama3';

/** Where generated benchmark checkpoints live (`$PROJ_BENCH_CACHE` or `~/.cache/proj-bench`). */
export function benchCacheDir(): string {
  return process.env.PROJ_BENCH_CACHE ?? join(homedir(), '.cache', 'proj-bench');
}

/** bf16 values with the given std (uniform, which is as good as normal for timing), from a fast seeded generator. */
function randomBf16(count: number, std: number, mean: number, seed: number): Uint8Array {
  const out = new Uint16Array(count);
  // A uniform in [-a, a] has std a / sqrt(3).
  const a = std * Math.sqrt(3);
  let s = (seed * 2654435761) >>> 0 || 1;
  // Precompute a table of 4096 bf16 values and pick from it: generation speed matters at 1.2 billion values.
  const table = new Uint16Array(4096);
  for (let i = 0; i < table.length; i++)
    table[i] = f32ToBf16(mean + a * ((2 * (i + 0.5)) / table.length - 1));
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = table[(s >>> 0) & 4095]!;
  }
  return new Uint8Array(out.buffer);
}

/** Writes (once) and returns the directory of a random checkpoint of `config` in the HF layout. */
export async function syntheticCheckpoint(
  name: string,
  config: LlamaConfig,
  log: (line: string) => void,
): Promise<string> {
  const dir = join(benchCacheDir(), name);
  if (existsSync(join(dir, 'model.safetensors'))) return dir;
  await mkdir(dir, { recursive: true });
  log(`generating ${name} into ${dir} (once)`);
  const tensors = [...expectedHfTensors(config)];
  // safetensors layout: 8-byte header length, JSON header, then the data in order.
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [tensorName, slot] of tensors) {
    const bytes = numel(slot.shape) * 2;
    header[tensorName] = { dtype: 'BF16', shape: slot.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const partial = join(dir, 'model.safetensors.partial');
  const file = await open(partial, 'w');
  try {
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(json.length), true);
    await file.write(prefix);
    await file.write(new TextEncoder().encode(json));
    for (const [i, [, slot]] of tensors.entries()) {
      const norm = slot.role === 'norm' || slot.role === 'attentionNorm' || slot.role === 'ffnNorm';
      const std = slot.role === 'embedding' ? 0.1 : norm ? 0.1 : 1 / Math.sqrt(slot.shape[1]!);
      await file.write(randomBf16(numel(slot.shape), std, norm ? 1 : 0, i + 1));
    }
  } finally {
    await file.close();
  }
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hfConfigJson(config), null, 2)}\n`);
  await rename(partial, join(dir, 'model.safetensors'));
  return dir;
}
