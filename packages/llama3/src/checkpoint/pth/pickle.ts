/**
 * A pickle reader that never executes anything. It implements the opcodes `torch.save` emits (protocol 2,
 * plus the protocol 4 framing and memo opcodes); every reference to a Python global, every call (REDUCE),
 * every BUILD and every persistent id is handed to caller hooks, which decide from an allow-list what inert
 * value to produce or refuse. Sizes are bounded (stack, memo, MARK nesting, string lengths) so a hostile
 * pickle cannot exhaust memory, and the machine is a flat loop, so deep nesting cannot overflow the JS stack.
 * @module
 */
import { PthError } from './errors.js';
import { isUnsupportedOpcode, OP, opcodeName } from './pickle-opcodes.js';
import { describePickle, PickleDict, PickleTuple, type PickleValue } from './pickle-values.js';

/** What the caller decides: how globals, calls, BUILD and persistent ids turn into values. */
export interface UnpicklerHooks {
  /** The value for global `module.name` (GLOBAL, STACK_GLOBAL); throw to refuse it. */
  findGlobal(module: string, name: string): PickleValue;
  /** The result of calling `callable` with `args` (REDUCE); throw to refuse. */
  reduce(callable: PickleValue, args: PickleTuple): PickleValue;
  /** The object after applying `state` to `target` (BUILD); throw to refuse. */
  build(target: PickleValue, state: PickleValue): PickleValue;
  /** The object a persistent id stands for (BINPERSID); throw to refuse. */
  persistentLoad(pid: PickleValue): PickleValue;
}

/** Resource bounds for one unpickling. */
export interface UnpicklerLimits {
  /** Most values on the stack at once. */
  maxStack: number;
  /** Most memo entries. */
  maxMemo: number;
  /** Deepest MARK nesting. */
  maxMarkDepth: number;
}

/** Defaults far above what any state dict needs (a few levels of nesting, a memo entry per object). */
export const DEFAULT_UNPICKLER_LIMITS: Readonly<UnpicklerLimits> = {
  maxStack: 1_000_000,
  maxMemo: 1_000_000,
  maxMarkDepth: 1_000,
};

const MAX_GLOBAL_LINE = 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

/**
 * Decodes `bytes` (one pickle, up to its STOP) with `hooks` deciding what globals, calls and persistent ids
 * become. Throws a `PthError` naming the byte offset and opcode for anything malformed, unsupported or
 * refused, and for exceeding `limits`.
 */
export function unpickle(
  bytes: Uint8Array,
  hooks: UnpicklerHooks,
  limits: Readonly<UnpicklerLimits> = DEFAULT_UNPICKLER_LIMITS,
): PickleValue {
  const data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;
  let opStart = 0;
  let op = 0;

  const fail = (problem: string, cause?: unknown): never => {
    throw new PthError(`pickle byte ${opStart} (${opcodeName(op)}): ${problem}`, { cause });
  };
  const need = (n: number): number => {
    if (n < 0 || pos + n > bytes.length) fail(`needs ${n} more bytes but the pickle ends at ${bytes.length}`);
    const at = pos;
    pos += n;
    return at;
  };
  const push = (value: PickleValue): void => {
    if (stack.length >= limits.maxStack) fail(`stack exceeds ${limits.maxStack} values`);
    stack.push(value);
  };
  const pop = (): PickleValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) fail('stack underflow');
    return stack.pop()!;
  };
  const top = (): PickleValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) fail('stack underflow');
    return stack[stack.length - 1]!;
  };
  const popMark = (): PickleValue[] => {
    const mark = marks.pop();
    if (mark === undefined) fail('no MARK to pop to');
    return stack.splice(mark!);
  };
  const put = (index: number): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) fail(`memo exceeds ${limits.maxMemo} entries`);
    memo.set(index, top());
  };
  const get = (index: number): void => {
    if (!memo.has(index)) fail(`memo has no entry ${index}`);
    push(memo.get(index)!);
  };
  const text = (at: number, n: number): string => {
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch (cause) {
      return fail('string is not valid UTF-8', cause);
    }
  };
  const hook = <T>(run: () => T): T => {
    try {
      return run();
    } catch (cause) {
      if (cause instanceof PthError) return fail(cause.message, cause);
      throw cause;
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > MAX_GLOBAL_LINE) fail('unterminated or overlong GLOBAL line');
    const s = text(pos, end - pos);
    pos = end + 1;
    return s;
  };
  const setItems = (dict: PickleValue, items: PickleValue[]): void => {
    if (!(dict instanceof PickleDict)) fail(`SETITEM(S) on ${describePickle(dict)}, not a dict`);
    if (items.length % 2 !== 0) fail('odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i]!;
      if (typeof key === 'object' && key !== null && !(key instanceof PickleTuple)) {
        fail(`unhashable dict key: ${describePickle(key)}`);
      }
      (dict as PickleDict).map.set(key, items[i + 1]!);
    }
  };
  const append = (list: PickleValue, items: PickleValue[]): void => {
    if (!Array.isArray(list)) fail(`APPEND(S) on ${describePickle(list)}, not a list`);
    for (const item of items) (list as PickleValue[]).push(item);
  };

  for (;;) {
    opStart = pos;
    op = bytes[need(1)]!;
    switch (op) {
      case OP.PROTO:
        if (bytes[need(1)]! > 5) fail(`protocol ${bytes[pos - 1]} is newer than 5`);
        break;
      case OP.FRAME: // a length hint only; the opcodes inside are read as usual
        data.getBigUint64(need(8), true);
        break;
      case OP.STOP: {
        if (marks.length > 0) fail('a MARK is still open');
        if (stack.length !== 1) fail(`expected one value on the stack, found ${stack.length}`);
        return stack[0]!;
      }
      case OP.MARK:
        if (marks.length >= limits.maxMarkDepth) fail(`MARK nesting deeper than ${limits.maxMarkDepth}`);
        marks.push(stack.length);
        break;
      case OP.POP:
        pop();
        break;
      case OP.POP_MARK:
        popMark();
        break;
      case OP.DUP:
        push(top());
        break;
      case OP.NONE:
        push(null);
        break;
      case OP.NEWTRUE:
        push(true);
        break;
      case OP.NEWFALSE:
        push(false);
        break;
      case OP.BININT:
        push(data.getInt32(need(4), true));
        break;
      case OP.BININT1:
        push(bytes[need(1)]!);
        break;
      case OP.BININT2:
        push(data.getUint16(need(2), true));
        break;
      case OP.LONG1: {
        const n = bytes[need(1)]!;
        push(readLong(bytes, need(n), n));
        break;
      }
      case OP.LONG4: {
        const n = data.getInt32(need(4), true);
        if (n < 0 || n > 64) fail(`LONG4 of ${n} bytes (a state dict's ints fit in 8)`);
        push(readLong(bytes, need(n), n));
        break;
      }
      case OP.BINFLOAT:
        push(data.getFloat64(need(8), false));
        break;
      case OP.BINUNICODE: {
        const n = data.getUint32(need(4), true);
        push(text(need(n), n));
        break;
      }
      case OP.SHORT_BINUNICODE: {
        const n = bytes[need(1)]!;
        push(text(need(n), n));
        break;
      }
      case OP.BINUNICODE8: {
        const n = data.getBigUint64(need(8), true);
        if (n > BigInt(bytes.length)) fail(`string of ${n} bytes is longer than the pickle`);
        push(text(need(Number(n)), Number(n)));
        break;
      }
      case OP.BINSTRING: {
        const n = data.getInt32(need(4), true);
        if (n < 0) fail(`negative string length ${n}`);
        push(latin1.decode(bytes.subarray(need(n), pos)));
        break;
      }
      case OP.SHORT_BINSTRING: {
        const n = bytes[need(1)]!;
        push(latin1.decode(bytes.subarray(need(n), pos)));
        break;
      }
      case OP.BINBYTES: {
        const n = data.getUint32(need(4), true);
        push(bytes.slice(need(n), pos));
        break;
      }
      case OP.SHORT_BINBYTES: {
        const n = bytes[need(1)]!;
        push(bytes.slice(need(n), pos));
        break;
      }
      case OP.BINBYTES8: {
        const n = data.getBigUint64(need(8), true);
        if (n > BigInt(bytes.length)) fail(`bytes of ${n} bytes are longer than the pickle`);
        push(bytes.slice(need(Number(n)), pos));
        break;
      }
      case OP.EMPTY_TUPLE:
        push(new PickleTuple([]));
        break;
      case OP.TUPLE:
        push(new PickleTuple(popMark()));
        break;
      case OP.TUPLE1:
      case OP.TUPLE2:
      case OP.TUPLE3: {
        const n = op - OP.TUPLE1 + 1;
        const items: PickleValue[] = [];
        for (let i = 0; i < n; i++) items.unshift(pop());
        push(new PickleTuple(items));
        break;
      }
      case OP.EMPTY_LIST:
        push([]);
        break;
      case OP.LIST:
        push(popMark());
        break;
      case OP.APPEND: {
        const item = pop();
        append(top(), [item]);
        break;
      }
      case OP.APPENDS: {
        const items = popMark();
        append(top(), items);
        break;
      }
      case OP.EMPTY_DICT:
        push(new PickleDict());
        break;
      case OP.DICT: {
        const dict = new PickleDict();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case OP.SETITEM: {
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case OP.SETITEMS: {
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case OP.BINPUT:
        put(bytes[need(1)]!);
        break;
      case OP.LONG_BINPUT:
        put(data.getUint32(need(4), true));
        break;
      case OP.MEMOIZE:
        put(memo.size);
        break;
      case OP.BINGET:
        get(bytes[need(1)]!);
        break;
      case OP.LONG_BINGET:
        get(data.getUint32(need(4), true));
        break;
      case OP.GLOBAL: {
        const module = line();
        const name = line();
        push(hook(() => hooks.findGlobal(module, name)));
        break;
      }
      case OP.STACK_GLOBAL: {
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        push(hook(() => hooks.findGlobal(module as string, name as string)));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const callable = pop();
        if (!(args instanceof PickleTuple)) fail(`REDUCE arguments are ${describePickle(args)}, not a tuple`);
        push(hook(() => hooks.reduce(callable, args as PickleTuple)));
        break;
      }
      case OP.BUILD: {
        const state = pop();
        const target = pop();
        push(hook(() => hooks.build(target, state)));
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        push(hook(() => hooks.persistentLoad(pid)));
        break;
      }
      default:
        fail(isUnsupportedOpcode(op) ? 'opcode not supported by this reader' : 'unknown opcode');
    }
  }
}

/** A little-endian two's-complement integer of `n` bytes at `at` (LONG1/LONG4): a number when safe. */
function readLong(bytes: Uint8Array, at: number, n: number): number | bigint {
  if (n === 0) return 0;
  let value = 0n;
  for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[at + i]!);
  if (bytes[at + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(value)
    : value;
}
