/**
 * `pnpm llama3 <command>`: command-line tools for the package.
 *
 *   pnpm llama3 verify --model <dir> --expected <expected.safetensors> [--device cpu|webgpu] [--atol 1e-4]
 */
import { parseArgs } from 'node:util';
import { cpu, type Device } from '@proj/core';
import { createWebGpuDevice, type WebGpuDevice } from '@proj/ops';
import { DEFAULT_LOGITS_ATOL } from './reference.js';
import { verifyModel } from './verify.js';

const USAGE = `usage: pnpm llama3 verify --model <dir> --expected <expected.safetensors> [--device cpu|webgpu] [--atol ${DEFAULT_LOGITS_ATOL}]

Runs the prompt stored in <expected.safetensors> ('input_ids') through the model in <dir> (HF or Meta layout),
prints the largest absolute difference from the reference logits, the argmax agreement per position, the
largest difference of each layer-0 intermediate the reference stores, how far decoding the prompt token by
token with the KV cache is from running it whole, and whether greedy generation reproduces 'greedy_ids'.
Exits with status 1 when any of them is off.`;

async function verifyCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      expected: { type: 'string' },
      device: { type: 'string', default: 'webgpu' },
      atol: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.model || !values.expected) {
    console.error(USAGE);
    return 2;
  }
  const atol = values.atol === undefined ? DEFAULT_LOGITS_ATOL : Number(values.atol);
  if (!(atol >= 0)) throw new Error(`--atol must be a non-negative number, got ${values.atol}`);
  let gpu: WebGpuDevice | undefined;
  let device: Device = cpu;
  if (values.device === 'webgpu') device = gpu = await createWebGpuDevice();
  else if (values.device !== 'cpu') throw new Error(`--device must be cpu or webgpu, got ${values.device}`);
  try {
    console.log(`model ${values.model} on ${device.description}`);
    const r = await verifyModel(values.model, values.expected, { device, atol });
    const agree = r.argmaxAgree.filter(Boolean).length;
    console.log(
      `logits: max |diff| = ${r.maxAbsDiff.toExponential(3)} over ${r.positions} positions (tolerance ${r.atol})`,
    );
    console.log(
      `argmax agreement: ${agree}/${r.positions} positions [${r.argmaxAgree.map((a) => (a ? '1' : '0')).join('')}]`,
    );
    if (r.intermediates.length > 0) {
      const worst = r.intermediates.reduce((a, b) => (b.maxAbsDiff > a.maxAbsDiff ? b : a));
      const bad = r.intermediates.filter((i) => !(i.maxAbsDiff <= r.atol)).map((i) => i.name);
      console.log(
        `intermediates: ${r.intermediates.length} compared, max |diff| = ${worst.maxAbsDiff.toExponential(3)} (${worst.name})${bad.length ? `; over the tolerance: ${bad.join(', ')}` : ''}`,
      );
    }
    console.log(
      `decoding with the KV cache vs the whole prompt: max |diff| = ${r.cacheMaxAbsDiff.toExponential(3)}`,
    );
    const same =
      r.greedyIds.every((id, i) => id === r.expectedGreedyIds[i]) &&
      r.greedyIds.length === r.expectedGreedyIds.length;
    console.log(`greedy ids: ${same ? 'identical' : 'DIFFERENT'} (${r.greedyIds.length} tokens)`);
    if (!same)
      console.log(`  ours:      ${r.greedyIds.join(',')}\n  reference: ${r.expectedGreedyIds.join(',')}`);
    console.log(r.ok ? 'OK' : 'FAILED');
    return r.ok ? 0 : 1;
  } finally {
    gpu?.destroy();
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'verify') return verifyCommand(rest);
  console.error(
    command && command !== '--help' && command !== '-h' ? `unknown command '${command}'\n\n${USAGE}` : USAGE,
  );
  return command ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = 1;
  },
);
