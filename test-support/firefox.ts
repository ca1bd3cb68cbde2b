/**
 * Headless Firefox as a Vitest browser provider: a third WebGPU implementation (wgpu and its WGSL compiler,
 * naga) beside Dawn in Node and Chromium. Playwright drives only its own patched Firefox builds and
 * WebdriverIO needs geckodriver, neither of which a Debian package provides, so this provider starts the
 * system's Firefox itself on the page Vitest gives it: the page reports back to Vitest over its own
 * connection, which is all the op tests need (they use no clicks, screenshots or other automation).
 * @module
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineBrowserProvider } from '@vitest/browser';

/** The Firefox to run: `FIREFOX`, else the first of the usual Debian paths that exists. */
export function findFirefox(): string | undefined {
  const wanted = process.env.FIREFOX;
  if (wanted) return existsSync(wanted) ? wanted : undefined;
  return ['/usr/bin/firefox-esr', '/usr/bin/firefox'].find((p) => existsSync(p));
}

// WebGPU on (Firefox enables it by default on some platforms only), on any adapter (software ones
// included), and none of a new profile's first-run pages, update checks or reports.
const PREFS = {
  'dom.webgpu.enabled': true,
  'gfx.webgpu.ignore-blocklist': true,
  'browser.shell.checkDefaultBrowser': false,
  'browser.startup.homepage_override.mstone': 'ignore',
  'browser.aboutwelcome.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.reportingpolicy.firstRun': false,
  'app.update.disabledForTesting': true,
};

/** The provider: one headless Firefox with a fresh profile per page Vitest opens. */
export function headlessFirefox(executable: string) {
  return defineBrowserProvider({
    name: 'headless-firefox',
    supportedBrowser: ['firefox'],
    options: { executable },
    providerFactory: () => {
      const running: { child: ChildProcess; profile: string }[] = [];
      return {
        name: 'headless-firefox',
        supportsParallelism: false,
        getCommandsContext: () => ({}),
        async openPage(_sessionId: string, url: string) {
          const profile = mkdtempSync(join(tmpdir(), 'firefox-profile-'));
          const prefs = Object.entries(PREFS).map(
            ([k, v]) => `user_pref(${JSON.stringify(k)}, ${JSON.stringify(v)});`,
          );
          writeFileSync(join(profile, 'user.js'), `${prefs.join('\n')}\n`);
          const child = spawn(executable, ['--headless', '--no-remote', '--profile', profile, url], {
            stdio: 'ignore',
          });
          child.on('error', (error) => console.error(`headless-firefox: ${error.message}`));
          running.push({ child, profile });
        },
        async close() {
          for (const { child, profile } of running.splice(0)) {
            if (child.exitCode === null) {
              const exited = new Promise((resolve) => child.once('exit', resolve));
              child.kill('SIGTERM');
              await exited;
            }
            rmSync(profile, { recursive: true, force: true });
          }
        },
      };
    },
  });
}
