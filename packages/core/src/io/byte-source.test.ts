import { describe, expect, it } from 'vitest';
import { memorySource } from './byte-source.js';

describe('memorySource', () => {
  it('reads exact ranges and rejects anything outside the bytes', async () => {
    const source = memorySource(new Uint8Array([1, 2, 3, 4, 5]));
    expect(source.size).toBe(5);
    expect(await source.read(1, 3)).toEqual(new Uint8Array([2, 3, 4]));
    expect(await source.read(5, 0)).toEqual(new Uint8Array(0));
    for (const [offset, length] of [
      [4, 2],
      [-1, 1],
      [0, -1],
      [0.5, 1],
      [2 ** 53, 1],
      [Number.NaN, 1],
    ] as const) {
      await expect(source.read(offset, length), `${offset}, ${length}`).rejects.toThrow(RangeError);
    }
  });
});
