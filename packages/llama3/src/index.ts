/**
 * `@proj/llama3`: Llama 3, 3.1 and 3.2 built from the `@proj/ops` op set: configs and presets, checkpoint
 * loading (HF safetensors and Meta `.pth`, from a directory, the Hugging Face hub or any byte source), the
 * forward pass with a KV cache, sampling and streaming generation. Browsers get the same minus the file
 * system (`browser.ts`).
 * @packageDocumentation
 */
export * from './browser.js';
export * from './checkpoint/file-sources.js';
export * from './checkpoint/layout.js';
export * from './checkpoint/load-dir.js';
export * from './hub/index.js';
export * from './random-checkpoint.js';
export * from './verify.js';
