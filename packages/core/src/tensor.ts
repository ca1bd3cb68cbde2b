/**
 * The tensor: a shape, a dtype and storage on a device. Shape and dtype are in the type, so the compiler can
 * check the ops' shape rules where dims are known; every rule is checked again at run time.
 * @module
 */
import { cpu, type Device, type Storage } from './device.js';
import { DTYPE_BYTES, type DType, fromFloat32, type StorageArray, toFloat32, viewAs } from './dtype.js';
import { track } from './scope.js';
import { checkDims, checkShape, formatShape, numel, reshapeCheck, type Shape } from './shape.js';
import type { ReshapeCheck } from './shape-count.js';

/** What `toArray()` gives back: floats decode to `Float32Array`, integers keep their array type. */
export type ReadArray<D extends DType> = D extends 'i32'
  ? Int32Array
  : D extends 'u32'
    ? Uint32Array
    : Float32Array;

/** Storage shared by a tensor and its reshaped views; freed when the last of them is disposed. */
class SharedStorage {
  refs = 1;
  constructor(readonly storage: Storage) {}
  release(): void {
    if (--this.refs === 0) this.storage.free();
  }
}

/**
 * An n-dimensional array of `D` elements with shape `S`, stored contiguously (row-major) on a device.
 *
 * Tensors that hold device memory must be freed: call `dispose()`, declare them with `using`, or create
 * them inside `scope()`.
 */
export class Tensor<S extends Shape = Shape, D extends DType = DType> {
  /** The dims, outermost first. */
  readonly shape: S;
  /** The element type. */
  readonly dtype: D;
  #shared: SharedStorage | undefined;

  /** Wraps `storage` (which must be exactly `numel(shape) * bytes(dtype)` long). Most code uses the factories. */
  constructor(storage: Storage, shape: S, dtype: D) {
    checkDims('Tensor', shape);
    const bytes = numel(shape) * DTYPE_BYTES[dtype];
    checkShape(
      storage.byteLength === bytes,
      'Tensor',
      () => `shape ${formatShape(shape)} of ${dtype} needs ${bytes} bytes, storage has ${storage.byteLength}`,
    );
    this.shape = Object.freeze([...shape]) as unknown as S;
    this.dtype = dtype;
    this.#shared = new SharedStorage(storage);
    track(this);
  }

  /** The device holding the data. */
  get device(): Device {
    return this.storage.device;
  }

  /** The storage (throws once disposed). Ops use it; user code rarely needs it. */
  get storage(): Storage {
    if (!this.#shared)
      throw new Error(`tensor ${formatShape(this.shape)} ${this.dtype} was used after dispose()`);
    return this.#shared.storage;
  }

  /** Number of elements. */
  get numel(): number {
    return numel(this.shape);
  }

  /** Number of dims. */
  get rank(): number {
    return this.shape.length;
  }

  /** True once disposed. */
  get disposed(): boolean {
    return this.#shared === undefined;
  }

  /**
   * The same data with another shape of the same element count; shares storage (no copy), and the memory is
   * freed when both this and the view are disposed.
   */
  reshape<const S2 extends Shape>(shape: S2 & NoInfer<ReshapeCheck<S, S2>>): Tensor<S2, D> {
    reshapeCheck('reshape', this.shape, shape);
    const shared = this.#shared;
    if (!shared) throw new Error('reshape: tensor was disposed');
    const view = new Tensor(shared.storage, shape, this.dtype);
    view.#shared = shared;
    shared.refs++;
    return view;
  }

  /** Frees the device memory (once the last view of it is disposed). Safe to call twice. */
  dispose(): void {
    this.#shared?.release();
    this.#shared = undefined;
  }

  /** So that `using t = ...` frees the tensor at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Raw bytes, copied to the host. */
  async bytes(): Promise<Uint8Array> {
    return this.device.read(this.storage);
  }

  /** The values on the host: f16/bf16 decoded to `Float32Array`, integers as `Int32Array`/`Uint32Array`. */
  async toArray(): Promise<ReadArray<D>> {
    const raw = viewAs(this.dtype, await this.bytes());
    return (this.dtype === 'f16' || this.dtype === 'bf16' ? toFloat32(this.dtype, raw) : raw) as ReadArray<D>;
  }

  /** A copy on `device` (this tensor is left as it is). */
  async to(device: Device): Promise<Tensor<S, D>> {
    const bytes = await this.bytes();
    return new Tensor(device.upload(bytes), this.shape, this.dtype);
  }

  /** `Tensor[2, 3] f32 on cpu`, for messages. */
  toString(): string {
    return `Tensor${formatShape(this.shape)} ${this.dtype} on ${this.disposed ? '(disposed)' : this.device.kind}`;
  }
}

/** Options of the tensor factories. */
export interface TensorOptions<D extends DType = DType> {
  /** Element type (default `'f32'`). */
  dtype?: D;
  /** Where the tensor lives (default: the CPU). */
  device?: Device;
}

/**
 * A tensor from numbers: values are converted to the dtype (f16/bf16 round to nearest even).
 *
 * @example
 * ```ts
 * import { tensor } from '@proj/core';
 * const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]); // Tensor<readonly [2, 3], 'f32'>
 * console.log(x.shape); // [2, 3]
 * ```
 */
export function tensor<const S extends Shape, D extends DType = 'f32'>(
  values: ArrayLike<number>,
  shape: S,
  options: TensorOptions<D> = {},
): Tensor<S, D> {
  const dtype = (options.dtype ?? 'f32') as D;
  checkDims('tensor', shape);
  checkShape(
    values.length === numel(shape),
    'tensor',
    () => `${values.length} values do not fill shape ${formatShape(shape)} (${numel(shape)} elements)`,
  );
  const array = fromFloat32(dtype, values);
  return fromArray(array, shape, { dtype, device: options.device ?? cpu });
}

/** A tensor whose elements are `array` as stored (for f16/bf16, raw 16-bit patterns). */
export function fromArray<const S extends Shape, D extends DType>(
  array: StorageArray<D>,
  shape: S,
  options: { dtype: D; device?: Device },
): Tensor<S, D> {
  const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
  return fromBytes(bytes, shape, options.dtype, options.device);
}

/** A tensor from raw little-endian bytes. */
export function fromBytes<const S extends Shape, D extends DType>(
  bytes: Uint8Array,
  shape: S,
  dtype: D,
  device: Device = cpu,
): Tensor<S, D> {
  checkDims('fromBytes', shape);
  const expected = numel(shape) * DTYPE_BYTES[dtype];
  checkShape(
    bytes.byteLength === expected,
    'fromBytes',
    () => `${bytes.byteLength} bytes do not match ${formatShape(shape)} of ${dtype} (${expected} bytes)`,
  );
  return new Tensor(device.upload(bytes), shape, dtype);
}

/** A zero-filled tensor. */
export function zeros<const S extends Shape, D extends DType = 'f32'>(
  shape: S,
  options: TensorOptions<D> = {},
): Tensor<S, D> {
  const dtype = (options.dtype ?? 'f32') as D;
  checkDims('zeros', shape);
  return fromBytes(new Uint8Array(numel(shape) * DTYPE_BYTES[dtype]), shape, dtype, options.device);
}

/** A tensor of uninitialised memory on `device` (ops allocate their outputs with this). */
export function empty<const S extends Shape, D extends DType>(
  shape: S,
  dtype: D,
  device: Device,
): Tensor<S, D> {
  checkDims('empty', shape);
  return new Tensor(device.alloc(numel(shape) * DTYPE_BYTES[dtype]), shape, dtype);
}

/** The elements of a CPU tensor as stored (no copy). Throws for tensors on other devices. */
export function cpuData<D extends DType>(t: Tensor<Shape, D>): StorageArray<D> {
  if (t.device.kind !== 'cpu') throw new Error(`cpuData: ${t} is not on the CPU; use await t.toArray()`);
  return viewAs(t.dtype, (t.storage as unknown as { bytes: Uint8Array }).bytes);
}

/** The elements of a CPU tensor as f32 values (a copy for f16/bf16/int, the data itself for f32). */
export function cpuFloats(t: Tensor): Float32Array {
  return toFloat32(t.dtype, cpuData(t));
}
