import { randn, scope, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AttentionOptions, attention } from '../ops/attention.js';
import { add } from '../ops/binary.js';
import { KvCache } from '../ops/kv-cache.js';
import { narrow } from '../ops/layout.js';
import { linearAccumulate } from '../ops/linear.js';
import { ropeTables } from '../ops/rope.js';
import { ropeQkv } from '../ops/rope-qkv.js';
import { testDevice } from '../testing.js';
import type { WebGpuDevice } from './device.js';
import type { GpuGraph } from './graph.js';

const [heads, kvHeads, headDim] = [4, 2, 32];
const width = (heads + 2 * kvHeads) * headDim;

/**
 * A decode step of attention that leaves its result on the device: `out += attention(rope(q), cache) W^T`
 * for the same projected `qkv` at each new position (rotated differently at each), so `out` after n steps
 * depends on every step's positions, cache rows and chunking.
 */
function decoder(gpu: WebGpuDevice, maxSeq: number, options: Partial<AttentionOptions>) {
  const cache = new KvCache(gpu, { maxSeq, kvHeads, headDim });
  const tables = ropeTables(
    Float32Array.from({ length: headDim / 2 }, (_, i) => 0.5 ** i),
    maxSeq,
    gpu,
  );
  const qkv = randn([1, width], { seed: 1, device: gpu });
  const w = randn([heads * headDim, heads * headDim], { seed: 2, device: gpu, std: 0.1 });
  const out = tensor(new Float32Array(heads * headDim), [1, heads * headDim], { device: gpu });
  const step = () =>
    scope(() => {
      const q = ropeQkv(qkv, tables, cache, { heads }); // [1, Hq, Dh]; k and v appended at cache.length
      const a = attention(q, cache.k, cache.v, {
        offset: cache.length - 1,
        length: cache.length,
        ...options,
      });
      linearAccumulate(out, a.reshape([1, heads * headDim]), w);
    });
  const dispose = () => {
    for (const t of [cache, tables.cos, tables.sin, qkv, w, out]) t.dispose();
  };
  return { cache, out, step, dispose };
}

/** Runs `steps` decode steps the way a model does: captured, checked, then replayed, captured again where refused. */
async function replayAgainstRecorded(gpu: WebGpuDevice, steps: number, options: Partial<AttentionOptions>) {
  const replayed = decoder(gpu, steps + 3, options);
  const recorded = decoder(gpu, steps + 3, options);
  let graph: GpuGraph | undefined;
  let at = 0;
  let checked = false;
  const counts = { captures: 0, replays: 0 };
  for (let i = 0; i < steps; i++) {
    const position = replayed.cache.length;
    if (graph && checked && graph.replay(position - at)) {
      replayed.cache.reserve(1); // what the replayed ropeQkv would have done
      counts.replays++;
    } else if (graph && !checked && position === at + 1) {
      checked = graph.check(replayed.step, 1);
    } else {
      graph?.dispose();
      graph = gpu.capture(replayed.step);
      [at, checked] = [position, false];
      counts.captures++;
    }
    recorded.step(); // allocates from the pool between the replays: it must not get the graph's buffers
    const [a, b] = await Promise.all([replayed.out.toArray(), recorded.out.toArray()]);
    // The same kernels on the same inputs: bit for bit.
    expect(a, `step ${i}`).toEqual(b);
  }
  graph?.dispose();
  replayed.dispose();
  recorded.dispose();
  return counts;
}

describe('replayed decode steps (WebGpuDevice.capture)', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  it('a replay records exactly what running the ops records, with the default attention kernel', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const counts = await replayAgainstRecorded(gpu, 40, {});
    expect(counts.replays).toBeGreaterThanOrEqual(40 - 2 * counts.captures);
    expect(counts.replays).toBeGreaterThan(30);
  });

  it('is captured again where the attention chunks change, and never replayed past that', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // 64 keys per workgroup: the number of chunks grows at lengths 65 and 129, so three captures.
    const counts = await replayAgainstRecorded(gpu, 150, { kernel: 'blocks', keysPerWorkgroup: 64 });
    expect(counts.captures).toBe(3);
    expect(counts.replays).toBe(150 - 2 * 3);
  });

  it('refuses a step whose position moves a value it does not declare', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const table = randn([8, 16], { seed: 3, device: gpu });
    const w = randn([4, 16], { seed: 4, device: gpu });
    const out = tensor(new Float32Array(4), [1, 4], { device: gpu });
    let position = 0;
    const step = () => {
      scope(() => linearAccumulate(out, narrow(table, 0, position, 1), w)); // narrow's offset is undeclared
      position++;
    };
    const graph = gpu.capture(step);
    expect(graph.check(step, 1)).toBe(false);
    expect(graph.refused).toMatch(
      /dispatch 0 \(narrow\) differs from the capture: uniform slot \d+ is 16, 0 expected/,
    );
    expect(graph.replay(2)).toBe(false);
    graph.dispose();
    for (const t of [table, w, out]) t.dispose();
  });

  it('refuses a step that uploads, or that keeps a tensor it made', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const w = randn([4, 3], { seed: 5, device: gpu });
    const out = tensor(new Float32Array(4), [1, 4], { device: gpu });
    const uploads = () => scope(() => linearAccumulate(out, tensor([1, 2, 3], [1, 3], { device: gpu }), w));
    const graph = gpu.capture(uploads);
    expect(graph.check(uploads, 1)).toBe(false);
    expect(graph.refused).toBe('the step writes to a buffer from the host');
    graph.dispose();

    let kept: Tensor | undefined;
    const keeps = gpu.capture(() => {
      kept = add(w, w);
    });
    expect(keeps.refused).toBe('a tensor allocated by the step outlives it');
    keeps.dispose(); // the tensor keeps its buffer until it is freed itself
    expect(await kept!.toArray()).toEqual((await w.toArray()).map((x) => 2 * x));
    kept!.dispose();
    for (const t of [w, out]) t.dispose();
  });

  it('dispose returns the buffers to the pool, also with a replay not yet submitted', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const d = decoder(gpu, 8, {});
    const graph = gpu.capture(d.step);
    expect(graph.check(d.step, 1)).toBe(true);
    expect(graph.replay(2)).toBe(true); // recorded, not submitted: dispose must not destroy its uniforms first
    d.cache.reserve(1);
    const pooled = gpu.memory.pooledBytes;
    graph.dispose();
    expect(gpu.memory.pooledBytes).toBeGreaterThan(pooled);
    expect(graph.replay(3)).toBe(false);
    expect(graph.refused).toBe('disposed');
    await d.out.toArray(); // submits and waits: a destroyed uniform buffer would fail here
    d.dispose();
  });
});
