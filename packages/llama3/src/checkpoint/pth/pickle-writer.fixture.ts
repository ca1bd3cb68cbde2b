/**
 * Test-only: writes pickles opcode by opcode, to build torch-style state dicts and hostile variations of
 * them without Python.
 * @module
 */

/** Appends pickle opcodes; `bytes()` gives the result. */
export class PickleWriter {
  readonly #out: number[] = [];
  readonly #enc = new TextEncoder();

  /** Raw bytes. */
  raw(...bytes: number[]): this {
    this.#out.push(...bytes);
    return this;
  }
  /** `byte`, `n` times (spreading a huge array into `raw` would overflow the call stack). */
  repeat(byte: number, n: number): this {
    for (let i = 0; i < n; i++) this.#out.push(byte);
    return this;
  }
  /** PROTO n. */
  proto(n = 2): this {
    return this.raw(0x80, n);
  }
  /** MARK. */
  mark(): this {
    return this.raw(0x28);
  }
  /** STOP. */
  stop(): this {
    return this.raw(0x2e);
  }
  /** BINUNICODE. */
  str(s: string): this {
    const b = this.#enc.encode(s);
    return this.raw(0x58, ...u32(b.length), ...b);
  }
  /** An int, in the smallest opcode torch would use. */
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, n & 0xff, n >> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) return this.raw(0x4a, ...u32(n >>> 0));
    const bytes: number[] = [];
    let v = BigInt(n);
    for (let i = 0; i < 8; i++, v >>= 8n) bytes.push(Number(v & 0xffn));
    return this.raw(0x8a, 8, ...bytes);
  }
  /** GLOBAL module\nname\n. */
  global(module: string, name: string): this {
    return this.raw(0x63, ...this.#enc.encode(`${module}\n${name}\n`));
  }
  /** A tuple of ints (TUPLE1/2/3 or MARK...TUPLE, as torch writes sizes and strides). */
  ints(values: readonly number[]): this {
    if (values.length === 0) return this.raw(0x29);
    if (values.length > 3) this.mark();
    for (const v of values) this.int(v);
    return this.raw(values.length > 3 ? 0x74 : 0x84 + values.length);
  }
  /** Opcode shorthands. */
  op(name: keyof typeof OPS): this {
    return this.raw(OPS[name]);
  }
  /** The pickle so far. */
  bytes(): Uint8Array {
    return new Uint8Array(this.#out);
  }
}

const OPS = {
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  EMPTY_DICT: 0x7d,
  EMPTY_LIST: 0x5d,
  SETITEMS: 0x75,
  SETITEM: 0x73,
  APPEND: 0x61,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPERSID: 0x51,
  NEWFALSE: 0x89,
  NONE: 0x4e,
  STACK_GLOBAL: 0x93,
  MEMOIZE: 0x94,
} as const;

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** One tensor of a test state dict. */
export interface TensorSpec {
  /** State-dict key. */
  name: string;
  /** Storage record key (`0`, `1`, ...). */
  key: string;
  /** torch storage class name (`BFloat16Storage`). */
  storageType: string;
  /** Elements the storage claims. */
  storageNumel: number;
  /** Elements before the tensor's first. */
  offset: number;
  /** Dims. */
  size: readonly number[];
  /** Strides (row-major if omitted). */
  stride?: readonly number[];
}

/** Row-major strides of `size`. */
export function contiguous(size: readonly number[]): number[] {
  const stride = new Array<number>(size.length);
  let s = 1;
  for (let i = size.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= size[i]!;
  }
  return stride;
}

/** A state-dict pickle laid out as torch.save writes one (without memo opcodes). */
export function stateDictPickle(tensors: readonly TensorSpec[]): Uint8Array {
  const w = new PickleWriter().proto(2).op('EMPTY_DICT').mark();
  for (const t of tensors) {
    w.str(t.name).global('torch._utils', '_rebuild_tensor_v2').mark();
    w.mark()
      .str('storage')
      .global('torch', t.storageType)
      .str(t.key)
      .str('cpu')
      .int(t.storageNumel)
      .op('TUPLE');
    w.op('BINPERSID')
      .int(t.offset)
      .ints(t.size)
      .ints(t.stride ?? contiguous(t.size))
      .op('NEWFALSE');
    w.global('collections', 'OrderedDict').op('EMPTY_TUPLE').op('REDUCE').op('TUPLE').op('REDUCE');
  }
  return w.op('SETITEMS').stop().bytes();
}
