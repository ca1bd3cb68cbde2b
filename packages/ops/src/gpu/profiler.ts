/**
 * GPU time per kernel, from timestamp queries: while a device profiles, each dispatch runs in a compute pass
 * of its own whose start and end the GPU stamps, and the stamps of each submit are read back and added up
 * by op. What it measures is the GPU's time inside each kernel, which wall-clock timing around `sync()`
 * cannot separate from dispatch costs and gaps between kernels. (One pass per dispatch can itself add a
 * little GPU time between kernels; the kernels' own times are what it reports.)
 * @module
 */
/// <reference types="@webgpu/types" />
import { BufferUsage, MAP_READ } from './usage.js';

/** The GPU time of one op's kernels over a profile. */
export interface KernelTime {
  /** The op (`linear`, `attention`, ...). */
  op: string;
  /** Dispatches of it. */
  calls: number;
  /** Their GPU time in milliseconds, summed. */
  ms: number;
}

/** What {@link WebGpuDevice.stopProfile} returns. */
export interface Profile {
  /** The GPU time of all profiled dispatches, in milliseconds. */
  totalMs: number;
  /** Per op, the most time first. */
  kernels: KernelTime[];
  /** The first dispatches in order (up to {@link MAX_TIMELINE}), each with its op and GPU time. */
  timeline: { op: string; ms: number }[];
}

/** How many dispatches {@link Profile.timeline} keeps (the totals count all of them). */
export const MAX_TIMELINE = 4096;

const BYTES_PER_STAMP = 8;

/** The query set and buffers of one submit's stamps. */
interface Batch {
  queries: GPUQuerySet;
  resolved: GPUBuffer;
  readback: GPUBuffer;
  ops: string[];
}

/** Collects the stamps of the submits made while a device profiles. Made by the device. */
export class Profiler {
  readonly #device: GPUDevice;
  readonly #capacity: number; // dispatches per submit
  #batch: Batch | undefined;
  readonly #pending: Promise<void>[] = [];
  readonly #totals = new Map<string, KernelTime>();
  readonly #timeline: { op: string; ms: number }[] = [];
  #failure: Error | undefined;

  /** `capacity`: the most dispatches the device records into one submit. */
  constructor(device: GPUDevice, capacity: number) {
    this.#device = device;
    this.#capacity = capacity;
  }

  /** The pass descriptor for the next dispatch, whose start and end the GPU will stamp. */
  pass(op: string): GPUComputePassDescriptor {
    this.#batch ??= this.#newBatch();
    const index = 2 * this.#batch.ops.length;
    this.#batch.ops.push(op);
    return {
      label: op,
      timestampWrites: {
        querySet: this.#batch.queries,
        beginningOfPassWriteIndex: index,
        endOfPassWriteIndex: index + 1,
      },
    };
  }

  /** Records the copy of this submit's stamps to a readable buffer; call before `encoder.finish()`. */
  resolve(encoder: GPUCommandEncoder): void {
    const b = this.#batch;
    if (!b) return;
    const bytes = 2 * b.ops.length * BYTES_PER_STAMP;
    encoder.resolveQuerySet(b.queries, 0, 2 * b.ops.length, b.resolved, 0);
    encoder.copyBufferToBuffer(b.resolved, 0, b.readback, 0, bytes);
  }

  /** After the submit: reads its stamps back when the GPU is done (`track` notes the map's promise). */
  submitted(track: (p: Promise<void>) => Promise<void>): void {
    const b = this.#batch;
    if (!b) return;
    this.#batch = undefined;
    const bytes = 2 * b.ops.length * BYTES_PER_STAMP;
    const read = track(b.readback.mapAsync(MAP_READ, 0, bytes)).then(
      () => {
        const stamps = new BigUint64Array(b.readback.getMappedRange(0, bytes));
        for (const [i, op] of b.ops.entries()) this.#add(op, stamps[2 * i]!, stamps[2 * i + 1]!);
      },
      (error: Error) => {
        this.#failure ??= error;
      },
    );
    this.#pending.push(read.finally(() => this.#destroy(b)));
  }

  /** Waits for every submitted batch (through `settle`) and returns the totals. */
  async result(settle: (p: Promise<unknown>) => Promise<unknown>): Promise<Profile> {
    await settle(Promise.all(this.#pending));
    if (this.#failure) throw this.#failure;
    const kernels = [...this.#totals.values()].sort((a, b) => b.ms - a.ms);
    return {
      totalMs: kernels.reduce((sum, k) => sum + k.ms, 0),
      kernels,
      timeline: this.#timeline,
    };
  }

  /** Frees what is not in flight (the device is stopping or going away). */
  dispose(): void {
    if (this.#batch) this.#destroy(this.#batch);
    this.#batch = undefined;
  }

  #add(op: string, begin: bigint, end: bigint): void {
    // A stamp pair can come back reversed or zero when the implementation could not take it; count the
    // call, not a negative time.
    const ms = end > begin ? Number(end - begin) / 1e6 : 0;
    const total = this.#totals.get(op) ?? { op, calls: 0, ms: 0 };
    total.calls++;
    total.ms += ms;
    this.#totals.set(op, total);
    if (this.#timeline.length < MAX_TIMELINE) this.#timeline.push({ op, ms });
  }

  #newBatch(): Batch {
    const bytes = 2 * this.#capacity * BYTES_PER_STAMP;
    return {
      queries: this.#device.createQuerySet({
        label: 'profile',
        type: 'timestamp',
        count: 2 * this.#capacity,
      }),
      resolved: this.#device.createBuffer({
        label: 'profile',
        size: bytes,
        usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC,
      }),
      readback: this.#device.createBuffer({
        label: 'profile',
        size: bytes,
        usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST,
      }),
      ops: [],
    };
  }

  #destroy(b: Batch): void {
    b.queries.destroy();
    b.resolved.destroy();
    b.readback.destroy();
  }
}
