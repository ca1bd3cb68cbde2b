/**
 * The allow-list that turns a `torch.save` pickle of a state dict into inert descriptions. Only the handful
 * of globals a state dict refers to resolve (to markers); every other global, such as `os.system` or
 * `builtins.eval`, is refused by name, and only the allow-listed markers can be called. Calling one builds a
 * plain record (a dict, a tensor description); no Python is ever run.
 * @module
 */
import type { DType } from '@proj/core';
import { PthError } from './errors.js';
import type { UnpicklerHooks } from './pickle.js';
import { describePickle, PickleDict, PickleHost, PickleTuple, type PickleValue } from './pickle-values.js';

/** A torch storage class (`torch.BFloat16Storage`, ...): its element type and size. */
export interface StorageType {
  /** The class name, for messages (`BFloat16Storage`). */
  readonly name: string;
  /** The torch dtype name, for messages (`bfloat16`). */
  readonly torchDType: string;
  /** The core dtype, or undefined for types the core has no equivalent of (float64, int64, ...). */
  readonly dtype: DType | undefined;
  /** Bytes per element. */
  readonly itemSize: number;
}

/** A storage a persistent id refers to: the zip record `<archive>/data/<key>`. */
export interface StorageRef {
  /** The record key (torch numbers them `0`, `1`, ...). */
  readonly key: string;
  /** Its element type. */
  readonly type: StorageType;
  /** Device it was saved from (`cpu`, `cuda:0`); informational. */
  readonly location: string;
  /** Elements in the storage. */
  readonly numel: number;
}

/** The raw arguments of one `_rebuild_tensor_v2` call, checked later when the tensor's name is known. */
export interface TensorRef {
  /** Should be a storage reference. */
  readonly storage: PickleValue;
  /** Should be a non-negative int (in elements). */
  readonly storageOffset: PickleValue;
  /** Should be a tuple of non-negative ints. */
  readonly size: PickleValue;
  /** Should be a tuple of ints, the row-major strides of `size`. */
  readonly stride: PickleValue;
}

const STORAGE_TYPES: readonly StorageType[] = [
  { name: 'FloatStorage', torchDType: 'float32', dtype: 'f32', itemSize: 4 },
  { name: 'HalfStorage', torchDType: 'float16', dtype: 'f16', itemSize: 2 },
  { name: 'BFloat16Storage', torchDType: 'bfloat16', dtype: 'bf16', itemSize: 2 },
  { name: 'IntStorage', torchDType: 'int32', dtype: 'i32', itemSize: 4 },
  { name: 'DoubleStorage', torchDType: 'float64', dtype: undefined, itemSize: 8 },
  { name: 'LongStorage', torchDType: 'int64', dtype: undefined, itemSize: 8 },
  { name: 'ShortStorage', torchDType: 'int16', dtype: undefined, itemSize: 2 },
  { name: 'CharStorage', torchDType: 'int8', dtype: undefined, itemSize: 1 },
  { name: 'ByteStorage', torchDType: 'uint8', dtype: undefined, itemSize: 1 },
  { name: 'BoolStorage', torchDType: 'bool', dtype: undefined, itemSize: 1 },
];

/** The callable globals, by `module.name`. */
const CALLABLES = [
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
];

/** Every global a state dict pickle may name. */
export const ALLOWED_GLOBALS: readonly string[] = [
  ...CALLABLES,
  ...STORAGE_TYPES.map((t) => `torch.${t.name}`),
];

/** Marker kinds of the values these hooks create. */
const GLOBAL = 'global';
const STORAGE_TYPE = 'storage type';
const STORAGE = 'storage';
const TENSOR = 'tensor';

/** True when `value` is a tensor description made by these hooks. */
export function isTensorRef(value: PickleValue): value is PickleHost<TensorRef> {
  return value instanceof PickleHost && value.kind === TENSOR;
}

/** True when `value` is a storage reference made by these hooks. */
export function isStorageRef(value: PickleValue): value is PickleHost<StorageRef> {
  return value instanceof PickleHost && value.kind === STORAGE;
}

/**
 * Hooks for `unpickle` that accept exactly a state dict: globals from `ALLOWED_GLOBALS`, calls to the
 * callable ones, BUILD on dicts (torch attaches `_metadata` that way; it is ignored), and persistent ids of
 * the form `('storage', storage_type, key, location, numel)`.
 */
export function stateDictHooks(): UnpicklerHooks {
  const storages = new Map<string, PickleHost<StorageRef>>();
  return {
    findGlobal(module: string, name: string): PickleValue {
      const full = `${module}.${name}`;
      const type = module === 'torch' ? STORAGE_TYPES.find((t) => t.name === name) : undefined;
      if (type !== undefined) return new PickleHost(STORAGE_TYPE, type);
      if (CALLABLES.includes(full)) return new PickleHost(GLOBAL, full);
      throw new PthError(`refusing global '${full}': a state dict only needs ${ALLOWED_GLOBALS.join(', ')}`);
    },

    reduce(callable: PickleValue, args: PickleTuple): PickleValue {
      const name =
        callable instanceof PickleHost && callable.kind === GLOBAL ? String(callable.value) : undefined;
      const a = args.items;
      if (name === 'collections.OrderedDict') {
        if (a.length !== 0)
          throw new PthError('OrderedDict called with arguments (only OrderedDict() is supported)');
        return new PickleDict();
      }
      if (name === 'torch._utils._rebuild_tensor_v2') {
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.length < 6 || a.length > 7)
          throw new PthError(`_rebuild_tensor_v2 takes 6 or 7 arguments, got ${a.length}`);
        const tensor: TensorRef = { storage: a[0]!, storageOffset: a[1]!, size: a[2]!, stride: a[3]! };
        return new PickleHost(TENSOR, tensor);
      }
      if (name === 'torch._utils._rebuild_parameter') {
        // (data, requires_grad, backward_hooks): a Parameter is its data for loading purposes
        if (a.length !== 3 || !isTensorRef(a[0]!))
          throw new PthError('_rebuild_parameter needs (tensor, bool, hooks)');
        return a[0]!;
      }
      throw new PthError(`refusing to call ${describeCallable(callable)}`);
    },

    build(target: PickleValue, state: PickleValue): PickleValue {
      if (target instanceof PickleDict) return target; // OrderedDict's __dict__ (`_metadata`): not needed
      throw new PthError(`refusing BUILD of ${describePickle(target)} with ${describePickle(state)}`);
    },

    persistentLoad(pid: PickleValue): PickleValue {
      const p = pid instanceof PickleTuple ? pid.items : [];
      const [tag, typeMarker, key, location, numel] = p;
      if (p.length !== 5 || tag !== 'storage') {
        throw new PthError(
          `unsupported persistent id ${describePickle(pid)} (expected ('storage', type, key, location, numel))`,
        );
      }
      if (!(typeMarker instanceof PickleHost) || typeMarker.kind !== STORAGE_TYPE) {
        throw new PthError(`storage type is ${describePickle(typeMarker)}, not a torch storage class`);
      }
      if (typeof key !== 'string' || typeof location !== 'string') {
        throw new PthError('storage key and location must be strings');
      }
      if (typeof numel !== 'number' || !Number.isSafeInteger(numel) || numel < 0) {
        throw new PthError(`storage '${key}' has size ${describePickle(numel)}, not a non-negative int`);
      }
      const type = typeMarker.value as StorageType;
      const existing = storages.get(key);
      if (existing !== undefined) {
        if (existing.value.type !== type || existing.value.numel !== numel) {
          throw new PthError(`storage '${key}' is described twice with different types or sizes`);
        }
        return existing;
      }
      const ref = new PickleHost<StorageRef>(STORAGE, { key, type, location, numel });
      storages.set(key, ref);
      return ref;
    },
  };
}

function describeCallable(callable: PickleValue): string {
  if (callable instanceof PickleHost && callable.kind === STORAGE_TYPE) {
    return `torch.${(callable.value as StorageType).name}`;
  }
  if (callable instanceof PickleHost && callable.kind === GLOBAL) return String(callable.value);
  return describePickle(callable);
}
