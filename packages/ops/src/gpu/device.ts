/**
 * The WebGPU device: storage in pooled GPU buffers, and an eager op API whose work is recorded into one
 * command encoder and submitted in batches. Reading a result back flushes, so a decode step of a whole
 * model is one submit.
 * @module
 */
/// <reference types="@webgpu/types" />
import type { Device, Storage } from '@proj/core';
import { acquireGpu, NoAdapterError } from './acquire.js';
import { describeAdapter, type GpuCaps, readCaps } from './caps.js';
import { DeviceLostError, GpuOpError } from './errors.js';
import { GpuGraph, type GraphEntry, type PositionalWord, type ReplayBindings } from './graph.js';
import { lowerCallingThreadPriority } from './host-priority.js';
import { packedBytes, type RowPacking, unpackGroups } from './packing.js';
import { BufferPool, sizeClass } from './pool.js';
import { type Profile, Profiler } from './profiler.js';
import { BufferUsage, MAP_READ, MAP_WRITE } from './usage.js';

/** A buffer range bound to one `@binding` of a kernel. */
export interface BufferBinding {
  /** The buffer. */
  buffer: GPUBuffer;
  /** Start in bytes (a multiple of the storage offset alignment). */
  offset: number;
  /** Length in bytes (a multiple of 4). */
  size: number;
}

/** One kernel launch, as ops describe it. */
export interface Dispatch {
  /** The op's name, used in error messages and GPU object labels. */
  op: string;
  /** Identifies the WGSL variant; the pipeline is compiled once per key and device. */
  key: string;
  /** Renders the WGSL; called only when the key is not cached yet. */
  wgsl: () => string;
  /** Storage bindings, `@binding(0)` upwards. */
  buffers: BufferBinding[];
  /** Uniform parameters, bound after the storage buffers (`@binding(buffers.length)`). */
  uniforms?: Uint32Array | Float32Array | Int32Array;
  /** Workgroup counts (each at most `maxWorkgroupsPerDimension`). */
  workgroups: readonly [number, number?, number?];
  /** The uniform slots that move with the sequence position (`Params.position`), for replays. */
  positional?: readonly PositionalWord[];
  /**
   * For a dispatch whose shape depends on the position: for how many positions after this one it stays
   * the same (a replayed step goes no further). Called only while capturing. Omitted: for ever.
   */
  sameFor?: () => number;
}

/** Counters for benchmarks and memory tests. */
export interface DeviceStats {
  /** Kernel launches recorded. */
  dispatches: number;
  /** Queue submits. */
  submits: number;
  /** Pipelines compiled. */
  pipelines: number;
}

/** Options of {@link createWebGpuDevice}. */
export interface WebGpuDeviceOptions {
  /** Ask for a low-power or high-performance adapter. */
  powerPreference?: GPUPowerPreference;
  /** Test hook: bind at most this many bytes per binding (to exercise split bindings on small tensors). */
  maxStorageBindingSize?: number;
  /** Enable `shader-f16` when the adapter offers it (default true). */
  f16?: boolean;
  /**
   * On a software adapter in Node on Linux, lower the calling thread's scheduling priority to the lowest
   * (nice 19) once the device exists (default false). A software driver runs every kernel on its own
   * worker threads, one per core, and splits each dispatch between them in equal shares up front; the
   * thread that records ops and polls for results can preempt one of them whenever it wakes, and the
   * whole dispatch waits for that share. At the lowest priority it runs only where a core is free: on 2
   * cores with lavapipe, 1B-shape decode ran 5-7% faster. The change is for good (raising a priority needs
   * privileges) and covers the thread's other work too, and driver threads started later (another
   * device's) inherit it: meant for programs that exist to run the model, such as the CLIs here, called
   * on the first device. {@link WebGpuDevice.hostPriorityLowered} says whether it applied.
   */
  lowerHostPriority?: boolean;
  /**
   * Dawn in Node only (browsers always check): `false` compiles every kernel without the bounds clamping
   * that WebGPU adds to each storage buffer access (Dawn's `disable_robustness`). The kernels here keep
   * their own accesses in bounds; a kernel of yours that indexes past a buffer then reaches other memory
   * of this device instead of a clamped element. On an H100, 1B decode spent about 13% less GPU time per
   * token (`docs/performance.md`). Default true.
   */
  robustness?: boolean;
}

/** How long a failed wait waits for `device.lost` before reporting its own error (see `#lostOr`). */
const LOSS_GRACE_MS = 1000;

// Room for the uniforms of MAX_DISPATCHES_PER_SUBMIT dispatches at 256-byte alignment, so a decode step of
// a large model (a few hundred dispatches) stays one submit.
const UNIFORM_ARENA_BYTES = 512 * 1024;
const MAX_DISPATCHES_PER_SUBMIT = 2048;
const MAX_CACHED_BIND_GROUPS = 8192;
// How long a quiet wait (see #settle) sleeps between two polls of Dawn's events.
const QUIET_POLL_MS = 0.25;
// What a quiet wait blocks on: made on first use, because browsers without cross-origin isolation have no
// SharedArrayBuffer (and never wait quietly).
let sleeper: Int32Array | undefined;
// Writes at least this large go through the device's own mapped staging buffers (see write()), of this
// size, at most this many of them.
const STAGED_WRITE_MIN = 1 << 20;
const WRITE_STAGING_BYTES = 16 << 20;
const WRITE_STAGING_COUNT = 4;

/** GPU memory holding one tensor. */
export class GpuStorage implements Storage {
  #freed = false;
  /** @internal Made by {@link WebGpuDevice.alloc}. */
  constructor(
    readonly device: WebGpuDevice,
    readonly buffer: GPUBuffer,
    readonly byteLength: number,
    /**
     * Set when the bytes are a weight in the lane-interleaved layout of `gpu/packing.ts` (the buffer then
     * holds whole row groups, more than `byteLength`): only `linear`, `embedding` and the layout ops read it.
     */
    readonly packing?: RowPacking,
  ) {}
  /** Returns the buffer to the device's pool; ops recorded after this may reuse it (see `retire`). */
  free(): void {
    if (this.#freed) return;
    this.#freed = true;
    this.device.retire(this.buffer);
  }
}

/** A WebGPU device for tensors. Create with {@link createWebGpuDevice}; `destroy()` when done. */
export class WebGpuDevice implements Device {
  /** Always `'webgpu'`. */
  readonly kind = 'webgpu';
  /** The adapter's description. */
  readonly description: string;
  /** Whether creating the device lowered the calling thread's priority ({@link WebGpuDeviceOptions.lowerHostPriority}). */
  readonly hostPriorityLowered: boolean;
  /** What the adapter can do. */
  readonly caps: GpuCaps;
  /** Dispatch, submit and pipeline counters. */
  readonly stats: DeviceStats = { dispatches: 0, submits: 0, pipelines: 0 };
  /** The underlying device, for code that needs raw WebGPU. */
  readonly gpu: GPUDevice;

  readonly #pool: BufferPool;
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  #encoder: GPUCommandEncoder | undefined;
  #pass: GPUComputePassEncoder | undefined;
  #dispatchesInBatch = 0;
  #uniformData = new Uint8Array(UNIFORM_ARENA_BYTES);
  #uniformUsed = 0;
  #uniformBuffer: GPUBuffer | undefined;
  readonly #freeUniformBuffers: GPUBuffer[] = [];
  readonly #staging = new Map<number, GPUBuffer[]>();
  readonly #writeStaging: GPUBuffer[] = [];
  readonly #remaps = new Map<GPUBuffer, Promise<void>>(); // per write staging buffer in flight: mapped again
  readonly #inflight = new Set<Promise<unknown>>(); // every promise Dawn has yet to settle (see destroy)
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  readonly #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 1;
  #batchOps = new Set<string>();
  #pendingErrors: Promise<GpuOpError | undefined>[] = [];
  #lost: string | undefined;
  #release: (() => void) | undefined;
  readonly #quietWaits: boolean;
  #profiler: Profiler | undefined;
  #graph: GpuGraph | undefined; // the step being captured or checked
  readonly #graphBuffers = new Map<GPUBuffer, GpuGraph>(); // buffers that graphs own

  /** @internal Use {@link createWebGpuDevice}. */
  constructor(
    adapter: GPUAdapter,
    device: GPUDevice,
    release: () => void,
    options: WebGpuDeviceOptions,
    dawn = false,
    hostPriorityLowered = false,
  ) {
    this.gpu = device;
    this.hostPriorityLowered = hostPriorityLowered;
    this.#release = release;
    const caps = readCaps(adapter, device);
    if (options.maxStorageBindingSize) {
      caps.maxStorageBindingSize = Math.min(caps.maxStorageBindingSize, options.maxStorageBindingSize);
    }
    this.caps = caps;
    this.#quietWaits = dawn && caps.software;
    this.description = describeAdapter(adapter);
    this.#pool = new BufferPool((size) => this.#createBuffer('alloc', size));
    void device.lost.then((info) => {
      this.#lost = info.message || info.reason || 'unknown reason';
    });
  }

  /** Memory counters of the buffer pool. */
  get memory(): Readonly<{ created: number; liveBytes: number; pooledBytes: number }> {
    return this.#pool.stats;
  }

  #createBuffer(op: string, size: number): GPUBuffer {
    this.#checkAlive(op);
    if (size > this.caps.maxBufferSize) {
      throw new GpuOpError(
        op,
        `a buffer of ${size} bytes exceeds the device limit maxBufferSize = ${this.caps.maxBufferSize}`,
      );
    }
    this.gpu.pushErrorScope('out-of-memory');
    const buffer = this.gpu.createBuffer({
      label: op,
      size,
      usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST,
    });
    this.#watch(op, this.#track(this.gpu.popErrorScope()));
    return buffer;
  }

  #watch(op: string, scope: Promise<GPUError | null>): void {
    this.#pendingErrors.push(scope.then((e) => (e ? new GpuOpError(op, e.message) : undefined)));
  }

  /** Notes a promise that Dawn settles, until it has: `destroy()` waits for these (it says why). */
  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inflight.add(promise);
    const settled = () => this.#inflight.delete(promise);
    promise.then(settled, settled);
    return promise;
  }

  #checkAlive(op: string): void {
    if (this.#lost !== undefined) throw new DeviceLostError(op, this.#lost);
    if (!this.#release) throw new DeviceLostError(op, 'destroy() was called');
  }

  /** Uninitialised storage of `byteLength` bytes from the pool. */
  alloc(byteLength: number): GpuStorage {
    return new GpuStorage(this, this.#acquire(byteLength), byteLength);
  }

  /** @internal Storage for a packed weight (see `gpu/packing.ts`); `byteLength` is the logical size. */
  allocPacked(packing: RowPacking): GpuStorage {
    const buffer = this.#acquire(packedBytes(packing));
    return new GpuStorage(this, buffer, packing.rows * packing.rowBytes, packing);
  }

  // From the pool, or while a step is captured, from (and then owned by) its graph.
  #acquire(bytes: number): GPUBuffer {
    const graph = this.#graph;
    if (!graph) return this.#pool.acquire(bytes);
    return graph.acquire(sizeClass(bytes), () => {
      const buffer = this.#pool.acquire(bytes);
      this.#graphBuffers.set(buffer, graph);
      return buffer;
    });
  }

  /** Storage holding a copy of `bytes`. */
  upload(bytes: Uint8Array): GpuStorage {
    const storage = this.alloc(bytes.byteLength);
    this.write(storage, 0, bytes);
    return storage;
  }

  /**
   * Copies `bytes` into `storage` at `byteOffset` (a multiple of 4), ordered after the work recorded so
   * far; large writes go through the device's staging buffers.
   */
  write(storage: Storage, byteOffset: number, bytes: Uint8Array): void {
    const target = storage as GpuStorage;
    if (target.packing)
      throw new GpuOpError('write', 'the tensor holds a packed weight; write it before packing');
    this.#writeBytes(target, target.byteLength, byteOffset, bytes);
  }

  /**
   * @internal Writes `byteLength` bytes at `byteOffset` of `storage` that `fill` puts into the mapped memory
   * of one of the device's staging buffers when one is free (so a loader copies each byte once on the host,
   * packing a weight on the way: see `writeRows`), else into a new array written with `writeBuffer`. For a
   * packed weight `fill` writes packed bytes, and they may run into the last row group's padding.
   */
  writeFilled(
    storage: GpuStorage,
    byteOffset: number,
    byteLength: number,
    fill: (into: Uint8Array) => void,
  ): void {
    const limit = storage.packing ? packedBytes(storage.packing) : storage.byteLength;
    this.#checkWrite(storage, limit, byteOffset, byteLength);
    const staging =
      byteLength >= STAGED_WRITE_MIN && byteLength <= WRITE_STAGING_BYTES && byteLength % 4 === 0
        ? this.#mappedWriteStaging()
        : undefined;
    if (!staging) {
      const bytes = new Uint8Array(byteLength);
      fill(bytes);
      this.#writeBytes(storage, limit, byteOffset, bytes);
      return;
    }
    fill(new Uint8Array(staging.getMappedRange(0, byteLength)));
    this.#copyFromStaging(staging, storage.buffer, byteOffset, byteLength);
  }

  /**
   * Resolves when one of the device's write staging buffers is mapped and free, so that the next large
   * write goes through it. A loader awaits this before each chunk: without it, writes that find every
   * staging buffer in flight fall back to `queue.writeBuffer`, whose staging allocation per call (fresh
   * memory, faulted in) made it a loader's bottleneck. It also paces the loader to the device.
   */
  async writable(): Promise<void> {
    while (!this.#mappedWriteStaging()) {
      await this.#settle(Promise.race(this.#remaps.values()));
      this.#checkAlive('write'); // destroyed or lost while waiting: the remaps failed
    }
  }

  #checkWrite(target: GpuStorage, limit: number, byteOffset: number, byteLength: number): void {
    this.#checkAlive('write');
    if (byteOffset % 4 !== 0 || byteOffset < 0 || byteOffset + byteLength > limit) {
      throw new GpuOpError(
        'write',
        `${byteLength} bytes at offset ${byteOffset} do not fit a ${target.byteLength}-byte tensor (offsets must be multiples of 4)`,
      );
    }
  }

  #writeBytes(target: GpuStorage, limit: number, byteOffset: number, bytes: Uint8Array): void {
    this.#graph?.refuse('the step writes to a buffer from the host');
    this.#checkWrite(target, limit, byteOffset, bytes.byteLength);
    // queue.writeBuffer runs when it is called, before the batch being recorded: submit the batch first, so
    // that a kernel recorded earlier still reads what it would have read (the buffer may be a tensor the
    // batch reads, or one freed in the batch and handed out again).
    this.flush();
    // writeBuffer needs sizes in whole words: write the aligned part, then the tail padded to a word.
    const aligned = bytes.byteLength - (bytes.byteLength % 4);
    const staged =
      aligned >= STAGED_WRITE_MIN ? this.#writeStaged(target.buffer, byteOffset, bytes, aligned) : 0;
    if (aligned > staged) {
      // The spec takes shared memory too (AllowSharedBufferSource); TypeScript's DOM library says otherwise.
      const data = bytes as Uint8Array<ArrayBuffer>;
      this.gpu.queue.writeBuffer(target.buffer, byteOffset + staged, data, staged, aligned - staged);
    }
    if (aligned < bytes.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(bytes.subarray(aligned));
      this.gpu.queue.writeBuffer(target.buffer, byteOffset + aligned, tail);
    }
  }

  /**
   * Copies the first `length` bytes of `bytes` into `buffer` at `offset` through mapped staging buffers
   * that the device keeps and reuses, as far as one is mapped and ready; returns how many bytes it took
   * (the caller writes the rest with `writeBuffer`). `queue.writeBuffer` makes a new staging allocation
   * for each large write, which made it a loader's bottleneck: measured on lavapipe, 1 GiB in 16 MiB chunks
   * took 0.8-1.2 s that way and 0.24-0.28 s through four reused staging buffers (reading the file: 0.11 s).
   */
  #writeStaged(buffer: GPUBuffer, offset: number, bytes: Uint8Array, length: number): number {
    let done = 0;
    while (done < length) {
      const staging = this.#mappedWriteStaging();
      if (!staging) break; // all in flight: the caller falls back to writeBuffer
      const n = Math.min(WRITE_STAGING_BYTES, length - done);
      new Uint8Array(staging.getMappedRange(0, n)).set(bytes.subarray(done, done + n));
      this.#copyFromStaging(staging, buffer, offset + done, n);
      done += n;
    }
    return done;
  }

  /** Submits the copy of a filled staging buffer's first `n` bytes, then maps it again for a later write. */
  #copyFromStaging(staging: GPUBuffer, buffer: GPUBuffer, offset: number, n: number): void {
    staging.unmap();
    this.#endPass();
    this.#beginBatch().copyBufferToBuffer(staging, 0, buffer, offset, n);
    this.flush();
    // Mapped again once the copy has run; on destroy or loss this fails, and writable() throws.
    this.#remaps.set(
      staging,
      this.#track(staging.mapAsync(MAP_WRITE)).catch(() => {}),
    );
  }

  /** A write staging buffer that is mapped now: an idle one, or a new one while there are few. */
  #mappedWriteStaging(): GPUBuffer | undefined {
    const ready = this.#writeStaging.find((b) => b.mapState === 'mapped');
    if (ready || this.#writeStaging.length >= WRITE_STAGING_COUNT) return ready;
    const created = this.gpu.createBuffer({
      label: 'write staging',
      size: WRITE_STAGING_BYTES,
      usage: BufferUsage.MAP_WRITE | BufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    this.#writeStaging.push(created);
    return created;
  }

  /**
   * @internal Called when storage is freed: the buffer returns to the pool at once, so that the next op
   * recorded can reuse it (a forward pass's intermediates take the memory of one layer, not of all of them).
   * WebGPU runs a batch's kernels and copies in order, so a later one that writes the buffer runs after the
   * earlier ones that read it; uploads, which do not run in that order, submit the batch first
   * (#writeBytes).
   */
  retire(buffer: GPUBuffer): void {
    const graph = this.#graphBuffers.get(buffer);
    if (graph) graph.release(buffer);
    else if (!this.#release) buffer.destroy();
    else this.#pool.release(buffer);
  }

  /** The bytes of `storage` (row-major, also for a packed weight), after all work queued so far. */
  async read(storage: Storage): Promise<Uint8Array> {
    const src = storage as GpuStorage;
    this.#checkAlive('read');
    this.#graph?.refuse('the step reads a result back');
    if (src.packing) {
      const whole = new GpuStorage(this, src.buffer, packedBytes(src.packing));
      return unpackGroups(await this.read(whole), src.packing);
    }
    const size = Math.ceil(src.byteLength / 4) * 4;
    const staging = this.#acquireStaging(size);
    try {
      this.#endPass();
      const encoder = this.#beginBatch();
      if (size > 0) encoder.copyBufferToBuffer(src.buffer, 0, staging, 0, size);
      this.flush();
      await this.#throwPendingErrors();
      await this.#settle(this.#track(staging.mapAsync(MAP_READ, 0, staging.size)));
      return new Uint8Array(staging.getMappedRange(0, staging.size)).slice(0, src.byteLength);
    } catch (error) {
      throw await this.#lostOr('read', error);
    } finally {
      if (staging.mapState === 'mapped') staging.unmap();
      this.#releaseStaging(staging);
    }
  }

  // Staging buffers for reads are pooled by size class too, so a decode loop that reads one id per token
  // creates no buffers in steady state.
  #acquireStaging(size: number): GPUBuffer {
    const bytes = sizeClass(Math.max(size, 4));
    return (
      this.#staging.get(bytes)?.pop() ??
      this.gpu.createBuffer({
        label: 'read',
        size: bytes,
        usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
      })
    );
  }

  #releaseStaging(buffer: GPUBuffer): void {
    if (!this.#release) {
      buffer.destroy();
      return;
    }
    const list = this.#staging.get(buffer.size);
    if (list) list.push(buffer);
    else this.#staging.set(buffer.size, [buffer]);
  }

  /** Waits for all submitted work and throws the first GPU error any op raised since the last check. */
  async sync(): Promise<void> {
    this.flush();
    await this.#throwPendingErrors();
    await this.#settle(this.#track(this.gpu.queue.onSubmittedWorkDone()));
    if (this.#lost !== undefined) throw new DeviceLostError('sync', this.#lost);
  }

  /**
   * Waits for a promise of GPU work. Dawn's Node binding learns that work finished by polling in a
   * `setImmediate` loop for as long as such a promise is pending, which keeps a CPU core busy. On a
   * software adapter that core is one the driver's threads need (on a 2-core machine a long kernel ran
   * 25% faster with the main thread asleep), so there the wait sleeps between polls instead: the thread
   * blocks for a fraction of a millisecond (using no CPU), then lets one round of polling run.
   */
  async #settle<T>(promise: Promise<T>): Promise<T> {
    if (!this.#quietWaits) return promise;
    let settled = false;
    const mark = () => {
      settled = true;
    };
    promise.then(mark, mark);
    while (!settled) {
      sleeper ??= new Int32Array(new SharedArrayBuffer(4));
      Atomics.wait(sleeper, 0, 0, QUIET_POLL_MS);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return promise;
  }

  async #throwPendingErrors(): Promise<void> {
    const pending = this.#pendingErrors;
    this.#pendingErrors = [];
    for (const error of await Promise.all(pending)) if (error) throw error;
  }

  #pipeline(d: Dispatch): GPUComputePipeline {
    let pipeline = this.#pipelines.get(d.key);
    if (!pipeline) {
      this.gpu.pushErrorScope('validation');
      const module = this.gpu.createShaderModule({ label: d.key, code: d.wgsl() });
      pipeline = this.gpu.createComputePipeline({
        label: d.key,
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
      });
      this.#watch(d.op, this.#track(this.gpu.popErrorScope()));
      this.#pipelines.set(d.key, pipeline);
      this.stats.pipelines++;
    }
    return pipeline;
  }

  /** Records one kernel launch into the current batch. */
  dispatch(d: Dispatch): void {
    this.#checkAlive(d.op);
    const max = this.caps.maxWorkgroupsPerDimension;
    const [x, y = 1, z = 1] = d.workgroups;
    if (x > max || y > max || z > max) {
      throw new GpuOpError(
        d.op,
        `dispatch of [${x}, ${y}, ${z}] workgroups exceeds maxComputeWorkgroupsPerDimension = ${max}`,
      );
    }
    if (x * y * z === 0) return;
    const pipeline = this.#pipeline(d);
    this.#graph?.record(d, pipeline, [x, y, z]);
    const uniform = d.uniforms ? this.#uniformSlot(d.uniforms) : undefined;
    const pass = this.#profiler ? this.#profiledPass(this.#profiler, d.op) : this.#beginPass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, this.#bindGroup(d, pipeline, uniform));
    pass.dispatchWorkgroups(x, y, z);
    if (this.#profiler) pass.end();
    this.#batchOps.add(d.op);
    this.stats.dispatches++;
    if (++this.#dispatchesInBatch >= MAX_DISPATCHES_PER_SUBMIT) this.flush();
  }

  /**
   * Captures a decode step for replay: runs `step` (whose work is recorded and submitted as usual) and
   * returns its dispatches as a {@link GpuGraph}. Every buffer the step allocates belongs to the graph
   * until `graph.dispose()`. Before the first replay, `graph.check` must see the same step recorded again
   * at a later position; `graph.replay(delta)` then records it `delta` positions after the capture
   * without running its ops. The step must not upload, read back or keep a tensor it made (the graph
   * then refuses to replay); the positions its ops use must come from `Params.position`. A replay binds
   * the buffers the capture bound: the tensors the step reads (weights, caches, inputs) must stay alive
   * while the graph is used.
   *
   * @example
   * ```ts
   * import { tensor } from '@proj/core';
   * import { add, createWebGpuDevice } from '@proj/ops';
   * const gpu = await createWebGpuDevice();
   * const x = tensor([1, 2, 3], [3], { device: gpu });
   * const step = () => add(x, x).dispose(); // a step whose result stays on the device
   * const graph = gpu.capture(step);
   * graph.check(step, 1); // the same work recorded again: nothing moved with the position
   * // Recorded from the graph, without running add:
   * console.log(graph.replay(2)); // true
   * graph.dispose();
   * gpu.destroy();
   * ```
   */
  capture(step: () => void): GpuGraph {
    this.#checkAlive('capture');
    const graph = new GpuGraph(this);
    try {
      this.recordInto(graph, step);
    } catch (error) {
      graph.dispose();
      throw error;
    }
    graph.captured();
    return graph;
  }

  /** @internal Runs `step` with its allocations and dispatches going through `graph` as well. */
  recordInto(graph: GpuGraph, step: () => void): void {
    if (this.#graph) throw new GpuOpError('capture', 'a capture is already running');
    this.#graph = graph;
    try {
      step();
    } finally {
      this.#graph = undefined;
    }
  }

  /** @internal Records `graph`'s dispatches with the uniforms of `delta` positions on (see GpuGraph.replay). */
  replayGraph(graph: GpuGraph, delta: number): boolean {
    this.#checkAlive('replay');
    if (this.#profiler || this.#graph) return false; // a profile times each op as it is recorded
    this.flush(); // the uniforms written below must not reach work recorded before
    this.#beginBatch();
    const { uniforms, data, groups } = graph.replayState(delta);
    this.gpu.queue.writeBuffer(uniforms, 0, data);
    const pass = this.#beginPass();
    graph.entries.forEach((e, i) => {
      pass.setPipeline(e.pipeline);
      pass.setBindGroup(0, groups[i]!);
      pass.dispatchWorkgroups(...e.workgroups);
      this.#batchOps.add(e.op);
    });
    this.stats.dispatches += graph.entries.length;
    this.#dispatchesInBatch += graph.entries.length;
    return true;
  }

  /** @internal The uniform buffer and bind groups of a graph's replays. */
  graphBindings(entries: readonly GraphEntry[]): ReplayBindings {
    const align = this.caps.uniformOffsetAlignment;
    const offsets: number[] = [];
    let size = 0;
    for (const e of entries) {
      offsets.push(size);
      if (e.uniforms) size = Math.ceil((size + e.uniforms.byteLength) / align) * align;
    }
    const uniforms = this.gpu.createBuffer({
      label: 'graph uniforms',
      size: Math.max(size, 16),
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
    });
    const groups = entries.map((e, i) => {
      const entries: GPUBindGroupEntry[] = e.buffers.map((b, binding) => ({
        binding,
        resource: { buffer: b.buffer, offset: b.offset, size: b.size },
      }));
      if (e.uniforms) {
        const resource = { buffer: uniforms, offset: offsets[i]!, size: e.uniforms.byteLength };
        entries.push({ binding: entries.length, resource });
      }
      return this.gpu.createBindGroup({ label: e.op, layout: e.pipeline.getBindGroupLayout(0), entries });
    });
    return { uniforms, data: new Uint32Array(Math.max(size, 16) / 4), offsets, groups };
  }

  /**
   * @internal A disposed graph's buffers: the free ones back to the pool, the rest to their tensors; its
   * uniforms destroyed once a replay still being recorded is submitted.
   */
  releaseGraph(owned: readonly GPUBuffer[], free: readonly GPUBuffer[], uniforms?: GPUBuffer): void {
    for (const b of owned) this.#graphBuffers.delete(b);
    for (const b of free) this.retire(b);
    if (!uniforms) return;
    if (this.#release) this.flush();
    uniforms.destroy();
  }

  // Bind groups are cached by what they bind: a decode loop binds the same pooled buffers and uniform
  // slots every token, so after the first token no bind group is created (creating one per dispatch was a
  // large share of the per-dispatch cost).
  #bindGroup(d: Dispatch, pipeline: GPUComputePipeline, uniform: GPUBufferBinding | undefined): GPUBindGroup {
    let key = d.key;
    for (const b of d.buffers) key += `|${this.#bufferId(b.buffer)}:${b.offset}:${b.size}`;
    if (uniform) key += `|u${this.#bufferId(uniform.buffer)}:${uniform.offset}:${uniform.size}`;
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size >= MAX_CACHED_BIND_GROUPS) this.#bindGroups.clear();
      const entries: GPUBindGroupEntry[] = d.buffers.map((b, binding) => ({
        binding,
        resource: { buffer: b.buffer, offset: b.offset, size: b.size },
      }));
      if (uniform) entries.push({ binding: entries.length, resource: uniform });
      group = this.gpu.createBindGroup({ label: d.op, layout: pipeline.getBindGroupLayout(0), entries });
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  #bufferId(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) this.#bufferIds.set(buffer, (id = this.#nextBufferId++));
    return id;
  }

  #uniformSlot(data: ArrayBufferView): GPUBufferBinding {
    const align = this.caps.uniformOffsetAlignment;
    const size = Math.ceil(data.byteLength / 16) * 16;
    if (this.#uniformUsed + size > UNIFORM_ARENA_BYTES) this.flush();
    if (!this.#uniformBuffer) {
      this.#uniformBuffer =
        this.#freeUniformBuffers.pop() ??
        this.gpu.createBuffer({
          label: 'uniforms',
          size: UNIFORM_ARENA_BYTES,
          usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
        });
    }
    const offset = this.#uniformUsed;
    this.#uniformData.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), offset);
    this.#uniformUsed = Math.ceil((offset + size) / align) * align;
    return { buffer: this.#uniformBuffer, offset, size };
  }

  // One validation error scope per batch (not per dispatch: each scope costs a promise). Dawn's messages
  // name the labelled object, and every bind group is labelled with its op, so errors still name the op.
  #beginBatch(): GPUCommandEncoder {
    if (!this.#encoder) {
      this.gpu.pushErrorScope('validation');
      this.#encoder = this.gpu.createCommandEncoder();
      this.#batchOps = new Set();
    }
    return this.#encoder;
  }

  #beginPass(): GPUComputePassEncoder {
    if (!this.#pass) {
      this.#pass = this.#beginBatch().beginComputePass();
    }
    return this.#pass;
  }

  /** A pass of its own for one dispatch, stamped at its start and end (see `gpu/profiler.ts`). */
  #profiledPass(profiler: Profiler, op: string): GPUComputePassEncoder {
    this.#endPass();
    return this.#beginBatch().beginComputePass(profiler.pass(op));
  }

  /**
   * Starts timing every kernel on the GPU, until {@link WebGpuDevice.stopProfile}: each dispatch then runs in
   * a compute pass of its own, stamped by the GPU at its start and end. Needs `timestamp-query`
   * (`caps.timestamps`). Work recorded before the call is submitted first and not counted.
   *
   * @example
   * ```ts
   * import { randn } from '@proj/core';
   * import { createWebGpuDevice, matmul, softmax } from '@proj/ops';
   * const gpu = await createWebGpuDevice();
   * if (gpu.caps.timestamps) {
   *   const a = randn([256, 256], { device: gpu });
   *   gpu.startProfile();
   *   const p = softmax(matmul(a, a));
   *   const profile = await gpu.stopProfile(); // waits for the work, then reads the stamps
   *   for (const k of profile.kernels) console.log(k.op, k.calls, k.ms.toFixed(3), 'ms');
   *   p.dispose();
   * }
   * gpu.destroy();
   * ```
   */
  startProfile(): void {
    this.#checkAlive('profile');
    if (!this.caps.timestamps) {
      throw new GpuOpError(
        'profile',
        'the device has no timestamp-query feature, so kernels cannot be timed',
      );
    }
    if (this.#profiler) throw new GpuOpError('profile', 'a profile is already running: stopProfile() first');
    this.flush();
    this.#profiler = new Profiler(this.gpu, MAX_DISPATCHES_PER_SUBMIT);
  }

  /** Submits what is recorded, waits for it, and returns the GPU time of each op since {@link startProfile}. */
  async stopProfile(): Promise<Profile> {
    const profiler = this.#profiler;
    if (!profiler) throw new GpuOpError('profile', 'no profile is running: startProfile() first');
    this.flush();
    this.#profiler = undefined;
    try {
      await this.#throwPendingErrors();
      return await profiler.result((p) => this.#settle(p));
    } catch (error) {
      throw await this.#lostOr('profile', error);
    }
  }

  /**
   * The error to report for a failed wait: DeviceLostError when the device is lost, else `error`. A map
   * that fails can mean the device was lost before `device.lost` says so (Firefox rejects the map with an
   * AbortError first), so for such a failure the loss is awaited for a moment before `error` is taken as
   * it is. An op's own error (`GpuOpError`: validation, out of memory) is reported at once.
   */
  async #lostOr(op: string, error: unknown): Promise<unknown> {
    if (error instanceof DeviceLostError) return error;
    if (this.#lost === undefined && !(error instanceof GpuOpError)) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise((resolve) => {
        timer = setTimeout(resolve, LOSS_GRACE_MS);
      });
      await Promise.race([this.gpu.lost, grace]);
      clearTimeout(timer);
    }
    return this.#lost === undefined ? error : new DeviceLostError(op, this.#lost);
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = undefined;
  }

  /** Submits the recorded work (reads call this; call it yourself to start work early). */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    const uniforms = this.#uniformBuffer;
    if (uniforms && this.#uniformUsed > 0) {
      this.gpu.queue.writeBuffer(uniforms, 0, this.#uniformData, 0, this.#uniformUsed);
    }
    this.#profiler?.resolve(this.#encoder);
    this.gpu.queue.submit([this.#encoder.finish()]);
    this.#profiler?.submitted((p) => this.#track(p));
    const ops = [...this.#batchOps];
    const scope = this.#track(this.gpu.popErrorScope());
    this.#pendingErrors.push(
      scope.then((e) => {
        if (!e) return undefined;
        const named = ops.find((op) => e.message.includes(`"${op}"`));
        return new GpuOpError(named ?? `one of [${ops.join(', ')}]`, e.message);
      }),
    );
    this.stats.submits++;
    this.#encoder = undefined;
    this.#dispatchesInBatch = 0;
    // Queue order makes these safe to reuse now: later writes and submits run after this submit.
    if (uniforms) this.#freeUniformBuffers.push(uniforms);
    this.#uniformBuffer = undefined;
    this.#uniformUsed = 0;
  }

  /** Frees pooled buffers that no tensor uses. */
  trim(): void {
    this.flush();
    this.#bindGroups.clear(); // they may reference the buffers about to be destroyed
    this.#pool.trim();
  }

  /** Destroys the device and lets Node exit; tensors on it become unusable. Safe to call twice. */
  destroy(): void {
    if (!this.#release) return;
    this.#pass?.end();
    this.#pass = undefined;
    this.#encoder = undefined;
    this.#profiler?.dispose();
    this.#profiler = undefined;
    this.#pool.trim();
    for (const b of this.#freeUniformBuffers) b.destroy();
    for (const list of this.#staging.values()) for (const b of list) b.destroy();
    for (const b of this.#writeStaging) b.destroy();
    const release = this.#release;
    this.#release = undefined;
    // Dawn's Node binding polls for its promises with a reference to its instance that does not keep the
    // instance alive. Dropping the instance (what lets Node exit) while one of them is pending let a poll
    // run on a freed instance: an abort or a segfault at exit, in about 3% of short programs on lavapipe.
    // So the instance is dropped once every promise this device made (error scopes, buffer maps, waits for
    // the queue, its loss) has settled and the poll that settled the last one has returned, or after a
    // second at most.
    const pending = [...this.#inflight, this.gpu.lost];
    this.gpu.destroy();
    const fallback = setTimeout(release, 1000);
    void Promise.allSettled(pending).then(() =>
      setTimeout(() => {
        clearTimeout(fallback);
        release();
      }, 0),
    );
  }

  /** So that `using gpu = await createWebGpuDevice()` destroys it at the end of the block. */
  [Symbol.dispose](): void {
    this.destroy();
  }
}

/**
 * Creates a WebGPU device with the adapter's full buffer limits and `shader-f16` where offered.
 * Throws {@link NoAdapterError} (saying how to get one) when there is no adapter.
 *
 * @example
 * ```ts
 * import { createWebGpuDevice } from '@proj/ops';
 * const gpu = await createWebGpuDevice();
 * console.log(gpu.description);
 * gpu.destroy(); // lets Node exit
 * ```
 */
export async function createWebGpuDevice(options: WebGpuDeviceOptions = {}): Promise<WebGpuDevice> {
  let entry: Awaited<ReturnType<typeof acquireGpu>> | undefined = await acquireGpu({
    robustness: options.robustness !== false,
  });
  const release = () => {
    entry = undefined; // drop Dawn's instance so Node can exit
  };
  const adapter = await entry.gpu.requestAdapter(
    options.powerPreference ? { powerPreference: options.powerPreference } : {},
  );
  if (!adapter) {
    release();
    throw new NoAdapterError(`requestAdapter() returned null via ${entry?.source ?? 'webgpu'}`);
  }
  const wanted: GPUFeatureName[] = [];
  if (options.f16 !== false && adapter.features.has('shader-f16')) wanted.push('shader-f16');
  if (adapter.features.has('subgroups')) wanted.push('subgroups' as GPUFeatureName);
  if (adapter.features.has('timestamp-query')) wanted.push('timestamp-query');
  const l = adapter.limits;
  const device = await adapter.requestDevice({
    requiredFeatures: wanted,
    requiredLimits: {
      maxBufferSize: l.maxBufferSize,
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: l.maxComputeWorkgroupSizeY,
      maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    },
  });
  const dawn = entry.source === 'dawn';
  // After the device exists, so that the driver's worker threads, started with it, keep their priority.
  const lowered =
    options.lowerHostPriority === true &&
    dawn &&
    readCaps(adapter, device).software &&
    (await lowerCallingThreadPriority());
  return new WebGpuDevice(adapter, device, release, options, dawn, lowered);
}
