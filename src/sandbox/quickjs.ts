/**
 * In-process JavaScript for small expressions (ability response transforms,
 * quick calculations): QuickJS in WebAssembly (quickjs-emscripten) on a small
 * pool of worker threads (issue 16, part 5).
 *
 * Layers, each stopping what the one before may miss:
 *
 * 1. QuickJS itself: a fresh runtime and context per evaluation (nothing
 *    survives between evaluations), no host object in it (no `require`,
 *    `process`, `fetch`, timers or I/O; the ECMAScript built-ins and a frozen
 *    `input` only), strict mode.
 * 2. The runtime's limits: `memoryBytes` (allocation fails past it →
 *    `ERR_JS_MEMORY`), `stackBytes` (a deep recursion → `ERR_JS_MEMORY`), and
 *    an interrupt handler that stops the interpreter past `timeoutMs`
 *    (→ `ERR_JS_TIMEOUT`). QuickJS's own accounting misses large strings and
 *    array buffers (quickjs-emscripten#271), so the worker also caps the
 *    WebAssembly heap's growth at `memoryBytes` + 16 MiB (→ `ERR_JS_MEMORY`,
 *    and the worker is replaced: WebAssembly memory never shrinks). The worker's
 *    native stack is sized for `stackBytes` (`resourceLimits.stackSizeMb`).
 * 3. The backstop, on the main thread: a worker that has not answered within
 *    `2 × timeoutMs + 50` ms (a built-in written in C that runs long is not
 *    interruptible) is terminated, the request answers `ERR_JS_TIMEOUT`, and a
 *    fresh worker is started. A worker that dies answers `ERR_JS_UNAVAILABLE`
 *    for its request and is replaced.
 *
 * Input and output are JSON: `input` is `JSON.stringify`-ed here and parsed in
 * the sandbox; the value is serialized by the sandbox's `JSON.stringify` and
 * parsed here. A value JSON cannot hold (`undefined`, a function, a cycle, a
 * BigInt, a Promise: no promise job is ever run) or larger than
 * `maxResultBytes` is `ERR_JS_RESULT`.
 *
 * Each worker evaluates one request at a time; requests queue per worker (the
 * shortest queue is chosen), at most {@link MAX_QUEUE} per worker, beyond which
 * a request is refused with `ERR_JS_UNAVAILABLE`.
 */
import { Worker } from 'node:worker_threads';
import type { JsWorkerData, JsWorkerReply, JsWorkerRequest } from './quickjs-worker.ts';
import { BastionError } from '../errors.ts';

/** Limits of one evaluation. All positive integers. */
export interface JsLimits {
  /** Deadline of the evaluation inside the sandbox (ms); the backstop fires at `2 × timeoutMs + 50`. */
  readonly timeoutMs: number;
  /** QuickJS heap limit (bytes). */
  readonly memoryBytes: number;
  /** QuickJS stack limit (bytes). Per call at most the evaluator's own (the worker's native stack is sized for it). */
  readonly stackBytes: number;
  /** Largest JSON text of the value (UTF-8 bytes). */
  readonly maxResultBytes: number;
}

/** Defaults: 100 ms, 32 MiB of heap, 256 KiB of stack, 1 MiB of result. */
export const DEFAULT_JS_LIMITS: JsLimits = Object.freeze({
  timeoutMs: 100,
  memoryBytes: 32 * 1024 * 1024,
  stackBytes: 256 * 1024,
  maxResultBytes: 1024 * 1024,
});

/** Why an evaluation gave no value. */
export type JsErrorCode = 'ERR_JS_TIMEOUT' | 'ERR_JS_MEMORY' | 'ERR_JS_ERROR' | 'ERR_JS_RESULT' | 'ERR_JS_UNAVAILABLE';

/**
 * The outcome of an evaluation: the value (JSON) and the time the worker took
 * (ms, from sending the request to its answer, queueing excluded), or a code
 * and a message (at most ~500 characters; the code's own error text, never the input).
 */
export type JsResult = { readonly ok: true; readonly value: unknown; readonly ms: number } | { readonly ok: false; readonly code: JsErrorCode; readonly message: string };

/** Anything that evaluates: a started {@link JsEvaluator} or a {@link LazyJsEvaluator}. */
export interface JsEvaluate {
  evaluate(source: string, input?: unknown, limits?: Partial<JsLimits>): Promise<JsResult>;
}

/** Options of {@link JsEvaluator.start}. */
export interface JsEvaluatorOptions {
  /** Defaults of every evaluation (over {@link DEFAULT_JS_LIMITS}). */
  readonly limits?: Partial<JsLimits>;
  /** Worker threads (1-16; default 1). */
  readonly workers?: number;
  /** Requests queued per worker before refusing (default {@link MAX_QUEUE}). */
  readonly maxQueue?: number;
  /** Tests only: disables the interrupt handler, so only the backstop stops runaway code. */
  readonly unsafeDisableInterrupt?: boolean;
  /** Tests only: a worker exits (a crash) when asked to evaluate exactly this source. */
  readonly unsafeCrashOnSource?: string;
}

/** Requests queued per worker (waiting and running) before a request is refused. */
export const MAX_QUEUE = 1000;
/** Longest a worker may take to load QuickJS before the start fails (ms). */
const START_TIMEOUT_MS = 10_000;
/** V8's native stack of a worker per byte of QuickJS stack: WebAssembly frames are larger (measured: 512 KiB needs 8 MiB). */
const NATIVE_STACK_FACTOR = 16;

/** WebAssembly heap a worker may grow beyond QuickJS's memory limit (bytes): QuickJS's own structures, fragmentation. */
const HEAP_SLACK_BYTES = 16 * 1024 * 1024;

const WORKER_URL = new URL('./quickjs-worker.ts', import.meta.url);

function backstopMs(limits: JsLimits): number {
  return 2 * limits.timeoutMs + 50;
}

function checkLimits(l: JsLimits): JsLimits {
  for (const [k, v] of Object.entries(l)) {
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw new RangeError(`JsLimits.${k} must be a positive integer, got ${String(v)}`);
  }
  return l;
}

interface Job {
  readonly request: JsWorkerRequest;
  readonly resolve: (r: JsResult) => void;
}

/** One worker and its queue. */
interface Slot {
  worker: Worker | undefined;
  ready: boolean;
  /** Settles when the current worker is ready (true) or died first (false). */
  started: Promise<boolean>;
  readonly queue: Job[];
  current: { job: Job; timer: NodeJS.Timeout; sentAt: number } | undefined;
}

const unavailable = (message: string): JsResult => ({ ok: false, code: 'ERR_JS_UNAVAILABLE', message });

/**
 * A pool of QuickJS workers. Start with {@link JsEvaluator.start}; close with
 * {@link JsEvaluator.close} (workers are unreferenced while idle, so an
 * unclosed evaluator does not keep the process alive).
 */
export class JsEvaluator implements JsEvaluate {
  readonly #limits: JsLimits;
  readonly #slots: Slot[] = [];
  readonly #maxQueue: number;
  readonly #workerData: JsWorkerData;
  readonly #stackSizeMb: number;
  #nextId = 1;
  #closed = false;

  private constructor(options: JsEvaluatorOptions) {
    this.#limits = checkLimits({ ...DEFAULT_JS_LIMITS, ...options.limits });
    const workers = options.workers ?? 1;
    if (!Number.isInteger(workers) || workers < 1 || workers > 16) throw new RangeError(`workers must be an integer from 1 to 16, got ${String(workers)}`);
    this.#maxQueue = options.maxQueue ?? MAX_QUEUE;
    this.#workerData = {
      heapBytes: this.#limits.memoryBytes + HEAP_SLACK_BYTES,
      ...(options.unsafeDisableInterrupt === true ? { unsafeDisableInterrupt: true } : {}),
      ...(options.unsafeCrashOnSource !== undefined ? { unsafeCrashOnSource: options.unsafeCrashOnSource } : {}),
    };
    this.#stackSizeMb = Math.max(4, Math.ceil((this.#limits.stackBytes * NATIVE_STACK_FACTOR) / (1024 * 1024)) + 1);
    for (let i = 0; i < workers; i++) this.#slots.push({ worker: undefined, ready: false, started: Promise.resolve(false), queue: [], current: undefined });
  }

  /**
   * Starts the workers and waits until each has loaded QuickJS (~20-50 ms).
   * @throws RangeError for a limit that is not a positive integer or a bad `workers`;
   *   BastionError `ERR_JS_UNAVAILABLE` when a worker cannot start.
   */
  static async start(options: JsEvaluatorOptions = {}): Promise<JsEvaluator> {
    const ev = new JsEvaluator(options);
    for (const slot of ev.#slots) ev.#spawn(slot);
    const ok = await Promise.all(ev.#slots.map((s) => s.started));
    if (!ok.every(Boolean)) {
      await ev.close();
      throw new BastionError('ERR_JS_UNAVAILABLE', 'the JavaScript sandbox could not start');
    }
    return ev;
  }

  /** The evaluator's default limits. */
  get limits(): JsLimits {
    return this.#limits;
  }

  /**
   * Evaluates `source` (an expression, or a script whose last expression
   * statement gives the value; strict mode) with `input` bound as a frozen,
   * read-only global `input` (JSON-cloned; undefined: `input` is undefined)
   * and answers its value JSON-cloned. Never rejects except for bad limits.
   * @throws RangeError when a limit is not a positive integer.
   */
  async evaluate(source: string, input?: unknown, limits?: Partial<JsLimits>): Promise<JsResult> {
    const l = checkLimits({ ...this.#limits, ...limits });
    if (this.#closed) return unavailable('the JavaScript sandbox is closed');
    let text: string | undefined = undefined;
    if (input !== undefined) {
      try {
        text = JSON.stringify(input);
      } catch {
        text = undefined;
      }
      if (typeof text !== 'string') return { ok: false, code: 'ERR_JS_ERROR', message: 'the input is not JSON' };
    }
    const request: JsWorkerRequest = {
      id: this.#nextId++,
      source: String(source),
      input: text ?? null,
      limits: { ...l, stackBytes: Math.min(l.stackBytes, this.#limits.stackBytes), memoryBytes: Math.min(l.memoryBytes, this.#limits.memoryBytes) },
    };
    let slot = this.#slots[0] as Slot;
    for (const s of this.#slots) if (load(s) < load(slot)) slot = s;
    if (load(slot) >= this.#maxQueue) return unavailable('the JavaScript sandbox is busy');
    return new Promise<JsResult>((resolve) => {
      slot.queue.push({ request, resolve });
      this.#pump(slot);
    });
  }

  /** Stops every worker; queued and running requests answer `ERR_JS_UNAVAILABLE`. */
  async close(): Promise<void> {
    this.#closed = true;
    const exits: Promise<unknown>[] = [];
    for (const slot of this.#slots) {
      const worker = slot.worker;
      slot.worker = undefined;
      if (slot.current) {
        clearTimeout(slot.current.timer);
        slot.current.job.resolve(unavailable('the JavaScript sandbox is closed'));
        slot.current = undefined;
      }
      for (const job of slot.queue.splice(0)) job.resolve(unavailable('the JavaScript sandbox is closed'));
      if (worker) exits.push(worker.terminate());
    }
    await Promise.allSettled(exits);
  }

  #spawn(slot: Slot): void {
    let settle: (ok: boolean) => void = () => {};
    slot.started = new Promise((r) => (settle = r));
    slot.ready = false;
    let worker: Worker;
    try {
      worker = new Worker(WORKER_URL, { workerData: this.#workerData, resourceLimits: { stackSizeMb: this.#stackSizeMb } });
    } catch {
      settle(false);
      this.#failQueue(slot, 'the JavaScript sandbox could not start');
      return;
    }
    slot.worker = worker;
    worker.unref();
    const startTimer = setTimeout(() => {
      if (slot.worker !== worker || slot.ready) return;
      // Hung while loading: give up on it; the next request tries a fresh worker.
      slot.worker = undefined;
      settle(false);
      this.#failQueue(slot, 'the JavaScript sandbox could not start');
      void worker.terminate();
    }, START_TIMEOUT_MS);
    startTimer.unref();
    worker.on('message', (msg: JsWorkerReply | { ready: true }) => {
      if (slot.worker !== worker) return;
      if ('ready' in msg) {
        clearTimeout(startTimer);
        slot.ready = true;
        settle(true);
        this.#pump(slot);
        return;
      }
      const cur = slot.current;
      if (cur === undefined || cur.job.request.id !== msg.id) return;
      clearTimeout(cur.timer);
      slot.current = undefined;
      cur.job.resolve(toResult(msg, performance.now() - cur.sentAt));
      if (msg.fatal === true) {
        void this.#replace(slot, worker);
        return;
      }
      if (slot.queue.length === 0) worker.unref();
      this.#pump(slot);
    });
    const died = (): void => {
      clearTimeout(startTimer);
      if (slot.worker !== worker) return;
      slot.worker = undefined;
      settle(false);
      if (slot.current) {
        clearTimeout(slot.current.timer);
        slot.current.job.resolve(unavailable('the JavaScript sandbox stopped'));
        slot.current = undefined;
      }
      // A worker that dies before it is ready would die again: refuse what waits rather than loop.
      if (!slot.ready) this.#failQueue(slot, 'the JavaScript sandbox could not start');
      else this.#pump(slot);
    };
    worker.on('error', died);
    worker.on('exit', died);
  }

  /** Terminates `worker` (the slot's) and starts a fresh one. */
  async #replace(slot: Slot, worker: Worker): Promise<void> {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    const exited = worker.terminate();
    if (!this.#closed) this.#spawn(slot);
    await exited.catch(() => undefined);
  }

  #failQueue(slot: Slot, message: string): void {
    for (const job of slot.queue.splice(0)) job.resolve(unavailable(message));
  }

  /** Sends the next queued request when the slot's worker is idle and ready; starts a worker if there is none. */
  #pump(slot: Slot): void {
    if (this.#closed || slot.current !== undefined || slot.queue.length === 0) return;
    if (slot.worker === undefined) {
      this.#spawn(slot);
      return;
    }
    if (!slot.ready) return;
    const worker = slot.worker;
    const job = slot.queue.shift() as Job;
    const timer = setTimeout(() => {
      // The backstop: the interrupt handler did not stop the code (or the worker hangs).
      if (slot.current?.job !== job) return;
      slot.current = undefined;
      job.resolve({ ok: false, code: 'ERR_JS_TIMEOUT', message: `the code ran longer than ${job.request.limits.timeoutMs} ms and was stopped` });
      void this.#replace(slot, worker);
    }, backstopMs(job.request.limits));
    slot.current = { job, timer, sentAt: performance.now() };
    worker.ref();
    worker.postMessage(job.request);
  }
}

function load(slot: Slot): number {
  return slot.queue.length + (slot.current === undefined ? 0 : 1);
}

function toResult(reply: JsWorkerReply, ms: number): JsResult {
  if (!reply.ok) return { ok: false, code: reply.code, message: reply.message };
  try {
    return { ok: true, value: JSON.parse(reply.json) as unknown, ms };
  } catch {
    return { ok: false, code: 'ERR_JS_RESULT', message: 'the value is not JSON' };
  }
}

/**
 * A {@link JsEvaluator} started on the first evaluation, so a process that
 * never evaluates never starts a worker. A failed start answers
 * `ERR_JS_UNAVAILABLE` and is retried by the next evaluation.
 */
export class LazyJsEvaluator implements JsEvaluate {
  readonly #options: JsEvaluatorOptions;
  #starting: Promise<JsEvaluator> | undefined;
  #closed = false;

  constructor(options: JsEvaluatorOptions = {}) {
    this.#options = options;
  }

  /** Whether a start was attempted (tests: a gateway without `response.js` never starts one). */
  get started(): boolean {
    return this.#starting !== undefined;
  }

  /** As {@link JsEvaluator.evaluate}, starting the pool first if needed. */
  async evaluate(source: string, input?: unknown, limits?: Partial<JsLimits>): Promise<JsResult> {
    if (this.#closed) return unavailable('the JavaScript sandbox is closed');
    const starting = (this.#starting ??= JsEvaluator.start(this.#options));
    let ev: JsEvaluator;
    try {
      ev = await starting;
    } catch {
      if (this.#starting === starting) this.#starting = undefined;
      return unavailable('the JavaScript sandbox could not start');
    }
    return ev.evaluate(source, input, limits);
  }

  /** Closes the pool if it was started. */
  async close(): Promise<void> {
    this.#closed = true;
    const starting = this.#starting;
    if (starting === undefined) return;
    try {
      await (await starting).close();
    } catch {
      // It never started: nothing to close.
    }
  }
}
