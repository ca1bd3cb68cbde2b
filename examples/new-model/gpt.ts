/**
 * A GPT-2-style decoder written on the same op set as Llama 3, to show the ops are not Llama-shaped:
 *
 *   x = tokenEmbedding[ids] + positionEmbedding[positions]          (learned positions, no RoPE)
 *   for each block:  x = x + proj(Attention(LN1(x)));  x = x + out(GELU(fc(LN2(x))))
 *   logits = LNf(x) @ tokenEmbedding^T                              (tied output head)
 *
 * LayerNorm has a bias, every linear has a bias, attention is causal multi-head (kv heads = heads).
 * Shapes: S = tokens in this call, D = width, H = heads, Dh = D / H, M = MLP width, V = vocabulary.
 */
import { type Device, scope, type Tensor, tensor } from '@proj/core';
// Until `@proj/ops` exports it: the op file itself.
import { add, attention, createKvCaches, embedding, gelu, type KvCache, layernorm, linear } from '@proj/ops';

/** The sizes of a GPT-2-style model. Literal types (`as const`) make the weights' shapes compiler-checked. */
export interface GptConfig {
  /** Token ids (256: one per byte). */
  readonly vocab: number;
  /** Positions the learned position table covers (the longest sequence). */
  readonly context: number;
  /** Width of the residual stream. */
  readonly dim: number;
  /** Attention heads; each is dim / heads wide. */
  readonly heads: number;
  /** Hidden width of the MLP (4 * dim in GPT-2). */
  readonly mlp: number;
  /** Number of blocks. */
  readonly layers: number;
  /** LayerNorm's epsilon. */
  readonly eps: number;
}

/** A small byte-level model: 2 blocks of width 64, 4 heads of 16. */
export const TINY_GPT = {
  vocab: 256,
  context: 64,
  dim: 64,
  heads: 4,
  mlp: 256,
  layers: 2,
  eps: 1e-5,
} as const satisfies GptConfig;

/** A linear layer with a bias: `x W^T + b`, W stored `[Out, In]` as checkpoints do. */
export interface Linear<Out extends number, In extends number> {
  /** `[Out, In]`. */
  readonly weight: Tensor<readonly [Out, In]>;
  /** `[Out]`. */
  readonly bias: Tensor<readonly [Out]>;
}

/** LayerNorm's gain and bias, `[D]` each. */
export interface Norm<D extends number> {
  /** Multiplies the normalised values. */
  readonly weight: Tensor<readonly [D]>;
  /** Added last. */
  readonly bias: Tensor<readonly [D]>;
}

/** One block's parameters. */
export interface GptBlock<C extends GptConfig> {
  /** LayerNorm before attention. */
  readonly ln1: Norm<C['dim']>;
  /** Query projection (all heads side by side). */
  readonly q: Linear<C['dim'], C['dim']>;
  /** Key projection. */
  readonly k: Linear<C['dim'], C['dim']>;
  /** Value projection. */
  readonly v: Linear<C['dim'], C['dim']>;
  /** Mixes the heads' outputs back into the stream. */
  readonly proj: Linear<C['dim'], C['dim']>;
  /** LayerNorm before the MLP. */
  readonly ln2: Norm<C['dim']>;
  /** MLP up projection, `[M, D]`. */
  readonly fc: Linear<C['mlp'], C['dim']>;
  /** MLP down projection, `[D, M]`. */
  readonly out: Linear<C['dim'], C['mlp']>;
}

/** All parameters. The output head is `tokens` itself (tied), so it has no weight of its own. */
export interface GptWeights<C extends GptConfig> {
  /** Token embedding `[V, D]`, also the output head. */
  readonly tokens: Tensor<readonly [C['vocab'], C['dim']]>;
  /** Learned position embedding `[context, D]`. */
  readonly positions: Tensor<readonly [C['context'], C['dim']]>;
  /** The blocks. */
  readonly blocks: readonly GptBlock<C>[];
  /** The final LayerNorm. */
  readonly lnF: Norm<C['dim']>;
}

/** Receives `what: [in] -> [out]` lines for the first block (main prints them). */
export type ShapeLog = (what: string, input: readonly number[], output: readonly number[]) => void;

/** `x W^T + b`: `[S, In] -> [S, Out]`. */
function affine(x: Tensor, layer: Linear<number, number>): Tensor {
  return add(linear(x, layer.weight), layer.bias);
}

/** A GPT-2-style model on a device. */
export class Gpt {
  constructor(
    readonly config: GptConfig,
    readonly weights: GptWeights<GptConfig>,
    readonly device: Device,
  ) {}

  /** One KV cache per block for up to `maxSeq` positions (at most the context). */
  createCache(maxSeq: number = this.config.context): KvCache[] {
    const { heads, dim, layers, context } = this.config;
    if (maxSeq > context)
      throw new Error(`createCache: ${maxSeq} positions is over the context of ${context}`);
    return createKvCaches(this.device, { layers, maxSeq, kvHeads: heads, headDim: dim / heads });
  }

  /**
   * Logits `[S, V]` for `ids` at positions `[offset, offset + S)`, where `offset` is what `caches` already
   * hold (0 without caches). With caches, the new keys and values are appended and attention reads all
   * cached positions; without, attention sees just these tokens.
   */
  forward(ids: readonly number[], caches?: readonly KvCache[], log?: ShapeLog): Tensor {
    const { vocab, context } = this.config;
    const S = ids.length;
    const offset = caches?.[0]?.length ?? 0;
    if (S === 0 || offset + S > context) {
      throw new Error(
        `forward: positions ${offset} to ${offset + S - 1} are outside the ${context}-position table`,
      );
    }
    if (ids.some((id) => !Number.isInteger(id) || id < 0 || id >= vocab)) {
      throw new Error(`forward: token ids must be in [0, ${vocab})`);
    }
    let x: Tensor = scope(() => {
      const w = this.weights;
      const at = (values: number[]) => tensor(values, [S], { dtype: 'i32', device: this.device });
      const tok = embedding(at([...ids]), w.tokens); // [S] -> [S, D]
      const pos = embedding(at(ids.map((_, s) => offset + s)), w.positions); // [S] -> [S, D]
      log?.('token + position embeddings', [S], tok.shape);
      return add(tok, pos);
    });
    for (const [i, block] of this.weights.blocks.entries()) {
      const next = scope(() => this.#block(x, block, caches?.[i], i === 0 ? log : undefined));
      x.dispose();
      x = next;
    }
    return scope(() => {
      const { lnF, tokens } = this.weights;
      const h = layernorm(x, lnF.weight, lnF.bias, this.config.eps); // [S, D]
      const logits = linear(h, tokens); // tied: [S, D] @ [V, D]^T -> [S, V]
      log?.('final LayerNorm, tied head', h.shape, logits.shape);
      x.dispose();
      return logits;
    });
  }

  /** `x + proj(attention(LN1(x)))`, then `+ out(gelu(fc(LN2(.))))`. */
  #block(x: Tensor, w: GptBlock<GptConfig>, cache: KvCache | undefined, log?: ShapeLog): Tensor {
    const { heads: H, dim: D, eps } = this.config;
    const S = x.shape[0]!;
    const h = layernorm(x, w.ln1.weight, w.ln1.bias, eps); // [S, D]
    const q = affine(h, w.q).reshape([S, H, D / H]); // [S, D] -> [S, H, Dh]
    const k = affine(h, w.k).reshape([S, H, D / H]);
    const v = affine(h, w.v).reshape([S, H, D / H]);
    let a: Tensor;
    if (cache) {
      cache.append(k, v); // rows [offset, offset + S)
      a = cache.attend(q); // [S, H, Dh] over every cached row, causal
    } else {
      a = attention(q, k, v, { offset: 0 }); // kv heads = heads: plain multi-head attention
    }
    const r = add(x, affine(a.reshape([S, D]), w.proj)); // [S, D]
    const n = layernorm(r, w.ln2.weight, w.ln2.bias, eps);
    const up = gelu(affine(n, w.fc)); // [S, D] -> [S, M]
    const out = add(r, affine(up, w.out)); // [S, M] -> [S, D]
    if (log) {
      log('LayerNorm 1', x.shape, h.shape);
      log('q (k, v alike), split into heads', h.shape, q.shape);
      log('causal multi-head attention', q.shape, a.shape);
      log('proj + residual', [S, D], r.shape);
      log('LayerNorm 2, fc, GELU', r.shape, up.shape);
      log('out + residual', up.shape, out.shape);
    }
    return out;
  }

  /** Frees the weights. */
  dispose(): void {
    const { tokens, positions, blocks, lnF } = this.weights;
    const all: Tensor[] = [tokens, positions, lnF.weight, lnF.bias];
    for (const b of blocks) {
      for (const part of [b.ln1, b.q, b.k, b.v, b.proj, b.ln2, b.fc, b.out]) all.push(part.weight, part.bias);
    }
    for (const t of all) t.dispose();
  }
}
