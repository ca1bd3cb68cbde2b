/**
 * `pnpm test:browser`: the op set's kernel tests and the model's fixtures in headless Chromium, then in
 * headless Firefox (`vitest.browser.config.ts`): two more WebGPU implementations beside Dawn in Node. A
 * browser that is not installed is skipped with a message, unless REQUIRE_BROWSER=1 (CI), where that is a
 * failure.
 */
import { spawnSync } from 'node:child_process';
import { findChromium } from '../examples/browser/headless.js';
import { findFirefox } from '../test-support/firefox.js';

const browsers = [
  { name: 'chromium', path: findChromium(), env: 'CHROMIUM' },
  { name: 'firefox', path: findFirefox(), env: 'FIREFOX' },
];
let failed = false;
for (const { name, path, env } of browsers) {
  if (!path) {
    const message = `no ${name} for the browser tests (bash scripts/setup-browser.sh, or set ${env})`;
    if (process.env.REQUIRE_BROWSER === '1') {
      console.error(`error: REQUIRE_BROWSER=1 but ${message}`);
      failed = true;
    } else {
      console.warn(`skipping: ${message}`);
    }
    continue;
  }
  const run = spawnSync('pnpm', ['exec', 'vitest', 'run', '--config', 'vitest.browser.config.ts'], {
    stdio: 'inherit',
    env: { ...process.env, TEST_BROWSER: name, [env]: path },
  });
  if (run.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
