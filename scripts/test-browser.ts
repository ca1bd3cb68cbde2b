/**
 * `pnpm test:browser`: the op set's kernel tests in headless Chromium (`vitest.browser.config.ts`). Without
 * a Chromium it says so and skips, unless REQUIRE_BROWSER=1 (CI), where that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { findChromium } from '../examples/browser/headless.js';

const chromium = findChromium();
if (!chromium) {
  const message = 'no Chromium for the browser tests (bash scripts/setup-browser.sh, or set CHROMIUM)';
  if (process.env.REQUIRE_BROWSER === '1') {
    console.error(`error: REQUIRE_BROWSER=1 but ${message}`);
    process.exit(1);
  }
  console.warn(`skipping: ${message}`);
  process.exit(0);
}
const run = spawnSync('pnpm', ['exec', 'vitest', 'run', '--config', 'vitest.browser.config.ts'], {
  stdio: 'inherit',
  env: { ...process.env, CHROMIUM: chromium },
});
process.exit(run.status ?? 1);
