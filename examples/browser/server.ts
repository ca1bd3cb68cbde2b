/**
 * The browser example's server: builds the page's script (`main.ts`, bundled for browsers with esbuild)
 * and serves it on 127.0.0.1 with a model directory under `/model/`, whose weights the page reads by HTTP
 * Range requests. `examples/browser.ts` (`pnpm browser`) runs it.
 * @module
 */
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseSafetensorsIndex, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE } from '@proj/core';
import { LLAMA32_1B, type LlamaConfig } from '@proj/llama3';
import { defaultTokenizerPath } from '@proj/tokenizer';
import { build } from 'esbuild';

const HERE = fileURLToPath(new URL('.', import.meta.url));

/** A tiny Llama 3.2 with the real vocabulary, for a page that works without a download. */
export const TINY_BROWSER_MODEL: LlamaConfig = {
  ...LLAMA32_1B,
  ...{ hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediateSize: 128 },
};

/**
 * Bundles `entry` (a file, or TypeScript source resolved from this folder) for browsers, every import
 * inlined: an ES module, or with `globalName` a classic script that puts the entry's exports there. Throws
 * esbuild's errors, which is what a Node-only import anywhere in the graph gives.
 */
export async function bundleForBrowser(
  entry: string | { source: string },
  globalName?: string,
): Promise<string> {
  const result = await build({
    ...(typeof entry === 'string'
      ? { entryPoints: [entry] }
      : { stdin: { contents: entry.source, resolveDir: HERE, loader: 'ts' as const } }),
    bundle: true,
    platform: 'browser',
    ...(globalName ? { format: 'iife' as const, globalName } : { format: 'esm' as const }),
    target: 'es2022',
    conditions: ['source'], // the workspace packages from their TypeScript sources
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0]!.text;
}

/** The files of a model directory the page reads (name -> path): config, tokenizer, weights. */
function modelFiles(modelDir: string): Map<string, string> {
  if (!existsSync(join(modelDir, 'config.json'))) {
    throw new Error(`${modelDir} has no config.json: the browser example reads Hugging Face checkpoints`);
  }
  const files = new Map([
    ['config.json', join(modelDir, 'config.json')],
    ['tokenizer.json', join(modelDir, 'tokenizer.json')],
  ]);
  const index = join(modelDir, SAFETENSORS_INDEX_FILE);
  if (existsSync(join(modelDir, SAFETENSORS_FILE))) {
    files.set(SAFETENSORS_FILE, join(modelDir, SAFETENSORS_FILE));
  } else if (existsSync(index)) {
    files.set(SAFETENSORS_INDEX_FILE, index);
    // The index names its shards (plain file names: checked when parsed).
    for (const shard of parseSafetensorsIndex(readFileSync(index, 'utf8'), index).shards) {
      files.set(shard, join(modelDir, shard));
    }
  } else {
    throw new Error(
      `${modelDir} has no ${SAFETENSORS_FILE} or ${SAFETENSORS_INDEX_FILE}: the browser example reads Hugging Face checkpoints`,
    );
  }
  return files;
}

/** Sends `file`, or the byte range the request asks for (206), or 416 for a range outside it. */
function sendFile(req: IncomingMessage, res: ServerResponse, file: string, type: string): void {
  const size = statSync(file).size;
  const headers = { 'content-type': type, 'accept-ranges': 'bytes' };
  const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
  if (!range) {
    res.writeHead(200, { ...headers, 'content-length': size });
    createReadStream(file).pipe(res);
    return;
  }
  const [, from, to] = range;
  const start = from === '' ? size - Number(to) : Number(from);
  const end = from === '' || to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (!(start >= 0 && start <= end)) {
    res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
    return;
  }
  res.writeHead(206, {
    ...headers,
    'content-length': end - start + 1,
    'content-range': `bytes ${start}-${end}/${size}`,
  });
  createReadStream(file, { start, end }).pipe(res);
}

/** A running example server. */
export interface BrowserExampleServer {
  /** `http://127.0.0.1:PORT/` */
  url: string;
  close(): Promise<void>;
}

/**
 * Builds the page and serves it with `modelDir` under `/model/` (its `tokenizer.json`, or the built-in
 * vocabulary where it has none). Only the page, its script and the model's config, tokenizer and weight
 * files are served.
 */
export async function startBrowserExample(modelDir: string, port = 8080): Promise<BrowserExampleServer> {
  const files = modelFiles(modelDir);
  if (!existsSync(files.get('tokenizer.json')!)) files.set('tokenizer.json', await defaultTokenizerPath());
  const page = await readFile(join(HERE, 'index.html'));
  const script = await bundleForBrowser(join(HERE, 'main.ts'));
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const model = path.startsWith('/model/') ? files.get(path.slice('/model/'.length)) : undefined;
    if (path === '/' || path === '/index.html') res.writeHead(200, { 'content-type': 'text/html' }).end(page);
    else if (path === '/main.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script);
    else if (model) {
      try {
        sendFile(req, res, model, path.endsWith('.json') ? 'application/json' : 'application/octet-stream');
      } catch (error) {
        res.writeHead(500).end((error as Error).message); // the file went away while serving
      }
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
