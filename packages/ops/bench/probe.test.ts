import { describe, expect, it } from 'vitest';
import type { WebGpuDevice } from '../src/gpu/device.js';
import { interleavedMs, median, type Timer } from './probe.js';

/** A device with nothing to wait for: the timers below make up the times. */
const device = { sync: async () => {} } as unknown as WebGpuDevice;

describe('interleavedMs', () => {
  it('alternates the order of the runs every repetition, after one warm-up of each', async () => {
    const calls: string[] = [];
    const runs = ['a', 'b', 'c'].map((name) => () => void calls.push(name));
    const timer: Timer = async (_, run) => {
      run();
      return 1;
    };
    await interleavedMs(device, runs, 3, timer);
    expect(calls.join(' ')).toBe('a b c a b c c b a a b c'); // the warm-up, then three repetitions
  });

  it('keeps the ratio of two runs when the machine slows down half way', async () => {
    // Run 0 takes 1 ms, run 1 takes 3 ms, until the fourth timing, from which everything takes twice as long.
    // Timed in two blocks (all of run 0, then all of run 1) the ratio would come out 6; the ratio of the two
    // medians below is 1.5; the ratios within each repetition are 3, 1.5 and 3.
    const base = [1, 3];
    let current = 0;
    const runs = [0, 1].map((i) => () => {
      current = i;
    });
    let timings = 0;
    const timer: Timer = async (_, run) => {
      run();
      return (timings++ < 3 ? 1 : 2) * base[current]!;
    };
    const timed = await interleavedMs(device, runs, 3, timer);
    expect(timed.ratio(1, 0)).toBe(3);
    expect(timed.ratio(0, 1)).toBeCloseTo(1 / 3, 12);
    expect(timed.ms).toEqual([2, 3]); // medians of [1, 2, 2] and [3, 3, 6]
  });
});

describe('median', () => {
  it('is the middle value, or the mean of the middle two', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5); // two repetitions of a quick run do not report the larger one
    expect(median([7])).toBe(7);
  });
});
