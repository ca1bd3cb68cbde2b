/**
 * `pnpm generate` end to end, as child processes: the exact greedy ids of a trained model (from a directory
 * and from a hub download), errors that say what to do, and Ctrl-C.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer } from '../packages/llama3/src/hub/hub-server.fixture.js';
import { describeWithShared, fixture } from '../test-support/fixtures.js';
import { runToEnd, start, writeTinyInstructModel } from './cli/program.fixture.js';

const STORIES = fixture('stories260K');
const PROMPT_IDS = '1,403,407,261,378'; // "Once upon a time" in llama2.c's vocabulary, after BOS
const greedyArgs = ['--ids', PROMPT_IDS, '--max-new-tokens', '64', '--temperature', '0', '--print-ids'];

async function expectedGreedyIds(): Promise<string> {
  const expected = JSON.parse(await readFile(join(STORIES, 'expected.json'), 'utf8')) as {
    greedy_ids: number[];
  };
  return expected.greedy_ids.join(',');
}

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'generate-test-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describeWithShared('pnpm generate on stories260K (a trained model)', () => {
  it('prints exactly the reference greedy ids, as one line and nothing else on stdout', async () => {
    const r = await runToEnd('generate.ts', ['--model', '../shared/fixtures/stories260K', ...greedyArgs]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${await expectedGreedyIds()}\n`);
    expect(r.stderr).toMatch(/64 tokens in .* s/);
  });

  it('--profile prints the GPU time per op and changes no id', async ({ skip }) => {
    const r = await runToEnd('generate.ts', [
      '--model',
      STORIES,
      ...greedyArgs,
      '--device',
      'webgpu',
      '--profile',
    ]);
    if (r.stderr.includes('no adapter available') && !process.env.REQUIRE_WEBGPU)
      return skip('no WebGPU adapter');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${await expectedGreedyIds()}\n`);
    expect(r.stderr).toContain('GPU time per op over 64 tokens');
    // Every op of a step, each called once per token or once per layer and token (stories260K: 5 layers).
    const calls = Object.fromEntries(
      [...r.stderr.matchAll(/^ {2}(\w+) +(\d+) +[\d.]+ +[\d.]+%$/gm)].map((m) => [m[1], Number(m[2])]),
    );
    expect(calls).toMatchObject({ linear: expect.any(Number), attention: 5 * 64, argmax: 64 });
  });

  it('gives the same ids on the CPU device, with `--` passed through by pnpm', async () => {
    const r = await runToEnd('generate.ts', ['--', '--model', STORIES, ...greedyArgs, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`${await expectedGreedyIds()}\n`);
  });

  it('sampling draws the same ids on WebGPU (on the device) as on the CPU device, from the same seed', async ({
    skip,
  }) => {
    const sampled = ['--ids', PROMPT_IDS, '--max-new-tokens', '64', '--print-ids', '--seed', '5'];
    const filters = ['--top-k', '40', '--repetition-penalty', '1.1']; // and the defaults: T 0.6, top-p 0.9
    const gpu = await runToEnd('generate.ts', [
      '--model',
      STORIES,
      ...sampled,
      ...filters,
      '--device',
      'webgpu',
    ]);
    if (gpu.stderr.includes('no adapter available') && !process.env.REQUIRE_WEBGPU)
      return skip('no WebGPU adapter');
    const cpu = await runToEnd('generate.ts', [
      '--model',
      STORIES,
      ...sampled,
      ...filters,
      '--device',
      'cpu',
    ]);
    expect(gpu.code, gpu.stderr).toBe(0);
    expect(cpu.code, cpu.stderr).toBe(0);
    // The GPU computes in f32 and the CPU's reference in f64: they could differ at a near-tie of two
    // tokens' noisy scores (within about 1e-5), which these 64 draws do not have.
    expect(gpu.stdout).toBe(cpu.stdout);
    expect(gpu.stdout).not.toBe(`${await expectedGreedyIds()}\n`);
  });

  it('downloads a hub id from the hub (HF_ENDPOINT) into the cache (HF_HUB_CACHE), then generates', async () => {
    const files = {
      'config.json': await readFile(join(STORIES, 'config.json'), 'utf8'),
      'model.safetensors': new Uint8Array(await readFile(join(STORIES, 'model.safetensors'))),
    };
    const hub = await startHubServer([{ repo: 'karpathy/stories260K', commit: 'a'.repeat(40), files }]);
    try {
      const cache = join(tmp, 'hub-cache');
      const env = {
        HF_ENDPOINT: hub.url,
        HF_HUB_CACHE: cache,
        HF_TOKEN: undefined,
        HF_HUB_OFFLINE: undefined,
      };
      const r = await runToEnd('generate.ts', ['--model', 'karpathy/stories260K', ...greedyArgs], env);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${await expectedGreedyIds()}\n`);
      expect(r.stderr).toContain('downloading karpathy/stories260K');
      expect(r.stderr).toMatch(/model\.safetensors .*100%/);
      const snapshot = join(cache, 'models--karpathy--stories260K', 'snapshots', 'a'.repeat(40));
      expect((await readFile(join(snapshot, 'config.json'), 'utf8')).length).toBeGreaterThan(0);
    } finally {
      await hub.close();
    }
  });

  it('tells the user to set HF_TOKEN when the hub refuses a gated repo', async () => {
    const files = {
      'config.json': await readFile(join(STORIES, 'config.json'), 'utf8'),
      'model.safetensors': new Uint8Array(await readFile(join(STORIES, 'model.safetensors'))),
    };
    const hub = await startHubServer([
      { repo: 'meta-llama/gated', commit: 'b'.repeat(40), files, token: 'x' },
    ]);
    try {
      const env = { HF_ENDPOINT: hub.url, HF_HUB_CACHE: join(tmp, 'gated-cache'), HF_TOKEN: undefined };
      const r = await runToEnd('generate.ts', ['--model', 'meta-llama/gated', '--prompt', 'hi'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('HF_TOKEN');
    } finally {
      await hub.close();
    }
  });

  it('says to use --ids and --print-ids when the model has another vocabulary than Llama 3', async () => {
    const r = await runToEnd('generate.ts', [
      '--model',
      STORIES,
      '--prompt',
      'Once upon a time',
      '--device',
      'cpu',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--print-ids');
  });
});

describe('pnpm generate', () => {
  it('fails with what a model directory must contain when --model does not exist', async () => {
    const r = await runToEnd('generate.ts', ['--model', join(tmp, 'no-such-model'), '--prompt', 'hi']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: .*no-such-model/m);
    expect(r.stderr).toContain('config.json with model.safetensors');
    expect(r.stdout).toBe('');
  });

  it('fails the same way for a directory that is not a checkpoint', async () => {
    const r = await runToEnd('generate.ts', ['--model', tmp, '--prompt', 'hi', '--device', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('is not a Llama checkpoint');
    expect(r.stderr).toContain('params.json with consolidated.00.pth');
  });

  it('exits with status 2 and a pointer to --help on a usage mistake', async () => {
    for (const args of [
      ['--prompt', 'hi'],
      ['--model', tmp],
      ['--model', tmp, '--ids', '1,x'],
      ['--bogus'],
    ]) {
      const r = await runToEnd('generate.ts', args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain('pnpm generate --help');
    }
  });

  for (const device of ['auto', 'cpu']) {
    it(`stops on Ctrl-C on --device ${device}, keeps the text, releases the device and exits with 130`, async () => {
      const dir = await writeTinyInstructModel(join(tmp, 'tiny'));
      const args = ['--model', dir, '--prompt', 'hello', '--max-new-tokens', '5000', '--device', device];
      const program = start('generate.ts', args);
      await program.waitForStdout((out) => out.length > 'hello'.length + 20);
      program.child.kill('SIGINT');
      // A device that was not destroyed would keep Node alive: exit() would time out.
      expect(await program.exit(30_000)).toBe(130);
      expect(program.stderr()).toContain('[stopped by Ctrl-C]');
      expect(program.stderr()).toMatch(/\d+ tokens in/);
    });
  }
});

describe('--help', () => {
  for (const script of ['demo.ts', 'generate.ts', 'chat.ts']) {
    it(`works for ${script}`, async () => {
      const r = await runToEnd(script, ['--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: pnpm ${script.replace('.ts', '')} `));
      expect(r.stdout).toContain('--device auto|webgpu|cpu');
    });
  }
});
