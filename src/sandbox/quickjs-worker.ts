/**
 * The body of a JavaScript sandbox worker (./quickjs.ts): QuickJS compiled to
 * WebAssembly (quickjs-emscripten, release sync variant), one evaluation at a
 * time.
 *
 * Each evaluation gets a fresh QuickJS runtime and context (about 0.2 ms), so
 * nothing survives it: no global, no prototype change, no pending promise job,
 * no `Symbol.for` registry entry. The runtime carries the evaluation's memory
 * limit and stack limit, and an interrupt handler that stops the interpreter
 * once the deadline has passed. QuickJS's standard library (`std`, `os`) is not
 * compiled in and nothing of the host is exposed: the code sees the ECMAScript
 * built-ins and a frozen `input`, nothing else.
 *
 * The interrupt handler runs only between bytecode instructions: a long call
 * into a built-in written in C (a huge `String.prototype.repeat`) is not
 * interrupted. The main thread's backstop (terminating this worker) covers it.
 *
 * Protocol: in `{id, source, input, limits}` (`input` is JSON text or null for
 * undefined); out `{ready: true}` once, then per request `{id, ok: true, json}`
 * or `{id, ok: false, code, message}`, either with `fatal: true` when the WebAssembly
 * instance may be inconsistent (a host exception unwound through it): the main
 * thread replaces this worker.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { newQuickJSWASMModule, RELEASE_SYNC, type QuickJSContext, type QuickJSHandle, type QuickJSRuntime, type QuickJSWASMModule } from 'quickjs-emscripten';

/** A request from the main thread. */
export interface JsWorkerRequest {
  readonly id: number;
  readonly source: string;
  /** JSON text of the input; null: `input` is undefined. */
  readonly input: string | null;
  readonly limits: { readonly timeoutMs: number; readonly memoryBytes: number; readonly stackBytes: number; readonly maxResultBytes: number };
}

/** A worker's answer to one request. */
export type JsWorkerReply =
  | { readonly id: number; readonly ok: true; readonly json: string; readonly fatal?: boolean }
  | { readonly id: number; readonly ok: false; readonly code: 'ERR_JS_TIMEOUT' | 'ERR_JS_MEMORY' | 'ERR_JS_ERROR' | 'ERR_JS_RESULT' | 'ERR_JS_UNAVAILABLE'; readonly message: string; readonly fatal?: boolean };

/** Options the main thread passes as `workerData`. */
export interface JsWorkerData {
  /** Tests only: the interrupt handler never fires, so only the main thread's backstop stops runaway code. */
  readonly unsafeDisableInterrupt?: boolean;
  /** Most the WebAssembly heap may grow beyond its initial size (bytes). */
  readonly heapBytes?: number;
  /** Tests only: the worker thread exits when asked to evaluate exactly this source (a crash). */
  readonly unsafeCrashOnSource?: string;
}

/** Longest error message returned (characters). */
const MAX_MESSAGE_CHARS = 500;
/** Extra memory allowed while the result or error is read out after the code ran (bytes). */
const READOUT_BYTES = 1024 * 1024;

/**
 * Binds the input and reads the value out, inside the context. `input` is
 * deep-frozen and defined non-writable, non-configurable; the value is
 * serialized by the context's own JSON.stringify (a getter or `toJSON` runs as
 * sandboxed code, under the same deadline and limits).
 */
const PRELUDE = `(function () {
  'use strict';
  const freeze = (v) => {
    if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const k of Object.keys(v)) freeze(v[k]);
    }
    return v;
  };
  return [
    (text) => { Object.defineProperty(globalThis, 'input', { value: text === null ? undefined : freeze(JSON.parse(text)), writable: false, enumerable: false, configurable: false }); },
    (value) => (value instanceof Promise ? undefined : JSON.stringify(value)),
    (e) => {
      if (e instanceof Error) return String(e.name) + '\\n' + String(e.message);
      return 'thrown\\n' + String(e);
    },
  ];
})()`;

const data = (workerData ?? {}) as JsWorkerData;
const port = parentPort;
if (port === null) throw new Error('quickjs-worker: not a worker thread');

// quickjs-emscripten's memory limit bounds single allocations but not the total of large strings and
// array buffers (justjake/quickjs-emscripten#271): the WebAssembly heap itself is capped here. Emscripten
// grows it through Memory#grow from JavaScript; a refused growth makes malloc fail, which QuickJS answers
// with its own out-of-memory error. This thread holds no other WebAssembly memory.
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(deltaPages: number): number;
}
const memoryProto = (globalThis as unknown as { WebAssembly: { Memory: { prototype: WasmMemory } } }).WebAssembly.Memory.prototype;
const heapCap = data.heapBytes ?? Number.POSITIVE_INFINITY;
let heapBase: number | undefined;
/** Set when a growth was refused: the heap is at its cap, and the worker is replaced after this evaluation. */
let heapRefused = false;
const grow = memoryProto.grow;
memoryProto.grow = function (this: WasmMemory, deltaPages: number): number {
  const base = (heapBase ??= this.buffer.byteLength);
  if (this.buffer.byteLength + deltaPages * 65536 > base + heapCap) {
    heapRefused = true;
    throw new RangeError('the sandbox heap is at its cap');
  }
  return grow.call(this, deltaPages);
};

const QuickJS: QuickJSWASMModule = await newQuickJSWASMModule(RELEASE_SYNC);

function cap(text: string): string {
  return text.length <= MAX_MESSAGE_CHARS ? text : `${text.slice(0, MAX_MESSAGE_CHARS)}…`;
}

/** One evaluation in a fresh runtime. Never throws; a host exception is a fatal reply. */
function evaluate(req: JsWorkerRequest): JsWorkerReply {
  const { id, limits } = req;
  let interrupted = false;
  const deadline = performance.now() + limits.timeoutMs;
  let rt: QuickJSRuntime | undefined;
  let ctx: QuickJSContext | undefined;
  const handles: QuickJSHandle[] = [];
  const timeout = (): JsWorkerReply => ({ id, ok: false, code: 'ERR_JS_TIMEOUT', message: `the code ran longer than ${limits.timeoutMs} ms` });
  try {
    rt = QuickJS.newRuntime();
    rt.setMemoryLimit(limits.memoryBytes);
    rt.setMaxStackSize(limits.stackBytes);
    if (data.unsafeDisableInterrupt !== true) {
      rt.setInterruptHandler(() => {
        if (interrupted || performance.now() > deadline) interrupted = true;
        return interrupted;
      });
    }
    ctx = rt.newContext();
    const c = ctx;
    const keep = (h: QuickJSHandle): QuickJSHandle => (handles.push(h), h);
    const helpers = keep(c.unwrapResult(c.evalCode(PRELUDE, 'bastion-prelude.js', { strict: true })));
    const bind = keep(c.getProp(helpers, 0));
    const stringify = keep(c.getProp(helpers, 1));
    const describe = keep(c.getProp(helpers, 2));

    // The error's name and message, read with a little memory to spare (after an out-of-memory error).
    const failure = (error: QuickJSHandle, fallback: 'ERR_JS_ERROR' | 'ERR_JS_RESULT'): JsWorkerReply => {
      keep(error);
      if (interrupted) return timeout();
      rt?.setMemoryLimit(limits.memoryBytes + READOUT_BYTES);
      const d = c.callFunction(describe, c.undefined, error);
      if (d.error) {
        keep(d.error);
        return interrupted ? timeout() : { id, ok: false, code: fallback, message: 'the code threw a value that cannot be described' };
      }
      const described = keep(d.value);
      const text = c.typeof(described) === 'string' ? c.getString(described) : 'thrown\n';
      const cut = text.indexOf('\n');
      const name = text.slice(0, cut);
      const message = text.slice(cut + 1);
      if (interrupted) return timeout();
      if (name === 'InternalError' && message === 'out of memory') return { id, ok: false, code: 'ERR_JS_MEMORY', message: `the code used more than ${limits.memoryBytes} bytes of memory` };
      if (name === 'InternalError' && message === 'stack overflow') return { id, ok: false, code: 'ERR_JS_MEMORY', message: `the code used more than ${limits.stackBytes} bytes of stack` };
      // QuickJS throws null when it runs out of memory while already raising an out-of-memory error.
      if (name === 'thrown' && message === 'null' && fallback === 'ERR_JS_ERROR') return { id, ok: false, code: 'ERR_JS_MEMORY', message: `the code used more than ${limits.memoryBytes} bytes of memory (or threw null)` };
      return { id, ok: false, code: fallback, message: cap(name === 'thrown' ? `the code threw ${message}` : `${name}: ${message}`) };
    };

    const input = keep(req.input === null ? c.null : c.newString(req.input));
    const bound = c.callFunction(bind, c.undefined, input);
    if (bound.error) return failure(bound.error, 'ERR_JS_ERROR');
    keep(bound.value);

    const ran = c.evalCode(req.source, 'expression.js', { type: 'global', strict: true });
    if (ran.error) return failure(ran.error, 'ERR_JS_ERROR');
    const value = keep(ran.value);

    const out = c.callFunction(stringify, c.undefined, value);
    if (out.error) return failure(out.error, 'ERR_JS_RESULT');
    const text = keep(out.value);
    if (interrupted) return timeout();
    if (c.typeof(text) !== 'string') return { id, ok: false, code: 'ERR_JS_RESULT', message: 'the value is not JSON (undefined, a function, a symbol or a promise)' };
    // UTF-8 takes at least a byte per UTF-16 unit: a length over the cap is over it in bytes too (checked before copying out).
    const units = c.getNumber(keep(c.getProp(text, 'length')));
    if (units > limits.maxResultBytes) return { id, ok: false, code: 'ERR_JS_RESULT', message: `the value is larger than ${limits.maxResultBytes} bytes` };
    const json = c.getString(text);
    if (Buffer.byteLength(json, 'utf8') > limits.maxResultBytes) return { id, ok: false, code: 'ERR_JS_RESULT', message: `the value is larger than ${limits.maxResultBytes} bytes` };
    return { id, ok: true, json };
  } catch (err) {
    // A host exception unwound through WebAssembly (the native stack overflowed, or the heap
    // could not grow): the instance cannot be trusted any more.
    const stack = err instanceof RangeError && /call stack/i.test(err.message);
    if (interrupted) return { ...timeout(), fatal: true };
    return stack
      ? { id, ok: false, code: 'ERR_JS_MEMORY', message: `the code used more than ${limits.stackBytes} bytes of stack`, fatal: true }
      : { id, ok: false, code: 'ERR_JS_UNAVAILABLE', message: 'the JavaScript sandbox failed', fatal: true };
  } finally {
    try {
      for (const h of handles.reverse()) if (h.alive) h.dispose();
      ctx?.dispose();
      rt?.dispose();
    } catch {
      // Disposal failed (after a host exception, or a QuickJS assertion): the worker is replaced.
      disposalFailed = true;
    }
  }
}

let disposalFailed = false;

/**
 * {@link evaluate}, made fatal when the runtime could not be released, or when
 * the heap reached its cap (WebAssembly memory never shrinks, and a fragmented
 * heap at its cap would fail later evaluations: a fresh worker starts clean).
 */
function answer(req: JsWorkerRequest): JsWorkerReply {
  disposalFailed = false;
  heapRefused = false;
  const reply = evaluate(req);
  return disposalFailed || heapRefused ? { ...reply, fatal: true } : reply;
}

port.on('message', (req: JsWorkerRequest) => {
  if (data.unsafeCrashOnSource !== undefined && req.source === data.unsafeCrashOnSource) process.exit(70);
  port.postMessage(answer(req));
});
// Warm-up: the first evaluations run while WebAssembly tiers up; do them before answering ready.
const WARM_UP = { id: 0, source: 'input.map((x) => ({ x, y: String(x * 2) })).filter((o) => o.x % 2)', input: '[1,2,3,4,5,6,7,8]', limits: { timeoutMs: 1000, memoryBytes: 8 * 1024 * 1024, stackBytes: 64 * 1024, maxResultBytes: 4096 } };
for (let i = 0; i < 50; i++) answer(WARM_UP);
port.postMessage({ ready: true });
