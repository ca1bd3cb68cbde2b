/**
 * Llama 3 from scratch, on this library's ops: the tutorials' tour (tokens, embeddings, RMSNorm, one head
 * by hand, RoPE, the causal mask, GQA, SwiGLU, the logits, the KV cache), printing the shapes at every
 * step, checked against the product's `Llama.forward`, with pictures of attention and RoPE.
 *
 *   pnpm walkthrough [--model <dir>] [--device auto|webgpu|cpu] [--prompt <text>] [--layer N] [--head N]
 *                    [--steps N] [--out <dir>]
 */
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { consoleNarrator } from './narrate.js';
import { writePictures } from './pictures.js';
import { DEFAULT_PROMPT, LOGITS_TOLERANCE, runWalkthrough } from './run.js';
import { type DeviceChoice, openDevice, openSource } from './source.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      device: { type: 'string', default: 'auto' },
      prompt: { type: 'string', default: DEFAULT_PROMPT },
      layer: { type: 'string', default: '0' },
      head: { type: 'string', default: '0' },
      steps: { type: 'string', default: '4' },
      out: { type: 'string', default: join(tmpdir(), 'llama3-walkthrough') },
    },
  });
  const choice = values.device as DeviceChoice;
  if (!['auto', 'webgpu', 'cpu'].includes(choice)) throw new Error(`--device must be auto, webgpu or cpu`);
  const opened = await openDevice(choice);
  try {
    const source = await openSource(opened.device, values.model);
    const c = source.model.config;
    console.log(`model: ${source.description}`);
    console.log(
      `  ${c.layers} layers, D = ${c.hiddenSize}, ${c.heads} query heads / ${c.kvHeads} kv heads of Dh = ${c.headDim}, F = ${c.intermediateSize}, V = ${c.vocabSize}`,
    );
    console.log(`device: ${opened.description}`);
    console.log(`tokens: ${source.text.name}\n`);
    const pick = { layer: Number(values.layer), head: Number(values.head) };
    const result = await runWalkthrough(source.model, source.text, {
      prompt: values.prompt,
      decodeSteps: Number(values.steps),
      log: consoleNarrator(),
      ...pick,
    });
    const kvHead = Math.floor(pick.head / (c.heads / c.kvHeads));
    const paths = await writePictures(
      values.out,
      { probs: result.pass.picture.probs, tokens: result.tokens, kvHead, ...pick },
      { config: c, query: result.pass.query },
    );
    console.log('\n== 5. Pictures ==');
    for (const path of Object.values(paths)) console.log(`   ${path} (${(await stat(path)).size} bytes)`);
    source.model.dispose();
    const agree = result.logitsDiff <= LOGITS_TOLERANCE;
    console.log(
      `\n${agree ? 'OK' : 'FAILED'}: the tour's logits ${agree ? 'equal' : 'differ from'} Llama.forward's (max |diff| ${result.logitsDiff.toExponential(2)}, tolerance ${LOGITS_TOLERANCE})`,
    );
    if (!agree) process.exitCode = 1;
  } finally {
    opened.close();
  }
}

try {
  await main();
} catch (error) {
  console.error(`error: ${(error as Error).message}`);
  process.exitCode = 1;
}
