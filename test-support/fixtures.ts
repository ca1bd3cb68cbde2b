/**
 * Locates the shared reference data (`<repo root>/../shared/`: golden fixtures and tokenizer files) for
 * tests. It is not part of the repository: without it those tests are skipped with a message, except in CI
 * (`CI=true`), where a missing folder is a failure, so CI can never pass by silently skipping.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { toCoreDType, toFloat32, viewAs } from '@proj/core';
import { openSafetensors } from '@proj/core/node';
import { describe, it } from 'vitest';

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Where the shared folder should be. */
export const SHARED_DIR = resolve(REPO_ROOT, '..', 'shared');

/** Where the golden fixtures should be. */
export const FIXTURES_DIR = join(SHARED_DIR, 'fixtures');

/** True when the fixtures folder exists. */
export const HAVE_FIXTURES = existsSync(join(FIXTURES_DIR, 'README.md'));

/** Absolute path of `rel` inside the fixtures folder. */
export function fixture(rel: string): string {
  return join(FIXTURES_DIR, rel);
}

/**
 * `describe` for tests that need a folder of the shared data: runs normally when it is present, is skipped
 * (with the reason in its title) when absent, and becomes a failing test when absent in CI.
 */
export function describeWithShared(
  name: string,
  body: () => void,
  present = HAVE_FIXTURES,
  what = FIXTURES_DIR,
): void {
  if (present) {
    describe(name, body);
  } else if (process.env.CI === 'true') {
    describe(name, () => {
      it('needs the shared reference data', () => {
        throw new Error(`${what} not found; CI must provide it`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${what} not found)`, body);
  }
}

/** Every tensor of a fixture safetensors file (`rel` inside the fixtures folder), as f32 values. */
export async function readFixtureFloats(rel: string): Promise<Map<string, Float32Array>> {
  const file = await openSafetensors(fixture(rel));
  try {
    const out = new Map<string, Float32Array>();
    for (const name of file.names()) {
      const dtype = toCoreDType(file.info(name).dtype, name);
      out.set(name, toFloat32(dtype, viewAs(dtype, await file.read(name))));
    }
    return out;
  } finally {
    await file.close();
  }
}
