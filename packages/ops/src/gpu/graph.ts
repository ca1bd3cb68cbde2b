/**
 * Replayable decode steps. Recording a step of a model costs the host about as much as the GPU's work on
 * a fast GPU (each op's JavaScript, then a pipeline, a bind group and the uniforms per dispatch), so a
 * decode loop that records every token is bound by the host. A step captured once can be recorded again
 * from its list of dispatches: the same pipelines and bind groups, with the uniforms that move with the
 * position (declared by the ops with `Params.position`) rewritten. See {@link WebGpuDevice.capture}.
 *
 * What makes a replay exact:
 * - The buffers: every buffer the step allocates belongs to the graph from then on (the pool never hands
 *   it to anyone else), and a later run of the same step gets the same buffers in the same order.
 * - The check: a captured graph is replayed only after a second run of the step, `delta` positions on,
 *   has recorded exactly what the graph predicts for it: the same kernels, buffers and workgroups, and
 *   uniforms that differ by the declared amounts only. A value that moves without being declared, or an
 *   op that behaves differently, fails the check instead of giving a wrong result.
 * - The range: an op whose dispatches change shape further on (attention splits its keys into more
 *   chunks as the cache grows) says for how many positions its dispatches stay the same (`sameFor`), and
 *   the graph does not replay past the nearest such limit.
 * @module
 */
/// <reference types="@webgpu/types" />
import type { BufferBinding, Dispatch, WebGpuDevice } from './device.js';

/** A uniform slot that a replayed decode step moves: `word`, by `perPosition` per position. */
export interface PositionalWord {
  /** The slot's index (4-byte words from the start of the uniforms). */
  word: number;
  /** How much the slot grows per position. */
  perPosition: number;
}

/** One dispatch as a graph holds it. */
export interface GraphEntry {
  /** The op that recorded it. */
  op: string;
  /** Its kernel variant (the pipeline cache key). */
  key: string;
  /** The compiled kernel. */
  pipeline: GPUComputePipeline;
  /** Its storage bindings, as captured. */
  buffers: BufferBinding[];
  /** Its uniforms at the capture's position. */
  uniforms: Uint32Array | undefined;
  /** The uniform slots that move with the position. */
  positional: readonly PositionalWord[];
  /** Its workgroup counts. */
  workgroups: readonly [number, number, number];
}

/**
 * What a replay binds, made on the first one: every entry's uniforms at an aligned offset of one buffer
 * (`data` is its contents), and a bind group per entry.
 */
export interface ReplayBindings {
  uniforms: GPUBuffer;
  data: Uint32Array<ArrayBuffer>;
  offsets: number[];
  groups: GPUBindGroup[];
}

/** A recorded decode step that can be recorded again without running its ops. */
export class GpuGraph {
  /** The dispatches, in order. */
  readonly entries: GraphEntry[] = [];
  readonly #device: WebGpuDevice;
  readonly #allocs: GPUBuffer[] = []; // every allocation of the captured step, in order
  readonly #owned = new Set<GPUBuffer>();
  readonly #free = new Set<GPUBuffer>();
  #mode: 'capture' | 'check' | 'sealed' = 'capture';
  #next = 0; // while checking: the entry and the allocation expected next
  #nextAlloc = 0;
  #delta = 0;
  #sameFor = Number.POSITIVE_INFINITY;
  #refused: string | undefined;
  #checked = false;
  #disposed = false;
  #replay: ReplayBindings | undefined;

  /** @internal Made by {@link WebGpuDevice.capture}. */
  constructor(device: WebGpuDevice) {
    this.#device = device;
  }

  /** Why the graph cannot replay (undefined when it can, once checked). */
  get refused(): string | undefined {
    if (this.#disposed) return 'disposed';
    return this.#refused ?? (this.#checked ? undefined : 'not checked yet');
  }

  /** How many positions past the capture the graph may replay (its ops' dispatches stay the same). */
  get sameFor(): number {
    return this.#sameFor;
  }

  /** Whether {@link GpuGraph.replay} would record the step `delta` positions after the capture. */
  canReplay(delta: number): boolean {
    return this.refused === undefined && Number.isInteger(delta) && delta > 0 && delta <= this.#sameFor;
  }

  /**
   * Records the captured step again, `delta` positions after the capture, into the device's batch (which
   * is submitted first: the rewritten uniforms must not reach earlier work). Returns false, recording
   * nothing, where the graph cannot (see {@link GpuGraph.canReplay}); then run the step's ops instead.
   */
  replay(delta: number): boolean {
    if (!this.canReplay(delta)) return false;
    return this.#device.replayGraph(this, delta);
  }

  /**
   * Runs `run` (the same step, `delta` positions after the capture) with its work recorded as usual, and
   * checks that it matches what the graph predicts; the graph can replay only once a check has passed.
   * Returns whether it did; `run` runs either way.
   */
  check(run: () => void, delta: number): boolean {
    if (this.#disposed || this.#refused) {
      run();
      return false;
    }
    this.#mode = 'check';
    this.#next = 0;
    this.#nextAlloc = 0;
    this.#delta = delta;
    try {
      this.#device.recordInto(this, run);
    } finally {
      this.#mode = 'sealed';
    }
    if (!this.#refused && this.#next !== this.entries.length) {
      this.#refuse(`the check recorded ${this.#next} dispatches, the capture ${this.entries.length}`);
    }
    if (!this.#refused) this.#seal();
    this.#checked = !this.#refused;
    return this.#checked;
  }

  /** Returns the graph's buffers to the device's pool. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#device.releaseGraph([...this.#owned], [...this.#free], this.#replay?.uniforms);
    this.#replay = undefined;
    this.#owned.clear();
    this.#free.clear();
  }

  /** @internal The capture has ended: the graph owns what it allocated. */
  captured(): void {
    this.#mode = 'sealed';
    this.#seal();
  }

  /** @internal A buffer for an allocation of `size` bytes (a size class) by the step being recorded. */
  acquire(size: number, fromPool: () => GPUBuffer): GPUBuffer {
    if (this.#mode === 'check') {
      const expected = this.#allocs[this.#nextAlloc++];
      if (expected && expected.size === size && this.#free.delete(expected)) return expected;
      this.#refuse('the check allocated differently from the capture');
      return this.#take(size, fromPool);
    }
    const buffer = this.#take(size, fromPool);
    this.#allocs.push(buffer);
    return buffer;
  }

  /** @internal A buffer of the graph that its tensor no longer uses. */
  release(buffer: GPUBuffer): void {
    this.#free.add(buffer);
  }

  /** @internal Something the step did that a replay would not repeat (an upload, a read). */
  refuse(why: string): void {
    this.#refuse(why);
  }

  /** @internal One dispatch of the step being captured or checked. */
  record(d: Dispatch, pipeline: GPUComputePipeline, workgroups: readonly [number, number, number]): void {
    if (this.#mode === 'capture') {
      this.entries.push({
        op: d.op,
        key: d.key,
        pipeline,
        buffers: d.buffers.map((b) => ({ ...b })),
        uniforms: d.uniforms && new Uint32Array(copyWords(d.uniforms)),
        positional: d.positional ?? [],
        workgroups,
      });
      if (d.sameFor) this.#sameFor = Math.min(this.#sameFor, d.sameFor());
      return;
    }
    if (this.#mode !== 'check' || this.#refused) return;
    const at = this.#next++;
    const e = this.entries[at];
    const differs = e ? differences(e, d, workgroups, this.#delta) : 'a dispatch the capture did not have';
    if (differs) this.#refuse(`dispatch ${at} (${d.op}) differs from the capture: ${differs}`);
  }

  /** @internal The uniforms of every entry at `delta` positions on, and the bind groups (made once). */
  replayState(delta: number): ReplayBindings {
    if (!this.#replay) {
      this.#replay = this.#device.graphBindings(this.entries);
      const { data, offsets } = this.#replay;
      this.entries.forEach((e, i) => {
        if (e.uniforms) data.set(e.uniforms, offsets[i]! / 4); // as captured
      });
    }
    const { data, offsets } = this.#replay;
    this.entries.forEach((e, i) => {
      const at = offsets[i]! / 4;
      for (const p of e.positional) data[at + p.word] = (e.uniforms![p.word]! + p.perPosition * delta) >>> 0;
    });
    return this.#replay;
  }

  #take(size: number, fromPool: () => GPUBuffer): GPUBuffer {
    for (const b of this.#free) {
      if (b.size === size) {
        this.#free.delete(b);
        return b;
      }
    }
    const fresh = fromPool();
    this.#owned.add(fresh);
    return fresh;
  }

  // A tensor made by the step that outlives it would be overwritten by every replay.
  #seal(): void {
    if (this.#free.size !== this.#owned.size) this.#refuse('a tensor allocated by the step outlives it');
  }

  #refuse(why: string): void {
    this.#refused ??= why;
  }
}

function copyWords(u: Uint32Array | Float32Array | Int32Array): ArrayBuffer {
  return u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength) as ArrayBuffer;
}

/** How dispatch `d` differs from the prediction of entry `e` at `delta` positions on (undefined: it does not). */
function differences(
  e: GraphEntry,
  d: Dispatch,
  workgroups: readonly [number, number, number],
  delta: number,
): string | undefined {
  if (d.key !== e.key) return `kernel ${d.key}, captured ${e.key}`;
  if (workgroups.some((w, i) => w !== e.workgroups[i])) {
    return `workgroups [${workgroups}], captured [${e.workgroups}]`;
  }
  if (
    d.buffers.length !== e.buffers.length ||
    d.buffers.some((b, i) => {
      const c = e.buffers[i]!;
      return b.buffer !== c.buffer || b.offset !== c.offset || b.size !== c.size;
    })
  ) {
    return 'other buffers';
  }
  const words = d.uniforms && new Uint32Array(copyWords(d.uniforms));
  if (!words !== !e.uniforms || (words && words.length !== e.uniforms!.length)) return 'other uniforms';
  if (!words) return undefined;
  const expected = Uint32Array.from(e.uniforms!);
  for (const p of e.positional) expected[p.word] = (expected[p.word]! + p.perPosition * delta) >>> 0;
  const slot = words.findIndex((w, i) => w !== expected[i]);
  return slot < 0 ? undefined : `uniform slot ${slot} is ${words[slot]}, ${expected[slot]} expected`;
}
