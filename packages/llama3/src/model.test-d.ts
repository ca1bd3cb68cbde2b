// Type-level tests: a model built from a literal config (a preset) carries its vocabulary size into the
// type of its logits, so shape mistakes downstream are compile errors.
import { type Tensor, zeros } from '@proj/core';
import { linear, matmul } from '@proj/ops';
import { describe, expectTypeOf, it } from 'vitest';
import { loadLlama } from './checkpoint/load-dir.js';
import type { LlamaConfig } from './config.js';
import type { Llama } from './model.js';
import { LLAMA32_1B } from './presets.js';
import { randomLlama } from './random-model.js';

const TINY = {
  ...LLAMA32_1B,
  hiddenSize: 16,
  layers: 1,
  heads: 2,
  kvHeads: 1,
  headDim: 8,
  intermediateSize: 32,
  vocabSize: 300,
} as const satisfies LlamaConfig;

describe('typed models', () => {
  it('logits have the literal vocabulary size', () => {
    const model = randomLlama(TINY);
    const logits = model.forward([1, 2], model.createCache(4));
    expectTypeOf(logits).toEqualTypeOf<Tensor<readonly [number, 300], 'f32'>>();
    // A [300, 7] projection fits the logits...
    expectTypeOf(matmul(logits, zeros([300, 7]))).toEqualTypeOf<Tensor<readonly [number, 7], 'f32'>>();
    // @ts-expect-error ...a [301, 7] one does not: the compiler knows V = 300
    matmul(logits, zeros([301, 7]));
    // @ts-expect-error a head for another vocabulary size does not fit the logits either
    linear(logits, zeros([5, 128256]));
  });

  it('loading against a preset types the model by it', () => {
    expectTypeOf(loadLlama('dir', { preset: LLAMA32_1B })).resolves.toEqualTypeOf<Llama<typeof LLAMA32_1B>>();
    expectTypeOf(loadLlama('dir')).resolves.toEqualTypeOf<Llama<LlamaConfig>>();
  });
});
