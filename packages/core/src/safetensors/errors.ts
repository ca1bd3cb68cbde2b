/**
 * The one error type every safetensors problem is reported with, so callers can tell a bad checkpoint
 * apart from a bug or an I/O failure and show the user which file and tensor to look at.
 * @module
 */

/** Where a safetensors problem was found. */
export interface SafetensorsErrorContext {
  /** The file (or other source name) being read or written, when known. */
  file?: string | undefined;
  /** The tensor concerned, when the problem is about one tensor. */
  tensor?: string | undefined;
  /** The underlying error (an I/O failure, a JSON syntax error), kept for debugging. */
  cause?: unknown;
}

/**
 * A malformed, inconsistent or unsupported safetensors file, sharded index or write request. The message
 * names the file and tensor (when known) and the problem.
 */
export class SafetensorsError extends Error {
  /** The file the problem was found in, when known. */
  readonly file: string | undefined;
  /** The tensor the problem is about, when it is about one. */
  readonly tensor: string | undefined;

  /** `problem` is a short description; the file and tensor from `context` are prefixed to the message. */
  constructor(problem: string, context: SafetensorsErrorContext = {}) {
    const where = [
      context.file === undefined ? undefined : context.file,
      context.tensor === undefined ? undefined : `tensor '${context.tensor}'`,
    ].filter((s) => s !== undefined);
    super(where.length > 0 ? `${where.join(': ')}: ${problem}` : problem, { cause: context.cause });
    this.name = 'SafetensorsError';
    this.file = context.file;
    this.tensor = context.tensor;
  }
}
