/**
 * The local PostgreSQL (127.0.0.1:5432, trust auth, database `test`) for tests
 * that need it: started when it does not answer, never skipped. Each test file
 * works in its own schemas ({@link freshSchema}), dropped afterwards, so files
 * running in parallel never see each other's rows.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';

/** The test database, as a connection URL. */
export const POSTGRES_URL = 'postgres://postgres@127.0.0.1:5432/test';

async function answers(): Promise<boolean> {
  const c = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 1_000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Resolves once PostgreSQL answers, starting its cluster first when it does not. */
export async function ensurePostgres(): Promise<void> {
  if (await answers()) return;
  const version = readdirSync('/etc/postgresql')[0];
  assert.ok(version !== undefined, 'no PostgreSQL cluster under /etc/postgresql');
  const r = spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start']);
  assert.ok(r.status === 0 || (await answers()), `pg_ctlcluster failed: ${r.stderr.toString().slice(0, 200)}`);
  for (let i = 0; i < 100; i++) {
    if (await answers()) return;
    await sleep(100);
  }
  assert.fail('postgresql did not come up');
}

/** Runs one statement on the test database with a short-lived client. */
export async function adminQuery(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/**
 * A new, empty schema on the test database and a URL whose connections use it
 * (`options=-c search_path=…`). `drop()` removes it with everything in it.
 */
export async function freshSchema(prefix = 't'): Promise<{ schema: string; url: string; drop(): Promise<void> }> {
  await ensurePostgres();
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  await adminQuery(`CREATE SCHEMA ${schema}`);
  const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  return { schema, url, drop: () => adminQuery(`DROP SCHEMA IF EXISTS ${schema} CASCADE`) };
}
