/**
 * Tests in a real browser: headless Chromium, whose WebGPU runs on its own software adapter (SwiftShader),
 * a second implementation beside Dawn on lavapipe in Node. The op set's kernel tests, and the model
 * against Meta's reference (the shared fixtures, which the test server serves). Run by `pnpm test`
 * through `scripts/test-browser.ts`, which skips it without Chromium (unless REQUIRE_BROWSER=1). Left
 * out: tests that read files or start processes (Node only).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const shared = resolve(root, '..', 'shared');
const fixtures = join(shared, 'fixtures');

export default defineConfig({
  resolve: { conditions: ['browser', 'source', 'import', 'default'] },
  server: { fs: { allow: [root, shared] } },
  test: {
    include: [
      'packages/ops/src/ops/*.test.ts',
      'packages/ops/src/gpu/*.test.ts',
      'packages/llama3/src/fixtures.browser.test.ts',
    ],
    exclude: ['packages/ops/src/ops/meta-fixtures.test.ts', 'packages/ops/src/gpu/host-priority.test.ts'],
    provide: {
      fixturesUrl: existsSync(join(fixtures, 'README.md')) ? `/@fs${fixtures}` : undefined,
      ci: process.env.CI === 'true',
    },
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    browser: {
      enabled: true,
      headless: true,
      screenshotFailures: false,
      provider: playwright({
        launchOptions: {
          executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
          args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage'],
        },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
