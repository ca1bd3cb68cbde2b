/**
 * Models with seeded random weights, for demos, tests and benchmarks that must run without downloads.
 * The distributions are those of the reference fixtures: linear weights N(0, 1/fan_in), norm weights
 * 1 + N(0, 0.1^2), embeddings N(0, 0.1^2), so logits have a std of about 1. Random weights produce
 * random text.
 * @module
 */
import { cpu, cpuData, type Device, type DType, randn, type Tensor } from '@proj/core';
import type { LlamaConfig } from './config.js';
import { Llama, type LlamaOptions } from './model.js';
import { expectedHfTensors, WeightAssembler } from './weights.js';

/** Options of {@link randomHfTensors} and {@link randomLlama}. */
export interface RandomWeightsOptions {
  /** Seed of the first tensor; each tensor uses the next seed. Default 0. */
  seed?: number;
  /** Storage dtype of the weights (default bf16, as checkpoints ship). */
  dtype?: 'f32' | 'f16' | 'bf16';
  /** Where the weights go (default: the CPU). */
  device?: Device;
}

function stdFor(role: string, shape: readonly number[]): { mean: number; std: number } {
  if (role === 'embedding') return { mean: 0, std: 0.1 };
  if (role === 'norm' || role === 'attentionNorm' || role === 'ffnNorm') return { mean: 1, std: 0.1 };
  return { mean: 0, std: 1 / Math.sqrt(shape[1]!) };
}

/** Seeded random weights for `config`, keyed by HF tensor name (tied configs have no `lm_head.weight`). */
export function randomHfTensors(
  config: LlamaConfig,
  options: RandomWeightsOptions = {},
): Map<string, Tensor> {
  const dtype: DType = options.dtype ?? 'bf16';
  let seed = options.seed ?? 0;
  const out = new Map<string, Tensor>();
  for (const [name, slot] of expectedHfTensors(config)) {
    out.set(
      name,
      randn(slot.shape, {
        seed: seed++,
        dtype,
        device: options.device ?? cpu,
        ...stdFor(slot.role, slot.shape),
      }),
    );
  }
  return out;
}

/** A model with seeded random weights, built in memory (`compute` as in {@link LlamaOptions}). */
export function randomLlama<const C extends LlamaConfig>(
  config: C,
  options: RandomWeightsOptions & LlamaOptions & { contextLength?: number } = {},
): Llama<C> {
  const device = options.device ?? cpu;
  const tensors = randomHfTensors(config, { ...options, device: cpu });
  const weights = new WeightAssembler(config, device);
  for (const [name, slot] of expectedHfTensors(config)) {
    const t = tensors.get(name)!;
    weights.add(
      slot,
      new Uint8Array(cpuData(t).buffer, cpuData(t).byteOffset, cpuData(t).byteLength),
      t.dtype,
    );
  }
  return new Llama(config, weights.weights(), device, options.contextLength, options);
}

/** The HF `config.json` of a config. */
export function hfConfigJson(config: LlamaConfig): Record<string, unknown> {
  const s = config.ropeScaling;
  return {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.layers,
    num_attention_heads: config.heads,
    num_key_value_heads: config.kvHeads,
    head_dim: config.headDim,
    intermediate_size: config.intermediateSize,
    vocab_size: config.vocabSize,
    rms_norm_eps: config.rmsNormEps,
    rope_theta: config.ropeTheta,
    rope_scaling: s && {
      rope_type: 'llama3',
      factor: s.factor,
      low_freq_factor: s.lowFreqFactor,
      high_freq_factor: s.highFreqFactor,
      original_max_position_embeddings: s.originalMaxPositions,
    },
    tie_word_embeddings: config.tieWordEmbeddings,
    max_position_embeddings: config.maxPositions,
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenIds.length === 1 ? config.eosTokenIds[0] : config.eosTokenIds,
    torch_dtype: 'bfloat16',
  };
}
