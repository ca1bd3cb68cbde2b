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
    // Broken logits (NaN or +Infinity, from an overflow upstream) would turn every probability into NaN and
    // the draw into an arbitrary id: they are an error, as is having no token to choose.
    let best = 0;
    for (let i = 0; i < scores.length; i++) {
      const s = scores[i]!;
      if (Number.isNaN(s) || s === Number.POSITIVE_INFINITY) {
        throw new Error(`sampling: the logit of token ${i} is ${logits[i]}; the model's output is broken`);
      }
      if (s > scores[best]!) best = i;
    }
    if (!(scores[best]! > Number.NEGATIVE_INFINITY)) {
      throw new Error(`sampling: no token to choose (${scores.length} logits, none above -Infinity)`);
    }
    if (o.temperature === 0) return best;

    // Unnormalised probabilities relative to the most likely token (which has 1).
    const max = scores[best]!;
    const probs = scores; // overwritten in place
    for (let i = 0; i < probs.length; i++) probs[i] = Math.exp((probs[i]! - max) / o.temperature);
    // Each filter raises a probability threshold; sampling then draws among the tokens at or above it, in
    // any order (a draw does not need them sorted). The filters need only the largest few probabilities in
    // order, so only those are sorted (`largestFirst`), not the whole vocabulary.
    let threshold = o.minP;
    if (o.topK > 0 && o.topK < probs.length) {
      threshold = Math.max(threshold, largestFirst(probs, (count) => count >= o.topK)[o.topK - 1]!);
    }
    if (o.topP < 1) {
      let total = 0;
      for (let i = 0; i < probs.length; i++) if (probs[i]! >= threshold) total += probs[i]!;
      const goal = o.topP * total;
      // The smallest run of most likely tokens holding the goal's mass: its last one sets the threshold
      // (ties at it are all kept). The run is searched in a prefix with the mass (summed in another order,
      // so with a margin for rounding), or, should rounding still fall short, in the whole sorted vocabulary.
      const nucleus = (sorted: Float64Array) => {
        let mass = 0;
        for (const p of sorted) {
          mass += p;
          if (mass >= goal) return p;
        }
        return undefined;
      };
      const cut =
        nucleus(largestFirst(probs, (_, mass) => mass >= goal * (1 + 1e-9))) ??
        nucleus(largestFirst(probs, () => false))!;
      threshold = Math.max(threshold, cut);
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

/**
 * The largest values of `probs` (each in (0, 1]; 0 for an underflow), largest first: at least the fewest
 * that satisfy `enough(count, mass)` (mass: their sum), and every value tied with the last one; all of
 * `probs` when none do. One pass files each value by its power of two (its float exponent), which finds
 * how many powers down the prefix reaches; only the values that far down are then sorted: for a trained
 * model's logits at usual temperatures, a few dozen of a vocabulary of 128256 (a draw took 14 ms with a
 * full sort, 2.4 ms with this; `sampler.*.ms` in the benchmarks).
 */
function largestFirst(probs: Float64Array, enough: (count: number, mass: number) => boolean): Float64Array {
  const BINS = 64; // 2^-63 and below (zeros too) share the last bin
  const counts = new Float64Array(BINS);
  const masses = new Float64Array(BINS);
  const bins = new Uint8Array(probs.length);
  const high = new Uint32Array(probs.buffer, probs.byteOffset, probs.length * 2);
  for (let i = 0; i < probs.length; i++) {
    // The float exponent, from the high word of the (little-endian) double: p in [2^-b, 2^(1-b)) goes to
    // bin b (p = 1 to bin 0).
    const bin = Math.min(BINS - 1, 1023 - ((high[2 * i + 1]! >>> 20) & 0x7ff));
    bins[i] = bin;
    counts[bin]! += 1;
    masses[bin]! += probs[i]!;
  }
  let last = BINS - 1;
  for (let b = 0, count = 0, mass = 0; b < BINS; b++) {
    count += counts[b]!;
    mass += masses[b]!;
    if (enough(count, mass)) {
      last = b;
      break;
    }
  }
  const picked: number[] = [];
  for (let i = 0; i < probs.length; i++) if (bins[i]! <= last) picked.push(probs[i]!);
  return Float64Array.from(picked).sort().reverse();
}
