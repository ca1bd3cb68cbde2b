/**
 * The assertions of the fixture tests on a {@link VerifyReport}, shared by the Node run
 * (`fixtures.test.ts`) and the browser run (`fixtures.browser.test.ts`).
 * @module
 */
import { expect } from 'vitest';
import { REFERENCE_INTERMEDIATES, type VerifyReport } from './reference.js';

/** Logits, argmax, every layer-0 intermediate, cached decoding and greedy ids all match the reference. */
export function expectMatchesReference(r: VerifyReport): void {
  // f32 tolerance: the fixtures README measures independent f32 implementations ~1e-5 apart, and suggests 1e-4.
  expect(r.maxAbsDiff).toBeLessThanOrEqual(1e-4);
  expect(r.argmaxAgree.every(Boolean)).toBe(true);
  expect(r.greedyIds).toEqual(r.expectedGreedyIds);
  // Every fixture stores all of layer 0's intermediates: each within the same f32 tolerance.
  expect(r.intermediates.map((i) => i.name)).toEqual([...REFERENCE_INTERMEDIATES]);
  for (const { name, maxAbsDiff } of r.intermediates) expect(maxAbsDiff, name).toBeLessThanOrEqual(1e-4);
  // The same math in another summation order (1 key vs. S keys per call): f32 rounding only.
  expect(r.cacheMaxAbsDiff).toBeLessThanOrEqual(2e-5);
  expect(r.ok).toBe(true);
}
