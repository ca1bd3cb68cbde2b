/**
 * Writing a checkpoint directory with seeded random weights (Node only).
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Tensor } from '@proj/core';
import { writeSafetensorsFile } from '@proj/core/node';
import type { LlamaConfig } from './config.js';
import { hfConfigJson, randomHfTensors } from './random-model.js';

/**
 * Writes a checkpoint directory in the HF layout (`config.json` + `model.safetensors`) from HF-named
 * tensors; `tensors` defaults to seeded random weights. Returns `dir`.
 */
export async function writeHfCheckpoint(
  dir: string,
  config: LlamaConfig,
  tensors: Map<string, Tensor> = randomHfTensors(config),
): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), `${JSON.stringify(hfConfigJson(config), null, 2)}\n`);
  const entries = await Promise.all(
    [...tensors].map(async ([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: await t.bytes() })),
  );
  await writeSafetensorsFile(join(dir, 'model.safetensors'), entries);
  return dir;
}
