/**
 * A buffer pool: freed storage buffers wait here, grouped by size class, and are handed out again, so that
 * steady-state work (a decode loop) allocates nothing new.
 * @module
 */
/// <reference types="@webgpu/types" />

/** Rounds a byte size up to its size class: 256-byte steps for small sizes, then 1/8 of a power of two. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (b <= 64 * 1024) return b;
  const step = 2 ** (Math.floor(Math.log2(b)) - 3);
  return Math.ceil(b / step) * step;
}

/** Counters that benchmarks and memory tests read. */
export interface PoolStats {
  /** Buffers ever created by the pool. */
  created: number;
  /** Bytes in buffers that are in use or pooled (what the device holds). */
  liveBytes: number;
  /** Bytes waiting in the pool. */
  pooledBytes: number;
}

/** Storage buffers pooled by size class. */
export class BufferPool {
  readonly #free = new Map<number, GPUBuffer[]>();
  readonly stats: PoolStats = { created: 0, liveBytes: 0, pooledBytes: 0 };

  /** @param create makes a new buffer of the given size (the device checks limits there). */
  constructor(private readonly create: (size: number) => GPUBuffer) {}

  /** A buffer of at least `bytes` bytes (its size is the size class). */
  acquire(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const buffer = this.#free.get(size)?.pop();
    if (buffer) {
      this.stats.pooledBytes -= size;
      return buffer;
    }
    const created = this.create(size);
    this.stats.created++;
    this.stats.liveBytes += size;
    return created;
  }

  /** Returns a buffer for reuse. Only call once no queued work can still read or write it. */
  release(buffer: GPUBuffer): void {
    const list = this.#free.get(buffer.size);
    if (list) list.push(buffer);
    else this.#free.set(buffer.size, [buffer]);
    this.stats.pooledBytes += buffer.size;
  }

  /** Destroys every pooled buffer (memory in use stays). */
  trim(): void {
    for (const list of this.#free.values()) for (const b of list) b.destroy();
    this.stats.liveBytes -= this.stats.pooledBytes;
    this.stats.pooledBytes = 0;
    this.#free.clear();
  }
}
