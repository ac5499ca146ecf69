/**
 * Stores whose audit appends a test controls: failing during a simulated
 * outage, or held until released (a stalled commit). Everything else (reads,
 * keys) goes to the real store unchanged, so the assertions read what was
 * really stored. Deterministic: a flag or a gate, never a timer.
 */

/** The methods that append audit rows, directly or by chaining (src/audit/append.ts). */
const APPEND_METHODS: ReadonlySet<PropertyKey> = new Set(['appendAuditRecords', 'appendUnderLock', 'appendAudit']);

/**
 * `inner` with every audit append first asking `before()`: `undefined` lets the
 * append through at once; a promise delays it until the promise settles, and a
 * rejection fails the append without touching `inner`. Other methods are
 * `inner`'s, bound to it.
 */
export function interceptAppends<S extends object>(inner: S, before: () => Promise<void> | undefined): S {
  return new Proxy(inner, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      const fn = (value as (...a: unknown[]) => unknown).bind(target);
      if (!APPEND_METHODS.has(key)) return fn;
      return (...a: unknown[]) => {
        const wait = before();
        return wait === undefined ? fn(...a) : wait.then(() => fn(...a));
      };
    },
  });
}

/** `inner` with its audit appends failing (`Error('store down (test)')`) while `failing.on` is set; reads keep working. */
export function failingAppends<S extends object>(inner: S): { store: S; failing: { on: boolean } } {
  const failing = { on: false };
  const store = interceptAppends(inner, () => (failing.on ? Promise.reject(new Error('store down (test)')) : undefined));
  return { store, failing };
}

/** A store whose audit appends wait for `release()`. */
export interface HeldAppends<S> {
  readonly store: S;
  /** Lets every held append through, and every later one at once. */
  release(): void;
}

/** `inner` with its audit appends held until `release()` is called (a commit that stalls). */
export function heldAppends<S extends object>(inner: S): HeldAppends<S> {
  let open = false;
  const waiting: (() => void)[] = [];
  const store = interceptAppends(inner, () => (open ? undefined : new Promise<void>((resolve) => waiting.push(resolve))));
  return {
    store,
    release: () => {
      open = true;
      for (const wake of waiting.splice(0)) wake();
    },
  };
}
