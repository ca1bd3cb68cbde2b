// f16 activations (`compute: 'f16'`) against Meta's f32 reference logits, on WebGPU with shader-f16. The
// fixtures README measures bf16/f16 activations at max |delta logit| 0.05 to 0.1 and a mean near 0.01, and
// suggests atol 0.25: we require max <= 0.25 and mean <= 0.02, and the same argmax at every prompt position.
// Greedy ids are not compared: tiny-llama32-tied's f32 top-2 margin at step 2 is 0.0176, under f16 noise.
// The f32 default is covered, unchanged, by fixtures.test.ts.
import { toCoreDType, toFloat32, viewAs } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import type { WebGpuDevice } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../test-support/fixtures.js';
import { loadLlama } from './checkpoint/load-dir.js';

const MODELS = ['tiny-llama3-gqa', 'tiny-llama32-tied', 'stories260K'];

async function readFloats(path: string, name: string): Promise<Float32Array | Int32Array> {
  const file = await openSafetensors(path);
  try {
    const dtype = toCoreDType(file.info(name).dtype, name);
    const raw = viewAs(dtype, await file.read(name));
    return dtype === 'i32' ? (raw as Int32Array) : toFloat32(dtype, raw);
  } finally {
    await file.close();
  }
}

function argmax(row: ArrayLike<number>, from: number, n: number): number {
  let best = from;
  for (let i = from + 1; i < from + n; i++) if (row[i]! > row[best]!) best = i;
  return best - from;
}

describeWithShared("Llama 3 with compute 'f16' against the f32 reference fixtures", () => {
  let gpu: WebGpuDevice | undefined;
  let gpuVariants: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
    // The kernels GPUs run, on whatever adapter runs the tests: there prefill's GEMMs read f16 x and
    // multiply in half precision (`GemmVariant.f16`).
    gpuVariants = await testDevice();
    if (gpuVariants) (gpuVariants.caps as { software: boolean }).software = false;
  });
  afterAll(() => {
    gpu?.destroy();
    gpuVariants?.destroy();
  });

  for (const [name, deviceName] of MODELS.flatMap(
    (m) =>
      [
        [m, 'webgpu'],
        [m, 'webgpu with the GPU variants'],
      ] as const,
  )) {
    it(`${name} on ${deviceName}: logits within the f16-activation tolerance, same argmax`, async ({
      skip,
    }) => {
      const device = deviceName === 'webgpu' ? gpu : gpuVariants;
      if (!device) return skip('no WebGPU adapter');
      if (!device.caps.f16) return skip('adapter without shader-f16');
      const expectedPath = fixture(`${name}/expected.safetensors`);
      const ids = [...(await readFloats(expectedPath, 'input_ids'))];
      const expected = await readFloats(expectedPath, 'logits');
      const model = await loadLlama(fixture(name), { device, compute: 'f16', onWarning: () => {} });
      try {
        expect(model.compute).toBe('f16');
        const cache = model.createCache(ids.length);
        const out = model.forward(ids, cache, { logits: 'all' });
        expect(out.dtype).toBe('f32'); // logits stay f32
        const logits = (await out.toArray()) as Float32Array;
        out.dispose();
        cache.dispose();
        expect(logits.length).toBe(expected.length);
        let max = 0;
        let sum = 0;
        for (let i = 0; i < logits.length; i++) {
          const d = Math.abs(logits[i]! - expected[i]!);
          max = Math.max(max, d);
          sum += d;
        }
        const mean = sum / logits.length;
        console.log(
          `${name} f16 on ${deviceName}: max |diff| ${max.toPrecision(3)}, mean |diff| ${mean.toPrecision(3)}`,
        );
        expect(max).toBeLessThanOrEqual(0.25);
        expect(mean).toBeLessThanOrEqual(0.02);
        const vocab = model.config.vocabSize;
        for (let p = 0; p < ids.length; p++) {
          expect(argmax(logits, p * vocab, vocab), `argmax at position ${p}`).toBe(
            argmax(expected, p * vocab, vocab),
          );
        }
      } finally {
        model.dispose();
      }
    });
  }

  it("compute 'f16' on an adapter without shader-f16 is an error that says so", async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const plain = await testDevice({ f16: false });
    if (!plain) return skip('no second device');
    try {
      await expect(
        loadLlama(fixture('stories260K'), { device: plain, compute: 'f16', onWarning: () => {} }),
      ).rejects.toThrow("Llama: compute 'f16' needs the shader-f16 feature");
    } finally {
      plain.destroy();
    }
  });
});
