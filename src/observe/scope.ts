/**
 * The request scope: an `AsyncLocalStorage` value the HTTP listener opens for
 * each request, in which a door's stages can be timed ({@link timeStage}) and
 * from which the audit observer (src/observe/observer.ts) reads the stage
 * timings when the request's one audit record is appended (the append runs in
 * the request's async context). Outside a scope, timing is a no-op.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** One timed stage: name and `performance.now()` start and end (ms). */
export interface StageTiming {
  readonly name: string;
  readonly start: number;
  readonly end: number;
  /** True when the stage threw. */
  readonly failed: boolean;
}

/** What one request carries through its async context. */
export interface RequestScope {
  /** `performance.now()` when the listener took the request, in ms. */
  readonly started: number;
  /** Stages timed so far, in completion order (at most {@link MAX_STAGES}). */
  readonly stages: StageTiming[];
  /** Set once the request's audit record was observed: later records in the scope are side events. */
  recorded: boolean;
}

/** Most stages kept per request (a long-lived stream must not grow without bound). */
export const MAX_STAGES = 64;

const storage = new AsyncLocalStorage<RequestScope>();

/** Runs `fn` in a fresh request scope. */
export function runInRequestScope<T>(fn: () => T, started: number = performance.now()): T {
  return storage.run({ started, stages: [], recorded: false }, fn);
}

/** The scope of the request whose async context this is, if any. */
export function currentScope(): RequestScope | undefined {
  return storage.getStore();
}

/**
 * Runs one stage of a door and records its timing in the current request
 * scope. Keeps `fn`'s nature: a synchronous stage stays synchronous, a
 * promise is returned as the same kind of promise, timed until it settles.
 * Rethrows (or rejects with) what `fn` throws, recorded as failed.
 */
export function timeStage<T>(name: string, fn: () => T): T {
  const scope = storage.getStore();
  if (scope === undefined) return fn();
  return timed(scope, name, fn, undefined, undefined);
}

/** Runs `fn` (with `self` and `args` when given) and records it in `scope` under `name`; see {@link timeStage}. */
function timed<T>(scope: RequestScope, name: string, fn: (...a: unknown[]) => T, self: unknown, args: unknown[] | undefined): T {
  const start = performance.now();
  let out: T;
  try {
    out = args === undefined ? fn.call(self) : fn.apply(self, args);
  } catch (err) {
    record(scope, name, start, true);
    throw err;
  }
  if (out instanceof Promise) {
    return out.then(
      (v: unknown) => {
        record(scope, name, start, false);
        return v;
      },
      (err: unknown) => {
        record(scope, name, start, true);
        throw err;
      },
    ) as T;
  }
  record(scope, name, start, false);
  return out;
}

function record(scope: RequestScope, name: string, start: number, failed: boolean): void {
  if (scope.stages.length < MAX_STAGES) scope.stages.push({ name, start, end: performance.now(), failed });
}

/**
 * The named stage functions of a door's stage module, each wrapped in
 * {@link timeStage} under its own name: a door that imports its stages through
 * this (`const { resolveTool, decide } = timedStages(stages, ['resolveTool', 'decide'])`)
 * gets a span and a histogram sample per stage without editing any stage or
 * any call. Functions not named are left out.
 */
export function timedStages<M extends object, K extends keyof M & string>(module: M, names: readonly K[]): Pick<M, K> {
  const out: Partial<Pick<M, K>> = {};
  for (const name of names) {
    const fn = module[name];
    if (typeof fn !== 'function') throw new TypeError(`timedStages: ${name} is not a function`);
    const stage = fn as (...a: unknown[]) => unknown;
    // Outside a request scope the wrapper is one ALS lookup and a direct call: no closure, no timing.
    out[name] = function (this: unknown, ...args: unknown[]): unknown {
      const scope = storage.getStore();
      return scope === undefined ? stage.apply(this, args) : timed(scope, name, stage, this, args);
    } as M[K];
  }
  return out as Pick<M, K>;
}
