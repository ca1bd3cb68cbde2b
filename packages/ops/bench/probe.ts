/**
 * The bandwidth probe: how fast this adapter can read a large buffer at best. It is the yardstick of the
 * GEMV benchmark (a decode step reads every weight once, so its ceiling is this read rate).
 *
 * The probe tries a few layouts (workgroup sizes and words per invocation) and keeps the fastest, so the
 * GEMV is compared with the best plain read this adapter can do, not with a read we made slow.
 * @module
 */
import type { WebGpuDevice } from '../src/gpu/device.js';
import { grid } from '../src/op.js';

/** One probe layout: invocations per workgroup and 16-byte words each reads per loop step. */
interface ProbeLayout {
  /** Invocations per workgroup; neighbouring invocations read neighbouring 16-byte words. */
  workgroupSize: number;
  /** Total workgroups (each strides over its share of the buffer). */
  workgroups: number;
}

const LAYOUTS: ProbeLayout[] = [
  { workgroupSize: 8, workgroups: 1024 },
  { workgroupSize: 64, workgroups: 256 },
  { workgroupSize: 256, workgroups: 1024 },
];

function probeWgsl(l: ProbeLayout): string {
  // Each workgroup reads a contiguous slice; its lanes read neighbouring vec4 words, one slice row per step.
  // The xor-fold result is written so the reads cannot be optimised away.
  return `
@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
struct Params { words: u32, per_group: u32 }
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(${l.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u,
        @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
  let start = wg * p.per_group;
  let end = min(start + p.per_group, p.words);
  var acc = vec4<u32>(0u);
  for (var i = start + lid; i < end; i += ${l.workgroupSize}u) { acc ^= src[i]; }
  out[wg * ${l.workgroupSize}u + lid] = acc.x ^ acc.y ^ acc.z ^ acc.w;
}`;
}

/** The probe's best layout, ready to run again: what the GEMV benchmark times alongside each GEMV. */
export interface ReadProbe {
  /** Best read rate, GB/s (10^9 bytes per second), over the repetitions that chose the layout. */
  gbPerSecond: number;
  /** The layout that gave it, for the benchmark's notes. */
  layout: string;
  /** Bytes read per run. */
  bytes: number;
  /** Records one read of the whole buffer with the best layout. */
  run(): void;
  /** Frees the probe's buffers. */
  free(): void;
}

/**
 * Reads a `bytes`-sized buffer (bound in ranges of at most `maxStorageBindingSize`) `reps` times per layout
 * after a warm-up, and keeps the layout with the best median rate, its buffers still allocated.
 */
export async function openReadProbe(device: WebGpuDevice, bytes: number, reps: number): Promise<ReadProbe> {
  const slice = Math.min(bytes, Math.floor(device.caps.maxStorageBindingSize / 256) * 256);
  const slices = Math.ceil(bytes / slice);
  const total = slice * slices;
  // Uninitialised buffers read as zeros in WebGPU; the values do not matter to a read rate.
  const src = device.alloc(total);
  let best: ReadProbe | undefined;
  for (const layout of LAYOUTS) {
    const out = device.alloc(layout.workgroups * layout.workgroupSize * 4);
    const words = slice / 16;
    const perGroup = Math.ceil(words / layout.workgroups);
    const [x, y] = grid(layout.workgroups, device.caps.maxWorkgroupsPerDimension);
    const run = () => {
      for (let s = 0; s < slices; s++) {
        device.dispatch({
          op: 'probe',
          key: `probe:${layout.workgroupSize}`,
          wgsl: () => probeWgsl(layout),
          buffers: [
            { buffer: src.buffer, offset: s * slice, size: slice },
            { buffer: out.buffer, offset: 0, size: out.byteLength },
          ],
          uniforms: new Uint32Array([words, perGroup, 0, 0]),
          workgroups: [x, y],
        });
      }
    };
    const probe: ReadProbe = {
      gbPerSecond: total / (await kernelMs(device, run, reps)) / 1e6,
      layout: `workgroup ${layout.workgroupSize} x ${layout.workgroups}`,
      bytes: total,
      run,
      free: () => out.free(),
    };
    const [kept, dropped] = !best || probe.gbPerSecond > best.gbPerSecond ? [probe, best] : [best, probe];
    dropped?.free();
    best = kept;
  }
  const freeOut = best!.free;
  return {
    ...best!,
    free: () => {
      freeOut();
      src.free();
    },
  };
}

/** The probe's best read rate and layout (see {@link openReadProbe}), its buffers freed. */
export async function probeReadBandwidth(
  device: WebGpuDevice,
  bytes: number,
  reps: number,
): Promise<Pick<ReadProbe, 'gbPerSecond' | 'layout' | 'bytes'>> {
  const { gbPerSecond, layout, bytes: read, free } = await openReadProbe(device, bytes, reps);
  free();
  return { gbPerSecond, layout, bytes: read };
}

/** The median of `values` (sorted in place): for an even count, the mean of the middle two. */
export function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const half = values.length >> 1;
  return values.length % 2 ? values[half]! : (values[half - 1]! + values[half]!) / 2;
}

/** One timing, in ms, of the work that `run()` records on `device`. */
export type Timer = (device: WebGpuDevice, run: () => void) => Promise<number>;

/**
 * Wall clock from the submit of what `run()` records to the end of the work: the JavaScript that encodes it
 * is not counted.
 */
export const submitTime: Timer = async (device, run) => {
  run();
  const t0 = performance.now();
  await device.sync();
  return performance.now() - t0;
};

/** Wall clock of `run()` and the work it records, encoding included. */
export const wallTime: Timer = async (device, run) => {
  const t0 = performance.now();
  run();
  await device.sync();
  return performance.now() - t0;
};

/**
 * The GPU time of the work `run()` records: where the adapter has timestamp queries, the sum of the kernels'
 * own times (the device's profiler: see `gpu/profiler.ts`); else {@link submitTime}. Wall clock also counts
 * the submit, the wait for completion and the gaps between kernels: on a fast GPU those can outlast a small
 * kernel (a 2048 x 2048 GEMV reads its 8 MB in a few microseconds at H100 bandwidth), so kernel rates
 * compared with the probe are taken from timestamps where there are any. `ops.dispatch.overhead_us` reports
 * the cost per dispatch on its own.
 */
export const kernelTime: Timer = async (device, run) => {
  if (!device.caps.timestamps) return submitTime(device, run);
  device.startProfile();
  run();
  return (await device.stopProfile()).totalMs;
};

/** What {@link interleavedMs} measured. */
export interface Interleaved {
  /** The median time of each run, ms. */
  ms: number[];
  /** The median over the repetitions of run `a`'s time divided by run `b`'s in the same repetition. */
  ratio(a: number, b: number): number;
}

/**
 * Times `runs` in turn, `reps` times after a warm-up of each, the order reversed every repetition (A B, B A,
 * A B, ...) so that a machine whose speed drifts during the benchmark weighs on every run alike. Ratios are
 * taken within a repetition, then their median: on a shared machine two kernels timed side by side keep
 * their ratio when the machine's speed moves under both (measured on lavapipe, GEMM against the naive
 * kernel timed one after the other: 4.9x to 9.2x in three runs of the same code).
 */
export async function interleavedMs(
  device: WebGpuDevice,
  runs: readonly (() => void)[],
  reps: number,
  timer: Timer = kernelTime,
): Promise<Interleaved> {
  for (const run of runs) run();
  await device.sync();
  const times = runs.map((): number[] => []);
  for (let r = 0; r < reps; r++) {
    for (let j = 0; j < runs.length; j++) {
      const i = r % 2 === 0 ? j : runs.length - 1 - j;
      times[i]!.push(await timer(device, runs[i]!));
    }
  }
  return {
    ms: times.map((t) => median([...t])),
    ratio: (a, b) => median(times[a]!.map((t, r) => t / times[b]![r]!)),
  };
}

/** The median {@link kernelTime} of `run` in ms over `reps` repetitions after a warm-up. */
export async function kernelMs(device: WebGpuDevice, run: () => void, reps: number): Promise<number> {
  return (await interleavedMs(device, [run], reps)).ms[0]!;
}

/** How {@link kernelTime} times kernels on this device, for the benchmarks' notes. */
export function kernelTiming(device: WebGpuDevice): string {
  return device.caps.timestamps ? 'GPU timestamps' : 'wall clock';
}
