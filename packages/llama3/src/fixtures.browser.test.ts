/**
 * The model against Meta's reference in a real browser: `vitest.browser.config.ts` runs this in headless
 * Chromium, whose WebGPU is SwiftShader. The fixtures are fetched from the test server (Hugging Face and
 * Meta layouts), loaded with `loadLlamaFrom` and compared as `fixtures.test.ts` compares them in Node (logits, argmax at
 * every position, layer-0 intermediates, cached decoding, greedy ids). Node's test run leaves `*.browser.test.ts` files out.
 */
import { memorySource, SafetensorsFile } from '@proj/core';
import { createWebGpuDevice, type WebGpuDevice } from '@proj/ops';
import { afterAll, beforeAll, describe, inject, it } from 'vitest';
import { loadLlamaFrom } from './checkpoint/load.js';
import { pthSource, safetensorsSource } from './checkpoint/source.js';
import { configFromHf, configFromMeta } from './config.js';
import type { Llama } from './model.js';
import { expectMatchesReference } from './reference.fixture.js';
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

  /** Loads a fixture the way a page would: the Hugging Face layout, or Meta's (`params.json` + `.pth`). */
  async function load(dir: string, layout: 'hf' | 'meta'): Promise<Llama> {
    const json = async (url: string) =>
      JSON.parse(new TextDecoder().decode(await fetchBytes(url))) as unknown;
    if (layout === 'hf') {
      const weights = await SafetensorsFile.open(memorySource(await fetchBytes(`${dir}/model.safetensors`)));
      const config = configFromHf(await json(`${dir}/config.json`));
      return loadLlamaFrom(safetensorsSource(weights), config, { device: gpu, onWarning: () => {} });
    }
    // Meta's layout sits in original/ of an HF repo, whose config.json knows the RoPE scaling.
    const config = configFromMeta(
      await json(`${dir}/original/params.json`),
      await json(`${dir}/config.json`),
    );
    const pth = await pthSource(memorySource(await fetchBytes(`${dir}/original/consolidated.00.pth`)), 'pth');
    return loadLlamaFrom(pth, config, { device: gpu, format: 'meta', onWarning: () => {} });
  }

  for (const [name, layout] of [
    ['tiny-llama3-gqa', 'hf'],
    ['tiny-llama32-tied', 'hf'],
    ['tiny-llama32-tied', 'meta'],
    ['stories260K', 'hf'],
  ] as const) {
    it(`${name} (${layout} layout): logits, argmax, intermediates, cached decoding and greedy ids match Meta's reference`, async ({
      skip,
    }) => {
      if (base === undefined) {
        if (inject('ci')) throw new Error('the shared fixtures are missing; CI must provide them');
        return skip('no shared fixtures');
      }
      const dir = `${base}/${name}`;
      const model = await load(dir, layout);
      try {
        const expected = await SafetensorsFile.open(
          memorySource(await fetchBytes(`${dir}/expected.safetensors`)),
        );
        expectMatchesReference(await compareWithReference(model, await readReference(expected)));
      } finally {
        model.dispose();
      }
    });
  }
});
