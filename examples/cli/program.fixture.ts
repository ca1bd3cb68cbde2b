/**
 * Test-only: runs the example programs as child processes the way `pnpm <name>` does (Node with tsx and the
 * `source` condition, from the repository root), collects their output, and writes a tiny random checkpoint.
 * @module
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type LlamaConfig, writeHfCheckpoint } from '@proj/llama3';
import { REPO_ROOT } from '../../test-support/fixtures.js';

const TSX = pathToFileURL(createRequire(join(REPO_ROOT, 'package.json')).resolve('tsx')).href;

/** A program that is running: its output so far, and ways to wait for it. */
export interface Program {
  /** The child process. */
  child: ChildProcessWithoutNullStreams;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves once `test(stdout)` holds; rejects after `ms` or when the program ends first. */
  waitForStdout(test: (stdout: string) => boolean, ms?: number): Promise<void>;
  /** The exit code (or `signal:NAME`); kills the program and rejects after `ms`. */
  exit(ms?: number): Promise<number | string>;
}

/** Starts `examples/<script>` with `args`; `env` is added to this process's environment. */
export function start(script: string, args: string[], env: Record<string, string | undefined> = {}): Program {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', TSX, join('examples', script), ...args],
    { cwd: REPO_ROOT, env: { ...process.env, ...env } },
  );
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const ended = new Promise<number | string>((resolve) =>
    child.on('close', (code, signal) => resolve(code ?? `signal:${signal}`)),
  );
  const describe = () => `\n--- stdout:\n${out.slice(-2000)}\n--- stderr:\n${err.slice(-2000)}`;
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForStdout: (test, ms = 30_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => done(new Error(`timed out after ${ms} ms waiting for output${describe()}`)),
          ms,
        );
        const check = () => test(out) && done();
        const onEnd = () => done(new Error(`the program ended before the output came${describe()}`));
        const done = (error?: Error) => {
          clearTimeout(timer);
          child.stdout.off('data', check);
          child.off('close', onEnd);
          if (error) reject(error);
          else resolve();
        };
        child.stdout.on('data', check);
        child.on('close', onEnd);
        check();
      }),
    exit: (ms = 60_000) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), ms);
      return ended.then((code) => {
        clearTimeout(timer);
        if (code === 'signal:SIGKILL')
          throw new Error(`the program did not end within ${ms} ms${describe()}`);
        return code;
      });
    },
  };
}

/** Runs `examples/<script>` to the end; returns its exit code and output. */
export async function runToEnd(
  script: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  ms = 60_000,
): Promise<{ code: number | string; stdout: string; stderr: string }> {
  const program = start(script, args, env);
  program.child.stdin.end();
  const code = await program.exit(ms);
  return { code, stdout: program.stdout(), stderr: program.stderr() };
}

/** An instruct-shaped Llama 3 in miniature: the real vocabulary and stop ids, tiny dims, tied embeddings. */
export const TINY_INSTRUCT = {
  hiddenSize: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  intermediateSize: 64,
  vocabSize: 128256,
  rmsNormEps: 1e-5,
  ropeTheta: 500000,
  ropeScaling: null,
  tieWordEmbeddings: true,
  maxPositions: 8192,
  bosTokenId: 128000,
  eosTokenIds: [128001, 128008, 128009],
} as const satisfies LlamaConfig;

/** Writes {@link TINY_INSTRUCT} with seeded random weights to `dir` (HF layout, no tokenizer file). */
export function writeTinyInstructModel(dir: string): Promise<string> {
  return writeHfCheckpoint(dir, TINY_INSTRUCT);
}
