/**
 * The sampling options that `generate` and `chat` share, from the command line to the library's options.
 * @module
 */
import type { SamplingOptions } from '@proj/llama3';
import { numberArg } from './args.js';

/** parseArgs declarations of the sampling options (all strings, checked by {@link samplingOptions}). */
export const SAMPLING_ARGS = {
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'min-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  seed: { type: 'string' },
} as const;

/** The sampling options given on the command line; options left out keep the library's defaults. */
export function samplingOptions(args: Partial<Record<keyof typeof SAMPLING_ARGS, string>>): SamplingOptions {
  return withoutUndefined({
    temperature: numberArg('temperature', args.temperature, { min: 0 }),
    topK: numberArg('top-k', args['top-k'], { min: 0, integer: true }),
    topP: numberArg('top-p', args['top-p'], { min: 0, max: 1 }),
    minP: numberArg('min-p', args['min-p'], { min: 0, max: 1 }),
    repetitionPenalty: numberArg('repetition-penalty', args['repetition-penalty'], { min: 0 }),
    seed: numberArg('seed', args.seed, { integer: true }),
  });
}

/** `o` without its undefined entries (an undefined value would override a default). */
export function withoutUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Lets Node handle pending events (Ctrl-C, typed lines). On the CPU device every `await` of a generation
 * step resolves at once, so without this a signal would wait until generation ends.
 */
export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
