/**
 * `pnpm browser` end to end, as a child process: it serves the page and a model until Ctrl-C, and refuses
 * a model directory it cannot serve.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runToEnd, start } from './cli/program.fixture.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'browser-cli-test-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

describe('pnpm browser', () => {
  it('serves the page and a tiny random model until Ctrl-C', async () => {
    const program = start('browser.ts', ['--port', '0']);
    await program.waitForStdout((out) => /open http:\/\/127\.0\.0\.1:\d+\/ /.test(out), 60_000);
    const url = /open (http:\S+)/.exec(program.stdout())![1]!;
    expect(await (await fetch(url)).text()).toContain('Llama 3 on WebGPU');
    const config = (await (await fetch(new URL('model/config.json', url))).json()) as { vocab_size: number };
    expect(config.vocab_size).toBe(128256);
    program.child.kill('SIGINT');
    expect(await program.exit()).toBe(0);
    expect(program.stderr()).toMatch(/tiny Llama 3 with random weights/);
  });

  it('says what a model directory must hold for the page', async () => {
    const empty = await runToEnd('browser.ts', ['--model', tmp, '--port', '0']);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/has no config\.json/);
    await writeFile(join(tmp, 'config.json'), '{}');
    const noWeights = await runToEnd('browser.ts', ['--model', tmp, '--port', '0']);
    expect(noWeights.code).toBe(1);
    expect(noWeights.stderr).toMatch(/has no model\.safetensors or model\.safetensors\.index\.json/);
  });
});
