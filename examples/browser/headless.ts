/**
 * A headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: messages
 * are JSON separated by NUL bytes on file descriptors 3 and 4), so that tests can run the example page in
 * a real browser with no WebSocket client and no browser download: Debian's `chromium` package will do.
 * Headless Chromium gives WebGPU a software adapter (SwiftShader) with `--enable-unsafe-webgpu`.
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** The Chromium to run: `$CHROMIUM` if set (undefined when it does not exist), else the first usual path. */
export function findChromium(): string | undefined {
  const wanted = process.env.CHROMIUM;
  if (wanted) return existsSync(wanted) ? wanted : undefined;
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) =>
    existsSync(p),
  );
}

/** What the page left behind: the value of `expression` once it is truthy, and the console's messages. */
export interface PageOutcome {
  value: string;
  console: string[];
}

/**
 * Opens `url` in a headless Chromium at `executable`, waits (polling every 100 ms, at most `timeoutMs`)
 * until `expression` evaluates to a non-empty string in the page, and returns it with what the page
 * logged. Throws with the console's messages when the page does not get there in time.
 */
export async function runPage(
  executable: string,
  url: string,
  expression: string,
  timeoutMs = 120_000,
): Promise<PageOutcome> {
  const profile = mkdtempSync(join(tmpdir(), 'headless-chromium-'));
  const browser = spawn(
    executable,
    [
      '--headless=new',
      '--remote-debugging-pipe',
      '--enable-unsafe-webgpu',
      '--no-sandbox', // containers and CI runners rarely allow Chromium's sandbox
      '--disable-dev-shm-usage', // nor a large /dev/shm
      '--no-first-run',
      `--user-data-dir=${profile}`,
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] },
  );
  const toBrowser = browser.stdio[3] as Writable;
  const fromBrowser = browser.stdio[4] as Readable;
  // The pipes break when the browser ends; its exit (below) is what reports that.
  toBrowser.on('error', () => {});
  fromBrowser.on('error', () => {});
  const stderr: string[] = [];
  browser.stderr!.setEncoding('utf8').on('data', (s: string) => stderr.push(s));
  const console: string[] = [];
  const pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let buffered = '';
  fromBrowser.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let end = buffered.indexOf('\0');
    while (end >= 0) {
      const message = JSON.parse(buffered.slice(0, end)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: {
          type?: string;
          args?: { value?: unknown; description?: string }[];
          exceptionDetails?: { exception?: { description?: string }; text?: string };
        };
      };
      buffered = buffered.slice(end + 1);
      end = buffered.indexOf('\0');
      if (message.id !== undefined) {
        const call = pending.get(message.id);
        pending.delete(message.id);
        if (message.error) call?.reject(new Error(message.error.message));
        else call?.resolve(message.result);
      } else if (message.method === 'Runtime.consoleAPICalled') {
        const args = message.params?.args ?? [];
        console.push(`${message.params?.type}: ${args.map((a) => a.value ?? a.description).join(' ')}`);
      } else if (message.method === 'Runtime.exceptionThrown') {
        const details = message.params?.exceptionDetails;
        console.push(`exception: ${details?.exception?.description ?? details?.text}`);
      }
    }
  });
  const send = (method: string, params: object = {}, sessionId?: string) =>
    new Promise<unknown>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      toBrowser.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  // A browser that fails to start or dies fails every call still waiting for an answer.
  const exited = new Promise<void>((resolve) => {
    const end = (why: string) => {
      for (const call of pending.values()) call.reject(new Error(`Chromium ${why}`));
      pending.clear();
      resolve();
    };
    browser.once('exit', (code, signal) => end(`exited (${signal ?? code})`));
    browser.once('error', (error) => end(`did not start: ${error.message}`));
  });
  try {
    const { targetId } = (await send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    const { sessionId } = (await send('Target.attachToTarget', { targetId, flatten: true })) as {
      sessionId: string;
    };
    await send('Runtime.enable', {}, sessionId);
    await send('Page.navigate', { url }, sessionId);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const { result } = (await send('Runtime.evaluate', { expression, returnByValue: true }, sessionId)) as {
        result: { value?: unknown };
      };
      if (typeof result.value === 'string' && result.value !== '') return { value: result.value, console };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the page did not finish in ${timeoutMs} ms; its console:\n${console.join('\n')}`);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nChromium's stderr:\n${stderr.join('').slice(-2000)}`, {
      cause: error,
    });
  } finally {
    toBrowser.write(`${JSON.stringify({ id: nextId++, method: 'Browser.close' })}\0`);
    const killer = setTimeout(() => browser.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
    rmSync(profile, { recursive: true, force: true });
  }
}
