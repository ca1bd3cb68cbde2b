/**
 * `pnpm llama3 verify`: a model directory against an `expected.safetensors` file (Node; the comparison
 * itself is `reference.ts`).
 * @module
 */
import type { Device } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import { loadLlama } from './checkpoint/load-dir.js';
import { compareWithReference, readReference, type VerifyReport } from './reference.js';

/**
 * Loads `modelDir` onto `device`, runs the reference prompt of `expectedPath` (an `expected.safetensors` of
 * the test fixtures) and compares (see {@link compareWithReference}).
 */
export async function verifyModel(
  modelDir: string,
  expectedPath: string,
  options: { device?: Device; atol?: number } = {},
): Promise<VerifyReport> {
  const file = await openSafetensors(expectedPath);
  const reference = await readReference(file).finally(() => file.close());
  const model = await loadLlama(modelDir, { device: options.device, onWarning: () => {} });
  try {
    return await compareWithReference(model, reference, options.atol);
  } finally {
    model.dispose();
  }
}
