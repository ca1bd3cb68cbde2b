/**
 * Weights in the layout `linear` reads fastest on their device. Software drivers read a `[N, K]` weight at
 * about twice the rate when it is lane-interleaved (`gpu/packing.ts` says why and how); GPUs keep the
 * checkpoint's row-major order. A loader allocates each weight with {@link emptyLinearWeight} and streams
 * rows into it with {@link writeRows}, which packs them on the way in; a weight already on the device goes
 * through {@link prepareLinearWeight}. A packed tensor is still the same `[N, K]` tensor to its user:
 * `linear` and `embedding` read it, `toArray()` and the layout ops (`narrow`, `cast`, ...) see it
 * row-major, and other ops refuse it with an error naming {@link unpackLinearWeight}.
 * @module
 */
import { type Device, DTYPE_BYTES, type DType, empty, formatShape, type Shape, Tensor } from '@proj/core';
import type { GpuStorage, WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { groupRows, packedWordWgsl, packGroups, type RowPacking } from '../gpu/packing.js';
import { SOFTWARE_LANES, weightPacking } from '../gpu/variants.js';
import { bindRange, grid, isGpu } from '../op.js';
import { canShareX } from './linear-wgsl.js';

const WORKGROUP = 256;

/** The packing of `t`, or undefined for a row-major tensor. */
export function packingOf(t: Tensor): RowPacking | undefined {
  return isGpu(t.device) ? (t.storage as GpuStorage).packing : undefined;
}

/** The packing a `[N, K]` weight of `dtype` can take: float, K a multiple of 8, rows of whole 16-byte words. */
function packable(shape: readonly number[], dtype: DType): RowPacking | undefined {
  if (shape.length !== 2) return undefined;
  const [rows, k] = shape as [number, number];
  const rowBytes = k * DTYPE_BYTES[dtype];
  return canShareX(dtype, rowBytes % 16 === 0, k) ? { ...SOFTWARE_LANES, rows, rowBytes } : undefined;
}

/**
 * The layout `linear` reads fastest for a `[N, K]` weight of `dtype` on `device`: packed on software
 * drivers with subgroups, for weights the packed kernel takes; undefined (row-major) everywhere else.
 */
export function linearWeightPacking(
  device: Device,
  shape: readonly number[],
  dtype: DType,
): RowPacking | undefined {
  return isGpu(device) && weightPacking(device.caps) ? packable(shape, dtype) : undefined;
}

/**
 * An uninitialised `[N, K]` weight in the layout `linear` reads fastest on `device` (see
 * {@link linearWeightPacking}); fill it with {@link writeRows}.
 */
export function emptyLinearWeight<const S extends Shape, D extends DType>(
  shape: S,
  dtype: D,
  device: Device,
): Tensor<S, D> {
  const packing = linearWeightPacking(device, shape, dtype);
  if (!packing) return empty(shape, dtype, device);
  return new Tensor((device as WebGpuDevice).allocPacked(packing), shape, dtype);
}

/**
 * Writes rows `[firstRow, firstRow + n)` of a `[N, K]` weight from `bytes` (n whole rows, row-major, in
 * the weight's dtype), whatever the weight's layout; `bytes` may be reused once this returns. On WebGPU
 * large writes go straight into one of the device's mapped staging buffers, packed on the way for a packed
 * weight (whole row groups, `packGroups`; other runs of rows go through a staging tensor and a packing
 * kernel). A loader streaming gigabytes awaits {@link writable} before each call, so that every chunk
 * finds a free staging buffer.
 */
export function writeRows(w: Tensor, firstRow: number, bytes: Uint8Array): void {
  const rowBytes = (w.shape[1] ?? 1) * DTYPE_BYTES[w.dtype];
  const rows = rowBytes === 0 ? 0 : bytes.byteLength / rowBytes;
  const n = w.shape[0] ?? 1;
  if (!Number.isInteger(rows) || !Number.isInteger(firstRow) || firstRow < 0 || firstRow + rows > n) {
    throw new RangeError(
      `writeRows: ${bytes.byteLength} bytes from row ${firstRow} are not whole rows of ${formatShape(w.shape)} ${w.dtype} (${rowBytes} bytes each)`,
    );
  }
  const device = w.device;
  const at = firstRow * rowBytes;
  if (!isGpu(device)) {
    device.write(w.storage, at, bytes);
    return;
  }
  const storage = w.storage as GpuStorage;
  const packing = storage.packing;
  if (!packing) {
    device.writeFilled(storage, at, bytes.byteLength, (into) => into.set(bytes));
    return;
  }
  if (rows === 0) return;
  const G = groupRows(packing);
  if (firstRow % G === 0 && (rows % G === 0 || firstRow + rows === n)) {
    // Whole groups (a loader's chunks, as a rule): packed on the host, in one pass into staging memory.
    const packedLength = Math.ceil(rows / G) * G * rowBytes;
    device.writeFilled(storage, at, packedLength, (into) => packGroups(bytes, packing, into));
    return;
  }
  const staging = new Tensor(device.upload(bytes), [rows, w.shape[1]!], w.dtype);
  transfer(device, 'pack', staging, firstRow, w, packing, firstRow, firstRow + rows);
  staging.dispose();
  device.flush(); // the staging buffer returns to the pool now, for the next chunk
}

/**
 * Resolves when a large write to `device` (such as {@link writeRows} of a loader's chunk) will find a free
 * staging buffer: at once on the CPU device; on WebGPU see `WebGpuDevice.writable`. Awaiting it before
 * each chunk paces a loader to the device.
 */
export async function writable(device: Device): Promise<void> {
  if (isGpu(device)) await device.writable();
}

/**
 * A `[N, K]` weight laid out the way `linear` reads it fastest on its device. Consumes `w`: returns `w`
 * itself where row-major is already best (GPUs, the CPU device, shapes the packed kernel does not take),
 * else a packed copy, and then frees `w`.
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * import { linear, prepareLinearWeight } from '@proj/ops';
 * const w = prepareLinearWeight(tensor([1, 0, 0, 1], [2, 2])); // on the CPU: w itself
 * console.log(await linear(tensor([3, 4], [1, 2]), w).toArray()); // Float32Array [3, 4]
 * ```
 */
export function prepareLinearWeight<S extends Shape, D extends DType>(w: Tensor<S, D>): Tensor<S, D> {
  if (packingOf(w) || !linearWeightPacking(w.device, w.shape, w.dtype)) return w;
  const device = w.device as WebGpuDevice;
  const packed = packLinearWeight(w);
  w.dispose();
  device.flush(); // w's buffer returns to the pool now, for the next weight of its size
  return packed;
}

/**
 * A packed copy of the row-major `[N, K]` weight `w` (K * bytes a multiple of 16, K a multiple of 8; needs
 * `subgroups`, as the kernel that reads it does), on any WebGPU adapter. Most code wants
 * {@link prepareLinearWeight} or {@link emptyLinearWeight}, which pack only where it pays.
 */
export function packLinearWeight<S extends Shape, D extends DType>(w: Tensor<S, D>): Tensor<S, D> {
  const device = w.device as WebGpuDevice;
  const packing = packable(w.shape, w.dtype);
  if (!isGpu(device) || !packing || !device.caps.subgroups || packingOf(w)) {
    throw new GpuOpError(
      'packLinearWeight',
      `${w}: packing takes a row-major float [N, K] weight with K a multiple of 8 and 16-byte rows, on a WebGPU adapter with subgroups`,
    );
  }
  const out = new Tensor(device.allocPacked(packing), w.shape, w.dtype);
  transfer(device, 'pack', w, 0, out, packing, 0, packing.rows);
  return out;
}

/** A row-major copy of a packed weight (for ops that do not read the packed layout). */
export function unpackLinearWeight<S extends Shape, D extends DType>(w: Tensor<S, D>): Tensor<S, D> {
  const packing = packingOf(w);
  if (!packing) throw new Error(`unpackLinearWeight: ${w} is not packed`);
  const device = w.device as WebGpuDevice;
  const out = new Tensor(device.alloc(packing.rows * packing.rowBytes), w.shape, w.dtype);
  transfer(device, 'unpack', out, 0, w, packing, 0, packing.rows);
  return out;
}

// One invocation per 16-byte word of a run of rows: `pack` scatters row-major words to their packed
// places, `unpack` gathers them back. Padding rows are never touched (linear and embedding never use
// their results).
function kernel(direction: 'pack' | 'unpack', p: Pick<RowPacking, 'lanes' | 'rowsPerLane'>): string {
  const [rm, pk] = direction === 'pack' ? ['read', 'read_write'] : ['read_write', 'read'];
  return `@group(0) @binding(0) var<storage, ${rm}> rm: array<vec4<u32>>; // rows, row-major
@group(0) @binding(1) var<storage, ${pk}> pk: array<vec4<u32>>; // whole groups, packed
struct Params {
  words: u32, // words to move
  kc: u32,    // words per row
  row0: u32,  // the first row's index within the packed binding's groups
  rb: u32,    // the first row's first word in the row-major binding
}
@group(0) @binding(2) var<uniform> p: Params;
${packedWordWgsl(p)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid;
  if (i >= p.words) { return; }
  let packed = packed_word(p.row0 + i / p.kc, i % p.kc, p.kc);
  ${direction === 'pack' ? 'pk[packed] = rm[p.rb + i];' : 'rm[p.rb + i] = pk[packed];'}
}`;
}

/**
 * Moves weight rows `[from, to)` between a row-major tensor (whose row 0 is weight row `rowMajorFirst`)
 * and a packed one, in runs that fit one binding on both sides.
 */
function transfer(
  device: WebGpuDevice,
  direction: 'pack' | 'unpack',
  rowMajor: Tensor,
  rowMajorFirst: number,
  packed: Tensor,
  packing: RowPacking,
  from: number,
  to: number,
): void {
  const op = `${direction}LinearWeight`;
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = device.caps;
  const G = groupRows(packing);
  const { rowBytes } = packing;
  const groupBytes = G * rowBytes;
  for (let s = from; s < to; ) {
    const g0 = Math.floor(s / G); // the first group this run touches
    const n = Math.min(
      to - s,
      (g0 + Math.floor(max / groupBytes)) * G - s, // the packed side: whole groups within one binding
      Math.floor((max - align) / rowBytes), // the row-major side, which may start up to align - 16 bytes early
    );
    if (n < 1) {
      throw new GpuOpError(
        op,
        `a row group of ${groupBytes} bytes exceeds maxStorageBufferBindingSize (${max})`,
      );
    }
    const start = (s - rowMajorFirst) * rowBytes;
    const aligned = start - (start % align);
    const words = (n * rowBytes) / 16;
    device.dispatch({
      op,
      key: `${op}:${packing.lanes}:${packing.rowsPerLane}`,
      wgsl: () => kernel(direction, packing),
      buffers: [
        bindRange(rowMajor, aligned, start - aligned + n * rowBytes),
        bindRange(packed, g0 * groupBytes, (Math.ceil((s + n) / G) - g0) * groupBytes),
      ],
      uniforms: new Uint32Array([words, rowBytes / 16, s - g0 * G, (start - aligned) / 16]),
      workgroups: grid(Math.ceil(words / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
    s += n;
  }
}
