// The PostgreSQL store (src/store/postgres.ts): every port's contract, each store in its own schema
// (two stores with two pools on one schema for the cross-connection cases), plus migration, concurrency
// across instances and failure cases. Needs the local PostgreSQL (test/helpers/postgres.ts starts it).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { after, test } from 'node:test';
import pg from 'pg';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import { isBastionError } from '../../src/errors.ts';
import { POSTGRES_SCHEMA_VERSION } from '../../src/store/postgres-migrations.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/store.ts';
import { sampleEvent } from '../audit/fixtures.ts';
import { adminQuery, freshSchema, POSTGRES_URL } from '../helpers/postgres.ts';
import { runStoreContracts } from './contracts/index.ts';

// Every schema made here, dropped at the end in a few statements (one DROP per schema would take seconds).
const schemas: string[] = [];
after(async () => {
  const batches: string[][] = [];
  for (let i = 0; i < schemas.length; i += 10) batches.push(schemas.slice(i, i + 10));
  await Promise.all(batches.map((b) => adminQuery(`DROP SCHEMA IF EXISTS ${b.join(', ')} CASCADE`)));
});

/** A new, empty schema (its URL). */
async function schemaUrl(): Promise<string> {
  const s = await freshSchema('pgstore');
  schemas.push(s.schema);
  return s.url;
}

/**
 * Creating the tables is most of a store's open (hundreds of ms here), so the contracts reuse schemas:
 * a store's schema, once every store on it is closed, is emptied (TRUNCATE, as a fresh migration
 * leaves it) and handed to the next test. Schemas are never shared by two tests at once.
 */
const idle: string[] = [];
let admin: pg.Client | undefined;
let tables: string[] | undefined;
after(async () => {
  await admin?.end();
});

async function migratedSchema(): Promise<string> {
  const reused = idle.pop();
  if (reused !== undefined) return reused;
  const url = await schemaUrl();
  await (await openPostgresStore(url, { poolMax: 1 })).close();
  return url;
}

async function empty(url: string): Promise<void> {
  if (admin === undefined) {
    admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
  }
  const schema = new URL(url).searchParams.get('options')!.replace('-c search_path=', '');
  // secret_versions before secrets (its foreign key).
  tables ??= (await admin.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = $1 AND tablename <> 'bastion_schema'", [schema])).rows
    .map((r) => r.t)
    .sort((a, b) => (a === 'secret_versions' ? -1 : b === 'secret_versions' ? 1 : 0));
  // DELETE, not TRUNCATE: the tables hold a few rows, and TRUNCATE costs as much as creating them.
  await admin.query(
    [
      ...tables.map((t) => `DELETE FROM ${schema}.${t}`),
      `SELECT setval(pg_get_serial_sequence('${schema}.bans', 'id'), 1, false), setval(pg_get_serial_sequence('${schema}.audit_checkpoints', 'id'), 1, false)`,
      `INSERT INTO ${schema}.vault_generation (id, generation) VALUES (1, 0)`,
    ].join('; '),
  );
  idle.push(url);
}

/** `store`, whose close also returns its schema once `release` has been called `holders` times. */
function returning(store: Store, url: string, holders: { n: number }): Store {
  let closed = false;
  const close = async (): Promise<void> => {
    await store.close();
    if (closed) return;
    closed = true;
    if (--holders.n === 0) await empty(url);
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'close') return close;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

const small = { poolMax: 3 } as const;

runStoreContracts('postgres', async () => {
  const url = await migratedSchema();
  return returning(await openPostgresStore(url, small), url, { n: 1 });
}, {
  openPair: async () => {
    const url = await migratedSchema();
    const holders = { n: 2 };
    return [returning(await openPostgresStore(url, small), url, holders), returning(await openPostgresStore(url, small), url, holders)] as const;
  },
});

async function versions(url: string): Promise<number[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ version: number }>('SELECT version FROM bastion_schema ORDER BY version')).rows.map((r) => r.version);
  } finally {
    await c.end();
  }
}

test('instances opening an empty schema together migrate it once', async () => {
  const url = await schemaUrl();
  const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(url, { poolMax: 2 })));
  assert.deepEqual(await versions(url), Array.from({ length: POSTGRES_SCHEMA_VERSION }, (_, i) => i + 1));
  await stores[0]!.appendAudit([sampleEvent(1)]);
  assert.equal((await stores[3]!.lastAudit())?.seq, 1);
  for (const s of stores) await s.close();
  // Reopening an up-to-date schema changes nothing.
  await (await openPostgresStore(url, small)).close();
  assert.equal((await versions(url)).length, POSTGRES_SCHEMA_VERSION);
});

test('four instances with audit logs appending concurrently keep one gapless, verifiable chain', async () => {
  const url = await schemaUrl();
  const stores: Store[] = [];
  for (let i = 0; i < 4; i++) stores.push(await openPostgresStore(url, small));
  // The first log creates the audit signing key; the others find it.
  const logs: AuditLog[] = [];
  for (const s of stores) logs.push(await AuditLog.open(s, { checkpointEvery: 16 }));
  const batches = 50;
  await Promise.all(
    logs.map(async (log, id) => {
      for (let i = 0; i < batches; i++) {
        // One batch: three events appended together, then a CLI-style append straight through the store.
        await Promise.all([0, 1, 2].map((k) => log.append(sampleEvent(id * 10_000 + i * 10 + k))));
        if (i % 10 === 0) await stores[id]!.appendAudit([sampleEvent(id * 10_000 + i * 10 + 9)]);
      }
    }),
  );
  for (const log of logs) await log.close();
  const total = 4 * batches * 3 + 4 * (batches / 10);
  const result = await verifyAudit(stores[0]!, { checkpointEvery: 16 });
  assert.equal(result.ok, true, JSON.stringify(result));
  assert.ok(result.ok && result.count === total && result.lastSeq === total);
  assert.ok(result.ok && result.checkpoints > 0);
  const seqs = (await stores[1]!.readAudit(1, total + 10)).map((r) => r.seq);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));
  for (const s of stores) await s.close();
});

test('a closed store throws ERR_STORE; close is idempotent', async () => {
  const store = await openPostgresStore(await schemaUrl(), small);
  await store.close();
  await store.close();
  await assert.rejects(store.lastAudit(), (err) => isBastionError(err, 'ERR_STORE'));
  await assert.rejects(store.appendAudit([sampleEvent(1)]), (err) => isBastionError(err, 'ERR_STORE'));
  await assert.rejects(store.putKey({ id: 'k', purpose: 'audit', alg: 'Ed25519', publicKeyPem: 'p', privateKeyPem: 'q', createdAt: 1 }), (err) =>
    isBastionError(err, 'ERR_STORE'),
  );
});

test('a schema newer than the code is refused with ERR_STORE (schema_newer)', async () => {
  const url = await schemaUrl();
  await (await openPostgresStore(url, small)).close();
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('INSERT INTO bastion_schema (version, applied_at) VALUES ($1, 0)', [POSTGRES_SCHEMA_VERSION + 1]);
  await c.end();
  await assert.rejects(openPostgresStore(url, small), (err) => isBastionError(err, 'ERR_STORE') && err.detail?.['reason'] === 'schema_newer');
});

test('a driver error inside the audit transaction is ERR_STORE and leaves the chain unchanged', async () => {
  const url = await schemaUrl();
  const store = await openPostgresStore(url, small);
  await store.appendAudit([sampleEvent(1)]);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query(`CREATE FUNCTION block3() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.seq = 3 THEN RAISE EXCEPTION 'blocked'; END IF; RETURN NEW; END $$`);
  await c.query('CREATE TRIGGER block3 BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION block3()');
  await c.end();
  await assert.rejects(store.appendAudit([sampleEvent(2), sampleEvent(3)]), (err) => isBastionError(err, 'ERR_STORE') && err.message === 'store: appendAudit failed');
  assert.equal((await store.lastAudit())?.seq, 1);
  await store.close();
});

test('unreachable server, unknown role, bad URL: ERR_STORE without the URL or password in the error', async () => {
  const password = 'hunter2-not-for-logs';
  const unreachable = `postgres://postgres:${password}@127.0.0.1:1/test`;
  const unknownRole = POSTGRES_URL.replace('postgres@', `no_such_role_x:${password}@`);
  const badScheme = `mysql://root:${password}@127.0.0.1/test`;
  for (const url of [unreachable, unknownRole, badScheme]) {
    await assert.rejects(openPostgresStore(url, { connectTimeoutMs: 2_000 }), (err) => {
      assert.ok(isBastionError(err, 'ERR_STORE'), String(err));
      assert.ok(!err.message.includes(password) && !err.message.includes(url), err.message);
      assert.ok(!inspect(err, { depth: 5 }).includes(password), 'no password anywhere in the error');
      return true;
    });
  }
});

test('a connection the server drops is reported to onPoolError, never crashes, and the store keeps working', async () => {
  const name = `bastion_t_${randomBytes(4).toString('hex')}`;
  const errors: Error[] = [];
  const store = await openPostgresStore(await migratedSchema(), { poolMax: 2, applicationName: name, onPoolError: (e) => errors.push(e) });
  await store.appendAudit([sampleEvent(1)]);
  await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '${name}'`);
  for (let i = 0; i < 200 && errors.length === 0; i++) await sleep(10);
  assert.ok(errors.length > 0, 'the error of the idle connection reached onPoolError');
  assert.equal((await store.lastAudit())?.seq, 1);
  assert.equal((await store.appendAudit([sampleEvent(2)]))[0]?.seq, 2);
  await store.close();
});

// The loser-keeps-the-lock test went with the hack it pinned: batches are now chained under the lock
// (`appendUnderLock`); fairness between instances is tested in test/audit/append-lock.test.ts.
