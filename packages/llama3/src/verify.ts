/**
 * Checking a model against reference outputs (the `expected.safetensors` files of the test fixtures, made by
 * Meta's reference implementation): logits of the whole prompt, argmax agreement per position, and greedy
 * generation.
 * @module
 */
import { type Device, toCoreDType, toFloat32, viewAs } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import { loadLlama } from './checkpoint/load-dir.js';
import { generate } from './generate.js';

/** The tolerance on logits for f32 compute: the fixtures README measures two independent f32 implementations 1e-5 apart. */
export const DEFAULT_LOGITS_ATOL = 1e-4;

/** What {@link verifyModel} found. */
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

async function readExpected(path: string, name: string): Promise<Float32Array | Int32Array> {
  const file = await openSafetensors(path);
  try {
    const info = file.info(name);
    const dtype = toCoreDType(info.dtype, name);
    const raw = viewAs(dtype, await file.read(name));
    return dtype === 'i32' ? (raw as Int32Array) : toFloat32(dtype, raw);
  } finally {
    await file.close();
  }
}

function argmaxOf(row: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (row[i]! > row[best]!) best = i;
  return best - from;
}

/** Loads `modelDir` onto `device`, runs the reference prompt and compares (see {@link VerifyReport}). */
export async function verifyModel(
  modelDir: string,
  expectedPath: string,
  options: { device?: Device; atol?: number } = {},
): Promise<VerifyReport> {
  const atol = options.atol ?? DEFAULT_LOGITS_ATOL;
  const inputIds = [...(await readExpected(expectedPath, 'input_ids'))];
  const expectedLogits = await readExpected(expectedPath, 'logits');
  const expectedGreedy = [...(await readExpected(expectedPath, 'greedy_ids'))];
  const model = await loadLlama(modelDir, { device: options.device, onWarning: () => {} });
  try {
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
  } finally {
    model.dispose();
  }
}
