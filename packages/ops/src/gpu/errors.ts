/**
 * Errors that GPU work reports to the caller, always naming the op that caused them.
 * @module
 */

/** A validation or out-of-memory error raised by the GPU for an op. */
export class GpuOpError extends Error {
  /** @param op the op whose dispatch or allocation failed. */
  constructor(
    readonly op: string,
    detail: string,
  ) {
    super(`${op}: ${detail}`);
    this.name = 'GpuOpError';
  }
}

/** The GPU device was lost (driver reset, device destroyed, GPU removed); tensors on it are gone. */
export class DeviceLostError extends Error {
  /** @param op the op that found the device lost. */
  constructor(
    readonly op: string,
    reason: string,
  ) {
    super(`${op}: the WebGPU device was lost (${reason}); create a new device and reload the tensors`);
    this.name = 'DeviceLostError';
  }
}
