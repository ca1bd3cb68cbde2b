import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpu, memorySource, randn, SafetensorsFile, serializeSafetensors, tensorEntries } from '@proj/core';
import { testDevice } from '@proj/ops/testing';
import { afterAll, describe, expect, it } from 'vitest';
import type { LlamaConfig } from '../config.js';
import { generate } from '../generate.js';
import type { Llama } from '../model.js';
import { LLAMA32_1B } from '../presets.js';
import { writeHfCheckpoint } from '../random-checkpoint.js';
import { randomHfTensors, randomLlama } from '../random-model.js';
import { interleavedToHalfSplit, type LoadTime, loadLlamaFrom } from './load.js';
import { loadLlama } from './load-dir.js';
import { safetensorsSource } from './source.js';

const TINY: LlamaConfig = {
  hiddenSize: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 4,
  intermediateSize: 24,
  vocabSize: 40,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  maxPositions: 64,
  bosTokenId: 1,
  eosTokenIds: [2],
};

const root = mkdtempSync(join(tmpdir(), 'llama3-load-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('loadLlama', () => {
  it('loads what writeHfCheckpoint wrote and computes the same as the in-memory model', async () => {
    const dir = await writeHfCheckpoint(join(root, 'ok'), TINY, randomHfTensors(TINY, { seed: 3 }));
    const progress: number[] = [];
    const times: LoadTime[] = [];
    const t0 = performance.now();
    const loaded = await loadLlama(dir, {
      onProgress: (p) => {
        progress.push(p.loadedBytes);
        times.push(p.time);
      },
    });
    const wallMs = performance.now() - t0;
    const memory = randomLlama(TINY, { seed: 3 });
    expect(progress.length).toBe(2 + 9 * TINY.layers); // embedding, norm, 9 per layer (tied: no head)
    expect(progress).toEqual([...progress].sort((x, y) => x - y));
    // The time parts only grow, every chunk was copied (some time in fill), and they fit in the wall time.
    for (const part of ['readWaitMs', 'deviceWaitMs', 'fillMs'] as const) {
      const series = times.map((t) => t[part]);
      expect(series).toEqual([...series].sort((x, y) => x - y));
    }
    const last = times.at(-1)!;
    expect(last.fillMs).toBeGreaterThan(0);
    expect(last.readWaitMs + last.deviceWaitMs + last.fillMs).toBeLessThanOrEqual(wallMs);
    const greedy = async (m: Llama) => {
      const ids: number[] = [];
      for await (const t of generate(m, [1, 5, 9, 3], { temperature: 0, maxNewTokens: 8, stopIds: [] }))
        ids.push(t.id);
      return ids;
    };
    const ids = await greedy(loaded);
    expect(ids).toHaveLength(8);
    expect(ids).toEqual(await greedy(memory));
    loaded.dispose();
    memory.dispose();
  });

  it('streams tensors in chunks (odd sizes included) to the CPU and to WebGPU with the same result', async () => {
    const dir = await writeHfCheckpoint(join(root, 'chunks'), TINY, randomHfTensors(TINY, { seed: 5 }));
    const reference = await loadLlama(dir);
    const gpu = await testDevice();
    for (const device of [cpu, gpu]) {
      if (!device) continue;
      // 1028 bytes: not a multiple of any row, so chunks end mid-row and the last chunk is short.
      const chunked = await loadLlama(dir, { device, chunkBytes: 1028 });
      for (const [i, layer] of chunked.weights.layers.entries()) {
        expect(await layer.wqkv.bytes()).toEqual(await reference.weights.layers[i]!.wqkv.bytes());
        expect(await layer.wGateUp.bytes()).toEqual(await reference.weights.layers[i]!.wGateUp.bytes());
      }
      expect(await chunked.weights.embedding.bytes()).toEqual(await reference.weights.embedding.bytes());
      chunked.dispose();
    }
    gpu?.destroy();
    reference.dispose();
  });

  it('names the tensor whose shape does not match the config', async () => {
    const tensors = randomHfTensors(TINY);
    tensors.set('model.layers.1.mlp.up_proj.weight', randn([25, 16], { dtype: 'bf16' }));
    const dir = await writeHfCheckpoint(join(root, 'shape'), TINY, tensors);
    await expect(loadLlama(dir)).rejects.toThrow(
      'checkpoint tensor model.layers.1.mlp.up_proj.weight has shape [25, 16], but the config implies [24, 16]',
    );
  });

  it('lists missing tensors and reports unexpected ones (an error when strict)', async () => {
    const tensors = randomHfTensors(TINY);
    tensors.delete('model.norm.weight');
    const missing = await writeHfCheckpoint(join(root, 'missing'), TINY, tensors);
    await expect(loadLlama(missing)).rejects.toThrow(
      'checkpoint is missing 1 tensor(s) the config implies: model.norm.weight',
    );

    const extra = randomHfTensors(TINY);
    extra.set('model.layers.0.self_attn.q_proj.bias', randn([16]));
    const dir = await writeHfCheckpoint(join(root, 'extra'), TINY, extra);
    const warnings: string[] = [];
    (await loadLlama(dir, { onWarning: (w) => warnings.push(w) })).dispose();
    expect(warnings).toEqual([
      'checkpoint has 1 tensor(s) the model does not use: model.layers.0.self_attn.q_proj.bias',
    ]);
    await expect(loadLlama(dir, { strict: true })).rejects.toThrow('does not use');
  });

  it('rejects integer weights, a missing directory and a folder that is not a checkpoint', async () => {
    const tensors = randomHfTensors(TINY);
    tensors.set('model.norm.weight', randn([16], { dtype: 'i32' }));
    const dir = await writeHfCheckpoint(join(root, 'int'), TINY, tensors);
    await expect(loadLlama(dir)).rejects.toThrow('model.norm.weight has dtype i32');
    await expect(loadLlama(join(root, 'nope'))).rejects.toThrow('does not exist');
    const empty = join(root, 'empty');
    await writeHfCheckpoint(empty, TINY);
    rmSync(join(empty, 'model.safetensors'));
    writeFileSync(join(empty, 'notes.txt'), 'hi');
    await expect(loadLlama(empty)).rejects.toThrow('is not a Llama checkpoint');
  });

  it('checks the checkpoint against a preset before reading any tensor', async () => {
    const dir = await writeHfCheckpoint(join(root, 'preset'), TINY);
    await expect(loadLlama(dir, { preset: LLAMA32_1B })).rejects.toThrow(
      'checkpoint does not match the preset: hiddenSize is 16, the preset says 2048',
    );
    (await loadLlama(dir, { preset: TINY })).dispose();
  });

  it('rejects a config.json that is not JSON, naming the file', async () => {
    const dir = await writeHfCheckpoint(join(root, 'badjson'), TINY);
    writeFileSync(join(dir, 'config.json'), '{ "hidden_size": ');
    await expect(loadLlama(dir)).rejects.toThrow('config.json is not valid JSON');
  });
});

describe('loadLlamaFrom', () => {
  it('loads from any byte source the same model as loadLlama, and leaves the source open', async () => {
    const entries = await tensorEntries(randomHfTensors(TINY, { seed: 4 }));
    let closed = false;
    const bytes = memorySource(serializeSafetensors(entries));
    const file = await SafetensorsFile.open({ ...bytes, close: async () => void (closed = true) });
    const model = await loadLlamaFrom(safetensorsSource(file), TINY);
    expect(closed).toBe(false); // the caller's to close
    const memory = randomLlama(TINY, { seed: 4 });
    const logits = (m: Llama) => m.forward([1, 5, 9], m.createCache(8)).toArray();
    expect(await logits(model)).toEqual(await logits(memory));
    await expect(loadLlamaFrom(safetensorsSource(file), { ...TINY, layers: 3 })).rejects.toThrow(
      /missing 9 tensor\(s\) the config implies: model\.layers\.2\./,
    );
    model.dispose();
    memory.dispose();
  });
});

describe('interleavedToHalfSplit', () => {
  it("reorders each head's rows from (2i, 2i+1) pairs to (i, i + hd/2)", () => {
    // 2 heads of 4 rows, 1 byte per row: Meta rows h*4 + [0,1,2,3] = (pair 0: 0,1), (pair 1: 2,3).
    const meta = Uint8Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
    // HF order per head: the first halves of the pairs (0, 2), then the second halves (1, 3).
    expect([...interleavedToHalfSplit(meta, 2, 4, 1)]).toEqual([0, 2, 1, 3, 10, 12, 11, 13]);
  });
});
