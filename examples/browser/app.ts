/**
 * The browser example's work, apart from the page: open the GPU through `navigator.gpu`, read a model
 * directory served over HTTP (its config, its safetensors weights by Range requests, its tokenizer) and
 * stream a greedy continuation. Nothing here needs Node: `main.ts` calls it from the page (which the tests
 * open in headless Chromium), and a test also runs it as a script in a page-like context in Node, with
 * Dawn standing in for `navigator.gpu`.
 * @module
 */
import { openHttpCheckpoint } from '@proj/core';
import { configFromHf, generate, type Llama, loadLlamaFrom, safetensorsSource } from '@proj/llama3';
import { createWebGpuDevice } from '@proj/ops';
import { loadTokenizer } from '@proj/tokenizer';

/** What {@link runInBrowser} is asked to do. */
export interface BrowserRunOptions {
  /**
   * URL of a model directory in the Hugging Face layout (`config.json`, `tokenizer.json`, and
   * `model.safetensors` or `model.safetensors.index.json` with its shards).
   */
  modelUrl: string;
  prompt: string;
  /** Tokens to generate (default 32). */
  maxNewTokens?: number;
  /** Receives each piece of generated text as it is decoded. */
  onText?: (text: string) => void;
  /** Receives a line for each stage (opening the GPU, loading, generating). */
  onStatus?: (line: string) => void;
}

/** What a run produced. */
export interface BrowserRunResult {
  /** The adapter the model ran on. */
  adapter: string;
  /** The generated ids. */
  ids: number[];
  /** Decode speed after the first token. */
  tokensPerSecond: number;
}

async function fetchJson(url: string): Promise<unknown> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status} ${response.statusText}`);
  return response.json();
}

/** Loads the model at `modelUrl` onto the page's GPU and generates from `prompt`, greedily. */
export async function runInBrowser(options: BrowserRunOptions): Promise<BrowserRunResult> {
  const status = options.onStatus ?? (() => {});
  const base = options.modelUrl.replace(/\/$/, '');
  status('opening the GPU (navigator.gpu)');
  const gpu = await createWebGpuDevice();
  let model: Llama | undefined;
  try {
    status(`adapter: ${gpu.description}`);
    const [config, tokenizer] = await Promise.all([
      fetchJson(`${base}/config.json`).then((json) => configFromHf(json)),
      loadTokenizer(`${base}/tokenizer.json`),
    ]);
    status(`loading ${config.layers} layers of width ${config.hiddenSize} by HTTP Range requests`);
    const weights = await openHttpCheckpoint(base); // model.safetensors, or an index and its shards
    try {
      model = await loadLlamaFrom(safetensorsSource(weights), config, { device: gpu, contextLength: 512 });
    } finally {
      await weights.close();
    }
    status('generating');
    const ids: number[] = [];
    let start = 0;
    const tokens = generate(model, options.prompt, {
      tokenizer,
      temperature: 0,
      maxNewTokens: options.maxNewTokens ?? 32,
    });
    for await (const token of tokens) {
      if (token.id >= 0) ids.push(token.id);
      if (ids.length === 1) start = performance.now();
      options.onText?.(token.text);
    }
    const seconds = (performance.now() - start) / 1000;
    return {
      adapter: gpu.description,
      ids,
      tokensPerSecond: ids.length > 1 ? (ids.length - 1) / seconds : 0,
    };
  } finally {
    model?.dispose();
    gpu.destroy();
  }
}
