import { describe, expect, it } from 'vitest';
import { randint, randn } from './random.js';
import { keep, scope } from './scope.js';
import { dim } from './shape.js';
import { type Tensor, tensor, zeros } from './tensor.js';

describe('Tensor', () => {
  it('holds values in the requested dtype', async () => {
    const t = tensor([1.5, -2, 3.25, 65504], [2, 2], { dtype: 'f16' });
    expect(t.shape).toEqual([2, 2]);
    expect([...(await t.toArray())]).toEqual([1.5, -2, 3.25, 65504]);
    const ids = tensor([1, 2, 3], [3], { dtype: 'i32' });
    expect(await ids.toArray()).toBeInstanceOf(Int32Array);
  });
  it('rejects data that does not fill the shape, naming the op and shapes', () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow('tensor: 3 values do not fill shape [2, 2] (4 elements)');
    expect(() => zeros([2, -1])).toThrow('zeros: dim 1 of [2, -1] is not a size');
  });
  it('reshapes as a view and checks the element count', async () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, 2]);
    expect([...(await v.toArray())]).toEqual([1, 2, 3, 4, 5, 6]);
    // With literal dims this is a compile error too (see shape.test-d.ts); dynamic dims reach the run-time check.
    const dynamic = t as Tensor<readonly number[]>;
    expect(() => dynamic.reshape([4, 2])).toThrow(
      'reshape: cannot reshape [2, 3] (6 elements) to [4, 2] (8 elements)',
    );
  });
  it('fails clearly when used after dispose', () => {
    const t = tensor([1], [1]);
    t.dispose();
    t.dispose(); // twice is fine
    expect(() => t.storage).toThrow('was used after dispose()');
    expect(t.toString()).toContain('(disposed)');
  });
  it('frees storage when the last view is disposed', () => {
    let freed = 0;
    const t = zeros([4]);
    const original = t.storage.free.bind(t.storage);
    (t.storage as { free: () => void }).free = () => {
      freed++;
      original();
    };
    const v = t.reshape([2, 2]);
    t.dispose();
    expect(freed).toBe(0);
    v.dispose();
    expect(freed).toBe(1);
  });
  it('works with `using`', () => {
    let outer: Tensor | undefined;
    {
      using t = zeros([2]);
      outer = t;
      expect(outer.disposed).toBe(false);
    }
    expect(outer.disposed).toBe(true);
  });
  it('accepts named dims', () => {
    const seq = dim('seq', 5);
    const t = zeros([seq, 8]);
    expect(t.shape).toEqual([5, 8]);
    expect(() => dim('seq', -1)).toThrow("dim 'seq'");
  });
});

describe('scope', () => {
  it('disposes intermediates and keeps what is returned', () => {
    let inner: Tensor | undefined;
    const { a, list } = scope(() => {
      inner = zeros([3]);
      return { a: zeros([1]), list: [zeros([2])] };
    });
    expect(inner!.disposed).toBe(true);
    expect(a.disposed).toBe(false);
    expect(list[0]!.disposed).toBe(false);
  });
  it('nests: kept tensors belong to the outer scope', () => {
    let kept: Tensor | undefined;
    scope(() => {
      kept = scope(() => zeros([1]));
      expect(kept.disposed).toBe(false);
    });
    expect(kept!.disposed).toBe(true);
  });
  it('keep() rescues a tensor from the scope', () => {
    let t: Tensor | undefined;
    scope(() => {
      t = keep(zeros([1]));
    });
    expect(t!.disposed).toBe(false);
  });
  it('frees everything when fn throws, and refuses async functions', () => {
    let t: Tensor | undefined;
    expect(() =>
      scope(() => {
        t = zeros([1]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(t!.disposed).toBe(true);
    expect(() => scope(async () => 1)).toThrow('scope');
  });
});

describe('random', () => {
  it('is deterministic per seed and has the requested moments', async () => {
    const a = await randn([10000], { seed: 3, mean: 1, std: 2 }).toArray();
    const b = await randn([10000], { seed: 3, mean: 1, std: 2 }).toArray();
    const c = await randn([10000], { seed: 4, mean: 1, std: 2 }).toArray();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const mean = a.reduce((s, x) => s + x, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length);
    // 10k samples: the sample mean's standard error is 2 / 100 = 0.02, the std's about 0.014.
    expect(Math.abs(mean - 1)).toBeLessThan(0.08);
    expect(Math.abs(std - 2)).toBeLessThan(0.06);
  });
  it('randint stays in range', async () => {
    const ids = await randint([1000], 5, 9, { seed: 1 }).toArray();
    expect(Math.min(...ids)).toBe(5);
    expect(Math.max(...ids)).toBe(8);
  });
});
