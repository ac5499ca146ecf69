/**
 * The main-thread side of the audit worker (./sqlite-audit-worker.ts): sends
 * batches, resolves each caller when its batch is durable. If the worker dies,
 * every pending append rejects with `ERR_STORE` (the door then fails closed)
 * and the next append starts a new worker.
 */
import { Worker } from 'node:worker_threads';
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import { BastionError } from '../errors.ts';

/** Rows cross the thread boundary as JSON text: one native stringify and parse instead of a structured clone of every record (they are JSON by contract). */
type Reply = { id: number; error?: undefined } | { id: number; error: { code: string; message: string } };

export class AuditWorker {
  readonly #file: string;
  #worker: Worker | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(file: string) {
    this.#file = file;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const worker = new Worker(new URL('./sqlite-audit-worker.ts', import.meta.url), { workerData: { file: this.#file } });
    worker.on('message', (reply: Reply) => {
      const p = this.#pending.get(reply.id);
      if (!p) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if (reply.error === undefined) p.resolve();
      else if (reply.error.code === 'TypeError') p.reject(new TypeError(reply.error.message));
      else if (reply.error.code === 'ERR_AUDIT_CONFLICT') p.reject(new BastionError('ERR_AUDIT_CONFLICT', reply.error.message));
      else p.reject(new BastionError('ERR_STORE', 'store: appendAudit failed', { detail: { code: reply.error.code } }));
    });
    const fail = (err: unknown): void => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const p of this.#pending.values()) p.reject(new BastionError('ERR_STORE', 'store: audit worker stopped', { cause: err }));
      this.#pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit ${code}`)));
    // Idle, the worker must not keep the process alive; with appends pending it must (a promise
    // alone does not), or a short-lived process could exit before its audit record is written.
    worker.unref();
    this.#worker = worker;
    return worker;
  }

  /**
   * Stores chained rows in the worker (see `appendAuditRowsTx`); resolves once durable.
   * @throws BastionError `ERR_AUDIT_CONFLICT` (the tip moved), `ERR_STORE`; TypeError.
   */
  append(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    const worker = this.#start();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.ref();
      try {
        worker.postMessage({ id, rows: JSON.stringify({ records, checkpoints }) });
      } catch (err) {
        // Not serializable (a cycle, a bigint): not an audit event.
        this.#pending.delete(id);
        if (this.#pending.size === 0) worker.unref();
        reject(new TypeError(`appendAudit: records cannot be sent to the writer: ${(err as Error).name}`));
      }
    });
  }

  /** Finishes pending appends, then stops the worker. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    while (this.#pending.size > 0) await new Promise((r) => setTimeout(r, 5));
    this.#worker = undefined;
    const exited = new Promise((r) => worker.once('exit', r));
    worker.ref(); // keep the process alive until the connection is closed
    worker.postMessage({ close: true });
    await exited;
  }
}
