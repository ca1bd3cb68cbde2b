import { readFileSync } from 'node:fs';
import { toFloat32, viewAs } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import { describe, expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../test-support/fixtures.js';
import { configFromHf, configFromMetaParams, metaFfnDim } from './config.js';
import { LLAMA3_8B, LLAMA32_1B, LLAMA32_3B } from './presets.js';
import { ropeInverseFrequencies } from './rope-frequencies.js';

describe('config', () => {
  it('derives the FFN width exactly as Meta does', () => {
    expect(metaFfnDim(4096, 1024, 1.3)).toBe(LLAMA3_8B.intermediateSize); // Llama 3 8B: 14336
    expect(metaFfnDim(2048, 256, 1.5)).toBe(LLAMA32_1B.intermediateSize); // Llama 3.2 1B: 8192
    expect(metaFfnDim(3072, 256, 1.0)).toBe(LLAMA32_3B.intermediateSize); // Llama 3.2 3B: 8192
    expect(metaFfnDim(64, 32, 0.9)).toBe(160); // the tiny fixture (its README)
  });
  it('reads an HF config with defaults and generation stop ids', () => {
    const c = configFromHf(
      {
        hidden_size: 64,
        num_attention_heads: 8,
        num_hidden_layers: 2,
        intermediate_size: 160,
        vocab_size: 512,
      },
      { eos_token_id: [1, 2] },
    );
    expect(c.kvHeads).toBe(8);
    expect(c.headDim).toBe(8);
    expect(c.eosTokenIds).toEqual([1, 2]);
    expect(c.ropeScaling).toBeNull();
  });
  it('rejects bad configs with the field name', () => {
    expect(() => configFromHf({ hidden_size: '64' })).toThrow("'hidden_size' must be a number");
    expect(() => configFromHf([1, 2])).toThrow('config.json must be a JSON object, got [1,2]');
    expect(() => configFromMetaParams('dim')).toThrow('params.json must be a JSON object, got "dim"');
    expect(() =>
      configFromHf({
        hidden_size: 64,
        num_attention_heads: 8,
        num_key_value_heads: 3,
        num_hidden_layers: 1,
        intermediate_size: 1,
        vocab_size: 1,
      }),
    ).toThrow('heads (8) must be a multiple of kvHeads (3)');
    expect(() =>
      configFromHf({
        hidden_size: 64,
        num_attention_heads: 8,
        num_hidden_layers: 1,
        intermediate_size: 1,
        vocab_size: 1,
        rope_scaling: { rope_type: 'yarn' },
      }),
    ).toThrow('rope_scaling of type "yarn" is not supported');
  });
  it("reads Meta's params.json, with factor 8 unless told otherwise", () => {
    const params = {
      dim: 2048,
      n_layers: 16,
      n_heads: 32,
      n_kv_heads: 8,
      vocab_size: 128256,
      ffn_dim_multiplier: 1.5,
      multiple_of: 256,
      norm_eps: 1e-5,
      rope_theta: 500000,
      use_scaled_rope: true,
    };
    const c = configFromMetaParams(params);
    expect(c.intermediateSize).toBe(8192);
    expect(c.headDim).toBe(64);
    expect(c.ropeScaling?.factor).toBe(8);
    expect(configFromMetaParams(params, { ropeScaling: LLAMA32_1B.ropeScaling }).ropeScaling?.factor).toBe(
      32,
    );
  });
});

describeWithShared('RoPE frequencies against the fixtures', () => {
  for (const name of ['tiny-llama32-tied', 'tiny-llama3-gqa', 'stories260K']) {
    it(name, async () => {
      const config = configFromHf(JSON.parse(readFileSync(fixture(`${name}/config.json`), 'utf8')));
      const file = await openSafetensors(fixture(`${name}/expected.safetensors`));
      const expected = toFloat32('f32', viewAs('f32', await file.read('rope.inv_freq')));
      await file.close();
      const ours = ropeInverseFrequencies(config);
      // Meta computes these in float32 torch ops; we compute in f64 and round once, so the two may differ
      // in the last bit (relative 2^-23 ~ 1.2e-7); the llama3 scaling itself changes values by up to 32x.
      for (let i = 0; i < ours.length; i++)
        expect(Math.abs(ours[i]! - expected[i]!)).toBeLessThanOrEqual(2.5e-7 * expected[i]!);
    });
  }
});
