/**
 * End-to-end benchmark of the model: load time and peak host memory, prefill and decode speed, dispatches
 * and submits per decoded token, bytes read per token and decode as a fraction of the memory roofline
 * (the bandwidth probe of the same adapter, measured in the same run). Runs the tiny fixtures on both
 * devices and, unless `quick`, a Llama-3.2-1B-shaped checkpoint with random weights.
 * @module
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpu, type Device, empty, Rng, type Tensor } from '@proj/core';
import {
  generate,
  LLAMA32_1B,
  type Llama,
  type LoadTime,
  loadLlama,
  Sampler,
  type SamplingOptions,
} from '@proj/llama3';
import { argmax, createWebGpuDevice, type WebGpuDevice, writable, writeRows } from '@proj/ops';
import type { BenchResult, BenchSuite } from '../../../bench/types.js';
import { median, probeReadBandwidth } from '../../ops/bench/probe.js';
import { syntheticCheckpoint } from './synthetic-checkpoint.js';

const log = (line: string) => process.stderr.write(`  llama3: ${line}\n`);
const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/', import.meta.url));

/** The prompt of the decode figures. */
const PROMPT = [1, 2, 3, 4, 5, 6, 7, 8];

/**
 * Greedy generation of `maxNewTokens` after {@link PROMPT}: tokens per second between the first token
 * (which includes the prompt's forward) and the last, and how many tokens came.
 */
async function decode(
  model: Llama,
  maxNewTokens: number,
  sampling: SamplingOptions = { temperature: 0 },
): Promise<{ tokS: number; tokens: number }> {
  const times: number[] = [];
  for await (const _ of generate(model, PROMPT, { ...sampling, maxNewTokens, stopIds: [] })) {
    times.push(performance.now());
  }
  return { tokS: ((times.length - 1) / (times.at(-1)! - times[0]!)) * 1000, tokens: times.length };
}

/** Bytes one decode step reads: every weight matrix once, the norms, one embedding row, the cache so far. */
function bytesPerToken(model: Llama, position: number): number {
  const w = model.weights;
  let bytes = w.norm.storage.byteLength + w.output.storage.byteLength;
  bytes += w.embedding.storage.byteLength / model.config.vocabSize; // one row
  for (const layer of w.layers) for (const t of Object.values(layer)) bytes += t.storage.byteLength;
  const { layers, kvHeads, headDim } = model.config;
  bytes += 2 * layers * position * kvHeads * headDim * 4; // K and V (f32) of every earlier position
  return bytes;
}

async function timeFileRead(path: string): Promise<number> {
  const file = await open(path, 'r');
  const buffer = new Uint8Array(64 << 20);
  const t0 = performance.now();
  try {
    while ((await file.read(buffer, 0, buffer.length)).bytesRead > 0) {}
  } finally {
    await file.close();
  }
  return performance.now() - t0;
}

/**
 * Drops `path` from the operating system's page cache, so that the next read comes from the disk: GNU
 * `dd` with `iflag=nocache count=0` asks the kernel to discard the file's cached pages (no privileges
 * needed). False where that is not available (not Linux, no GNU dd).
 */
function dropFromPageCache(path: string): boolean {
  if (process.platform !== 'linux') return false;
  return spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' }).status === 0;
}

/**
 * `load.<key>.cold_ms`: a load with the checkpoint first dropped from the page cache (as after a reboot),
 * against reading the dropped file: the time it takes to read the file from the disk itself. `load.<key>.ms`
 * compares a load with a warm page cache against a warm read, which is stricter.
 */
async function coldLoad(c: ModelCase, key: string): Promise<BenchResult[]> {
  const file = join(c.dir, 'model.safetensors');
  if (!existsSync(file) || !dropFromPageCache(file)) {
    log(`${key}: cannot drop the checkpoint from the page cache here, so no cold-load figure`);
    return [];
  }
  const readMs = await timeFileRead(file);
  dropFromPageCache(file);
  // New device buffers, as in a first load: pooled ones from the first load would skip the cost of new memory.
  if (c.device.kind !== 'cpu') (c.device as WebGpuDevice).trim();
  const t0 = performance.now();
  const model = await loadLlama(c.dir, { device: c.device, onWarning: () => {} });
  if (c.device.kind !== 'cpu') await (c.device as WebGpuDevice).sync();
  const ms = performance.now() - t0;
  model.dispose();
  return [
    {
      name: `load.${key}.cold_ms`,
      value: ms,
      unit: 'ms',
      baseline: readMs,
      ratio: ms / readMs,
      info: 'the checkpoint dropped from the page cache first; baseline: reading the dropped file from disk',
    },
  ];
}

/**
 * The loader's floor set by the device's memory: writing `sizes` bytes into new device buffers through the
 * same staging path as the loader, in the loader's chunks, with no file and no packing. On a software
 * adapter device memory is new host memory that the driver faults in page by page on first write.
 */
async function timeFreshDeviceFill(device: WebGpuDevice, sizes: number[]): Promise<number> {
  const chunk = new Uint8Array(16 << 20).fill(1);
  const filled: Tensor[] = [];
  const t0 = performance.now();
  try {
    for (const size of sizes) {
      const t = empty([size / 4], 'f32', device);
      filled.push(t);
      for (let at = 0; at < size; at += chunk.byteLength) {
        await writable(device);
        writeRows(t, at / 4, chunk.subarray(0, Math.min(chunk.byteLength, size - at)));
      }
    }
    await device.sync();
    return performance.now() - t0;
  } finally {
    for (const t of filled) t.dispose();
    device.trim(); // so that later allocations are new memory again
  }
}

interface ModelCase {
  name: string;
  dir: string;
  device: Device;
  prefill: number[];
  decodeTokens: number;
}

async function benchModel(c: ModelCase): Promise<BenchResult[]> {
  const key = `${c.name}.${c.device.kind}`;
  const out: BenchResult[] = [];
  // The largest rise of the resident size during the load, from the lowest point before it: memory that
  // earlier work frees meanwhile (a destroyed device's buffers, collected garbage) must not hide growth.
  let lowest = process.memoryUsage().rss;
  let growth = 0;
  const liveBefore = c.device.kind === 'webgpu' ? (c.device as WebGpuDevice).memory.liveBytes : 0;
  const sampler = setInterval(() => {
    const rss = process.memoryUsage().rss;
    lowest = Math.min(lowest, rss);
    growth = Math.max(growth, rss - lowest);
  }, 20);
  let time: LoadTime | undefined;
  const t0 = performance.now();
  const model = await loadLlama(c.dir, {
    device: c.device,
    onWarning: () => {},
    onProgress: (p) => (time = p.time),
  });
  if (c.device.kind !== 'cpu') await (c.device as WebGpuDevice).sync();
  const loadMs = performance.now() - t0;
  clearInterval(sampler);
  const w = model.weights;
  const weightBytes = [w.embedding, w.norm, ...w.layers.flatMap((l) => Object.values(l) as Tensor[])]
    .concat(w.output === w.embedding ? [] : [w.output])
    .map((t) => Math.ceil(t.storage.byteLength / 4) * 4);
  const weightsFile = join(c.dir, 'model.safetensors');
  const readMs = existsSync(weightsFile) ? await timeFileRead(weightsFile) : Number.NaN;
  out.push({
    name: `load.${key}.ms`,
    value: loadMs,
    unit: 'ms',
    baseline: readMs,
    ratio: loadMs / readMs,
    info: 'baseline: reading the file from disk (page cache warm)',
  });
  // Where the load's time went (see LoadProgress.time): the file, the device, or the host copies.
  if (time) {
    const parts = { read_wait_ms: time.readWaitMs, device_wait_ms: time.deviceWaitMs, fill_ms: time.fillMs };
    for (const [part, ms] of Object.entries(parts))
      out.push({ name: `load.${key}.${part}`, value: ms, unit: 'ms' });
  }

  // A software adapter's device memory is host memory: its buffers grow the RSS too, and are not what the
  // loader holds on the host.
  const gpu = c.device.kind === 'webgpu' ? (c.device as WebGpuDevice) : undefined;
  const deviceBytes = gpu?.caps.software ? gpu.memory.liveBytes - liveBefore : 0;
  out.push({
    name: `load.${key}.peak_host_mb`,
    value: (growth - deviceBytes) / 2 ** 20,
    unit: 'MiB',
    info: gpu?.caps.software
      ? 'RSS growth during load, less the device memory it allocated (host memory on a software adapter)'
      : 'RSS growth during load',
  });
  try {
    for (const n of c.prefill) {
      const ids = Array.from({ length: n }, (_, i) => 1 + ((i * 7919) % 1000));
      const prefillMs = async () => {
        const cache = model.createCache(n);
        const start = performance.now();
        const logits = model.forward(ids, cache);
        await logits.toArray();
        const ms = performance.now() - start;
        logits.dispose();
        cache.dispose();
        return ms;
      };
      // The first prompt of a length also compiles kernels and may take buffers from new memory (slow on a
      // virtual machine); the second shows the steady rate.
      const runs = [
        ['tok_s', 'the first prompt of this length: kernels compiled, buffers possibly new'],
        ['warm_tok_s', 'the same prompt again: kernels compiled, buffers from the pool'],
      ];
      for (const [figure, info] of runs) {
        const ms = await prefillMs();
        out.push({ name: `prefill.${key}.p${n}.${figure}`, value: (n / ms) * 1000, unit: 'tok/s', info });
      }
    }
    // Counted over the whole generation, the prompt's forward included (the same ops as a step): greedy
    // decoding records each step before the previous id is read, so a window between two tokens would not
    // line up with whole steps.
    const stats = { ...(gpu?.stats ?? { dispatches: 0, submits: 0 }) };
    const { tokS, tokens } = await decode(model, c.decodeTokens);
    const steps = tokens - 1;
    out.push({
      name: `decode.${key}.tok_s`,
      value: tokS,
      unit: 'tok/s',
      info: `${steps} tokens after an 8-token prompt, greedy${gpu?.hostPriorityLowered ? '; the host thread at the lowest priority' : ''}`,
    });
    const bytes = bytesPerToken(model, PROMPT.length + steps / 2);
    out.push({ name: `decode.${key}.bytes_per_token`, value: bytes, unit: 'B' });
    if (gpu) {
      out.push({
        name: `decode.${key}.dispatches_per_token`,
        value: (gpu.stats.dispatches - stats.dispatches) / tokens,
        unit: 'count',
      });
      out.push({
        name: `decode.${key}.submits_per_token`,
        value: (gpu.stats.submits - stats.submits) / tokens,
        unit: 'count',
      });
    }
    // Sampling with the default options (temperature 0.6, top-p 0.9) draws on the device and replays its
    // steps as greedy decoding does: the ratio says what the draw costs.
    const sampled = await decode(model, c.decodeTokens, {});
    out.push({
      name: `decode.${key}.sampled_tok_s`,
      value: sampled.tokS,
      unit: 'tok/s',
      baseline: tokS,
      ratio: sampled.tokS / tokS,
      info: `${sampled.tokens - 1} tokens drawn with the default options (temperature 0.6, top-p 0.9); baseline: greedy`,
    });
    if (gpu) out.push(...(await recordTime(gpu, model, key)));
    if (gpu?.caps.timestamps) out.push(...(await kernelTimes(gpu, model, PROMPT, key)));
  } finally {
    model.dispose();
  }
  out.push(...(await coldLoad(c, key)));
  if (gpu) {
    // After the model is freed, so the fill gets memory the load already used: on a VM whose memory has
    // not been touched since boot, first use costs several times more (measured here: 6.4 s for 2.2 GB
    // next to a loaded model, 1.8 s after freeing it), and the floor should not flatter the load.
    gpu.trim();
    const fillMs = await timeFreshDeviceFill(gpu, weightBytes);
    out.push({
      name: `load.${key}.device_fill_ms`,
      value: fillMs,
      unit: 'ms',
      info: 'writing as many bytes into new device buffers the way the loader does, with no file and no packing: the floor fresh device memory sets for load.ms',
    });
  }
  return out;
}

/**
 * The sampler on Llama 3's vocabulary with its default options (temperature 0.6, top-p 0.9), against
 * sorting all the probabilities once, which the plain definition of top-p needs. The logits are normal
 * with a standard deviation of 3 plus a few dominant ones, the rough shape of a trained model's.
 */
function benchSampler(): BenchResult[] {
  const rng = new Rng(1);
  const vocab = LLAMA32_1B.vocabSize;
  const logits = Float32Array.from({ length: vocab }, () => 3 * rng.normal());
  for (let i = 0; i < 20; i++) logits[(i * 7919) % vocab] = 15 - 0.3 * i;
  const medianMs = (run: () => void) =>
    median(
      Array.from({ length: 21 }, () => {
        const t0 = performance.now();
        run();
        return performance.now() - t0;
      }),
    );
  const sampler = new Sampler();
  const ours = medianMs(() => sampler.sample(logits));
  const probs = Float64Array.from(logits, (x) => Math.exp((x - 15) / 0.6));
  const sortAll = medianMs(() => Float64Array.from(probs).sort());
  return [
    {
      name: `sampler.vocab${vocab}.ms`,
      value: ours,
      unit: 'ms',
      baseline: sortAll,
      ratio: sortAll / ours,
      info: 'one draw with the default options; baseline: sorting every probability once',
    },
  ];
}

/**
 * `decode.<key>.record_ms`: the host's time to record one decode step (its forward pass and argmax,
 * encoded, not waited for), with the device idle meanwhile. Greedy decoding records step t + 1 while the
 * device runs step t, so no step can take less than this: on a fast GPU it can be what limits decode.
 */
async function recordTime(gpu: WebGpuDevice, model: Llama, key: string): Promise<BenchResult[]> {
  const steps = 16;
  const cache = model.createCache(steps + 1);
  const first = model.forward([1], cache);
  let best = argmax(first) as Tensor<readonly [number], 'i32'>;
  first.dispose();
  const times: number[] = [];
  const dispatches = gpu.stats.dispatches;
  for (let i = 0; i < steps; i++) {
    await gpu.sync();
    const t0 = performance.now();
    const logits = model.forward(best, cache);
    const next = argmax(logits) as Tensor<readonly [number], 'i32'>;
    times.push(performance.now() - t0);
    logits.dispose();
    best.dispose();
    best = next;
  }
  const perStep = (gpu.stats.dispatches - dispatches) / steps;
  await gpu.sync();
  best.dispose();
  cache.dispose();
  const ms = median(times);
  return [
    {
      name: `decode.${key}.record_ms`,
      value: ms,
      unit: 'ms',
      info: `JavaScript and WebGPU calls to record one step of ${perStep} dispatches (median of ${steps}): ${((1000 * ms) / perStep).toFixed(1)} us per dispatch`,
    },
    await replayTime(gpu, model, key, steps),
  ];
}

/** `decode.<key>.replay_ms`: the host's time to record a greedy step by replaying it (`Llama.greedyStep`). */
async function replayTime(gpu: WebGpuDevice, model: Llama, key: string, steps: number): Promise<BenchResult> {
  const cache = model.createCache(steps + 4);
  const first = model.forward([1], cache);
  const token = argmax(first) as Tensor<readonly [1], 'i32'>;
  first.dispose();
  model.greedyStep(token, cache); // captured
  model.greedyStep(token, cache); // checked: replayed from here on
  const times: number[] = [];
  for (let i = 0; i < steps; i++) {
    await gpu.sync();
    const t0 = performance.now();
    model.greedyStep(token, cache);
    times.push(performance.now() - t0);
  }
  await gpu.sync();
  token.dispose();
  cache.dispose();
  return {
    name: `decode.${key}.replay_ms`,
    value: median(times),
    unit: 'ms',
    info: `the same step replayed (median of ${steps}): what greedy generation records per token`,
  };
}

/**
 * Where a decode step's GPU time goes: a short greedy generation under the profiler (`startProfile`), as
 * GPU milliseconds per token for each op and in all, and that total as a fraction of the step's wall time
 * (the rest is per-dispatch cost and idle time between kernels). Counted like the dispatches: over the
 * whole generation, the prompt's forward included.
 */
async function kernelTimes(gpu: WebGpuDevice, model: Llama, prompt: number[], key: string) {
  const tokens = 8;
  gpu.startProfile();
  const t0 = performance.now();
  for await (const _ of generate(model, prompt, { temperature: 0, maxNewTokens: tokens, stopIds: [] })) {
  }
  const wallMs = (performance.now() - t0) / tokens;
  const profile = await gpu.stopProfile();
  const out: BenchResult[] = profile.kernels.map((k) => ({
    name: `decode.${key}.kernel_ms.${k.op}`,
    value: k.ms / tokens,
    unit: 'ms',
    info: `GPU time per token in ${k.calls / tokens} dispatches of ${k.op}`,
  }));
  out.push({
    name: `decode.${key}.kernel_ms`,
    value: profile.totalMs / tokens,
    unit: 'ms',
    info: 'GPU time per token in all kernels (timestamp queries)',
  });
  out.push({
    name: `decode.${key}.kernel_fraction`,
    value: profile.totalMs / tokens / wallMs,
    unit: 'fraction',
    info: `kernel time over the step's wall time (${wallMs.toFixed(2)} ms with one pass per dispatch while profiling)`,
  });
  return out;
}

/** The suite `pnpm bench` runs. */
export const suite: BenchSuite = async ({ quick }) => {
  const results: BenchResult[] = [];
  let gpu: WebGpuDevice | undefined;
  try {
    // As the generation CLIs do: on a software adapter the thread that records and waits yields to the
    // driver's threads (see WebGpuDeviceOptions.lowerHostPriority).
    gpu = await createWebGpuDevice({ lowerHostPriority: true });
  } catch (error) {
    log(`no WebGPU adapter (${(error as Error).message.split('.')[0]}): CPU only`);
  }
  try {
    results.push(...benchSampler());
    // The read probe, before and after the models: the faster of the two is the roofline. A shared machine's
    // bandwidth drifts, and a probe that happens to run slow would flatter the decode.
    const probe = async () =>
      gpu ? (await probeReadBandwidth(gpu, quick ? 64 << 20 : 512 << 20, quick ? 3 : 5)).gbPerSecond : 0;
    const probes = [await probe()];
    const tiny = join(FIXTURES, 'tiny-llama3-gqa');
    if (existsSync(tiny)) {
      const perDevice: Record<string, number> = {};
      for (const device of [gpu, cpu]) {
        if (!device) continue;
        log(`tiny-llama3-gqa on ${device.kind}`);
        const r = await benchModel({
          name: 'tiny-llama3-gqa',
          dir: tiny,
          device,
          prefill: [11],
          decodeTokens: quick ? 16 : 64,
        });
        perDevice[device.kind] = r.find(
          (x) => x.name.startsWith('decode.') && x.name.endsWith('.tok_s'),
        )!.value;
        results.push(...r);
      }
      if (perDevice.webgpu && perDevice.cpu) {
        results.push({
          name: 'decode.tiny-llama3-gqa.gpu_over_cpu',
          value: perDevice.webgpu / perDevice.cpu,
          unit: 'ratio',
          baseline: perDevice.cpu,
          ratio: perDevice.webgpu / perDevice.cpu,
        });
      }
    } else {
      log(`fixtures not found at ${tiny}: skipping the tiny models`);
    }
    if (!quick && gpu) {
      const dir = await syntheticCheckpoint('llama32-1b-shape', { ...LLAMA32_1B }, log);
      log('llama32-1b-shape on webgpu');
      results.push(
        ...(await benchModel({
          name: 'llama32-1b-shape',
          dir,
          device: gpu,
          prefill: [128, 512],
          decodeTokens: 128,
        })),
      );
      if (!gpu.caps.software) results.push(...(await decodeUnchecked(dir)));
    }
    if (gpu) {
      probes.push(await probe());
      const best = Math.max(...probes);
      results.push({
        name: 'llama3.probe.read_gb_s',
        value: best,
        unit: 'GB/s',
        info: `the faster of two probes, before and after the models: ${probes.map((p) => p.toFixed(2)).join(' and ')} GB/s`,
      });
      results.push(...rooflines(results, best));
    }
  } finally {
    gpu?.destroy();
  }
  return results;
};

/**
 * `decode.llama32-1b-shape-unchecked.webgpu.*`: the same greedy decode on a device made with
 * `robustness: false` (kernels compiled without bounds clamping; Dawn only). GPUs only: a second copy of
 * the model takes a while to load on a software adapter, which also spends its time elsewhere.
 */
async function decodeUnchecked(dir: string): Promise<BenchResult[]> {
  const device = await createWebGpuDevice({ robustness: false });
  try {
    const model = await loadLlama(dir, { device, onWarning: () => {} });
    await decode(model, 16); // kernels compiled
    const { tokS } = await decode(model, 128);
    const key = 'llama32-1b-shape-unchecked.webgpu';
    const info = '127 tokens after an 8-token prompt, greedy, on a device with robustness: false';
    const bytes = bytesPerToken(model, PROMPT.length + 64);
    model.dispose();
    return [
      { name: `decode.${key}.tok_s`, value: tokS, unit: 'tok/s', info },
      { name: `decode.${key}.bytes_per_token`, value: bytes, unit: 'B' },
    ];
  } finally {
    device.destroy();
  }
}

/** `decode.<model>.webgpu.roofline_fraction` for each model decoded on WebGPU: bytes * tok/s over the probe. */
function rooflines(results: BenchResult[], probeGbS: number): BenchResult[] {
  const value = (name: string) => results.find((r) => r.name === name)?.value;
  const out: BenchResult[] = [];
  for (const r of results) {
    const key = /^decode\.(.+\.webgpu)\.tok_s$/.exec(r.name)?.[1];
    const bytes = key && value(`decode.${key}.bytes_per_token`);
    if (!key || !bytes) continue;
    const achieved = (bytes * r.value) / 1e9;
    out.push({
      name: `decode.${key}.roofline_fraction`,
      value: achieved / probeGbS,
      unit: 'fraction',
      baseline: probeGbS,
      ratio: achieved / probeGbS,
      info: `achieved ${achieved.toFixed(2)} GB/s vs probe ${probeGbS.toFixed(2)} GB/s`,
    });
  }
  return out;
}
