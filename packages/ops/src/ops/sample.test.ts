import { cpu, fromArray, Rng, randn, type Tensor, tensor } from '@proj/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../gpu/device.js';
import { testDevice } from '../testing.js';
import {
  gumbelNoise,
  isGreedy,
  type SamplingOptions,
  sampleReference,
  samplingSettings,
  TokenSampler,
} from './sample.js';

const { NaN: nan, NEGATIVE_INFINITY: ninf, POSITIVE_INFINITY: inf } = Number;

/** Logits like a model's: normal, spread over a few units. */
async function randomLogits(n: number, seed: number): Promise<Float32Array> {
  return (await randn([n], { seed, std: 3 }).toArray()) as Float32Array;
}

/** `count` draws of one sampler from `logits`, on `device`. */
async function draws(device: TokenSampler, logits: Float32Array, count: number): Promise<number[]> {
  const out: number[] = [];
  const ids = fromArray(new Int32Array(1), [1], { dtype: 'i32', device: samplerDevice(device) });
  const x = tensor(logits, [1, logits.length], { device: samplerDevice(device) });
  for (let i = 0; i < count; i++) {
    device.sample(x, ids);
    out.push((await ids.toArray())[0]!);
  }
  x.dispose();
  ids.dispose();
  return out;
}
const devices = new WeakMap<TokenSampler, typeof cpu | WebGpuDevice>();
const samplerDevice = (s: TokenSampler) => devices.get(s) ?? cpu;
function sampler(device: typeof cpu | WebGpuDevice, vocab: number, options: SamplingOptions): TokenSampler {
  const s = new TokenSampler(device, vocab, options);
  devices.set(s, device);
  return s;
}

/**
 * The definition written the plain way: every probability sorted. The reference sorts only the largest ones
 * and must keep the same tokens, so it draws the same ids.
 */
function plainSample(logits: Float32Array, options: SamplingOptions, draw: number): number {
  const o = samplingSettings(options);
  const scores = Float64Array.from(logits);
  const max = scores.reduce((a, b) => Math.max(a, b));
  const probs = scores.map((s) => Math.exp((s - max) / o.temperature));
  const sorted = Float64Array.from(probs).sort().reverse();
  let threshold = o.minP;
  if (o.topK > 0 && o.topK < sorted.length) threshold = Math.max(threshold, sorted[o.topK - 1]!);
  if (o.topP < 1) {
    const total = sorted.filter((p) => p >= threshold).reduce((a, p) => a + p, 0);
    let mass = 0;
    for (const p of sorted) {
      mass += p;
      if (mass >= o.topP * total) {
        threshold = Math.max(threshold, p);
        break;
      }
    }
  }
  let id = -1;
  let best = ninf;
  for (let i = 0; i < probs.length; i++) {
    if (!(probs[i]! > 0 && probs[i]! >= threshold)) continue;
    const v = (scores[i]! - max) / o.temperature + gumbelNoise(o.seed, draw, i);
    if (v > best) [best, id] = [v, i];
  }
  return id;
}

const OPTION_SETS: SamplingOptions[] = [
  { temperature: 1, topP: 1 },
  {}, // Meta's defaults: temperature 0.6, top-p 0.9
  { temperature: 1.5, topP: 0.95 },
  { temperature: 1, topK: 5 },
  { temperature: 0.8, topK: 50, topP: 0.8, minP: 0.05 },
  { temperature: 0.7, minP: 0.1 },
  { temperature: 0.8, topK: 5, topP: 0.5 },
];

describe('sampling on the CPU (the reference)', () => {
  it('validates its options', () => {
    expect(() => samplingSettings({ temperature: -1 })).toThrow(
      'temperature must be finite and >= 0, got -1',
    );
    expect(() => samplingSettings({ topP: 0 })).toThrow('topP must be in (0, 1], got 0');
    expect(() => samplingSettings({ minP: 1 })).toThrow('minP must be in [0, 1), got 1');
    expect(() => samplingSettings({ topK: 1.5 })).toThrow('topK must be a non-negative integer, got 1.5');
    expect(() => samplingSettings({ repetitionPenalty: 0 })).toThrow(
      'repetitionPenalty must be finite and > 0',
    );
    expect(() => samplingSettings({ seed: 0.5 })).toThrow('seed must be an integer, got 0.5');
    expect(samplingSettings({ seed: -1 }).seed).toBe(2 ** 32 - 1); // modulo 2^32, so Date.now() works too
    expect(samplingSettings({ temperature: undefined }).temperature).toBe(0.6);
    expect(isGreedy({ temperature: 0 })).toBe(true);
    expect(isGreedy({ temperature: 0, repetitionPenalty: 1.2 })).toBe(false);
    expect(isGreedy({})).toBe(false);
  });

  it('keeps the tokens the plain definition keeps, so it draws the same ids', () => {
    const rng = new Rng(7);
    // Logits spread like a language model's (scale 4), flat (0.01), peaked (40), and in few distinct
    // values (ties at the thresholds).
    const vocabularies = [1, 7, 1000, 128256].flatMap((n) =>
      [4, 0.01, 40].map((scale) => Float32Array.from({ length: n }, () => rng.normal() * scale)),
    );
    vocabularies.push(Float32Array.from({ length: 5000 }, () => Math.round(rng.normal() * 2)));
    for (const logits of vocabularies) {
      for (const [k, options] of OPTION_SETS.entries()) {
        const settings = samplingSettings({ ...options, seed: k });
        for (let draw = 0; draw < 3; draw++) {
          const { id } = sampleReference(logits, settings, draw);
          expect(id, `${logits.length} ${JSON.stringify(options)} draw ${draw}`).toBe(
            plainSample(logits, settings, draw),
          );
        }
      }
    }
  });

  it('temperature 0 is argmax, and so are topK = 1 and a tiny topP', () => {
    const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);
    const id = (o: SamplingOptions, draw = 0) => sampleReference(logits, samplingSettings(o), draw).id;
    expect(id({ temperature: 0 })).toBe(1);
    for (let draw = 0; draw < 20; draw++) {
      expect(id({ temperature: 1, topK: 1 }, draw)).toBe(1);
      expect(id({ temperature: 1, topP: 1e-6 }, draw)).toBe(1);
    }
  });

  it('draws with the softmax probabilities (the Gumbel noise is uniform enough)', () => {
    const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);
    const settings = samplingSettings({ temperature: 1, topP: 1, seed: 1 });
    const n = 20000;
    const counts = new Array(5).fill(0);
    for (let draw = 0; draw < n; draw++) counts[sampleReference(logits, settings, draw).id]++;
    const z = logits.reduce((a, l) => a + Math.exp(l), 0);
    logits.forEach((l, i) => {
      const p = Math.exp(l) / z;
      // within 4.5 standard deviations of a binomial count (a false alarm about once in 150,000 runs)
      expect(Math.abs(counts[i] - n * p)).toBeLessThan(4.5 * Math.sqrt(n * p * (1 - p)));
    });
  });

  it('keeps every token tied at a threshold', () => {
    const logits = Float32Array.from([5, 5, 5, 1, 0]);
    const settings = samplingSettings({ temperature: 1, topK: 2 });
    const ids = new Set(Array.from({ length: 200 }, (_, d) => sampleReference(logits, settings, d).id));
    expect([...ids].sort()).toEqual([0, 1, 2]);
  });

  it('applies the repetition penalty to the seen tokens only', () => {
    const logits = Float32Array.from([2, 2.1, -1]);
    const greedy = samplingSettings({ temperature: 0, repetitionPenalty: 2 });
    expect(sampleReference(logits, greedy, 0).id).toBe(1);
    expect(sampleReference(logits, greedy, 0, (i) => i === 1).id).toBe(0); // 2.1 / 2 < 2
    expect(sampleReference(Float32Array.from([-1, -1.5]), greedy, 0, (i) => i === 0).id).toBe(1); // -2 < -1.5
  });

  it('rejects broken logits', () => {
    const s = samplingSettings({});
    expect(() => sampleReference(Float32Array.from([1, nan]), s, 0)).toThrow(
      "the logit of token 1 is NaN; the model's output is broken",
    );
    expect(() => sampleReference(Float32Array.from([inf, 1]), s, 0)).toThrow('token 0 is Infinity');
    expect(() => sampleReference(Float32Array.from([ninf, ninf]), s, 0)).toThrow(
      'no token to choose (2 logits, none above -Infinity)',
    );
  });

  it('TokenSampler on the CPU: seeded sequences, penalty marks, and checks of its inputs', async () => {
    const logits = await randomLogits(50, 9);
    const run = async (seed: number) =>
      draws(sampler(cpu, 50, { temperature: 1.2, topP: 1, seed }), logits, 30);
    expect(await run(5)).toEqual(await run(5));
    expect(await run(5)).not.toEqual(await run(6));
    // With a huge penalty on a flat distribution, every draw marks its token and the next avoids it.
    const flat = sampler(cpu, 8, { temperature: 0, repetitionPenalty: 1e6 });
    flat.see([0]);
    expect(await draws(flat, new Float32Array(8).fill(1), 7)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const s = sampler(cpu, 4, {});
    const ids = fromArray(new Int32Array(1), [1], { dtype: 'i32' });
    expect(() => s.sample(tensor([1, 2, 3], [1, 3]), ids)).toThrow(
      'sample: logits [1, 3] f32 must be f32 [4] or [1, 4]',
    );
    expect(() => s.sample(tensor([1, 2, 3, 4], [4]), tensor([0], [1]))).toThrow(
      'ids [1] f32 must be one i32',
    );
    expect(() => s.see([4])).toThrow('sample: id 4 is outside [0, 4)');
    s.dispose();
    expect(() => s.sample(tensor([1, 2, 3, 4], [4]), ids)).toThrow('the sampler has been disposed');
  });
});

describe('sampling on WebGPU matches the CPU reference', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());

  // The GPU computes in f32: exp within 3 + 2|x| ulp (WGSL's bound; about 5e-6 relative for the
  // probabilities that matter), the noise within about 4e-6. A draw may then go another way only where the
  // reference's winner leads by less than that, or a threshold sits within that of a token's probability:
  // such draws (a margin or a relative gap under 1e-4, or another id with topP moved by 1e-4 of itself: 10 to
  // 20 times those errors) are not compared; the rest must agree exactly, and they must be most of them.
  it.for([1, 7, 4096, 4097, 8193, 128256])(
    'vocabulary of %i: the same ids for every option set',
    async (n, { skip }) => {
      if (!gpu) return skip('no WebGPU adapter');
      let compared = 0;
      let total = 0;
      for (const [k, options] of OPTION_SETS.entries()) {
        const settings = samplingSettings({ ...options, seed: k });
        const s = sampler(gpu, n, settings);
        for (let draw = 0; draw < 4; draw++) {
          const logits = await randomLogits(n, 1000 * k + draw);
          const [got] = await draws(s, logits, 1);
          const ref = sampleReference(logits, settings, draw);
          total++;
          const moved = (f: number) =>
            sampleReference(logits, { ...settings, topP: Math.min(1, settings.topP * f) }, draw).id;
          if (
            ref.margin < 1e-4 ||
            ref.gap < 1e-4 ||
            moved(1 - 1e-4) !== ref.id ||
            moved(1 + 1e-4) !== ref.id
          ) {
            continue;
          }
          compared++;
          expect(got, `${JSON.stringify(options)} draw ${draw}`).toBe(ref.id);
        }
        s.dispose();
      }
      expect(compared).toBeGreaterThanOrEqual(0.8 * total);
    },
  );

  it('the repetition penalty: prompt ids and every drawn id are seen', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const n = 300;
    const settings = samplingSettings({ temperature: 0.7, topP: 1, repetitionPenalty: 1.5, seed: 4 });
    const s = sampler(gpu, n, settings);
    s.see([3, 1, 4, 1]);
    const seen = new Set([3, 1, 4]);
    const logits = await randomLogits(n, 77);
    const got = await draws(s, logits, 12);
    const expected = got.map((_, draw) => {
      const ref = sampleReference(logits, settings, draw, (i) => seen.has(i));
      seen.add(ref.id);
      return ref.id;
    });
    expect(got).toEqual(expected);
    expect(new Set(got).size).toBeGreaterThan(6); // the penalty does move the draws around
    // Temperature 0 with a penalty is the argmax of the penalised logits, on the device.
    const greedy = sampler(gpu, 4, { temperature: 0, repetitionPenalty: 1e6 });
    expect(await draws(greedy, new Float32Array(4).fill(1), 4)).toEqual([0, 1, 2, 3]);
    s.dispose();
    greedy.dispose();
  });

  it('top-p counts the mass of the many tokens under its floor, which the histograms skip', async ({
    skip,
  }) => {
    if (!gpu) return skip('no WebGPU adapter');
    // One token with p = 1, 20 with p near 0.05, and the rest of Llama 3's vocabulary at 9e-7, under the floor
    // of (1 - 0.5) / 4V = 9.7e-7 but 0.115 of mass together: with it, top-p 0.5 needs the first token and
    // two of the 20; without it, the first alone.
    const n = 128256;
    const logits = new Float32Array(n).fill(Math.log(9e-7));
    logits[70000] = 0;
    for (let j = 0; j < 20; j++) logits[1000 * j + 7] = Math.log(0.05 * (1 - j / 100));
    const settings = samplingSettings({ temperature: 1, topP: 0.5, seed: 3 });
    const s = sampler(gpu, n, settings);
    const got = await draws(s, logits, 24);
    const expected = got.map((_, draw) => sampleReference(logits, settings, draw).id);
    expect(got).toEqual(expected);
    expect([...new Set(expected)].sort()).toEqual([7, 70000]); // the top token and the larger of the two
    s.dispose();
  });

  it('keeps every token tied at a threshold, and draws each of them', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const logits = new Float32Array(5000).fill(-3);
    logits.set([5, 5, 5], 4097); // across the chunk boundary of 4096
    const s = sampler(gpu, logits.length, { temperature: 1, topK: 2 });
    expect(new Set(await draws(s, logits, 40))).toEqual(new Set([4097, 4098, 4099]));
    s.dispose();
  });

  it('broken logits give -1, and the next draw is whole again', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const s = sampler(gpu, 6000, {});
    const good = await randomLogits(6000, 5);
    for (const [at, bad] of [
      [5000, nan],
      [17, inf],
    ] as const) {
      const logits = good.slice();
      logits[at] = bad;
      expect(await draws(s, logits, 1)).toEqual([-1]);
    }
    expect(await draws(s, new Float32Array(6000).fill(ninf), 1)).toEqual([-1]);
    const [id] = await draws(s, good, 1);
    expect(id).toBe(sampleReference(good, s.settings, 3).id);
    s.dispose();
  });

  it('counts its dispatches: 10 per draw, 16 with top-k, 3 at temperature 0', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const x = tensor(await randomLogits(100, 1), [1, 100], { device: gpu });
    const ids = fromArray(new Int32Array(1), [1], { dtype: 'i32', device: gpu });
    for (const [options, expected] of [
      [{}, 10],
      [{ topK: 40 }, 16],
      [{ temperature: 0, repetitionPenalty: 1.1 }, 3],
    ] as const) {
      const s = new TokenSampler(gpu, 100, options);
      const before = gpu.stats.dispatches;
      s.sample(x, ids);
      expect(gpu.stats.dispatches - before).toBe(expected);
      s.dispose();
    }
    await gpu.sync();
    x.dispose();
    ids.dispose();
  });

  it('rejects logits from another device', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const s = new TokenSampler(gpu, 4, {});
    const ids = fromArray(new Int32Array(1), [1], { dtype: 'i32', device: gpu });
    expect(() => s.sample(tensor([1, 2, 3, 4], [4]) as Tensor, ids)).toThrow('sample:');
    s.dispose();
    ids.dispose();
  });
});
