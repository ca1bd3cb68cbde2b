// Type-level tests, checked by `pnpm typecheck`: a GPT weight of the wrong shape, or an op call whose
// literal dims do not fit, must stay a compile error. Never run.
import { zeros } from '@proj/core';
import { layernorm, linear } from '@proj/ops';
import type { GptBlock, GptWeights, Linear, TINY_GPT } from './gpt.js';

type Tiny = typeof TINY_GPT;

export const fc: GptBlock<Tiny>['fc'] = {
  // @ts-expect-error fc is [M, D] = [256, 64]; [64, 256] is its transpose
  weight: zeros([64, 256]),
  bias: zeros([256]),
};

export const out: Linear<64, 256> = {
  weight: zeros([64, 256]),
  // @ts-expect-error the bias of a [64, 256] linear is [64]
  bias: zeros([256]),
};

// @ts-expect-error the position table is [context, D] = [64, 64]
export const positions: GptWeights<Tiny>['positions'] = zeros([128, 64]);

const h = zeros([11, 64]);
export const up = linear(h, fc.weight); // [11, 64] @ [256, 64]^T -> [11, 256]: fits
// @ts-expect-error the down projection wants [..., 256] inputs, h has 64 features
export const down = linear(h, out.weight);
// @ts-expect-error LayerNorm's weight must be [64] for x [11, 64]
export const normed = layernorm(h, zeros([256]), zeros([64]));
// @ts-expect-error ...and so must its bias
export const normedBias = layernorm(h, zeros([64]), zeros([11]));
