/**
 * Test helpers: a WebGPU device for kernel tests (or a clear skip), and tolerance checks that report the
 * worst element.
 * @module
 */
import { createWebGpuDevice, type WebGpuDevice, type WebGpuDeviceOptions } from './gpu/device.js';

const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;

/**
 * True when tests must fail rather than skip without an adapter: `REQUIRE_WEBGPU=1` in Node (CI sets it),
 * and always in a browser, where the tests run to test the browser's WebGPU.
 */
export const webgpuRequired: boolean = env ? env.REQUIRE_WEBGPU === '1' : true;

let announced = false;

/**
 * A WebGPU device for a test file, or `undefined` (with a message) when there is no adapter and
 * `REQUIRE_WEBGPU` is not set. Destroy it in `afterAll`.
 */
export async function testDevice(options: WebGpuDeviceOptions = {}): Promise<WebGpuDevice | undefined> {
  try {
    const device = await createWebGpuDevice(options);
    if (!announced) {
      announced = true;
      console.log(`WebGPU adapter: ${device.description}`);
    }
    return device;
  } catch (error) {
    if (webgpuRequired) throw error;
    console.warn(`skipping WebGPU tests: ${(error as Error).message}`);
    return undefined;
  }
}

/** Largest |a - b| and where it is; throws if lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; index: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let diff = 0;
  let index = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= diff)) {
      diff = d; // NaN lands here too and then fails every tolerance
      index = i;
    }
  }
  return { diff, index };
}

/** Throws with the worst element unless `|actual - expected| <= atol + rtol * |expected|` everywhere. */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol, rtol = 0, what = 'values' }: { atol: number; rtol?: number; what?: string },
): void {
  if (actual.length !== expected.length)
    throw new Error(`${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      const worst = maxAbsDiff(actual, expected);
      throw new Error(
        `${what}: element ${i} is ${a}, expected ${e} (atol ${atol}, rtol ${rtol}); max |diff| ${worst.diff} at ${worst.index}`,
      );
    }
  }
}

/** Whether two byte arrays hold the same bytes (Node's `Buffer.equals`, which browsers lack). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
