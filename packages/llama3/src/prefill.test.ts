import { cpu, type Device } from '@proj/core';
import type { WebGpuDevice } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaConfig } from './config.js';
import type { Llama } from './model.js';
import { randomLlama } from './random-model.js';

const CONFIG: LlamaConfig = {
  hiddenSize: 64,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 16,
  intermediateSize: 128,
  vocabSize: 300,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  maxPositions: 256,
  bosTokenId: 1,
  eosTokenIds: [2],
};

const prompt = Array.from({ length: 45 }, (_, i) => (i * 37 + 5) % 300);

/** The last position's logits of `ids`, prefilled in passes of `chunk` (all at once without). */
async function lastLogits(model: Llama, ids: number[], chunk?: number): Promise<Float32Array> {
  const cache = model.createCache(64);
  const logits = chunk ? model.prefill(ids, cache, chunk) : model.forward(ids, cache);
  expect(logits.shape).toEqual([1, CONFIG.vocabSize]);
  expect(cache.length).toBe(ids.length);
  const values = (await logits.toArray()) as Float32Array;
  logits.dispose();
  cache.dispose();
  return values;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

describe('Llama.prefill: a prompt in passes of a few tokens', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // The passes attend to the keys and values the earlier ones cached, at their positions: the same math as
  // one pass. On the CPU each output is the same sum in the same order, so the logits are equal to the
  // last bit; a GPU picks its matrix kernels by the number of rows, so the sums may be ordered differently:
  // f32 rounding over two layers of sums of 64-128 terms, against logits of a few units: 1e-4 (lavapipe
  // measured 2e-6; a wrong position or a missing key moves them by tenths).
  it.for([
    ['cpu', 0],
    ['webgpu', 1e-4],
  ] as const)('gives the logits of one forward pass on %s', async ([kind, tolerance], { skip }) => {
    const device: Device | undefined = kind === 'cpu' ? cpu : gpu;
    if (!device) return skip('no WebGPU adapter');
    const model = randomLlama(CONFIG, { seed: 3, device });
    const whole = await lastLogits(model, prompt);
    for (const chunk of [1, 3, 8, 9, 44, 45, 512]) {
      expect(maxAbsDiff(await lastLogits(model, prompt, chunk), whole), `chunk ${chunk}`).toBeLessThanOrEqual(
        tolerance,
      );
    }
    model.dispose();
  });

  it('checks the whole prompt before the first pass, so a bad one leaves the cache as it was', () => {
    const model = randomLlama(CONFIG, { seed: 3, device: cpu });
    const cache = model.createCache(40);
    model.prefill([1, 2, 3], cache, 2);
    expect(() => model.prefill([...prompt.slice(0, 10), 300], cache, 2)).toThrow(
      'prefill: token id 300 is outside the vocabulary [0, 300)',
    );
    expect(() => model.prefill(prompt, cache, 2)).toThrow(
      "prefill: 3 cached + 45 new tokens exceed the cache's 40 positions",
    );
    expect(() => model.prefill([], cache)).toThrow('prefill: no tokens');
    expect(() => model.prefill([1], cache, 0)).toThrow('prefill: chunk must be a positive integer, got 0');
    expect(cache.length).toBe(3);
    cache.dispose();
    model.dispose();
  });

  it('holds the activations of one pass, not of the whole prompt', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...CONFIG, intermediateSize: 2048 }, { seed: 4, device: gpu });
    const long = Array.from({ length: 240 }, (_, i) => (i * 7) % 300);
    const held = async (chunk: number) => {
      gpu!.trim(); // the pool's spare buffers go: what it holds after the prompt is what the prompt needed
      const cache = model.createCache(240);
      model.prefill(long, cache, chunk).dispose();
      await gpu!.sync();
      const bytes = gpu!.memory.liveBytes + gpu!.memory.pooledBytes;
      cache.dispose();
      return bytes;
    };
    const onePass = await held(240);
    const inPasses = await held(16);
    // The MLP's [S, 2F] f32 alone is 240 x 4096 x 4 = 3.75 MiB in one pass, 0.25 MiB in passes of 16.
    expect(onePass - inPasses).toBeGreaterThan(3 * 2 ** 20);
    model.dispose();
  });
});
