import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../safetensors/reader.js';
import { serializeSafetensors } from '../safetensors/writer.js';
import { openHttpSource, readBody } from './http-source.js';

const BYTES = new Uint8Array(100_000).map((_, i) => (i * 7 + 3) & 0xff);
const SAFETENSORS = serializeSafetensors([
  {
    name: 'w',
    dtype: 'F32',
    shape: [2, 3],
    data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer),
  },
]);

// Paths: /bytes and /model.safetensors answer Range requests; /whole ignores them (200 and the whole
// file); /short sends one byte fewer than asked, /long one byte more; /shifted sends another range than asked.
function handle(req: IncomingMessage, res: ServerResponse): void {
  const path = req.url ?? '';
  const body = path === '/model.safetensors' ? SAFETENSORS : BYTES;
  if (!['/bytes', '/model.safetensors', '/whole', '/short', '/long', '/shifted'].includes(path)) {
    res.writeHead(404).end();
    return;
  }
  const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  if (path === '/whole' || !m) {
    res.writeHead(200, { 'content-length': body.length }).end(body);
    return;
  }
  let start = Number(m[1]);
  let end = Math.min(Number(m[2]), body.length - 1);
  if (path === '/shifted' && start > 0) [start, end] = [start + 1, end + 1];
  const stop = start === 0 ? end + 1 : path === '/short' ? end : path === '/long' ? end + 2 : end + 1;
  const slice = body.subarray(start, stop);
  res
    .writeHead(206, {
      'content-range': `bytes ${start}-${end}/${body.length}`,
      'content-length': slice.length,
    })
    .end(slice);
}

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer(handle);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

describe('openHttpSource', () => {
  it('reads the size from a first Range request and each read with one request for exactly its bytes', async () => {
    const seen: string[] = [];
    const counting: typeof fetch = (url, init) => {
      seen.push(new Headers(init?.headers).get('range') ?? '');
      return fetch(url, init);
    };
    const source = await openHttpSource(`${base}/bytes`, { fetch: counting });
    expect(source.size).toBe(BYTES.length);
    expect(await source.read(10, 5)).toEqual(BYTES.subarray(10, 15));
    const lent = new Uint8Array(70_000);
    const big = await source.read(30_000, 70_000, lent);
    expect(big.buffer).toBe(lent.buffer); // into the caller's memory
    expect(Buffer.from(big).equals(BYTES.subarray(30_000))).toBe(true);
    expect(await source.read(BYTES.length, 0)).toEqual(new Uint8Array(0)); // no request
    expect(seen).toEqual(['bytes=0-0', 'bytes=10-14', 'bytes=30000-99999']);
    await expect(source.read(BYTES.length - 1, 2)).rejects.toThrow(RangeError);
  });

  it('reads a safetensors file over HTTP like one in memory', async () => {
    const file = await SafetensorsFile.open(await openHttpSource(`${base}/model.safetensors`));
    expect(file.names()).toEqual(['w']);
    const bytes = await file.read('w');
    expect([...new Float32Array(bytes.slice().buffer)]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a server that ignores Range, a missing file, and responses of the wrong range or length', async () => {
    await expect(openHttpSource(`${base}/whole`)).rejects.toThrow(/does not answer Range requests/);
    await expect(openHttpSource(`${base}/missing`)).rejects.toThrow(/missing: bytes 0-0: HTTP 404/);
    const short = await openHttpSource(`${base}/short`);
    await expect(short.read(100, 50)).rejects.toThrow(/bytes 100-149: got 49 bytes, expected 50/);
    const long = await openHttpSource(`${base}/long`);
    await expect(long.read(100, 50)).rejects.toThrow(/bytes 100-149: the response runs past 50 bytes/);
    const shifted = await openHttpSource(`${base}/shifted`);
    await expect(shifted.read(100, 50)).rejects.toThrow(/asked for bytes 100-149, the server sent 101-150/);
  });

  it('names the URL when the request itself fails (nothing listens)', async () => {
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const dead = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/x`;
    await new Promise<void>((done) => closed.close(() => done()));
    await expect(openHttpSource(dead)).rejects.toThrow(/\/x: request for bytes 0-0 failed/);
  });
});

describe('readBody', () => {
  const response = (...chunks: number[][]) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const c of chunks) controller.enqueue(new Uint8Array(c));
          controller.close();
        },
      }),
    );

  it('joins the chunks, or writes them into the given array', async () => {
    expect([...(await readBody(response([1, 2], [3]), 3, 'x'))]).toEqual([1, 2, 3]);
    const into = new Uint8Array(5);
    const got = await readBody(response([4], [5, 6]), 5, 'x', into);
    expect(got.buffer).toBe(into.buffer);
    expect([...got]).toEqual([4, 5, 6]);
    expect(await readBody(new Response(null), 1, 'x')).toEqual(new Uint8Array(0));
  });

  it('stops at the first chunk past the limit, whatever the server declared', async () => {
    await expect(readBody(response([1, 2], [3, 4]), 3, 'where')).rejects.toThrow(
      'where: the response runs past 3 bytes',
    );
  });
});
