import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openHttpCheckpoint } from './http.js';
import { serializeSafetensors } from './writer.js';

const f32 = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
const A = { name: 'a', dtype: 'F32', shape: [2], data: f32([1, 2]) } as const;
const B = { name: 'b', dtype: 'F32', shape: [3], data: f32([3, 4, 5]) } as const;
const index = (map: Record<string, string>) => JSON.stringify({ metadata: {}, weight_map: map });

// A web server holding model directories: every file answers Range requests; a missing one is a 404.
const FILES = new Map<string, Uint8Array | string>([
  ['/single/model.safetensors', serializeSafetensors([A, B])],
  ['/sharded/model.safetensors.index.json', index({ a: 's1.safetensors', b: 's2.safetensors' })],
  ['/sharded/s1.safetensors', serializeSafetensors([A])],
  ['/sharded/s2.safetensors', serializeSafetensors([B])],
  ['/hostile/model.safetensors.index.json', index({ a: '../single/model.safetensors' })],
  ['/unlisted/model.safetensors.index.json', index({ a: 's1.safetensors' })],
  ['/unlisted/s1.safetensors', serializeSafetensors([A, B])],
]);

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === '/broken/model.safetensors.index.json') return void res.writeHead(500, 'Oops').end();
    const file = FILES.get(req.url ?? '');
    if (file === undefined) return void res.writeHead(404, 'Not Found').end();
    const body = typeof file === 'string' ? new TextEncoder().encode(file) : file;
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m) return void res.writeHead(200).end(body);
    const [start, end] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res
      .writeHead(206, { 'content-range': `bytes ${start}-${end}/${body.length}` })
      .end(body.subarray(start, end + 1));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

async function values(url: string): Promise<Record<string, number[]>> {
  const reader = await openHttpCheckpoint(url);
  const out: Record<string, number[]> = {};
  for (const name of reader.names())
    out[name] = [...new Float32Array((await reader.read(name)).slice().buffer)];
  await reader.close();
  return out;
}

describe('openHttpCheckpoint', () => {
  it('reads a single model.safetensors, and a sharded checkpoint through its index, alike', async () => {
    const expected = { a: [1, 2], b: [3, 4, 5] };
    expect(await values(`${base}/single`)).toEqual(expected);
    expect(await values(`${base}/sharded/`)).toEqual(expected);
  });

  it('refuses a failing index, a shard outside the directory, and shards that disagree with the index', async () => {
    await expect(openHttpCheckpoint(`${base}/broken`)).rejects.toThrow(/index\.json: HTTP 500 Oops/);
    await expect(openHttpCheckpoint(`${base}/hostile`)).rejects.toThrow(/not a plain file name/);
    await expect(openHttpCheckpoint(`${base}/unlisted`)).rejects.toThrow(/not in the index's weight_map/);
    await expect(openHttpCheckpoint(`${base}/nothing`)).rejects.toThrow(
      /model\.safetensors: bytes 0-0: HTTP 404/,
    );
  });
});
