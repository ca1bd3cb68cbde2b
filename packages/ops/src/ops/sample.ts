/**
 * Sampling the next token from one position's logits, on the device that computed them: repetition
 * penalty, temperature, then min-p, top-k and top-p filtering, then a seeded draw. On a GPU the chosen id
 * is written to a device tensor and nothing comes back to the host, so a sampled decode step can be
 * replayed and run ahead of the host as a greedy one is.
 *
 * The definition (what {@link sampleReference} computes, and the kernels in `sample-wgsl.ts` in f32):
 * 1. `s[i]` = logit `i`, with the repetition penalty `r` for tokens seen before (`s / r` for `s > 0`,
 *    `s * r` otherwise). A NaN or +Infinity is an error, as is having no token above -Infinity.
 * 2. Temperature 0: the largest `s` (the lowest id among ties). Otherwise `p[i] = exp((s[i] - max s) / T)`.
 * 3. The threshold `tau` starts at `minP`; with `0 < topK < V` it is raised to the k-th largest `p`; with
 *    `topP < 1`, to the largest value `c` among the `p` whose tokens at or above it hold `topP` of the mass
 *    of those at or above `tau`. Every token with `p >= tau` is kept (ties at a threshold all stay).
 * 4. The draw: the kept token with the largest `(s[i] - max s) / T + g[i]`, where `g[i]` is Gumbel noise
 *    hashed from the seed, the draw's number and `i` ({@link gumbelNoise}). This picks token `i` with
 *    probability `p[i]` over the kept mass (the Gumbel-max trick), needs no sorting and no prefix sums,
 *    and is the same draw on the CPU and on a GPU (but for near-ties, where f32 rounding may decide).
 * @module
 */
import { checkShape, cpuData, cpuFloats, type Device, formatShape, type Tensor, zeros } from '@proj/core';
import type { BufferBinding, WebGpuDevice } from '../gpu/device.js';
import { sampleChunk } from '../gpu/variants.js';
import { bind, deviceOf, grid, isGpu, Params } from '../op.js';
import { HIST_WORDS, type SamplePhase, SELECT, STATE, sampleBindings, sampleKernel } from './sample-wgsl.js';

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

/** True when these options pick the argmax with no penalty (so `argmax` does it). */
export function isGreedy(options: SamplingOptions): boolean {
  return (options.temperature ?? 0.6) === 0 && (options.repetitionPenalty ?? 1) === 1;
}

/**
 * The options with their defaults, validated (errors say which one is out of range). The seed may be any
 * safe integer (`Date.now()` too); draws depend on it modulo 2^32.
 */
export function samplingSettings(options: SamplingOptions = {}): Required<SamplingOptions> {
  const o = {
    temperature: options.temperature ?? 0.6,
    topK: options.topK ?? 0,
    topP: options.topP ?? 0.9,
    minP: options.minP ?? 0,
    repetitionPenalty: options.repetitionPenalty ?? 1,
    seed: options.seed ?? 0,
  };
  if (!(o.temperature >= 0 && o.temperature < Number.POSITIVE_INFINITY))
    throw new Error(`sampling: temperature must be finite and >= 0, got ${o.temperature}`);
  if (!(o.topP > 0 && o.topP <= 1)) throw new Error(`sampling: topP must be in (0, 1], got ${o.topP}`);
  if (!(o.minP >= 0 && o.minP < 1)) throw new Error(`sampling: minP must be in [0, 1), got ${o.minP}`);
  if (!(Number.isInteger(o.topK) && o.topK >= 0))
    throw new Error(`sampling: topK must be a non-negative integer, got ${o.topK}`);
  if (!(o.repetitionPenalty > 0 && o.repetitionPenalty < Number.POSITIVE_INFINITY))
    throw new Error(`sampling: repetitionPenalty must be finite and > 0, got ${o.repetitionPenalty}`);
  if (!Number.isSafeInteger(o.seed)) throw new Error(`sampling: seed must be an integer, got ${o.seed}`);
  return { ...o, seed: o.seed >>> 0 };
}

function mix32(v: number): number {
  let x = v >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The Gumbel noise of token `id` in draw number `draw` of a sampler seeded with `seed`: `-log(E)` for the
 * exponential variate `E = -log(1 - w)`, `w` a uniform value in (0, 1) with 23 bits, hashed from the three.
 */
export function gumbelNoise(seed: number, draw: number, id: number): number {
  const key = mix32(mix32((seed ^ 0x9e3779b9) >>> 0) ^ draw);
  const w = ((mix32((mix32(id ^ key) + key) >>> 0) >>> 9) + 0.5) / 8388608;
  return -Math.log(-Math.log1p(-w));
}

/** One draw of {@link sampleReference}, with how close it came to going another way (for tests). */
export interface SampleDetails {
  /** The chosen id. */
  id: number;
  /** The winner's lead over the runner-up among the kept tokens (Infinity with one kept, or none drawn). */
  margin: number;
  /**
   * How far the top-k and min-p thresholds were from keeping one token more or fewer, relative: the gap
   * between the k-th and the next probability, and between `minP` and the nearest probability. (Top-p's
   * cut moves by one token for tiny changes of the mass when it is spread over many tokens: tests move
   * `topP` instead.)
   */
  gap: number;
  /** How many tokens the filters kept (1 at temperature 0). */
  kept: number;
}

/**
 * The CPU reference of the sampler (in f64; see the module for the definition): the id drawn from
 * `logits` (`[V]`) in draw number `draw`, with `seen(id)` telling the tokens the repetition penalty
 * applies to. Throws for broken logits.
 */
export function sampleReference(
  logits: Float32Array,
  settings: Required<SamplingOptions>,
  draw: number,
  seen: (id: number) => boolean = () => false,
): SampleDetails {
  const o = settings;
  const scores = Float64Array.from(logits);
  if (o.repetitionPenalty !== 1) {
    for (let i = 0; i < scores.length; i++) {
      if (!seen(i)) continue;
      const s = scores[i]!;
      scores[i] = s > 0 ? s / o.repetitionPenalty : s * o.repetitionPenalty;
    }
  }
  // Broken logits (NaN or +Infinity, from an overflow upstream) would make every probability NaN and the
  // draw arbitrary: they are an error, as is having no token to choose.
  let best = 0;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s) || s === Number.POSITIVE_INFINITY) {
      throw new Error(`sampling: the logit of token ${i} is ${logits[i]}; the model's output is broken`);
    }
    if (s > scores[best]!) best = i;
  }
  const max = scores[best]!;
  if (!(max > Number.NEGATIVE_INFINITY)) {
    throw new Error(`sampling: no token to choose (${scores.length} logits, none above -Infinity)`);
  }
  if (o.temperature === 0)
    return { id: best, margin: Number.POSITIVE_INFINITY, gap: Number.POSITIVE_INFINITY, kept: 1 };

  const probs = new Float64Array(scores.length); // a loop: TypedArray.map with a closure took twice as long
  for (let i = 0; i < probs.length; i++) probs[i] = Math.exp((scores[i]! - max) / o.temperature);
  let threshold = o.minP;
  let gap = Number.POSITIVE_INFINITY;
  if (o.minP > 0) for (const p of probs) gap = Math.min(gap, Math.abs(p - o.minP) / o.minP);
  if (o.topK > 0 && o.topK < probs.length) {
    const top = largestFirst(probs, (count) => count > o.topK);
    const kth = top[o.topK - 1]!;
    gap = Math.min(gap, (kth - (top[o.topK] ?? 0)) / kth);
    threshold = Math.max(threshold, kth);
  }
  if (o.topP < 1) {
    let total = 0;
    for (const p of probs) if (p >= threshold) total += p;
    const goal = o.topP * total;
    // The largest run of most likely tokens whose mass reaches the goal ends at the cut. Searched in a
    // prefix holding the goal's mass (summed in another order, so with a margin), or failing that in all.
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
      nucleus(largestFirst(probs, () => false));
    if (cut !== undefined) threshold = Math.max(threshold, cut);
  }
  let id = -1;
  let first = Number.NEGATIVE_INFINITY;
  let second = Number.NEGATIVE_INFINITY;
  let kept = 0;
  for (let i = 0; i < probs.length; i++) {
    const p = probs[i]!;
    if (!(p > 0 && p >= threshold)) continue;
    kept++;
    const v = (scores[i]! - max) / o.temperature + gumbelNoise(o.seed, draw, i);
    if (v > first) [second, first, id] = [first, v, i];
    else if (v > second) second = v;
  }
  return { id, margin: first - second, gap, kept };
}

/**
 * The largest values of `probs` (each in [0, 1]), largest first: at least the fewest that satisfy
 * `enough(count, mass)` (mass: their sum), and every value tied with the last one; all of `probs` when
 * none do. One pass files each value by its power of two (its float exponent), which finds how many
 * powers down the prefix reaches; only the values that far down are then sorted: for a trained model's
 * logits at usual temperatures, a few dozen of a vocabulary of 128256.
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

/** The device buffers of a sampler on a GPU. */
interface GpuSamplerState {
  state: Tensor; // u32 [STATE.WORDS]: the draw counter and one draw's selection
  hist: Tensor; // u32 [HIST_WORDS]
  parts: Tensor; // u32 [3 * chunks]: each chunk's best (key, id) and flags
  seen?: Tensor; // u32 [V]: 1 for the tokens the repetition penalty applies to
}

/**
 * Draws token ids from logits on their device, keeping its state there (the draw counter, and the tokens
 * seen for the repetition penalty): `sample(logits, ids)` writes the id into `ids` and reads nothing back,
 * so a GPU decode loop can record steps ahead of the host. A sequence of draws depends only on the seed,
 * the options and the logits: the same on every run, and on the CPU and a GPU but for near-ties.
 *
 * On a GPU a draw is 10 small dispatches (16 with top-k); broken logits give the id -1 there (the CPU
 * throws at once), which the caller checks when it reads the id.
 *
 * @example
 * ```ts
 * import { cpu, fromArray, tensor } from '@proj/core';
 * import { TokenSampler } from '@proj/ops';
 * const sampler = new TokenSampler(cpu, 4, { temperature: 1, topK: 2, seed: 7 });
 * const id = fromArray(new Int32Array(1), [1], { dtype: 'i32' });
 * sampler.sample(tensor([0.1, 3, 2.5, -1], [1, 4]), id); // only tokens 1 and 2 can be drawn
 * console.log([1, 2].includes((await id.toArray())[0]!)); // true
 * sampler.dispose();
 * ```
 */
export class TokenSampler {
  /** The validated options. */
  readonly settings: Required<SamplingOptions>;
  readonly #device: Device;
  readonly #vocab: number;
  readonly #gpu: GpuSamplerState | undefined;
  readonly #seenOnHost: Uint8Array | undefined;
  #draws = 0; // on the CPU; a GPU counts its draws in its state buffer (replayed draws run no code here)
  #disposed = false;
  /** Tokens per workgroup of the per-chunk kernels. */
  readonly #chunk: number;

  /** A sampler for logits of `vocab` tokens on `device`. */
  constructor(device: Device, vocab: number, options: SamplingOptions = {}) {
    checkShape(
      Number.isInteger(vocab) && vocab >= 1,
      'sample',
      () => `vocab = ${vocab} must be a positive integer`,
    );
    this.settings = samplingSettings(options);
    this.#device = device;
    this.#vocab = vocab;
    const penalty = this.settings.repetitionPenalty !== 1;
    this.#chunk = isGpu(device) ? sampleChunk(device.caps, vocab) : vocab;
    if (isGpu(device)) {
      const u32 = (n: number) => zeros([n], { dtype: 'u32', device });
      this.#gpu = {
        state: u32(STATE.WORDS),
        hist: u32(HIST_WORDS),
        parts: u32(3 * Math.ceil(vocab / this.#chunk)),
        seen: penalty ? u32(vocab) : undefined,
      };
    } else if (penalty) {
      this.#seenOnHost = new Uint8Array(vocab);
    }
  }

  /** Whether {@link TokenSampler.dispose} has run. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Marks `ids` as seen, for the repetition penalty: a prompt's ids, before the first draw (each draw marks
   * the id it draws itself).
   */
  see(ids: readonly number[]): void {
    this.#checkAlive();
    for (const id of ids) {
      if (!(Number.isInteger(id) && id >= 0 && id < this.#vocab))
        throw new RangeError(`sample: id ${id} is outside [0, ${this.#vocab})`);
    }
    if (this.#seenOnHost) for (const id of ids) this.#seenOnHost[id] = 1;
    const seen = this.#gpu?.seen;
    if (!seen) return;
    const one = new Uint8Array(Uint32Array.of(1).buffer);
    for (const id of new Set(ids)) (this.#device as WebGpuDevice).write(seen.storage, 4 * id, one);
  }

  /**
   * Draws the next token from `logits` (f32, `[V]` or `[1, V]`, on the sampler's device) into `ids` (i32
   * `[1]`): nothing is read back.
   */
  sample(logits: Tensor, ids: Tensor): void {
    this.#checkAlive();
    const V = this.#vocab;
    checkShape(
      logits.dtype === 'f32' && logits.numel === V && logits.shape[logits.shape.length - 1] === V,
      'sample',
      () => `logits ${formatShape(logits.shape)} ${logits.dtype} must be f32 [${V}] or [1, ${V}]`,
    );
    checkShape(
      ids.dtype === 'i32' && ids.numel === 1,
      'sample',
      () => `ids ${formatShape(ids.shape)} ${ids.dtype} must be one i32`,
    );
    const device = deviceOf('sample', logits, ids);
    checkShape(device === this.#device, 'sample', () => 'logits are on another device than the sampler');
    const draw = this.#draws++;
    if (!this.#gpu) {
      const seen = this.#seenOnHost;
      const { id } = sampleReference(cpuFloats(logits), this.settings, draw, seen && ((i) => seen[i] === 1));
      if (seen) seen[id] = 1;
      cpuData(ids as Tensor<readonly [1], 'i32'>)[0] = id;
      return;
    }
    this.#record(device as WebGpuDevice, this.#gpu, logits, ids);
  }

  #record(device: WebGpuDevice, g: GpuSamplerState, logits: Tensor, ids: Tensor): void {
    const o = this.settings;
    const V = this.#vocab;
    const chunk = this.#chunk;
    const chunks = Math.ceil(V / chunk);
    const penalty = !!g.seen;
    // Top-p's floor: the kept tokens under (1 - topP) / 4V hold less than (1 - topP) / 4 of the kept mass
    // (which is at least 1, the most likely token's), so those at or above it hold more than topP of it and
    // the cut is never under it. The histograms skip them, only adding up their mass for the total: for a
    // trained model's logits nearly all of the vocabulary, which would otherwise crowd into the low bins.
    const floor = (1 - o.topP) / (4 * V);
    const tensors: Record<string, Tensor | undefined> = { x: logits, ids, ...g };
    const run = (phase: SamplePhase, workgroups: number, shift = 0, mode = 0, last = false) =>
      device.dispatch({
        op: 'sample',
        key: `sample-${phase}${penalty ? ':penalty' : ''}`,
        wgsl: () => sampleKernel(phase, penalty),
        buffers: sampleBindings(phase, penalty).map((name): BufferBinding => bind('sample', tensors[name]!)),
        uniforms: new Params()
          .u32(V)
          .u32(chunk)
          .u32(chunks)
          .u32(shift)
          .u32(mode)
          .u32(last ? 1 : 0)
          .u32(o.topK)
          .u32(o.seed)
          .f32(o.temperature)
          .f32(o.topP)
          .f32(o.minP)
          .f32(o.repetitionPenalty)
          .f32(floor)
          .data(),
        workgroups: grid(workgroups, device.caps.maxWorkgroupsPerDimension),
      });
    // A radix select of a threshold: 10 bits of the probabilities' f32 bits per round.
    const select = (mode: number) => {
      for (const shift of [20, 10, 0]) {
        run('hist', chunks, shift, mode);
        run('scan', 1, shift, mode, shift === 0);
      }
    };
    run('max', chunks);
    run('start', 1);
    if (o.temperature > 0) {
      if (o.topK > 0 && o.topK < V) select(SELECT.COUNT);
      if (o.topP < 1) select(SELECT.MASS);
      run('draw', chunks);
    }
    run('finish', 1);
  }

  #checkAlive(): void {
    if (this.#disposed) throw new Error('sample: the sampler has been disposed');
  }

  /** Frees the sampler's device buffers. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#gpu) for (const t of Object.values(this.#gpu)) t?.dispose();
  }
}
