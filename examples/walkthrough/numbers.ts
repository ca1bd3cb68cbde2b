/** Small host-side helpers for reading results: values, differences, rows of a matrix. */
import type { Tensor } from '@proj/core';

/** The values of a float tensor on the host. */
export async function floats(t: Tensor): Promise<Float32Array> {
  const values = await t.toArray();
  if (!(values instanceof Float32Array)) throw new Error(`${t} does not hold floats`);
  return values;
}

/** Largest `|a[i] - b[i]|` (NaN counts as infinitely different). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
  }
  return worst;
}

/** Largest `|a - b|` of each row of `cols` values. */
export function rowDiffs(a: Float32Array, b: Float32Array, cols: number): number[] {
  return Array.from({ length: a.length / cols }, (_, r) =>
    maxAbsDiff(a.subarray(r * cols, (r + 1) * cols), b.subarray(r * cols, (r + 1) * cols)),
  );
}

/** Row `r` of a row-major matrix with `cols` columns. */
export function row(m: Float32Array, r: number, cols: number): Float32Array {
  return m.subarray(r * cols, (r + 1) * cols);
}

/** Fixed-width number for tables: `0.123`, `-1.50e-6`. */
export function num(v: number, digits = 3): string {
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(2);
  return v.toFixed(digits);
}
