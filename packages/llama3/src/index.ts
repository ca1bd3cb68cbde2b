/**
 * `@proj/llama3`: Llama 3, 3.1 and 3.2 built from the `@proj/ops` op set: configs and presets, checkpoint
 * loading (HF safetensors and Meta `.pth`), the forward pass with a KV cache, sampling and streaming
 * generation.
 * @packageDocumentation
 */
export * from './checkpoint/layout.js';
export * from './checkpoint/load.js';
export type { TensorSource } from './checkpoint/source.js';
export * from './config.js';
export * from './generate.js';
export * from './hub/index.js';
export * from './model.js';
export * from './presets.js';
export * from './random-model.js';
export * from './rope-frequencies.js';
export * from './sampler.js';
export * from './weights.js';
