/**
 * Pickle opcode bytes, by their names in CPython's `pickletools`, so the reader's dispatch and its error
 * messages speak the same language as `python -m pickletools`.
 * @module
 */

/** The opcodes this reader implements: what torch.save's pickles use, plus close relatives. */
export const OP = {
  MARK: 0x28,
  STOP: 0x2e,
  POP: 0x30,
  POP_MARK: 0x31,
  DUP: 0x32,
  BININT: 0x4a,
  BININT1: 0x4b,
  BININT2: 0x4d,
  LONG1: 0x8a,
  LONG4: 0x8b,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BINFLOAT: 0x47,
  BINUNICODE: 0x58,
  SHORT_BINUNICODE: 0x8c,
  BINUNICODE8: 0x8d,
  BINBYTES: 0x42,
  SHORT_BINBYTES: 0x43,
  BINBYTES8: 0x8e,
  BINSTRING: 0x54,
  SHORT_BINSTRING: 0x55,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  TUPLE1: 0x85,
  TUPLE2: 0x86,
  TUPLE3: 0x87,
  EMPTY_LIST: 0x5d,
  LIST: 0x6c,
  APPEND: 0x61,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  DICT: 0x64,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  BINPUT: 0x71,
  LONG_BINPUT: 0x72,
  MEMOIZE: 0x94,
  BINGET: 0x68,
  LONG_BINGET: 0x6a,
  GLOBAL: 0x63,
  STACK_GLOBAL: 0x93,
  REDUCE: 0x52,
  BUILD: 0x62,
  BINPERSID: 0x51,
  PROTO: 0x80,
  FRAME: 0x95,
} as const;

/** Opcodes Python defines that this reader deliberately refuses (text protocol 0, sets, NEWOBJ, ...). */
const UNSUPPORTED = {
  INST: 0x69,
  OBJ: 0x6f,
  NEWOBJ: 0x81,
  NEWOBJ_EX: 0x92,
  PERSID: 0x50,
  INT: 0x49,
  LONG: 0x4c,
  FLOAT: 0x46,
  STRING: 0x53,
  UNICODE: 0x56,
  PUT: 0x70,
  GET: 0x67,
  EMPTY_SET: 0x8f,
  ADDITEMS: 0x90,
  FROZENSET: 0x91,
  EXT1: 0x82,
  EXT2: 0x83,
  EXT4: 0x84,
  BYTEARRAY8: 0x96,
  NEXT_BUFFER: 0x97,
  READONLY_BUFFER: 0x98,
} as const;

const NAMES = new Map<number, string>(
  [...Object.entries(OP), ...Object.entries(UNSUPPORTED)].map(([name, byte]) => [byte, name]),
);
const UNSUPPORTED_BYTES = new Set<number>(Object.values(UNSUPPORTED));

/** The opcode's name (`REDUCE`), or its hex byte (`0xff`) when Python has no such opcode. */
export function opcodeName(byte: number): string {
  return NAMES.get(byte) ?? `0x${byte.toString(16).padStart(2, '0')}`;
}

/** True for opcodes Python has but this reader refuses. */
export function isUnsupportedOpcode(byte: number): boolean {
  return UNSUPPORTED_BYTES.has(byte);
}
