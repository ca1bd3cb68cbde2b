/**
 * The one place where kernel variants and tile sizes are chosen from the adapter's capabilities. The
 * kernels themselves take a variant and know nothing of adapters.
 *
 * Two performance shapes, measured (numbers in `docs/benchmarks/ops.md`):
 * - Software drivers (lavapipe): a workgroup runs as SIMD lanes on one CPU thread, barriers switch
 *   coroutines, and every storage load is a scalar load per lane and 32-bit word, with a bounds check. What
 *   counts is the number of words each lane loads: register blocks of outputs per invocation, no shared
 *   memory, and x (the same for every lane along N) loaded once per subgroup and passed on with
 *   `subgroupBroadcast`.
 * - Real GPUs want many threads per workgroup, tiles staged in shared memory, subgroup reductions and
 *   several loads in flight per thread.
 * @module
 */
import type { DType } from '@proj/core';
import type { GpuCaps } from './caps.js';

/** How a decode-time matrix-vector kernel (`linear` with M = 1..8 rows) is laid out. */
export interface GemvVariant {
  /** Invocations per workgroup; they split each weight row along K, each reading 16 bytes at a time. */
  workgroupSize: number;
  /** Weight rows per workgroup; every invocation keeps `rows * M` running sums. */
  rows: number;
  /**
   * How the invocations' partial sums are combined: `subgroup` adds within each subgroup (`subgroupAdd`),
   * then across subgroups in shared memory; `shared` is a shared-memory tree.
   */
  reduce: 'subgroup' | 'shared';
  /** K steps per loop iteration (default 1): more loads in flight per invocation. */
  unroll?: number;
}

/** How a prefill-time matrix product (`linear` with M > 8 rows, `matmul`) is laid out. */
export interface GemmVariant {
  /**
   * `register`: every invocation computes a `tileM x tileN` block in registers straight from memory (no
   * shared memory, no barriers). `tiled`: the workgroup stages `[tileM * 16, 16]` and `[tileN * 16, 16]`
   * tiles in shared memory and each of its 16 x 16 invocations computes a `tileM x tileN` block.
   * `naive`: one output per invocation (the benchmark's baseline).
   */
  kind: 'register' | 'tiled' | 'naive';
  /** Output rows per invocation. */
  tileM: number;
  /** Output columns per invocation. */
  tileN: number;
  /** Workgroup size along the output columns (`register` and `naive`; `tiled` is always 16). */
  groupN: number;
  /** Workgroup size along the output rows (`register` and `naive`; `tiled` is always 16). */
  groupM: number;
  /**
   * `register` only, with 8 x 1 lanes: the lanes share x through `subgroupBroadcast` instead of each
   * loading it (software drivers pay one scalar load per lane and word).
   */
  shareX?: boolean;
  /**
   * With `shareX` and `tileM` a multiple of 4, on subgroups of 8 or more: `linear` first copies x into
   * groups of 4 rows with each element's 4 values side by side (`[ceil(M / 4), K, 4]`, f32), so that a lane
   * loads one element of 4 rows with one 16-byte load.
   */
  interleaveX?: boolean;
  /**
   * `tiled` only, with `shader-f16` and `tileN` even: the tiles are staged in f16 and every 16-step K tile
   * is multiplied and summed in f16, two output columns per `vec2<f16>` (packed half-precision
   * multiply-adds on GPUs that have them, and half the shared memory read per product); each tile's sums
   * are then added to f32 sums. For x in f16, where the caller has chosen half precision: see
   * {@link gemmVariant}.
   */
  f16?: boolean;
}

/**
 * The lanes and rows per lane of the software GEMM kernel ({@link gemmVariant}): it reads weights fastest
 * in the packed layout of `gpu/packing.ts` with these same numbers.
 */
export const SOFTWARE_LANES = { lanes: 8, rowsPerLane: 4 } as const;

/**
 * The layout `prepareLinearWeight` gives weights on this adapter: packed for software drivers with
 * subgroups (their linear kernel reads packed weights at 0.8-0.9 of the read probe on lavapipe, row-major
 * ones at about 0.5, because each lane reads its own rows: `gpu/packing.ts`); row-major (undefined) on
 * GPUs, whose kernels read along the rows.
 */
export function weightPacking(caps: GpuCaps): typeof SOFTWARE_LANES | undefined {
  return caps.software && caps.subgroups ? SOFTWARE_LANES : undefined;
}

/** The most rows of x for which `linear` is a decode (every weight read once for all the rows). */
export const DECODE_ROWS = 8;

/**
 * The largest M that runs the GEMV kernel ({@link gemvVariant}); larger M runs a GEMM kernel
 * ({@link gemmVariant}). Real GPUs: the GEMV serves all of decode. Software drivers: none, because there
 * every invocation pays a scalar load (with a bounds check) per 32-bit word it reads, and the GEMV's lanes
 * each read their own slice of x (8 words of x per 16 of W with 4 rows per workgroup); the register kernel
 * with x shared through the subgroup reads W once for all M rows and x 8 times less (on lavapipe M = 1
 * used 25% less CPU time than the best GEMV layout, M = 8 ran 6x faster).
 */
export function gemvMaxRows(caps: GpuCaps): number {
  return caps.software ? 0 : DECODE_ROWS;
}

/**
 * The GEMV layout. Real GPUs: 128 invocations over 4 weight rows, each reading consecutive 16-byte words
 * of the rows, two K steps per loop iteration (more loads in flight), reduced with `subgroupAdd` where
 * subgroups exist, else a shared-memory tree. On an H100 (Vulkan) this read the 525 MB lm_head at 1.2
 * TB/s against 1.0 for 256 invocations without unrolling (see `docs/benchmarks/ops.md`). Software
 * drivers do not use the GEMV ({@link gemvMaxRows}); the layout given for them (one subgroup of 8 lanes
 * over 4 rows; more rows per workgroup ran slower on lavapipe) serves tests that force it.
 */
export function gemvVariant(caps: GpuCaps): GemvVariant {
  const reduce = caps.subgroups ? 'subgroup' : 'shared';
  if (caps.software) return { workgroupSize: 8, rows: 4, reduce };
  return { workgroupSize: 128, rows: 4, reduce, unroll: 2 };
}

/**
 * The layout of `linear`'s matrix product for an adapter and `m` rows of x.
 *
 * Software: register blocks of `tileM x 4` outputs per invocation, 8 lanes along the output columns, x
 * shared through the subgroup, no shared memory and no barriers; `tileM` is `m` itself for decode (so W is
 * read once). Measured on lavapipe for 128 x 2048 x 2048 (bf16 W, row-major): 31 GFLOPS, against 13 for
 * the same blocks loading x per lane, 6 for one output per invocation, and 3 for the shared-memory tiled
 * kernel; with weights packed for it ({@link weightPacking}) and x read one element per lane, 49-53
 * GFLOPS with 8 rows per invocation (12: within noise, 16: slower, 20: registers spilled). Prefill (more
 * than 8 rows) on subgroups of 8 or more reads x interleaved by 4 rows (`interleaveX`): each lane then
 * loads 4 rows' values with one load instead of four, and with x that cheap, 16 rows per invocation (each
 * weight word loaded once per 16 rows) run at 65-69 GFLOPS (12: 61, 20: 65, 24 and more: registers
 * spilled, 35). `interleave: false` asks for the layout without it (where `linear` cannot interleave x:
 * a norm or SwiGLU folded into the kernel, x split over several bindings). Real GPUs: 64 x 64 output tiles
 * staged through shared memory, 4 x 4 outputs per invocation; for an f16 `x` on adapters with `shader-f16`
 * the tiles are f16 and multiplied in f16 (`GemmVariant.f16`: x in f16 is the caller's choice of half
 * precision, as `LlamaOptions.compute`; f32 x is always multiplied in f32). Software adapters keep the
 * register kernel, in f32, for every x: on lavapipe it ran 128 x 2048 x 2048 (f16 x) at 36-40 GFLOPS, the
 * f16 tiled kernel at 5.1-5.3 (the f32 tiled one at 3.3-4.4).
 */
export function gemmVariant(
  caps: GpuCaps,
  m = DECODE_ROWS + 1,
  interleave = true,
  x: DType = 'f32',
): GemmVariant {
  if (caps.software) {
    const { lanes, rowsPerLane } = SOFTWARE_LANES;
    const base = {
      kind: 'register',
      tileN: rowsPerLane,
      groupN: lanes,
      groupM: 1,
      shareX: caps.subgroups,
    } as const;
    if (interleave && m > DECODE_ROWS && caps.subgroupMinSize >= lanes) {
      return { ...base, tileM: 16, interleaveX: true };
    }
    return { ...base, tileM: Math.min(m, DECODE_ROWS) };
  }
  const tiled = { kind: 'tiled', tileM: 4, tileN: 4, groupN: 16, groupM: 16 } as const;
  return x === 'f16' && caps.f16 ? { ...tiled, f16: true } : tiled;
}

/**
 * The layout of `matmul` (`[M, K] x [K, N]`, which no model here runs in its hot path): the register
 * blocks of 8 x 4 outputs on software adapters, the tiled kernel on GPUs.
 */
export function matmulVariant(caps: GpuCaps): GemmVariant {
  return gemmVariant(caps, DECODE_ROWS); // 8 rows per invocation, x not interleaved (linear's step)
}

/**
 * The most weight rows (N) for which a software adapter folds an RMSNorm into `linear` (see
 * {@link fusesRmsnorm}).
 */
export const SOFTWARE_NORM_FOLD_MAX_ROWS = 4096;

/**
 * Whether `linear(x, W, { norm })` folds the RMSNorm into its kernel for `m` rows of x and `n` rows of W
 * (where the kernel can): for decode rows, and on software adapters only up to
 * {@link SOFTWARE_NORM_FOLD_MAX_ROWS} rows of W. Folded, every workgroup loads the norm's weight beside the
 * x values it loads, so the software kernel (32 rows of W per workgroup) loads it N / 32 times over, an
 * eighteenth more loads per weight word; a separate `rmsnorm` dispatch costs about 0.1 ms there. On
 * lavapipe, 1B decode with the gate/up and output-head norms separate ran at 6.76-6.97 tok/s against
 * 6.57-6.73 folded (three alternating pairs; the q/k/v projection, N = 3072, is faster folded). A prefill
 * kernel's workgroups each reload the norm's weight with x too, which cost the software kernel 8% on
 * lavapipe (64-token prefill, interleaved runs) for one dispatch saved per norm; GPU prefill's tiled kernel
 * does not fold it at all.
 */
export function fusesRmsnorm(caps: GpuCaps, m: number, n: number): boolean {
  return m <= DECODE_ROWS && (!caps.software || n <= SOFTWARE_NORM_FOLD_MAX_ROWS);
}

/**
 * Whether `linear` computes SwiGLU inside the matmul that consumes it (`swigluLinear`) for `m` rows, or runs
 * `swigluPacked` first. Fused, every workgroup recomputes `silu(gate) * up` for the x values it loads (an
 * exp each, N / 32 times over for N output columns): on GPUs that is cheap next to a dispatch, for decode
 * rows; on software adapters it cost more than it saved (1B decode 5.4 -> 4.8 tok/s, prefill -40% on
 * lavapipe), as it does for prefill anywhere.
 */
export function fusesSwiglu(caps: GpuCaps, m: number): boolean {
  return !caps.software && m <= DECODE_ROWS;
}

/**
 * Whether `ropeQkvAttention` runs a decode step as one kernel (attention rotating q and the new key
 * itself and writing the key and value to the cache) rather than `ropeQkv` and `attention`: on GPUs, where
 * each dispatch costs a few microseconds of a millisecond-long step (16 of a 1B step's 100). Software
 * adapters run `attention`'s `lanes` kernel, which has no such variant.
 */
export function fusesRopeIntoAttention(caps: GpuCaps): boolean {
  return !caps.software;
}

/** The baseline GEMM of the benchmarks: one output per invocation, 8 x 8 invocations per workgroup. */
export const NAIVE_GEMM: GemmVariant = { kind: 'naive', tileM: 1, tileN: 1, groupN: 8, groupM: 8 };

/** How `rmsnorm` lays out a row's workgroup (see {@link rmsnormLayout}). */
export interface RmsnormLayout {
  /** Invocations per row. */
  workgroup: number;
  /** True: the workgroup is one subgroup and adds up with `subgroupAdd`; false: a shared-memory tree. */
  lanes: boolean;
}

/**
 * `rmsnorm`'s workgroup for rows of `d`: one subgroup of 8 lanes on software adapters with subgroups of 8
 * (no barriers, which a software driver executes as coroutine switches); elsewhere 64 invocations with a
 * shared-memory tree, 256 for rows of 8192 and more (lavapipe ran 256 about 3x slower than 64 for
 * D = 2048, and GPUs have rows enough to fill them).
 */
export function rmsnormLayout(caps: GpuCaps, d: number): RmsnormLayout {
  if (caps.software && caps.subgroupMinSize >= 8) return { workgroup: 8, lanes: true };
  return { workgroup: d >= 8192 ? 256 : 64, lanes: false };
}

/**
 * How `attention` runs. `blocks`: a workgroup of 64 invocations per (query row, head, chunk of keys) scores
 * 64 keys at a time, one per invocation, with the softmax in shared memory, and a decode step's keys can be
 * split over several workgroups (GPUs want that). `lanes`: one subgroup of 8 lanes per (query row, kv head,
 * up to 4 of its query heads), the lanes along the head dims, dot products and the softmax through subgroup
 * operations, no shared memory and no barriers (which a software driver executes as coroutine switches),
 * and each key and value loaded once for all the query heads that share it. On lavapipe `blocks` ran a
 * 512-token prefill's attention at about 1 GFLOPS (0.86 s per layer of the 1B shape) and a decode step's
 * in 0.5 ms per layer; see `docs/benchmarks/ops.md` for `lanes`. `lanes` needs subgroups of 8 or more
 * and a head size that is a multiple of 32.
 */
export type AttentionKernel = 'blocks' | 'lanes';

/** The attention kernel for an adapter and head size (see {@link AttentionKernel}). */
export function attentionKernel(caps: GpuCaps, headDim: number): AttentionKernel {
  return caps.software && lanesAttentionFits(caps, headDim) ? 'lanes' : 'blocks';
}

/**
 * Query rows per workgroup of the `lanes` attention kernel, for a run of `rows` query rows: 8 (each key and
 * value row is loaded once for all 8), or 1 for a single row (decode). A 512-token prefill of the 1B shape on
 * lavapipe: 55-57 ms with 8 rows, 62-74 with 4, 104-110 with 1.
 */
export function lanesAttentionRows(rows: number): number {
  return rows > 1 ? 8 : 1;
}

/** Whether the `lanes` attention kernel can run: subgroups of at least 8, a head size a multiple of 32. */
export function lanesAttentionFits(caps: GpuCaps, headDim: number): boolean {
  return caps.subgroups && caps.subgroupMinSize >= 8 && headDim % 32 === 0 && headDim <= 256;
}

/**
 * Tokens per workgroup of `TokenSampler`'s per-chunk kernels, for a vocabulary of `vocab`: 4096 on GPUs
 * (32 workgroups for Llama 3's 128256: many in flight, each short); on software adapters a quarter of the
 * vocabulary, rounded up to a multiple of 4096, because each workgroup of 256 invocations costs a driver
 * its barriers' coroutine switches. A draw over 128256 logits on lavapipe, with the default options / with
 * top-k 40: 2.5 / 4.0 ms in chunks of 4096, 1.4 / 2.3 in 16384, 1.2-1.6 / 2.1-2.2 in 32768, 1.4 / 2.6 in
 * one chunk.
 */
export function sampleChunk(caps: GpuCaps, vocab: number): number {
  const unit = 4096;
  return caps.software ? Math.max(unit, Math.ceil(vocab / 4 / unit) * unit) : unit;
}
