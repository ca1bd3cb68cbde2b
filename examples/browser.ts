/**
 * `pnpm browser [--model DIR|ID] [--port N]`: serves the browser example (`browser/`): a page that loads a
 * Llama 3 model onto the browser's GPU and generates. Without `--model`, a tiny Llama 3 with seeded random
 * weights and the real vocabulary (random text: it shows the machinery).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeHfCheckpoint } from '@proj/llama3';
import { startBrowserExample, TINY_BROWSER_MODEL } from './browser/server.js';
import { numberArg, parseCommandLine } from './cli/args.js';
import { findModel } from './cli/model.js';
import { run } from './cli/run.js';

const USAGE = `usage: pnpm browser [--model DIR|ID] [--port N]

Serves the browser example on http://127.0.0.1:PORT/: a page that loads a Llama 3 model onto the browser's
GPU (navigator.gpu) by HTTP Range requests and streams a greedy continuation. Open it in a browser with
WebGPU (Chrome, Edge; Firefox and Safari where WebGPU is enabled).

--model DIR|ID    a Hugging Face checkpoint directory (model.safetensors, or an index and its shards) or
                  a hub id; default: a tiny Llama 3 with random weights (random text)
--port N          the port (default 8080; 0 for any free one)
-h, --help        this text`;

async function main(): Promise<number | undefined> {
  const args = parseCommandLine(USAGE, { model: { type: 'string' }, port: { type: 'string' } });
  if (!args) return;
  const port = numberArg('--port', args.port, { min: 0, max: 65535, integer: true }) ?? 8080;
  let scratch: string | undefined;
  let modelDir: string;
  if (args.model) {
    modelDir = await findModel(args.model);
  } else {
    scratch = await mkdtemp(join(tmpdir(), 'browser-example-'));
    modelDir = await writeHfCheckpoint(scratch, TINY_BROWSER_MODEL);
    console.error('no --model: serving a tiny Llama 3 with random weights (random text)');
  }
  try {
    const server = await startBrowserExample(modelDir, port);
    console.log(`open ${server.url} in a browser with WebGPU (Ctrl-C stops)`);
    await new Promise<void>((resolve) => process.once('SIGINT', resolve));
    await server.close();
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
  return undefined;
}

run(main, 'Run pnpm browser --help for the options.');
