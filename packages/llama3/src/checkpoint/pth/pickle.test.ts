import { describe, expect, it } from 'vitest';
import { PthError } from './errors.js';
import { unpickle } from './pickle.js';
import { type PickleDict, PickleHost, type PickleTuple, type PickleValue } from './pickle-values.js';
import { PickleWriter, stateDictPickle } from './pickle-writer.fixture.js';
import { stateDictHooks } from './torch-globals.js';

function load(bytes: Uint8Array, limits?: Parameters<typeof unpickle>[2]): PickleValue {
  return unpickle(bytes, stateDictHooks(), limits);
}

function refusal(bytes: Uint8Array, limits?: Parameters<typeof unpickle>[2]): string {
  try {
    load(bytes, limits);
  } catch (e) {
    expect(e).toBeInstanceOf(PthError);
    return (e as Error).message;
  }
  throw new Error('expected the pickle to be refused');
}

const w = (): PickleWriter => new PickleWriter().proto(2);

describe('unpickle: values', () => {
  it('decodes ints, floats, strings, bytes, lists, tuples, dicts and the memo', () => {
    const bytes = w()
      .raw(0x95, 0, 0, 0, 0, 0, 0, 0, 0) // FRAME (ignored)
      .op('EMPTY_LIST')
      .op('MEMOIZE')
      .mark()
      .raw(0x4a, 0xff, 0xff, 0xff, 0xff) // BININT -1
      .raw(0x4b, 200) // BININT1
      .raw(0x4d, 0x34, 0x12) // BININT2
      .raw(0x8a, 2, 0x00, 0x80) // LONG1 -32768
      .raw(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // LONG1 2^64
      .raw(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0) // BINFLOAT 1.5
      .raw(0x8c, 2, 0xc3, 0xa9) // SHORT_BINUNICODE 'é'
      .raw(0x43, 2, 1, 2) // SHORT_BINBYTES
      .op('NONE')
      .raw(0x88) // NEWTRUE
      .raw(0x68, 0) // BINGET 0: the list itself
      .raw(0x65) // APPENDS
      .op('EMPTY_DICT')
      .str('k')
      .ints([1, 2, 3, 4])
      .op('SETITEM')
      .op('APPEND')
      .stop()
      .bytes();
    const list = load(bytes) as PickleValue[];
    expect(list.slice(0, 8)).toEqual([-1, 200, 0x1234, -32768, 2n ** 64n, 1.5, 'é', new Uint8Array([1, 2])]);
    expect(list.slice(8, 10)).toEqual([null, true]);
    expect(list[10]).toBe(list); // memo references are shared, cycles included
    const dict = list[11] as PickleDict;
    expect((dict.map.get('k') as PickleTuple).items).toEqual([1, 2, 3, 4]);
  });

  it('handles OrderedDict via STACK_GLOBAL and ignores the _metadata BUILD', () => {
    const bytes = w()
      .str('collections')
      .str('OrderedDict')
      .op('STACK_GLOBAL')
      .op('EMPTY_TUPLE')
      .op('REDUCE')
      .str('a')
      .raw(0x4b, 1)
      .op('SETITEM')
      .op('EMPTY_DICT')
      .str('_metadata')
      .op('EMPTY_DICT')
      .op('SETITEM')
      .op('BUILD')
      .stop()
      .bytes();
    const dict = load(bytes) as PickleDict;
    expect([...dict.map]).toEqual([['a', 1]]);
  });

  it('builds deep structures without recursion', () => {
    const n = 200_000;
    const bytes = w()
      .repeat(0x5d, n)
      .repeat(0x61, n - 1)
      .stop()
      .bytes();
    let depth = 0;
    for (let v = load(bytes) as PickleValue[]; v.length > 0; v = v[0] as PickleValue[]) depth++;
    expect(depth).toBe(n - 1);
  });
});

describe('unpickle: refusals', () => {
  it('refuses os.system, builtins.eval, posix.system and anything else off the allow-list', () => {
    const system = w().global('os', 'system').str('echo pwned').raw(0x85).op('REDUCE').stop().bytes();
    expect(refusal(system)).toMatch(/pickle byte 2 \(GLOBAL\): refusing global 'os\.system'/);
    const evil = w().str('builtins').str('eval').op('STACK_GLOBAL').str('1+1').raw(0x85).op('REDUCE').stop();
    expect(refusal(evil.bytes())).toMatch(/STACK_GLOBAL\): refusing global 'builtins\.eval'/);
    for (const [module, name] of [
      ['posix', 'system'],
      ['subprocess', 'Popen'],
      ['__builtin__', 'getattr'],
      ['torch', 'load'],
      ['torch._utils', '_rebuild_tensor'],
      ['torch', 'Tensor'],
    ]) {
      expect(refusal(w().global(module!, name!).stop().bytes())).toContain(
        `refusing global '${module}.${name}'`,
      );
    }
  });

  it('refuses calls to non-callables, BUILD on anything but dicts, and odd persistent ids', () => {
    const callStorage = w().global('torch', 'FloatStorage').op('EMPTY_TUPLE').op('REDUCE').stop().bytes();
    expect(refusal(callStorage)).toMatch(/REDUCE\): refusing to call torch\.FloatStorage/);
    const callStr = w().str('os.system').op('EMPTY_TUPLE').op('REDUCE').stop().bytes();
    expect(refusal(callStr)).toMatch(/refusing to call str "os\.system"/);
    const buildList = w().op('EMPTY_LIST').op('EMPTY_DICT').op('BUILD').stop().bytes();
    expect(refusal(buildList)).toMatch(/BUILD\): refusing BUILD of list of 0/);
    const pid = w().str('file').op('BINPERSID').stop().bytes();
    expect(refusal(pid)).toMatch(/BINPERSID\): unsupported persistent id str "file"/);
    const odArgs = w().global('collections', 'OrderedDict').str('x').raw(0x85).op('REDUCE').stop().bytes();
    expect(refusal(odArgs)).toMatch(/OrderedDict called with arguments/);
  });

  it('refuses opcodes outside the supported set, naming them', () => {
    expect(refusal(w().raw(0x81).stop().bytes())).toMatch(/\(NEWOBJ\): opcode not supported/);
    expect(refusal(w().raw(0x69).stop().bytes())).toMatch(/\(INST\): opcode not supported/);
    expect(refusal(w().raw(0xff).stop().bytes())).toMatch(/pickle byte 2 \(0xff\): unknown opcode/);
    expect(refusal(new Uint8Array([0x80, 9, 0x4e, 0x2e]))).toMatch(/protocol 9 is newer than 5/);
  });

  it('bounds nesting, stack and memo', () => {
    expect(refusal(w().repeat(0x28, 5000).bytes())).toMatch(/MARK nesting deeper than 1000/);
    const nones = w().mark().repeat(0x4e, 200).op('TUPLE').stop().bytes();
    expect(refusal(nones, { maxStack: 100, maxMemo: 10, maxMarkDepth: 10 })).toMatch(
      /stack exceeds 100 values/,
    );
    const memo = w().op('NONE').repeat(0x94, 20).stop().bytes();
    expect(refusal(memo, { maxStack: 100, maxMemo: 10, maxMarkDepth: 10 })).toMatch(
      /memo exceeds 10 entries/,
    );
    expect(() => load(memo)).not.toThrow();
  });

  it('refuses malformed structure', () => {
    const cases: [Uint8Array, RegExp][] = [
      [w().raw(0x68, 7).stop().bytes(), /memo has no entry 7/],
      [w().op('REDUCE').stop().bytes(), /REDUCE\): stack underflow/],
      [w().op('NONE').op('NONE').stop().bytes(), /expected one value on the stack, found 2/],
      [w().mark().op('NONE').stop().bytes(), /a MARK is still open/],
      [w().op('TUPLE').stop().bytes(), /no MARK to pop to/],
      [w().op('NONE').op('NONE').op('NONE').op('SETITEM').stop().bytes(), /SETITEM\(S\) on None, not a dict/],
      [w().op('EMPTY_DICT').op('EMPTY_LIST').op('NONE').op('SETITEM').stop().bytes(), /unhashable dict key/],
      [w().op('NONE').op('NONE').op('APPEND').stop().bytes(), /APPEND\(S\) on None/],
      [w().raw(0x58, 0xff, 0xff, 0xff, 0xff, 0x41).stop().bytes(), /needs 4294967295 more bytes/],
      [w().raw(0x8d, 0, 0, 0, 0, 0, 0, 0, 0x80).bytes(), /longer than the pickle/],
      [w().raw(0x8c, 2, 0xff, 0xfe).stop().bytes(), /not valid UTF-8/],
      [w().raw(0x8b, 0, 0, 0, 1).stop().bytes(), /LONG4 of 16777216 bytes/],
      [w().raw(0x63).repeat(0x61, 2000).bytes(), /unterminated or overlong GLOBAL line/],
      [w().op('NONE').bytes(), /needs 1 more bytes but the pickle ends/],
      [new Uint8Array(0), /pickle byte 0/],
    ];
    for (const [bytes, message] of cases) expect(refusal(bytes)).toMatch(message);
  });

  it('refuses every truncation of a state-dict pickle', () => {
    const bytes = stateDictPickle([
      { name: 'w', key: '0', storageType: 'BFloat16Storage', storageNumel: 6, offset: 0, size: [2, 3] },
    ]);
    const whole = load(bytes) as PickleDict;
    expect(whole.map.get('w')).toBeInstanceOf(PickleHost);
    for (let n = 0; n < bytes.length; n++) refusal(bytes.subarray(0, n));
  });
});
