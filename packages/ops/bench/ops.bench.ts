/**
 * Benchmarks of the op set on the default WebGPU adapter:
 * 1. `ops.probe.read_gb_s`: the best plain read rate of a large buffer (the GEMV's ceiling);
 * 2. `ops.gemv.<N>x<K>.gb_s`: decode GEMVs (M = 1, bf16 weights) of the Llama 3.2 1B shapes, as GB/s of
 *    weights read and as a ratio to the probe;
 * 3. `ops.gemm.<M>x<N>x<K>.gflops`: prefill GEMMs (bf16 weights) against a naive one-output-per-invocation
 *    kernel measured in the same run; where the adapter multiplies f16 x in half precision (GPUs with
 *    `shader-f16`), `ops.gemm.<M>x<N>x<K>.f16.gflops` against the f32 figure;
 * 4. `ops.attention.<case>.gflops`: causal GQA attention of the Llama 3.2 1B shape (32 query heads, 8 kv
 *    heads, Dh 64) for a 512-token prefill and a decode step over 1024 cached positions, with the
 *    adapter's default kernel, against the other kernel where the adapter runs both;
 * 5. `ops.sample.vocab128256.ms`: one draw of `TokenSampler` with the default options (temperature 0.6,
 *    top-p 0.9) from logits over Llama 3's vocabulary, against `argmax` of the same logits (greedy's choice);
 * 6. `ops.dispatch.overhead_us`: the cost of one (empty) dispatch when many are batched in one submit.
 *
 * Kernel figures (1-4) are the median GPU time of several repetitions after a warm-up, from GPU timestamps
 * where the adapter has them, else wall clock from the submit to the end of the work (`kernelTime` in
 * `probe.ts`); the probe and the kernels it is compared with are timed the same way. The sampler (5) is
 * wall clock from the submit, the dispatch cost (6) wall clock with the encoding. Every ratio is of two
 * runs timed alternately, repetition by repetition (`interleavedMs`): the GEMVs with the probe, the GEMMs
 * with the naive kernel, and so on, so that a shared machine's drift does not fall on one side of it.
 * Run it alone with `pnpm bench --only ops [--quick]`.
 * @module
 */
import { type DType, fromArray, Rng, Tensor, tensor } from '@proj/core';
import type { BenchResult, BenchSuite } from '../../../bench/types.js';
import { createWebGpuDevice, type WebGpuDevice } from '../src/gpu/device.js';
import {
  type AttentionKernel,
  attentionKernel,
  gemmVariant,
  gemvMaxRows,
  gemvVariant,
  NAIVE_GEMM,
} from '../src/gpu/variants.js';
import { grid } from '../src/op.js';
import { attention } from '../src/ops/attention.js';
import { linearWith } from '../src/ops/linear.js';
import { packingOf, prepareLinearWeight } from '../src/ops/pack.js';
import { argmax } from '../src/ops/reduce.js';
import { TokenSampler } from '../src/ops/sample.js';
import { interleavedMs, kernelTiming, openReadProbe, type ReadProbe, submitTime, wallTime } from './probe.js';

const MiB = 1024 * 1024;

/** Llama 3.2 1B weight shapes `[N, K]`: q/o, k/v, gate/up, down projections and the tied lm_head. */
const GEMV_SHAPES: [number, number][] = [
  [2048, 2048],
  [512, 2048],
  [8192, 2048],
  [2048, 8192],
  [128256, 2048],
];

/** Prefill shapes `[M, N, K]`: 128 and 512 tokens through a square and an MLP-up projection. */
const GEMM_SHAPES: [number, number, number][] = [
  [128, 2048, 2048],
  [128, 8192, 2048],
  [512, 2048, 2048],
  [512, 8192, 2048],
];

/** One u32 word of random values per dtype: an f32, or two 16-bit values (bf16 truncated from f32). */
const FILL = {
  f32: 'bitcast<u32>(value(g))',
  bf16: '(bitcast<u32>(value(2u * g)) >> 16u) | (bitcast<u32>(value(2u * g + 1u)) & 0xffff0000u)',
  f16: 'pack2x16float(vec2(value(2u * g), value(2u * g + 1u)))',
};

/**
 * A tensor of pseudo-random values in [-1, 1) filled on the device (a 525 MB lm_head would take seconds to
 * make and upload from the host). Any values will do for timing; these avoid denormals and NaNs.
 */
function randomTensor(device: WebGpuDevice, shape: number[], dtype: DType): Tensor {
  const bytes = shape.reduce((n, d) => n * d, 1) * (dtype === 'f32' ? 4 : 2);
  const storage = device.alloc(bytes);
  const words = Math.ceil(bytes / 4);
  const chunk = Math.floor(device.caps.maxStorageBindingSize / 256) * 64; // words per binding
  for (let first = 0; first < words; first += chunk) {
    const count = Math.min(chunk, words - first);
    const [x, y] = grid(Math.ceil(count / 256), device.caps.maxWorkgroupsPerDimension);
    device.dispatch({
      op: 'bench-fill',
      key: `bench-fill:${dtype}`,
      wgsl: () => `
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
struct Params { count: u32, first: u32 }
@group(0) @binding(1) var<uniform> p: Params;
fn value(i: u32) -> f32 {
  var h = i * 2654435761u; h ^= h >> 15u; h *= 2246822519u; h ^= h >> 13u;
  return f32(h >> 8u) / 8388608.0 - 1.0;
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= p.count) { return; }
  let g = p.first + i;
  out[i] = ${FILL[dtype as 'f32' | 'bf16' | 'f16']};
}`,
      buffers: [{ buffer: storage.buffer, offset: first * 4, size: count * 4 }],
      uniforms: new Uint32Array([count, first, 0, 0]),
      workgroups: [x, y],
    });
  }
  return new Tensor(storage, shape, dtype);
}

async function gemvResults(device: WebGpuDevice, quick: boolean, probe: ReadProbe): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  // What `linear` runs for one row of x on this adapter.
  const caps = device.caps;
  const variant = gemvMaxRows(caps) >= 1 ? gemvVariant(caps) : gemmVariant(caps, 1);
  for (const [n, k] of GEMV_SHAPES) {
    if (quick && n > 8192) continue;
    const bytes = n * k * 2;
    // Several distinct weights per repetition, 64 MiB or more in all: as in a decode step, the weights
    // come from memory, not from a cache that one small matrix read twice would fit in.
    const copies = Math.min(32, Math.max(1, Math.ceil((64 * MiB) / bytes)));
    // Laid out as a model loads them (packed on software drivers: see gpu/packing.ts).
    const ws = Array.from({ length: copies }, () =>
      prepareLinearWeight(randomTensor(device, [n, k], 'bf16')),
    );
    const layout = packingOf(ws[0]!) ? 'packed' : 'row-major';
    const x = randomTensor(device, [1, k], 'f32');
    const run = () => {
      for (const w of ws) linearWith(x, w, {}).dispose();
    };
    const reps = quick ? 3 : 7;
    // The probe runs alongside, so the ratio compares reads made at the same moment (interleavedMs).
    const timed = await interleavedMs(device, [run, probe.run], reps);
    const ms = timed.ms[0]! / copies;
    const gbs = bytes / ms / 1e6;
    const probeGbs = probe.bytes / timed.ms[1]! / 1e6;
    // With timestamps, wall clock too: the difference is what each GEMV costs outside its kernel.
    const wallMs = device.caps.timestamps
      ? (await interleavedMs(device, [run], reps, submitTime)).ms[0]! / copies
      : ms;
    results.push({
      name: `ops.gemv.${n}x${k}.gb_s`,
      value: gbs,
      unit: 'GB/s',
      baseline: probeGbs,
      // GEMV GB/s over probe GB/s, repetition by repetition.
      ratio: ((bytes * copies) / probe.bytes) * timed.ratio(1, 0),
      info: `M = 1, bf16 W [${n}, ${k}] ${layout}, ${ms.toFixed(3)} ms by ${kernelTiming(device)} (${wallMs.toFixed(3)} ms by wall clock, ${copies} per submit); variant ${JSON.stringify(variant)}; baseline: the read probe, timed alternately with it`,
    });
    for (const t of [x, ...ws]) t.dispose();
  }
  return results;
}

async function gemmResults(device: WebGpuDevice, quick: boolean): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const [m, n, k] of GEMM_SHAPES) {
    const variant = gemmVariant(device.caps, m);
    if (quick && (m > 128 || n > 2048)) continue;
    const w = randomTensor(device, [n, k], 'bf16'); // row-major, for the naive kernel
    const prepared = prepareLinearWeight(randomTensor(device, [n, k], 'bf16')); // the same values
    const layout = packingOf(prepared) ? 'packed' : 'row-major';
    const x = randomTensor(device, [m, k], 'f32');
    const reps = quick ? 3 : 5;
    const flops = 2 * m * n * k;
    // Where the adapter multiplies f16 x in half precision (GemmVariant.f16): that too, against f32 x.
    const half = gemmVariant(device.caps, m, true, 'f16');
    const x16 = half.f16 ? randomTensor(device, [m, k], 'f16') : undefined;
    const timed = await interleavedMs(
      device,
      [
        () => linearWith(x, prepared, {}).dispose(),
        () => linearWith(x, w, { gemm: NAIVE_GEMM }).dispose(),
        ...(x16 ? [() => linearWith(x16, prepared, {}).dispose()] : []),
      ],
      reps,
    );
    const [ms, naiveMs] = timed.ms as [number, number];
    const gflops = flops / ms / 1e6;
    results.push({
      name: `ops.gemm.${m}x${n}x${k}.gflops`,
      value: gflops,
      unit: 'GFLOPS',
      baseline: flops / naiveMs / 1e6,
      ratio: timed.ratio(1, 0),
      info: `x [${m}, ${k}] f32 @ bf16 W [${n}, ${k}]^T ${layout}, ${ms.toFixed(1)} ms; variant ${JSON.stringify(variant)}; baseline: one output per invocation, timed alternately with it`,
    });
    if (x16) {
      const halfMs = timed.ms[2]!;
      results.push({
        name: `ops.gemm.${m}x${n}x${k}.f16.gflops`,
        value: flops / halfMs / 1e6,
        unit: 'GFLOPS',
        baseline: gflops,
        ratio: timed.ratio(0, 2),
        info: `x [${m}, ${k}] f16 @ bf16 W [${n}, ${k}]^T, ${halfMs.toFixed(1)} ms; variant ${JSON.stringify(half)}; baseline: the f32 x above`,
      });
      x16.dispose();
    }
    w.dispose();
    prepared.dispose();
    x.dispose();
  }
  return results;
}

/** Attention cases `[name, query rows, keys]` of the 1B shape: a 512-token prefill, a late decode step. */
const ATTENTION_CASES: [string, number, number][] = [
  ['prefill512', 512, 512],
  ['decode1024', 1, 1024],
];

async function attentionResults(device: WebGpuDevice, quick: boolean): Promise<BenchResult[]> {
  const [heads, kvHeads, headDim] = [32, 8, 64];
  const chosen = attentionKernel(device.caps, headDim);
  const other: AttentionKernel | undefined = chosen === 'lanes' ? 'blocks' : undefined;
  const results: BenchResult[] = [];
  for (const [name, seq, keys] of ATTENTION_CASES) {
    if (quick && seq > 128) continue;
    const q = randomTensor(device, [seq, heads, headDim], 'f32');
    const k = randomTensor(device, [keys, kvHeads, headDim], 'f32');
    const v = randomTensor(device, [keys, kvHeads, headDim], 'f32');
    // Causal: query row i sees keys 0..offset + i; two multiply-adds per (visible key, head, dim).
    const offset = keys - seq;
    const visible = seq * offset + (seq * (seq + 1)) / 2;
    const flops = 4 * visible * heads * headDim;
    // Decode steps are short: 16 per repetition, as the layers of a decode step come in one submit.
    const ops = seq === 1 ? 16 : 1;
    const run = (kernel: AttentionKernel) => () => {
      for (let i = 0; i < ops; i++) attention(q, k, v, { offset, kernel }).dispose();
    };
    const timed = await interleavedMs(device, [run(chosen), ...(other ? [run(other)] : [])], quick ? 2 : 3);
    const ms = timed.ms[0]! / ops;
    const baselineMs = other && timed.ms[1]! / ops;
    const gflops = flops / ms / 1e6;
    results.push({
      name: `ops.attention.${name}.gflops`,
      value: gflops,
      unit: 'GFLOPS',
      ...(baselineMs && { baseline: flops / baselineMs / 1e6, ratio: timed.ratio(1, 0) }),
      info: `q [${seq}, ${heads}, ${headDim}] over ${keys} keys of ${kvHeads} kv heads, causal: ${ms.toFixed(2)} ms with the '${chosen}' kernel${baselineMs ? `; baseline: '${other}', ${baselineMs.toFixed(2)} ms` : ''}`,
    });
    for (const t of [q, k, v]) t.dispose();
  }
  return results;
}

/**
 * A draw on the device against `argmax`: what sampling adds to a decode step. The logits are normal with a
 * standard deviation of 3 plus a few dominant ones, the rough shape of a trained model's.
 */
async function samplerResult(device: WebGpuDevice, quick: boolean): Promise<BenchResult> {
  const vocab = 128256;
  const rng = new Rng(1);
  const values = Float32Array.from({ length: vocab }, () => 3 * rng.normal());
  for (let i = 0; i < 20; i++) values[(i * 7919) % vocab] = 15 - 0.3 * i;
  const logits = tensor(values, [1, vocab], { device });
  const ids = fromArray(new Int32Array(1), [1], { dtype: 'i32', device });
  const sampler = new TokenSampler(device, vocab);
  const draws = 16;
  const repeat = (run: () => void) => () => {
    for (let i = 0; i < draws; i++) run();
  };
  // Wall clock of 16 per submit: a draw is 10 small dispatches, and timestamps would time each in a pass of
  // its own, which costs a GPU about 10 us apiece.
  const timed = await interleavedMs(
    device,
    [repeat(() => sampler.sample(logits, ids)), repeat(() => argmax(logits, { into: ids }))],
    quick ? 3 : 7,
    submitTime,
  );
  for (const t of [sampler, logits, ids]) t.dispose();
  return {
    name: `ops.sample.vocab${vocab}.ms`,
    value: timed.ms[0]! / draws,
    unit: 'ms',
    baseline: timed.ms[1]! / draws,
    ratio: timed.ratio(0, 1),
    info: 'one draw with the default options (temperature 0.6, top-p 0.9), wall clock of 16 per submit; baseline: argmax of the same logits, timed alternately with it',
  };
}

async function dispatchOverhead(device: WebGpuDevice, quick: boolean): Promise<BenchResult> {
  const count = quick ? 500 : 2000;
  const out = device.alloc(256);
  const empty = () =>
    device.dispatch({
      op: 'bench-empty',
      key: 'bench-empty',
      wgsl: () => `@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1) fn main() { out[0] = 0u; }`,
      buffers: [{ buffer: out.buffer, offset: 0, size: 256 }],
      workgroups: [1],
    });
  // The cost of N dispatches minus the cost of one: the per-dispatch part, without the submit and wait.
  const timed = await interleavedMs(
    device,
    [() => Array.from({ length: count }, empty), empty],
    quick ? 3 : 7,
    wallTime,
  );
  const [many, one] = timed.ms as [number, number];
  out.free();
  const us = ((many - one) / (count - 1)) * 1000;
  return {
    name: 'ops.dispatch.overhead_us',
    value: us,
    unit: 'us',
    info: `${count} empty dispatches per submit (${many.toFixed(1)} ms) against one (${one.toFixed(2)} ms)`,
  };
}

/** The ops benchmark suite (see the module comment); prints nothing to stdout. */
export const suite: BenchSuite = async ({ quick }) => {
  const device = await createWebGpuDevice();
  try {
    const probe = await openReadProbe(device, (quick ? 64 : 256) * MiB, quick ? 3 : 7);
    const results: BenchResult[] = [
      {
        name: 'ops.probe.read_gb_s',
        value: probe.gbPerSecond,
        unit: 'GB/s',
        info: `best of the probe layouts (${probe.layout}) reading ${probe.bytes / MiB} MiB, timed by ${kernelTiming(device)} (as every kernel figure here); ${device.description}`,
      },
    ];
    results.push(...(await gemvResults(device, quick, probe)));
    probe.free();
    results.push(...(await gemmResults(device, quick)));
    results.push(...(await attentionResults(device, quick)));
    results.push(await samplerResult(device, quick));
    results.push(await dispatchOverhead(device, quick));
    return results;
  } finally {
    device.destroy();
  }
};
