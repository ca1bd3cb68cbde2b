/**
 * Shapes, named dims and the shape rules of the ops, checked by the compiler where dims are known and at run
 * time always.
 *
 * A dim is one of:
 * - a literal number (`2048`): the compiler compares literals;
 * - a named dim (`Dim<'seq'>`): a number at run time that the compiler keeps apart from other names;
 * - plain `number`: unknown until run time, where every rule is checked anyway.
 * @module
 */

declare const dimName: unique symbol;

/** A dim whose size is known only at run time but whose meaning the compiler tracks by `Name`. */
export type Dim<Name extends string> = number & { readonly [dimName]: Name };

/** A tensor shape: a tuple of dims (literal numbers, named dims or plain numbers). */
export type Shape = readonly number[];

/** Makes a named dim of size `size`: `const seq = dim('seq', tokens.length)`. */
export function dim<Name extends string>(name: Name, size: number): Dim<Name> {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new Error(`dim '${name}': size must be a non-negative integer, got ${size}`);
  }
  return size as Dim<Name>;
}

/** The name of a named dim, or `never` for literal and plain dims. */
export type DimNameOf<N> = N extends { readonly [dimName]: infer Name } ? Name : never;

/** True when `N` is plain `number` (neither a literal nor a named dim). */
export type IsPlainDim<N> = number extends N ? true : false;
/** True when `N` is a named dim. */
export type IsNamedDim<N> = [DimNameOf<N>] extends [never] ? false : true;
/** True when `A` and `B` are the same type. */
export type SameType<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * Whether two dims may be equal, as far as the compiler can tell: plain dims match anything, two literals
 * must be equal, two named dims must have the same name; a literal and a named dim are left to run time.
 */
export type DimsMatch<A, B> =
  IsPlainDim<A> extends true
    ? true
    : IsPlainDim<B> extends true
      ? true
      : IsNamedDim<A> extends true
        ? IsNamedDim<B> extends true
          ? SameType<DimNameOf<A>, DimNameOf<B>>
          : true
        : IsNamedDim<B> extends true
          ? true
          : SameType<A, B>;

/** Whether two shapes may be equal: same rank (when known) and every pair of dims matching. */
export type ShapesMatch<A extends Shape, B extends Shape> = number extends A['length'] | B['length']
  ? true
  : A extends readonly [infer A0, ...infer AR extends Shape]
    ? B extends readonly [infer B0, ...infer BR extends Shape]
      ? DimsMatch<A0, B0> extends true
        ? ShapesMatch<AR, BR>
        : false
      : false
    : B extends readonly []
      ? true
      : false;

/** Whether `B` may equal a trailing part of `A` (the broadcast rule of the elementwise ops). */
export type IsSuffixOf<B extends Shape, A extends Shape> = number extends A['length'] | B['length']
  ? true
  : ShapesMatch<A, B> extends true
    ? true
    : A extends readonly [unknown, ...infer AR extends Shape]
      ? IsSuffixOf<B, AR>
      : false;

/**
 * A compile-time shape error: intersected with a parameter's type, it makes a call with mismatched shapes
 * fail to compile with this message in the diagnostic.
 */
export interface ShapeError<Message extends string> {
  /** Never present: its only job is to carry the message into the compiler's error. */
  readonly shapeError: Message;
}

/** `unknown` (no constraint) when `Ok` is true, else the shape error `Message`. */
export type Check<Ok, Message extends string> = Ok extends true ? unknown : ShapeError<Message>;

/** The last dim of a shape. */
export type Last<S extends Shape> = S extends readonly [...Shape, infer L extends number] ? L : number;
/** All dims but the last. */
export type Init<S extends Shape> = S extends readonly [...infer I extends Shape, number] ? I : Shape;
/** All dims but the last two. */
export type Batch<S extends Shape> = S extends readonly [...infer I extends Shape, number, number]
  ? I
  : Shape;
/** The second-to-last dim. */
export type SecondLast<S extends Shape> = S extends readonly [...Shape, infer R extends number, number]
  ? R
  : number;

/** `[..., M, K] x [..., K, N] -> [..., M, N]` (the batch dims of `A`). */
export type MatmulShape<A extends Shape, B extends Shape> = readonly [...Batch<A>, SecondLast<A>, Last<B>];
/** The inner dims of a matmul must agree. */
export type MatmulCheck<A extends Shape, B extends Shape> = Check<
  DimsMatch<Last<A>, SecondLast<B>>,
  'matmul: inner dims differ (A is [..., M, K], B must be [..., K, N])'
>;

/** `x [..., K] @ W^T` with W stored `[N, K]` -> `[..., N]`. */
export type LinearShape<X extends Shape, W extends Shape> = readonly [...Init<X>, SecondLast<W>];
/** The input's last dim must equal the weight's last dim. */
export type LinearCheck<X extends Shape, W extends Shape> = Check<
  DimsMatch<Last<X>, Last<W>>,
  'linear: x is [..., K] and the weight must be [N, K]'
>;

/** The product of the dims (element count). */
export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape, in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** `[2, 3, 4]` as a string, for error messages. */
export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

/** The error every runtime shape check throws: it names the op, the shapes and what does not fit. */
export class ShapeMismatchError extends Error {
  /** Names the op in the message, then the problem. */
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'ShapeMismatchError';
  }
}

/** Throws a {@link ShapeMismatchError} for `op` unless `ok`. */
export function checkShape(ok: boolean, op: string, detail: () => string): asserts ok {
  if (!ok) throw new ShapeMismatchError(op, detail());
}

/** Validates a shape's dims (non-negative safe integers). */
export function checkDims(op: string, shape: Shape): void {
  for (const [i, d] of shape.entries()) {
    checkShape(
      Number.isSafeInteger(d) && d >= 0,
      op,
      () => `dim ${i} of ${formatShape(shape)} is not a size`,
    );
  }
}

/** Runtime rule of {@link MatmulShape}: returns the output shape or throws naming both shapes. */
export function matmulShape(op: string, a: Shape, b: Shape): number[] {
  checkShape(
    a.length >= 2 && b.length >= 2,
    op,
    () => `needs rank >= 2, got ${formatShape(a)} and ${formatShape(b)}`,
  );
  const k = a[a.length - 1]!;
  const k2 = b[b.length - 2]!;
  checkShape(k === k2, op, () => `inner dims differ: ${formatShape(a)} x ${formatShape(b)} (${k} != ${k2})`);
  const batchA = a.slice(0, -2);
  const batchB = b.slice(0, -2);
  checkShape(
    batchB.length === 0 || (batchB.length === batchA.length && batchB.every((d, i) => d === batchA[i])),
    op,
    () => `batch dims differ: ${formatShape(a)} x ${formatShape(b)}`,
  );
  return [...batchA, a[a.length - 2]!, b[b.length - 1]!];
}

/** Runtime rule of {@link LinearShape}. */
export function linearShape(op: string, x: Shape, w: Shape): number[] {
  checkShape(
    x.length >= 1 && w.length === 2,
    op,
    () => `x must be [..., K] and W [N, K], got ${formatShape(x)} and ${formatShape(w)}`,
  );
  const k = x[x.length - 1]!;
  checkShape(
    k === w[1],
    op,
    () => `x ${formatShape(x)} has K = ${k} but W ${formatShape(w)} has K = ${w[1]}`,
  );
  return [...x.slice(0, -1), w[0]!];
}

/** Runtime rule of the elementwise ops: `b` equals `a` or a trailing part of it. */
export function broadcastShape(op: string, a: Shape, b: Shape): void {
  const offset = a.length - b.length;
  checkShape(
    offset >= 0 && b.every((d, i) => d === a[offset + i]),
    op,
    () => `shapes ${formatShape(a)} and ${formatShape(b)} differ (b must equal a or a trailing part of a)`,
  );
}

/** Runtime rule of reshape: the element counts must agree. */
export function reshapeCheck(op: string, from: Shape, to: Shape): void {
  checkDims(op, to);
  checkShape(
    numel(from) === numel(to),
    op,
    () =>
      `cannot reshape ${formatShape(from)} (${numel(from)} elements) to ${formatShape(to)} (${numel(to)} elements)`,
  );
}

/** Normalizes a possibly negative axis and checks it is in range. */
export function axisOf(op: string, shape: Shape, axis: number): number {
  const a = axis < 0 ? shape.length + axis : axis;
  checkShape(
    Number.isInteger(a) && a >= 0 && a < shape.length,
    op,
    () => `axis ${axis} is out of range for ${formatShape(shape)}`,
  );
  return a;
}

/** Replaces the dim at index `I` of `S` by `N`. */
export type SetDim<S extends Shape, I extends number, N extends number> = {
  readonly [K in keyof S]: K extends `${I}` ? N : S[K];
};

/** Permutes the dims of `S` by the index tuple `P`. */
export type Permute<S extends Shape, P extends readonly number[]> = {
  readonly [K in keyof P]: P[K] extends number ? S[P[K]] : never;
};

/** Swaps the last two dims. */
export type Transpose<S extends Shape> = readonly [...Batch<S>, Last<S>, SecondLast<S>];
