// Type-level tests: the elementwise broadcast rule is enforced by the compiler where dims are known.
import { type Dim, dim, type Tensor, zeros } from '@proj/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { add, mul } from './binary.js';

describe('add / mul shapes', () => {
  const seq = dim('seq', 4);
  const batch = dim('batch', 4);

  it('equal and trailing shapes compile and keep the left shape', () => {
    expectTypeOf(add(zeros([seq, 8]), zeros([seq, 8]))).toEqualTypeOf<
      Tensor<readonly [Dim<'seq'>, 8], 'f32'>
    >();
    expectTypeOf(mul(zeros([seq, 8]), zeros([8]))).toEqualTypeOf<Tensor<readonly [Dim<'seq'>, 8], 'f32'>>();
  });

  it('different named dims do not compile', () => {
    // @ts-expect-error seq and batch are different named dims, even though both are 4 at run time
    add(zeros([seq, 8]), zeros([batch, 8]));
  });

  it('different literal dims do not compile', () => {
    // @ts-expect-error 8 and 16 differ
    mul(zeros([2, 8]), zeros([2, 16]));
  });

  it('dynamic dims compile and are checked at run time', () => {
    const n: number = 3;
    expect(() => add(zeros([2, n]), zeros([2, 5]))).toThrow('add: shapes [2, 3] and [2, 5] differ');
  });
});
