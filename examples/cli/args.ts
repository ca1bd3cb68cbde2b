/**
 * Command-line arguments for the example programs: `node:util` parseArgs plus `--help`, a usage error that
 * the runner turns into exit status 2, and number options checked against their range.
 * @module
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** A mistake in the command line: the runner prints it with a pointer to `--help` and exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * Parses `argv` against `options` (strict: unknown options and stray words are usage errors). Every program
 * also takes `-h`/`--help`: it prints `usage` and this returns undefined, so the caller exits with status 0.
 */
export function parseCommandLine<const O extends OptionsConfig>(
  usage: string,
  options: O,
  argv: readonly string[] = process.argv.slice(2),
): ParsedValues<O> | undefined {
  // `pnpm generate -- --model x` hands the `--` over literally; parseArgs would take everything after it
  // for positionals, so it is dropped.
  const args = argv.filter((a) => a !== '--');
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  return values as ParsedValues<O>;
}

/** What {@link parseCommandLine} returns for `options`. */
export type ParsedValues<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; strict: true }>
>['values'];

/** `value` as a number in `[min, max]` (an integer when `integer`), or undefined when absent. */
export function numberArg(
  name: string,
  value: string | undefined,
  range: { min?: number; max?: number; integer?: boolean } = {},
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  const { min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY, integer = false } = range;
  const ok =
    value.trim() !== '' && Number.isFinite(n) && n >= min && n <= max && (!integer || Number.isInteger(n));
  if (!ok) {
    const kind = integer ? 'an integer' : 'a number';
    const bounds = [
      min > Number.NEGATIVE_INFINITY && `>= ${min}`,
      max < Number.POSITIVE_INFINITY && `<= ${max}`,
    ]
      .filter(Boolean)
      .join(' and ');
    throw new UsageError(`--${name} must be ${kind}${bounds ? ` ${bounds}` : ''}, got '${value}'`);
  }
  return n;
}

/** A comma-separated list of token ids (`--ids 1,403,407`). */
export function idsArg(name: string, value: string): number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((s) => !/^\d+$/.test(s))) {
    throw new UsageError(
      `--${name} must be token ids separated by commas (such as 1,403,407), got '${value}'`,
    );
  }
  return parts.map(Number);
}
