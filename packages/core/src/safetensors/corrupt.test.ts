import { describe, expect, it } from 'vitest';
import { type ByteSource, memorySource } from '../io/byte-source.js';
import { SafetensorsError } from './errors.js';
import { SafetensorsFile } from './reader.js';
import { serializeSafetensors } from './writer.js';

/** A file with header text `header` (no padding) followed by `data`; `length` overrides the prefix. */
function raw(header: string | Uint8Array, data = new Uint8Array(0), length?: bigint): Uint8Array {
  const json = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + json.byteLength + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, length ?? BigInt(json.byteLength), true);
  out.set(json, 8);
  out.set(data, 8 + json.byteLength);
  return out;
}

/** A one-tensor header `{"t": {...entry}}`, with 16 data bytes after it. */
function withEntry(entry: unknown, extra: Record<string, unknown> = {}): Uint8Array {
  return raw(JSON.stringify({ t: entry, ...extra }), new Uint8Array(16));
}

async function failure(bytes: Uint8Array): Promise<SafetensorsError> {
  const error = await SafetensorsFile.open(memorySource(bytes), 'bad.safetensors').catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SafetensorsError);
  expect((error as Error).message).toMatch(/^bad\.safetensors: /);
  return error as SafetensorsError;
}

const good = { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] };

describe('corrupted safetensors files fail with a clear SafetensorsError', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['an empty file', () => new Uint8Array(0), /0 bytes, too short/],
    ['a truncated length prefix', () => new Uint8Array(5), /5 bytes, too short/],
    [
      'a header length of 2^53',
      () => raw('{}', new Uint8Array(0), 2n ** 53n),
      /exceeds the 104857600-byte limit/,
    ],
    ['a header length of 2^64-1', () => raw('{}', new Uint8Array(0), 2n ** 64n - 1n), /exceeds the .* limit/],
    [
      'a header longer than the file',
      () => raw('{}', new Uint8Array(0), 3n),
      /header length 3 is larger than the 2/,
    ],
    [
      'a file cut inside the header',
      () => serializeSafetensors([]).subarray(0, 12),
      /larger than the 4 bytes/,
    ],
    ['a header that is not JSON', () => raw('{"t": {"dtype": '), /header is not valid JSON/],
    ['a header that is not UTF-8', () => raw(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /not valid UTF-8/],
    ['a JSON array header', () => raw('[1, 2]'), /must be a JSON object, got an array/],
    ['a JSON null header', () => raw('null'), /must be a JSON object, got null/],
    ['a JSON string header', () => raw('"hi"'), /must be a JSON object, got the string "hi"/],
    ['an entry that is not an object', () => withEntry([1, 2]), /tensor 't': entry must be an object/],
    ['an unknown dtype', () => withEntry({ ...good, dtype: 'F128' }), /tensor 't': unknown dtype "F128"/],
    ['a lower-case dtype', () => withEntry({ ...good, dtype: 'f32' }), /unknown dtype "f32"/],
    ['a missing dtype', () => withEntry({ shape: [4], data_offsets: [0, 16] }), /unknown dtype undefined/],
    ['a shape that is not an array', () => withEntry({ ...good, shape: 4 }), /shape must be an array/],
    ['a negative dim', () => withEntry({ ...good, shape: [-2, -2] }), /has number -2, not a non-negative/],
    ['a fractional dim', () => withEntry({ ...good, shape: [0.5, 8] }), /not a non-negative integer/],
    ['a string dim', () => withEntry({ ...good, shape: ['4'] }), /has the string "4"/],
    ['an overflowing shape', () => withEntry({ ...good, shape: [2 ** 30, 2 ** 30, 2 ** 30] }), /too large/],
    [
      'a shape/size mismatch',
      () => withEntry({ ...good, shape: [3] }),
      /needs 12 bytes but data_offsets \[0, 16\] span 16/,
    ],
    ['an element-size mismatch', () => withEntry({ ...good, dtype: 'F64' }), /F64 needs 32 bytes/],
    [
      'offsets past the data',
      () => withEntry({ ...good, shape: [8], data_offsets: [0, 32] }),
      /run past the 16-byte/,
    ],
    [
      'negative offsets',
      () => withEntry({ ...good, data_offsets: [-4, 12] }),
      /must be non-negative integers/,
    ],
    [
      'fractional offsets',
      () => withEntry({ ...good, data_offsets: [0.5, 16.5] }),
      /must be non-negative integers/,
    ],
    [
      'huge offsets',
      () => withEntry({ ...good, data_offsets: [2 ** 60, 2 ** 60 + 16] }),
      /non-negative integers/,
    ],
    ['begin after end', () => withEntry({ ...good, data_offsets: [16, 0] }), /begin is after end/],
    ['three offsets', () => withEntry({ ...good, data_offsets: [0, 8, 16] }), /must be \[begin, end\]/],
    ['missing offsets', () => withEntry({ dtype: 'F32', shape: [4] }), /data_offsets must be \[begin, end\]/],
    [
      'overlapping ranges',
      () => withEntry(good, { u: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }),
      /tensor 'u': data overlaps tensor 't'/,
    ],
    [
      'metadata that is not a map',
      () => withEntry(good, { __metadata__: ['x'] }),
      /__metadata__ must be an object/,
    ],
    [
      'a non-string metadata value',
      () => withEntry(good, { __metadata__: { n: 1 } }),
      /__metadata__\['n'\] must/,
    ],
  ];
  for (const [what, make, message] of cases) {
    it(`rejects ${what}`, async () => {
      expect((await failure(make())).message).toMatch(message);
    });
  }

  it('rejects a file whose last byte was cut off, naming the tensor', async () => {
    const bytes = serializeSafetensors([{ name: 'w', dtype: 'bf16', shape: [3], data: new Uint8Array(6) }]);
    const error = await failure(bytes.subarray(0, bytes.byteLength - 1));
    expect(error.tensor).toBe('w');
    expect(error.message).toMatch(/data_offsets \[0, 6\] run past the 5-byte data section/);
  });

  it('accepts empty tensors anywhere, gaps between tensors, and header padding', async () => {
    const header = JSON.stringify({
      e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'U8', shape: [4], data_offsets: [12, 16] },
    });
    const file = await SafetensorsFile.open(memorySource(raw(`${header}    `, new Uint8Array(16).fill(7))));
    expect(file.names()).toEqual(['a', 'e', 'b']);
    expect(await file.read('b')).toEqual(new Uint8Array(4).fill(7));
    expect(await file.read('e')).toEqual(new Uint8Array(0));
  });

  it('keeps metadata keys like __proto__ as plain data', async () => {
    // Written as text: in an object literal `__proto__` would set the prototype instead of a key.
    const header = `{"__metadata__": {"__proto__": "x"}, "t": ${JSON.stringify(good)}}`;
    const file = await SafetensorsFile.open(memorySource(raw(header, new Uint8Array(16))));
    expect(Object.keys(file.metadata)).toEqual(['__proto__']);
    expect(Object.getOwnPropertyDescriptor(file.metadata, '__proto__')?.value).toBe('x');
  });

  it('reports unknown tensors and failing reads as SafetensorsErrors naming the tensor', async () => {
    const bytes = withEntry(good);
    const failing: ByteSource = {
      size: bytes.byteLength,
      read: (offset, length) =>
        offset < bytes.byteLength - 16
          ? memorySource(bytes).read(offset, length)
          : Promise.reject(new Error('EIO')),
    };
    const file = await SafetensorsFile.open(failing, 'disk.safetensors');
    expect(() => file.info('nope')).toThrow(/disk\.safetensors: tensor 'nope': no such tensor/);
    await expect(file.read('t')).rejects.toThrow(
      /disk\.safetensors: tensor 't': reading 16 bytes at offset \d+ failed: EIO/,
    );
    const short: ByteSource = { size: bytes.byteLength, read: async () => new Uint8Array(8) };
    await expect(SafetensorsFile.open(short)).rejects.toThrow(SafetensorsError);
  });
});
