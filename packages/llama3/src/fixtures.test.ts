// The heart of the model's tests: every fixture, on both devices and both checkpoint layouts, must give
// Meta's reference logits (f32 tolerance from the fixtures README), the same argmax at every position, and
// the same greedy tokens; layer-0 intermediates are compared too, so a mismatch points at the op that broke,
// and so is decoding the prompt token by token with the KV cache.
import { cpu, type Device } from '@proj/core';
import type { WebGpuDevice } from '@proj/ops';
import { testDevice } from '@proj/ops/testing';
import { afterAll, beforeAll, it } from 'vitest';
import { describeWithShared, fixture } from '../../../test-support/fixtures.js';
import { expectMatchesReference } from './reference.fixture.js';
import { verifyModel } from './verify.js';

const MODELS = [
  { name: 'tiny-llama3-gqa', dirs: ['tiny-llama3-gqa'] },
  { name: 'tiny-llama32-tied', dirs: ['tiny-llama32-tied', 'tiny-llama32-tied/original'] },
  { name: 'stories260K', dirs: ['stories260K'] },
];

describeWithShared('Llama 3 against the reference fixtures', () => {
  let gpu: WebGpuDevice | undefined;
  let gpuVariants: WebGpuDevice | undefined;
  beforeAll(async () => {
    gpu = await testDevice();
    // The kernels GPUs run (GEMV and tiled GEMM, row-major weights, the blocks attention with RoPE fused
    // into decode steps) on whatever adapter runs the tests: only the choice of variants changes.
    gpuVariants = await testDevice();
    if (gpuVariants) (gpuVariants.caps as { software: boolean }).software = false;
  });
  afterAll(() => {
    gpu?.destroy();
    gpuVariants?.destroy();
  });
  const devices: [string, () => Device | undefined][] = [
    ['cpu', () => cpu],
    ['webgpu', () => gpu],
    ['webgpu with the GPU variants', () => gpuVariants],
  ];

  for (const { name, dirs } of MODELS) {
    for (const dir of dirs) {
      for (const [deviceName, getDevice] of devices) {
        it(`${dir} on ${deviceName}: logits, argmax, layer-0 intermediates, cached decoding and greedy ids match Meta's reference`, async ({
          skip,
        }) => {
          const device = getDevice();
          if (!device) return skip('no WebGPU adapter');
          const r = await verifyModel(fixture(dir), fixture(`${name}/expected.safetensors`), { device });
          expectMatchesReference(r);
        });
      }
    }
  }
});
