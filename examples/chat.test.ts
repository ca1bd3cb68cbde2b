/**
 * `pnpm chat` end to end on a tiny random instruct-shaped checkpoint: a turn, Ctrl-C in the middle of an
 * answer (stops the answer, not the program), a second turn, `/exit`; and Ctrl-C at the prompt.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { start, writeTinyInstructModel } from './cli/program.fixture.js';

let tmp: string;
let model: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'chat-test-'));
  model = await writeTinyInstructModel(join(tmp, 'tiny-instruct'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** How many times `part` occurs in `text`. */
const count = (text: string, part: string) => text.split(part).length - 1;

describe('pnpm chat', () => {
  // Random weights rarely pick <|eot_id|>, so each answer runs to --max-new-tokens: long enough to be
  // interrupted, short enough to finish in a few seconds on the CPU.
  const args = () => [
    '--model',
    model,
    '--device',
    'cpu',
    '--max-new-tokens',
    '150',
    '--system',
    'Be brief.',
  ];

  it('stops an answer on Ctrl-C, keeps running, answers the next line, and exits 0 on /exit', async () => {
    const chat = start('chat.ts', args());
    await chat.waitForStdout((out) => out.includes('you> '));
    chat.child.stdin.write('Hello, who are you?\n');
    await chat.waitForStdout((out) => /llama> [\s\S]{10}/.test(out)); // some of the answer has streamed
    chat.child.kill('SIGINT');
    await chat.waitForStdout((out) => out.includes(' [stopped]\n'));
    expect(chat.child.exitCode).toBe(null); // still running

    chat.child.stdin.write('Tell me more.\n');
    // The second answer runs to its end and the prompt comes back.
    await chat.waitForStdout((out) => count(out, 'llama> ') === 2 && count(out, 'you> ') === 3);
    expect(count(chat.stdout(), '[stopped]')).toBe(1);
    chat.child.stdin.write('/exit\n');
    expect(await chat.exit(30_000)).toBe(0);
    expect(chat.stderr()).toContain('using the built-in Llama 3 vocabulary');
    // The second turn was answered with the first (and its stopped answer) still in the conversation.
    const held = [...chat.stderr().matchAll(/the conversation holds (\d+) of/g)].map((m) => Number(m[1]));
    expect(held).toHaveLength(2);
    expect(held[1]).toBeGreaterThan(held[0]! + 100);
  });

  it('quits with status 0 on Ctrl-C at the prompt, and on end of input', async () => {
    const chat = start('chat.ts', args());
    await chat.waitForStdout((out) => out.includes('you> '));
    chat.child.kill('SIGINT');
    expect(await chat.exit(30_000)).toBe(0);

    const piped = start('chat.ts', args());
    chat.child.stdin.end();
    piped.child.stdin.end('/reset\n');
    expect(await piped.exit(30_000)).toBe(0);
    expect(piped.stdout()).toContain('(conversation cleared)');
  });
});
