// `bastion store migrate` (src/cli/commands/store.ts, src/store/migrate.ts): a SQLite store with rows in
// every table is copied into an empty PostgreSQL schema; `bastion audit verify` answers the same on both,
// every port reads back the same; a second copy into the now non-empty target is refused (exit 1).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditLog } from '../../src/audit/log.ts';
import { auditVerify } from '../../src/cli/commands/audit.ts';
import { storeMigrate } from '../../src/cli/commands/store.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { openNonceStore } from '../../src/store/nonces.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { Secret } from '../../src/util/secret.ts';
import { sampleEvent, tempDir } from '../audit/fixtures.ts';
import { freshSchema } from '../helpers/postgres.ts';
import { T0 } from './contracts/harness.ts';

const tmp = tempDir();
const drops: (() => Promise<void>)[] = [];
after(async () => {
  tmp.cleanup();
  await Promise.all(drops.map((d) => d()));
});

function capture(env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd: tmp.dir };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

async function fill(store: Store): Promise<void> {
  const log = await AuditLog.open(store, { checkpointEvery: 5 });
  for (let i = 1; i <= 23; i++) await log.append(sampleEvent(i));
  await log.close();
  await store.addAgentKeyDigest('demo', 'd'.repeat(64), T0);
  await store.createApproval({ id: 'ap1', agent: 'demo', user: 'alice', tool: 't', argsDigest: 'a'.repeat(64), argsPreview: '{"it\'s":"é"}', status: 'pending', createdAt: T0, expiresAt: T0 + 1000, decidedAt: null, decidedBy: null, reason: null });
  await store.createSecret({ id: 's1', name: 'gh', hosts: ['api.github.com'], header: 'authorization', format: 'Bearer {}', createdAt: T0, sealed: '{"v":1}' });
  await store.rotateSecret('s1', { version: 2, sealed: '{"v":2}', createdAt: T0 + 1 }, T0 + 100);
  await store.putVaultItemIfAbsent('root', 'sealed-root');
  await store.putPastedSecret({ id: 'p1', token: 'tok', agent: 'demo', user: 'alice', fingerprint: 'fp', rule: 'r', hosts: ['x.example'], sealed: 's', createdAt: T0, lastUsedAt: null });
  await store.addBan({ agent: 'demo', user: 'bob', at: T0, rule: 'r', reason: 'why' }, [1000, 2000], 10_000);
  await store.addBan({ agent: 'demo', user: 'bob', at: T0 + 1, rule: 'r', reason: 'again' }, [1000, 2000], 10_000);
  await store.addPeer({ name: 'peer', url: 'https://peer.example/a2a', sender: 'me', jwksUrl: null, publicJwks: '{"keys":[]}', inboundTokenDigest: 'i'.repeat(64), outboundTokenSealed: null, createdAt: T0 });
  await store.putPendingAuthorization({ state: 'st', provider: 'gh', user: 'alice', agent: 'demo', sealedCodeVerifier: 'cv', createdAt: T0, expiresAt: T0 + 60_000 }, { maxPending: 10, now: T0 });
  await store.putUserTokenSet('alice', 'gh', 'sealed-set', T0);
  await store.pinIfAbsent({ agent: 'demo', tool: 'fs__read', hash: 'h1', shape: 'sh', definition: '{}', pinnedAt: T0, pinnedBy: 'first-use' });
  await store.putPendingPin({ agent: 'demo', tool: 'fs__read', kind: 'changed', hash: 'h2', shape: 'sh', definition: '{"x":1}', detail: 'd', detectedAt: T0 });
}

/** Everything the ports return, for comparing two stores. */
async function snapshot(s: Store): Promise<unknown> {
  return {
    audit: await s.readAudit(1, 1000),
    checkpoints: await s.listCheckpoints(),
    keys: await s.listKeys('audit'),
    agentKeys: await s.agentKeyDigests('demo'),
    approvals: await s.listApprovals(),
    secrets: await s.listSecrets(),
    versions: await s.listValidSecretVersions(T0),
    generation: await s.vaultGeneration(),
    item: await s.getVaultItem('root'),
    pasted: await s.listPastedSecrets(),
    bans: await s.listBans(),
    peers: await s.listPeers(),
    tokens: await s.listUserTokenSets(),
    pins: await s.listPins('demo'),
    pending: await s.listPendingPins('demo'),
  };
}

test('store migrate copies every table; audit verify and every port answer the same; a non-empty target is refused', async () => {
  const path = join(tmp.dir, 'bastion.db');
  const source = await openSqliteStore(path);
  await fill(source);
  const before = await snapshot(source);
  await source.close();
  const nonces = await openNonceStore({ kind: 'store', storePath: path, namespace: 'a2a' }, { redisTimeoutMs: 1000, now: () => T0 });
  assert.equal(await nonces.remember('seen-before', 3_600_000), true);
  await nonces.close();

  const schema = await freshSchema('pgmigrate');
  drops.push(schema.drop);
  const env = { BASTION_DATABASE_URL: schema.url };
  const run = capture(env);
  assert.equal(await storeMigrate(['--from', 'sqlite:bastion.db', '--to', 'env:BASTION_DATABASE_URL'], run.io), EXIT.OK, run.stderr());
  assert.match(run.stdout(), /^audit: 23 rows$/m);
  assert.match(run.stdout(), /^audit chain: 23 records, tip [0-9a-f]{64} \(as in the source\)$/m);

  const target = await openPostgresStore(schema.url, { poolMax: 2 });
  assert.deepEqual(await snapshot(target), before);
  // Sequences continue after the copied ids.
  const third = await target.addBan({ agent: 'demo', user: 'carol', at: T0 + 2, rule: 'r', reason: 'x' }, [1000], 10_000);
  assert.equal(third.id, 3);
  await target.close();
  // The nonce remembered in the SQLite file is still a replay on PostgreSQL.
  const pgNonces = await openNonceStore({ kind: 'store', store: { kind: 'postgres', url: new Secret(schema.url), ref: 'test' }, namespace: 'a2a' }, { redisTimeoutMs: 1000, now: () => T0 + 1 });
  assert.equal(await pgNonces.remember('seen-before', 3_600_000), false);
  await pgNonces.close();

  const onSqlite = capture();
  const onPostgres = capture();
  assert.equal(await auditVerify(['--store', path, '--checkpoint-every', '5'], onSqlite.io), EXIT.OK, onSqlite.stderr());
  assert.equal(await auditVerify(['--store', `postgres:${schema.url}`, '--checkpoint-every', '5'], onPostgres.io), EXIT.OK, onPostgres.stderr());
  assert.equal(onPostgres.stdout(), onSqlite.stdout());

  // Again into the same (now non-empty) database: refused, nothing written.
  const again = capture(env);
  assert.equal(await storeMigrate(['--from', path, '--to', 'env:BASTION_DATABASE_URL'], again.io), EXIT.FAILED);
  assert.match(again.stderr(), /the target is not empty/);
  const check = await openPostgresStore(schema.url, { poolMax: 1 });
  assert.equal((await check.readAudit(1, 1000)).length, 23);
  await check.close();
});

test('store migrate: usage errors and an unreachable target', async () => {
  assert.equal(await storeMigrate(['--from', 'sqlite:x.db'], capture().io), EXIT.USAGE);
  assert.equal(await storeMigrate(['--from', 'x.db', '--to', 'mysql://h/d'], capture().io), EXIT.USAGE);
  assert.equal(await storeMigrate(['--from', 'x.db', '--to', 'env:NOT_SET'], capture().io), EXIT.USAGE);
  const path = join(tmp.dir, 'small.db');
  await (await openSqliteStore(path)).close();
  const down = capture();
  assert.equal(await storeMigrate(['--from', path, '--to', 'postgres:postgres://u:pw-hidden@127.0.0.1:1/test'], down.io), EXIT.STORE);
  assert.ok(!down.stderr().includes('pw-hidden'), down.stderr());
  const missing = capture();
  assert.equal(await storeMigrate(['--from', join(tmp.dir, 'none.db'), '--to', 'postgres://127.0.0.1:1/test'], missing.io), EXIT.STORE);
});
