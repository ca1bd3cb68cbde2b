import { memorySource } from '@proj/core';
import { describe, expect, it } from 'vitest';
import { PthError, ZipError } from './errors.js';
import { PickleWriter, stateDictPickle, type TensorSpec } from './pickle-writer.fixture.js';
import { buildPth } from './pth-builder.fixture.js';
import { openPth } from './pth-file.js';

const bytes = (n: number, start = 0): Uint8Array => new Uint8Array(n).map((_, i) => (start + i) & 0xff);

const W: TensorSpec = {
  name: 'w',
  key: '0',
  storageType: 'BFloat16Storage',
  storageNumel: 6,
  offset: 0,
  size: [2, 3],
};

async function refusal(file: Uint8Array): Promise<string> {
  const error = await openPth(memorySource(file), 'bad.pth').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(PthError);
  return (error as Error).message;
}

describe('openPth on synthetic checkpoints', () => {
  it('reads tensors of every core dtype, views into shared storages and odd shapes', async () => {
    const tensors: TensorSpec[] = [
      { name: 'a', key: '0', storageType: 'FloatStorage', storageNumel: 10, offset: 0, size: [2, 2] },
      { name: 'a.view', key: '0', storageType: 'FloatStorage', storageNumel: 10, offset: 4, size: [3, 2] },
      { name: 'h', key: '1', storageType: 'HalfStorage', storageNumel: 3, offset: 0, size: [3] },
      { name: 'i', key: '2', storageType: 'IntStorage', storageNumel: 1, offset: 0, size: [] },
      { name: 'e', key: '3', storageType: 'BFloat16Storage', storageNumel: 0, offset: 0, size: [0, 5] },
      {
        name: 'ones',
        key: '1',
        storageType: 'HalfStorage',
        storageNumel: 3,
        offset: 1,
        size: [2, 1],
        stride: [1, 7],
      },
    ];
    const file = buildPth(
      tensors,
      { 0: bytes(40), 1: bytes(6, 100), 2: bytes(4, 200), 3: bytes(0) },
      { prefix: 'my ckpt' },
    );
    const pth = await openPth(memorySource(file), 'ok.pth');
    expect(pth.archivePrefix).toBe('my ckpt');
    expect(pth.names()).toEqual(['a', 'a.view', 'h', 'i', 'e', 'ones']);
    expect(pth.info('a')).toMatchObject({ dtype: 'f32', shape: [2, 2], stride: [2, 1], byteLength: 16 });
    expect(await pth.read('a')).toEqual(bytes(16));
    expect(await pth.read('a.view')).toEqual(bytes(24, 16));
    expect(pth.info('h').dtype).toBe('f16');
    expect(await pth.read('ones')).toEqual(bytes(4, 102));
    expect(pth.info('i')).toMatchObject({ dtype: 'i32', shape: [], byteLength: 4 });
    expect(await pth.read('e')).toEqual(new Uint8Array(0));
    await pth.close();
  });

  it('unwraps torch.nn.Parameter and keeps unsupported dtypes listed but unreadable', async () => {
    const w = new PickleWriter()
      .proto(2)
      .op('EMPTY_DICT')
      .str('p')
      .global('torch._utils', '_rebuild_parameter');
    w.global('torch._utils', '_rebuild_tensor_v2')
      .mark()
      .mark()
      .str('storage')
      .global('torch', 'DoubleStorage');
    w.str('0').str('cpu').int(2).op('TUPLE').op('BINPERSID').int(0).ints([2]).ints([1]).op('NEWFALSE');
    w.op('EMPTY_DICT').op('TUPLE').op('REDUCE').raw(0x88).op('EMPTY_DICT').raw(0x87).op('REDUCE');
    const pickle = w.op('SETITEM').stop().bytes();
    const pth = await openPth(memorySource(buildPth([], { 0: bytes(16) }, { pickle })), 'p.pth');
    expect(pth.names()).toEqual(['p']);
    expect(() => pth.info('p')).toThrow(
      /p\.pth: tensor 'p' is float64 \(DoubleStorage\), which the core does not support/,
    );
    await expect(pth.read('p')).rejects.toThrow(PthError);
  });
});

describe('openPth refuses hostile or broken checkpoints', () => {
  it('a pickle that calls os.system', async () => {
    const pickle = new PickleWriter()
      .proto(2)
      .global('os', 'system')
      .str('touch /tmp/pwned')
      .raw(0x85)
      .op('REDUCE')
      .stop();
    expect(await refusal(buildPth([], {}, { pickle: pickle.bytes() }))).toMatch(
      /^bad\.pth: pickle byte 2 \(GLOBAL\): refusing global 'os\.system'/,
    );
  });

  it('a builtins.eval global hidden in a tensor entry', async () => {
    const pickle = new PickleWriter().proto(2).op('EMPTY_DICT').str('w');
    pickle.str('builtins').str('eval').op('STACK_GLOBAL').str('__import__("os")').raw(0x85).op('REDUCE');
    const file = buildPth([], {}, { pickle: pickle.op('SETITEM').stop().bytes() });
    expect(await refusal(file)).toMatch(/refusing global 'builtins\.eval'/);
  });

  it('a storage shorter than the tensor it backs', async () => {
    const short = { ...W, storageNumel: 4 };
    expect(await refusal(buildPth([short], { 0: bytes(8) }))).toMatch(
      /bad\.pth: tensor 'w': needs elements \[0, 6\) of storage '0', which has 4/,
    );
    const offset = { ...W, offset: 3 };
    expect(await refusal(buildPth([offset], { 0: bytes(12) }))).toMatch(/needs elements \[3, 9\)/);
  });

  it('a storage record shorter than its storage', async () => {
    expect(await refusal(buildPth([W], { 0: bytes(8) }))).toMatch(
      /tensor 'w': storage record 'archive\/data\/0' has 8 bytes, less than 6 bfloat16 elements/,
    );
  });

  it('a missing or compressed storage record', async () => {
    expect(await refusal(buildPth([W], {}))).toMatch(/storage record 'archive\/data\/0' is missing/);
    const deflated = buildPth([W], {}, { records: { 'data/0': { data: bytes(12), method: 8 } } });
    expect(await refusal(deflated)).toMatch(/'archive\/data\/0' is compressed \(method 8\)/);
    const pickleDeflated = buildPth(
      [W],
      { 0: bytes(12) },
      { records: { 'data.pkl': { data: stateDictPickle([W]), method: 8 } } },
    );
    const error = await openPth(memorySource(pickleDeflated)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ZipError);
    expect((error as Error).message).toMatch(/compression method 8; only STORED/);
  });

  it('non-contiguous, negative or malformed layouts', async () => {
    expect(await refusal(buildPth([{ ...W, stride: [1, 2] }], { 0: bytes(12) }))).toMatch(
      /tensor 'w': stride \[1,2\] is not contiguous for size \[2,3\]/,
    );
    expect(await refusal(buildPth([{ ...W, size: [2, -3] }], { 0: bytes(12) }))).toMatch(
      /size has int\/float -3/,
    );
    expect(await refusal(buildPth([{ ...W, size: [2, 3, 1], stride: [3, 1] }], { 0: bytes(12) }))).toMatch(
      /stride has 2 dims but size has 3/,
    );
    const twice = [W, { ...W, name: 'v', storageNumel: 7 }];
    expect(await refusal(buildPth(twice, { 0: bytes(14) }))).toMatch(/storage '0' is described twice/);
  });

  it('things that are not state dicts of tensors', async () => {
    const notTensor = new PickleWriter()
      .proto(2)
      .op('EMPTY_DICT')
      .str('step')
      .int(5)
      .op('SETITEM')
      .stop()
      .bytes();
    expect(await refusal(buildPth([], {}, { pickle: notTensor }))).toMatch(
      /'step' is int\/float 5, not a tensor/,
    );
    const list = new PickleWriter().proto(2).op('EMPTY_LIST').stop().bytes();
    expect(await refusal(buildPth([], {}, { pickle: list }))).toMatch(/holds list of 0, not a state dict/);
    expect(await refusal(new Uint8Array([0x80, 0x02, 0x8a, 0x0a]))).toMatch(
      /legacy \(pre-1\.6\) torch\.save format/,
    );
    expect(await refusal(buildPth([W], { 0: bytes(12) }, { omit: ['data.pkl'] }))).toMatch(/found 0/);
    const big = buildPth(
      [W],
      { 0: bytes(12) },
      { records: { byteorder: { data: new TextEncoder().encode('big') } } },
    );
    expect(await refusal(big)).toMatch(/byte order 'big' is not supported/);
  });

  it('truncated checkpoints', async () => {
    const file = buildPth([W], { 0: bytes(12) });
    for (const n of [0, 1, 10, 100, file.length - 30, file.length - 1]) {
      expect(await refusal(file.subarray(0, n)), `truncated to ${n}`).toMatch(/^bad\.pth: /);
    }
  });
});
