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

/** Result of {@link probeReadBandwidth}. */
export interface ProbeResult {
  /** Best read rate, GB/s (10^9 bytes per second). */
  gbPerSecond: number;
  /** The layout that gave it, for the benchmark's notes. */
  layout: string;
  /** Bytes read per repetition. */
  bytes: number;
}

/**
 * Reads a `bytes`-sized buffer (bound in ranges of at most `maxStorageBindingSize`) `reps` times per layout
 * after a warm-up, and returns the best layout's median rate.
 */
export async function probeReadBandwidth(
  device: WebGpuDevice,
  bytes: number,
  reps: number,
): Promise<ProbeResult> {
  const slice = Math.min(bytes, Math.floor(device.caps.maxStorageBindingSize / 256) * 256);
  const slices = Math.ceil(bytes / slice);
  const total = slice * slices;
  const src = device.alloc(total);
  // Uninitialised buffers read as zeros in WebGPU; the values do not matter to a read rate.
  let best: ProbeResult | undefined;
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
    const ms = await kernelMs(device, run, reps);
    const gbPerSecond = total / ms / 1e6;
    if (!best || gbPerSecond > best.gbPerSecond) {
      best = {
        gbPerSecond,
        layout: `workgroup ${layout.workgroupSize} x ${layout.workgroups}`,
        bytes: total,
      };
    }
    out.free();
  }
  src.free();
  return best!;
}

/** The median of `values` (sorted in place). */
export const median = (values: number[]): number =>
  values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/**
 * The median GPU time in ms of the work `run()` records, over `reps` repetitions after a warm-up. Where the
 * adapter has timestamp queries it is the sum of the kernels' own times (the device's profiler: see
 * `gpu/profiler.ts`); else it is wall clock from the submit to the end of the work ({@link medianMs} with
 * `gpuOnly`). Wall clock also counts the submit, the wait for completion and the gaps between kernels: on a
 * fast GPU those can outlast a small kernel (a 2048 x 2048 GEMV reads its 8 MB in a few microseconds at
 * H100 bandwidth), so kernel rates compared with the probe are taken from timestamps where there are any.
 * `ops.dispatch.overhead_us` reports the cost per dispatch on its own.
 */
export async function kernelMs(device: WebGpuDevice, run: () => void, reps: number): Promise<number> {
  if (!device.caps.timestamps) return medianMs(device, run, reps, { gpuOnly: true });
  run();
  await device.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    device.startProfile();
    run();
    times.push((await device.stopProfile()).totalMs);
  }
  return median(times);
}

/** How {@link kernelMs} times kernels on this device, for the benchmarks' notes. */
export function kernelTiming(device: WebGpuDevice): string {
  return device.caps.timestamps ? 'GPU timestamps' : 'wall clock';
}

/**
 * Median wall time in ms of `run()` followed by `device.sync()`, after one warm-up run. With `gpuOnly`, the
 * clock starts once `run()` has recorded its work: it times the submit and the work itself, not the
 * JavaScript that encodes it (what the kernel benchmarks want; `ops.dispatch.overhead_us` and the model's
 * decode figures include the encoding).
 */
export async function medianMs(
  device: WebGpuDevice,
  run: () => void,
  reps: number,
  { gpuOnly = false } = {},
): Promise<number> {
  run();
  await device.sync();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    let t0 = performance.now();
    run();
    if (gpuOnly) t0 = performance.now();
    await device.sync();
    times.push(performance.now() - t0);
  }
  return median(times);
}
