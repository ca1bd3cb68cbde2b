/**
 * Errors for Meta's `.pth` checkpoints. Every problem with a file (its zip container, its pickle, the tensors
 * it describes) is a `PthError`, so callers can tell a bad or hostile checkpoint apart from a bug.
 * @module
 */

/** A malformed, unsupported or refused `.pth` checkpoint (including its pickle). */
export class PthError extends Error {
  /** `message` says what is wrong and where (file, tensor, pickle offset) when known. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PthError';
  }
}

/** A malformed or unsupported zip container. A `PthError`, since a `.pth` file is a zip. */
export class ZipError extends PthError {
  /** `message` names the archive and entry when known. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ZipError';
  }
}
