/**
 * The retention prune transaction of the PostgreSQL store
 * (../audit/retention-store.ts), under the same advisory lock as audit appends.
 */
import type pg from 'pg';
import { assertExtendsTip, type AuditTip } from '../audit/append.ts';
import { MANIFEST_LIKE, TOMBSTONE_LIKE, type AuditPruneRows } from '../audit/retention-store.ts';
import { BastionError } from '../errors.ts';

function conflict(why: string): BastionError {
  return new BastionError('ERR_AUDIT_CONFLICT', `audit: the store changed while the prune was planned (${why}); plan again`);
}

/**
 * Applies one prune on `client` in one transaction holding
 * `pg_advisory_xact_lock(lockClass, lockKey)` (see `AuditPrunePort.pruneAudit`).
 * Rolls back on any failure; the caller releases the client (discarding it when `broken`).
 * @throws BastionError `ERR_AUDIT_CONFLICT`; what `rows` throws; the driver's error as it is (the caller wraps it).
 */
export async function pruneAuditPg(
  client: pg.PoolClient,
  lockClass: number,
  lockKey: number,
  rows: (tip: AuditTip | undefined) => AuditPruneRows,
): Promise<AuditPruneRows> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [lockClass, lockKey]);
    const tipRow = (await client.query<{ seq: string; hash: string }>('SELECT audit.seq::text AS seq, hash FROM audit ORDER BY audit.seq DESC LIMIT 1')).rows[0];
    const tip = tipRow === undefined ? undefined : { seq: Number(tipRow.seq), hash: tipRow.hash };
    const out = rows(tip);
    assertExtendsTip(tip, out.records);
    const min = (await client.query<{ seq: string | null }>('SELECT MIN(seq)::text AS seq FROM audit')).rows[0];
    if (Number(min?.seq ?? 0) !== out.firstSeq) throw conflict('the first record moved');
    const later = await client.query('SELECT seq FROM audit WHERE seq > $1 AND json LIKE $2 LIMIT 1', [out.scannedTip, MANIFEST_LIKE]);
    if (later.rows.length > 0) throw conflict('another prune ran');
    if (out.tombstones.length > 0) {
      const r = await client.query(
        'UPDATE audit AS a SET json = t.json FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS t(seq, hash, json) WHERE a.seq = t.seq AND a.hash = t.hash AND a.json NOT LIKE $4',
        [out.tombstones.map((t) => t.seq), out.tombstones.map((t) => t.hash), out.tombstones.map((t) => JSON.stringify(t)), TOMBSTONE_LIKE],
      );
      if (r.rowCount !== out.tombstones.length) throw conflict('a record to tombstone changed');
    }
    if (out.records.length > 0) {
      await client.query('INSERT INTO audit (seq, json, hash) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[])', [
        out.records.map((r) => r.seq),
        out.records.map((r) => JSON.stringify(r)),
        out.records.map((r) => r.hash),
      ]);
    }
    if (out.checkpoints.length > 0) {
      const c = out.checkpoints;
      await client.query('INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])', [
        c.map((x) => x.seq),
        c.map((x) => x.hash),
        c.map((x) => x.time),
        c.map((x) => x.keyId),
        c.map((x) => x.signature),
      ]);
    }
    if (out.through > 0) {
      await client.query('DELETE FROM audit WHERE seq <= $1', [out.through]);
      await client.query('DELETE FROM audit_checkpoints WHERE seq <= $1', [out.through]);
    }
    await client.query('COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
