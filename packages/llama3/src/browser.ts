/**
 * `@proj/llama3` in a browser: everything but what reads or writes files (checkpoint directories, the
 * Hugging Face cache). Bundlers pick this entry through the package's `browser` export condition; load
 * weights with `loadLlamaFrom` over `openHttpCheckpoint` (see `docs/browser.md`).
 * @packageDocumentation
 */
export * from './checkpoint/load.js';
export { pthSource, safetensorsSource, type TensorSource } from './checkpoint/source.js';
export * from './config.js';
export * from './generate.js';
export * from './model.js';
export * from './presets.js';
export * from './prompt-cache.js';
export * from './random-model.js';
export * from './reference.js';
export * from './rope-frequencies.js';
export * from './sampler.js';
export * from './weights.js';
