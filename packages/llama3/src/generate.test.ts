import { cpu, cpuData, tensor } from '@proj/core';
import { argmax, GpuGraph, TokenSampler, type WebGpuDevice } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { loadTokenizer, type Tokenizer } from '@proj/tokenizer';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { LlamaConfig } from './config.js';
import { chat, generate, generateText } from './generate.js';
import type { Llama } from './model.js';
import { PromptCache } from './prompt-cache.js';
import { randomLlama } from './random-model.js';

/** A tiny model over the real Llama 3 vocabulary, so that its (random) output can be decoded to text. */
const TINY_LLAMA3: LlamaConfig = {
  hiddenSize: 16,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 4,
  intermediateSize: 32,
  vocabSize: 128256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  maxPositions: 64,
  bosTokenId: 128000,
  eosTokenIds: [128001, 128009],
};

async function collect(
  it: AsyncIterable<{ id: number; text: string }>,
): Promise<{ ids: number[]; text: string }> {
  const ids: number[] = [];
  let text = '';
  for await (const t of it) {
    if (t.id >= 0) ids.push(t.id);
    text += t.text;
  }
  return { ids, text };
}

describe('generate', () => {
  let model: Llama;
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTokenizer();
    model = randomLlama(TINY_LLAMA3, { seed: 1, device: cpu });
  });
  afterAll(() => model.dispose());

  it('streams tokens whose text adds up to the decoded ids', async () => {
    const { ids, text } = await collect(
      generate(model, 'Hello', { tokenizer, temperature: 0, maxNewTokens: 12, stopIds: [] }),
    );
    expect(ids).toHaveLength(12);
    expect(text).toBe(tokenizer.decode(ids));
    expect(
      await generateText(model, 'Hello', { tokenizer, temperature: 0, maxNewTokens: 12, stopIds: [] }),
    ).toBe(text);
  });

  it('is deterministic per seed when sampling', async () => {
    const run = (seed: number) =>
      collect(generate(model, 'Hi', { tokenizer, temperature: 1, seed, maxNewTokens: 10, stopIds: [] }));
    expect((await run(3)).ids).toEqual((await run(3)).ids);
    expect((await run(3)).ids).not.toEqual((await run(4)).ids);
  });

  it('stops at a stop id without yielding it', async () => {
    const { ids } = await collect(
      generate(model, 'Hi', { tokenizer, temperature: 0, maxNewTokens: 12, stopIds: [] }),
    );
    const stop = ids[5]!;
    const first = ids.indexOf(stop);
    const cut = await collect(
      generate(model, 'Hi', { tokenizer, temperature: 0, maxNewTokens: 12, stopIds: [stop] }),
    );
    expect(cut.ids).toEqual(ids.slice(0, first));
  });

  it('cuts the text before a stop string', async () => {
    const { text } = await collect(
      generate(model, 'Hi', { tokenizer, temperature: 0, maxNewTokens: 16, stopIds: [] }),
    );
    const stop = text.slice(Math.floor(text.length / 2), Math.floor(text.length / 2) + 3);
    const cut = await collect(
      generate(model, 'Hi', {
        tokenizer,
        temperature: 0,
        maxNewTokens: 16,
        stopIds: [],
        stopStrings: [stop],
      }),
    );
    expect(cut.text).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('stops when the signal aborts', async () => {
    const controller = new AbortController();
    const got: number[] = [];
    await expect(async () => {
      for await (const t of generate(model, 'Hi', {
        tokenizer,
        temperature: 0,
        maxNewTokens: 50,
        stopIds: [],
        signal: controller.signal,
      })) {
        got.push(t.id);
        if (got.length === 3) controller.abort(new Error('stopped by the user'));
      }
    }).rejects.toThrow('stopped by the user');
    expect(got).toHaveLength(3);
  });

  it('rejects prompts that do not fit, ids outside the vocabulary, and string prompts without a tokenizer', async () => {
    const long = Array.from({ length: 64 }, () => 5);
    await expect(generateText(model, long)).rejects.toThrow(
      'the prompt has 64 tokens, but the context holds 64',
    );
    await expect(generateText(model, [1, 128256])).rejects.toThrow(
      'token id 128256 is outside the vocabulary [0, 128256)',
    );
    await expect(generateText(model, 'Hi')).rejects.toThrow('needs options.tokenizer');
  });

  it('stops at the end of the context', async () => {
    const { ids } = await collect(
      generate(
        model,
        Array.from({ length: 60 }, () => 7),
        { temperature: 0, maxNewTokens: 100, stopIds: [] },
      ),
    );
    // Tokens fed at positions 60..63 fill the cache; the last of them still predicts one more token.
    expect(ids).toHaveLength(5);
  });

  it('forward takes ids on the device, such as the previous argmax, with the same result', async () => {
    const [a, b] = [model.createCache(8), model.createCache(8)];
    model.forward([5, 7], a).dispose();
    model.forward([5, 7], b).dispose();
    const fromHost = await model.forward([3], a).toArray();
    const ids = tensor([3], [1], { dtype: 'i32' });
    expect(await model.forward(ids, b).toArray()).toEqual(fromHost);
    expect(() => model.forward(tensor([3], [1]) as never, b)).toThrow('must be an i32 [S] tensor');
    for (const t of [a, b, ids]) t.dispose();
  });

  it('chat ends at the chat stop tokens', async () => {
    const messages = [{ role: 'user', content: 'Hi' }];
    const { ids } = await collect(chat(model, messages, { tokenizer, temperature: 0, maxNewTokens: 5 }));
    expect(ids.every((id) => id !== tokenizer.specialTokenId('<|eot_id|>'))).toBe(true);
  });
});

describe('generate with a promptCache: a conversation prefills only its new tokens', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());
  const config = { ...TINY_LLAMA3, vocabSize: 300 };
  const first = [1, 2, 3, 4];

  it.for(['cpu', 'webgpu'] as const)(
    'on %s: the next turn runs only what follows, with the ids of a fresh start',
    async (kind, { skip }) => {
      const device = kind === 'cpu' ? cpu : gpu;
      if (!device) return skip('no WebGPU adapter');
      const model = randomLlama(config, { seed: 8, device });
      for (const sampling of [{ temperature: 0 }, { temperature: 0.9, seed: 4, repetitionPenalty: 1.2 }]) {
        const options = { ...sampling, maxNewTokens: 6, stopIds: [] };
        const promptCache = new PromptCache(model);
        const turn1 = await collect(generate(model, first, { ...options, promptCache }));
        // What the cache holds: the prompt and the answer, as far as steps ran with them (the last id read
        // was never an input).
        expect(promptCache.ids).toEqual([...first, ...turn1.ids].slice(0, promptCache.cache.length));
        expect(promptCache.ids).toHaveLength(first.length + 5);
        const second = [...first, ...turn1.ids, 9, 10, 11];
        const prefill = vi.spyOn(model, 'prefill');
        const turn2 = await collect(generate(model, second, { ...options, promptCache }));
        expect(prefill.mock.calls[0]![0]).toEqual(second.slice(first.length + 5)); // the last answer token, 9, 10, 11
        // The same prompt again: all of it is in the cache but its last token, which must run for the logits.
        await collect(generate(model, second, { ...options, promptCache }));
        expect(prefill.mock.calls[1]![0]).toEqual(second.slice(-1));
        // A prompt that shares only the first two tokens reuses those.
        const other = [1, 2, 7, 7, 7];
        const turn3 = await collect(generate(model, other, { ...options, promptCache }));
        expect(prefill.mock.calls[2]![0]).toEqual([7, 7, 7]);
        prefill.mockRestore();
        expect(turn2.ids).toEqual((await collect(generate(model, second, options))).ids);
        expect(turn3.ids).toEqual((await collect(generate(model, other, options))).ids);
        promptCache.dispose();
      }
      const foreign = new PromptCache(randomLlama(config, { seed: 9, device }));
      await expect(collect(generate(model, first, { promptCache: foreign }))).rejects.toThrow(
        'generate: the promptCache belongs to another model',
      );
      foreign.model.dispose();
      foreign.dispose();
      model.dispose();
    },
  );

  it.for(['cpu', 'webgpu'] as const)(
    'on %s: a stop keeps what was read; a failure empties the cache',
    async (kind, { skip }) => {
      const device = kind === 'cpu' ? cpu : gpu;
      if (!device) return skip('no WebGPU adapter');
      const model = randomLlama(config, { seed: 8, device });
      const promptCache = new PromptCache(model);
      const stop = new AbortController();
      const read: number[] = [];
      const run = generate(model, first, {
        temperature: 0,
        maxNewTokens: 20,
        stopIds: [],
        promptCache,
        signal: stop.signal,
      });
      await expect(
        (async () => {
          for await (const t of run) {
            read.push(t.id);
            if (read.length === 3) stop.abort(new Error('enough'));
          }
        })(),
      ).rejects.toThrow('enough');
      expect(promptCache.ids).toEqual([...first, ...read]);
      // Broken logits (the final norm's weight made NaN) fail the generation: nothing it wrote is kept.
      const norm = model.weights.norm;
      if (kind === 'cpu') cpuData(norm).fill(norm.dtype === 'f32' ? Number.NaN : 0xffff);
      else gpu!.write(norm.storage, 0, new Uint8Array(norm.storage.byteLength).fill(0xff));
      await expect(
        collect(generate(model, [...first, ...read, 5], { temperature: 0.7, promptCache })),
      ).rejects.toThrow(
        kind === 'cpu' ? "the model's output is broken" : "sampling: the model's output is broken",
      );
      expect(promptCache.ids).toEqual([]);
      expect(promptCache.cache.length).toBe(0);
      promptCache.dispose();
      model.dispose();
    },
  );
});

describe('generation memory on WebGPU', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('greedy generation, which records (or replays) each step before reading the id, matches step-by-step decoding', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 3, device: gpu });
    const cache = model.createCache(23);
    const expected: number[] = [];
    let logits = model.forward([1, 2, 3], cache);
    for (let step = 0; step < 20; step++) {
      const best = argmax(logits);
      expected.push((await best.toArray())[0]!);
      for (const t of [best, logits]) t.dispose();
      logits = model.forward([expected.at(-1)!], cache);
    }
    for (const t of [logits, cache]) t.dispose();
    const inUse = () => gpu!.memory.liveBytes - gpu!.memory.pooledBytes; // not counting the pool's spares
    await gpu.sync(); // buffers freed while work was being recorded return to the pool at the submit
    const before = inUse();
    const replay = vi.spyOn(GpuGraph.prototype, 'replay');
    const { ids } = await collect(
      generate(model, [1, 2, 3], { temperature: 0, maxNewTokens: 20, stopIds: [] }),
    );
    expect(ids).toEqual(expected);
    // 19 steps after the prompt's: captured, checked, and the other 17 replayed.
    expect(replay.mock.results.filter((r) => r.value === true)).toHaveLength(17);
    replay.mockRestore();
    // Stopping at an id leaves one step recorded past it: its tensors are freed too.
    const stop = await collect(generate(model, [1, 2, 3], { temperature: 0, stopIds: [expected[5]!] }));
    expect(stop.ids).toEqual(expected.slice(0, expected.indexOf(expected[5]!)));
    await gpu.sync();
    expect(inUse()).toBe(before);
    model.dispose();
  });

  it('sampled generation draws on the device and replays its steps: the ids of step-by-step drawing', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 6, device: gpu });
    const options = { temperature: 0.9, topP: 0.95, repetitionPenalty: 1.2, seed: 11 };
    const sampler = new TokenSampler(gpu, 300, options);
    sampler.see([1, 2, 3]);
    const cache = model.createCache(23);
    const token = tensor([0], [1], { dtype: 'i32', device: gpu });
    const expected: number[] = [];
    let logits = model.forward([1, 2, 3], cache);
    for (let step = 0; step < 20; step++) {
      sampler.sample(logits, token);
      expected.push((await token.toArray())[0]!);
      logits.dispose();
      logits = model.forward([expected.at(-1)!], cache);
    }
    for (const t of [logits, cache, token, sampler]) t.dispose();
    expect(new Set(expected).size).toBeGreaterThan(5); // a draw, not a constant
    const inUse = () => gpu!.memory.liveBytes - gpu!.memory.pooledBytes;
    await gpu.sync();
    const before = inUse();
    const replay = vi.spyOn(GpuGraph.prototype, 'replay');
    const { ids } = await collect(generate(model, [1, 2, 3], { ...options, maxNewTokens: 20, stopIds: [] }));
    expect(ids).toEqual(expected);
    expect(replay.mock.results.filter((r) => r.value === true)).toHaveLength(17);
    replay.mockRestore();
    await gpu.sync();
    expect(inUse()).toBe(before); // the sampler's buffers are freed with the generation
    model.dispose();
  });

  it('a generation that fails before its first token (an id outside the vocabulary, a device error) frees what it made', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 7, device: gpu });
    const options = { temperature: 0.9, repetitionPenalty: 1.2, maxNewTokens: 4, stopIds: [] };
    const inUse = () => gpu!.memory.liveBytes - gpu!.memory.pooledBytes;
    await collect(generate(model, [1, 2], options)); // kernels compiled, the pool filled
    await gpu.sync();
    const before = inUse();
    // The model's error names the id, before the sampler (made already, with a penalty to apply) sees it.
    await expect(collect(generate(model, [1, 300], options))).rejects.toThrow(
      'prefill: token id 300 is outside the vocabulary [0, 300)',
    );
    const prefill = vi.spyOn(model, 'prefill').mockImplementation(() => {
      throw new Error('lost the device');
    });
    await expect(collect(generate(model, [1, 2], options))).rejects.toThrow('lost the device');
    prefill.mockRestore();
    await gpu.sync();
    expect(inUse()).toBe(before); // the cache, the id tensor and the sampler's buffers
    model.dispose();
  });

  it('greedyStep / sampleStep refuse a disposed model, ids tensor or sampler, whose buffers a replay would still bind', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 4, device: gpu });
    const cache = model.createCache(8);
    const ids = tensor([1], [1], { dtype: 'i32', device: gpu });
    for (let i = 0; i < 3; i++) model.greedyStep(ids, cache); // captured, checked, replayed
    expect(cache.length).toBe(3);
    const other = tensor([1], [1], { dtype: 'i32', device: gpu });
    other.dispose();
    expect(() => model.greedyStep(other, cache)).toThrow('greedyStep: the ids tensor has been disposed');
    const sampler = new TokenSampler(gpu, 300, {});
    sampler.dispose();
    expect(() => model.sampleStep(ids, cache, sampler)).toThrow('sampleStep: the sampler has been disposed');
    model.dispose();
    expect(() => model.greedyStep(ids, cache)).toThrow('greedyStep: the model has been disposed');
    for (const t of [ids, cache]) t.dispose();
  });

  it('greedyStep on a full cache is an error, not a replay past its end', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 5, device: gpu });
    const cache = model.createCache(4);
    const ids = tensor([1], [1], { dtype: 'i32', device: gpu });
    const replay = vi.spyOn(GpuGraph.prototype, 'replay');
    for (let i = 0; i < 4; i++) model.greedyStep(ids, cache); // captured, checked, replayed twice
    expect(replay.mock.results.filter((r) => r.value === true)).toHaveLength(2);
    expect(() => model.greedyStep(ids, cache)).toThrow(
      "forward: 4 cached + 1 new tokens exceed the cache's 4 positions",
    );
    expect(replay.mock.results.filter((r) => r.value === true)).toHaveLength(2);
    replay.mockRestore();
    expect(cache.length).toBe(4);
    const [id] = await ids.toArray();
    expect(id).toBeGreaterThanOrEqual(0);
    expect(id).toBeLessThan(300);
    for (const t of [ids, cache]) t.dispose();
    model.dispose();
  });

  it('a sampled draw from broken logits is an error when its id is read, not a token', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const model = randomLlama({ ...TINY_LLAMA3, vocabSize: 300 }, { seed: 7, device: gpu });
    const norm = model.weights.norm; // the final norm's weight: NaN makes every logit NaN
    gpu.write(norm.storage, 0, new Uint8Array(norm.storage.byteLength).fill(0xff)); // NaN in any float dtype
    await expect(collect(generate(model, [1, 2, 3], { temperature: 0.8, maxNewTokens: 5 }))).rejects.toThrow(
      "sampling: the model's output is broken",
    );
    model.dispose();
  });

  it.for([
    ['greedy', { temperature: 0 }],
    ['sampled', { temperature: 0.8, repetitionPenalty: 1.1 }],
  ] as const)(
    'generating 1000 tokens twice allocates nothing new the second time (%s)',
    async ([, sampling], { skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      const config = { ...TINY_LLAMA3, vocabSize: 300, maxPositions: 2048 };
      const model = randomLlama(config, { seed: 2, device: gpu });
      const run = () => collect(generate(model, [1, 2, 3], { ...sampling, maxNewTokens: 1000, stopIds: [] }));
      expect((await run()).ids).toHaveLength(1000);
      const after1 = { ...gpu.memory };
      expect((await run()).ids).toHaveLength(1000);
      expect(gpu.memory.created).toBe(after1.created);
      expect(gpu.memory.liveBytes).toBe(after1.liveBytes);
      model.dispose();
    },
  );
});
