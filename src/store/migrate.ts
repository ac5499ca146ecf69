/**
 * Copying a SQLite store into an empty PostgreSQL store (`bastion store
 * migrate`, docs/store.md#moving-from-sqlite-to-postgresql).
 *
 * The SQLite file is first brought to its current schema (by opening it as a
 * store), then read inside one read transaction (a consistent snapshot under
 * WAL). Every table is copied row for row, column for column (the PostgreSQL
 * schema keeps SQLite's table and column names, ./postgres-migrations.ts), in
 * ONE PostgreSQL transaction that holds the migration advisory lock and checks,
 * under it, that the target holds no data: a failure leaves the target as it
 * was, and two copies cannot interleave. Audit rows are copied as stored (the
 * record JSON text, `seq`, `hash`), checkpoints with their ids, so `bastion
 * audit verify` gives the same answer on the copy. Identity sequences (ban and
 * checkpoint ids) continue after the copied ids. Nonce tables (`<namespace>_nonces`)
 * are copied too, so a message accepted before the move is still a replay after it.
 */
import type { DatabaseSync } from 'node:sqlite';
import type pg from 'pg';
import { BastionError } from '../errors.ts';
import { LOCK_CLASS_MIGRATE, schemaLockKey } from './postgres-migrations.ts';
import { createPostgresPool, openPostgresStore, wrapDriverError } from './postgres.ts';
import { openSqliteStore } from './sqlite.ts';

/** Rows copied, by table, in copy order. */
export type CopyReport = ReadonlyArray<{ readonly table: string; readonly rows: number }>;

/** Tables copied first (parents of foreign keys), then the rest by name. */
const FIRST = ['secrets'];
/** Tables the PostgreSQL migration seeds with a row of its own, replaced by the source's. */
const SEEDED = new Set(['vault_generation']);
/** Identity columns whose sequence must continue after the copied ids. */
const IDENTITY: Readonly<Record<string, string>> = { bans: 'id', audit_checkpoints: 'id' };
const NONCE_TABLE = /^[a-z][a-z0-9]{0,31}_nonces$/;
/** Most bind parameters per INSERT (PostgreSQL allows 65 535). */
const MAX_PARAMS = 30_000;

const quote = (name: string): string => `"${name}"`;

/**
 * Copies the SQLite store at `sqlitePath` into the PostgreSQL database at
 * `postgresUrl` (migrated first; it must hold no Bastion data).
 * @throws BastionError `ERR_STORE`: the source is missing or unreadable
 *   (`not_found`), the target is not empty (`target_not_empty`, detail.table),
 *   the source has a table the target lacks (`unknown_table`), or a driver failure
 *   (the URL never appears in a message). Nothing is written to the target on failure.
 */
export async function copySqliteToPostgres(sqlitePath: string, postgresUrl: string): Promise<CopyReport> {
  // Bring the source to the current schema (and refuse a missing file), then read it on a connection of our own.
  await (await openSqliteStore(sqlitePath, { create: false, auditWorker: false })).close();
  await (await openPostgresStore(postgresUrl, { poolMax: 1 })).close();
  const sqlite = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite');
  let db: DatabaseSync;
  try {
    db = new sqlite.DatabaseSync(sqlitePath, { readOnly: true });
  } catch (err) {
    throw new BastionError('ERR_STORE', 'store: migrate failed: cannot read the SQLite store', { cause: err, detail: { reason: 'not_found' } });
  }
  const pool = createPostgresPool(postgresUrl, { poolMax: 1, statementTimeoutMs: 600_000 });
  let client: pg.PoolClient | undefined;
  try {
    db.exec('BEGIN');
    const names = (db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
    const tables = [...FIRST.filter((t) => names.includes(t)), ...names.filter((t) => !FIRST.includes(t))];
    try {
      client = await pool.connect();
    } catch (err) {
      throw wrapDriverError('migrate', err);
    }
    const c = client;
    const report: { table: string; rows: number }[] = [];
    try {
      const schema = (await c.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s;
      await c.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS_MIGRATE}, ${schemaLockKey(schema)})`);
      const targetTables = new Set((await c.query<{ t: string }>('SELECT tablename AS t FROM pg_tables WHERE schemaname = current_schema()')).rows.map((r) => r.t));
      for (const t of tables) {
        if (NONCE_TABLE.test(t)) {
          await c.query(`CREATE TABLE IF NOT EXISTS ${quote(t)} (key TEXT PRIMARY KEY, until BIGINT NOT NULL)`);
          await c.query(`CREATE INDEX IF NOT EXISTS ${quote(`${t}_until`)} ON ${quote(t)} (until)`);
        } else if (!targetTables.has(t)) {
          throw new BastionError('ERR_STORE', `store: migrate failed: the target has no table ${t}`, { detail: { reason: 'unknown_table', table: t } });
        }
      }
      // Under the lock: the target must hold no data (the seeded generation row aside).
      for (const t of targetTables) {
        if (t === 'bastion_schema') continue;
        const seeded = SEEDED.has(t) ? ' WHERE generation <> 0' : '';
        const found = (await c.query(`SELECT 1 FROM ${quote(t)}${seeded} LIMIT 1`)).rowCount ?? 0;
        if (found > 0) {
          throw new BastionError('ERR_STORE', `store: migrate failed: the target is not empty (table ${t} has rows); copy only into an empty database`, {
            detail: { reason: 'target_not_empty', table: t },
          });
        }
      }
      for (const t of tables) {
        const columns = (db.prepare(`PRAGMA table_info(${quote(t)})`).all() as { name: string }[]).map((r) => r.name);
        if (SEEDED.has(t)) await c.query(`DELETE FROM ${quote(t)}`);
        const rows = db.prepare(`SELECT ${columns.map(quote).join(', ')} FROM ${quote(t)} ORDER BY rowid`).all() as Record<string, unknown>[];
        const perInsert = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
        for (let i = 0; i < rows.length; i += perInsert) {
          const chunk = rows.slice(i, i + perInsert);
          const values: unknown[] = [];
          const tuples = chunk.map((row) => `(${columns.map((col) => `$${values.push(row[col] ?? null)}`).join(', ')})`);
          await c.query(`INSERT INTO ${quote(t)} (${columns.map(quote).join(', ')}) VALUES ${tuples.join(', ')}`, values);
        }
        const identity = IDENTITY[t];
        if (identity !== undefined && rows.length > 0) {
          await c.query(`SELECT setval(pg_get_serial_sequence('${t}', '${identity}'), (SELECT MAX(${quote(identity)}) FROM ${quote(t)}))`);
        }
        report.push({ table: t, rows: rows.length });
      }
      await c.query('COMMIT');
      return report;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw wrapDriverError('migrate', err);
    }
  } finally {
    client?.release(true);
    await pool.end().catch(() => undefined);
    try {
      db.close();
    } catch {
      // Read-only; nothing to keep.
    }
  }
}
