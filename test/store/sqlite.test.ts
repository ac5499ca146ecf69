import assert from 'node:assert/strict';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { verifyChain } from '../../src/audit/chain.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent, tempDir } from '../audit/fixtures.ts';
import { runStoreContracts } from './contracts/index.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshPath = (): string => join(tmp.dir, `s${n++}`, 'bastion.db');

// Every port's contract (test/store/contracts/), on a file (with two connections on one file for the
// cross-connection cases) and in memory.
runStoreContracts('sqlite (file)', () => openSqliteStore(freshPath()), {
  openPair: async () => {
    const path = freshPath();
    return [await openSqliteStore(path), await openSqliteStore(path)] as const;
  },
});
runStoreContracts('sqlite (:memory:)', () => openSqliteStore(':memory:'));

test('creates the folder 0700 and the file 0600, WAL mode, schema version 7', async () => {
  const path = freshPath();
  const store = await openSqliteStore(path);
  await store.close();
  if (process.platform !== 'win32') {
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o700);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  }
  const db = new DatabaseSync(path);
  assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
  assert.equal((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 8);
  db.close();
});

test('data persists across reopen', async () => {
  const path = freshPath();
  const a = await openSqliteStore(path);
  await a.appendAudit([sampleEvent(1), sampleEvent(2)]);
  await a.close();
  const b = await openSqliteStore(path);
  assert.equal((await b.lastAudit())?.seq, 2);
  await b.close();
});

test('open failures are ERR_STORE: missing with create:false, not a database, newer schema', async () => {
  const missing = freshPath();
  await assert.rejects(openSqliteStore(missing, { create: false }), (err) => isBastionError(err, 'ERR_STORE'));
  assert.equal(existsSync(missing), false);

  const garbage = join(tmp.dir, 'garbage.db');
  writeFileSync(garbage, 'this is not a sqlite database, just some text that is long enough'.repeat(100));
  await assert.rejects(openSqliteStore(garbage), (err) => isBastionError(err, 'ERR_STORE') && err.cause instanceof Error);

  const newer = freshPath();
  await (await openSqliteStore(newer)).close();
  const db = new DatabaseSync(newer);
  db.exec('PRAGMA user_version = 99');
  db.close();
  await assert.rejects(openSqliteStore(newer), (err) => isBastionError(err, 'ERR_STORE') && err.detail?.['reason'] === 'schema_newer');
});

test('a driver error while appending is ERR_STORE and leaves the chain unchanged', async () => {
  const path = freshPath();
  const store = await openSqliteStore(path);
  await store.appendAudit([sampleEvent(1)]);
  // Make the driver fail on the second insert of the batch.
  const db = new DatabaseSync(path);
  db.exec('CREATE TRIGGER no_insert BEFORE INSERT ON audit WHEN NEW.seq = 3 BEGIN SELECT RAISE(ABORT, \'blocked\'); END');
  db.close();
  await assert.rejects(store.appendAudit([sampleEvent(2), sampleEvent(3)]), (err) => isBastionError(err, 'ERR_STORE') && err.message === 'store: appendAudit failed');
  assert.equal((await store.lastAudit())?.seq, 1);
  await store.close();
});

test('two threads appending concurrently (separate connections) cannot fork the chain', async () => {
  const path = freshPath();
  await (await openSqliteStore(path)).close();
  const run = (id: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const w = new Worker(new URL('./append-worker.ts', import.meta.url), { workerData: { path, id, batches: 40 } });
      w.once('message', resolve);
      w.once('error', reject);
    });
  const counts = await Promise.all([run(1), run(2), run(3)]);
  assert.deepEqual(counts, [120, 120, 120]);
  const store = await openSqliteStore(path);
  assert.deepEqual(await verifyChain(await store.readAudit(1, 1000), [], new Map()), { ok: true, count: 360, lastSeq: 360, checkpoints: 0 });
  await store.close();
});

/** The approvals table as schema versions 1-4 had it (no end user). */
const APPROVALS_V1 = `DROP TABLE approvals;
  CREATE TABLE approvals (id TEXT PRIMARY KEY, agent TEXT NOT NULL, tool TEXT NOT NULL, args_digest TEXT NOT NULL, args_preview TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired', 'used')), created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
    decided_at INTEGER, decided_by TEXT, reason TEXT) STRICT;
  CREATE INDEX approvals_match ON approvals (agent, tool, args_digest, status);`;

test('migration 1 → 8 adds the vault, pasted-secret, ban, peer, OAuth, pin and isolation tables and the approvals\' user, and keeps existing data', async () => {
  const path = freshPath();
  const a = await openSqliteStore(path);
  await a.appendAudit([sampleEvent(1)]);
  await a.close();
  // Turn the file back into a version 1 database.
  const db = new DatabaseSync(path);
  db.exec(`DROP TABLE secret_versions; DROP TABLE secrets; DROP TABLE vault_items; DROP TABLE vault_generation; DROP TABLE pasted_secrets; DROP TABLE bans; DROP TABLE a2a_peers; DROP TABLE oauth_pending; DROP TABLE oauth_tokens; DROP TABLE tool_pins; DROP TABLE tool_pins_pending; DROP TABLE isolations; DROP TABLE secret_rotation_marks; ${APPROVALS_V1} PRAGMA user_version = 1`);
  db.exec(`INSERT INTO approvals VALUES ('old', 'demo', 't', 'd', '{}', 'approved', 1, 9e15, 2, 'admin', NULL)`);
  db.close();
  const b = await openSqliteStore(path);
  assert.equal((await b.lastAudit())?.seq, 1);
  assert.equal(await b.vaultGeneration(), 0);
  await b.createSecret({ id: 'i', name: 'n', hosts: ['h.example'], header: null, format: null, createdAt: 1, sealed: '{}' });
  assert.equal(await b.vaultGeneration(), 1);
  assert.equal(await b.activeBan('a', 'u', 0), undefined);
  assert.deepEqual(await b.listPastedSecrets(), []);
  assert.deepEqual(await b.listPeers(), []);
  assert.deepEqual(await b.listUserTokenSets(), []);
  assert.equal(await b.takePendingAuthorization('s'), undefined);
  assert.deepEqual(await b.listPins('demo'), []);
  assert.deepEqual(await b.listPendingPins('demo'), []);
  assert.deepEqual(await b.listIsolations(), []);
  // An approval granted before approvals were bound to users is bound to "no user": a named user cannot claim it.
  assert.equal((await b.getApproval('old'))?.user, null);
  assert.equal(await b.claimApproval('demo', 'alice', 't', 'd', 3), undefined);
  assert.equal((await b.claimApproval('demo', null, 't', 'd', 3))?.id, 'old');
  await b.close();
  const check = new DatabaseSync(path);
  assert.equal((check.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, 8);
  check.close();
});
