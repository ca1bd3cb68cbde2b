/**
 * Seeded random weights for the GPT-2-style model: linear weights N(0, 1/fan_in), biases N(0, 0.02^2),
 * LayerNorm gains 1 + N(0, 0.1^2), embeddings N(0, 0.1^2), so the tied logits have a std near 1. Random
 * weights make random bytes (and, with a tied head, greedy decoding soon repeats itself).
 */
import { cpu, type Device, randn } from '@proj/core';
import { Gpt, type GptBlock, type GptConfig, type GptWeights, type Linear, type Norm } from './gpt.js';

/** Options of {@link randomGptWeights}. */
export interface RandomGptOptions {
  /** Seed of the first tensor; each next tensor takes the next seed. Default 0. */
  seed?: number;
  /** Where the weights go (default: the CPU). */
  device?: Device;
}

/** Weights for `config` whose shapes carry the config's literal dims. */
export function randomGptWeights<const C extends GptConfig>(
  config: C,
  options: RandomGptOptions = {},
): GptWeights<C> {
  let seed = options.seed ?? 0;
  const device = options.device ?? cpu;
  const linear = <O extends number, I extends number>(out: O, inp: I): Linear<O, I> => ({
    weight: randn([out, inp], { seed: seed++, std: 1 / Math.sqrt(inp), device }),
    bias: randn([out], { seed: seed++, std: 0.02, device }),
  });
  const norm = <D extends number>(d: D): Norm<D> => ({
    weight: randn([d], { seed: seed++, mean: 1, std: 0.1, device }),
    bias: randn([d], { seed: seed++, std: 0.02, device }),
  });
  const { vocab, context, dim, mlp } = config;
  const block = (): GptBlock<C> => ({
    ln1: norm(dim),
    q: linear(dim, dim),
    k: linear(dim, dim),
    v: linear(dim, dim),
    proj: linear(dim, dim),
    ln2: norm(dim),
    fc: linear(mlp, dim),
    out: linear(dim, mlp),
  });
  return {
    tokens: randn([vocab, dim], { seed: seed++, std: 0.1, device }),
    positions: randn([context, dim], { seed: seed++, std: 0.1, device }),
    blocks: Array.from({ length: config.layers }, block),
    lnF: norm(dim),
  };
}

/** A model with seeded random weights on `options.device`. */
export function randomGpt(config: GptConfig, options: RandomGptOptions = {}): Gpt {
  return new Gpt(config, randomGptWeights(config, options), options.device ?? cpu);
}
