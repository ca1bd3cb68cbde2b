import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  // Tests import the workspace packages from their sources (the `source` export condition), no build needed.
  resolve: { conditions: ['source', 'import', 'node', 'default'] },
  ssr: { resolve: { conditions: ['source', 'import', 'node', 'default'], externalConditions: ['source'] } },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/bench/**/*.test.ts',
      'examples/**/*.test.ts',
      'docs/**/*.test.ts',
    ],
    // Tests written for a browser run in `vitest.browser.config.ts` (headless Chromium) only.
    exclude: [...configDefaults.exclude, '**/*.browser.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // WebGPU devices and big fixtures are heavy on a 2-core machine: run test files one at a time.
    fileParallelism: false,
    typecheck: {
      enabled: true,
      include: ['packages/*/src/**/*.test-d.ts', 'examples/**/*.test-d.ts'],
      tsconfig: './tsconfig.json',
    },
  },
});
