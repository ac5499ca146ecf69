/**
 * The audit append transaction of the SQLite store, shared by the store's own
 * connection and by the audit worker (./sqlite-audit-worker.ts), plus the
 * driver helpers both use. The store only stores rows: the audit module
 * (../audit/append.ts) chains records and signs checkpoints. The tip is read
 * under `BEGIN IMMEDIATE` and the rows are stored only if they extend it, so
 * writers on any connection, thread or process serialize and cannot fork the chain.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { assertExtendsTip } from '../audit/append.ts';
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import { BastionError } from '../errors.ts';

/** How long a writer waits for another connection's lock, in ms. */
export const BUSY_TIMEOUT_MS = 5_000;

/** Runs a driver call, wrapping any failure into `ERR_STORE` (a BastionError passes through). */
export function guard<T>(operation: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BastionError) throw err;
    throw new BastionError('ERR_STORE', `store: ${operation} failed`, { cause: err });
  }
}

export function rollback(db: DatabaseSync): void {
  try {
    if (db.isTransaction) db.exec('ROLLBACK');
  } catch {
    // The original error is reported; a failed rollback leaves SQLite to roll back on close.
  }
}

/** Opens a connection with the store's settings: WAL, `synchronous=FULL` (durable on commit), busy timeout. */
export function openConnection(file: string): DatabaseSync {
  const db = guard('open', () => new DatabaseSync(file, { timeout: BUSY_TIMEOUT_MS }));
  try {
    guard('open', () => {
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = FULL');
      db.exec('PRAGMA foreign_keys = ON');
    });
    return db;
  } catch (err) {
    try {
      db.close();
    } catch {
      // Already failing; the first error is the one to report.
    }
    throw err;
  }
}

interface AppendStatements {
  readonly begin: StatementSync;
  readonly commit: StatementSync;
  readonly tip: StatementSync;
  readonly insert: StatementSync;
  readonly checkpoint: StatementSync;
}

const statements = new WeakMap<DatabaseSync, AppendStatements>();

/**
 * Stores chained `records` and the `checkpoints` over them in one transaction,
 * if the first record extends the stored tip; durable when it returns.
 * @throws BastionError `ERR_AUDIT_CONFLICT` when the tip moved, `ERR_STORE` on a driver failure;
 *   TypeError when the records are not consecutive.
 */
export function appendAuditRowsTx(db: DatabaseSync, records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): void {
  if (records.length === 0 && checkpoints.length === 0) return;
  let st = statements.get(db);
  if (!st) {
    st = guard('appendAudit', () => ({
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      tip: db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare('INSERT INTO audit (seq, json, hash) VALUES (?, ?, ?)'),
      checkpoint: db.prepare('INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)'),
    }));
    statements.set(db, st);
  }
  const s = st;
  guard('appendAudit', () => s.begin.run());
  try {
    const tip = guard('appendAudit', () => s.tip.get()) as { seq: number; hash: string } | undefined;
    assertExtendsTip(tip === undefined ? undefined : { seq: tip.seq, hash: tip.hash }, records);
    for (const record of records) {
      // Stored as plain JSON: verification recomputes the canonical form from the parsed record.
      guard('appendAudit', () => s.insert.run(record.seq, JSON.stringify(record), record.hash));
    }
    for (const cp of checkpoints) guard('appendAudit', () => s.checkpoint.run(cp.seq, cp.hash, cp.time, cp.keyId, cp.signature));
    guard('appendAudit', () => s.commit.run());
  } catch (err) {
    rollback(db);
    throw err;
  }
}
