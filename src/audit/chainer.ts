/**
 * Where the audit chain is hashed: on the calling thread (`chainRecords`), or
 * on a worker thread ({@link OffThreadChainer}), which the gateway uses so that
 * hashing records (RFC 8785 canonical JSON and SHA-256 per record) runs beside
 * the doors instead of between their requests. Both run ./chain.ts; the records
 * are the same.
 */
import { BastionError } from '../errors.ts';
import { WorkerClient } from '../util/worker-client.ts';
import type { AuditTip } from './append.ts';
import type { AuditEvent, AuditRecord } from './types.ts';

/** Chains `events` onto `tip` (undefined: an empty chain), as `chainRecords` does. */
export type AuditChainer = (tip: AuditTip | undefined, events: readonly AuditEvent[]) => Promise<AuditRecord[]>;

/**
 * Chains on a worker thread (./chain-worker.ts), started on first use and
 * unreferenced while idle. Events cross as JSON text and records come back as
 * JSON text. If the worker dies, pending chains reject with `ERR_AUDIT_WRITE`
 * (the audit log fails their appends; durable ones refuse their requests) and
 * the next chain starts a new worker.
 */
export class OffThreadChainer {
  readonly #client = new WorkerClient({
    url: new URL('./chain-worker.ts', import.meta.url),
    replyError: (error) => (error.code === 'TypeError' ? new TypeError(error.message) : new BastionError('ERR_AUDIT_WRITE', 'audit: chaining failed', { detail: { code: error.code } })),
    stopped: (cause) => new BastionError('ERR_AUDIT_WRITE', 'audit: chain worker stopped', { cause }),
  });

  /**
   * The records of `events` chained onto `tip`. Every event must be a
   * `jsonSnapshot` result (the audit log's queue holds nothing else).
   * @throws TypeError when an event is not JSON; BastionError `ERR_AUDIT_WRITE` when the worker failed.
   */
  readonly chain: AuditChainer = async (tip, events) => {
    const text = await this.#client.request({ tip: tip === undefined ? null : { seq: tip.seq, hash: tip.hash }, events: JSON.stringify(events) });
    if (typeof text !== 'string') throw new BastionError('ERR_AUDIT_WRITE', 'audit: the chain worker replied without records');
    const records = JSON.parse(text) as unknown;
    if (!Array.isArray(records) || records.length !== events.length) throw new BastionError('ERR_AUDIT_WRITE', 'audit: the chain worker returned another number of records');
    return records as AuditRecord[];
  };

  /** Stops the worker after pending chains. */
  close(): Promise<void> {
    return this.#client.close();
  }
}
