/**
 * The inert values a pickle decodes to. Nothing here can run code: containers are plain data, and anything
 * a pickle names by module and class becomes whatever the caller's allow-list chooses to return.
 * @module
 */

/** A Python tuple (kept distinct from a list, since torch's calls take tuples). */
export class PickleTuple {
  /** The elements, in order. */
  readonly items: readonly PickleValue[];
  /** Wraps `items` (frozen: tuples are immutable). */
  constructor(items: readonly PickleValue[]) {
    this.items = Object.freeze(items.slice());
  }
}

/** A Python dict (or OrderedDict): insertion-ordered; keys are primitives or tuples (by identity). */
export class PickleDict {
  /** The entries, in insertion order. */
  readonly map = new Map<PickleValue, PickleValue>();
}

/**
 * A value made by the caller's hooks (an allow-listed class, a storage reference, a tensor description).
 * The pickle machine only stores and passes it around.
 */
export class PickleHost<T = unknown> {
  /** `kind` says what `value` is, for the hooks' own dispatch and for error messages. */
  constructor(
    readonly kind: string,
    readonly value: T,
  ) {}
}

/** Anything a pickle can decode to here. Python lists are JS arrays. */
export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleValue[]
  | PickleTuple
  | PickleDict
  | PickleHost;

/** A short description of `value` for error messages (`str 'abc'`, `tuple of 3`, ...). */
export function describePickle(value: PickleValue | undefined): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'None';
  if (typeof value === 'string')
    return `str ${JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `int/float ${value}`;
  if (typeof value === 'boolean') return `bool ${value}`;
  if (value instanceof Uint8Array) return `bytes of length ${value.length}`;
  if (Array.isArray(value)) return `list of ${value.length}`;
  if (value instanceof PickleTuple) return `tuple of ${value.items.length}`;
  if (value instanceof PickleDict) return `dict of ${value.map.size}`;
  return value.kind;
}
