/**
 * `pnpm bench [--quick] [--only ops,llama3]`: runs every benchmark suite and prints one JSON document,
 * `{ adapter, results: [{ name, value, unit, baseline?, ratio? }] }`, on stdout; the same is saved under
 * `bench/results/`. Progress goes to stderr.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWebGpuDevice } from '@proj/ops';
import type { BenchResult, BenchSuite } from './types.js';

const suites: Record<string, () => Promise<{ suite: BenchSuite }>> = {
  ops: () => import('../packages/ops/bench/ops.bench.js'),
  tokenizer: () => import('../packages/tokenizer/bench/tokenizer.bench.js'),
  llama3: () => import('../packages/llama3/bench/llama3.bench.js'),
};

async function adapterName(): Promise<string> {
  try {
    const device = await createWebGpuDevice();
    const name = device.description;
    device.destroy();
    return name;
  } catch (error) {
    return `none (${(error as Error).message.split('.')[0]})`;
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const onlyArg = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;
  const only = onlyArg?.split(',');
  const results: BenchResult[] = [];
  for (const [name, load] of Object.entries(suites)) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}${quick ? ' (quick)' : ''}\n`);
    const started = performance.now();
    const { suite } = await load();
    results.push(...(await suite({ quick })));
    process.stderr.write(`bench: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
  }
  const doc = { adapter: await adapterName(), date: new Date().toISOString(), quick, results };
  const json = JSON.stringify(doc, null, 2);
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `bench-${doc.date.replace(/[:.]/g, '-')}.json`), `${json}\n`);
  process.stdout.write(`${json}\n`);
}

await main();
