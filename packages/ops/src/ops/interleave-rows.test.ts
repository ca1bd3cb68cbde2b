import { cpuFloats, randn } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { useTestDevices } from '../../../../test-support/webgpu.js';
import type { WebGpuDevice } from '../gpu/device.js';
import { interleaveRows, interleaveRowsReference } from './interleave-rows.js';

describe('interleaveRows (x for the interleaved-x prefill kernel of linear)', () => {
  let gpu: WebGpuDevice | undefined;
  useTestDevices([{}], (d) => ([gpu] = d));

  // Rows: one, fewer than a group, whole groups, a partial last group; K odd and even.
  const shapes: [number, number][] = [
    [1, 1],
    [3, 5],
    [4, 8],
    [9, 7],
    [17, 33],
  ];
  for (const [m, k] of shapes) {
    for (const dtype of ['f32', 'bf16', 'f16'] as const) {
      it(`[${m}, ${k}] ${dtype}: each element of 4 rows side by side, zeros past the last row`, async ({
        skip,
      }) => {
        if (!gpu) return skip('no WebGPU adapter');
        const x = randn([m, k], { seed: m * 100 + k, dtype });
        const out = interleaveRows(gpu, await x.to(gpu), m, k);
        // Exact: the 16-bit values widen to f32 exactly, and nothing else is computed.
        expect(await out.toArray()).toEqual(interleaveRowsReference(cpuFloats(x), m, k));
        out.dispose();
      });
    }
  }

  it('uses only the first m rows of x', async ({ skip }) => {
    if (!gpu) return skip('no WebGPU adapter');
    const x = randn([6, 10], { seed: 1 });
    const out = interleaveRows(gpu, await x.to(gpu), 5, 10); // only the first 5 rows
    expect(await out.toArray()).toEqual(interleaveRowsReference(cpuFloats(x).subarray(0, 50), 5, 10));
    out.dispose();
  });

  it('the reference places row 4g + r, element e at (g * K + e) * 4 + r', () => {
    const x = Float32Array.from({ length: 5 * 2 }, (_, i) => i + 1); // rows [1, 2], [3, 4], ..., [9, 10]
    expect([...interleaveRowsReference(x, 5, 2)]).toEqual([1, 3, 5, 7, 2, 4, 6, 8, 9, 0, 0, 0, 10, 0, 0, 0]);
  });
});
