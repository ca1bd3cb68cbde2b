/**
 * The model against Meta's reference in a real browser: `vitest.browser.config.ts` runs this in headless
 * Chromium, whose WebGPU is SwiftShader. The Hugging Face-layout fixtures are fetched from the test server,
 * loaded with `loadLlamaFrom` and compared as `fixtures.test.ts` compares them in Node (logits, argmax at
 * every position, greedy ids). Node's test run leaves `*.browser.test.ts` files out.
 */
import { memorySource, SafetensorsFile } from '@proj/core';
import { createWebGpuDevice, type WebGpuDevice } from '@proj/ops';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadLlamaFrom } from './checkpoint/load.js';
import { safetensorsSource } from './checkpoint/source.js';
import { configFromHf } from './config.js';
import { compareWithReference, readReference } from './reference.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Where the test server serves the shared fixtures, or undefined where they are absent. */
    fixturesUrl: string | undefined;
    /** CI=true, where absent fixtures are a failure. */
    ci: boolean;
  }
}

describe("Llama 3 against Meta's reference, in the browser", () => {
  const base = inject('fixturesUrl');
  let gpu: WebGpuDevice;
  beforeAll(async () => {
    gpu = await createWebGpuDevice();
  });
  afterAll(() => gpu?.destroy());

  async function fetchBytes(url: string): Promise<Uint8Array> {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }

  for (const name of ['tiny-llama3-gqa', 'tiny-llama32-tied', 'stories260K']) {
    it(`${name}: logits, argmax and greedy ids match Meta's reference`, async ({ skip }) => {
      if (base === undefined) {
        if (inject('ci')) throw new Error('the shared fixtures are missing; CI must provide them');
        return skip('no shared fixtures');
      }
      const dir = `${base}/${name}`;
      const config = configFromHf(
        JSON.parse(new TextDecoder().decode(await fetchBytes(`${dir}/config.json`))),
      );
      const weights = await SafetensorsFile.open(memorySource(await fetchBytes(`${dir}/model.safetensors`)));
      const model = await loadLlamaFrom(safetensorsSource(weights), config, {
        device: gpu,
        onWarning: () => {},
      });
      try {
        const expected = await SafetensorsFile.open(
          memorySource(await fetchBytes(`${dir}/expected.safetensors`)),
        );
        const r = await compareWithReference(model, await readReference(expected));
        expect(r.maxAbsDiff).toBeLessThanOrEqual(1e-4); // as in Node: the fixtures README's f32 tolerance
        expect(r.argmaxAgree.every(Boolean)).toBe(true);
        expect(r.greedyIds).toEqual(r.expectedGreedyIds);
      } finally {
        model.dispose();
      }
    });
  }
});
