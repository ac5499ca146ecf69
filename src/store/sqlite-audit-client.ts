/**
 * The main-thread side of the audit worker (./sqlite-audit-worker.ts): sends
 * batches, resolves each caller when its batch is durable. If the worker dies,
 * every pending append rejects with `ERR_STORE` (the door then fails closed)
 * and the next append starts a new worker (see util/worker-client.ts).
 */
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import { BastionError } from '../errors.ts';
import { WorkerClient } from '../util/worker-client.ts';

export class AuditWorker {
  readonly #client: WorkerClient;

  constructor(file: string) {
    this.#client = new WorkerClient({
      url: new URL('./sqlite-audit-worker.ts', import.meta.url),
      workerData: { file },
      replyError: (error) => {
        if (error.code === 'TypeError') return new TypeError(error.message);
        if (error.code === 'ERR_AUDIT_CONFLICT') return new BastionError('ERR_AUDIT_CONFLICT', error.message);
        return new BastionError('ERR_STORE', 'store: appendAudit failed', { detail: { code: error.code } });
      },
      stopped: (cause) => new BastionError('ERR_STORE', 'store: audit worker stopped', { cause }),
    });
  }

  /**
   * Stores chained rows in the worker (see `appendAuditRowsTx`); resolves once durable.
   * Rows cross the thread boundary as JSON text: one native stringify and parse
   * instead of a structured clone of every record (they are JSON by contract).
   * @throws BastionError `ERR_AUDIT_CONFLICT` (the tip moved), `ERR_STORE`; TypeError.
   */
  async append(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void> {
    let rows: string;
    try {
      rows = JSON.stringify({ records, checkpoints });
    } catch (err) {
      // Not serializable (a cycle, a bigint): not an audit event.
      throw new TypeError(`appendAudit: records cannot be sent to the writer: ${(err as Error).name}`);
    }
    await this.#client.request({ rows });
  }

  /** Finishes pending appends, then stops the worker. */
  close(): Promise<void> {
    return this.#client.close();
  }
}
