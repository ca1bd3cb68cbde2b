/**
 * `pnpm generate --model <dir or hub id> --prompt "..."`: text completion with a real checkpoint, streamed
 * to stdout as it is generated; load and speed reports go to stderr.
 */
import { type GenerateOptions, generate } from '@proj/llama3';
import { type Profile, WebGpuDevice } from '@proj/ops';
import type { Tokenizer } from '@proj/tokenizer';
import { idsArg, numberArg, parseCommandLine, UsageError } from './cli/args.js';
import { DEVICE_HELP, type OpenDevice, openDevice } from './cli/device.js';
import { findModel, loadModel, MODEL_HELP, openTokenizer } from './cli/model.js';
import { SAMPLING_ARGS, samplingOptions, withoutUndefined, yieldToEventLoop } from './cli/options.js';
import { EXIT, run } from './cli/run.js';

const USAGE = `usage: pnpm generate --model DIR|ID (--prompt TEXT | --ids 1,2,3) [options]

Continues a prompt with a Llama 3 model and streams the text to stdout (the prompt first); the speed goes to
stderr at the end. Ctrl-C stops generation.

${MODEL_HELP}
--prompt TEXT     the text to continue (encoded with <|begin_of_text|> first)
--ids 1,2,3       raw token ids instead of a prompt (for models with another tokenizer)
--print-ids       print the generated ids as one comma-separated line on stdout, and no text
--max-new-tokens N   most tokens to generate (default 256)
--temperature T   0 is greedy (the most likely token each step); default 0.6
--top-k K         sample among the K most likely tokens only (default: no limit)
--top-p P         sample among the most likely tokens that add up to P (default 0.9)
--min-p P         drop tokens less likely than P times the most likely one (default 0)
--repetition-penalty R   make tokens already seen less likely (default 1: off)
--seed N          seed of the sampler: the same seed gives the same text (default 0)
--stop TEXT       stop when the text contains TEXT (repeatable)
--profile         time every kernel on the GPU and print the time per op to stderr at the end (WebGPU,
                  on an adapter with timestamp queries; each kernel then runs in its own pass, so the
                  speed report is slower than without)
${DEVICE_HELP}
-h, --help        this text

Examples:
  HF_TOKEN=hf_... pnpm generate --model meta-llama/Llama-3.2-1B --prompt "The capital of France is"
  pnpm generate --model ./Llama-3.2-1B --prompt "Once upon a time" --temperature 0 --max-new-tokens 32
  pnpm generate --model ../shared/fixtures/stories260K --ids 1,403,407,261,378 --temperature 0 --print-ids`;

async function main(): Promise<number | undefined> {
  const args = parseCommandLine(USAGE, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    ids: { type: 'string' },
    'print-ids': { type: 'boolean' },
    'max-new-tokens': { type: 'string', default: '256' },
    ...SAMPLING_ARGS,
    stop: { type: 'string', multiple: true },
    profile: { type: 'boolean' },
    device: { type: 'string', default: 'auto' },
    context: { type: 'string' },
  });
  if (!args) return EXIT.ok;
  if (!args.model) throw new UsageError('--model is required');
  if ((args.prompt === undefined) === (args.ids === undefined))
    throw new UsageError('give either --prompt TEXT or --ids 1,2,3');
  const promptIds = args.ids === undefined ? undefined : idsArg('ids', args.ids);
  const printIds = args['print-ids'] === true;
  const options: GenerateOptions = withoutUndefined({
    maxNewTokens: numberArg('max-new-tokens', args['max-new-tokens'], { min: 0, integer: true }),
    ...samplingOptions(args),
    stopStrings: args.stop,
  });
  const contextLength = numberArg('context', args.context, { min: 2, integer: true });

  let device: OpenDevice | undefined;
  const stop = new AbortController();
  let generating = false;
  // Ctrl-C while generating ends generation (what was generated is kept); at any other time, or a second
  // time, it ends the program at once. Either way the device is destroyed first.
  process.on('SIGINT', () => {
    if (generating && !stop.signal.aborted) return stop.abort();
    device?.close();
    console.error('\ninterrupted');
    process.exit(EXIT.interrupted);
  });

  const dir = await findModel(args.model);
  device = await openDevice(args.device);
  try {
    const gpu = device.device instanceof WebGpuDevice ? device.device : undefined;
    if (args.profile && !gpu?.caps.timestamps) {
      throw new UsageError(`--profile needs a WebGPU adapter with timestamp queries; this is ${device.name}`);
    }
    const model = await loadModel(dir, device, { contextLength });
    try {
      // A model with another vocabulary can still run on raw ids, as long as nothing needs text.
      const needsText = !printIds || promptIds === undefined || (args.stop?.length ?? 0) > 0;
      const tokenizer: Tokenizer | undefined = needsText ? await openTokenizer(dir, model) : undefined;
      const prompt = promptIds ?? args.prompt!;
      if (!printIds && tokenizer) {
        // The prompt first, so the output reads as one text (control tokens such as BOS are not shown).
        const shown = promptIds
          ? tokenizer.decode(promptIds.filter((id) => !tokenizer.isSpecial(id)))
          : args.prompt!;
        process.stdout.write(shown);
      }

      const ids: number[] = [];
      const start = performance.now();
      let firstAt = start;
      generating = true;
      if (args.profile) gpu!.startProfile();
      try {
        for await (const t of generate(model, prompt, { ...options, tokenizer, signal: stop.signal })) {
          if (t.id >= 0 && ids.push(t.id) === 1) firstAt = performance.now();
          if (!printIds) process.stdout.write(t.text);
          await yieldToEventLoop();
        }
      } catch (error) {
        if (!stop.signal.aborted) throw error;
        console.error('\n[stopped by Ctrl-C]');
      } finally {
        generating = false;
      }
      process.stdout.write(printIds ? `${ids.join(',')}\n` : '\n');
      console.error(speedReport(ids.length, start, firstAt, performance.now()));
      if (args.profile) console.error(profileReport(await gpu!.stopProfile(), ids.length));
      return stop.signal.aborted ? EXIT.interrupted : EXIT.ok;
    } finally {
      model.dispose();
    }
  } finally {
    device.close();
  }
}

/** `64 tokens in 1.20 s, 53.3 tokens/s (the prompt and the first token took 0.10 s)`. */
function speedReport(tokens: number, start: number, firstAt: number, end: number): string {
  const seconds = (end - start) / 1000;
  const rate =
    tokens > 1 ? ` (${((tokens - 1) / ((end - firstAt) / 1000)).toFixed(1)} tokens/s after the first)` : '';
  return `${tokens} tokens in ${seconds.toFixed(2)} s${rate}; the prompt and the first token took ${((firstAt - start) / 1000).toFixed(2)} s`;
}

/** The GPU time per op, most first, as a table; per token where tokens were generated. */
function profileReport(profile: Profile, tokens: number): string {
  const per = Math.max(tokens, 1);
  const rows = profile.kernels.map(
    (k) =>
      `  ${k.op.padEnd(16)} ${String(k.calls).padStart(7)} ${(k.ms / per).toFixed(3).padStart(10)} ${((100 * k.ms) / profile.totalMs).toFixed(1).padStart(6)}%`,
  );
  return [
    `GPU time per op over ${tokens} tokens (the prompt's forward included):`,
    `  ${'op'.padEnd(16)} ${'calls'.padStart(7)} ${'ms/token'.padStart(10)} ${'share'.padStart(7)}`,
    ...rows,
    `  ${'all'.padEnd(16)} ${''.padStart(7)} ${(profile.totalMs / per).toFixed(3).padStart(10)}`,
  ].join('\n');
}

run(main, 'Run pnpm generate --help for the options.');
