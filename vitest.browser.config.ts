/**
 * The op set's kernel tests in a real browser: headless Chromium, whose WebGPU runs on its own software
 * adapter (SwiftShader), a second implementation beside Dawn on lavapipe in Node. Run by `pnpm test`
 * through `scripts/test-browser.mjs`, which skips it without Chromium (unless REQUIRE_BROWSER=1).
 * Left out: tests that read files or start processes (Node only).
 */
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: { conditions: ['browser', 'source', 'import', 'default'] },
  test: {
    include: ['packages/ops/src/ops/*.test.ts', 'packages/ops/src/gpu/*.test.ts'],
    exclude: ['packages/ops/src/ops/meta-fixtures.test.ts', 'packages/ops/src/gpu/host-priority.test.ts'],
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
