/**
 * Deterministic freeing of tensors: `scope(fn)` disposes every tensor created while `fn` runs, except the
 * ones `fn` returns. Scopes nest; kept tensors move to the enclosing scope.
 * @module
 */

/** Something a scope can free. */
export interface Disposable {
  /** Frees the resources now. */
  dispose(): void;
}

const stack: Set<Disposable>[] = [];

/** Called by tensor constructors: the innermost open scope (if any) takes ownership. */
export function track(resource: Disposable): void {
  stack[stack.length - 1]?.add(resource);
}

/** Removes `resource` from the innermost scope that tracks it, so the scope will not free it. */
export function keep<T extends Disposable>(resource: T): T {
  for (let i = stack.length - 1; i >= 0; i--) if (stack[i]!.delete(resource)) break;
  return resource;
}

function collectKept(value: unknown, into: Set<unknown>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 4) return;
  into.add(value);
  if (Array.isArray(value)) for (const v of value) collectKept(v, into, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectKept(v, into, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor created inside it, except those in its result (the result itself, or
 * inside a returned array or plain object). Synchronous on purpose: an `await` inside would let unrelated
 * work join the scope. For async code use `using` or `dispose()`.
 *
 * @example
 * ```ts
 * import { scope, tensor } from '@proj/core';
 * const kept = scope(() => {
 *   const a = tensor([1, 2, 3], [3]); // freed when the scope ends
 *   return tensor([4, 5, 6], [3]); // returned: kept
 * });
 * kept.dispose();
 * ```
 */
export function scope<T>(fn: () => T): T {
  if (typeof (fn as unknown as { then?: unknown }).then === 'function') {
    throw new Error('scope: fn must be synchronous');
  }
  const created = new Set<Disposable>();
  stack.push(created);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    stack.pop();
    for (const r of created) r.dispose();
    throw error;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const r of created) r.dispose();
    throw new Error('scope: fn returned a promise; scopes are synchronous (use `using` in async code)');
  }
  const kept = new Set<unknown>();
  collectKept(result, kept);
  for (const r of created) {
    if (kept.has(r)) track(r);
    else r.dispose();
  }
  return result;
}
