/**
 * The packages in a browser: the page's code bundles for browsers (no Node module anywhere in its graph),
 * the example server serves the page and the model by Range requests, and the page generates what the
 * Node build generates: in headless Chromium (WebGPU on its software adapter, SwiftShader), and as a
 * script in a page-like context with Dawn standing in for `navigator.gpu`.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { serializeSafetensors, tensorEntries } from '@proj/core';
import {
  generate,
  hfConfigJson,
  type LlamaConfig,
  loadLlama,
  randomHfTensors,
  writeHfCheckpoint,
} from '@proj/llama3';
import { acquireGpu } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { loadTokenizer } from '@proj/tokenizer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserRunResult, runInBrowser } from './app.js';
import { findChromium, runPage } from './headless.js';
import {
  type BrowserExampleServer,
  bundleForBrowser,
  startBrowserExample,
  TINY_BROWSER_MODEL,
} from './server.js';

const HERE = new URL('.', import.meta.url).pathname;
const PROMPT = 'The capital of France is';
const scratch = mkdtempSync(join(tmpdir(), 'browser-test-'));
let modelDir: string;
let server: BrowserExampleServer;
let sharded: BrowserExampleServer;

/** The same weights as `writeHfCheckpoint(dir, config)`, in two shards and an index, as big checkpoints ship. */
async function writeShardedCheckpoint(dir: string, config: LlamaConfig): Promise<string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'config.json'), JSON.stringify(hfConfigJson(config)));
  const entries = await tensorEntries(randomHfTensors(config));
  const weightMap: Record<string, string> = {};
  for (const [i, shard] of [entries.slice(0, 5), entries.slice(5)].entries()) {
    const file = `model-0000${i + 1}-of-00002.safetensors`;
    writeFileSync(join(dir, file), serializeSafetensors(shard));
    for (const e of shard) weightMap[e.name] = file;
  }
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  return dir;
}

beforeAll(async () => {
  modelDir = await writeHfCheckpoint(join(scratch, 'model'), TINY_BROWSER_MODEL);
  server = await startBrowserExample(modelDir, 0);
  sharded = await startBrowserExample(
    await writeShardedCheckpoint(join(scratch, 'sharded'), TINY_BROWSER_MODEL),
    0,
  );
});
afterAll(async () => {
  await server?.close();
  await sharded?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the browser build', () => {
  it('bundles every package for browsers, leaving out only the Node bindings', async () => {
    const code = await bundleForBrowser(join(HERE, 'app.ts'));
    // What the packages' "browser" fields replace with empty modules: Dawn's Node binding, and the Node
    // modules the tokenizer imports only to read files. Nothing else of Node is left.
    const disabled = [...code.matchAll(/\(disabled\):([^"\s]+)/g)].map((m) =>
      m[1]!.replace(/.*node_modules\//, ''),
    );
    expect(new Set(disabled)).toEqual(
      new Set(['webgpu/index.js', 'node:os', 'node:fs/promises', 'node:path', 'node:module']),
    );
    expect(code).not.toMatch(/from\s*"node:|require\("node:/);
  });

  it("gives browsers llama3's entry without the file system, and refuses core's file access", async () => {
    const bundled = join(scratch, 'names.mjs');
    const names = "import * as l from '@proj/llama3'; export const names = Object.keys(l);";
    writeFileSync(bundled, await bundleForBrowser({ source: names }));
    const browser = ((await import(pathToFileURL(bundled).href)) as { names: string[] }).names;
    const node = Object.keys(await import('@proj/llama3'));
    expect(browser).toContain('loadLlamaFrom');
    expect(node.filter((n) => !browser.includes(n)).sort()).toEqual(
      expect.arrayContaining([
        'detectLayout',
        'loadLlama',
        'openSafetensorsSource',
        'resolveModel',
        'writeHfCheckpoint',
      ]),
    );
    expect(browser.filter((n) => !node.includes(n))).toEqual([]);
    const files = bundleForBrowser({ source: "export { openFileSource } from '@proj/core/node';" });
    await expect(files).rejects.toThrow(/Could not resolve "node:fs\/promises"/);
  });
});

describe('the example server', () => {
  it('serves the page, its script and the model files, with Range requests', async () => {
    const page = await fetch(server.url);
    expect(await page.text()).toContain('<script type="module" src="main.js">');
    const script = await fetch(new URL('main.js', server.url));
    expect(script.headers.get('content-type')).toBe('text/javascript');
    expect((await script.text()).length).toBeGreaterThan(100_000);
    const range = await fetch(new URL('model/model.safetensors', server.url), {
      headers: { Range: 'bytes=0-7' },
    });
    expect(range.status).toBe(206);
    expect((await range.arrayBuffer()).byteLength).toBe(8);
    const tokenizer = await fetch(new URL('model/tokenizer.json', server.url), { method: 'HEAD' });
    expect(tokenizer.status).toBe(200); // the built-in vocabulary, as the model directory has none
    expect((await fetch(new URL('model/../package.json', server.url))).status).toBe(404);
    expect((await fetch(new URL('model/params.json', server.url))).status).toBe(404);
    const shard = await fetch(new URL('model/model-00002-of-00002.safetensors', sharded.url), {
      method: 'HEAD',
    });
    expect(shard.status).toBe(200); // a sharded checkpoint's files are what its index names
  });
});

/** The ids the Node build generates greedily from the example's model. */
async function nodeIds(tokens: number): Promise<number[]> {
  const model = await loadLlama(modelDir);
  const tokenizer = await loadTokenizer();
  const ids: number[] = [];
  for await (const t of generate(model, PROMPT, { tokenizer, temperature: 0, maxNewTokens: tokens })) {
    if (t.id >= 0) ids.push(t.id);
  }
  model.dispose();
  return ids;
}

describe('the page in headless Chromium', () => {
  const chromium = findChromium();
  const required = process.env.REQUIRE_BROWSER === '1';
  if (!chromium && !required) {
    console.warn(
      'skipping the headless-browser test: no Chromium (bash scripts/setup-browser.sh, or set CHROMIUM)',
    );
  }

  it.skipIf(!chromium && !required)(
    "loads the model onto the browser's GPU and generates what the Node build generates, single or sharded",
    async () => {
      if (!chromium) throw new Error('REQUIRE_BROWSER=1 but no Chromium: run bash scripts/setup-browser.sh');
      const expected = await nodeIds(6);
      for (const s of [server, sharded]) {
        const page = new URL(`?prompt=${encodeURIComponent(PROMPT)}&tokens=6&run`, s.url).href;
        const outcome = await runPage(
          chromium,
          page,
          "document.querySelector('#result')?.dataset.result ?? ''",
        );
        const result = JSON.parse(outcome.value) as BrowserRunResult & { error?: string };
        expect(result.error, outcome.console.join('\n')).toBeUndefined();
        expect(result.adapter).toMatch(/swiftshader/i); // the browser's own WebGPU, not Dawn in Node
        expect(result.ids).toEqual(expected);
        expect(outcome.console.filter((line) => line.startsWith('exception'))).toEqual([]);
      }
    },
  );
});

/**
 * A context with the globals a page has and none of Node's (`process`, `require`, `Buffer`,
 * `setImmediate`): the browser bundle runs in it as a classic script. Dawn's GPU object is its
 * `navigator.gpu`; `fetch` and the timers are Node's, as a page's are the browser's.
 */
function pageContext(gpu: GPU, href: string): vm.Context {
  return vm.createContext({
    navigator: { gpu },
    location: { href },
    fetch,
    Headers,
    Request,
    Response,
    URL,
    TextDecoder,
    TextEncoder,
    AbortController,
    console,
    performance,
    setTimeout,
    clearTimeout,
    queueMicrotask,
  });
}

describe('the browser bundle on navigator.gpu, in a page-like context', () => {
  let gpuAvailable = false;
  beforeAll(async () => {
    const probe = await testDevice(); // undefined (a skip) without an adapter, unless REQUIRE_WEBGPU=1
    gpuAvailable = probe !== undefined;
    probe?.destroy();
  });

  it('generates what the Node build generates from the same files, single or sharded', async (context) => {
    if (!gpuAvailable) context.skip();
    const script = await bundleForBrowser(join(HERE, 'app.ts'), 'app');
    let entry: { gpu: GPU } | undefined = await acquireGpu(); // Dawn, standing in for the browser's WebGPU
    const runs: { ids: number[]; text: string; adapter: string }[] = [];
    try {
      for (const s of [server, sharded]) {
        const page = pageContext(entry.gpu, s.url);
        vm.runInContext(script, page);
        const app = page.app as { runInBrowser: typeof runInBrowser };
        const texts: string[] = [];
        const { ids, adapter } = await app.runInBrowser({
          modelUrl: new URL('model/', s.url).href,
          prompt: PROMPT,
          maxNewTokens: 6,
          onText: (text) => texts.push(text),
        });
        runs.push({ ids, text: texts.join(''), adapter });
      }
    } finally {
      entry = undefined; // Dawn keeps Node alive while its instance is referenced
    }
    const expected = await nodeIds(6);
    const tokenizer = await loadTokenizer();
    expect(expected).toHaveLength(6);
    for (const run of runs) {
      expect(run.ids).toEqual(expected);
      expect(run.text).toBe(tokenizer.decode(expected));
      expect(run.adapter).toBeTruthy();
    }
  });
});
