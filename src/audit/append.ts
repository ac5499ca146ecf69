/**
 * Appending to the audit chain through a store that only stores rows.
 *
 * The audit module computes every chain field (`seq`, `prevHash`, `hash`, see
 * ./chain.ts) and the checkpoints over them; a store adapter stores the rows.
 * Two ways, see docs/store.md "The audit chain with several writers":
 *
 * - Sequence allocation under a lock ({@link AuditLockPort.appendUnderLock},
 *   PostgreSQL): the store takes its audit lock, reads the tip and hands it to
 *   the audit module, which chains (and signs) the batch once; the store
 *   inserts and commits. Writers queue on the lock; none chains twice.
 * - Compare-and-append ({@link AuditAppendPort.appendAuditRecords}, every
 *   store): the rows are stored if, and only if, they extend the tip. When
 *   another writer (a second process, a CLI admin command) moved the tip first,
 *   the store refuses with `ERR_AUDIT_CONFLICT` and the events are chained again
 *   onto the new tip, so writers in several processes cannot fork the chain.
 */
import { BastionError, isBastionError } from '../errors.ts';
import { GENESIS_HASH, chainRecords } from './chain.ts';
import type { AuditChainer } from './chainer.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from './types.ts';

/** The chain tip: the newest record's `seq` and `hash`. */
export interface AuditTip {
  readonly seq: number;
  readonly hash: string;
}

/** What appending needs from a store (a subset of `Store`). */
export interface AuditAppendPort {
  /** The newest record, or undefined when the chain is empty. */
  lastAudit(): Promise<AuditRecord | undefined>;
  /**
   * Stores `records` and `checkpoints` in one durable transaction, only if
   * `records[0]` extends the store's tip (its `seq` is the tip's + 1 and its
   * `prevHash` the tip's hash; seq 1 and 64 zeros on an empty chain).
   * @throws BastionError `ERR_AUDIT_CONFLICT` when the tip moved; `ERR_STORE` on a driver failure.
   */
  appendAuditRecords(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void>;
}

/**
 * Optional store method (PostgreSQL has it): sequence allocation under the
 * store's audit lock. Not part of {@link AuditAppendPort}: a store without it
 * is served by compare-and-append.
 */
export interface AuditLockPort {
  /**
   * Opens a transaction, takes the audit lock (other writers, in any process,
   * wait), reads the tip, calls `chain(tip)` once, stores the rows it returns
   * (records must extend that tip) and commits. Resolves with what `chain`
   * returned, durable. No `ERR_AUDIT_CONFLICT` can arise; `chain` runs while the
   * lock is held, so it must not wait on another append to this store.
   * @throws what `chain` throws (nothing stored); TypeError when the records do
   *   not extend the tip or are not consecutive; BastionError `ERR_STORE` on a driver failure.
   */
  appendUnderLock(chain: (tip: AuditTip | undefined) => Promise<ChainedRows>): Promise<ChainedRows>;
}

/** Whether `store` has {@link AuditLockPort.appendUnderLock}. */
export function hasAppendUnderLock<S extends object>(store: S): store is S & AuditLockPort {
  return typeof (store as Partial<AuditLockPort>).appendUnderLock === 'function';
}

/** Records chained onto a tip and the checkpoints to store with them. */
export interface ChainedRows {
  readonly records: AuditRecord[];
  readonly checkpoints: readonly AuditCheckpoint[];
}

/** How many times an append is chained again after a conflict before it fails. */
export const MAX_APPEND_ATTEMPTS = 100;

/** The tip of `record`, or undefined for an empty chain. */
export function tipOf(record: AuditRecord | undefined): AuditTip | undefined {
  return record === undefined ? undefined : { seq: record.seq, hash: record.hash };
}

/** Options of {@link appendChained}. */
export interface AppendChainedOptions {
  /** The tip the caller believes current (saves a read); re-read from the store after a conflict. */
  readonly tip?: AuditTip | undefined;
  /**
   * The checkpoints to store in the same transaction, given the chained records
   * and the tip they extend. Called again after every conflict.
   */
  readonly checkpoints?: (records: readonly AuditRecord[], tip: AuditTip | undefined) => Promise<readonly AuditCheckpoint[]>;
  /** Every event is a `jsonSnapshot` result (see `chainRecords`): chaining skips the I-JSON walk. */
  readonly snapshots?: boolean;
  /** Chains instead of `chainRecords` on this thread (./chainer.ts: the audit log's worker thread). */
  readonly chain?: AuditChainer;
}

/**
 * Chains `events` onto the store's tip and stores them (with the checkpoints
 * `opts.checkpoints` returns) in one transaction. With a store that has
 * {@link AuditAppendPort.appendUnderLock}, the batch is chained once, under the
 * store's lock, onto the tip read there (`opts.tip` is not needed); otherwise it
 * is compare-and-append, retrying on `ERR_AUDIT_CONFLICT` up to
 * {@link MAX_APPEND_ATTEMPTS} times. Durable when it resolves. Returns the
 * stored records and checkpoints.
 * @throws TypeError when an event is not JSON; BastionError `ERR_STORE` from the
 *   store, or `ERR_AUDIT_CONFLICT` when every attempt lost the race.
 */
export async function appendChained(store: AuditAppendPort, events: readonly AuditEvent[], opts: AppendChainedOptions = {}): Promise<ChainedRows> {
  const chainOnto = async (tip: AuditTip | undefined): Promise<ChainedRows> => {
    const records = opts.chain === undefined ? chainRecords(tip, events, { snapshots: opts.snapshots === true }) : await opts.chain(tip, events);
    const checkpoints = opts.checkpoints === undefined || records.length === 0 ? [] : await opts.checkpoints(records, tip);
    return { records, checkpoints };
  };
  if (events.length > 0 && hasAppendUnderLock(store)) return store.appendUnderLock(chainOnto);
  let tip = 'tip' in opts ? opts.tip : tipOf(await store.lastAudit());
  for (let attempt = 1; ; attempt++) {
    const { records, checkpoints } = await chainOnto(tip);
    try {
      if (records.length > 0) await store.appendAuditRecords(records, checkpoints);
      return { records, checkpoints };
    } catch (err) {
      if (!isBastionError(err, 'ERR_AUDIT_CONFLICT') || attempt >= MAX_APPEND_ATTEMPTS) throw err;
      tip = tipOf(await store.lastAudit());
    }
  }
}

/**
 * Appends `events` with no checkpoint (CLI admin commands, which hold no signing
 * key; the gateway's audit log signs the checkpoints they skipped when it next
 * opens or commits). Returns the stored records.
 * @throws TypeError when an event is not JSON; BastionError `ERR_STORE` or `ERR_AUDIT_CONFLICT`.
 */
export async function appendAuditEvents(store: AuditAppendPort, events: readonly AuditEvent[]): Promise<AuditRecord[]> {
  if (!Array.isArray(events)) throw new TypeError('appendAudit: events must be an array');
  if (events.length === 0) return [];
  return (await appendChained(store, events)).records;
}

/**
 * The row check a store adapter runs inside its transaction: `records` are
 * consecutive and the first extends `tip`. Compares the fields only; hashes are
 * never computed here.
 * @throws BastionError `ERR_AUDIT_CONFLICT` when the first record does not extend the tip; TypeError when the records are not consecutive.
 */
export function assertExtendsTip(tip: AuditTip | undefined, records: readonly AuditRecord[]): void {
  const first = records[0];
  if (first === undefined) return;
  const expectedSeq = tip === undefined ? 1 : tip.seq + 1;
  const expectedPrev = tip === undefined ? GENESIS_HASH : tip.hash;
  if (first.seq !== expectedSeq || first.prevHash !== expectedPrev) {
    throw new BastionError('ERR_AUDIT_CONFLICT', 'audit: the chain tip moved; chain the records again', { detail: { expectedSeq, seq: first.seq } });
  }
  for (let i = 1; i < records.length; i++) {
    const r = records[i]!;
    const prev = records[i - 1]!;
    if (r.seq !== prev.seq + 1 || r.prevHash !== prev.hash) throw new TypeError(`appendAuditRecords: record ${i} does not follow record ${i - 1}`);
  }
}
