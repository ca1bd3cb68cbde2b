import { describe, expect, it } from 'vitest';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, fromFloat32, toFloat32 } from './dtype.js';

const bits = (x: number) => new Uint32Array(new Float32Array([x]).buffer)[0]!;
const fromBits = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0]!;

describe('bf16', () => {
  it('is exact for values that fit and round-trips every bf16 pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = bf16ToF32(h);
      if (Number.isNaN(x)) expect(Number.isNaN(bf16ToF32(f32ToBf16(x)))).toBe(true);
      else expect(f32ToBf16(x)).toBe(h);
    }
  });
  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-8 is exactly halfway between bf16 1 (even) and 1 + 2^-7 (odd): ties go to the even one.
    expect(f32ToBf16(fromBits(0x3f808000))).toBe(0x3f80);
    // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
    expect(f32ToBf16(fromBits(0x3f818000))).toBe(0x3f82);
    // Just above halfway rounds up.
    expect(f32ToBf16(fromBits(0x3f808001))).toBe(0x3f81);
  });
  it('keeps NaN, infinities and subnormals', () => {
    expect(Number.isNaN(bf16ToF32(f32ToBf16(Number.NaN)))).toBe(true);
    expect(bf16ToF32(f32ToBf16(Number.POSITIVE_INFINITY))).toBe(Number.POSITIVE_INFINITY);
    expect(bf16ToF32(f32ToBf16(Number.NEGATIVE_INFINITY))).toBe(Number.NEGATIVE_INFINITY);
    const sub = fromBits(0x00010000); // an f32 subnormal that bf16 holds exactly
    expect(bf16ToF32(f32ToBf16(sub))).toBe(sub);
    expect(Object.is(bf16ToF32(f32ToBf16(-0)), -0)).toBe(true);
    // The largest finite f32 rounds up to +Inf in bf16 (round to nearest even overflows).
    expect(bf16ToF32(f32ToBf16(fromBits(0x7f7fffff)))).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('f16', () => {
  it('round-trips every f16 pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const x = f16ToF32(h);
      if (Number.isNaN(x)) expect(Number.isNaN(f16ToF32(f32ToF16(x)))).toBe(true);
      else expect(f32ToF16(x)).toBe(h);
    }
  });
  it('rounds to nearest even, overflows to Inf, keeps subnormals', () => {
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even (1.0)
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (1 + 2^-9)
    expect(f32ToF16(65504)).toBe(0x7bff); // the largest f16
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway to the next binade: rounds to Inf
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // the smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // halfway to zero: ties to even (0)
    expect(f32ToF16(3 * 2 ** -25)).toBe(0x0002); // 1.5 ulp: ties to even (2 ulp)
    expect(f32ToF16(-(2 ** -14))).toBe(0x8400); // the smallest normal, negative
    expect(Number.isNaN(f16ToF32(f32ToF16(Number.NaN)))).toBe(true);
  });
  it('matches an exhaustive nearest-even search on random f32 values', () => {
    // Reference: among all finite f16 values pick the nearest; on a tie the one with an even pattern.
    const table = Array.from({ length: 0x7c00 }, (_, h) => f16ToF32(h));
    let seed = 7;
    for (let n = 0; n < 2000; n++) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const x = fromBits((seed & 0x807fffff) | ((100 + (seed % 45)) << 23)); // exponents around f16's range
      const ax = Math.abs(x);
      let best = 0;
      for (let h = 1; h < table.length; h++) {
        const d = Math.abs(table[h]! - ax) - Math.abs(table[best]! - ax);
        if (d < 0 || (d === 0 && h % 2 === 0)) best = h;
      }
      const overflow = ax >= 65520;
      const expected = (x < 0 ? 0x8000 : 0) | (overflow ? 0x7c00 : best);
      expect(f32ToF16(x), `x = ${x} (bits ${bits(x).toString(16)})`).toBe(expected);
    }
  });
});

describe('array conversions', () => {
  it('convert whole arrays both ways', () => {
    const values = [0, 1, -2.5, 1e-3, 65504];
    expect([...toFloat32('f16', fromFloat32('f16', values))]).toEqual(
      values.map((v) => f16ToF32(f32ToF16(v))),
    );
    expect([...toFloat32('bf16', fromFloat32('bf16', values))]).toEqual(
      values.map((v) => bf16ToF32(f32ToBf16(v))),
    );
    expect([...toFloat32('i32', fromFloat32('i32', [3, -4]))]).toEqual([3, -4]);
  });
});
