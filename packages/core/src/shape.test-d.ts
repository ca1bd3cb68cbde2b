// Type-level tests (run by vitest's typecheck mode): shape rules the compiler must enforce.
import { describe, expectTypeOf, it } from 'vitest';
import type {
  Dim,
  DimsMatch,
  IsSuffixOf,
  LinearShape,
  MatmulCheck,
  MatmulShape,
  ShapesMatch,
  Transpose,
} from './shape.js';
import { dim } from './shape.js';
import type { ReshapeCheck } from './shape-count.js';
import { type Tensor, zeros } from './tensor.js';

type Seq = Dim<'seq'>;
type Vocab = Dim<'vocab'>;

describe('dims', () => {
  it('literals must be equal, names must be equal, plain numbers match anything', () => {
    expectTypeOf<DimsMatch<2048, 2048>>().toEqualTypeOf<true>();
    expectTypeOf<DimsMatch<2048, 4096>>().toEqualTypeOf<false>();
    expectTypeOf<DimsMatch<Seq, Seq>>().toEqualTypeOf<true>();
    expectTypeOf<DimsMatch<Seq, Vocab>>().toEqualTypeOf<false>();
    expectTypeOf<DimsMatch<number, 7>>().toEqualTypeOf<true>();
    expectTypeOf<DimsMatch<Seq, number>>().toEqualTypeOf<true>();
    expectTypeOf<DimsMatch<Seq, 7>>().toEqualTypeOf<true>(); // left to run time
  });
  it('named dims are numbers that do not mix up', () => {
    const seq = dim('seq', 3);
    expectTypeOf(seq).toEqualTypeOf<Seq>();
    expectTypeOf(seq).toMatchTypeOf<number>();
    // @ts-expect-error a plain number is not a named dim
    const wrong: Seq = 3;
    void wrong;
  });
});

describe('shape arithmetic', () => {
  it('matmul', () => {
    expectTypeOf<MatmulShape<readonly [Seq, 64], readonly [64, Vocab]>>().toEqualTypeOf<
      readonly [Seq, Vocab]
    >();
    expectTypeOf<MatmulShape<readonly [8, Seq, 64], readonly [8, 64, 16]>>().toEqualTypeOf<
      readonly [8, Seq, 16]
    >();
    expectTypeOf<MatmulCheck<readonly [2, 3], readonly [3, 4]>>().toEqualTypeOf<unknown>();
    expectTypeOf<MatmulCheck<readonly [2, 3], readonly [5, 4]>>().not.toEqualTypeOf<unknown>();
  });
  it('linear, transpose, broadcast, equality', () => {
    expectTypeOf<LinearShape<readonly [Seq, 2048], readonly [512, 2048]>>().toEqualTypeOf<
      readonly [Seq, 512]
    >();
    expectTypeOf<Transpose<readonly [4, Seq, 16]>>().toEqualTypeOf<readonly [4, 16, Seq]>();
    expectTypeOf<IsSuffixOf<readonly [64], readonly [Seq, 64]>>().toEqualTypeOf<true>();
    expectTypeOf<IsSuffixOf<readonly [32], readonly [Seq, 64]>>().toEqualTypeOf<false>();
    expectTypeOf<ShapesMatch<readonly [Seq, 64], readonly [Seq, 64]>>().toEqualTypeOf<true>();
    expectTypeOf<ShapesMatch<readonly [Seq, 64], readonly [Vocab, 64]>>().toEqualTypeOf<false>();
    expectTypeOf<ShapesMatch<readonly [Seq, 64], readonly number[]>>().toEqualTypeOf<true>();
  });
  it('factories keep literal and named dims in the type', () => {
    const seq = dim('seq', 3);
    expectTypeOf(zeros([seq, 64])).toEqualTypeOf<Tensor<readonly [Seq, 64], 'f32'>>();
    expectTypeOf(zeros([2, 3], { dtype: 'bf16' })).toEqualTypeOf<Tensor<readonly [2, 3], 'bf16'>>();
    expectTypeOf(zeros([2, 3]).reshape([6])).toEqualTypeOf<Tensor<readonly [6], 'f32'>>();
  });
});

describe('reshape between literal shapes', () => {
  it('compiles when the element counts agree, even for large dims', () => {
    expectTypeOf(zeros([2, 3]).reshape([3, 2])).toEqualTypeOf<Tensor<readonly [3, 2], 'f32'>>();
    expectTypeOf<ReshapeCheck<readonly [128256, 2048], readonly [2048, 128256]>>().toEqualTypeOf<unknown>();
    expectTypeOf<ReshapeCheck<readonly [16, 32, 64], readonly [512, 64]>>().toEqualTypeOf<unknown>();
    expectTypeOf<ReshapeCheck<readonly [1000, 1000], readonly [1000000]>>().toEqualTypeOf<unknown>();
  });
  it('does not compile when they differ', () => {
    // @ts-expect-error 6 elements cannot become 8
    zeros([2, 3]).reshape([4, 2]);
    expectTypeOf<
      ReshapeCheck<readonly [128256, 2048], readonly [2048, 128255]>
    >().not.toEqualTypeOf<unknown>();
    expectTypeOf<ReshapeCheck<readonly [10, 10], readonly [1000]>>().not.toEqualTypeOf<unknown>();
  });
  it('leaves named and plain dims to run time', () => {
    const seq = dim('seq', 3);
    const n: number = 6;
    expectTypeOf(zeros([seq, 2]).reshape([6])).toEqualTypeOf<Tensor<readonly [6], 'f32'>>();
    expectTypeOf(zeros([n]).reshape([2, 3])).toEqualTypeOf<Tensor<readonly [2, 3], 'f32'>>();
  });
});
