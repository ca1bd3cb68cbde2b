/**
 * The attention input step of a RoPE transformer in one pass: split the fused q/k/v projection, rotate
 * q and k by position, and store the rotated keys and the values in the KV cache. One dispatch instead of
 * two rotations and a cache append, and q/k/v never exist as separate tensors.
 *
 *   qkv [S, (Hq + 2 Hkv) Dh]  ->  q [S, Hq, Dh] (rotated), cache rows [start, start + S) <- k (rotated), v
 *
 * Only the half-split layout (HF checkpoints; Meta's are permuted into it at load) is fused here. The cache
 * is bound from row `start` on, so a long context's cache may be larger than one storage binding; qkv and
 * q that are larger are split by rows (one dispatch per run of rows).
 * @module
 */
import { checkShape, cpuData, cpuFloats, empty, formatShape, type Tensor } from '@proj/core';
import { fusesRopeIntoAttention } from '../gpu/variants.js';
import {
  checkFloat,
  cpuResult,
  deviceOf,
  isGpu,
  type OutDType,
  type OutOptions,
  outDtype,
  Params,
  runs,
} from '../op.js';
import { declare, declareOut, enableF16, loader, params, stored } from '../wgsl.js';
import { attention, attentionShape, recordBlocks } from './attention.js';
import type { KvCache } from './kv-cache.js';
import { type RopeTables, ropeReference } from './rope.js';

const WORKGROUP = 64;

/** Options of {@link ropeQkv}; `out` is q's dtype (the cache keeps its own dtype, f32). */
export interface RopeQkvOptions<O extends OutDType = 'f32'> extends OutOptions<O> {
  /** Query heads (the first `heads * Dh` columns of `qkv`); the cache says the kv heads and Dh. */
  heads: number;
}

/**
 * CPU reference: `qkv` is `[S, (Hq + 2 Hkv) Dh]`; returns the rotated `q [S, Hq, Dh]`, rotated `k` and plain
 * `v` (`[S, Hkv, Dh]` each), rows at positions `start + s`, half-split layout.
 */
export function ropeQkvReference(
  qkv: Float32Array,
  dims: { seq: number; heads: number; kvHeads: number; headDim: number },
  cos: Float32Array,
  sin: Float32Array,
  start: number,
): { q: Float32Array; k: Float32Array; v: Float32Array } {
  const { seq, heads, kvHeads, headDim } = dims;
  const width = (heads + 2 * kvHeads) * headDim;
  const part = (from: number, count: number) => {
    const out = new Float32Array(seq * count * headDim);
    for (let s = 0; s < seq; s++)
      out.set(
        qkv.subarray(s * width + from * headDim, s * width + (from + count) * headDim),
        s * count * headDim,
      );
    return out;
  };
  return {
    q: ropeReference(part(0, heads), [seq, heads, headDim], cos, sin, start, 'half'),
    k: ropeReference(part(heads, kvHeads), [seq, kvHeads, headDim], cos, sin, start, 'half'),
    v: part(heads + kvHeads, kvHeads),
  };
}

/** ropeQkv's checks of its arguments (named after `op`): qkv's width, the heads, the table's positions. */
function checkRopeQkv(
  op: string,
  qkv: Tensor,
  tables: RopeTables,
  cache: KvCache,
  heads: number,
): { seq: number; width: number } {
  const { kvHeads, headDim } = cache;
  const width = (heads + 2 * kvHeads) * headDim;
  checkShape(
    qkv.rank === 2 && qkv.shape[1] === width,
    op,
    () =>
      `qkv ${formatShape(qkv.shape)} must be [S, (${heads} + 2 * ${kvHeads}) * ${headDim}] = [S, ${width}]`,
  );
  checkShape(
    Number.isInteger(heads) && heads > 0 && heads % kvHeads === 0,
    op,
    () => `heads ${heads} must be a positive multiple of the cache's ${kvHeads} kv heads`,
  );
  const seq = qkv.shape[0]!;
  const [positions, half] = tables.cos.shape;
  checkShape(
    half === headDim / 2,
    op,
    () => `tables ${formatShape(tables.cos.shape)} must be [positions, ${headDim / 2}]`,
  );
  checkShape(
    cache.length + seq <= positions,
    op,
    () => `positions ${cache.length} to ${cache.length + seq - 1} are beyond the ${positions}-position table`,
  );
  checkFloat(op, qkv);
  return { seq, width };
}

function kernel(dtype: Tensor['dtype'], o: OutDType): string {
  return `${enableF16(o)}
${declare(0, 'qkv', dtype)}
${declare(1, 'cosT', 'f32')}
${declare(2, 'sinT', 'f32')}
${declareOut(3, 'q', o)}
${declare(4, 'cacheK', 'f32', 'read_write')}
${declare(5, 'cacheV', 'f32', 'read_write')}
${params(6, { rows: 'u32', heads: 'u32', kvHeads: 'u32', headDim: 'u32', start: 'u32', x0: 'u32', q0: 'u32', c0: 'u32' })}
${loader('qkv', dtype)}
// Workgroup (h, s): head h of qkv's row s in a run of rows, its invocations along the head's dims: the
// head says whether it is part of q, k or v, and no invocation divides (a software driver divides lane by
// lane). Each tensor is bound from the run's first row, which starts at element x0 of qkv's binding, q0 of
// q's and c0 of the cache's (k and v are laid out alike); \`start\` is that row's position.
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let head = wid.x;
  let s = wid.y;
  if (s >= p.rows) { return; }
  let half = p.headDim / 2u;
  let pos = p.start + s;
  let rowAt = p.x0 + (s * (p.heads + 2u * p.kvHeads) + head) * p.headDim;
  for (var d = lid; d < p.headDim; d += ${WORKGROUP}u) {
    let x = qkv_at(rowAt + d);
    var y = x;
    if (head < p.heads + p.kvHeads) {
      // half-split pairs (d, d + half): (a, b) -> (a cos - b sin, b cos + a sin)
      let i = select(d - half, d, d < half);
      let cs = cosT[pos * half + i];
      let sn = sinT[pos * half + i];
      if (d < half) { y = x * cs - qkv_at(rowAt + d + half) * sn; } else { y = x * cs + qkv_at(rowAt + d - half) * sn; }
    }
    if (head < p.heads) {
      q[p.q0 + (s * p.heads + head) * p.headDim + d] = ${stored(o, 'y')};
    } else if (head < p.heads + p.kvHeads) {
      cacheK[p.c0 + (s * p.kvHeads + head - p.heads) * p.headDim + d] = y;
    } else {
      cacheV[p.c0 + (s * p.kvHeads + head - p.heads - p.kvHeads) * p.headDim + d] = y;
    }
  }
}`;
}

/**
 * Splits the fused projection `qkv [S, (heads + 2 kvHeads) Dh]` into q, k and v, rotates q and k by their
 * positions (`cache.length + s`), appends k and v to `cache`, and returns q `[S, heads, Dh]` (f32, or f16
 * with `out: 'f16'`, which needs `shader-f16` on WebGPU; k and v go to the cache in f32 either way).
 *
 * @example
 * ```ts
 * import { cpu, randn } from '@proj/core';
 * import { KvCache, ropeQkv, ropeTables } from '@proj/ops';
 * const cache = new KvCache(cpu, { maxSeq: 8, kvHeads: 1, headDim: 4 });
 * const tables = ropeTables(Float32Array.of(1, 0.1), 8);
 * const q = ropeQkv(randn([3, (2 + 2 * 1) * 4]), tables, cache, { heads: 2 }); // [3, 2, 4]
 * console.log(q.shape, cache.length); // [3, 2, 4] 3
 * ```
 */
export function ropeQkv<O extends OutDType = 'f32'>(
  qkv: Tensor,
  tables: RopeTables,
  cache: KvCache,
  options: RopeQkvOptions<O>,
): Tensor<readonly [number, number, number], O> {
  const op = 'ropeQkv';
  const { heads } = options;
  const { kvHeads, headDim } = cache;
  const { seq, width } = checkRopeQkv(op, qkv, tables, cache, heads);
  const device = deviceOf(op, qkv, tables.cos, cache.k);
  const o = outDtype(op, device, options);
  const start = cache.reserve(seq);
  if (!isGpu(device)) {
    const dims = { seq, heads, kvHeads, headDim };
    const r = ropeQkvReference(cpuFloats(qkv), dims, cpuFloats(tables.cos), cpuFloats(tables.sin), start);
    cpuData(cache.k).set(r.k, start * kvHeads * headDim);
    cpuData(cache.v).set(r.v, start * kvHeads * headDim);
    return cpuResult(r.q, [seq, heads, headDim] as const, o);
  }
  const q = empty([seq, heads, headDim] as const, o, device);
  // Rows of qkv and q in runs that fit a binding; the cache is bound from row `start` on (only the rows
  // written: a long context's cache can be larger than one binding), the tables whole.
  const kvRow = kvHeads * headDim;
  const tensors = [qkv, tables.cos, tables.sin, q, cache.k, cache.v];
  const per = [width, 0, 0, heads * headDim, kvRow, kvRow];
  const maxRows = device.caps.maxWorkgroupsPerDimension; // rows of a dispatch: its grid's second dim
  for (const run of runs(op, tensors, per, seq, [0, 0, 0, 0, start, start])) {
    const [x0, , , q0, c0] = run.bases as number[];
    for (let r = 0; r < run.count; r += maxRows) {
      const rows = Math.min(maxRows, run.count - r);
      const params = new Params()
        .u32(rows)
        .u32(heads)
        .u32(kvHeads)
        .u32(headDim)
        .position(start + run.first + r) // the rows' positions and cache rows move with each step
        .u32(x0! + r * width)
        .u32(q0! + r * heads * headDim)
        .position(c0! + r * kvRow, kvRow);
      device.dispatch({
        op,
        key: `${op}:${qkv.dtype}:${o}`,
        wgsl: () => kernel(qkv.dtype, o),
        buffers: run.bindings,
        uniforms: params.data(),
        positional: params.positional,
        workgroups: [heads + 2 * kvHeads, rows],
      });
    }
  }
  return q;
}

/**
 * {@link ropeQkv} and then `attention` over the cache, for the step's rows: `qkv [S, (Hq + 2 Hkv) Dh]` ->
 * the attention output `[S, Hq, Dh]` (f32, or f16 with `out: 'f16'`), with the rotated keys and the values
 * appended to `cache`. A decode step on a GPU (one row, keys and tables within one binding, Dh a multiple
 * of 8) runs it as one kernel: attention's `blocks` kernel reads q, the key and the value of the position
 * from qkv, rotates them itself and writes the key and value to the cache (`fusesRopeIntoAttention` in
 * `gpu/variants.ts`); one dispatch per layer less than the two ops. Elsewhere it is the two ops.
 *
 * @example
 * ```ts
 * import { cpu, randn } from '@proj/core';
 * import { KvCache, ropeQkvAttention, ropeTables } from '@proj/ops';
 * const cache = new KvCache(cpu, { maxSeq: 8, kvHeads: 1, headDim: 4 });
 * const tables = ropeTables(Float32Array.of(1, 0.1), 8);
 * const a = ropeQkvAttention(randn([3, (2 + 2 * 1) * 4]), tables, cache, { heads: 2 }); // [3, 2, 4]
 * console.log(a.shape, cache.length); // [3, 2, 4] 3
 * ```
 */
export function ropeQkvAttention<O extends OutDType = 'f32'>(
  qkv: Tensor,
  tables: RopeTables,
  cache: KvCache,
  options: RopeQkvOptions<O>,
): Tensor<readonly [number, number, number], O> {
  const op = 'ropeQkvAttention';
  const { heads } = options;
  const { headDim } = cache;
  const { seq } = checkRopeQkv(op, qkv, tables, cache, heads);
  const device = deviceOf(op, qkv, tables.cos, cache.k);
  const fused =
    isGpu(device) &&
    fusesRopeIntoAttention(device.caps) &&
    seq === 1 &&
    headDim % 8 === 0 &&
    headDim <= 256 &&
    (qkv.dtype === 'f32' || qkv.dtype === 'f16') &&
    [qkv, cache.k, cache.v, tables.cos, tables.sin].every(
      (t) => t.storage.byteLength <= device.caps.maxStorageBindingSize,
    );
  if (!fused) {
    const q = ropeQkv(qkv, tables, cache, options);
    const start = cache.length - seq;
    const a = attention(q, cache.k, cache.v, { offset: start, length: cache.length, out: options.out });
    q.dispose();
    return a as Tensor<readonly [number, number, number], O>;
  }
  const o = outDtype('attention', device, options);
  const qType = qkv.dtype as OutDType;
  if (qType === 'f16') outDtype('attention', device, { out: 'f16' }); // read as array<vec4<f16>>
  const start = cache.reserve(1);
  const shape = [1, heads, headDim] as const;
  const { dims, options: resolved } = attentionShape(shape, cache.k.shape, cache.v.shape, {
    offset: start,
    length: start + 1,
  });
  const out = empty(shape, o, device);
  recordBlocks(
    device,
    { q: qkv, type: qType, rope: tables },
    cache.k,
    cache.v,
    out,
    o,
    dims,
    resolved,
    undefined,
  );
  return out;
}
