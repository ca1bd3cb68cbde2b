import { describe, expect, it } from 'vitest';
import { Sampler } from './sampler.js';

const logits = Float32Array.from([1, 3, 2, 0.5, 2.9]);

describe('Sampler', () => {
  it('temperature 0 is argmax, and so are topK = 1 and a tiny topP', () => {
    expect(new Sampler({ temperature: 0 }).sample(logits)).toBe(1);
    for (let seed = 0; seed < 20; seed++) {
      expect(new Sampler({ temperature: 1, topK: 1, seed }).sample(logits)).toBe(1);
      expect(new Sampler({ temperature: 1, topP: 1e-6, seed }).sample(logits)).toBe(1);
    }
  });
  it('is deterministic per seed', () => {
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, topP: 1, seed });
      return Array.from({ length: 50 }, () => s.sample(logits));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });
  it('draws with the softmax probabilities', () => {
    const s = new Sampler({ temperature: 1, topP: 1, seed: 1 });
    const counts = new Array(5).fill(0);
    const n = 20000;
    for (let i = 0; i < n; i++) counts[s.sample(logits)]++;
    const z = [...logits].reduce((a, x) => a + Math.exp(x), 0);
    for (let i = 0; i < 5; i++) {
      const p = Math.exp(logits[i]!) / z;
      // Binomial standard error sqrt(p(1-p)/n) <= 0.0036; allow 5 of them.
      expect(Math.abs(counts[i] / n - p)).toBeLessThan(0.018);
    }
  });
  it('topK, minP and topP keep only the likely tokens', () => {
    const seen = (o: ConstructorParameters<typeof Sampler>[0]) => {
      const s = new Sampler({ temperature: 1, topP: 1, ...o });
      return new Set(Array.from({ length: 2000 }, () => s.sample(logits)));
    };
    expect(seen({ topK: 2 })).toEqual(new Set([1, 4]));
    // minP 0.5: tokens with p >= 0.5 * p(max) survive: logits >= 3 + ln 0.5 = 2.31 -> ids 1 and 4.
    expect(seen({ minP: 0.5 })).toEqual(new Set([1, 4]));
    // topP 0.6: p(1) = 0.42, p(4) = 0.38: both are needed to reach 0.6.
    expect(seen({ topP: 0.6 })).toEqual(new Set([1, 4]));
  });
  it('repetition penalty pushes seen tokens down', () => {
    expect(new Sampler({ temperature: 0, repetitionPenalty: 1.5 }).sample(logits, [1])).toBe(4); // 3 / 1.5 = 2 < 2.9
    expect(
      new Sampler({ temperature: 0, repetitionPenalty: 1.5 }).sample(Float32Array.from([-1, -2]), [0]),
    ).toBe(0); // -1.5 > -2
  });
  it('refuses broken logits instead of drawing an arbitrary id', () => {
    for (const temperature of [0, 0.6]) {
      const s = new Sampler({ temperature });
      expect(() => s.sample(Float32Array.from([1, Number.NaN, 2]))).toThrow(/token 1 is NaN/);
      expect(() => s.sample(Float32Array.from([1, 2, Number.POSITIVE_INFINITY]))).toThrow(
        /token 2 is Infinity/,
      );
      expect(() => s.sample(new Float32Array(0))).toThrow(/no token to choose/);
      expect(() => s.sample(Float32Array.from([Number.NEGATIVE_INFINITY]))).toThrow(/no token to choose/);
      // -Infinity marks a token that must not be chosen; the others still are.
      expect(s.sample(Float32Array.from([Number.NEGATIVE_INFINITY, 0]))).toBe(1);
    }
  });
  it('rejects options out of range', () => {
    expect(() => new Sampler({ temperature: -1 })).toThrow('temperature');
    expect(() => new Sampler({ topP: 0 })).toThrow('topP');
    expect(() => new Sampler({ topK: 1.5 })).toThrow('topK');
  });
});
