/**
 * The whole walkthrough as one function: the narrated forward pass, the check against the product's
 * `Llama.forward`, the two experiments and the KV-cache decode. Returns everything the pictures and the
 * test need; prints nothing itself (the narrator does).
 */
import type { Llama } from '@proj/llama3';
import { type NarratedPass, narratedForward, type Pick } from './chapters.js';
import { type NoMaskResult, noMaskExperiment, positionPredictions } from './experiments.js';
import { type DecodeResult, decodeWithCache } from './kv-decode.js';
import type { Narrator } from './narrate.js';
import { floats, maxAbsDiff, num } from './numbers.js';
import type { TokenText } from './text.js';
import { createTour, disposeTour } from './tour.js';

/** The prompt when none is given: 11 tokens with BOS, short enough to print whole. */
export const DEFAULT_PROMPT = 'The quick brown fox jumps over the lazy dog.';

/** Agreement required between the tour's logits and `Llama.forward`'s (the fixtures' fp32 tolerance). */
export const LOGITS_TOLERANCE = 1e-4;

/** Options of {@link runWalkthrough}. */
export interface WalkthroughOptions extends Pick {
  /** The prompt (BOS is prepended). */
  prompt: string;
  /** One-token decode steps after the prefill. */
  decodeSteps: number;
  /** Where the steps are told. */
  log: Narrator;
}

/** Everything the walkthrough computed. */
export interface WalkthroughResult {
  /** The narrated pass, its logits read back to the host. */
  pass: Omit<NarratedPass, 'logits'>;
  /** The tour's logits `[S, V]`, row-major. */
  logits: Float32Array;
  /** `Llama.forward`'s logits for the same prompt. */
  productLogits: Float32Array;
  /** Max |diff| between the two. */
  logitsDiff: number;
  /** The argmax token at each position. */
  predictions: number[];
  /** The no-mask experiment. */
  noMask: NoMaskResult;
  /** The KV-cache decode. */
  decode: DecodeResult;
  /** The text of each prompt token (labels of the attention picture). */
  tokens: string[];
}

/** Runs the tour of `model` on `options.prompt`. */
export async function runWalkthrough(
  model: Llama,
  text: TokenText,
  options: WalkthroughOptions,
): Promise<WalkthroughResult> {
  const { log } = options;
  const ids = text.encode(options.prompt);
  const positions = ids.length + options.decodeSteps + 1;
  if (positions > model.contextLength) {
    throw new Error(
      `the prompt and ${options.decodeSteps} steps need ${positions} positions, over ${model.contextLength}`,
    );
  }
  if (!Number.isInteger(options.decodeSteps) || options.decodeSteps < 0) {
    throw new Error(`decode steps must be a whole number, got ${options.decodeSteps}`);
  }
  const { layers, heads } = model.config;
  if (!(options.layer >= 0 && options.layer < layers && options.head >= 0 && options.head < heads)) {
    throw new Error(
      `no layer ${options.layer}, head ${options.head}: the model has ${layers} layers of ${heads} heads`,
    );
  }
  const tour = createTour(model, positions, log);
  try {
    log.say('== 1. From text to the next token, step by step (layer 0 in detail) ==');
    const { logits: logitsTensor, ...pass } = await narratedForward(tour, text, options.prompt, ids, options);

    log.say('');
    log.say('== 2. The check: the tour against the product (Llama.forward) ==');
    const cache = model.createCache(ids.length);
    const product = model.forward(ids, cache, { logits: 'all' });
    cache.dispose();
    const [logits, productLogits] = await Promise.all([floats(logitsTensor), floats(product)]);
    product.dispose();
    const logitsDiff = maxAbsDiff(logits, productLogits);
    const verdict = logitsDiff <= LOGITS_TOLERANCE ? 'they agree' : 'THEY DISAGREE';
    log.say(
      '   Llama.forward runs the same math with fused kernels: one ropeQkv splits q/k/v, rotates them and',
    );
    log.say('   appends k and v to its cache; swigluPacked reads gate and up from one [S, 2F] tensor.');
    log.say(
      `   tour logits vs Llama.forward logits [${ids.length}, ${model.config.vocabSize}]: max |diff| = ${num(logitsDiff, 8)} (${verdict}, tolerance ${LOGITS_TOLERANCE})`,
    );

    log.say('');
    log.say('== 3. Experiments ==');
    const predictions = await positionPredictions(tour, text, ids, logitsTensor);
    log.say('');
    const noMask = await noMaskExperiment(tour, text, ids, { logits: logitsTensor, predictions });
    logitsTensor.dispose();

    log.say('');
    log.say('== 4. Generating with a KV cache: one token per step ==');
    const decode = await decodeWithCache(tour, text, ids, options.decodeSteps);
    const tokens = ids.map((id) => text.decode([id]));
    return { pass, logits, productLogits, logitsDiff, predictions, noMask, decode, tokens };
  } finally {
    disposeTour(tour);
  }
}
