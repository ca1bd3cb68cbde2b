// The heart of the model's tests: every fixture, on both devices and both checkpoint layouts, must give
// Meta's reference logits (f32 tolerance from the fixtures README), the same argmax at every position, and
// the same greedy tokens; layer-0 intermediates are compared too, so a mismatch points at the op that broke.
import { cpu, type Device, type Tensor } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import type { WebGpuDevice } from '@proj/ops';
import { maxAbsDiff, testDevice } from '@proj/ops/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../test-support/fixtures.js';
import { loadLlama } from './checkpoint/load-dir.js';
import { readTensor } from './reference.js';
import { verifyModel } from './verify.js';

const MODELS = [
  { name: 'tiny-llama3-gqa', dirs: ['tiny-llama3-gqa'] },
  { name: 'tiny-llama32-tied', dirs: ['tiny-llama32-tied', 'tiny-llama32-tied/original'] },
  { name: 'stories260K', dirs: ['stories260K'] },
];

/** Intermediates of layer 0 that the fixtures store, by our trace names (the same names). */
const TRACED = [
  'embed',
  'layer0.attn_norm_out',
  'layer0.q_rope',
  'layer0.k_rope',
  'layer0.v',
  'layer0.attn_out',
  'layer0.attn_residual',
  'layer0.ffn_norm_out',
  'layer0.ffn_out',
  'layer0.out',
  'final_norm_out',
];

async function readAll(path: string): Promise<Map<string, Float32Array | Int32Array>> {
  const file = await openSafetensors(path);
  const out = new Map<string, Float32Array | Int32Array>();
  for (const name of file.names()) out.set(name, await readTensor(file, name));
  await file.close();
  return out;
}

describeWithShared('Llama 3 against the reference fixtures', () => {
  let gpu: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
  });
  afterAll(() => gpu?.destroy());
  const devices: [string, () => Device | undefined][] = [
    ['cpu', () => cpu],
    ['webgpu', () => gpu],
  ];

  for (const { name, dirs } of MODELS) {
    for (const dir of dirs) {
      for (const [deviceName, getDevice] of devices) {
        it(`${dir} on ${deviceName}: logits, argmax and greedy ids match Meta's reference`, async ({
          skip,
        }) => {
          const device = getDevice();
          if (!device) return skip('no WebGPU adapter');
          const r = await verifyModel(fixture(dir), fixture(`${name}/expected.safetensors`), { device });
          expect(r.maxAbsDiff).toBeLessThanOrEqual(1e-4);
          expect(r.argmaxAgree.every(Boolean)).toBe(true);
          expect(r.greedyIds).toEqual(r.expectedGreedyIds);
        });

        it(`${dir} on ${deviceName}: layer-0 intermediates and decode-with-cache`, async ({ skip }) => {
          const device = getDevice();
          if (!device) return skip('no WebGPU adapter');
          const expected = await readAll(fixture(`${name}/expected.safetensors`));
          const ids = [...expected.get('input_ids')!];
          const model = await loadLlama(fixture(dir), { device, onWarning: () => {} });
          try {
            const traced = new Map<string, Tensor>();
            const cache = model.createCache(ids.length);
            const full = model.forward(ids, cache, { logits: 'all', trace: (n, t) => traced.set(n, t) });
            for (const n of TRACED) {
              const t = traced.get(n);
              expect(t, `trace ${n}`).toBeDefined();
              // f32 intermediates: the README measures independent implementations ~1e-6 apart; 1e-4 as it suggests.
              const { diff, index } = maxAbsDiff(await t!.toArray(), expected.get(n)!);
              expect(diff, `${n}: max |diff| at ${index}`).toBeLessThanOrEqual(1e-4);
              t!.dispose();
            }
            // Decode with the cache, one token at a time, equals the full forward at every position.
            const fullLogits = (await full.toArray()) as Float32Array;
            full.dispose();
            cache.reset();
            const vocab = model.config.vocabSize;
            for (let p = 0; p < ids.length; p++) {
              const step = model.forward([ids[p]!], cache);
              const row = (await step.toArray()) as Float32Array;
              step.dispose();
              // Same math, different summation order in attention (1 key vs. S keys per call): f32 rounding only.
              const { diff } = maxAbsDiff(row, fullLogits.subarray(p * vocab, (p + 1) * vocab));
              expect(diff, `position ${p}`).toBeLessThanOrEqual(2e-5);
            }
            cache.dispose();
          } finally {
            model.dispose();
          }
        });
      }
    }
  }
});
