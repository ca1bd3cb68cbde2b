/**
 * Comparing a model with reference outputs (the `expected.safetensors` files of the test fixtures, made by
 * Meta's reference implementation): logits of the whole prompt, argmax agreement per position, and greedy
 * generation. Browser-safe: the reference comes from any safetensors reader; `verify.ts` reads it from a file.
 * @module
 */
import { type SafetensorsReader, toCoreDType, toFloat32, viewAs } from '@proj/core';
import { generate } from './generate.js';
import type { Llama } from './model.js';

/** The tolerance on logits for f32 compute: the fixtures README measures two independent f32 implementations 1e-5 apart. */
export const DEFAULT_LOGITS_ATOL = 1e-4;

/** What {@link compareWithReference} found. */
export interface VerifyReport {
  /** Prompt length. */
  positions: number;
  /** Largest |ours - reference| over all prompt logits. */
  maxAbsDiff: number;
  /** Per position: does our argmax equal the reference's? */
  argmaxAgree: boolean[];
  /** Greedy continuation we produced. */
  greedyIds: number[];
  /** The reference's greedy continuation. */
  expectedGreedyIds: number[];
  /** The tolerance used. */
  atol: number;
  /** Logits within tolerance, every argmax equal, and the greedy ids identical. */
  ok: boolean;
}

/** A reference run: the prompt, its logits `[S, V]` and the greedy continuation. */
export interface ReferenceOutputs {
  inputIds: number[];
  logits: Float32Array;
  greedyIds: number[];
}

/** Tensor `name` of `reader` as f32 values (an i32 one as it is). */
export async function readTensor(
  reader: SafetensorsReader,
  name: string,
): Promise<Float32Array | Int32Array> {
  const dtype = toCoreDType(reader.info(name).dtype, name);
  const raw = viewAs(dtype, await reader.read(name));
  return dtype === 'i32' ? (raw as Int32Array) : toFloat32(dtype, raw);
}

/** The reference run stored in an `expected.safetensors` (`input_ids`, `logits`, `greedy_ids`). */
export async function readReference(reader: SafetensorsReader): Promise<ReferenceOutputs> {
  const read = async (name: string) => {
    if (!reader.names().includes(name)) throw new Error(`verify: the reference has no '${name}'`);
    return readTensor(reader, name);
  };
  return {
    inputIds: [...(await read('input_ids'))],
    logits: Float32Array.from(await read('logits')),
    greedyIds: [...(await read('greedy_ids'))],
  };
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
  if (logits.length !== expectedLogits.length) {
    throw new Error(`verify: logits have ${logits.length} values, the reference ${expectedLogits.length}`);
  }
  let maxAbsDiff = 0;
  for (let i = 0; i < logits.length; i++)
    maxAbsDiff = Math.max(maxAbsDiff, Math.abs(logits[i]! - expectedLogits[i]!));
  if (Number.isNaN(logits.reduce((a, b) => a + b, 0))) maxAbsDiff = Number.NaN;
  const argmaxAgree = inputIds.map(
    (_, p) => argmaxOf(logits, p * vocab, vocab) === argmaxOf(expectedLogits, p * vocab, vocab),
  );
  const greedyIds: number[] = [];
  for await (const t of generate(model, inputIds, {
    temperature: 0,
    maxNewTokens: expectedGreedy.length,
    stopIds: [],
  }))
    greedyIds.push(t.id);
  const ok =
    maxAbsDiff <= atol &&
    argmaxAgree.every(Boolean) &&
    greedyIds.length === expectedGreedy.length &&
    greedyIds.every((id, i) => id === expectedGreedy[i]);
  return {
    positions: inputIds.length,
    maxAbsDiff,
    argmaxAgree,
    greedyIds,
    expectedGreedyIds: expectedGreedy,
    atol,
    ok,
  };
}
