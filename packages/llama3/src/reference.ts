/**
 * Comparing a model with reference outputs (the `expected.safetensors` files of the test fixtures, made by
 * Meta's reference implementation): logits of the whole prompt, argmax agreement per position, the
 * intermediates of layer 0 (so that a mismatch points at the op that broke), decoding with the KV cache
 * against the whole prompt at once, and greedy generation. Browser-safe: the reference comes from any
 * safetensors reader; `verify.ts` reads it from a file.
 * @module
 */
import { type SafetensorsReader, type Tensor, toCoreDType, toFloat32, viewAs } from '@proj/core';
import { generate } from './generate.js';
import type { Llama } from './model.js';

/** The tolerance on logits for f32 compute: the fixtures README measures two independent f32 implementations 1e-5 apart. */
export const DEFAULT_LOGITS_ATOL = 1e-4;

/**
 * The intermediates a reference may store, by the names `Llama.forward` traces them under: layer 0 step by
 * step, and the final norm's output.
 */
export const REFERENCE_INTERMEDIATES = [
  'embed',
  'layer0.attn_norm_out',
  'layer0.q_rope',
  'layer0.k_rope',
  'layer0.v',
  'layer0.attn_out',
  'layer0.attn_residual',
  'layer0.ffn_norm_out',
  'layer0.ffn_out',
  'layer0.out',
  'final_norm_out',
] as const;

/** What {@link compareWithReference} found. */
export interface VerifyReport {
  /** Prompt length. */
  positions: number;
  /** Largest |ours - reference| over all prompt logits. */
  maxAbsDiff: number;
  /** Per position: does our argmax equal the reference's? */
  argmaxAgree: boolean[];
  /**
   * Largest |ours - reference| of each intermediate the reference stores, in the order of
   * {@link REFERENCE_INTERMEDIATES} (from a traced forward, which runs the ops one by one).
   */
  intermediates: { name: string; maxAbsDiff: number }[];
  /**
   * The prompt decoded one token at a time with the KV cache, against our logits of the whole prompt at once:
   * the largest |difference| (the same math in another summation order: f32 rounding only).
   */
  cacheMaxAbsDiff: number;
  /** Greedy continuation we produced. */
  greedyIds: number[];
  /** The reference's greedy continuation. */
  expectedGreedyIds: number[];
  /** The tolerance used. */
  atol: number;
  /** Logits, intermediates and cached decoding within tolerance, every argmax equal, the greedy ids identical. */
  ok: boolean;
}

/** A reference run: the prompt, its logits `[S, V]`, the greedy continuation and any intermediates. */
export interface ReferenceOutputs {
  /** The prompt. */
  inputIds: number[];
  /** Its logits at every position, `[S, V]` row by row. */
  logits: Float32Array;
  /** The greedy continuation of the prompt. */
  greedyIds: number[];
  /** Those of {@link REFERENCE_INTERMEDIATES} that the reference stores, f32, by name. */
  intermediates?: Map<string, Float32Array>;
}

/** Tensor `name` of `reader` as f32 values (an i32 one as it is). */
async function readNumbers(reader: SafetensorsReader, name: string): Promise<Float32Array | Int32Array> {
  const dtype = toCoreDType(reader.info(name).dtype, name);
  const raw = viewAs(dtype, await reader.read(name));
  return dtype === 'i32' ? (raw as Int32Array) : toFloat32(dtype, raw);
}

/**
 * The reference run stored in an `expected.safetensors`: `input_ids`, `logits`, `greedy_ids`, and whichever
 * of {@link REFERENCE_INTERMEDIATES} it has.
 */
export async function readReference(reader: SafetensorsReader): Promise<ReferenceOutputs> {
  const read = async (name: string) => {
    if (!reader.names().includes(name)) throw new Error(`verify: the reference has no '${name}'`);
    return readNumbers(reader, name);
  };
  const intermediates = new Map<string, Float32Array>();
  for (const name of REFERENCE_INTERMEDIATES) {
    if (reader.names().includes(name)) intermediates.set(name, Float32Array.from(await read(name)));
  }
  return {
    inputIds: [...(await read('input_ids'))],
    logits: Float32Array.from(await read('logits')),
    greedyIds: [...(await read('greedy_ids'))],
    intermediates,
  };
}

/** Largest |a[i] - b[i]|; NaN if either holds a NaN, and a thrown error if the lengths differ. */
function maxAbsDiffOf(a: ArrayLike<number>, b: ArrayLike<number>, what: string): number {
  if (a.length !== b.length)
    throw new Error(`verify: ${what}: ${a.length} values, the reference's ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Number.NaN;
    max = Math.max(max, d);
  }
  return max;
}

/** The traced forward of the prompt, against each intermediate the reference stores. */
async function compareIntermediates(
  model: Llama,
  inputIds: number[],
  expected: Map<string, Float32Array>,
): Promise<{ name: string; maxAbsDiff: number }[]> {
  if (expected.size === 0) return [];
  const traced = new Map<string, Tensor>();
  const cache = model.createCache(inputIds.length);
  try {
    model.forward(inputIds, cache, { logits: 'all', trace: (name, t) => traced.set(name, t) }).dispose();
    const out = [];
    for (const name of REFERENCE_INTERMEDIATES) {
      const want = expected.get(name);
      if (!want) continue;
      const t = traced.get(name);
      if (!t) throw new Error(`verify: the model traced no '${name}'`);
      out.push({ name, maxAbsDiff: maxAbsDiffOf(await t.toArray(), want, name) });
    }
    return out;
  } finally {
    for (const t of traced.values()) t.dispose();
    cache.dispose();
  }
}

/** The prompt decoded one token at a time with the cache, against `full`, the logits of all of it at once. */
async function compareCachedDecode(model: Llama, inputIds: number[], full: Float32Array): Promise<number> {
  const vocab = model.config.vocabSize;
  const cache = model.createCache(inputIds.length);
  try {
    let max = 0;
    for (const [p, id] of inputIds.entries()) {
      const step = model.forward([id], cache); // [1, V]: position p, the earlier ones from the cache
      const row = await step.toArray();
      step.dispose();
      max = Math.max(max, maxAbsDiffOf(row, full.subarray(p * vocab, (p + 1) * vocab), `position ${p}`));
      if (Number.isNaN(max)) break;
    }
    return max;
  } finally {
    cache.dispose();
  }
}

function argmaxOf(row: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (row[i]! > row[best]!) best = i;
  return best - from;
}

/** Runs the reference prompt through `model` and compares (see {@link VerifyReport}). */
export async function compareWithReference(
  model: Llama,
  reference: ReferenceOutputs,
  atol = DEFAULT_LOGITS_ATOL,
): Promise<VerifyReport> {
  const { inputIds, logits: expectedLogits, greedyIds: expectedGreedy } = reference;
  const vocab = model.config.vocabSize;
  const cache = model.createCache(inputIds.length);
  const logitsTensor = model.forward(inputIds, cache, { logits: 'all' }); // [S, V]
  const logits = (await logitsTensor.toArray()) as Float32Array;
  logitsTensor.dispose();
  cache.dispose();
  const maxAbsDiff = maxAbsDiffOf(logits, expectedLogits, 'the logits');
  const argmaxAgree = inputIds.map(
    (_, p) => argmaxOf(logits, p * vocab, vocab) === argmaxOf(expectedLogits, p * vocab, vocab),
  );
  const intermediates = await compareIntermediates(model, inputIds, reference.intermediates ?? new Map());
  const cacheMaxAbsDiff = await compareCachedDecode(model, inputIds, logits);
  const greedyIds: number[] = [];
  for await (const t of generate(model, inputIds, {
    temperature: 0,
    maxNewTokens: expectedGreedy.length,
    stopIds: [],
  }))
    greedyIds.push(t.id);
  const ok =
    maxAbsDiff <= atol &&
    intermediates.every((r) => r.maxAbsDiff <= atol) &&
    cacheMaxAbsDiff <= atol &&
    argmaxAgree.every(Boolean) &&
    greedyIds.length === expectedGreedy.length &&
    greedyIds.every((id, i) => id === expectedGreedy[i]);
  return {
    positions: inputIds.length,
    maxAbsDiff,
    argmaxAgree,
    intermediates,
    cacheMaxAbsDiff,
    greedyIds,
    expectedGreedyIds: expectedGreedy,
    atol,
    ok,
  };
}
