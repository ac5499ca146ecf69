/**
 * The audit port: what the audit log (./log.ts), `verifyAudit`, the `bastion
 * audit` CLI and the CLI admin commands need from a store. The audit module
 * computes every chain field and checkpoint (./chain.ts, ./append.ts); an
 * adapter only stores rows, and only if they extend its tip. Implemented by
 * every store adapter; contract: test/store/contracts/audit.ts (and the
 * compare-and-append tests in test/audit/append.test.ts).
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`).
 */
import type { AuditAppendPort } from './append.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from './types.ts';

/** The audit chain and its checkpoints. */
export interface AuditStore extends AuditAppendPort {
  /**
   * Appends events to the audit chain without a checkpoint; durable when the
   * returned promise resolves. Returns the stored records (none for no events).
   * Adapters implement it as `appendAuditEvents(this, events)` (./append.ts):
   * the audit module chains, the adapter only stores rows through
   * {@link AuditAppendPort.appendAuditRecords}.
   * @throws TypeError when an event is not JSON (nothing of the batch is stored);
   *   BastionError `ERR_STORE`, or `ERR_AUDIT_CONFLICT` when every retry lost the race.
   */
  appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]>;
  /**
   * Records with `seq >= fromSeq`, ascending, at most `limit`.
   * @throws RangeError when `limit` is not a non-negative integer.
   */
  readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /** Stores a checkpoint (signed by the audit log) on its own. */
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  /** All checkpoints, ascending by seq. */
  listCheckpoints(): Promise<AuditCheckpoint[]>;
}
