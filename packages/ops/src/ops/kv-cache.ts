/**
 * The key/value cache of one attention layer: keys and values of every position seen so far, kept on the
 * device so that a decode step computes k and v for its new token only and attends to all earlier ones.
 *
 * Same semantics as Meta's reference: a step at position `start` with `S` new tokens writes rows
 * `[start, start + S)` and attends to rows `[0, start + S)`.
 * @module
 */
import {
  type Check,
  checkShape,
  cpuData,
  cpuFloats,
  type Device,
  type DimsMatch,
  empty,
  formatShape,
  keep,
  type Last,
  type Shape,
  type ShapesMatch,
  type Tensor,
} from '@proj/core';
import { checkFloat, deviceOf, grid, isGpu, Params, runs } from '../op.js';
import { declare, LINEAR_WORKGROUP, loader, params } from '../wgsl.js';
import { type AttentionOptions, attention } from './attention.js';

/** Sizes of one layer's cache. */
export interface KvCacheOptions<Hkv extends number = number, Dh extends number = number> {
  /** Positions the cache can hold (the context length). */
  maxSeq: number;
  /** Key/value heads (can be fewer than query heads: grouped-query attention). */
  kvHeads: Hkv;
  /** Elements per head. */
  headDim: Dh;
}

/** Compile-time rule of {@link KvCache.append}: k and v are `[S, kvHeads, headDim]`, v shaped like k. */
export type KvAppendCheck<K extends Shape, V extends Shape, Hkv extends number, Dh extends number> = Check<
  ShapesMatch<K, readonly [number, Hkv, Dh]> extends true ? ShapesMatch<K, V> : false,
  'KvCache.append: k and v must both be [S, kvHeads, headDim] of the cache'
>;

const WORKGROUP = 256;

/**
 * One layer's keys and values, `[maxSeq, kvHeads, headDim]` f32 each, of which the first `length` rows
 * are filled. The cache owns its tensors (scopes do not free them): call `dispose()` when done.
 *
 * @example
 * ```ts
 * import { cpu, randn } from '@proj/core';
 * import { KvCache } from '@proj/ops';
 * const cache = new KvCache(cpu, { maxSeq: 16, kvHeads: 2, headDim: 8 });
 * // prefill 3 tokens, then attend with their queries (8 query heads share the 2 kv heads)
 * cache.append(randn([3, 2, 8], { seed: 1 }), randn([3, 2, 8], { seed: 2 }));
 * const out = cache.attend(randn([3, 8, 8], { seed: 3 })); // positions 0..2
 * console.log(out.shape, cache.length); // [3, 8, 8] 3
 * cache.dispose();
 * ```
 */
export class KvCache<Hkv extends number = number, Dh extends number = number> {
  /** Keys, row = position (rows at or past `length` hold stale data and are never read). */
  readonly k: Tensor<readonly [number, Hkv, Dh], 'f32'>;
  /** Values, laid out like `k`. */
  readonly v: Tensor<readonly [number, Hkv, Dh], 'f32'>;
  /** Positions the cache can hold. */
  readonly maxSeq: number;
  /** Key/value heads. */
  readonly kvHeads: Hkv;
  /** Elements per head. */
  readonly headDim: Dh;
  #length = 0;

  /** Allocates (uninitialised: only filled rows are ever read) keys and values on `device`. */
  constructor(device: Device, options: KvCacheOptions<Hkv, Dh>) {
    const { maxSeq, kvHeads, headDim } = options;
    checkShape(
      [maxSeq, kvHeads, headDim].every((d) => Number.isSafeInteger(d) && d > 0),
      'KvCache',
      () => `maxSeq ${maxSeq}, kvHeads ${kvHeads} and headDim ${headDim} must be positive integers`,
    );
    const shape = [maxSeq, kvHeads, headDim] as const;
    this.k = keep(empty(shape, 'f32', device));
    this.v = keep(empty(shape, 'f32', device));
    this.maxSeq = maxSeq;
    this.kvHeads = kvHeads;
    this.headDim = headDim;
  }

  /** Positions filled so far (the next append writes at this row). */
  get length(): number {
    return this.#length;
  }

  /**
   * Writes `k`, `v` (`[S, kvHeads, headDim]`, any float dtype, stored as f32) at rows
   * `[length, length + S)` in place and advances `length` by `S`. On WebGPU only those rows of the cache
   * are bound (it may be larger than one storage binding), and k and v are split by rows if they are.
   */
  append<K extends Shape, V extends Shape>(k: Tensor<K> & KvAppendCheck<K, V, Hkv, Dh>, v: Tensor<V>): void {
    const op = 'KvCache.append';
    const shapes = () => `k ${formatShape(k.shape)}, v ${formatShape(v.shape)}`;
    checkShape(
      k.rank === 3 && k.shape[1] === this.kvHeads && k.shape[2] === this.headDim,
      op,
      () =>
        `k must be [S, ${this.kvHeads}, ${this.headDim}] (the cache's kv heads and head dim): ${shapes()}`,
    );
    checkShape(
      v.rank === 3 && v.shape.every((d, i) => d === k.shape[i]),
      op,
      () => `v must have k's shape: ${shapes()}`,
    );
    const rows = k.shape[0]!;
    checkShape(
      this.#length + rows <= this.maxSeq,
      op,
      () =>
        `${rows} new rows after ${this.#length} filled would pass maxSeq = ${this.maxSeq} (${shapes()}); reset() or make a larger cache`,
    );
    checkFloat(op, k, v);
    const device = deviceOf(op, k, v, this.k);
    const row = this.kvHeads * this.headDim;
    if (!isGpu(device)) {
      cpuData(this.k).set(cpuFloats(k), this.#length * row);
      cpuData(this.v).set(cpuFloats(v), this.#length * row);
    } else {
      // Rows of k and v in runs that fit a binding, each written to the rows of the cache it lands in; the
      // cache is bound from row `length` on (a long context's cache can be larger than one binding).
      const tensors = [k, v, this.k, this.v];
      for (const run of runs(op, tensors, [row, row, row, row], rows, [0, 0, this.#length, this.#length])) {
        const [k0, v0, c0] = run.bases as number[];
        const n = run.count * row;
        const uniforms = new Params().u32(n).u32(k0!).u32(v0!).position(c0!, row); // the rows written move
        device.dispatch({
          op,
          key: `kv-append:${k.dtype}:${v.dtype}`,
          wgsl: () => `
${declare(0, 'k', k.dtype)}
${declare(1, 'v', v.dtype)}
${declare(2, 'cacheK', 'f32', 'read_write')}
${declare(3, 'cacheV', 'f32', 'read_write')}
${params(4, { n: 'u32', k0: 'u32', v0: 'u32', c0: 'u32' })}
${loader('k', k.dtype)}
${loader('v', v.dtype)}
// [S, Hkv, Dh] -> rows [length, length + S) of [maxSeq, Hkv, Dh]: both are contiguous, so a flat copy of
// the run's elements, which start at element k0, v0 and c0 of the bindings (k and v of the cache alike).
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  let i = wg * ${WORKGROUP}u + lid;
  if (i >= p.n) { return; }
  cacheK[p.c0 + i] = k_at(p.k0 + i);
  cacheV[p.c0 + i] = v_at(p.v0 + i);
}`,
          buffers: run.bindings,
          uniforms: uniforms.data(),
          positional: uniforms.positional,
          workgroups: grid(Math.ceil(n / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
        });
      }
    }
    this.#length += rows;
  }

  /**
   * Attention of `q [S, Hq, headDim]` (the queries of the last `S` appended positions) over the filled
   * rows: `attention(q, k, v, { offset: length - S, length })`. Append this step's keys and values first.
   */
  attend<Q extends Shape>(
    q: Tensor<Q> &
      Check<DimsMatch<Last<Q>, Dh>, 'KvCache.attend: q must be [S, Hq, headDim] with the cache headDim'>,
    options: Omit<AttentionOptions, 'offset' | 'length'> = {},
  ): Tensor<Q, 'f32'> {
    const rows = q.shape[0] ?? 0;
    checkShape(
      rows <= this.#length,
      'KvCache.attend',
      () =>
        `q ${formatShape(q.shape)} has ${rows} rows but the cache holds ${this.#length}: append this step's k and v first`,
    );
    const all = (t: Tensor) => t as Tensor<Shape>;
    const out = attention(all(q), all(this.k), all(this.v), {
      ...options,
      offset: this.#length - rows,
      length: this.#length,
    });
    return out as Tensor<Q, 'f32'>;
  }

  /**
   * Claims rows `[length, length + rows)` for an op that writes keys and values itself (such as
   * `ropeQkv`, which rotates and stores them in one pass), advances `length`, and returns the first row.
   */
  reserve(rows: number): number {
    checkShape(
      Number.isSafeInteger(rows) && rows >= 0 && this.#length + rows <= this.maxSeq,
      'KvCache.reserve',
      () =>
        `${rows} new rows after ${this.#length} filled would pass maxSeq = ${this.maxSeq}; reset() or make a larger cache`,
    );
    const at = this.#length;
    this.#length += rows;
    return at;
  }

  /** Empties the cache for a new sequence (the memory is kept). */
  reset(): void {
    this.#length = 0;
  }

  /**
   * Forgets the positions from `length` on, keeping the first `length` (a prompt's prefix that the next
   * sequence shares): the rows after it are written again by the next append.
   */
  truncate(length: number): void {
    checkShape(
      Number.isSafeInteger(length) && length >= 0 && length <= this.#length,
      'KvCache.truncate',
      () => `length = ${length} must be an integer in [0, ${this.#length}] (the positions filled)`,
    );
    this.#length = length;
  }

  /** Frees the keys and values. */
  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }

  /** So that `using cache = new KvCache(...)` frees it at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** One {@link KvCache} per layer, all of the same size, on `device`. */
export function createKvCaches<Hkv extends number, Dh extends number>(
  device: Device,
  options: KvCacheOptions<Hkv, Dh> & {
    /** Number of layers. */
    layers: number;
  },
): KvCache<Hkv, Dh>[] {
  return Array.from({ length: options.layers }, () => new KvCache(device, options));
}
