/**
 * The Llama 3 forward pass taken apart into the steps of the from-scratch tutorials, each written with the
 * public ops of `@proj/ops` on the model's own weights (`model.weights`), each narrating its shapes.
 * `block` and `forward` put the same pieces back together; the walkthrough checks that they give the
 * logits of `Llama.forward`.
 *
 * Shapes: S = tokens, D = hidden size, Hq / Hkv = query / key-value heads, Dh = head size,
 * F = feed-forward width, V = vocabulary.
 */
import { type Device, formatShape as fmt, scope, type Tensor, tensor } from '@proj/core';
import { type Llama, ropeInverseFrequencies } from '@proj/llama3';
import {
  add,
  attention,
  embedding,
  type KvCache,
  linear,
  narrow,
  type RopeTables,
  rmsnorm,
  rope,
  ropeTables,
  scale,
  softmax,
  swiglu,
  transpose,
} from '@proj/ops';
import { type Narrator, silent } from './narrate.js';

/** What every step needs: the model, RoPE tables for the positions the tour visits, and a narrator. */
export interface Tour {
  /** The model whose weights the steps use. */
  readonly model: Llama;
  /** cos/sin of every position the tour visits (prompt and decoded tokens). */
  readonly tables: RopeTables;
  /** Where the steps report. */
  readonly log: Narrator;
}

/** A tour of `model` that may visit `positions` positions. Dispose with {@link disposeTour}. */
export function createTour(model: Llama, positions: number, log: Narrator = silent): Tour {
  const tables = ropeTables(ropeInverseFrequencies(model.config), positions, model.device);
  return { model, tables, log };
}

/** Frees the tour's RoPE tables (the model is the caller's). */
export function disposeTour(tour: Tour): void {
  tour.tables.cos.dispose();
  tour.tables.sin.dispose();
}

/** The token ids as a tensor, then their rows of the embedding table: `[S] -> [S, D]`. */
export function embed(tour: Tour, ids: readonly number[]): Tensor {
  const { model, log } = tour;
  return scope(() => {
    const tokens = tensor(ids, [ids.length], { dtype: 'i32', device: model.device }); // [S]
    const x = embedding(tokens, model.weights.embedding); // [S] -> [S, D]
    log.step({
      key: 'embed',
      title: 'token embeddings',
      input: tokens.shape,
      output: x.shape,
      why: `each id picks its row of the embedding table ${fmt(model.weights.embedding.shape)}: one vector of D = ${model.config.hiddenSize} per token`,
    });
    return x;
  });
}

/** RMSNorm before layer `i`'s attention: `[S, D] -> [S, D]`. */
export function attentionNorm(tour: Tour, i: number, x: Tensor): Tensor {
  const { config, weights } = tour.model;
  const h = rmsnorm(x, weights.layers[i]!.attentionNorm, config.rmsNormEps);
  tour.log.step({
    key: 'attn_norm',
    title: `RMSNorm (layer ${i}, before attention)`,
    input: x.shape,
    output: h.shape,
    why: 'x / sqrt(mean(x^2) + eps) * weight: every row gets RMS 1 (then a learned gain), so no token dominates by size',
  });
  return h;
}

/** One attention head computed by hand, every intermediate kept for printing and pictures. */
export interface HeadAttention {
  /** The query head. */
  readonly head: number;
  /** The key/value head it reads (grouped-query attention). */
  readonly kvHead: number;
  /** Query before RoPE `[S, Dh]`. */
  readonly q: Tensor;
  /** Query after RoPE `[S, Dh]`. */
  readonly qRot: Tensor;
  /** Key after RoPE `[S, Dh]`. */
  readonly kRot: Tensor;
  /** Values `[S, Dh]`. */
  readonly v: Tensor;
  /** Scaled (and, when causal, masked) scores `[S, S]`. */
  readonly scores: Tensor;
  /** Attention weights, each row sums to 1 `[S, S]`. */
  readonly probs: Tensor;
  /** The head's output `[S, Dh]`. */
  readonly out: Tensor;
}

/** Frees the tensors of a {@link HeadAttention}. */
export function disposeHead(head: HeadAttention): void {
  for (const t of [head.q, head.qRot, head.kRot, head.v, head.scores, head.probs, head.out]) t.dispose();
}

/** `-Infinity` above the diagonal: query row i may not see key j > i. `[S, S]`. */
export function causalMask(S: number, device: Device): Tensor {
  const mask = new Float32Array(S * S);
  for (let i = 0; i < S; i++) for (let j = i + 1; j < S; j++) mask[i * S + j] = Number.NEGATIVE_INFINITY;
  return tensor(mask, [S, S], { device });
}

/**
 * Query head `head` of layer `i` by hand, from the normed input `h [S, D]`: slice the head's rows out of
 * wq/wk/wv, project, rotate, score, mask, softmax, mix the values. `causal: false` skips the mask.
 */
export function headAttention(
  tour: Tour,
  i: number,
  head: number,
  h: Tensor,
  causal = true,
  log: Narrator = tour.log,
): HeadAttention {
  const { config: c, weights, device } = tour.model;
  const w = weights.layers[i]!;
  const S = h.shape[0]!;
  const Dh = c.headDim;
  const kvHead = Math.floor(head / (c.heads / c.kvHeads));
  // The checkpoint's wq, wk and wv are stacked by rows in w.wqkv: [(Hq + 2 Hkv) * Dh, D].
  const qRows = head * Dh;
  const kRows = c.heads * Dh + kvHead * Dh;
  const vRows = (c.heads + c.kvHeads) * Dh + kvHead * Dh;
  return scope(() => {
    const wq = narrow(w.wqkv, 0, qRows, Dh); // this head's rows: [(Hq + 2 Hkv) * Dh, D] -> [Dh, D]
    const q = linear(h, wq); // [S, D] @ [Dh, D]^T -> [S, Dh]
    const k = linear(h, narrow(w.wqkv, 0, kRows, Dh)); // [S, Dh]
    const v = linear(h, narrow(w.wqkv, 0, vRows, Dh)); // [S, Dh]
    const stacked = `of the stacked wq|wk|wv ${fmt(w.wqkv.shape)}`;
    log.step({
      key: 'q_head',
      title: `q of head ${head} (layer ${i})`,
      input: h.shape,
      output: q.shape,
      why: `rows [${qRows}, ${qRows + Dh}) ${stacked} are head ${head}'s query projection ${fmt(wq.shape)}: what each token is looking for`,
    });
    log.step({
      key: 'k_head',
      title: `k of kv head ${kvHead}`,
      input: h.shape,
      output: k.shape,
      why: `rows [${kRows}, ${kRows + Dh}) (in wk): what each token offers to be found by (GQA: query head ${head} reads kv head ${kvHead})`,
    });
    log.step({
      key: 'v_head',
      title: `v of kv head ${kvHead}`,
      input: h.shape,
      output: v.shape,
      why: `rows [${vRows}, ${vRows + Dh}) (in wv): what each token hands over once it is attended to`,
    });
    // RoPE works on [S, heads, Dh]: one head is [S, 1, Dh].
    const qRot = rope(q.reshape([S, 1, Dh]), tour.tables).reshape([S, Dh]);
    const kRot = rope(k.reshape([S, 1, Dh]), tour.tables).reshape([S, Dh]);
    log.step({
      key: 'rope',
      title: 'RoPE on q and k',
      input: q.shape,
      output: qRot.shape,
      why: `each pair of dims (j, j + ${Dh / 2}) (HF's half-split pairing) turns by the angle position * invFreq[j]; q.k then depends on how far apart two tokens are, not on where they are`,
    });
    // linear(a, b) is a @ b^T, so linear(q, k) is q k^T.
    const raw = scale(linear(qRot, kRot), 1 / Math.sqrt(Dh)); // [S, Dh] @ [S, Dh]^T -> [S, S]
    log.step({
      key: 'scores',
      title: 'scores q k^T / sqrt(Dh)',
      input: qRot.shape,
      output: raw.shape,
      why: `row = query position, column = key position; dividing by sqrt(${Dh}) keeps the softmax from saturating as Dh grows`,
    });
    const scores = causal ? add(raw, causalMask(S, device)) : raw;
    log.step({
      key: 'mask',
      title: causal ? 'causal mask' : 'NO mask (experiment)',
      input: raw.shape,
      output: scores.shape,
      why: causal
        ? '-inf above the diagonal: a token may look at itself and earlier tokens, never at later ones'
        : 'the scores are left as they are: every token sees the whole sequence, future included',
    });
    const probs = softmax(scores); // [S, S]
    log.step({
      key: 'softmax',
      title: 'softmax over the keys',
      input: scores.shape,
      output: probs.shape,
      why: 'each row becomes weights that sum to 1 (exp(-inf) = 0: masked keys get none)',
    });
    const out = linear(probs, transpose(v)); // [S, S] @ ([S, Dh]^T)^T = [S, S] @ [S, Dh] -> [S, Dh]
    log.step({
      key: 'head_out',
      title: `output of head ${head}`,
      input: probs.shape,
      output: out.shape,
      why: 'weights @ v: each token gets the weighted mix of the values of the tokens it attends to',
    });
    return { head, kvHead, q, qRot, kRot, v, scores, probs, out };
  });
}

/** Options of the steps that attend: where the rows sit, and whether keys come from a KV cache. */
export interface AttendOptions {
  /** Position of the first row (the number of tokens already cached). */
  offset: number;
  /** Layer `i`'s KV cache: the new keys/values are appended and attention reads every cached row. */
  cache?: KvCache | undefined;
  /** False to drop the causal mask (the experiment). Default true. */
  causal?: boolean;
}

/** Every head of layer `i` at once, with the `attention` op: `h [S, D] -> [S, Hq, Dh]`. */
export function allHeads(tour: Tour, i: number, h: Tensor, options: AttendOptions): Tensor {
  const { config: c, weights } = tour.model;
  const { offset, cache, causal = true } = options;
  const w = weights.layers[i]!;
  const [S, Hq, Hkv, Dh] = [h.shape[0]!, c.heads, c.kvHeads, c.headDim];
  return scope(() => {
    const qkv = linear(h, w.wqkv); // one matmul for all three: [S, D] -> [S, (Hq + 2 Hkv) * Dh]
    const part = (first: number, heads: number) =>
      narrow(qkv, 1, first * Dh, heads * Dh).reshape([S, heads, Dh]); // columns of q, k or v, per head
    const q = rope(part(0, Hq), tour.tables, { offset }); // [S, Hq, Dh]
    const k = rope(part(Hq, Hkv), tour.tables, { offset }); // [S, Hkv, Dh]
    const v = part(Hq + Hkv, Hkv); // [S, Hkv, Dh]
    tour.log.step({
      key: 'qkv_all',
      title: 'q, k, v of all heads',
      input: h.shape,
      output: q.shape,
      why: `one linear with the stacked weight ${fmt(w.wqkv.shape)}, split into q ${fmt(q.shape)}, k and v ${fmt(k.shape)} (${Hkv} kv heads for ${Hq} query heads); RoPE on q and k`,
    });
    let a: Tensor;
    if (cache) {
      cache.append(k, v); // rows [offset, offset + S) of the cache
      a = attention(q, cache.k, cache.v, { offset, length: cache.length, causal });
    } else {
      a = attention(q, k, v, { offset, causal });
    }
    tour.log.step({
      key: 'attention',
      title: 'attention op, all heads (GQA)',
      input: q.shape,
      output: a.shape,
      why: `softmax(q k^T / sqrt(Dh) + mask) v for every head in one call; query head h reads kv head h / ${Hq / Hkv}`,
    });
    return a;
  });
}

/** The output projection and the residual: `x + a Wo^T`, `[S, Hq, Dh] -> [S, D]`. */
export function attentionResidual(tour: Tour, i: number, x: Tensor, a: Tensor): Tensor {
  const { weights } = tour.model;
  const S = x.shape[0]!;
  return scope(() => {
    const flat = a.reshape([S, a.numel / S]); // heads side by side: [S, Hq*Dh]
    const o = linear(flat, weights.layers[i]!.wo); // [S, Hq*Dh] @ [D, Hq*Dh]^T -> [S, D]
    tour.log.step({
      key: 'wo',
      title: 'output projection wo',
      input: flat.shape,
      output: o.shape,
      why: 'the heads, concatenated, are mixed back into the residual stream width D',
    });
    const r = add(x, o);
    tour.log.step({
      key: 'residual',
      title: 'residual: x + attention',
      input: o.shape,
      output: r.shape,
      why: 'attention adds to the stream instead of replacing it, so every layer can refine what came before',
    });
    return r;
  });
}

/** The feed-forward half of layer `i`: `r + down(silu(gate(n)) * up(n))` with `n = RMSNorm(r)`. */
export function feedForward(tour: Tour, i: number, r: Tensor): Tensor {
  const { config: c, weights } = tour.model;
  const w = weights.layers[i]!;
  const log = tour.log;
  return scope(() => {
    const n = rmsnorm(r, w.ffnNorm, c.rmsNormEps); // [S, D]
    log.step({
      key: 'ffn_norm',
      title: 'RMSNorm (before the feed-forward)',
      input: r.shape,
      output: n.shape,
      why: 'the second norm of the block, with its own weight',
    });
    const F = c.intermediateSize;
    const gateUp = linear(n, w.wGateUp); // gate and up stacked: [S, D] -> [S, 2F]
    const g = swiglu(narrow(gateUp, 1, 0, F), narrow(gateUp, 1, F, F)); // [S, F]
    log.step({
      key: 'swiglu',
      title: 'SwiGLU: silu(x w1^T) * (x w3^T)',
      input: n.shape,
      output: g.shape,
      why: `one linear with w1|w3 stacked ${fmt(w.wGateUp.shape)} gives [S, ${2 * F}]; the silu of the first ${F} columns (gate) decides how much of each of the last ${F} (up) passes`,
    });
    const down = linear(g, w.wDown); // [S, F] -> [S, D]
    log.step({
      key: 'ffn_down',
      title: 'down projection w2',
      input: g.shape,
      output: down.shape,
      why: 'back to the stream width D',
    });
    const out = add(r, down);
    log.step({
      key: 'ffn_residual',
      title: 'residual: r + feed-forward',
      input: down.shape,
      output: out.shape,
      why: `the output of layer ${i}, the input of the next one`,
    });
    return out;
  });
}

/** A whole transformer block: `x + Attention(RMSNorm(x))`, then `+ SwiGLU(RMSNorm(.))`. */
export function block(tour: Tour, i: number, x: Tensor, options: AttendOptions): Tensor {
  return scope(() => {
    const h = attentionNorm(tour, i, x);
    const r = attentionResidual(tour, i, x, allHeads(tour, i, h, options));
    return feedForward(tour, i, r);
  });
}

/** The final RMSNorm and the output head: `[S, D] -> [S, V]`. */
export function logitsOf(tour: Tour, x: Tensor): Tensor {
  const { config: c, weights } = tour.model;
  return scope(() => {
    const h = rmsnorm(x, weights.norm, c.rmsNormEps);
    tour.log.step({
      key: 'final_norm',
      title: 'final RMSNorm',
      input: x.shape,
      output: h.shape,
      why: 'one last normalisation of the stream before reading it out',
    });
    const logits = linear(h, weights.output); // [S, D] @ [V, D]^T -> [S, V]
    tour.log.step({
      key: 'logits',
      title: 'logits = h Wout^T',
      input: h.shape,
      output: logits.shape,
      why: `a score for each of the V = ${c.vocabSize} tokens at every position${c.tieWordEmbeddings ? ' (tied: Wout is the embedding table)' : ''}`,
    });
    return logits;
  });
}

/**
 * The whole forward pass from these pieces: `ids [S]` -> logits `[S, V]`. With `caches` (one per layer),
 * the new tokens' keys and values are appended and attention reads every cached position.
 */
export function forward(
  tour: Tour,
  ids: readonly number[],
  options: { offset?: number; caches?: readonly KvCache[]; causal?: boolean } = {},
): Tensor {
  const { offset = 0, caches, causal } = options;
  let x = embed(tour, ids);
  for (let i = 0; i < tour.model.config.layers; i++) {
    const next = block(tour, i, x, { offset, cache: caches?.[i], causal });
    x.dispose();
    x = next;
  }
  const logits = logitsOf(tour, x);
  x.dispose();
  return logits;
}
