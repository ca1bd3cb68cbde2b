/**
 * What the walkthrough runs on: the device (`auto`, `webgpu` or `cpu`) and the model, from `--model`, else
 * the tiny fixture when the shared folder is there, else a seeded random tiny model; with the tokenizer
 * that fits the model's vocabulary.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpu, type Device } from '@proj/core';
import { type Llama, type LlamaConfig, loadLlama, randomLlama } from '@proj/llama3';
import { createWebGpuDevice } from '@proj/ops';
import { loadTokenizer, TOKENIZER_FILES } from '@proj/tokenizer';
import { byteText, llama3Text, type TokenText } from './text.js';

/** The tiny Llama 3 fixture (real vocabulary, 2 layers of width 64), when the shared folder is present. */
export const FIXTURE_MODEL = fileURLToPath(
  new URL('../../../shared/fixtures/tiny-llama3-gqa', import.meta.url),
);

/** The device kinds `--device` accepts. */
export type DeviceChoice = 'auto' | 'webgpu' | 'cpu';

/** A device and how to let it go (a WebGPU device must be destroyed, or Node does not exit). */
export interface OpenDevice {
  /** The device. */
  device: Device;
  /** What it is, for the header. */
  description: string;
  /** Frees it. */
  close(): void;
}

/** `webgpu` (fails without an adapter), `cpu`, or `auto`: WebGPU when an adapter is there, else the CPU. */
export async function openDevice(choice: DeviceChoice): Promise<OpenDevice> {
  if (choice !== 'cpu') {
    try {
      const gpu = await createWebGpuDevice();
      return { device: gpu, description: `WebGPU: ${gpu.description}`, close: () => gpu.destroy() };
    } catch (error) {
      if (choice === 'webgpu') throw error;
      return {
        device: cpu,
        description: `CPU (no WebGPU adapter: ${(error as Error).message})`,
        close: () => {},
      };
    }
  }
  return { device: cpu, description: 'CPU (the ops run their TypeScript references)', close: () => {} };
}

/** A Llama-3-shaped miniature with the real vocabulary, so the real tokenizer works on random weights. */
export const RANDOM_TINY: LlamaConfig = {
  hiddenSize: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediateSize: 192,
  vocabSize: 128256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  maxPositions: 8192,
  bosTokenId: 128000,
  eosTokenIds: [128001],
};

/** A model and the text side that fits it. */
export interface Source {
  /** The model. */
  model: Llama;
  /** Its tokenizer (or a stand-in). */
  text: TokenText;
  /** Where the model came from, for the header. */
  description: string;
}

async function textFor(model: Llama, dir?: string): Promise<TokenText> {
  if (model.config.vocabSize < 128256) return byteText(model.config.bosTokenId);
  const own = dir && TOKENIZER_FILES.some((f) => existsSync(join(dir, f)));
  return llama3Text(await loadTokenizer(own ? dir : undefined));
}

/** Loads `dir` (HF or Meta layout), else the fixture, else builds a seeded random tiny model. */
export async function openSource(device: Device, dir?: string): Promise<Source> {
  const path = dir ?? (existsSync(join(FIXTURE_MODEL, 'config.json')) ? FIXTURE_MODEL : undefined);
  if (path) {
    const model = await loadLlama(path, { device });
    const what = dir ? path : `${path} (the tiny fixture: random weights, real Llama 3 vocabulary)`;
    return { model, text: await textFor(model, path), description: what };
  }
  const model = randomLlama(RANDOM_TINY, { seed: 1, device });
  return {
    model,
    text: await textFor(model),
    description: 'a seeded random tiny model (no --model given and no fixture found): its text is noise',
  };
}
