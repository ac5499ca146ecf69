/**
 * Replay nonces in a PostgreSQL table `<namespace>_nonces (key TEXT PRIMARY
 * KEY, until BIGINT)`, the `store` nonce kind when the store is PostgreSQL
 * (./nonces.ts): shared by every instance on the database and kept across
 * restarts, like the SQLite table is for processes sharing a file.
 *
 * `remember` is one statement, `INSERT … ON CONFLICT (key) DO UPDATE SET until
 * = excluded.until WHERE until <= now`: a new key inserts, an expired one is
 * taken over, a live one changes no row. PostgreSQL's row lock on the
 * conflicting key makes racing callers on any connection or instance see the
 * key as new exactly once. Expired rows are deleted at most once per
 * `pruneIntervalMs`, during `remember`. The table is created on open under an
 * advisory lock (concurrent `CREATE TABLE IF NOT EXISTS` can fail in PostgreSQL).
 */
import type pg from 'pg';
import { ReplayStoreError, type ReplayStore } from '../verify/replay.ts';
import { LOCK_CLASS_NONCES, schemaLockKey } from './postgres-migrations.ts';
import { createPostgresPool, type PostgresStoreOptions } from './postgres.ts';

/** Options of {@link openPostgresReplayStore}. */
export interface PostgresReplayStoreOptions extends PostgresStoreOptions {
  /** Table name, `[a-z_][a-z0-9_]{0,62}`. */
  readonly table: string;
  /** Expired nonces are deleted at most once per this many ms (default 60 000). */
  readonly pruneIntervalMs?: number;
  /** Clock, epoch ms (tests inject one). */
  readonly now?: () => number;
}

const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

/** A {@link ReplayStore} on a PostgreSQL table, with `close()`. */
export interface PostgresReplayStore extends ReplayStore {
  /** Ends the pool; later `remember` calls reject. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens the pool (default at most 4 connections) and creates the table when missing.
 * @throws TypeError for a bad table name; ReplayStoreError when the database
 *   cannot be reached or the table not created (cause: the driver error; the URL is never in a message).
 */
export async function openPostgresReplayStore(url: string, opts: PostgresReplayStoreOptions): Promise<PostgresReplayStore> {
  if (typeof opts.table !== 'string' || !TABLE.test(opts.table)) throw new TypeError('PostgresReplayStore: table must match [a-z_][a-z0-9_]{0,62}');
  const table = opts.table;
  const pruneIntervalMs = opts.pruneIntervalMs ?? 60_000;
  const now = opts.now ?? Date.now;
  const pool = createPostgresPool(url, { poolMax: 4, ...opts });
  try {
    const client = await pool.connect();
    try {
      const schema = (await client.query<{ s: string | null }>('SELECT current_schema() AS s')).rows[0]?.s;
      if (schema == null) throw new Error('no schema of the search path exists');
      await client.query(`BEGIN; SELECT pg_advisory_xact_lock(${LOCK_CLASS_NONCES}, ${schemaLockKey(schema)})`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, until BIGINT NOT NULL)`);
      await client.query(`CREATE INDEX IF NOT EXISTS ${table}_until ON ${table} (until)`);
      await client.query('COMMIT');
      client.release();
    } catch (err) {
      client.release(true);
      throw err;
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new ReplayStoreError('replay store: cannot open the database', { cause: err });
  }

  const remember: pg.QueryConfig = {
    name: `bastion_nonce_${table}`,
    text: `INSERT INTO ${table} (key, until) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE ${table}.until <= $3`,
  };
  const prune: pg.QueryConfig = { name: `bastion_nonce_prune_${table}`, text: `DELETE FROM ${table} WHERE until <= $1` };
  let nextPrune = 0;
  let closed = false;
  let ended: Promise<void> | undefined;
  return {
    async remember(key: string, ttlMs: number): Promise<boolean> {
      if (closed) throw new ReplayStoreError('replay store closed');
      try {
        const t = now();
        if (t >= nextPrune) {
          nextPrune = t + pruneIntervalMs;
          await pool.query({ ...prune, values: [t] });
        }
        const r = await pool.query({ ...remember, values: [key, t + Math.max(1, Math.ceil(ttlMs)), t] });
        return r.rowCount === 1;
      } catch (err) {
        throw new ReplayStoreError('replay store unavailable', { cause: err });
      }
    },
    close(): Promise<void> {
      if (!closed) {
        closed = true;
        ended = pool.end().catch(() => undefined);
      }
      return ended ?? Promise.resolve();
    },
  };
}
