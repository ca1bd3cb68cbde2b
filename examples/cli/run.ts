/**
 * How the example programs end: exit status 0 on success, 1 on an error (printed as `error: ...` with what to
 * do about it), 2 on a usage mistake, 130 when stopped with Ctrl-C.
 * @module
 */
import { NoAdapterError } from '@proj/ops';
import { UsageError } from './args.js';

/** Exit statuses. */
export const EXIT = { ok: 0, error: 1, usage: 2, interrupted: 130 } as const;

/** What a model directory must hold, for errors about `--model`. */
const CHECKPOINT_HELP =
  'A model directory holds either the Hugging Face layout (config.json with model.safetensors, or ' +
  "model.safetensors.index.json and its shards) or Meta's (params.json with consolidated.00.pth, possibly " +
  'under original/). Or pass a hub id such as meta-llama/Llama-3.2-1B to download one.';

/** The advice that goes under an error message, when there is any. */
function adviceFor(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof NoAdapterError) return 'Or run on the CPU with --device cpu.';
  if (/not a Llama checkpoint|does not exist|not a directory and not a hub id/.test(message))
    return CHECKPOINT_HELP;
  if (/connection to .* failed/.test(message)) {
    return 'Check the network (or set HF_ENDPOINT), or pass a local model directory. If --model was meant as a local directory, it does not exist.';
  }
  return undefined;
}

/** Prints an error the way every program does. */
function reportError(error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  console.error(`error: ${message}`);
  const advice = adviceFor(error);
  if (advice) console.error(advice);
  if (process.env.DEBUG && error instanceof Error && error.stack) console.error(error.stack);
}

/**
 * Runs a program's `main` and sets the exit status from what it returns or throws. `main` must release the
 * device itself (in a `finally`), so Node can exit once the status is set.
 */
export function run(main: () => Promise<number | undefined>, usageHint: string): void {
  main().then(
    (code) => {
      process.exitCode = code ?? EXIT.ok;
    },
    (error: unknown) => {
      if (error instanceof UsageError) {
        console.error(`error: ${error.message}\n${usageHint}`);
        process.exitCode = EXIT.usage;
      } else {
        reportError(error);
        process.exitCode = EXIT.error;
      }
    },
  );
}
