/**
 * The model's parameters, by role, and the tensor names and shapes a checkpoint must provide for a config.
 * @module
 */
import type { Tensor } from '@proj/core';
import type { LlamaConfig } from './config.js';

/** One transformer block's parameters (checkpoint layout: linear weights are `[out, in]`). */
export interface LayerWeights {
  /** RMSNorm weight before attention `[hidden]`. */
  readonly attentionNorm: Tensor;
  /** Query projection `[heads * headDim, hidden]` (half-split RoPE order within each head). */
  readonly wq: Tensor;
  /** Key projection `[kvHeads * headDim, hidden]` (half-split RoPE order). */
  readonly wk: Tensor;
  /** Value projection `[kvHeads * headDim, hidden]`. */
  readonly wv: Tensor;
  /** Attention output projection `[hidden, heads * headDim]`. */
  readonly wo: Tensor;
  /** RMSNorm weight before the feed-forward network `[hidden]`. */
  readonly ffnNorm: Tensor;
  /** SwiGLU gate projection (`w1`) `[intermediate, hidden]`. */
  readonly wGate: Tensor;
  /** SwiGLU up projection (`w3`) `[intermediate, hidden]`. */
  readonly wUp: Tensor;
  /** SwiGLU down projection (`w2`) `[hidden, intermediate]`. */
  readonly wDown: Tensor;
}

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
  /** Role within the layer or model. */
  readonly role: keyof LayerWeights | 'embedding' | 'norm' | 'output';
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
    const add = (name: string, role: keyof LayerWeights, shape: number[]) =>
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
