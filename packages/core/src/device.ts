/**
 * Where tensors live. A device allocates storage, fills it from host bytes and reads it back; everything
 * device-specific (kernels, queues) stays behind this interface. Core ships the CPU device; `@proj/ops` adds
 * WebGPU.
 * @module
 */

/** A block of memory on a device, owned by one or more tensors. */
export interface Storage {
  /** The device the memory is on. */
  readonly device: Device;
  /** Size in bytes. */
  readonly byteLength: number;
  /** Gives the memory back to the device. Called once, when the last tensor using it is disposed. */
  free(): void;
}

/** A place that holds tensor memory. */
export interface Device {
  /** `'cpu'` or `'webgpu'`; ops choose their implementation by it. */
  readonly kind: string;
  /** Human-readable description (the adapter's name for WebGPU). */
  readonly description: string;
  /** New uninitialised storage of `byteLength` bytes. */
  alloc(byteLength: number): Storage;
  /** New storage holding a copy of `bytes`. */
  upload(bytes: Uint8Array): Storage;
  /**
   * Copies `bytes` into `storage` at `byteOffset` (a multiple of 4), ordered after the work queued so far;
   * loaders use it to stream large tensors in chunks.
   */
  write(storage: Storage, byteOffset: number, bytes: Uint8Array): void;
  /** Copies storage back to the host (waits for pending work on the device). */
  read(storage: Storage): Promise<Uint8Array>;
}

/** CPU memory: a plain byte array. */
export class CpuStorage implements Storage {
  /** The bytes (aligned to 8 so every dtype can view them). */
  readonly bytes: Uint8Array;
  /** Wraps `bytes` (copied when misaligned). */
  constructor(
    readonly device: CpuDevice,
    bytes: Uint8Array,
  ) {
    this.bytes = bytes.byteOffset % 8 === 0 ? bytes : bytes.slice();
  }
  /** Byte size. */
  get byteLength(): number {
    return this.bytes.byteLength;
  }
  /** Nothing to do: the garbage collector owns host memory. */
  free(): void {}
}

/** The CPU device: TypedArray storage; every op runs its TypeScript reference implementation here. */
export class CpuDevice implements Device {
  /** Always `'cpu'`. */
  readonly kind = 'cpu';
  /** Always `'cpu'`. */
  readonly description = 'cpu';
  /** Zero-filled storage. */
  alloc(byteLength: number): CpuStorage {
    return new CpuStorage(this, new Uint8Array(byteLength));
  }
  /** A copy of `bytes`. */
  upload(bytes: Uint8Array): CpuStorage {
    return new CpuStorage(this, bytes.slice());
  }
  /** Copies `bytes` into the storage at `byteOffset`. */
  write(storage: Storage, byteOffset: number, bytes: Uint8Array): void {
    const target = (storage as CpuStorage).bytes;
    if (byteOffset < 0 || byteOffset + bytes.byteLength > target.byteLength) {
      throw new Error(
        `write: ${bytes.byteLength} bytes at ${byteOffset} do not fit storage of ${target.byteLength}`,
      );
    }
    target.set(bytes, byteOffset);
  }
  /** A copy of the storage's bytes. */
  async read(storage: Storage): Promise<Uint8Array> {
    return (storage as CpuStorage).bytes.slice();
  }
}

/** The process-wide CPU device, the default for new tensors. */
export const cpu: CpuDevice = new CpuDevice();
