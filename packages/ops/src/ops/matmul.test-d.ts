// Type-level tests (run by vitest's typecheck mode): the shape rules of matmul and linear that the compiler
// must enforce. The run-time checks of `number` dims are in matmul.test.ts and linear.test.ts.
import type { Dim, Tensor } from '@proj/core';
import { describe, expectTypeOf, it } from 'vitest';
import { linear } from './linear.js';
import { matmul } from './matmul.js';

type Seq = Dim<'seq'>;
type Model = Dim<'model'>;
type Hidden = Dim<'hidden'>;

declare const a23: Tensor<readonly [2, 3]>;
declare const b34: Tensor<readonly [3, 4]>;
declare const b54: Tensor<readonly [5, 4]>;
declare const batched: Tensor<readonly [8, 2, 3]>;
declare const batchedB: Tensor<readonly [8, 3, 4]>;
declare const xNamed: Tensor<readonly [Seq, Model]>;
declare const wNamed: Tensor<readonly [Model, Hidden]>;
declare const wWrong: Tensor<readonly [Hidden, Hidden]>;
declare const plainA: Tensor<readonly [number, number]>;
declare const plainB: Tensor<readonly [number, number]>;
declare const wLinear: Tensor<readonly [Hidden, Model]>;
declare const wLinearWrong: Tensor<readonly [Model, Hidden]>;
declare const w2048: Tensor<readonly [512, 2048]>;
declare const x2048: Tensor<readonly [1, 2048]>;
declare const x4096: Tensor<readonly [1, 4096]>;

describe('matmul types', () => {
  it('literal dims: the output shape is computed, mismatched inner dims do not compile', () => {
    expectTypeOf(matmul(a23, b34)).toEqualTypeOf<Tensor<readonly [2, 4], 'f32'>>();
    expectTypeOf(matmul(batched, batchedB)).toEqualTypeOf<Tensor<readonly [8, 2, 4], 'f32'>>();
    expectTypeOf(matmul(batched, b34)).toEqualTypeOf<Tensor<readonly [8, 2, 4], 'f32'>>();
    // @ts-expect-error inner dims 3 and 5 differ
    matmul(a23, b54);
  });
  it('named dims: the names must agree', () => {
    expectTypeOf(matmul(xNamed, wNamed)).toEqualTypeOf<Tensor<readonly [Seq, Hidden], 'f32'>>();
    // @ts-expect-error 'model' is not 'hidden'
    matmul(xNamed, wWrong);
  });
  it('plain number dims compile (and are checked at run time)', () => {
    expectTypeOf(matmul(plainA, plainB)).toEqualTypeOf<Tensor<readonly [number, number], 'f32'>>();
  });
});

describe('linear types', () => {
  it('W is [N, K]: the output is [..., N], and K must agree', () => {
    expectTypeOf(linear(x2048, w2048)).toEqualTypeOf<Tensor<readonly [1, 512], 'f32'>>();
    // @ts-expect-error x has K = 4096, W has K = 2048
    linear(x4096, w2048);
  });
  it('named dims', () => {
    expectTypeOf(linear(xNamed, wLinear)).toEqualTypeOf<Tensor<readonly [Seq, Hidden], 'f32'>>();
    // @ts-expect-error W's K is 'hidden', x's is 'model'
    linear(xNamed, wLinearWrong);
  });
  it('plain number dims compile (and are checked at run time)', () => {
    expectTypeOf(linear(plainA, plainB)).toEqualTypeOf<Tensor<readonly [number, number], 'f32'>>();
  });
});
