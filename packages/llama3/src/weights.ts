/**
 * The model's parameters, by role, and the tensor names and shapes a checkpoint must provide for a config.
 * @module
 */
import { type Device, type DType, empty, type Tensor } from '@proj/core';
import { emptyLinearWeight, writeRows } from '@proj/ops';
import type { LlamaConfig } from './config.js';

/**
 * One transformer block's parameters (checkpoint layout: linear weights are `[out, in]`). The q, k and v
 * projections are stacked into one weight, and so are the gate and up projections, so each group is one
 * matmul that reads the input once: `wqkv = [wq; wk; wv]`, `wGateUp = [w_gate; w_up]` (rows).
 */
export interface LayerWeights {
  /** RMSNorm weight before attention `[hidden]`. */
  readonly attentionNorm: Tensor;
  /**
   * q, k and v projections stacked by rows: `[(heads + 2 * kvHeads) * headDim, hidden]`; rows
   * `[0, heads*headDim)` are wq, then wk, then wv (q and k rows in half-split RoPE order within each head).
   */
  readonly wqkv: Tensor;
  /** Attention output projection `[hidden, heads * headDim]`. */
  readonly wo: Tensor;
  /** RMSNorm weight before the feed-forward network `[hidden]`. */
  readonly ffnNorm: Tensor;
  /** SwiGLU gate (`w1`) and up (`w3`) projections stacked by rows: `[2 * intermediate, hidden]`. */
  readonly wGateUp: Tensor;
  /** SwiGLU down projection (`w2`) `[hidden, intermediate]`. */
  readonly wDown: Tensor;
}

/** The checkpoint's separate projections, and which stacked weight each goes into, in order. */
export const STACKED_WEIGHTS = {
  wqkv: ['wq', 'wk', 'wv'],
  wGateUp: ['wGate', 'wUp'],
} as const;

/** A weight as a checkpoint stores it: the stacked ones' parts appear separately. */
export type CheckpointRole =
  | Exclude<keyof LayerWeights, keyof typeof STACKED_WEIGHTS>
  | (typeof STACKED_WEIGHTS)[keyof typeof STACKED_WEIGHTS][number];

/** All parameters of a Llama model. */
export interface LlamaWeights {
  /** Token embedding `[vocab, hidden]`. */
  readonly embedding: Tensor;
  /** The transformer blocks. */
  readonly layers: readonly LayerWeights[];
  /** Final RMSNorm weight `[hidden]`. */
  readonly norm: Tensor;
  /** Output head `[vocab, hidden]`; the same tensor as `embedding` when the embeddings are tied. */
  readonly output: Tensor;
}

/** Where a parameter goes: the layer (or -1 for the model-level ones) and its role. */
export interface WeightSlot {
  /** Layer index, or -1 for `embedding`, `norm` and `output`. */
  readonly layer: number;
  /** Role within the layer or model, as the checkpoint stores it. */
  readonly role: CheckpointRole | 'embedding' | 'norm' | 'output';
  /** Shape the config implies. */
  readonly shape: readonly number[];
}

/** The HF tensor name of every parameter the config implies, with its slot. */
export function expectedHfTensors(config: LlamaConfig): Map<string, WeightSlot> {
  const { hiddenSize: d, heads, kvHeads, headDim, intermediateSize: f, vocabSize: v } = config;
  const out = new Map<string, WeightSlot>();
  out.set('model.embed_tokens.weight', { layer: -1, role: 'embedding', shape: [v, d] });
  for (let i = 0; i < config.layers; i++) {
    const p = `model.layers.${i}.`;
    const add = (name: string, role: CheckpointRole, shape: number[]) =>
      out.set(p + name, { layer: i, role, shape });
    add('input_layernorm.weight', 'attentionNorm', [d]);
    add('self_attn.q_proj.weight', 'wq', [heads * headDim, d]);
    add('self_attn.k_proj.weight', 'wk', [kvHeads * headDim, d]);
    add('self_attn.v_proj.weight', 'wv', [kvHeads * headDim, d]);
    add('self_attn.o_proj.weight', 'wo', [d, heads * headDim]);
    add('post_attention_layernorm.weight', 'ffnNorm', [d]);
    add('mlp.gate_proj.weight', 'wGate', [f, d]);
    add('mlp.up_proj.weight', 'wUp', [f, d]);
    add('mlp.down_proj.weight', 'wDown', [d, f]);
  }
  out.set('model.norm.weight', { layer: -1, role: 'norm', shape: [d] });
  if (!config.tieWordEmbeddings) out.set('lm_head.weight', { layer: -1, role: 'output', shape: [v, d] });
  return out;
}

/** Meta's name for each HF name (`model.layers.3.self_attn.q_proj.weight` -> `layers.3.attention.wq.weight`). */
export function metaName(hfName: string): string {
  const fixed: Record<string, string> = {
    'model.embed_tokens.weight': 'tok_embeddings.weight',
    'model.norm.weight': 'norm.weight',
    'lm_head.weight': 'output.weight',
  };
  if (fixed[hfName]) return fixed[hfName];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hfName);
  if (!m) throw new Error(`no Meta name for ${hfName}`);
  const roles: Record<string, string> = {
    'input_layernorm.weight': 'attention_norm.weight',
    'self_attn.q_proj.weight': 'attention.wq.weight',
    'self_attn.k_proj.weight': 'attention.wk.weight',
    'self_attn.v_proj.weight': 'attention.wv.weight',
    'self_attn.o_proj.weight': 'attention.wo.weight',
    'post_attention_layernorm.weight': 'ffn_norm.weight',
    'mlp.gate_proj.weight': 'feed_forward.w1.weight',
    'mlp.up_proj.weight': 'feed_forward.w3.weight',
    'mlp.down_proj.weight': 'feed_forward.w2.weight',
  };
  return `layers.${m[1]}.${roles[m[2]!]}`;
}

/** Frees every parameter (the tied output head is the embedding, freed once). */
export function disposeWeights(weights: LlamaWeights): void {
  const all = new Set<Tensor>([weights.embedding, weights.norm, weights.output]);
  for (const layer of weights.layers) for (const t of Object.values(layer)) all.add(t);
  for (const t of all) t.dispose();
}

/** Where checkpoint tensor `role` goes inside its stacked weight: first row, and the stacked weight's rows. */
function stackedPlace(
  config: LlamaConfig,
  role: CheckpointRole,
): { stacked: keyof LayerWeights; row: number; rows: number } | undefined {
  const { heads, kvHeads, headDim, intermediateSize: f } = config;
  const rows: Record<string, number> = {
    wq: heads * headDim,
    wk: kvHeads * headDim,
    wv: kvHeads * headDim,
    wGate: f,
    wUp: f,
  };
  for (const [stacked, parts] of Object.entries(STACKED_WEIGHTS)) {
    const at = (parts as readonly string[]).indexOf(role);
    if (at < 0) continue;
    const row = parts.slice(0, at).reduce((n, p) => n + rows[p]!, 0);
    return { stacked: stacked as keyof LayerWeights, row, rows: parts.reduce((n, p) => n + rows[p]!, 0) };
  }
  return undefined;
}

/**
 * Builds {@link LlamaWeights} on a device from checkpoint tensors that arrive one at a time, in whole or in
 * chunks of rows: {@link WeightAssembler.place} says where a checkpoint tensor's rows go (the stacked
 * q/k/v and gate/up weights are allocated once and filled part by part), so nothing is held on the host
 * longer than one chunk and nothing is copied twice on the device. The matrices (and the embedding, which
 * may be the output head) are allocated in the layout `linear` reads fastest on the device
 * (`emptyLinearWeight`: packed on software drivers), and `writeRows` lays the rows out as they arrive.
 */
export class WeightAssembler {
  readonly #model: Partial<Record<'embedding' | 'norm' | 'output', Tensor>> = {};
  readonly #layers: Partial<Record<keyof LayerWeights, Tensor>>[];
  readonly #created: Tensor[] = [];

  /** Weights for `config`, allocated on `device`. */
  constructor(
    private readonly config: LlamaConfig,
    private readonly device: Device,
  ) {
    this.#layers = Array.from({ length: config.layers }, () => ({}));
  }

  /** The weight that checkpoint tensor `slot` is written into, and the row where its first row goes. */
  place(slot: WeightSlot, dtype: DType): { weight: Tensor; firstRow: number } {
    const alloc = (shape: readonly number[]) => {
      const t =
        shape.length === 2 ? emptyLinearWeight(shape, dtype, this.device) : empty(shape, dtype, this.device);
      this.#created.push(t);
      return t;
    };
    if (slot.layer < 0) {
      return { weight: (this.#model[slot.role as 'embedding'] = alloc(slot.shape)), firstRow: 0 };
    }
    const layer = this.#layers[slot.layer]!;
    const stacked = stackedPlace(this.config, slot.role as CheckpointRole);
    if (!stacked) {
      return { weight: (layer[slot.role as keyof LayerWeights] = alloc(slot.shape)), firstRow: 0 };
    }
    const t = (layer[stacked.stacked] ??= alloc([stacked.rows, slot.shape[1]!]));
    if (t.dtype !== dtype) {
      throw new Error(
        `layer ${slot.layer}: ${slot.role} is ${dtype} but the other parts of ${stacked.stacked} are ${t.dtype}`,
      );
    }
    return { weight: t, firstRow: stacked.row };
  }

  /** Adds a whole checkpoint tensor. */
  add(slot: WeightSlot, bytes: Uint8Array, dtype: DType): void {
    const { weight, firstRow } = this.place(slot, dtype);
    writeRows(weight, firstRow, bytes);
  }

  /** The weights, once every tensor was added (throws naming what is missing). */
  weights(): LlamaWeights {
    const roles: (keyof LayerWeights)[] = ['attentionNorm', 'wqkv', 'wo', 'ffnNorm', 'wGateUp', 'wDown'];
    for (const [i, layer] of this.#layers.entries()) {
      for (const role of roles) if (!layer[role]) throw new Error(`weights: layer ${i} has no ${role}`);
    }
    if (!this.#model.embedding || !this.#model.norm) throw new Error('weights: no embedding or final norm');
    return {
      embedding: this.#model.embedding,
      layers: this.#layers as LayerWeights[],
      norm: this.#model.norm,
      output: this.#model.output ?? this.#model.embedding,
    };
  }

  /** Frees everything allocated so far (after a failed load). */
  dispose(): void {
    for (const t of this.#created) t.dispose();
  }
}
