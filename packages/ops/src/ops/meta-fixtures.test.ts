/**
 * The CPU references of rmsnorm and rope against what Meta's reference implementation computed for the
 * tiny Llama 3.2 fixture (`../shared/fixtures`). Kept apart from the kernel tests because it reads files:
 * the kernel tests also run in a browser (`vitest.browser.config.ts`).
 */
import { existsSync } from 'node:fs';
import { cpuFloats, tensor } from '@proj/core';
import { it } from 'vitest';
import { describeWithShared, fixture, readFixtureFloats } from '../../../../test-support/fixtures.js';
import { expectClose } from '../testing.js';
import { rmsnormReference } from './rmsnorm.js';
import { rope, ropeTables } from './rope.js';

const FIXTURES = fixture('tiny-llama32-tied');

describeWithShared(
  "rmsnorm and rope against Meta's reference",
  () => {
    it('reproduces layer0.attn_norm_out of the tiny Llama 3.2 fixture', async () => {
      const expected = await readFixtureFloats('tiny-llama32-tied/expected.safetensors');
      const weights = await readFixtureFloats('tiny-llama32-tied/model.safetensors');
      const embed = expected.get('embed')!;
      const norm = weights.get('model.layers.0.input_layernorm.weight')!;
      // Two f32 implementations of the same formula: they agree to a few f32 ULPs of values of order 1.
      expectClose(rmsnormReference(embed, norm, 1e-5), expected.get('layer0.attn_norm_out')!, {
        atol: 1e-5,
        what: 'attn_norm_out',
      });
    });
    it('matches the tiny Llama 3.2 fixture (tables, and q/k after RoPE)', async () => {
      const expected = await readFixtureFloats('tiny-llama32-tied/expected.safetensors');
      const weights = await readFixtureFloats('tiny-llama32-tied/model.safetensors');
      const seq = 11;
      const tables = ropeTables(expected.get('rope.inv_freq')!, seq);
      // Meta rounds each angle p * f to f32 before cos/sin; we do not. For positions <= 10 that moves the
      // angle by at most half an f32 ULP of 10 (4.8e-7), and cos/sin by no more: atol 1e-6.
      expectClose(cpuFloats(tables.cos), expected.get('rope.cos')!, { atol: 1e-6, what: 'rope.cos' });
      expectClose(cpuFloats(tables.sin), expected.get('rope.sin')!, { atol: 1e-6, what: 'rope.sin' });
      // q = attn_norm_out @ Wq^T in HF layout, then RoPE 'half'; compared with Meta's (reordered) q_rope.
      // The fixture README measures 7e-7 between two f32 implementations here: atol 1e-5 leaves room for
      // the f64 vs f32 matmul and table differences on values of order 1.
      const x = expected.get('layer0.attn_norm_out')!;
      for (const [name, proj, heads] of [
        ['q', 'q_proj', 8],
        ['k', 'k_proj', 2],
      ] as const) {
        const w = weights.get(`model.layers.0.self_attn.${proj}.weight`)!;
        const n = heads * 8;
        const q = new Float32Array(seq * n);
        for (let s = 0; s < seq; s++) {
          for (let o = 0; o < n; o++) {
            let acc = 0;
            for (let k = 0; k < 64; k++) acc += x[s * 64 + k]! * w[o * 64 + k]!;
            q[s * n + o] = acc;
          }
        }
        const rotated = rope(tensor(q, [seq, heads, 8]), tables, { layout: 'half' });
        expectClose(await rotated.toArray(), expected.get(`layer0.${name}_rope`)!, {
          atol: 1e-5,
          what: name,
        });
      }
    });
  },
  existsSync(FIXTURES),
  FIXTURES,
);
