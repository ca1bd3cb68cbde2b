/**
 * Runs the code examples of the documentation, so that no example can silently go stale.
 *
 * What is collected:
 * - every ```ts block inside an `@example` tag of a doc comment in `packages/*\/src/**\/*.ts` (test files
 *   excluded). An `@example` without a ```ts block is itself a failure;
 * - every ```ts block of the guides (`docs/*.md`) and of the package READMEs this test owns
 *   (`packages/{core,ops,llama3}/README.md`).
 *
 * What is done with each block:
 * - type-checked: all blocks go through one `tsc` run (the repository's compiler options, the `source`
 *   export condition), so a block that does not compile fails, and `// @ts-expect-error` lines in a block
 *   are checked to really be errors;
 * - run: the block is written to a temporary `.mts` file inside the repository (so `@proj/*` resolve) and
 *   run with `node --conditions=source --import tsx` in a child process, several at a time. It fails when it
 *   throws, exits with a non-zero status, or does not exit within the timeout (a WebGPU device that is not
 *   destroyed keeps Node alive). An example that fails only because there is no WebGPU adapter is skipped,
 *   unless `REQUIRE_WEBGPU=1`, as the WebGPU unit tests do.
 *
 * Markers (first line of the block, or for Markdown an HTML comment on the line before the fence):
 * - `// doc-example: no-run` (`<!-- doc-example: no-run -->`): type-check only. For examples that need
 *   files or a network that a test machine does not have (`loadLlama('./Llama-3.2-1B')`).
 * - `// doc-example: skip` (`<!-- doc-example: skip -->`): neither (excerpts of a file, shell sessions
 *   written as ts). Use sparingly.
 *
 * Printed values: on a line `console.log(...); // expected`, the printed text is compared with the comment.
 * The rule, which is deliberately loose about formatting and strict about values:
 * - both sides are split into tokens: numbers, words and single punctuation characters; whitespace and
 *   quote characters are ignored, so `[ 1, 2 ]` equals `[1, 2]` and `'bf16'` equals `bf16`;
 * - typed arrays print as `Float32Array [1, 2]`; the type name may be left out of the comment;
 * - a number written with d decimals in the comment matches a printed number that gives it when rounded or
 *   truncated to d decimals (`0.8485` matches 0.848528, `0.7310` matches 0.731059); an integer must match
 *   exactly;
 * - comments starting with `e.g.`, `~`, `like` or `for example`, or containing `...` or `…`, are
 *   illustrations and are not compared;
 * - `console.log` calls spanning several lines, and comments on other lines, are not compared.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WORK = join(ROOT, 'node_modules', '.cache', 'doc-examples', String(process.pid));
/** Per-example limit: the examples take well under a second each; a hang is a bug (or a live GPU device). */
const TIMEOUT_MS = 60_000;
/** Examples in flight at once: most of each one's time is Node and tsx starting, not CPU work. */
const CONCURRENCY = Math.min(8, availableParallelism() + 2);
/** The guides and READMEs whose blocks are checked (the tokenizer README is maintained elsewhere). */
const MARKDOWN_GLOBS = { dir: 'docs', readmes: ['core', 'ops', 'llama3'] };

/** What `createWebGpuDevice` throws when there is no adapter (`NoAdapterError`). */
const NO_ADAPTER = /WebGPU: no adapter available/;

type Mode = 'run' | 'no-run' | 'skip';

interface Example {
  /** `packages/ops/src/ops/binary.ts:71 add` or `docs/ops.md:40`. */
  name: string;
  /** Repository-relative file and the line of the block's first code line. */
  file: string;
  line: number;
  code: string;
  mode: Mode;
}

interface Expectation {
  id: number;
  line: number;
  expected: string;
}

interface RunResult {
  ok: boolean;
  problem?: string;
  output: string;
  logs: Map<number, string[]>;
}

// ---------------------------------------------------------------------------------------------------------
// Collecting the examples

function walk(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => f.endsWith('.ts') && !/\.test(-d)?\.ts$/.test(f) && !f.includes('node_modules'));
}

function sourceFiles(): string[] {
  const out: string[] = [];
  for (const pkg of readdirSync(join(ROOT, 'packages'))) {
    try {
      out.push(...walk(join('packages', pkg, 'src')));
    } catch {
      // a package without src/
    }
  }
  return out.sort();
}

function markerOf(code: string, htmlMarker?: string): Mode {
  const first = code.split('\n').find((l) => l.trim() !== '') ?? '';
  const inline = /^\s*\/\/\s*doc-example:\s*(no-run|skip)\b/.exec(first)?.[1];
  return (inline ?? htmlMarker ?? 'run') as Mode;
}

/** The name of what the doc comment ending at `end` documents. */
function symbolAfter(text: string, end: number): string {
  const next = text.slice(end).split('\n').slice(1, 6).join('\n');
  const m =
    /^\s*(?:export\s+)?(?:declare\s+)?(?:default\s+)?(?:abstract\s+)?(?:async\s+)?(?:function\*?|class|interface|type|const|let|enum)\s+([\w$]+)/m.exec(
      next,
    ) ?? /^\s*(?:static\s+|readonly\s+|get\s+|set\s+|async\s+|\*)*([\w$]+)\s*[<(:=]/m.exec(next);
  return m?.[1] ?? '(module)';
}

/** Examples of doc comments, and the `@example` tags that have no ```ts block. */
function commentExamples(): { examples: Example[]; fenceless: string[] } {
  const examples: Example[] = [];
  const fenceless: string[] = [];
  for (const file of sourceFiles()) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const comment of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const start = comment.index;
      const firstLine = text.slice(0, start).split('\n').length;
      const lines = comment[0]
        .split('\n')
        .map((l) => l.replace(/^\s*\/?\*+\/?\s?/, '').replace(/\s*\*\/$/, ''));
      const symbol = symbolAfter(text, start + comment[0].length);
      let inExample = false;
      let exampleLine = 0;
      let fence: { line: number; code: string[] } | undefined;
      let blocks = 0;
      const closeExample = () => {
        if (inExample && blocks === 0) fenceless.push(`${file}:${exampleLine} ${symbol}`);
        inExample = false;
      };
      for (const [i, line] of lines.entries()) {
        if (fence) {
          if (/^\s*```\s*$/.test(line)) {
            const code = fence.code.join('\n');
            examples.push({
              name: `${file}:${fence.line} ${symbol}`,
              file,
              line: fence.line,
              code,
              mode: markerOf(code),
            });
            fence = undefined;
            blocks++;
          } else fence.code.push(line);
          continue;
        }
        if (/^@\w+/.test(line.trim())) {
          closeExample();
          if (line.trim().startsWith('@example')) {
            inExample = true;
            exampleLine = firstLine + i;
            blocks = 0;
          }
          continue;
        }
        if (inExample && /^\s*```(ts|typescript)\s*$/.test(line))
          fence = { line: firstLine + i + 1, code: [] };
      }
      closeExample();
    }
  }
  return { examples, fenceless };
}

function markdownFiles(): string[] {
  const docs = readdirSync(join(ROOT, MARKDOWN_GLOBS.dir))
    .filter((f) => f.endsWith('.md'))
    .map((f) => join(MARKDOWN_GLOBS.dir, f));
  return [...docs.sort(), ...MARKDOWN_GLOBS.readmes.map((p) => join('packages', p, 'README.md'))];
}

function markdownExamples(): Example[] {
  const examples: Example[] = [];
  for (const file of markdownFiles()) {
    let text: string;
    try {
      text = readFileSync(join(ROOT, file), 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    let fence: { line: number; code: string[]; marker?: string } | undefined;
    let other = false; // inside a fence of another language
    for (const [i, line] of lines.entries()) {
      if (fence) {
        if (/^```\s*$/.test(line)) {
          const code = fence.code.join('\n');
          examples.push({
            name: `${file}:${fence.line}`,
            file,
            line: fence.line,
            code,
            mode: markerOf(code, fence.marker),
          });
          fence = undefined;
        } else fence.code.push(line);
        continue;
      }
      if (other) {
        if (/^```\s*$/.test(line)) other = false;
        continue;
      }
      if (/^```(ts|typescript)\s*$/.test(line)) {
        const marker = /<!--\s*doc-example:\s*(no-run|skip)\s*-->/.exec(lines[i - 1] ?? '')?.[1];
        fence = { line: i + 2, code: [], marker };
      } else if (/^```/.test(line)) other = true;
    }
  }
  return examples;
}

// ---------------------------------------------------------------------------------------------------------
// Instrumenting printed values

const LOG_MARK = '\u0001doc-log ';

/** Finds `console.log(...); // expected` lines and routes them through `__docLog(id, ...)`. */
function instrument(code: string): { code: string; expectations: Expectation[] } {
  const expectations: Expectation[] = [];
  const lines = code.split('\n').map((line, i) => {
    const m = /^(\s*)console\.log\((.*)\);\s*\/\/ ?(.*)$/.exec(line);
    if (!m || !isLiteralExpectation(m[3]!)) return line;
    const id = expectations.length;
    expectations.push({ id, line: i + 1, expected: m[3]!.trim() });
    return `${m[1]}__docLog(${id}, ${m[2]});`;
  });
  // Appended, not prepended, so that line numbers in stack traces stay those of the block (imports and
  // function declarations are hoisted).
  lines.push(
    '',
    "import { inspect as __docInspect } from 'node:util';",
    'function __docFormat(v: unknown, nested = false): string {',
    '  if (typeof v === \'string\') return nested ? "\'" + v + "\'" : v;',
    '  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {',
    "    const items = Array.from(v as unknown as ArrayLike<number>, String).join(', ');",
    "    return v.constructor.name + ' [' + items + ']';",
    '  }',
    "  if (Array.isArray(v)) return '[' + v.map((x) => __docFormat(x, true)).join(', ') + ']';",
    "  if (v instanceof Error) return v.name + ': ' + v.message;",
    "  if (typeof v === 'object' && v !== null) return __docInspect(v, { depth: 4, breakLength: Infinity });",
    '  return String(v);',
    '}',
    'function __docLog(id: number, ...args: unknown[]): void {',
    "  const text = args.map((a) => __docFormat(a)).join(' ');",
    `  process.stdout.write(${JSON.stringify(LOG_MARK)} + id + ' ' + JSON.stringify(text) + '\\n');`,
    '}',
  );
  return { code: lines.join('\n'), expectations };
}

function isLiteralExpectation(comment: string): boolean {
  const c = comment.trim();
  return c !== '' && !/^(e\.g\.|~|like\b|for example\b)/i.test(c) && !/\.\.\.|…/.test(c);
}

const TYPED_ARRAY =
  /^(Float32|Float64|Int8|Int16|Int32|Uint8|Uint8Clamped|Uint16|Uint32|BigInt64|BigUint64)Array$/;

function tokens(text: string): string[] {
  return (
    text
      .replace(/['"`]/g, ' ')
      .match(/-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|-?Infinity|NaN|[A-Za-z_$][\w$]*|\S/g) ?? []
  );
}

const isNumber = (t: string) => /^-?(?:\d|\.\d|Infinity)|^NaN$/.test(t);

/** Compares printed text with an expected comment by the rule in this file's header; returns a problem or undefined. */
function compareOutput(actual: string, expected: string): string | undefined {
  const a = tokens(actual);
  const e = tokens(expected);
  let i = 0;
  let j = 0;
  while (i < a.length || j < e.length) {
    const x = a[i];
    const y = e[j];
    if (x !== undefined && TYPED_ARRAY.test(x) && x !== y) {
      i++; // the comment left the type name out
      continue;
    }
    if (x === undefined || y === undefined) return `printed ${actual} but the comment says ${expected}`;
    if (isNumber(x) && isNumber(y)) {
      const decimals = /\.(\d+)/.exec(y.split(/e/i)[0]!)?.[1]?.length ?? 0;
      const exponent = Number(/e([+-]?\d+)$/i.exec(y)?.[1] ?? 0);
      const [vx, vy] = [Number(x), Number(y)];
      // Scaled so that the comment's last digit is the units digit: rounding or truncating must give it.
      const scale = 10 ** (decimals - exponent);
      const digits = Math.round(vy * scale);
      const integer = decimals === 0 && exponent >= 0;
      const same = Number.isNaN(vy)
        ? Number.isNaN(vx)
        : vx === vy ||
          (!integer &&
            Number.isFinite(vx) &&
            (Math.round(vx * scale) === digits || Math.trunc(vx * scale) === digits));
      if (!same) return `printed ${actual} but the comment says ${expected} (${x} is not ${y})`;
    } else if (x !== y) {
      return `printed ${actual} but the comment says ${expected} ('${x}' is not '${y}')`;
    }
    i++;
    j++;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Running and type-checking

function fileNameOf(index: number, example: Example): string {
  const slug = example.name
    .replace(/[^\w]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(-80);
  return `${String(index).padStart(3, '0')}-${slug}`;
}

function exec(
  args: string[],
  timeout: number,
): Promise<{
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}> {
  return new Promise((resolve) => {
    const started = Date.now();
    execFile(
      process.execPath,
      args,
      {
        cwd: ROOT,
        timeout,
        killSignal: 'SIGKILL',
        maxBuffer: 64 << 20,
        env: { ...process.env, NODE_OPTIONS: '', FORCE_COLOR: '0' },
      },
      (error, stdout, stderr) => {
        const e = error as (Error & { code?: number | string; signal?: string; killed?: boolean }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : null) : 0,
          signal: e?.signal ?? null,
          stdout,
          stderr,
          timedOut: Boolean(e?.killed) && Date.now() - started >= timeout - 50,
        });
      },
    );
  });
}

async function runExample(path: string): Promise<RunResult> {
  const r = await exec(['--conditions=source', '--import', 'tsx', path], TIMEOUT_MS);
  const logs = new Map<number, string[]>();
  const shown: string[] = [];
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith(LOG_MARK)) {
      const rest = line.slice(LOG_MARK.length);
      const space = rest.indexOf(' ');
      const id = Number(rest.slice(0, space));
      const text = JSON.parse(rest.slice(space + 1)) as string;
      logs.set(id, [...(logs.get(id) ?? []), text]);
      shown.push(text);
    } else shown.push(line);
  }
  const output = [shown.join('\n').trim(), r.stderr.trim()].filter(Boolean).join('\n--- stderr ---\n');
  const tail = output.split('\n').slice(-30).join('\n');
  if (r.timedOut) {
    return {
      ok: false,
      problem: `did not exit within ${TIMEOUT_MS / 1000} s (is a WebGPU device left undestroyed?)\n${tail}`,
      output,
      logs,
    };
  }
  if (r.code !== 0) {
    return { ok: false, problem: `exited with ${r.code ?? r.signal}\n${tail}`, output, logs };
  }
  return { ok: true, output, logs };
}

/** Type-checks every written block in one tsc run; returns the diagnostics by file name (without extension). */
async function typecheck(files: string[]): Promise<Map<string, string[]>> {
  const config = {
    extends: relative(WORK, join(ROOT, 'tsconfig.base.json')),
    compilerOptions: { noEmit: true, customConditions: ['source'], sourceMap: false, declaration: false },
    files: files.map((f) => `./${f}.mts`),
  };
  writeFileSync(join(WORK, 'tsconfig.json'), JSON.stringify(config, null, 2));
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const r = await exec([tsc, '-p', join(WORK, 'tsconfig.json'), '--pretty', 'false'], 240_000);
  const out = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of r.stdout.split('\n')) {
    const m = /^(.*?)\((\d+),(\d+)\): (error .*)$/.exec(line);
    if (m) {
      const path = m[1]!.replace(/\\/g, '/');
      const base = /([^/]+)\.mts$/.exec(path)?.[1];
      // Errors outside the examples (a package mid-edit) are not the examples' fault: they are ignored here
      // and caught by `pnpm typecheck`.
      if (base === undefined || !path.includes('doc-examples')) {
        current = undefined;
        continue;
      }
      current = out.get(base) ?? [];
      out.set(base, current);
      current.push(`line ${m[2]}: ${m[4]}`);
    } else if (current && /^\s/.test(line) && line.trim()) {
      current[current.length - 1] += `\n  ${line.trim()}`;
    }
  }
  if (r.code !== 0 && out.size === 0 && !/error TS/.test(r.stdout)) {
    out.set('*', [`tsc failed: ${r.stdout}${r.stderr}`.slice(0, 2000)]);
  }
  return out;
}

async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  });
  await Promise.all(lanes);
}

// ---------------------------------------------------------------------------------------------------------
// The tests

const { examples: fromComments, fenceless } = commentExamples();
const fromMarkdown = markdownExamples();
const all = [...fromComments, ...fromMarkdown];
const fileOf = new Map(all.map((e, i) => [e, fileNameOf(i, e)]));
const expectationsOf = new Map<Example, Expectation[]>();
const results = new Map<Example, RunResult>();
let diagnostics = new Map<string, string[]>();

beforeAll(async () => {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const checked = all.filter((e) => e.mode !== 'skip');
  for (const e of checked) {
    const name = fileOf.get(e)!;
    writeFileSync(join(WORK, `${name}.mts`), `${e.code}\n`);
    if (e.mode === 'run') {
      const { code, expectations } = instrument(e.code);
      expectationsOf.set(e, expectations);
      writeFileSync(join(WORK, `${name}.run.mts`), `${code}\n`);
    }
  }
  const started = Date.now();
  const types = typecheck(checked.map((e) => fileOf.get(e)!));
  await pool(
    checked.filter((e) => e.mode === 'run'),
    CONCURRENCY,
    async (e) => {
      results.set(e, await runExample(join(WORK, `${fileOf.get(e)}.run.mts`)));
    },
  );
  diagnostics = await types;
  const counts = {
    run: checked.filter((e) => e.mode === 'run').length,
    typecheckOnly: checked.filter((e) => e.mode === 'no-run').length,
    skipped: all.length - checked.length,
  };
  console.log(
    `doc examples: ${counts.run} run, ${counts.typecheckOnly} type-checked only, ${counts.skipped} skipped ` +
      `(${fromComments.length} from doc comments, ${fromMarkdown.length} from Markdown) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
}, 600_000);

afterAll(() => {
  rmSync(WORK, { recursive: true, force: true });
});

describe('doc examples', () => {
  it('every @example has a ```ts block', () => {
    expect(fenceless, 'these @example tags have no ```ts block').toEqual([]);
  });

  it('tsc could check them', () => {
    expect(diagnostics.get('*') ?? []).toEqual([]);
  });

  for (const e of all) {
    const test = e.mode === 'skip' ? it.skip : it;
    test(`${e.name}${e.mode === 'no-run' ? ' (type-checked only)' : ''}`, ({ skip }) => {
      const problems: string[] = [];
      const types = diagnostics.get(fileOf.get(e)!);
      if (types) problems.push(`does not type-check:\n${types.join('\n')}`);
      if (e.mode === 'run') {
        const r = results.get(e)!;
        // As the WebGPU unit tests do: no adapter skips, unless REQUIRE_WEBGPU=1 (CI) makes it a failure.
        if (!r.ok && !types && NO_ADAPTER.test(r.output) && process.env.REQUIRE_WEBGPU !== '1') {
          return skip('no WebGPU adapter');
        }
        if (!r.ok) problems.push(r.problem!);
        else {
          for (const x of expectationsOf.get(e) ?? []) {
            const printed = r.logs.get(x.id) ?? [];
            if (printed.length === 0) problems.push(`line ${x.line}: console.log never ran`);
            for (const text of printed) {
              const problem = compareOutput(text, x.expected);
              if (problem) problems.push(`line ${x.line}: ${problem}`);
            }
          }
        }
      }
      if (problems.length > 0) {
        throw new Error(`${e.file}, example starting at line ${e.line}:\n${problems.join('\n\n')}`);
      }
    });
  }
});

describe('docs/ops.md', () => {
  it('names every function and class exported by the op files of @proj/ops', () => {
    const index = readFileSync(join(ROOT, 'packages/ops/src/index.ts'), 'utf8');
    const page = readFileSync(join(ROOT, 'docs/ops.md'), 'utf8');
    const missing: string[] = [];
    for (const [, file] of index.matchAll(/export \* from '\.\/(ops\/[\w-]+)\.js'/g)) {
      const text = readFileSync(join(ROOT, 'packages/ops/src', `${file}.ts`), 'utf8');
      for (const [, name] of text.matchAll(/^export (?:async )?(?:function\*?|class) ([\w$]+)/gm)) {
        if (!page.includes(`\`${name}`)) missing.push(`${name} (packages/ops/src/${file}.ts)`);
      }
    }
    expect(missing, 'add these to docs/ops.md').toEqual([]);
  });
});

describe('the output comparison rule', () => {
  it('is loose about formatting and strict about values', () => {
    expect(compareOutput('Float32Array [11, 22]', 'Float32Array [11, 22]')).toBeUndefined();
    expect(compareOutput('Float32Array [11, 22]', '[11, 22]')).toBeUndefined();
    expect(compareOutput('[2, 3]', '[ 2,3 ]')).toBeUndefined();
    expect(
      compareOutput('Float32Array [0.8485281, 2.2627418]', 'Float32Array [0.8485, 2.2627]'),
    ).toBeUndefined();
    expect(compareOutput('bf16 Float32Array [1, 0.333984375]', "'bf16' [1, 0.333984375]")).toBeUndefined();
    expect(compareOutput('Float32Array [0.8486]', '[0.8484]')).toBeDefined();
    expect(compareOutput('Int32Array [1, 2]', '[1, 3]')).toBeDefined();
    expect(compareOutput('[1, 2, 3]', '[1, 2]')).toBeDefined();
    expect(compareOutput('3', '3.0')).toBeUndefined();
    expect(compareOutput('3.1', '3')).toBeDefined();
    expect(compareOutput('Float32Array [2.5]', '[2.4]')).toBeDefined();
    expect(compareOutput('0.7310586', '0.7310')).toBeUndefined();
    expect(compareOutput('-0.2689414', '-0.2689')).toBeUndefined();
    expect(compareOutput('1.46e-7', '1.4e-7')).toBeUndefined();
    expect(compareOutput('1.5e-7', '1.4e-7')).toBeDefined();
  });
});
