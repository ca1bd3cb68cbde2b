/**
 * Sampling on the host: {@link Sampler} draws token ids from logits read back into a `Float32Array`, by
 * the same definition and with the same draws as the `TokenSampler` of `@proj/ops`, which `generate` runs
 * on the model's device (see `@proj/ops`' `sample` module for the definition).
 * @module
 */
import { type SamplingOptions, sampleReference, samplingSettings } from '@proj/ops';

export { isGreedy, type SamplingOptions } from '@proj/ops';

/** Chooses token ids from logits on the host; counts its draws (each draw's noise depends on its number). */
export class Sampler {
  readonly #settings: Required<SamplingOptions>;
  #draws = 0;

  /** Validates the options (errors say which one is out of range). */
  constructor(options: SamplingOptions = {}) {
    this.#settings = samplingSettings(options);
  }

  /** The next id for `logits` (one position, `[V]`), given the ids seen so far (for the repetition penalty). */
  sample(logits: Float32Array, history: readonly number[] = []): number {
    const seen = new Set(history);
    return sampleReference(logits, this.#settings, this.#draws++, (id) => seen.has(id)).id;
  }
}
