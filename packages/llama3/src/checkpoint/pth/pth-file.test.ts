import { readFile } from 'node:fs/promises';
import { openFileSource, openSafetensors } from '@proj/core/node';
import { expect, it } from 'vitest';
import { describeWithShared, fixture } from '../../../../../test-support/fixtures.js';
import { openPth } from './pth-file.js';

interface MetaParams {
  dim: number;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  vocab_size: number;
  multiple_of: number;
  ffn_dim_multiplier: number;
}

/** Rows of Meta's wq/wk reordered into HF's half-split RoPE layout (README: the convert script's permutation). */
function metaToHf(meta: Uint16Array, heads: number, headDim: number, cols: number): Uint16Array {
  const out = new Uint16Array(meta.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const hfRow = h * headDim + j * half + i;
        const metaRow = h * headDim + 2 * i + j;
        out.set(meta.subarray(metaRow * cols, (metaRow + 1) * cols), hfRow * cols);
      }
    }
  }
  return out;
}

function u16(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(bytes.slice().buffer);
}

const PTH = 'tiny-llama32-tied/original/consolidated.00.pth';

describeWithShared('Meta .pth checkpoint (tiny-llama32-tied/original)', () => {
  it('lists the tensors in the README order with shapes from params.json', async () => {
    const params = JSON.parse(
      await readFile(fixture('tiny-llama32-tied/original/params.json'), 'utf8'),
    ) as MetaParams;
    const { dim, n_heads: heads, n_kv_heads: kvHeads, vocab_size: vocab } = params;
    const headDim = dim / heads;
    const ffn =
      params.multiple_of *
      Math.ceil(Math.trunc(params.ffn_dim_multiplier * Math.trunc((8 * dim) / 3)) / params.multiple_of);
    expect(ffn).toBe(160);
    const expected: [string, number[]][] = [['tok_embeddings.weight', [vocab, dim]]];
    for (let l = 0; l < params.n_layers; l++) {
      expected.push(
        [`layers.${l}.attention.wq.weight`, [heads * headDim, dim]],
        [`layers.${l}.attention.wk.weight`, [kvHeads * headDim, dim]],
        [`layers.${l}.attention.wv.weight`, [kvHeads * headDim, dim]],
        [`layers.${l}.attention.wo.weight`, [dim, heads * headDim]],
        [`layers.${l}.feed_forward.w1.weight`, [ffn, dim]],
        [`layers.${l}.feed_forward.w2.weight`, [dim, ffn]],
        [`layers.${l}.feed_forward.w3.weight`, [ffn, dim]],
        [`layers.${l}.attention_norm.weight`, [dim]],
        [`layers.${l}.ffn_norm.weight`, [dim]],
      );
    }
    expected.push(['norm.weight', [dim]], ['output.weight', [vocab, dim]]);

    const pth = await openPth(await openFileSource(fixture(PTH)), PTH);
    try {
      expect(pth.archivePrefix).toBe('consolidated.00');
      expect(pth.names()).toEqual(expected.map(([name]) => name));
      for (const [name, shape] of expected) {
        const info = pth.info(name);
        expect(info.shape, name).toEqual(shape);
        expect(info.dtype, name).toBe('bf16');
        expect(info.storageOffset, name).toBe(0);
        expect(info.stride, name).toEqual(shape.length === 2 ? [shape[1], 1] : [1]);
        expect((await pth.read(name)).byteLength, name).toBe(shape.reduce((a, b) => a * b, 1) * 2);
      }
      expect(() => pth.info('nope')).toThrow(/no tensor 'nope'/);
    } finally {
      await pth.close();
    }
  });

  it('holds the same weights as the HF model.safetensors, wq/wk after the README permutation', async () => {
    const params = JSON.parse(
      await readFile(fixture('tiny-llama32-tied/original/params.json'), 'utf8'),
    ) as MetaParams;
    const headDim = params.dim / params.n_heads;
    const pth = await openPth(await openFileSource(fixture(PTH)), PTH);
    const hf = await openSafetensors(fixture('tiny-llama32-tied/model.safetensors'));
    try {
      const same: [string, string][] = [
        ['tok_embeddings.weight', 'model.embed_tokens.weight'],
        ['output.weight', 'model.embed_tokens.weight'], // tied: Meta keeps a copy
        ['norm.weight', 'model.norm.weight'],
      ];
      for (let l = 0; l < params.n_layers; l++) {
        const p = `model.layers.${l}`;
        same.push(
          [`layers.${l}.attention.wv.weight`, `${p}.self_attn.v_proj.weight`],
          [`layers.${l}.attention.wo.weight`, `${p}.self_attn.o_proj.weight`],
          [`layers.${l}.feed_forward.w1.weight`, `${p}.mlp.gate_proj.weight`],
          [`layers.${l}.feed_forward.w2.weight`, `${p}.mlp.down_proj.weight`],
          [`layers.${l}.feed_forward.w3.weight`, `${p}.mlp.up_proj.weight`],
          [`layers.${l}.attention_norm.weight`, `${p}.input_layernorm.weight`],
          [`layers.${l}.ffn_norm.weight`, `${p}.post_attention_layernorm.weight`],
        );
      }
      for (const [meta, hfName] of same) {
        expect(Buffer.from(await pth.read(meta)).equals(await hf.read(hfName)), `${meta} == ${hfName}`).toBe(
          true,
        );
      }
      for (let l = 0; l < params.n_layers; l++) {
        for (const [w, proj, heads] of [
          ['wq', 'q_proj', params.n_heads],
          ['wk', 'k_proj', params.n_kv_heads],
        ] as const) {
          const meta = u16(await pth.read(`layers.${l}.attention.${w}.weight`));
          const want = u16(await hf.read(`model.layers.${l}.self_attn.${proj}.weight`));
          // Not equal as stored (different RoPE layouts), equal after the permutation.
          expect(Buffer.from(meta.buffer).equals(Buffer.from(want.buffer)), `${w} differs before`).toBe(
            false,
          );
          expect(metaToHf(meta, heads, headDim, params.dim), `layer ${l} ${w}`).toEqual(want);
        }
      }
    } finally {
      await pth.close();
      await hf.close();
    }
  });
});
