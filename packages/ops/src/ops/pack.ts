/**
 * Weights in the layout `linear` reads fastest on their device. Software drivers read a `[N, K]` weight at
 * about twice the rate when it is lane-interleaved (`gpu/packing.ts` says why and how), so a model
 * prepares its weights once, at load time, with {@link prepareLinearWeight}; GPUs keep the checkpoint's
 * row-major order. A packed tensor is still the same `[N, K]` tensor to its user: `linear` and `embedding`
 * read it, `toArray()` and the layout ops (`narrow`, `cast`, ...) see it row-major, and other ops refuse
 * it with an error naming {@link unpackLinearWeight}.
 * @module
 */
import { DTYPE_BYTES, type DType, type Shape, Tensor } from '@proj/core';
import type { GpuStorage, WebGpuDevice } from '../gpu/device.js';
import { GpuOpError } from '../gpu/errors.js';
import { groupRows, packedWordWgsl, type RowPacking } from '../gpu/packing.js';
import { SOFTWARE_LANES, weightPacking } from '../gpu/variants.js';
import { bindRange, grid, isGpu } from '../op.js';
import { canShareX } from './linear-wgsl.js';

const WORKGROUP = 256;

/** The packing of `t`, or undefined for a row-major tensor. */
export function packingOf(t: Tensor): RowPacking | undefined {
  return isGpu(t.device) ? (t.storage as GpuStorage).packing : undefined;
}

/**
 * Whether this device's `linear` reads a `[N, K]` weight of `dtype` faster packed: on software drivers
 * (with subgroups), for float weights whose rows are whole 16-byte words and K a multiple of 8.
 */
function wantsPacking(t: Tensor): boolean {
  if (!isGpu(t.device) || t.shape.length !== 2 || packingOf(t)) return false;
  const k = t.shape[1]!;
  const vec = (k * DTYPE_BYTES[t.dtype]) % 16 === 0;
  return weightPacking(t.device.caps) !== undefined && canShareX(t.dtype, vec, k);
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
  if (!wantsPacking(w)) return w;
  const device = w.device as WebGpuDevice;
  const packed = packLinearWeight(w);
  w.dispose();
  // Submitting now returns w's buffer to the pool, so that packing the next weight of this size reuses it:
  // a model's weights are prepared one after another, with one spare buffer, not a second copy of them all.
  device.flush();
  return packed;
}

/**
 * A packed copy of the row-major `[N, K]` weight `w` (K * bytes a multiple of 16, K a multiple of 8; needs
 * `subgroups`, as the kernel that reads it does), on any WebGPU adapter. Most code wants
 * {@link prepareLinearWeight}, which packs only where it pays.
 */
export function packLinearWeight<S extends Shape, D extends DType>(w: Tensor<S, D>): Tensor<S, D> {
  const device = w.device as WebGpuDevice;
  if (!isGpu(device)) throw new Error(`packLinearWeight: ${w} is not on a WebGPU device`);
  const [rows, k] = w.shape as readonly number[] as [number, number];
  const rowBytes = (k ?? 0) * DTYPE_BYTES[w.dtype];
  if (w.shape.length !== 2 || !canShareX(w.dtype, rowBytes % 16 === 0, k) || !device.caps.subgroups) {
    throw new GpuOpError(
      'packLinearWeight',
      `${w}: packing takes a float [N, K] weight with K a multiple of 8 and 16-byte rows, on an adapter with subgroups`,
    );
  }
  const packing: RowPacking = { ...SOFTWARE_LANES, rows, rowBytes };
  const out = new Tensor(device.allocPacked(packing), w.shape, w.dtype);
  if (rows > 0 && k > 0) repack(device, 'pack', w, out, packing);
  return out;
}

/** A row-major copy of a packed weight (for ops that do not read the packed layout). */
export function unpackLinearWeight<S extends Shape, D extends DType>(w: Tensor<S, D>): Tensor<S, D> {
  const packing = packingOf(w);
  if (!packing) throw new Error(`unpackLinearWeight: ${w} is not packed`);
  const device = w.device as WebGpuDevice;
  const out = new Tensor(device.alloc(packing.rows * packing.rowBytes), w.shape, w.dtype);
  if (packing.rows > 0 && packing.rowBytes > 0) repack(device, 'unpack', w, out, packing);
  return out;
}

// One invocation per 16-byte word of the packed side, over a range of row groups: `pack` gathers it from
// the row-major side (zeros for padding rows), `unpack` scatters it back.
function kernel(direction: 'pack' | 'unpack', p: Pick<RowPacking, 'lanes' | 'rowsPerLane'>): string {
  const G = p.lanes * p.rowsPerLane;
  const body =
    direction === 'pack'
      ? 'dst[i] = select(vec4<u32>(0u), src[min(row, p.rows - 1u) * p.kc + c], row < p.rows);'
      : 'if (row < p.rows) { dst[row * p.kc + c] = src[i]; }';
  return `@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<u32>>;
struct Params { words: u32, rows: u32, kc: u32 }
@group(0) @binding(2) var<uniform> p: Params;
${packedWordWgsl(p)}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * ${WORKGROUP}u + lid; // the packed word
  if (i >= p.words) { return; }
  // Invert packed_word: i = ((g * kc + c) * rowsPerLane + j) * lanes + l.
  let l = i % ${p.lanes}u;
  let j = (i / ${p.lanes}u) % ${p.rowsPerLane}u;
  let gc = i / ${p.lanes * p.rowsPerLane}u;
  let c = gc % p.kc;
  let row = (gc / p.kc) * ${G}u + l * ${p.rowsPerLane}u + j;
  ${body}
}`;
}

/** Runs the (un)packing kernel over ranges of whole row groups that each fit one binding. */
function repack(
  device: WebGpuDevice,
  direction: 'pack' | 'unpack',
  src: Tensor,
  dst: Tensor,
  packing: RowPacking,
): void {
  const op = `${direction}LinearWeight`;
  const G = groupRows(packing);
  const groupBytes = G * packing.rowBytes;
  const perRange = Math.floor(device.caps.maxStorageBindingSize / groupBytes);
  if (perRange < 1) {
    throw new GpuOpError(op, `a row group of ${groupBytes} bytes exceeds maxStorageBufferBindingSize`);
  }
  const groups = Math.ceil(packing.rows / G);
  const [rowMajor, packed] = direction === 'pack' ? [src, dst] : [dst, src];
  for (let g0 = 0; g0 < groups; g0 += perRange) {
    const count = Math.min(perRange, groups - g0);
    const start = g0 * groupBytes; // a multiple of 512: aligned
    const rows = Math.min(count * G, packing.rows - g0 * G);
    const rowMajorBinding = bindRange(rowMajor, start, rows * packing.rowBytes);
    const packedBinding = bindRange(packed, start, count * groupBytes);
    const words = (count * groupBytes) / 16;
    device.dispatch({
      op,
      key: `${op}:${packing.lanes}:${packing.rowsPerLane}`,
      wgsl: () => kernel(direction, packing),
      buffers: direction === 'pack' ? [rowMajorBinding, packedBinding] : [packedBinding, rowMajorBinding],
      uniforms: new Uint32Array([words, rows, packing.rowBytes / 16, 0]),
      workgroups: grid(Math.ceil(words / WORKGROUP), device.caps.maxWorkgroupsPerDimension),
    });
  }
}
