/**
 * Loading a checkpoint directory (Node only): find out its layout, open its files, and hand them to
 * {@link loadLlamaFrom}.
 * @module
 */
import type { LlamaConfig } from '../config.js';
import type { Llama, LlamaOptions } from '../model.js';
import { openPthSource, openSafetensorsSource } from './file-sources.js';
import { detectLayout } from './layout.js';
import { type LoadOptions, loadLlamaFrom } from './load.js';

/**
 * Loads a Llama 3 / 3.1 / 3.2 checkpoint directory (HF safetensors, single or sharded, or Meta's
 * `params.json` + `consolidated.00.pth`) onto a device. `compute: 'f16'` runs the activations in f16 (see
 * {@link LlamaOptions.compute}). In a browser, where there are no directories, use {@link loadLlamaFrom}.
 *
 * @example
 * ```ts
 * // doc-example: no-run (needs a downloaded checkpoint)
 * import { loadLlama } from '@proj/llama3';
 * const model = await loadLlama('./Llama-3.2-1B', { onProgress: (p) => console.log(p.tensor) });
 * console.log(model.config.layers); // 16
 * model.dispose();
 * ```
 */
export async function loadLlama<C extends LlamaConfig = LlamaConfig>(
  dir: string,
  options: LoadOptions & LlamaOptions & { preset?: C } = {},
): Promise<Llama<C>> {
  const layout = await detectLayout(dir);
  const source =
    layout.format === 'hf'
      ? await openSafetensorsSource(layout.weights)
      : await openPthSource(layout.weights);
  try {
    return await loadLlamaFrom(source, layout.config as C, { ...options, format: layout.format });
  } finally {
    await source.close();
  }
}
