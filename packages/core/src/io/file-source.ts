/**
 * A `ByteSource` over a file on disk (Node only). It reads with positional reads on one open handle, so
 * only the requested ranges are ever in memory.
 * @module
 */
import { open } from 'node:fs/promises';
import { type ByteSource, checkByteRange, readTarget } from './byte-source.js';

/**
 * Opens `path` for reading as a `ByteSource`. The size is taken once at open time; call `close()` when done
 * (reads after `close()` fail).
 */
export async function openFileSource(path: string): Promise<ByteSource> {
  const handle = await open(path, 'r');
  let size: number;
  try {
    size = (await handle.stat()).size;
  } catch (e) {
    await handle.close();
    throw e;
  }
  let closed = false;
  return {
    size,
    async read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array> {
      checkByteRange(size, offset, length);
      if (closed) throw new Error(`read from '${path}' after close()`);
      const out = readTarget(length, into);
      let done = 0;
      // A positional read may return fewer bytes than asked (large requests are split by the OS).
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, offset + done);
        if (bytesRead === 0) {
          throw new Error(`'${path}' ended at byte ${offset + done}, expected ${size} bytes (file changed?)`);
        }
        done += bytesRead;
      }
      return out;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await handle.close();
    },
  };
}
