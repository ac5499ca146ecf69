/**
 * The OAuth port adapters (src/oauth/store.ts) over a real SQLite store file:
 * the PKCE code verifier is sealed at rest (read the table and the files raw),
 * a sealed verifier does not open once its row is moved or re-bound, and the
 * whole authorization code flow runs on them against a real authorization
 * server (oidc-provider on 127.0.0.1), which checks the verifier itself.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { isBastionError } from '../../src/errors.ts';
import { UserOAuth, type PendingAuthorization, type TokenSealer } from '../../src/oauth/index.ts';
import { pendingAuthorizationsOn, userTokensOn } from '../../src/oauth/store.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { Secret } from '../../src/util/secret.ts';
import { tempDir } from '../audit/fixtures.ts';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';
import { testSealer } from './sealer.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshPath = (): string => join(tmp.dir, `s${n++}`, 'bastion.db');

const T0 = 1_767_225_600_000;
// Distinctive, so a clear copy anywhere in the files is found.
const VERIFIER = 'VERIFIER-in-clear-must-never-be-stored-0123456789abcdefXYZ';

const pending = (state: string, over: Partial<PendingAuthorization> = {}): PendingAuthorization => ({
  state,
  provider: 'files',
  user: 'alice',
  agent: 'agent-1',
  codeVerifier: `${VERIFIER}-${state}`,
  createdAt: T0,
  expiresAt: T0 + 600_000,
  ...over,
});

interface Rig {
  store: Store;
  path: string;
  sealer: TokenSealer;
}

async function withRig(fn: (r: Rig) => Promise<void>): Promise<void> {
  const path = freshPath();
  const store = await openSqliteStore(path);
  try {
    await fn({ store, path, sealer: testSealer() });
  } finally {
    await store.close();
  }
}

/** Runs `sql` on a second, raw connection to the store's file (what an attacker with the file could do). */
function raw<T>(path: string, fn: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** The database file and its WAL, as bytes read raw. */
function fileBytes(path: string): string {
  return [path, `${path}-wal`].filter((p) => existsSync(p)).map((p) => readFileSync(p).toString('latin1')).join('');
}

describe('pendingAuthorizationsOn', () => {
  test('put → take round-trips the verifier; a second take is undefined', () =>
    withRig(async ({ store, sealer }) => {
      const p = pendingAuthorizationsOn(store, { maxPending: 10, sealer, now: () => T0 });
      assert.equal(await p.put(pending('s1')), true);
      assert.deepEqual(await p.take('s1'), pending('s1'));
      assert.equal(await p.take('s1'), undefined);
      assert.equal(await p.take('never'), undefined);
    }));

  test('the code verifier is not in clear in the table nor in the database files', () =>
    withRig(async ({ store, path, sealer }) => {
      const p = pendingAuthorizationsOn(store, { maxPending: 10, sealer, now: () => T0 });
      assert.equal(await p.put(pending('s1')), true);
      assert.equal(await p.put(pending('s2')), true);
      const rows = raw(path, (db) => db.prepare('SELECT * FROM oauth_pending ORDER BY state').all()) as Record<string, unknown>[];
      assert.deepEqual(rows.map((r) => r['state']), ['s1', 's2']);
      assert.doesNotMatch(JSON.stringify(rows), /VERIFIER/);
      assert.ok(rows.every((r) => typeof r['sealed_code_verifier'] === 'string' && r['sealed_code_verifier'].length > 0));
      assert.ok(!fileBytes(path).includes('VERIFIER'), 'no clear verifier in the db or its WAL');
      // Sanity: the search can find what is there.
      assert.ok(fileBytes(path).includes('agent-1'));
      assert.equal((await p.take('s2'))?.codeVerifier, `${VERIFIER}-s2`);
    }));

  test('a row moved to another state, or re-bound to another user, does not open (ERR_VAULT_DECRYPT) and is consumed', () =>
    withRig(async ({ store, path, sealer }) => {
      const p = pendingAuthorizationsOn(store, { maxPending: 10, sealer, now: () => T0 });
      assert.equal(await p.put(pending('s1')), true);
      assert.equal(await p.put(pending('s2')), true);
      assert.equal(await p.put(pending('s3')), true);
      raw(path, (db) => {
        db.exec(`UPDATE oauth_pending SET state = 'moved' WHERE state = 's1'`);
        db.exec(`UPDATE oauth_pending SET user = 'mallory' WHERE state = 's2'`);
        db.exec(`UPDATE oauth_pending SET expires_at = expires_at + 86400000 WHERE state = 's3'`);
      });
      for (const state of ['moved', 's2', 's3']) {
        await assert.rejects(p.take(state), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT') && !String(err.message).includes('VERIFIER'), state);
        assert.equal(await p.take(state), undefined, `${state}: still single-use`);
      }
    }));

  test('a sealed verifier copied onto another row does not open', () =>
    withRig(async ({ store, path, sealer }) => {
      const p = pendingAuthorizationsOn(store, { maxPending: 10, sealer, now: () => T0 });
      assert.equal(await p.put(pending('victim', { user: 'bob' })), true);
      assert.equal(await p.put(pending('attacker', { user: 'mallory' })), true);
      raw(path, (db) =>
        db.exec(`UPDATE oauth_pending SET sealed_code_verifier = (SELECT sealed_code_verifier FROM oauth_pending WHERE state = 'victim') WHERE state = 'attacker'`),
      );
      await assert.rejects(p.take('attacker'), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT'));
      assert.equal((await p.take('victim'))?.codeVerifier, `${VERIFIER}-victim`);
    }));

  test('another sealer (another key) cannot open what this one stored', () =>
    withRig(async ({ store, sealer }) => {
      assert.equal(await pendingAuthorizationsOn(store, { maxPending: 10, sealer, now: () => T0 }).put(pending('s1')), true);
      const other = pendingAuthorizationsOn(store, { maxPending: 10, sealer: testSealer(), now: () => T0 });
      await assert.rejects(other.take('s1'), (err) => isBastionError(err, 'ERR_VAULT_DECRYPT'));
    }));

  test('maxPending: put answers false when full; expired rows are pruned by the clock given', () =>
    withRig(async ({ store, sealer }) => {
      let now = T0;
      const p = pendingAuthorizationsOn(store, { maxPending: 2, sealer, now: () => now });
      assert.equal(await p.put(pending('a', { expiresAt: T0 + 10 })), true);
      assert.equal(await p.put(pending('b')), true);
      assert.equal(await p.put(pending('c')), false);
      now = T0 + 10;
      assert.equal(await p.put(pending('c')), true, 'a expired and was pruned');
      assert.equal(await p.take('a'), undefined);
      assert.throws(() => pendingAuthorizationsOn(store, { maxPending: 0, sealer }), RangeError);
      assert.throws(() => pendingAuthorizationsOn(store, { maxPending: 1.5, sealer }), RangeError);
    }));

  test('a closed store: put and take reject with ERR_STORE', async () => {
    const store = await openSqliteStore(':memory:');
    const p = pendingAuthorizationsOn(store, { maxPending: 10, sealer: testSealer() });
    await store.close();
    await assert.rejects(p.put(pending('s1')), (err) => isBastionError(err, 'ERR_STORE'));
    await assert.rejects(p.take('s1'), (err) => isBastionError(err, 'ERR_STORE'));
  });
});

describe('userTokensOn', () => {
  test('sealed strings in and out unchanged, per (user, provider), stamped with the clock; delete of an absent set is fine', () =>
    withRig(async ({ store }) => {
      let now = T0;
      const t = userTokensOn(store, { now: () => now });
      await t.put('alice', 'files', 'sealed-1');
      now = T0 + 7;
      await t.put('alice', 'files', 'sealed-2');
      await t.put('bob', 'files', 'sealed-b');
      assert.equal(await t.get('alice', 'files'), 'sealed-2');
      assert.equal(await t.get('alice', 'other'), undefined);
      assert.deepEqual(await store.listUserTokenSets({ user: 'alice' }), [{ user: 'alice', provider: 'files', updatedAt: T0 + 7 }]);
      await t.delete('alice', 'files');
      await t.delete('alice', 'files');
      assert.equal(await t.get('alice', 'files'), undefined);
      assert.equal(await t.get('bob', 'files'), 'sealed-b');
    }));
});

describe('UserOAuth on the SQLite adapters, against a real authorization server', () => {
  const REDIRECT = 'https://bastion.test/oauth/callback';
  const SECRET = 'a-client-secret-of-sufficient-length-0123456789';
  const RESOURCE = 'https://mcp.example.test/mcp';
  let as: OidcServer;
  before(async () => {
    as = await startOidcServer({
      clients: [{ client_id: 'bastion-basic', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic' }],
      resources: [{ indicator: RESOURCE, scope: 'files:read' }],
    });
  });
  after(() => as.close());

  test('start → consent → callback → token: the verifier survives sealing (the AS checks it), nothing in clear on disk, the callback replays as state_unknown', () =>
    withRig(async ({ store, path, sealer }) => {
      const oauth = new UserOAuth({
        providers: [
          { name: 'files', issuer: as.issuer, clientId: 'bastion-basic', clientAuth: 'client_secret_basic', clientSecret: new Secret(SECRET), scopes: ['openid', 'files:read'],
            resource: RESOURCE, redirectUri: REDIRECT },
        ],
        pending: pendingAuthorizationsOn(store, { maxPending: 100, sealer }),
        tokens: userTokensOn(store),
        sealer,
        unsafeAllowHttp: true,
        timeoutMs: 5_000,
      });
      const s = await oauth.startAuthorization({ provider: 'files', user: 'alice', agent: 'agent-1' });
      assert.ok(s.ok, `start refused: ${s.ok ? '' : s.reason}`);
      const callback = await as.authorize(s.url, { account: 'alice' });
      assert.deepEqual(await oauth.completeAuthorization(callback, { user: 'alice' }), { ok: true, user: 'alice', provider: 'files', agent: 'agent-1' });
      assert.deepEqual(await oauth.completeAuthorization(callback, { user: 'alice' }), { ok: false, reason: 'oauth.state_unknown' });

      const t = await oauth.accessToken({ user: 'alice', provider: 'files' });
      assert.ok(t.ok, `accessToken refused: ${t.ok ? '' : t.reason}`);
      assert.equal(decodeJwt(t.token).sub, 'alice');
      assert.ok(!fileBytes(path).includes(t.token), 'no clear access token in the db or its WAL');
      assert.deepEqual((await store.listUserTokenSets()).map((r) => [r.user, r.provider]), [['alice', 'files']]);
      assert.equal(raw(path, (db) => (db.prepare('SELECT COUNT(*) AS n FROM oauth_pending').get() as { n: number }).n), 0, 'the pending row was taken');
    }));
});
