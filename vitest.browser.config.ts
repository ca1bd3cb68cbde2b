/**
 * Tests in a real browser, each a WebGPU implementation of its own beside Dawn on lavapipe in Node:
 * headless Chromium (Dawn again, on its SwiftShader adapter) by default, headless Firefox (wgpu and naga,
 * on lavapipe) with `TEST_BROWSER=firefox`. The op set's kernel tests, and the model against Meta's
 * reference (the shared fixtures, which the test server serves). Run by `pnpm test` through
 * `scripts/test-browser.ts`, which skips a browser that is not installed (unless REQUIRE_BROWSER=1). Left
 * out: tests that read files or start processes (Node only).
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { headlessFirefox } from './test-support/firefox.js';

const root = fileURLToPath(new URL('.', import.meta.url));
const shared = resolve(root, '..', 'shared');
const fixtures = join(shared, 'fixtures');
const firefox = process.env.TEST_BROWSER === 'firefox';

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
      provider: firefox
        ? headlessFirefox(process.env.FIREFOX ?? '/usr/bin/firefox-esr')
        : playwright({
            launchOptions: {
              executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
              args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-dev-shm-usage'],
            },
          }),
      instances: [{ browser: firefox ? 'firefox' : 'chromium' }],
    },
  },
});
