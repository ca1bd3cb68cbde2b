/**
 * A GPT-2-style model (learned positions, LayerNorm with bias, GELU MLP, tied head) built from the same ops
 * as Llama 3, with seeded random weights: prints the shapes of one forward pass, then generates bytes
 * greedily with a KV cache, checking each step against a full recompute.
 *
 *   pnpm new-model [--device auto|webgpu|cpu] [--prompt <text>] [--steps N]
 */
import { parseArgs } from 'node:util';
import { cpu, type Device, formatShape, scope, type Tensor } from '@proj/core';
import { argmax, createWebGpuDevice, narrow } from '@proj/ops';
import { TINY_GPT } from './gpt.js';
import { randomGpt } from './random-gpt.js';

/** The greedy choice of the last row of `logits [S, V]`, and that row. */
async function lastRow(logits: Tensor): Promise<{ id: number; row: Float32Array }> {
  const { last, best } = scope(() => {
    const last = narrow(logits, 0, logits.shape[0]! - 1, 1); // [1, V]
    return { last, best: argmax(last) };
  });
  const [row, id] = await Promise.all([last.toArray(), best.toArray()]);
  last.dispose();
  best.dispose();
  return { id: id[0]!, row: row as Float32Array };
}

async function openDevice(choice: string): Promise<{ device: Device; close: () => void }> {
  if (choice === 'cpu') return { device: cpu, close: () => {} };
  try {
    const gpu = await createWebGpuDevice();
    return { device: gpu, close: () => gpu.destroy() };
  } catch (error) {
    if (choice === 'webgpu') throw error;
    return { device: cpu, close: () => {} };
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      device: { type: 'string', default: 'auto' },
      prompt: { type: 'string', default: 'Hello, ops!' },
      steps: { type: 'string', default: '16' },
    },
  });
  const { device, close } = await openDevice(values.device);
  try {
    const model = randomGpt(TINY_GPT, { seed: 7, device });
    const c = model.config;
    console.log(`GPT-2-style model on ${device.kind}, seeded random weights (it babbles):`);
    console.log(
      `  ${c.layers} blocks, D = ${c.dim}, ${c.heads} heads of ${c.dim / c.heads}, MLP ${c.mlp}, V = ${c.vocab} (bytes), ${c.context} positions\n`,
    );
    const ids = [...new TextEncoder().encode(values.prompt)];
    const log = (what: string, input: readonly number[], output: readonly number[]) =>
      console.log(`  ${what.padEnd(34)} ${formatShape(input)} -> ${formatShape(output)}`);
    const cache = model.createCache(Math.min(c.context, ids.length + Number(values.steps)));
    let logits = model.forward(ids, cache, log);
    const generated: number[] = [];
    let worst = 0;
    for (let step = 0; step < Number(values.steps); step++) {
      const { id, row } = await lastRow(logits);
      logits.dispose();
      generated.push(id);
      const full = model.forward([...ids, ...generated.slice(0, -1)]); // no cache: every position again
      worst = Math.max(worst, maxAbsDiff(row, (await lastRow(full)).row));
      full.dispose();
      if (step + 1 === Number(values.steps)) break;
      logits = model.forward([id], cache); // one token: [1] -> [1, V]
    }
    console.log(`\nprompt ${JSON.stringify(values.prompt)} -> "${generated.map(showByte).join('')}"`);
    console.log(`ids: ${generated.join(' ')}`);
    console.log(`KV-cache steps vs full recompute: max |diff| of the logits ${worst.toExponential(2)}`);
    for (const t of cache) t.dispose();
    model.dispose();
  } finally {
    close();
  }
}

/** Printable ASCII as itself, any other byte as `\xNN`. */
function showByte(b: number): string {
  return b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c
    ? String.fromCharCode(b)
    : `\\x${b.toString(16).padStart(2, '0')}`;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

try {
  await main();
} catch (error) {
  console.error(`error: ${(error as Error).message}`);
  process.exitCode = 1;
}
