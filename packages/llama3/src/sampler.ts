/**
 * The sampler, which turns one position's logits into the next token id: repetition penalty, temperature,
 * then top-k, min-p and top-p filtering, then a draw from a seeded generator (deterministic per seed).
 * @module
 */
import { Rng } from '@proj/core';

/** How to choose the next token. */
export interface SamplingOptions {
  /** Softmax temperature; 0 means greedy (argmax). Default 0.6 (Meta's default). */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: no limit). */
  topK?: number;
  /** Keep the smallest set of tokens whose probability adds up to at least p. Default 0.9 (Meta's default). */
  topP?: number;
  /** Drop tokens whose probability is below `minP` times the most likely one's. */
  minP?: number;
  /** Divide positive (multiply negative) logits of already-seen tokens by this (1: off). */
  repetitionPenalty?: number;
  /** Seed of the random draws (default 0): the same seed gives the same text. */
  seed?: number;
}

/** True when these options pick the argmax (so the GPU can pick it and only one id is read back). */
export function isGreedy(options: SamplingOptions): boolean {
  return (options.temperature ?? 0.6) === 0 && (options.repetitionPenalty ?? 1) === 1;
}

/** Chooses token ids from logits; keeps its random state between calls. */
export class Sampler {
  readonly #rng: Rng;
  readonly #o: Required<SamplingOptions>;

  /** Validates the options (errors say which one is out of range). */
  constructor(options: SamplingOptions = {}) {
    const o = { temperature: 0.6, topK: 0, topP: 0.9, minP: 0, repetitionPenalty: 1, seed: 0, ...options };
    if (!(o.temperature >= 0)) throw new Error(`sampling: temperature must be >= 0, got ${o.temperature}`);
    if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`sampling: topP must be in (0, 1], got ${o.topP}`);
    if (!(o.minP >= 0 && o.minP < 1)) throw new Error(`sampling: minP must be in [0, 1), got ${o.minP}`);
    if (!(Number.isInteger(o.topK) && o.topK >= 0))
      throw new Error(`sampling: topK must be a non-negative integer, got ${o.topK}`);
    if (!(o.repetitionPenalty > 0))
      throw new Error(`sampling: repetitionPenalty must be > 0, got ${o.repetitionPenalty}`);
    this.#o = o;
    this.#rng = new Rng(o.seed);
  }

  /** The next id for `logits` (one position, `[V]`), given the ids seen so far (for the repetition penalty). */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const o = this.#o;
    const scores = Float64Array.from(logits);
    if (o.repetitionPenalty !== 1) {
      for (const id of new Set(history)) {
        const s = scores[id]!;
        scores[id] = s > 0 ? s / o.repetitionPenalty : s * o.repetitionPenalty;
      }
    }
    let best = 0;
    for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
    if (o.temperature === 0) return best;

    // Unnormalised probabilities relative to the most likely token (which has 1).
    const max = scores[best]!;
    const probs = scores; // overwritten in place
    for (let i = 0; i < probs.length; i++) probs[i] = Math.exp((probs[i]! - max) / o.temperature);
    // Each filter raises a probability threshold; sampling then draws among the tokens at or above it, in
    // any order (a draw does not need them sorted). Only one native sort of the values is needed.
    let threshold = o.minP;
    if (o.topK > 0 || o.topP < 1) {
      const sorted = Float64Array.from(probs).sort(); // ascending
      if (o.topK > 0 && o.topK < sorted.length)
        threshold = Math.max(threshold, sorted[sorted.length - o.topK]!);
      if (o.topP < 1) {
        let total = 0;
        for (let j = sorted.length - 1; j >= 0 && sorted[j]! >= threshold; j--) total += sorted[j]!;
        let mass = 0;
        for (let j = sorted.length - 1; j >= 0; j--) {
          mass += sorted[j]!;
          if (mass >= o.topP * total) {
            threshold = Math.max(threshold, sorted[j]!); // ties at the threshold are all kept
            break;
          }
        }
      }
    }
    let kept = 0;
    for (let i = 0; i < probs.length; i++) if (probs[i]! >= threshold) kept += probs[i]!;
    let u = this.#rng.next() * kept;
    for (let i = 0; i < probs.length; i++) {
      if (probs[i]! < threshold) continue;
      u -= probs[i]!;
      if (u < 0) return i;
    }
    return best; // only reached through rounding when u lands at the very end
  }
}
