import { cpuFloats, type Tensor, zeros } from '@proj/core';
import type { KvCache, WebGpuDevice } from '@proj/ops';
import { maxAbsDiff, testDevice } from '@proj/ops/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Gpt, type GptConfig, type GptWeights, TINY_GPT } from './gpt.js';
import { randomGpt, randomGptWeights } from './random-gpt.js';

const PROMPT = [...new TextEncoder().encode('Hello, ops!')]; // 11 byte ids
const STEPS = 6;

/** The last row of `logits [S, V]` on the host. */
async function lastRow(logits: Tensor): Promise<Float32Array> {
  const values = (await logits.toArray()) as Float32Array;
  return values.slice(values.length - TINY_GPT.vocab);
}

const argmaxOf = (row: Float32Array) => row.indexOf(Math.max(...row));

/**
 * Greedy decoding twice, step by step: with KV caches (one new token per call) and by recomputing the whole
 * sequence. Returns the worst last-row difference and both token lists.
 */
async function cachedVsFull(model: Gpt): Promise<{ worst: number; cached: number[]; full: number[] }> {
  const caches: KvCache[] = model.createCache(PROMPT.length + STEPS);
  const cached: number[] = [];
  const full: number[] = [];
  let worst = 0;
  let feed = PROMPT;
  for (let step = 0; step < STEPS; step++) {
    const withCache = model.forward(feed, caches);
    const recomputed = model.forward([...PROMPT, ...cached]);
    const [a, b] = await Promise.all([lastRow(withCache), lastRow(recomputed)]);
    withCache.dispose();
    recomputed.dispose();
    worst = Math.max(worst, maxAbsDiff(a, b).diff);
    cached.push(argmaxOf(a));
    full.push(argmaxOf(b));
    feed = [cached.at(-1)!];
  }
  expect(caches[0]!.length).toBe(PROMPT.length + STEPS - 1);
  for (const c of caches) c.dispose();
  return { worst, cached, full };
}

describe('a GPT-2-style model on the op set (CPU)', () => {
  const model = randomGpt(TINY_GPT, { seed: 7 });
  afterAll(() => model.dispose());

  it('maps [S] ids to [S, V] logits, logging the shapes of the first block', () => {
    const lines: string[] = [];
    const logits = model.forward(PROMPT, undefined, (what, a, b) => lines.push(`${what} [${a}] -> [${b}]`));
    expect(logits.shape).toEqual([PROMPT.length, TINY_GPT.vocab]);
    expect(lines).toContain('q (k, v alike), split into heads [11,64] -> [11,4,16]');
    expect(lines).toContain('LayerNorm 2, fc, GELU [11,64] -> [11,256]');
    logits.dispose();
  });

  it('gives the same logits with a KV cache as the full forward, at every step', async () => {
    // Each position's logits depend only on it and the earlier ones, computed by the same CPU references
    // whether or not the keys came from the cache: equal to the last bit.
    const { worst, cached, full } = await cachedVsFull(model);
    expect(worst).toBe(0);
    expect(cached).toEqual(full);
  });

  it("is causal: position 0's logits do not depend on the tokens after it", async () => {
    const a = await model.forward(PROMPT.slice(0, 1)).toArray();
    const b = await model.forward(PROMPT).toArray();
    expect(maxAbsDiff(a, b.subarray(0, TINY_GPT.vocab)).diff).toBe(0); // causal: the rest cannot leak back
  });

  it('rejects a mis-shaped weight at run time, naming the op and the shapes', () => {
    const good = randomGptWeights(TINY_GPT);
    const block = good.blocks[0]!;
    const transposed = { ...block, fc: { weight: zeros([64, 256]), bias: block.fc.bias } };
    // The compiler rejects this (see new-model.test-d.ts); cast it through to reach the runtime check.
    const bad = { ...good, blocks: [transposed, good.blocks[1]!] } as unknown as GptWeights<GptConfig>;
    expect(() => new Gpt(TINY_GPT, bad, model.device).forward(PROMPT)).toThrow(
      'linear: x [11, 64] has K = 64 but W [64, 256] has K = 256',
    );
    const norm = { ...block, ln2: { weight: zeros([32]), bias: block.ln2.bias } };
    const badNorm = { ...good, blocks: [norm] } as unknown as GptWeights<GptConfig>;
    expect(() => new Gpt(TINY_GPT, badNorm, model.device).forward(PROMPT)).toThrow(
      'layernorm: weight [32] and bias [64] must be [D] for x [11, 64] (D = 64)',
    );
  });
});

describe('the GPT-2-style model on WebGPU matches the CPU', () => {
  let gpu: WebGpuDevice | undefined;
  let onGpu: Gpt | undefined;
  const onCpu = randomGpt(TINY_GPT, { seed: 7 });
  beforeAll(async () => {
    gpu = await testDevice();
    if (gpu) onGpu = randomGpt(TINY_GPT, { seed: 7, device: gpu });
  });
  afterAll(() => {
    onGpu?.dispose();
    onCpu.dispose();
    gpu?.destroy();
  });

  // Tolerance: the same f32 math, but the GPU sums its dot products and norms in f32 in its own order
  // while the CPU references sum in f64; over 2 blocks with |logits| < 3 that is about 1e-6 (lavapipe:
  // 8e-7 to 1.2e-6 over three seeds), so 1e-4 leaves a wide margin and still catches any real mistake (a wrong mask, head split or
  // position moves logits by 1e-2 or more).
  const TOLERANCE = 1e-4;

  it('gives the same logits for every position', async ({ skip }) => {
    if (!onGpu) return skip('no WebGPU adapter');
    const cpuLogits = cpuFloats(onCpu.forward(PROMPT));
    const gpuLogits = onGpu.forward(PROMPT);
    const diff = maxAbsDiff((await gpuLogits.toArray()) as Float32Array, cpuLogits).diff;
    gpuLogits.dispose();
    expect(diff).toBeLessThanOrEqual(TOLERANCE);
  });

  it('gives the same logits with a KV cache as the full forward, at every step', async ({ skip }) => {
    if (!onGpu) return skip('no WebGPU adapter');
    const { worst, cached, full } = await cachedVsFull(onGpu);
    expect(worst).toBeLessThanOrEqual(TOLERANCE); // the cached rows are the same values; only sums reorder
    expect(cached).toEqual(full);
    expect(cached).toEqual((await cachedVsFull(onCpu)).cached); // and the CPU picks the same tokens
  });
});
