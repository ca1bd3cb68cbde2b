/**
 * Generating with a KV cache: the prompt fills every layer's cache once, then each step feeds one token,
 * computes its q, k, v only, appends k and v, and attends over everything cached. The same `forward` as the
 * tour, given caches; the product (`Llama.forward` with its `LlamaCache`) must choose the same tokens.
 */
import { formatShape, scope, type Tensor } from '@proj/core';
import { argmax, KvCache, narrow } from '@proj/ops';
import { silent } from './narrate.js';
import { floats, maxAbsDiff, num } from './numbers.js';
import { piece, type TokenText } from './text.js';
import { forward, type Tour } from './tour.js';

/** What the cached decode produced and how it compares. */
export interface DecodeResult {
  /** The greedy tokens: one from the prefill, then one per step. */
  tokens: number[];
  /** Rows filled in each layer's cache after the prefill and after each step. */
  cacheLengths: number[];
  /** The tokens `Llama.forward` chose, step for step. */
  productTokens: number[];
  /** Max |diff| of the step logits against `Llama.forward`'s. */
  productDiff: number;
  /** The last step's logits against a full recompute of the whole sequence without a cache: max |diff|. */
  recomputeDiff: number;
}

async function greedy(logits: Tensor): Promise<number> {
  const best = scope(() => argmax(narrow(logits, 0, logits.shape[0]! - 1, 1))); // [1]
  const id = (await best.toArray())[0]!;
  best.dispose();
  return id;
}

/** Prefills `ids`, then runs `steps` one-token decode steps (greedy), narrating each; `steps + 1` tokens in all. */
export async function decodeWithCache(
  tour: Tour,
  text: TokenText,
  ids: readonly number[],
  steps: number,
): Promise<DecodeResult> {
  const { log, model } = tour;
  const c = model.config;
  const quiet: Tour = { ...tour, log: silent };
  const maxSeq = ids.length + steps;
  const caches = Array.from(
    { length: c.layers },
    () => new KvCache(model.device, { maxSeq, kvHeads: c.kvHeads, headDim: c.headDim }),
  );
  const product = model.createCache(maxSeq);
  const tokens: number[] = [];
  const productTokens: number[] = [];
  const cacheLengths: number[] = [];
  let productDiff = 0;
  let last: Float32Array | undefined;
  try {
    let feed = [...ids];
    for (let step = 0; step <= steps; step++) {
      const offset = caches[0]!.length;
      const logits = forward(quiet, feed, { offset, caches }); // [S or 1, V]
      const theirs = model.forward(feed, product); // [1, V]: the last row
      const ours = scope(() => narrow(logits, 0, logits.shape[0]! - 1, 1));
      last = await floats(ours);
      productDiff = Math.max(productDiff, maxAbsDiff(last, await floats(theirs)));
      const next = await greedy(logits);
      const theirNext = await greedy(theirs);
      for (const t of [logits, theirs, ours]) t.dispose();
      cacheLengths.push(caches[0]!.length);
      log.step({
        key: step === 0 ? 'prefill' : 'decode',
        title: step === 0 ? 'prefill: the prompt fills the caches' : `decode step ${step}`,
        input: [feed.length],
        output: [feed.length, c.vocabSize],
        why:
          step === 0
            ? `k and v of all ${feed.length} positions go to rows [0, ${feed.length}) of each layer's cache ${formatShape(caches[0]!.k.shape)}`
            : `only token ${piece(text, feed[0]!)} at position ${offset} is computed; it attends to the ${caches[0]!.length} cached rows -> ${piece(text, next)}`,
      });
      tokens.push(next);
      productTokens.push(theirNext);
      feed = [next];
    }
  } finally {
    for (const cache of caches) cache.dispose();
    product.dispose();
  }
  const full = forward(quiet, [...ids, ...tokens.slice(0, -1)]); // [S + steps, V]: no cache at all
  const fullLast = scope(() => narrow(full, 0, full.shape[0]! - 1, 1));
  const recomputeDiff = maxAbsDiff(last ?? new Float32Array(), await floats(fullLast));
  full.dispose();
  fullLast.dispose();
  log.say(`      generated: ${JSON.stringify(text.decode(tokens))} (${tokens.join(', ')})`);
  log.say(`      cache rows filled after each call: ${cacheLengths.join(' -> ')} of ${maxSeq}`);
  log.say(
    `      Llama.forward with its LlamaCache picks ${tokens.every((t, k) => t === productTokens[k]) ? 'the same' : 'DIFFERENT'} tokens; step logits max |diff| ${num(productDiff, 7)}`,
  );
  log.say(
    `      last step vs recomputing all ${ids.length + steps} tokens without a cache: max |diff| ${num(recomputeDiff, 7)}`,
  );
  return { tokens, cacheLengths, productTokens, productDiff, recomputeDiff };
}
