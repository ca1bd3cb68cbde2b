/**
 * Finding out what a model directory holds: the Hugging Face layout (`config.json` + safetensors) or Meta's
 * (`params.json` + `consolidated.00.pth`, possibly under `original/`), and reading its config.
 * @module
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { configFromHf, configFromMeta, type LlamaConfig } from '../config.js';

/** What was found in a model directory. */
export interface CheckpointLayout {
  /** `'hf'` (safetensors with HF names, half-split RoPE) or `'meta'` (.pth with Meta names, interleaved RoPE). */
  format: 'hf' | 'meta';
  /** The directory holding the weights. */
  dir: string;
  /** The weights file (`.pth`) or directory (safetensors, single or sharded). */
  weights: string;
  /** The config, read from the directory. */
  config: LlamaConfig;
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${path}: ${(error as Error).message}`);
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (error) {
    throw new Error(`${path} is not valid JSON: ${(error as Error).message}`);
  }
}

async function optionalJson(path: string): Promise<Record<string, unknown> | undefined> {
  return existsSync(path) ? readJson(path) : undefined;
}

async function metaLayout(dir: string): Promise<CheckpointLayout> {
  const params = await readJson(join(dir, 'params.json'));
  const shards = ['consolidated.00.pth', 'consolidated.01.pth'].filter((f) => existsSync(join(dir, f)));
  if (shards.length !== 1) {
    throw new Error(
      `${dir}: expected exactly one consolidated.00.pth (model-parallel checkpoints with several shards are not supported)`,
    );
  }
  // params.json has no RoPE scaling factor: an HF config.json beside it (or one level up, as in HF repos
  // with an original/ folder) has the right one.
  const hf =
    (await optionalJson(join(dir, 'config.json'))) ?? (await optionalJson(join(dirname(dir), 'config.json')));
  const generation = hf && (await optionalJson(join(dirname(dir), 'generation_config.json')));
  return {
    format: 'meta',
    dir,
    weights: join(dir, shards[0]!),
    config: configFromMeta(params, hf, generation),
  };
}

/** Detects the layout of `dir` and reads its config; the error says what a model directory must hold. */
export async function detectLayout(dir: string): Promise<CheckpointLayout> {
  if (!existsSync(dir)) throw new Error(`model directory ${dir} does not exist`);
  const hasSafetensors =
    existsSync(join(dir, 'model.safetensors')) || existsSync(join(dir, 'model.safetensors.index.json'));
  if (existsSync(join(dir, 'config.json')) && hasSafetensors) {
    const config = configFromHf(
      await readJson(join(dir, 'config.json')),
      await optionalJson(join(dir, 'generation_config.json')),
    );
    return { format: 'hf', dir, weights: dir, config };
  }
  if (existsSync(join(dir, 'params.json'))) return metaLayout(dir);
  if (existsSync(join(dir, 'original', 'params.json'))) return metaLayout(join(dir, 'original'));
  throw new Error(
    `${dir} is not a Llama checkpoint: expected config.json with model.safetensors (or model.safetensors.index.json), ` +
      'or params.json with consolidated.00.pth',
  );
}
