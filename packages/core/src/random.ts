/**
 * Deterministic random tensors from a seed, for tests and examples: the same seed gives the same values on
 * every machine.
 * @module
 */
import type { DType } from './dtype.js';
import { numel, type Shape } from './shape.js';
import { type Tensor, type TensorOptions, tensor } from './tensor.js';

/** A seeded 32-bit generator (mulberry32): small, fast and good enough for test data. */
export class Rng {
  #state: number;
  /** Starts the sequence for `seed`. */
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** Next uniform value in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Uniform in [min, max). */
  uniform(min = 0, max = 1): number {
    return min + (max - min) * this.next();
  }
  /** Integer in [min, max). */
  int(min: number, max: number): number {
    return min + Math.floor((max - min) * this.next());
  }
  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]: keeps log finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
}

/** Options of the random factories. */
export interface RandomOptions<D extends DType> extends TensorOptions<D> {
  /** The seed (default 0). */
  seed?: number;
}

/**
 * Normally distributed values, `mean + std * N(0, 1)`.
 *
 * @example
 * ```ts
 * import { randn } from '@proj/core';
 * const w = randn([4, 8], { seed: 1, std: 0.02 });
 * console.log(w.shape); // [4, 8]
 * ```
 */
export function randn<const S extends Shape, D extends DType = 'f32'>(
  shape: S,
  options: RandomOptions<D> & { mean?: number; std?: number } = {},
): Tensor<S, D> {
  const rng = new Rng(options.seed ?? 0);
  const { mean = 0, std = 1 } = options;
  const values = new Float64Array(numel(shape));
  for (let i = 0; i < values.length; i++) values[i] = mean + std * rng.normal();
  return tensor(values, shape, options);
}

/** Uniform values in [min, max) (default [0, 1)). */
export function rand<const S extends Shape, D extends DType = 'f32'>(
  shape: S,
  options: RandomOptions<D> & { min?: number; max?: number } = {},
): Tensor<S, D> {
  const rng = new Rng(options.seed ?? 0);
  const { min = 0, max = 1 } = options;
  const values = new Float64Array(numel(shape));
  for (let i = 0; i < values.length; i++) values[i] = rng.uniform(min, max);
  return tensor(values, shape, options);
}

/** Uniform integers in [min, max), e.g. random token ids. */
export function randint<const S extends Shape, D extends 'i32' | 'u32' = 'i32'>(
  shape: S,
  min: number,
  max: number,
  options: RandomOptions<D> = {},
): Tensor<S, D> {
  const rng = new Rng(options.seed ?? 0);
  const values = new Float64Array(numel(shape));
  for (let i = 0; i < values.length; i++) values[i] = rng.int(min, max);
  return tensor(values, shape, { ...options, dtype: (options.dtype ?? 'i32') as D });
}
