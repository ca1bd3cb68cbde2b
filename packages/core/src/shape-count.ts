/**
 * Element counts of literal shapes at the type level: decimal arithmetic on digit tuples (least significant
 * digit first), so that `reshape` between two literal shapes compares element counts at compile time for
 * any realistic size (2048 * 128256 too), where counting with tuple lengths would hit the compiler's limits.
 * @module
 */
import type { Check, IsNamedDim, IsPlainDim, SameType, Shape } from './shape.js';

/** A tuple of `N` zeros (type-level counting for small numbers). */
export type Tuple<N extends number, T extends 0[] = []> = T['length'] extends N ? T : Tuple<N, [...T, 0]>;
/** Each decimal digit character and its number. */
export type CharDigit = { '0': 0; '1': 1; '2': 2; '3': 3; '4': 4; '5': 5; '6': 6; '7': 7; '8': 8; '9': 9 };
/** The decimal digits of a number's string form, least significant first (`'120'` -> `[0, 2, 1]`). */
export type DigitsOf<S extends string> = S extends `${infer H extends keyof CharDigit}${infer T}`
  ? [...DigitsOf<T>, CharDigit[H]]
  : [];
/** One column of an addition: `A + B + carry` as `[digit, carry]`. */
export type AddDigits<A extends number, B extends number, C extends number> = [
  ...Tuple<A>,
  ...Tuple<B>,
  ...Tuple<C>,
] extends [...Tuple<10>, ...infer R]
  ? [R['length'], 1]
  : [[...Tuple<A>, ...Tuple<B>, ...Tuple<C>]['length'], 0];
/** The sum of two digit lists (least significant first), with carry `C`. */
export type AddLists<A extends number[], B extends number[], C extends number = 0> = A extends [
  infer a extends number,
  ...infer AR extends number[],
]
  ? B extends [infer b extends number, ...infer BR extends number[]]
    ? AddDigits<a, b, C> extends [infer d extends number, infer c extends number]
      ? [d, ...AddLists<AR, BR, c>]
      : never
    : AddDigits<a, 0, C> extends [infer d extends number, infer c extends number]
      ? [d, ...AddLists<AR, [], c>]
      : never
  : B extends [number, ...number[]]
    ? AddLists<B, [], C>
    : C extends 1
      ? [1]
      : [];
/** A digit list times a small number `D` (given as a tuple of that length), by repeated addition. */
export type TimesDigit<A extends number[], D extends 0[], Acc extends number[] = []> = D extends [
  0,
  ...infer DR extends 0[],
]
  ? TimesDigit<A, DR, AddLists<Acc, A>>
  : Acc;
/** The product of two digit lists (schoolbook multiplication). */
export type TimesList<A extends number[], B extends number[]> = B extends [
  infer b extends number,
  ...infer BR extends number[],
]
  ? AddLists<TimesDigit<A, Tuple<b>>, [0, ...TimesList<A, BR>]>
  : [];
/** Drops leading zeros (the trailing entries of a least-significant-first list). */
export type TrimZeros<L extends number[]> = L extends [...infer H extends number[], 0] ? TrimZeros<H> : L;
/** The element count of a literal shape, as decimal digits, least significant first (`[6]` for `[2, 3]`). */
export type CountDigits<S extends Shape> = S extends readonly [
  infer H extends number,
  ...infer R extends Shape,
]
  ? TrimZeros<TimesList<DigitsOf<`${H}`>, CountDigits<R>>>
  : [1];
/** True when every dim of `S` is a literal number (no named or plain dims) and its rank is known. */
export type AllLiteral<S extends Shape> = number extends S['length']
  ? false
  : S extends readonly [infer H, ...infer R extends Shape]
    ? IsPlainDim<H> extends true
      ? false
      : IsNamedDim<H> extends true
        ? false
        : AllLiteral<R>
    : true;

/**
 * The compile-time rule of `reshape`: when both shapes are made of literal dims, their element counts must
 * be equal (computed with decimal arithmetic on the digits); otherwise the check is left to run time.
 */
export type ReshapeCheck<From extends Shape, To extends Shape> =
  AllLiteral<From> extends true
    ? AllLiteral<To> extends true
      ? Check<
          SameType<CountDigits<From>, CountDigits<To>>,
          'reshape: the element counts of the two shapes differ'
        >
      : unknown
    : unknown;
