/**
 * Tokenizer benchmark: encode throughput on ~2 MB of English for this package, js-tiktoken used plainly, and
 * `@huggingface/tokenizers`, all on the same Llama 3 vocabulary in the same run, with their ids checked
 * identical (the suite throws otherwise); and construction time.
 *
 * Throughput is UTF-8 megabytes (10^6 bytes) per second, median of several runs after a warm-up run. Both
 * tokenizers that memoize pieces (ours and HF's) have their memo cleared before every timed run, so the
 * headline figures are for text seen for the first time; ours with a warm memo is reported separately.
 *
 * Standalone: `pnpm tsx --conditions=source packages/tokenizer/bench/tokenizer.bench.ts [--quick]` prints the
 * results as JSON.
 * @module
 */

import { readFile } from 'node:fs/promises';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { Tiktoken } from 'js-tiktoken/lite';
import type { BenchResult, BenchSuite } from '../../../bench/types.js';
import {
  defaultTokenizerPath,
  loadTokenizer,
  parseHfJson,
  type Tokenizer,
  toJsTiktoken,
  tokenizerFromTiktoken,
} from '../src/index.js';
import { englishText } from './english-text.js';

const META_MODEL = new URL('../../../../shared/tokenizers/llama3/tokenizer.model', import.meta.url);

function log(message: string): void {
  process.stderr.write(`tokenizer bench: ${message}\n`);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median milliseconds of `runs` calls of `fn`, each after `before` (not timed). */
async function timeMs(runs: number, fn: () => unknown, before: () => void = () => {}): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    before();
    const started = performance.now();
    await fn();
    times.push(performance.now() - started);
  }
  return median(times);
}

function firstDifference(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function assertSameIds(name: string, ours: readonly number[], theirs: readonly number[]): void {
  if (ours.length === theirs.length && firstDifference(ours, theirs) === ours.length) return;
  const at = firstDifference(ours, theirs);
  throw new Error(
    `tokenizer bench: ids differ from ${name} at index ${at} (ours ${ours.length} ids, theirs ${theirs.length}): ` +
      `${JSON.stringify(ours.slice(at, at + 5))} vs ${JSON.stringify(theirs.slice(at, at + 5))}`,
  );
}

/** Clears `@huggingface/tokenizers`' BPE memo (an LRU of words), which its public types do not show. */
function clearHfCache(hf: HfTokenizer): void {
  (hf.model as unknown as { clear_cache?: () => void } | null)?.clear_cache?.();
}

/** The tokenizer suite; see the module comment. */
export const suite: BenchSuite = async ({ quick }) => {
  const results: BenchResult[] = [];
  const { text, source } = englishText(quick ? 500_000 : 2_000_000);
  const megabytes = Buffer.byteLength(text, 'utf8') / 1e6;
  const runs = quick ? 2 : 5;
  const baselineRuns = quick ? 1 : 3;
  log(`${megabytes.toFixed(2)} MB of English: ${source}`);

  // Construction, from the built-in tokenizer.json (read, parse, index): the cost of loadTokenizer().
  const jsonPath = await defaultTokenizerPath();
  let ours: Tokenizer = await loadTokenizer(); // warm-up
  const constructMs = await timeMs(runs, async () => {
    ours = await loadTokenizer();
  });
  results.push({
    name: 'tokenizer.construct.ms',
    value: constructMs,
    unit: 'ms',
    info: 'loadTokenizer() with the built-in 9 MB tokenizer.json: read + JSON.parse + index; median',
  });
  const model = await readFile(META_MODEL).catch(() => undefined);
  if (model !== undefined) {
    const ms = await timeMs(runs, () => tokenizerFromTiktoken(model));
    results.push({
      name: 'tokenizer.construct.tiktoken_model.ms',
      value: ms,
      unit: 'ms',
      info: "from Meta's tokenizer.model bytes",
    });
  }
  const jsonText = await readFile(jsonPath, 'utf8');
  const vocab = parseHfJson(jsonText);
  let tiktoken: Tiktoken | undefined;
  const tiktokenMs = await timeMs(1, () => {
    tiktoken = new Tiktoken(toJsTiktoken(vocab));
  });
  let hf: HfTokenizer | undefined;
  const hfMs = await timeMs(1, () => {
    hf = new HfTokenizer(JSON.parse(jsonText), {});
  });
  results.push({
    name: 'tokenizer.construct.js_tiktoken.ms',
    value: tiktokenMs,
    unit: 'ms',
    info: 'new Tiktoken(ranks)',
  });
  results.push({
    name: 'tokenizer.construct.hf_tokenizers.ms',
    value: hfMs,
    unit: 'ms',
    info: 'JSON.parse + new Tokenizer',
  });

  // Identical output first: a fast wrong tokenizer is worth nothing.
  log('checking identical ids');
  const expected = ours.encode(text);
  assertSameIds('js-tiktoken', expected, tiktoken!.encode(text, [], []));
  // HF always turns special-token text into control tokens (the text quotes `<|begin_of_text|>` and such),
  // so its ids are compared with ours allowing them; js-tiktoken above runs in our default, safe mode.
  assertSameIds(
    '@huggingface/tokenizers',
    ours.encode(text, { allowSpecial: true }),
    hf!.encode(text, { add_special_tokens: false }).ids,
  );

  log('timing ours');
  const oursMs = await timeMs(
    runs,
    () => ours.encode(text),
    () => ours.clearCache(),
  );
  const oursWarmMs = await timeMs(runs, () => ours.encode(text));
  log('timing js-tiktoken');
  const tiktokenEncodeMs = await timeMs(baselineRuns, () => tiktoken!.encode(text, [], []));
  log('timing @huggingface/tokenizers');
  const hfEncodeMs = await timeMs(
    baselineRuns,
    () => hf!.encode(text, { add_special_tokens: false }),
    () => clearHfCache(hf!),
  );

  const mbs = (ms: number): number => megabytes / (ms / 1000);
  const baseline = mbs(tiktokenEncodeMs);
  const info = `${megabytes.toFixed(2)} MB, ${expected.length} tokens; ${source}`;
  results.push(
    {
      name: 'tokenizer.encode.ours.mb_s',
      value: mbs(oursMs),
      unit: 'MB/s',
      baseline,
      ratio: mbs(oursMs) / baseline,
      info: `piece memo cleared before each run; baseline js-tiktoken; ${info}`,
    },
    {
      name: 'tokenizer.encode.ours_warm.mb_s',
      value: mbs(oursWarmMs),
      unit: 'MB/s',
      baseline,
      ratio: mbs(oursWarmMs) / baseline,
      info: 'same text again with the piece memo kept (a long-lived tokenizer)',
    },
    {
      name: 'tokenizer.encode.js_tiktoken.mb_s',
      value: baseline,
      unit: 'MB/s',
      info: 'js-tiktoken 1.0.21 lite, same ranks and pattern',
    },
    {
      name: 'tokenizer.encode.hf_tokenizers.mb_s',
      value: mbs(hfEncodeMs),
      unit: 'MB/s',
      info: '@huggingface/tokenizers 0.2.0, BPE memo cleared before each run',
    },
    {
      name: 'tokenizer.encode.speedup_vs_js_tiktoken',
      value: mbs(oursMs) / baseline,
      unit: 'x',
      info: 'ours (cold memo) / js-tiktoken, identical ids; goal >= 5',
    },
  );
  return results;
};
