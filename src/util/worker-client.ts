/**
 * The main-thread side of a request/reply worker thread: started on the first
 * request, unreferenced while idle (it never keeps the process alive on its
 * own) and referenced while replies are pending (a short-lived process cannot
 * exit before its last reply). If the worker dies, every pending request
 * rejects with the error `stopped` builds and the next request starts a new
 * worker, so a caller that fails closed on a rejection stays closed.
 *
 * Protocol: out `{id, ...message}`; in `{id, value?}` or `{id, error: {code, message}}`.
 * `{close: true}` asks the worker to release what it holds and close its port.
 */
import { Worker } from 'node:worker_threads';

/** A worker's error reply. */
export interface WorkerError {
  readonly code: string;
  readonly message: string;
}

type Reply = { readonly id: number; readonly value?: unknown; readonly error?: undefined } | { readonly id: number; readonly error: WorkerError };

/** Options of {@link WorkerClient}. */
export interface WorkerClientOptions {
  /** The worker's module. */
  readonly url: URL;
  /** Passed to the worker as `workerData` (structured-cloned). */
  readonly workerData?: unknown;
  /** The error a request rejects with for the worker's error reply. */
  readonly replyError: (error: WorkerError) => Error;
  /** The error every pending request rejects with when the worker dies (`cause`: its error or exit code). */
  readonly stopped: (cause: unknown) => Error;
}

export class WorkerClient {
  readonly #opts: WorkerClientOptions;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (e: Error) => void }>();

  constructor(opts: WorkerClientOptions) {
    this.#opts = opts;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(this.#opts.url, { workerData: this.#opts.workerData });
    worker.on('message', (reply: Reply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if (reply.error === undefined) p.resolve(reply.value);
      else p.reject(this.#opts.replyError(reply.error));
    });
    const fail = (err: unknown): void => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(this.#opts.stopped(err));
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /**
   * Sends `message` (structured-cloned; pass bulk data as JSON text, which is
   * cheaper to clone) and resolves with the worker's reply value.
   * @throws TypeError when `message` cannot be cloned; the `replyError` or `stopped` error.
   */
  request(message: Readonly<Record<string, unknown>>): Promise<unknown> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ ...message, id });
      } catch (err) {
        this.#pending.delete(id);
        if (this.#pending.size === 0) worker.unref();
        reject(new TypeError(`the message cannot be sent to the worker: ${(err as Error).name}`));
      }
    });
  }

  /** Waits for pending replies, then stops the worker (after it released what it holds). */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    while (this.#pending.size > 0 && this.#worker === worker) await new Promise((r) => setTimeout(r, 5));
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    const exited = new Promise((r) => worker.once('exit', r));
    worker.ref(); // keep the process alive until the worker has released what it holds
    worker.postMessage({ close: true });
    await exited;
  }
}
