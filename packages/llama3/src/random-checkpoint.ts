/**
 * Writing a checkpoint directory with seeded random weights (Node only).
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Tensor, tensorEntries } from '@proj/core';
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
  await writeSafetensorsFile(join(dir, 'model.safetensors'), await tensorEntries(tensors));
  return dir;
}
