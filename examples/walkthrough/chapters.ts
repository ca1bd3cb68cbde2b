/**
 * The narrated forward pass: the prompt through layer 0 step by step (one head by hand, then all heads with
 * the `attention` op), the other layers one line each, then the logits and the next token. Values are read
 * back between the steps so the commentary can quote them.
 */
import { formatShape, scope, type Tensor } from '@proj/core';
import { argmax, narrow, sampleReference, samplingSettings, topk } from '@proj/ops';
import { silent } from './narrate.js';
import { floats, maxAbsDiff, num, row } from './numbers.js';
import { piece, type TokenText } from './text.js';
import {
  allHeads,
  attentionNorm,
  attentionResidual,
  block,
  disposeHead,
  embed,
  feedForward,
  headAttention,
  logitsOf,
  type Tour,
} from './tour.js';

/** Which head's attention map to draw. */
export interface Pick {
  /** Layer index. */
  layer: number;
  /** Query head index. */
  head: number;
}

/** What the narrated pass leaves for the checks, the experiments and the pictures. */
export interface NarratedPass {
  /** The prompt's ids. */
  ids: number[];
  /** The tour's logits `[S, V]` (the caller disposes them). */
  logits: Tensor;
  /** Head 0 of layer 0 by hand: attention weights `[S, S]` and output `[S, Dh]`, row-major. */
  head0: { probs: Float32Array; out: Float32Array };
  /** By-hand head 0 against head 0 of the `attention` op: max |diff|. */
  head0VsOp: number;
  /** Layer 0, head 0's query before RoPE at the last position (the RoPE picture rotates it). */
  query: Float32Array;
  /** The attention weights `[S, S]` of the picked head. */
  picture: Pick & { probs: Float32Array };
  /** The greedy next token after the prompt. */
  next: number;
}

/** Prints the first rows of an `[S, S]` attention matrix. */
function printWeights(tour: Tour, probs: Float32Array, S: number, shown = 6): void {
  const n = Math.min(S, shown);
  tour.log.say(`      attention weights, first ${n} rows and columns (row = query, column = key):`);
  for (let i = 0; i < n; i++) {
    const cells = Array.from(row(probs, i, S).subarray(0, n), (v) => num(v, 2).padStart(5));
    tour.log.say(`        pos ${String(i).padStart(2)}: ${cells.join(' ')}`);
  }
}

/** Runs the prompt through the model, narrating every step of layer 0. */
export async function narratedForward(
  tour: Tour,
  text: TokenText,
  prompt: string,
  ids: number[],
  pick: Pick,
): Promise<NarratedPass> {
  const { log, model } = tour;
  const c = model.config;
  const quiet: Tour = { ...tour, log: silent };
  const S = ids.length;
  log.step({
    key: 'tokens',
    title: 'tokenize',
    input: [prompt.length],
    output: [S],
    why: `${prompt.length} characters become ${S} ids (BOS first): ${ids.map((id) => piece(text, id)).join(' ')}`,
  });

  let x = embed(tour, ids);
  const h = attentionNorm(tour, 0, x);
  const [xs, hs] = await Promise.all([floats(x), floats(h)]);
  const rms = (v: Float32Array) => Math.sqrt(v.reduce((s, e) => s + e * e, 0) / v.length);
  log.say(
    `      token 0's vector: RMS ${num(rms(row(xs, 0, c.hiddenSize)))} before, ${num(rms(row(hs, 0, c.hiddenSize)))} after (times the weight)`,
  );

  // One head by hand, then the same head out of the attention op.
  const head = headAttention(tour, 0, 0, h);
  const [probs, out, q] = await Promise.all([floats(head.probs), floats(head.out), floats(head.q)]);
  printWeights(tour, probs, S);
  log.say('      row 0 is all on itself: the first token has nothing earlier to look at');
  const a = allHeads(tour, 0, h, { offset: 0 });
  const fromOp = scope(() => narrow(a, 1, 0, 1)); // [S, Hq, Dh] -> [S, 1, Dh]
  const head0VsOp = maxAbsDiff(await floats(fromOp), out);
  fromOp.dispose();
  const group = c.heads / c.kvHeads;
  const sharing = Array.from({ length: c.kvHeads }, (_, g) => {
    const heads = Array.from({ length: group }, (_, k) => g * group + k);
    return `kv ${g} <- q ${heads.join(',')}`;
  });
  log.say(`      GQA: ${c.heads} query heads share ${c.kvHeads} kv heads (${sharing.join('; ')})`);
  log.say(`      head 0 of the op equals head 0 by hand: max |diff| ${num(head0VsOp, 7)}`);
  let picture: Float32Array | undefined;
  if (pick.layer === 0) picture = pick.head === 0 ? probs : await pictureOf(quiet, 0, pick.head, x);
  disposeHead(head);

  const r = attentionResidual(tour, 0, x, a);
  const out0 = feedForward(tour, 0, r);
  for (const t of [x, h, a, r]) t.dispose();
  x = out0;

  for (let i = 1; i < c.layers; i++) {
    if (i === pick.layer) picture = await pictureOf(quiet, i, pick.head, x);
    const next = block(quiet, i, x, { offset: 0 });
    log.step({
      key: `layer_${i}`,
      title: `layer ${i}: the same block, its own weights`,
      input: x.shape,
      output: next.shape,
      why: 'RMSNorm, attention, residual, RMSNorm, SwiGLU, residual',
    });
    x.dispose();
    x = next;
  }
  const logits = logitsOf(tour, x);
  x.dispose();

  const next = await nextToken(tour, text, logits);
  if (!picture) throw new Error(`no layer ${pick.layer} in a ${c.layers}-layer model`); // checked by the caller
  return {
    ids,
    logits,
    head0: { probs, out },
    head0VsOp,
    query: q.slice((S - 1) * c.headDim, S * c.headDim),
    picture: { ...pick, probs: picture },
    next,
  };
}

/** The attention weights of `head` in layer `i`, whose input is `x`. */
async function pictureOf(tour: Tour, i: number, head: number, x: Tensor): Promise<Float32Array> {
  const h = attentionNorm(tour, i, x);
  const parts = headAttention(tour, i, head, h, true, silent);
  const probs = await floats(parts.probs);
  h.dispose();
  disposeHead(parts);
  return probs;
}

/** The last row's top 5 and the greedy choice, and what sampling would draw instead. */
async function nextToken(tour: Tour, text: TokenText, logits: Tensor): Promise<number> {
  const S = logits.shape[0]!;
  const { last, best, values, indices } = scope(() => {
    const last = narrow(logits, 0, S - 1, 1); // [S, V] -> [1, V]
    return { last, best: argmax(last), ...topk(last, 5) };
  });
  tour.log.step({
    key: 'next_token',
    title: 'next token = argmax of the last row',
    input: [1, logits.shape[1]!],
    output: best.shape,
    why: 'only the last position predicts the token after the prompt; greedy decoding takes the highest score',
  });
  const [id, v, ix] = await Promise.all([best.toArray(), floats(values), indices.toArray()]);
  const top = Array.from(ix, (t, k) => `${piece(text, t)} ${num(v[k]!, 2)}`);
  tour.log.say(`      top 5: ${top.join(', ')}`);
  tour.log.say(`      next token: ${id[0]} ${piece(text, id[0]!)}; logits ${formatShape(logits.shape)}`);
  // generate's default samples instead: p = softmax(logits / 0.6), keep the most likely tokens holding 0.9 of
  // it, draw one of them with its probability (TokenSampler in @proj/ops, on the device).
  const settings = samplingSettings({});
  const row = await floats(last);
  const draws = Array.from({ length: 5 }, (_, draw) => sampleReference(row, settings, draw));
  tour.log.say(
    `      sampled instead (temperature 0.6, top-p 0.9): ${draws[0]!.kept} of ${row.length} tokens kept; five draws: ${draws.map((d) => piece(text, d.id)).join(', ')}`,
  );
  for (const t of [last, best, values, indices]) t.dispose();
  return id[0]!;
}
