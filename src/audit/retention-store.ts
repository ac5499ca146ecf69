/**
 * The store port of audit retention (./prune.ts): one transaction that appends
 * the prune manifest with its checkpoint, deletes the pruned prefix and turns
 * expired records into tombstones. Implemented by the SQLite
 * (../store/sqlite-audit-prune.ts) and PostgreSQL (../store/postgres-audit-prune.ts)
 * stores; contract: test/store/contracts/audit-retention.ts.
 */
import type { AuditTip } from './append.ts';
import type { AuditTombstone } from './retention.ts';
import type { AuditCheckpoint, AuditRecord } from './types.ts';

/** What one prune stores, chained onto the tip read under the store's audit lock. */
export interface AuditPruneRows {
  /** The manifest record (`audit.pruned`), extending the tip. */
  readonly records: readonly AuditRecord[];
  /** The signed checkpoint(s) over it. */
  readonly checkpoints: readonly AuditCheckpoint[];
  /** The lowest stored seq the plan saw (0: the store was empty); checked. */
  readonly firstSeq: number;
  /** Delete every record and checkpoint with seq ≤ `through`. */
  readonly through: number;
  /** Replace these records (same seq and hash, not yet tombstones) by their tombstones. */
  readonly tombstones: readonly AuditTombstone[];
  /** The newest seq the plan scanned: no manifest may have been appended after it (another prune ran). */
  readonly scannedTip: number;
}

/** A store that can apply a retention prune. */
export interface AuditPrunePort {
  /**
   * In one transaction holding the audit lock (appends wait): reads the tip,
   * calls `rows(tip)` once (synchronously: the lock is held), checks that the
   * manifest extends the tip, that the lowest seq is still `firstSeq`, that no
   * manifest lies past `scannedTip` and that every tombstoned row still holds
   * its record; then stores the manifest and its checkpoints, deletes the
   * prefix and writes the tombstones. Resolves with what `rows` returned, durable.
   * @throws BastionError `ERR_AUDIT_CONFLICT` when a check fails (nothing changed: plan again);
   *   what `rows` throws; `ERR_STORE` on a driver failure.
   */
  pruneAudit(rows: (tip: AuditTip | undefined) => AuditPruneRows): Promise<AuditPruneRows>;
}

/** Whether `store` implements {@link AuditPrunePort}. */
export function hasPruneAudit<S extends object>(store: S): store is S & AuditPrunePort {
  return typeof (store as Partial<AuditPrunePort>).pruneAudit === 'function';
}

/** `LIKE` pattern of a stored tombstone's JSON (see `tombstoneOf`: `tombstone` is its first key). */
export const TOMBSTONE_LIKE = '{"tombstone":%';
/**
 * `LIKE` pattern of a stored manifest's JSON. Inside a JSON string every `"` is
 * escaped, so `"method":"audit.pruned"` occurs only as a real key and value
 * (possibly nested in `detail`: that only makes a prune conflict and plan again).
 */
export const MANIFEST_LIKE = '%"method":"audit.pruned"%';
