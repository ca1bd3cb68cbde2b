/**
 * Random-access byte sources: the one abstraction every checkpoint reader reads through, so a multi-GB file
 * is never loaded at once and the same parser works on a Node file, a `fetch` range reader or a buffer.
 *
 * This module is browser-safe (no Node imports); the file-backed source lives in `@proj/core/node`.
 * @module
 */

/**
 * Bytes that can be read at any offset, a piece at a time.
 *
 * Readers validate offsets against `size` before calling `read`, so an implementation may treat an
 * out-of-range request as a bug and throw.
 */
export interface ByteSource {
  /** Total length in bytes, fixed when the source was opened. */
  readonly size: number;
  /**
   * Exactly `length` bytes starting at `offset`. Throws when the range is outside `[0, size]` or the
   * underlying storage ends early; never returns fewer bytes than asked for. The result may share memory
   * with the source, so treat it as read-only.
   *
   * `into`, when given and at least `length` bytes long, is memory the caller lends for the result: a
   * source that copies reads into it and returns a view of it, so that a loader streaming gigabytes reuses
   * one buffer instead of allocating (and faulting in, and collecting) a new one per read. A source that
   * already holds the bytes may return its own view instead; callers use what is returned either way.
   */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases the underlying resource (a file handle, say). Optional: in-memory sources need none. */
  close?(): Promise<void>;
}

/** `into` when it can hold `length` bytes (as a view of exactly that many), else a new array. */
export function readTarget(length: number, into?: Uint8Array): Uint8Array {
  return into && into.byteLength >= length ? into.subarray(0, length) : new Uint8Array(length);
}

/** Throws a `RangeError` unless `[offset, offset + length)` is a valid range of a source of `size` bytes. */
export function checkByteRange(size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`read(${offset}, ${length}): offset and length must be non-negative integers`);
  }
  if (offset + length > size) {
    throw new RangeError(`read(${offset}, ${length}): past the end of a ${size}-byte source`);
  }
}

/**
 * A `ByteSource` over bytes already in memory. Reads return views into `bytes` (no copy), which is why
 * callers must not write to what they get back.
 */
export function memorySource(bytes: Uint8Array): ByteSource {
  return {
    size: bytes.byteLength,
    read(offset: number, length: number): Promise<Uint8Array> {
      try {
        checkByteRange(bytes.byteLength, offset, length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}
