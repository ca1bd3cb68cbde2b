/**
 * The published Llama 3 architectures as literal configs: code written against a preset gets its dims as
 * literal types, so the compiler checks shapes (`Tensor<readonly [S, 2048]>` for Llama 3.2 1B).
 * @module
 */
import type { LlamaConfig } from './config.js';

const llama3Eos = [128001, 128008, 128009] as const; // <|end_of_text|>, <|eom_id|>, <|eot_id|>
const llama31Scaling = {
  factor: 8,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
} as const;
const llama32Scaling = {
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
} as const;

/** Llama 3 8B (April 2024): 8k context, plain RoPE. */
export const LLAMA3_8B = {
  hiddenSize: 4096,
  layers: 32,
  heads: 32,
  kvHeads: 8,
  headDim: 128,
  intermediateSize: 14336,
  vocabSize: 128256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  maxPositions: 8192,
  bosTokenId: 128000,
  eosTokenIds: [128001, 128009],
} as const satisfies LlamaConfig;

/** Llama 3.1 8B: the same weights' shapes, 128k context through RoPE scaling (factor 8). */
export const LLAMA31_8B = {
  ...LLAMA3_8B,
  ropeScaling: llama31Scaling,
  maxPositions: 131072,
  eosTokenIds: llama3Eos,
} as const satisfies LlamaConfig;

/** Llama 3.2 1B: 16 layers of width 2048, tied embeddings, RoPE scaling factor 32. */
export const LLAMA32_1B = {
  hiddenSize: 2048,
  layers: 16,
  heads: 32,
  kvHeads: 8,
  headDim: 64,
  intermediateSize: 8192,
  vocabSize: 128256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: llama32Scaling,
  tieWordEmbeddings: true,
  maxPositions: 131072,
  bosTokenId: 128000,
  eosTokenIds: llama3Eos,
} as const satisfies LlamaConfig;

/** Llama 3.2 3B: 28 layers of width 3072, 24 heads of 128, tied embeddings, RoPE scaling factor 32. */
export const LLAMA32_3B = {
  ...LLAMA32_1B,
  hiddenSize: 3072,
  layers: 28,
  heads: 24,
  headDim: 128,
} as const satisfies LlamaConfig;

/** Every preset by name. */
export const PRESETS = {
  'llama3-8b': LLAMA3_8B,
  'llama3.1-8b': LLAMA31_8B,
  'llama3.2-1b': LLAMA32_1B,
  'llama3.2-3b': LLAMA32_3B,
} as const;
