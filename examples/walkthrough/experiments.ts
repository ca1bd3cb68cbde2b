/**
 * The tutorials' experiments: what every position would predict, and what changes without the causal mask.
 */
import { formatShape, scope, type Tensor } from '@proj/core';
import { argmax } from '@proj/ops';
import { silent } from './narrate.js';
import { floats, num, row, rowDiffs } from './numbers.js';
import { piece, type TokenText } from './text.js';
import {
  attentionNorm,
  disposeHead,
  embed,
  forward,
  type HeadAttention,
  headAttention,
  type Tour,
} from './tour.js';

/** The argmax token at every position of `logits [S, V]`, printed as "after ... comes ...". */
export async function positionPredictions(
  tour: Tour,
  text: TokenText,
  ids: readonly number[],
  logits: Tensor,
): Promise<number[]> {
  const best = scope(() => argmax(logits)); // [S, V] -> [S]
  const predicted = [...(await best.toArray())];
  best.dispose();
  tour.log.say(
    `(b) what each position predicts: argmax over V of every row, ${formatShape(logits.shape)} -> [${ids.length}]`,
  );
  tour.log.say('    every row is a prediction of the token after it; training scores all of them at once');
  for (const [p, id] of ids.entries()) {
    tour.log.say(
      `    pos ${String(p).padStart(2)} ${piece(text, id).padEnd(16)} -> ${piece(text, predicted[p]!)}`,
    );
  }
  return predicted;
}

/** What the no-mask experiment measured. */
export interface NoMaskResult {
  /** Per query row of layer 0 head 0, the attention weight on later positions without the mask (0 with it). */
  futureWeight: number[];
  /** Per row, max |diff| of layer 0 head 0's output with and without the mask. */
  headOutDiff: number[];
  /** Per position, max |diff| of the model's logits with and without the mask (every layer unmasked). */
  logitsDiff: number[];
  /** The argmax at each position without the mask. */
  predictions: number[];
}

/**
 * (a) Head 0 of layer 0 and then the whole model without the causal mask: earlier positions now attend to
 * later ones, and their outputs (and predictions) change; the last position of layer 0 sees the same keys
 * either way.
 */
export async function noMaskExperiment(
  tour: Tour,
  text: TokenText,
  ids: readonly number[],
  masked: { logits: Tensor; predictions: number[] },
): Promise<NoMaskResult> {
  const { log, model } = tour;
  const quiet: Tour = { ...tour, log: silent };
  const S = ids.length;
  const Dh = model.config.headDim;
  const x = embed(quiet, ids);
  const h = attentionNorm(quiet, 0, x);
  const heads = [true, false].map((causal) => headAttention(quiet, 0, 0, h, causal));
  const [withMask, without] = heads as [HeadAttention, HeadAttention];
  const [openProbs, outMasked, outOpen] = await Promise.all([
    floats(without.probs),
    floats(withMask.out),
    floats(without.out),
  ]);
  const futureWeight = Array.from({ length: S }, (_, i) =>
    row(openProbs, i, S)
      .subarray(i + 1)
      .reduce((s, p) => s + p, 0),
  );
  const headOutDiff = rowDiffs(outMasked, outOpen, Dh);
  for (const head of heads) disposeHead(head);
  x.dispose();
  h.dispose();

  const open = forward(quiet, ids, { causal: false });
  const [logitsMasked, logitsOpen] = await Promise.all([floats(masked.logits), floats(open)]);
  const best = scope(() => argmax(open));
  const predictions = [...(await best.toArray())];
  best.dispose();
  open.dispose();
  const logitsDiff = rowDiffs(logitsMasked, logitsOpen, model.config.vocabSize);

  log.say('(a) without the causal mask (layer 0, head 0, then every layer of the model)');
  log.say(
    '    pos  weight on later tokens   head 0 out |diff|   logits |diff|   prediction masked -> unmasked',
  );
  for (let p = 0; p < S; p++) {
    const change = `${piece(text, masked.predictions[p]!)} -> ${piece(text, predictions[p]!)}`;
    log.say(
      `    ${String(p).padStart(3)}  ${num(futureWeight[p]!).padStart(20)}   ${num(headOutDiff[p]!, 4).padStart(17)}   ${num(logitsDiff[p]!, 4).padStart(13)}   ${change}`,
    );
  }
  const changed = predictions.filter((id, p) => id !== masked.predictions[p]).length;
  log.say(
    `    ${changed} of ${S} predictions change. Early tokens now read the answer from the future: a model`,
  );
  log.say(
    '    trained that way would learn to copy, and could not generate, where no future exists yet. The last',
  );
  log.say(
    '    row of layer 0 sees the same keys either way (its head output does not change); in later layers',
  );
  log.say("    it reads keys and values that did change, so the model's last logits move too.");
  return { futureWeight, headOutDiff, logitsDiff, predictions };
}
