/**
 * Token embedding lookup: `ids [S]` -> rows of `table [V, D]` -> `[S, D]` f32 (or f16 with `{ out: 'f16' }`,
 * rounded once from the decoded f32 value). The table keeps its
 * checkpoint dtype (f32, f16 or bf16) on the GPU, and may be larger than one storage binding (Llama 3's
 * 128256 x 2048 bf16 table is 525 MB; lavapipe binds at most 128 MiB): it is then bound in ranges of rows,
 * with one dispatch per range.
 * @module
 */
import {
  checkShape,
  cpuData,
  DTYPE_BYTES,
  type DType,
  empty,
  formatShape,
  fromArray,
  type Last,
  type Shape,
  type Tensor,
  toFloat32,
} from '@proj/core';
import { GpuOpError } from '../gpu/errors.js';
import { groupRows, packedWordWgsl, type RowPacking } from '../gpu/packing.js';
import {
  bind,
  bindRange,
  checkFloat,
  cpuResult,
  grid,
  isGpu,
  type OutDType,
  type OutOptions,
  outDtype,
  Params,
} from '../op.js';
import { declare, declareOut, enableF16, LINEAR_WORKGROUP, loader, params, stored } from '../wgsl.js';
import { packingOf } from './pack.js';

const WORKGROUP = 256;

/** Throws naming the first id outside `[0, vocab)` and its position. */
function checkIds(ids: ArrayLike<number>, vocab: number): void {
  for (let s = 0; s < ids.length; s++) {
    const id = ids[s]!;
    if (!(id >= 0 && id < vocab)) {
      throw new RangeError(`embedding: id ${id} at position ${s} is outside [0, ${vocab})`);
    }
  }
}

/**
 * The CPU reference: row `ids[s]` of `table` (`[V, dim]`, elements as stored: f32 values or the raw 16-bit
 * patterns of f16/bf16) decoded to f32, for each `s`. Throws a `RangeError` for ids outside `[0, V)`.
 */
export function embeddingReference(
  ids: ArrayLike<number>,
  table: Float32Array | Uint16Array,
  dim: number,
  dtype: 'f32' | 'f16' | 'bf16' = 'f32',
): Float32Array {
  checkIds(ids, dim === 0 ? 0 : table.length / dim);
  const out = new Float32Array(ids.length * dim);
  for (let s = 0; s < ids.length; s++) {
    const id = ids[s]!;
    out.set(toFloat32(dtype, table.subarray(id * dim, (id + 1) * dim)), s * dim); // decodes one row only
  }
  return out;
}

/**
 * The row ranges the table is bound in: each starts at a byte offset that is a multiple of the storage
 * offset alignment and is at most `maxBytes` long. One range when the whole table fits in one binding.
 */
export function embeddingRanges(
  vocab: number,
  rowBytes: number,
  maxBytes: number,
  alignment: number,
): { first: number; count: number }[] {
  if (vocab * rowBytes <= maxBytes) return [{ first: 0, count: vocab }];
  let a = rowBytes;
  let b = alignment;
  while (b) [a, b] = [b, a % b];
  const step = alignment / a; // rows between aligned starts: step * rowBytes is a multiple of alignment
  const rowsPerRange = Math.floor(maxBytes / (rowBytes * step)) * step;
  if (rowsPerRange === 0) {
    throw new GpuOpError(
      'embedding',
      `${step} rows of ${rowBytes} bytes (the smallest aligned range) exceed maxStorageBufferBindingSize = ${maxBytes}`,
    );
  }
  const ranges = [];
  for (let first = 0; first < vocab; first += rowsPerRange) {
    ranges.push({ first, count: Math.min(rowsPerRange, vocab - first) });
  }
  return ranges;
}

// One workgroup per id, its invocations striding along the row: the row's range check is one comparison
// for the whole workgroup, and no invocation divides by the row length (a software driver executes an
// integer division as a scalar one per lane: one per element cost lavapipe more than the copy itself).
// A dispatch writes the rows whose ids fall in its range; the first also writes zeros for ids outside
// [0, V), so that no output row is left uninitialised.
// NOTE: ids are compared as u32, so a negative i32 id wraps to a huge value and counts as out of range.
// A packed table (the tied output head on software drivers) is read through `packed_word`.
function kernel(idType: DType, tableType: DType, o: OutDType, packing?: RowPacking): string {
  const perWord = 16 / DTYPE_BYTES[tableType];
  const element = packing
    ? `packed_word(local, k / ${perWord}u, p.d / ${perWord}u) * ${perWord}u + k % ${perWord}u`
    : 'local * p.d + k';
  return `${enableF16(o)}
${declare(0, 'ids', idType)}
${declare(1, 'table', tableType)}
${declareOut(2, 'out', o)}
${params(3, { rows: 'u32', d: 'u32', first: 'u32', count: 'u32', vocab: 'u32', zero_invalid: 'u32' })}
${loader('table', tableType)}
${packing ? packedWordWgsl(packing) : ''}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  ${LINEAR_WORKGROUP}
  if (wg >= p.rows) { return; }
  let id = u32(ids[wg]);
  let local = id - p.first; // wraps for ids below the range
  let at = wg * p.d;
  if (local < p.count) {
    for (var k = lid; k < p.d; k += ${WORKGROUP}u) {
      out[at + k] = ${stored(o, `table_at(${element})`)};
    }
  } else if (p.zero_invalid == 1u && id >= p.vocab) {
    for (var k = lid; k < p.d; k += ${WORKGROUP}u) {
      out[at + k] = ${stored(o, '0.0')};
    }
  }
}`;
}

/**
 * Looks up the rows of `table [V, D]` (f32, f16 or bf16) for `ids [S]` (i32 or u32) -> `[S, D]` f32 (ids
 * of any shape `[...]` give `[..., D]`); `{ out: 'f16' }` writes f16 (needs `shader-f16` on WebGPU).
 *
 * Ids on the CPU are validated (a `RangeError` names the first id outside `[0, V)`); with a GPU table they
 * are uploaded for the lookup. Ids already on the GPU cannot be checked (a kernel cannot throw): there an
 * out-of-range id gives a row of zeros, so callers validate ids before uploading them.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { embedding } from '@proj/ops';
 * const table = tensor([0, 0.5, 1, 1.5, 2, 2.5], [3, 2]); // [vocab, dim]
 * const x = embedding(tensor([2, 0], [2], { dtype: 'i32' }), table);
 * console.log(await x.toArray()); // Float32Array [2, 2.5, 0, 0.5]
 * ```
 */
export function embedding<
  I extends Shape,
  T extends Shape,
  DI extends 'i32' | 'u32',
  O extends OutDType = 'f32',
>(ids: Tensor<I, DI>, table: Tensor<T>, options: OutOptions<O> = {}): Tensor<readonly [...I, Last<T>], O> {
  checkShape(
    table.shape.length === 2,
    'embedding',
    () => `the table must be [V, D], got ${formatShape(table.shape)} (ids ${formatShape(ids.shape)})`,
  );
  if (ids.dtype !== 'i32' && ids.dtype !== 'u32') {
    throw new Error(`embedding: ids must be i32 or u32, got ${ids.dtype}`);
  }
  checkFloat('embedding', table);
  const [vocab, dim] = table.shape as readonly number[] as [number, number];
  const shape = [...ids.shape, dim] as unknown as readonly [...I, Last<T>];
  const device = table.device;
  const idsOnCpu = ids.device.kind === 'cpu';
  if (!idsOnCpu && ids.device !== device) {
    throw new Error(`embedding: ids ${ids} and table ${table} are on different devices`);
  }
  if (idsOnCpu) checkIds(cpuData(ids), vocab);
  const o = outDtype('embedding', device, options);
  if (!isGpu(device)) {
    const data = cpuData(table) as Float32Array | Uint16Array;
    return cpuResult(embeddingReference(cpuData(ids), data, dim, table.dtype as 'f32'), shape, o);
  }
  const gpuIds = idsOnCpu ? fromArray(cpuData(ids), ids.shape, { dtype: ids.dtype, device }) : ids;
  const out = empty(shape, o, device);
  const rowBytes = dim * DTYPE_BYTES[table.dtype];
  const { maxStorageBindingSize, storageOffsetAlignment, maxWorkgroupsPerDimension } = device.caps;
  const packing = packingOf(table);
  // A packed table is bound in whole row groups (see gpu/packing.ts), padding included.
  const G = packing ? groupRows(packing) : 1;
  const ranges = embeddingRanges(
    Math.ceil(vocab / G),
    G * rowBytes,
    maxStorageBindingSize,
    storageOffsetAlignment,
  ).map(({ first, count }) => ({ first: first * G, count: Math.min(count * G, vocab - first * G) }));
  const rows = out.numel / Math.max(dim, 1);
  for (const [k, { first, count }] of ranges.entries()) {
    device.dispatch({
      op: 'embedding',
      key: `embedding:${ids.dtype}:${table.dtype}:${o}:${packing ? `${packing.lanes}x${packing.rowsPerLane}` : ''}`,
      wgsl: () => kernel(ids.dtype, table.dtype, o, packing),
      buffers: [
        bind('embedding', gpuIds),
        ranges.length === 1 && !packing
          ? bind('embedding', table)
          : bindRange(table, first * rowBytes, Math.ceil(count / G) * G * rowBytes),
        bind('embedding', out),
      ],
      uniforms: new Params()
        .u32(rows)
        .u32(dim)
        .u32(first)
        .u32(count)
        .u32(vocab)
        .u32(k === 0 ? 1 : 0)
        .data(),
      workgroups: grid(rows, maxWorkgroupsPerDimension),
    });
  }
  if (gpuIds !== ids) gpuIds.dispose(); // returns to the pool after the batch that reads it
  return out;
}
