/**
 * What every op shares: finding the device its inputs live on, binding tensors to kernels, packing uniform
 * parameters and sizing dispatch grids. An op file uses these and holds only its own math.
 * @module
 */
import {
  type Device,
  DTYPE_BYTES,
  formatShape,
  fromArray,
  fromFloat32,
  type Shape,
  type Tensor,
  tensor,
} from '@proj/core';
import { type BufferBinding, type GpuStorage, WebGpuDevice } from './gpu/device.js';
import { GpuOpError } from './gpu/errors.js';
import type { PositionalWord } from './gpu/graph.js';

/** The device all `tensors` live on; throws naming the op when they are on different devices. */
export function deviceOf(op: string, ...tensors: Tensor[]): Device {
  const device = tensors[0]!.device;
  for (const t of tensors) {
    if (t.device !== device)
      throw new Error(`${op}: inputs are on different devices (${tensors.map(String).join(', ')})`);
  }
  return device;
}

/** True when `device` is a WebGPU device (then the op runs its kernel, else its CPU reference). */
export function isGpu(device: Device): device is WebGpuDevice {
  return device instanceof WebGpuDevice;
}

/**
 * Throws naming the op when `t` holds a packed weight (`gpu/packing.ts`), which only `linear`, `embedding`
 * and the layout ops read.
 */
export function checkRowMajor(op: string, t: Tensor): void {
  if ((t.storage as GpuStorage).packing) {
    throw new GpuOpError(
      op,
      `${t} is a weight packed for linear (prepareLinearWeight); this op reads row-major tensors: unpackLinearWeight() gives one`,
    );
  }
}

/** Binds a whole tensor; throws naming the op when it is larger than one binding may be. */
export function bind(op: string, t: Tensor): BufferBinding {
  checkRowMajor(op, t);
  const storage = t.storage as GpuStorage;
  const max = storage.device.caps.maxStorageBindingSize;
  if (storage.byteLength > max) {
    throw new GpuOpError(
      op,
      `${t} is ${storage.byteLength} bytes, over maxStorageBufferBindingSize = ${max}; this op does not split its bindings`,
    );
  }
  return { buffer: storage.buffer, offset: 0, size: Math.max(4, Math.ceil(storage.byteLength / 4) * 4) };
}

/** Binds `byteLength` bytes of `t` from `byteOffset` (offset must respect the storage alignment). */
export function bindRange(t: Tensor, byteOffset: number, byteLength: number): BufferBinding {
  const storage = t.storage as GpuStorage;
  return { buffer: storage.buffer, offset: byteOffset, size: Math.max(4, Math.ceil(byteLength / 4) * 4) };
}

/** Part of a tensor bound for a kernel: the binding, and the element of it where the part begins. */
export interface Span {
  /** The binding (from the aligned offset at or before the part). */
  binding: BufferBinding;
  /** The element of the binding where the part's first element sits. */
  base: number;
}

/**
 * Binds elements `[first, first + count)` of `t` from the storage-aligned offset at or before `first`, for
 * ops that bind only the part of a tensor they touch; throws naming the op if that range is larger than one
 * binding may be.
 */
export function bindSpan(op: string, t: Tensor, first: number, count: number): Span {
  checkRowMajor(op, t);
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = (t.storage as GpuStorage).device.caps;
  const bytes = DTYPE_BYTES[t.dtype];
  const start = first * bytes;
  const aligned = start - (start % align);
  const size = start - aligned + count * bytes;
  if (size > max) {
    throw new GpuOpError(
      op,
      `elements [${first}, ${first + count}) of ${t} take ${size} bytes from the aligned offset ${aligned}, over maxStorageBufferBindingSize = ${max}`,
    );
  }
  return { binding: bindRange(t, aligned, size), base: (start - aligned) / bytes };
}

/** A run of an op's units (rows, or single elements), each tensor bound in the range that holds its part. */
export interface Run {
  /** The run's first unit. */
  first: number;
  /** Units in the run. */
  count: number;
  /** Per tensor, in the order given to {@link runs}: its binding. */
  bindings: BufferBinding[];
  /** Per tensor: the element of its binding where the run's part starts (0 for tensors bound whole). */
  bases: number[];
}

/**
 * Splits `units` units of an op's tensors into runs whose parts each fit one storage binding, so that the
 * op works on tensors larger than `maxStorageBufferBindingSize` (one dispatch per run). Tensor `i` holds
 * `per[i]` elements per unit, or `per[i] = 0` for one bound whole in every run (a weight, a broadcast
 * operand). When every tensor fits a binding, this is one run that binds them all whole: what ops that do
 * not split do. A binding starts at the aligned offset at or before its part, and `bases` says where in
 * the binding the part begins.
 *
 * `from[i]` (default 0) is the unit of tensor `i` that the op's unit 0 is: an op that writes rows
 * `[start, start + S)` of a KV cache passes `start` for the cache, which is then bound from there only
 * (and its `bases` count from the binding's start, `start * per[i]` when it is bound whole).
 */
export function runs(
  op: string,
  tensors: readonly Tensor[],
  per: readonly number[],
  units: number,
  from: readonly number[] = [],
): Run[] {
  if (units === 0) return [];
  const device = tensors[0]!.device as WebGpuDevice;
  const { maxStorageBindingSize: max, storageOffsetAlignment: align } = device.caps;
  const firstUnit = tensors.map((_, i) => from[i] ?? 0);
  if (tensors.every((t) => t.storage.byteLength <= max)) {
    return [
      {
        first: 0,
        count: units,
        bindings: tensors.map((t) => bind(op, t)),
        bases: tensors.map((_, i) => firstUnit[i]! * per[i]!),
      },
    ];
  }
  const unitBytes = tensors.map((t, i) => per[i]! * DTYPE_BYTES[t.dtype]);
  const whole = tensors.map((t, i) => (per[i] === 0 ? bind(op, t) : undefined)); // throws if too large
  const step = Math.min(...unitBytes.filter((b) => b > 0).map((b) => Math.floor((max - align) / b)));
  if (step < 1) {
    throw new GpuOpError(
      op,
      `one unit of ${Math.max(...unitBytes)} bytes does not fit a binding (${max} bytes)`,
    );
  }
  const out: Run[] = [];
  for (let first = 0; first < units; first += step) {
    const count = Math.min(step, units - first);
    const parts = tensors.map((t, i) =>
      whole[i]
        ? { binding: whole[i], base: 0 }
        : bindSpan(op, t, (firstUnit[i]! + first) * per[i]!, count * per[i]!),
    );
    out.push({ first, count, bindings: parts.map((s) => s.binding), bases: parts.map((s) => s.base) });
  }
  return out;
}

/** Packs uniform parameters: each value is one 4-byte slot, in declaration order. */
export class Params {
  readonly #words: number[] = [];
  readonly #kinds: ('u32' | 'i32' | 'f32')[] = [];
  /** The slots that move with the sequence position (see {@link Params.position}). */
  readonly positional: PositionalWord[] = [];
  /** Appends an unsigned integer. */
  u32(value: number): this {
    this.#words.push(value >>> 0);
    this.#kinds.push('u32');
    return this;
  }
  /**
   * Appends an unsigned integer that grows by `perPosition` for each position a decode step moves on (a
   * position, a cache length, a cache row's offset), so that a replayed step (`WebGpuDevice.capture`)
   * can rewrite it. A slot that moves but is not declared here makes the replay's check fail, not the
   * result wrong.
   */
  position(value: number, perPosition = 1): this {
    this.positional.push({ word: this.#words.length, perPosition });
    return this.u32(value);
  }
  /** Appends a signed integer. */
  i32(value: number): this {
    this.#words.push(value | 0);
    this.#kinds.push('i32');
    return this;
  }
  /** Appends a float. */
  f32(value: number): this {
    this.#words.push(value);
    this.#kinds.push('f32');
    return this;
  }
  /** The packed bytes (padded to 16 bytes, as uniform structs are). */
  data(): Uint32Array {
    const out = new Uint32Array(Math.ceil(this.#words.length / 4) * 4 || 4);
    const f = new Float32Array(out.buffer);
    const i = new Int32Array(out.buffer);
    this.#words.forEach((w, k) => {
      const kind = this.#kinds[k];
      if (kind === 'f32') f[k] = w;
      else if (kind === 'i32') i[k] = w;
      else out[k] = w;
    });
    return out;
  }
}

/**
 * Splits `count` workgroups into an `[x, y]` grid that respects the per-dimension limit; kernels recover
 * the linear index as `wid.y * nx + wid.x` with `nx = num_workgroups.x` and skip indices past `count`.
 */
export function grid(count: number, maxPerDim: number): [number, number] {
  if (count <= maxPerDim) return [count, 1];
  const y = Math.ceil(count / maxPerDim);
  return [Math.ceil(count / y), y];
}

/** Throws naming the op unless every tensor is a float dtype. */
export function checkFloat(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) {
    if (t.dtype === 'i32' || t.dtype === 'u32')
      throw new Error(`${op}: expected a float tensor, got ${t.dtype} ${formatShape(t.shape)}`);
  }
}

/**
 * The dtype an op writes its result in. Internal math is f32 either way: `'f16'` is f16 storage of the
 * result, rounded once on store (f32 accumulation), which halves the memory traffic of activations.
 */
export type OutDType = 'f32' | 'f16';

/** The output option every op that can write f16 takes (in its options object, or as its last argument). */
export interface OutOptions<O extends OutDType = 'f32'> {
  /** The result's dtype (default `'f32'`); `'f16'` needs `shader-f16` on WebGPU. */
  out?: O;
}

/** The requested output dtype; throws naming the op when f16 is asked of a WebGPU device without `shader-f16`. */
export function outDtype<O extends OutDType>(op: string, device: Device, options: OutOptions<O>): O {
  const out = (options.out ?? 'f32') as O;
  if (out === 'f16' && isGpu(device) && !device.caps.f16)
    throw new GpuOpError(op, 'f16 output needs the shader-f16 feature, which this adapter lacks');
  if (out !== 'f32' && out !== 'f16')
    throw new Error(`${op}: out must be 'f32' or 'f16', got ${String(out)}`);
  return out;
}

/** A CPU reference result as the op's output: f32 as it is, or rounded to f16 (as the kernels round on store). */
export function cpuResult<S extends Shape, O extends OutDType>(
  values: Float32Array,
  shape: S,
  out: O,
): Tensor<S, O> {
  if (out === 'f16') return fromArray(fromFloat32('f16', values), shape, { dtype: 'f16' }) as Tensor<S, O>;
  return tensor(values, shape) as Tensor<S, O>;
}
