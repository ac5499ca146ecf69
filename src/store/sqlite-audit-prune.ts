/**
 * The retention prune transaction of the SQLite store (../audit/retention-store.ts).
 * Runs on the store's own connection under `BEGIN IMMEDIATE`, so it serializes
 * with the audit writer thread and with other processes like any append.
 */
import type { DatabaseSync } from 'node:sqlite';
import { assertExtendsTip } from '../audit/append.ts';
import { MANIFEST_LIKE, TOMBSTONE_LIKE, type AuditPruneRows } from '../audit/retention-store.ts';
import type { AuditTip } from '../audit/append.ts';
import { BastionError } from '../errors.ts';
import { guard, rollback } from './sqlite-audit.ts';

function conflict(why: string): BastionError {
  return new BastionError('ERR_AUDIT_CONFLICT', `audit: the store changed while the prune was planned (${why}); plan again`);
}

/**
 * Applies one prune in one transaction (see `AuditPrunePort.pruneAudit`).
 * @throws BastionError `ERR_AUDIT_CONFLICT` when a check fails, `ERR_STORE` on a driver failure; what `rows` throws.
 */
export function pruneAuditRowsTx(db: DatabaseSync, rows: (tip: AuditTip | undefined) => AuditPruneRows): AuditPruneRows {
  guard('pruneAudit', () => db.exec('BEGIN IMMEDIATE'));
  try {
    const tipRow = guard('pruneAudit', () => db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1').get()) as { seq: number; hash: string } | undefined;
    const out = rows(tipRow === undefined ? undefined : { seq: tipRow.seq, hash: tipRow.hash });
    assertExtendsTip(tipRow === undefined ? undefined : { seq: tipRow.seq, hash: tipRow.hash }, out.records);
    const min = guard('pruneAudit', () => db.prepare('SELECT MIN(seq) AS seq FROM audit').get()) as { seq: number | null };
    if ((min.seq ?? 0) !== out.firstSeq) throw conflict('the first record moved');
    const later = guard('pruneAudit', () => db.prepare('SELECT seq FROM audit WHERE seq > ? AND json LIKE ? LIMIT 1').get(out.scannedTip, MANIFEST_LIKE));
    if (later !== undefined) throw conflict('another prune ran');
    const update = db.prepare('UPDATE audit SET json = ? WHERE seq = ? AND hash = ? AND json NOT LIKE ?');
    for (const t of out.tombstones) {
      const r = guard('pruneAudit', () => update.run(JSON.stringify(t), t.seq, t.hash, TOMBSTONE_LIKE));
      if (Number(r.changes) !== 1) throw conflict(`record ${t.seq} changed`);
    }
    const insert = db.prepare('INSERT INTO audit (seq, json, hash) VALUES (?, ?, ?)');
    for (const r of out.records) guard('pruneAudit', () => insert.run(r.seq, JSON.stringify(r), r.hash));
    const cp = db.prepare('INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)');
    for (const c of out.checkpoints) guard('pruneAudit', () => cp.run(c.seq, c.hash, c.time, c.keyId, c.signature));
    if (out.through > 0) {
      guard('pruneAudit', () => db.prepare('DELETE FROM audit WHERE seq <= ?').run(out.through));
      guard('pruneAudit', () => db.prepare('DELETE FROM audit_checkpoints WHERE seq <= ?').run(out.through));
    }
    guard('pruneAudit', () => db.exec('COMMIT'));
    return out;
  } catch (err) {
    rollback(db);
    throw err;
  }
}
