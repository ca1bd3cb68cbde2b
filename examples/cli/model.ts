/**
 * `--model <dir or hub id>`: find the checkpoint (downloading hub ids into the Hugging Face cache), load it
 * onto the device with a progress bar, and find its tokenizer.
 * @module
 */
import { existsSync } from 'node:fs';
import { createProgressBar, type Llama, loadLlama, parseHubId, resolveModel } from '@proj/llama3';
import { loadTokenizer, type Tokenizer } from '@proj/tokenizer';
import type { OpenDevice } from './device.js';

/** The `--model`/`--context` lines of a usage text. */
export const MODEL_HELP = `--model DIR|ID    a checkpoint directory (Hugging Face: config.json + model.safetensors; Meta:
                  params.json + consolidated.00.pth) or a hub id such as meta-llama/Llama-3.2-1B, which is
                  downloaded into the Hugging Face cache (HF_HUB_CACHE, HF_HOME; HF_TOKEN for gated repos
                  such as Meta's: accept the license on the model's page first; HF_ENDPOINT for a mirror)
--context N       positions to make room for (default: the model's, at most 8192)`;

/** The local directory of `--model`: `spec` itself, or a hub id's snapshot after downloading what is missing. */
export async function findModel(spec: string, note: (line: string) => void = console.error): Promise<string> {
  if (!existsSync(spec) && parseHubId(spec))
    note(`downloading ${spec} (files already in the cache are kept)`);
  return resolveModel(spec, { onProgress: createProgressBar() });
}

/** Loads the checkpoint in `dir` onto `device`, with a progress bar. */
export async function loadModel(
  dir: string,
  device: OpenDevice,
  options: { contextLength?: number; note?: (line: string) => void } = {},
): Promise<Llama> {
  const note = options.note ?? console.error;
  note(`loading ${dir} onto ${device.name}`);
  const bar = createProgressBar();
  return loadLlama(dir, {
    device: device.device,
    contextLength: options.contextLength,
    onWarning: (message) => note(`note: ${message}`),
    onProgress: (p) => bar({ ...p, label: `weights: ${p.index}/${p.count} tensors` }),
  });
}

/**
 * The tokenizer in `dir`, or the built-in Llama 3 vocabulary (with a note) when `dir` has none. Throws when
 * the model's vocabulary is smaller than the tokenizer's: then it was not trained with Llama 3's tokenizer.
 */
export async function openTokenizer(
  dir: string,
  model: Llama,
  note: (line: string) => void = (line) => console.error(line),
): Promise<Tokenizer> {
  let tokenizer: Tokenizer;
  try {
    tokenizer = await loadTokenizer(dir);
  } catch (error) {
    if (!/^no tokenizer in /.test((error as Error).message)) throw error;
    note(`note: ${dir} has no tokenizer file; using the built-in Llama 3 vocabulary`);
    tokenizer = await loadTokenizer();
  }
  const vocab = model.config.vocabSize;
  if (tokenizer.vocabSize > vocab) {
    throw new Error(
      `the model has ${vocab} token ids but the Llama 3 tokenizer has ${tokenizer.vocabSize}: this model uses ` +
        'another tokenizer. Feed it token ids with --ids 1,2,3 and read its output with --print-ids.',
    );
  }
  return tokenizer;
}
