/**
 * The Store contract tests: every implementation (SQLite now, PostgreSQL later)
 * runs `runStoreContract` and must pass it unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyChain } from '../../src/audit/chain.ts';
import type { AuditCheckpoint } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import type { ApprovalRecord, NewSecret, Store, StoredKey } from '../../src/store/store.ts';
import { sampleEvent } from '../audit/fixtures.ts';

const T0 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

function approval(id: string, overrides: Partial<ApprovalRecord> = {}): ApprovalRecord {
  return {
    id,
    agent: 'demo',
    user: null,
    tool: 'fs__write_file',
    argsDigest: 'd'.repeat(64),
    argsPreview: '{"path":"/tmp/x"}',
    status: 'pending',
    createdAt: T0,
    expiresAt: T0 + 120_000,
    decidedAt: null,
    decidedBy: null,
    reason: null,
    ...overrides,
  };
}

function key(id: string, createdAt: number): StoredKey {
  return { id, purpose: 'audit', alg: 'Ed25519', publicKeyPem: `pub-${id}`, privateKeyPem: `priv-${id}`, createdAt };
}

function newSecret(id: string, name: string, overrides: Partial<NewSecret> = {}): NewSecret {
  return { id, name, hosts: ['api.example.com', '*.example.org'], header: 'Authorization', format: 'Bearer {}', createdAt: T0, sealed: `{"sealed":"${id}-1"}`, ...overrides };
}

const approve = (at: number, claimUntil = at + 600_000) => ({ status: 'approved' as const, by: 'admin', reason: 'ok', at, claimUntil });
const denyIt = (at: number) => ({ status: 'denied' as const, by: 'admin', reason: 'no', at, claimUntil: at });

/** Runs the contract against stores made by `open` (each call must return a fresh, empty store). */
export function runStoreContract(name: string, open: () => Promise<Store>): void {
  async function withStore(fn: (store: Store) => Promise<void>): Promise<void> {
    const store = await open();
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  }

  describe(`Store contract: ${name}`, () => {
    describe('audit', () => {
      test('an empty chain', () =>
        withStore(async (s) => {
          assert.equal(await s.lastAudit(), undefined);
          assert.deepEqual(await s.readAudit(1, 10), []);
          assert.deepEqual(await s.appendAudit([]), []);
          assert.deepEqual(await s.listCheckpoints(), []);
        }));

      test('appendAudit chains gapless records and readAudit returns them exactly', () =>
        withStore(async (s) => {
          const first = await s.appendAudit([sampleEvent(1), sampleEvent(2), sampleEvent(3)]);
          const second = await s.appendAudit([sampleEvent(4)]);
          const all = [...first, ...second];
          assert.deepEqual(all.map((r) => r.seq), [1, 2, 3, 4]);
          assert.equal(all[3]!.prevHash, all[2]!.hash);
          assert.deepEqual(await s.readAudit(1, 100), all);
          assert.deepEqual(await s.readAudit(2, 2), all.slice(1, 3));
          assert.deepEqual(await s.readAudit(5, 10), []);
          assert.deepEqual(await s.readAudit(0, 0), []);
          assert.deepEqual(await s.lastAudit(), all[3]);
          assert.equal((await verifyChain(await s.readAudit(1, 100), [], new Map())).ok, true);
        }));

      test('records with undefined fields round-trip', () =>
        withStore(async (s) => {
          const [r] = await s.appendAudit([sampleEvent(1, { session: undefined, target: undefined, args: { a: [1, 'x', null] } })]);
          assert.deepEqual(await s.readAudit(1, 1), [r]);
        }));

      test('a batch with a non-JSON event is rejected as a whole', () =>
        withStore(async (s) => {
          await s.appendAudit([sampleEvent(1)]);
          await assert.rejects(s.appendAudit([sampleEvent(2), sampleEvent(3, { detail: { n: 1n } })]), TypeError);
          assert.equal((await s.lastAudit())?.seq, 1);
          assert.equal((await s.appendAudit([sampleEvent(4)]))[0]!.seq, 2);
        }));

      test('readAudit rejects a bad limit with RangeError', () =>
        withStore(async (s) => {
          await assert.rejects(s.readAudit(1, -1), RangeError);
          await assert.rejects(s.readAudit(1, 1.5), RangeError);
        }));

      test('checkpoints are listed ascending by seq', () =>
        withStore(async (s) => {
          const cp = (seq: number): AuditCheckpoint => ({ seq, hash: 'h'.repeat(64), time: new Date(T0).toISOString(), keyId: 'k1', signature: `sig${seq}` });
          await s.appendCheckpoint(cp(20));
          await s.appendCheckpoint(cp(10));
          await s.appendCheckpoint(cp(30));
          assert.deepEqual(await s.listCheckpoints(), [cp(10), cp(20), cp(30)]);
        }));
    });

    describe('keys', () => {
      test('putKey makes the key current; listKeys keeps retired ones', () =>
        withStore(async (s) => {
          assert.equal(await s.getKey('audit'), undefined);
          assert.deepEqual(await s.listKeys('audit'), []);
          await s.putKey(key('k1', T0));
          assert.deepEqual(await s.getKey('audit'), key('k1', T0));
          await s.putKey(key('k2', T0 + 1));
          assert.deepEqual(await s.getKey('audit'), key('k2', T0 + 1));
          assert.deepEqual(await s.listKeys('audit'), [key('k1', T0), key('k2', T0 + 1)]);
          await s.putKey(key('k1', T0));
          assert.equal((await s.getKey('audit'))?.id, 'k1');
          assert.equal((await s.listKeys('audit')).length, 2);
        }));
    });

    describe('agent keys', () => {
      test('digests are kept per agent, in insertion order, idempotently', () =>
        withStore(async (s) => {
          assert.deepEqual(await s.agentKeyDigests('demo'), []);
          await s.addAgentKeyDigest('demo', 'a'.repeat(64), T0);
          await s.addAgentKeyDigest('demo', 'b'.repeat(64), T0 + 1);
          await s.addAgentKeyDigest('other', 'c'.repeat(64), T0);
          await s.addAgentKeyDigest('demo', 'a'.repeat(64), T0 + 2);
          assert.deepEqual(await s.agentKeyDigests('demo'), ['a'.repeat(64), 'b'.repeat(64)]);
          assert.deepEqual(await s.agentKeyDigests('other'), ['c'.repeat(64)]);
        }));
    });

    describe('approvals', () => {
      test('create, get, list newest first with status filter and limit', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1', { createdAt: T0 }));
          await s.createApproval(approval('a2', { createdAt: T0 + 1, status: 'denied' }));
          await s.createApproval(approval('a3', { createdAt: T0 + 2 }));
          assert.deepEqual(await s.getApproval('a1'), approval('a1'));
          assert.equal(await s.getApproval('nope'), undefined);
          assert.deepEqual((await s.listApprovals()).map((a) => a.id), ['a3', 'a2', 'a1']);
          assert.deepEqual((await s.listApprovals({ status: 'pending' })).map((a) => a.id), ['a3', 'a1']);
          assert.deepEqual((await s.listApprovals({ limit: 1 })).map((a) => a.id), ['a3']);
          assert.deepEqual((await s.listApprovals({ status: 'used' })), []);
        }));

      test('a duplicate id is ERR_STORE', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          await assert.rejects(s.createApproval(approval('a1')), (err) => isBastionError(err, 'ERR_STORE'));
        }));

      test('findPendingApproval matches agent, tool, digest and deadline exactly', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          assert.equal((await s.findPendingApproval('demo', null, 'fs__write_file', 'd'.repeat(64), T0))?.id, 'a1');
          assert.equal(await s.findPendingApproval('other', null, 'fs__write_file', 'd'.repeat(64), T0), undefined);
          assert.equal(await s.findPendingApproval('demo', null, 'fs__read_file', 'd'.repeat(64), T0), undefined);
          assert.equal(await s.findPendingApproval('demo', null, 'fs__write_file', 'e'.repeat(64), T0), undefined);
          assert.equal(await s.findPendingApproval('demo', null, 'fs__write_file', 'd'.repeat(64), T0 + 120_000), undefined);
          await s.decideApproval('a1', denyIt(T0 + 1));
          assert.equal(await s.findPendingApproval('demo', null, 'fs__write_file', 'd'.repeat(64), T0), undefined);
        }));

      test('decideApproval decides only once and only before the deadline', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          await s.createApproval(approval('a2'));
          assert.equal(await s.decideApproval('a1', approve(T0 + 10, T0 + 500_000)), true);
          assert.equal(await s.decideApproval('a1', denyIt(T0 + 20)), false);
          assert.equal(await s.decideApproval('a1', approve(T0 + 20)), false);
          const a1 = await s.getApproval('a1');
          assert.equal(a1?.status, 'approved');
          assert.equal(a1?.expiresAt, T0 + 500_000);
          assert.equal(a1?.decidedAt, T0 + 10);
          assert.equal(a1?.decidedBy, 'admin');
          assert.equal(a1?.reason, 'ok');
          assert.equal(await s.decideApproval('a2', approve(T0 + 120_000)), false, 'deadline passed');
          assert.equal((await s.getApproval('a2'))?.status, 'pending');
          assert.equal(await s.decideApproval('missing', approve(T0)), false);
        }));

      test('a denial keeps the deadline', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          assert.equal(await s.decideApproval('a1', denyIt(T0 + 5)), true);
          const a1 = await s.getApproval('a1');
          assert.equal(a1?.status, 'denied');
          assert.equal(a1?.expiresAt, T0 + 120_000);
        }));

      test('concurrent decisions: exactly one wins', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          const results = await Promise.all(
            Array.from({ length: 10 }, (_, i) => s.decideApproval('a1', i % 2 ? approve(T0 + i) : denyIt(T0 + i))),
          );
          assert.equal(results.filter(Boolean).length, 1);
        }));

      test('consumeApproval is single use, also under concurrent calls', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          assert.equal(await s.consumeApproval('a1', T0), false, 'pending cannot be consumed');
          await s.decideApproval('a1', approve(T0 + 1, T0 + 1000));
          const results = await Promise.all(Array.from({ length: 20 }, () => s.consumeApproval('a1', T0 + 2)));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal((await s.getApproval('a1'))?.status, 'used');
          assert.equal(await s.consumeApproval('a1', T0 + 3), false);
        }));

      test('consumeApproval refuses an expired or denied approval', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          await s.createApproval(approval('a2'));
          await s.decideApproval('a1', approve(T0 + 1, T0 + 1000));
          await s.decideApproval('a2', denyIt(T0 + 1));
          assert.equal(await s.consumeApproval('a1', T0 + 1000), false);
          assert.equal(await s.consumeApproval('a2', T0 + 2), false);
          assert.equal(await s.consumeApproval('missing', T0), false);
        }));

      test('claimApproval respects agent, tool, digest and expiry, and takes the oldest one only', () =>
        withStore(async (s) => {
          await s.createApproval(approval('old', { createdAt: T0 }));
          await s.createApproval(approval('new', { createdAt: T0 + 1 }));
          await s.createApproval(approval('pending', { createdAt: T0 - 1 }));
          await s.decideApproval('old', approve(T0 + 2, T0 + 1000));
          await s.decideApproval('new', approve(T0 + 2, T0 + 2000));
          const d = 'd'.repeat(64);
          assert.equal(await s.claimApproval('other', null, 'fs__write_file', d, T0 + 3), undefined);
          assert.equal(await s.claimApproval('demo', null, 'fs__read_file', d, T0 + 3), undefined);
          assert.equal(await s.claimApproval('demo', null, 'fs__write_file', 'e'.repeat(64), T0 + 3), undefined);
          const claimed = await s.claimApproval('demo', null, 'fs__write_file', d, T0 + 3);
          assert.equal(claimed?.id, 'old');
          assert.equal(claimed?.status, 'used');
          assert.equal((await s.getApproval('new'))?.status, 'approved');
          assert.equal(await s.claimApproval('demo', null, 'fs__write_file', d, T0 + 2000), undefined, 'expired');
          assert.equal((await s.claimApproval('demo', null, 'fs__write_file', d, T0 + 1999))?.id, 'new');
          assert.equal(await s.claimApproval('demo', null, 'fs__write_file', d, T0 + 4), undefined);
          assert.equal((await s.getApproval('pending'))?.status, 'pending');
        }));

      test('an approval is bound to the end user: another user (or none) neither finds nor claims it', () =>
        withStore(async (s) => {
          const d = 'd'.repeat(64);
          await s.createApproval(approval('alice1', { user: 'alice' }));
          assert.equal((await s.findPendingApproval('demo', 'alice', 'fs__write_file', d, T0))?.id, 'alice1');
          assert.equal((await s.getApproval('alice1'))?.user, 'alice');
          assert.equal(await s.findPendingApproval('demo', 'bob', 'fs__write_file', d, T0), undefined);
          assert.equal(await s.findPendingApproval('demo', null, 'fs__write_file', d, T0), undefined);
          await s.decideApproval('alice1', approve(T0 + 1, T0 + 1000));
          assert.equal(await s.claimApproval('demo', 'bob', 'fs__write_file', d, T0 + 2), undefined);
          assert.equal(await s.claimApproval('demo', null, 'fs__write_file', d, T0 + 2), undefined);
          assert.equal((await s.claimApproval('demo', 'alice', 'fs__write_file', d, T0 + 2))?.id, 'alice1');
        }));

      test('concurrent claims consume one approval each, never one twice', () =>
        withStore(async (s) => {
          for (let i = 0; i < 3; i++) {
            await s.createApproval(approval(`a${i}`, { createdAt: T0 + i }));
            await s.decideApproval(`a${i}`, approve(T0 + 10));
          }
          const results = await Promise.all(Array.from({ length: 10 }, () => s.claimApproval('demo', null, 'fs__write_file', 'd'.repeat(64), T0 + 20)));
          const ids = results.filter((r) => r !== undefined).map((r) => r.id);
          assert.deepEqual(ids.sort(), ['a0', 'a1', 'a2']);
        }));

      test('expireApproval only expires a pending approval; expire vs decide: exactly one wins', () =>
        withStore(async (s) => {
          await s.createApproval(approval('a1'));
          assert.equal(await s.expireApproval('a1', T0 + 120_000), true);
          assert.equal((await s.getApproval('a1'))?.status, 'expired');
          assert.equal(await s.expireApproval('a1', T0 + 120_001), false);
          assert.equal(await s.decideApproval('a1', approve(T0 + 10)), false);
          for (let i = 0; i < 10; i++) {
            await s.createApproval(approval(`r${i}`));
            const [expired, decided] = await Promise.all([s.expireApproval(`r${i}`, T0 + 50), s.decideApproval(`r${i}`, approve(T0 + 50))]);
            assert.equal(Number(expired) + Number(decided), 1);
            const status = (await s.getApproval(`r${i}`))?.status;
            assert.equal(status, expired ? 'expired' : 'approved');
          }
          assert.equal(await s.expireApproval('missing', T0), false);
        }));
    });

    describe('vault', () => {
      test('createSecret stores metadata and version 1 and bumps the generation', () =>
        withStore(async (s) => {
          assert.equal(await s.vaultGeneration(), 0);
          assert.deepEqual(await s.listSecrets(), []);
          assert.equal(await s.getSecretByName('gh'), undefined);
          await s.createSecret(newSecret('id1', 'gh'));
          assert.equal(await s.vaultGeneration(), 1);
          const expected = {
            id: 'id1', name: 'gh', hosts: ['api.example.com', '*.example.org'], header: 'Authorization', format: 'Bearer {}',
            version: 1, createdAt: T0, rotatedAt: null, revokedAt: null, lastUsedAt: null,
          };
          assert.deepEqual(await s.getSecretByName('gh'), expected);
          assert.deepEqual(await s.listSecrets(), [expected]);
          assert.deepEqual(await s.listValidSecretVersions(T0), [{ secretId: 'id1', version: 1, sealed: '{"sealed":"id1-1"}', createdAt: T0, expiresAt: null }]);
          await s.createSecret(newSecret('id2', 'a-first', { header: null, format: null }));
          assert.deepEqual((await s.listSecrets()).map((x) => [x.name, x.header, x.format]), [['a-first', null, null], ['gh', 'Authorization', 'Bearer {}']]);
          assert.equal(await s.vaultGeneration(), 2);
        }));

      test('a live name is unique (ERR_VAULT_SECRET_EXISTS, nothing changed); a taken id is ERR_STORE', () =>
        withStore(async (s) => {
          await s.createSecret(newSecret('id1', 'gh'));
          await assert.rejects(s.createSecret(newSecret('id2', 'gh')), (err) => isBastionError(err, 'ERR_VAULT_SECRET_EXISTS'));
          await assert.rejects(s.createSecret(newSecret('id1', 'other')), (err) => isBastionError(err, 'ERR_STORE'));
          assert.equal(await s.vaultGeneration(), 1);
          assert.deepEqual((await s.listSecrets()).map((x) => x.id), ['id1']);
          assert.equal((await s.listValidSecretVersions(T0)).length, 1);
        }));

      test('concurrent creates of one name: exactly one wins', () =>
        withStore(async (s) => {
          const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.createSecret(newSecret(`id${i}`, 'gh'))));
          assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
          for (const r of results) if (r.status === 'rejected') assert.ok(isBastionError(r.reason, 'ERR_VAULT_SECRET_EXISTS'));
          assert.equal((await s.listSecrets()).length, 1);
        }));

      test('rotateSecret adds the next version, puts older ones on grace, and refuses a stale version', () =>
        withStore(async (s) => {
          await s.createSecret(newSecret('id1', 'gh'));
          assert.equal(await s.rotateSecret('id1', { version: 3, sealed: 'x', createdAt: T0 + 10 }, T0 + 1000), false, 'skips a version');
          assert.equal(await s.rotateSecret('nope', { version: 2, sealed: 'x', createdAt: T0 + 10 }, T0 + 1000), false, 'unknown');
          assert.equal(await s.vaultGeneration(), 1);
          assert.equal(await s.rotateSecret('id1', { version: 2, sealed: 's2', createdAt: T0 + 10 }, T0 + 1000), true);
          assert.equal(await s.rotateSecret('id1', { version: 2, sealed: 's2b', createdAt: T0 + 11 }, T0 + 1000), false, 'a concurrent rotation won');
          assert.equal(await s.vaultGeneration(), 2);
          const info = await s.getSecretByName('gh');
          assert.equal(info?.version, 2);
          assert.equal(info?.rotatedAt, T0 + 10);
          assert.equal(info?.createdAt, T0);
          assert.deepEqual(
            (await s.listValidSecretVersions(T0 + 20)).map((v) => [v.version, v.sealed, v.expiresAt]),
            [[1, '{"sealed":"id1-1"}', T0 + 1000], [2, 's2', null]],
          );
          assert.deepEqual((await s.listValidSecretVersions(T0 + 1000)).map((v) => v.version), [2], 'expired at graceUntil');
          // A second rotation keeps version 1's earlier expiry.
          assert.equal(await s.rotateSecret('id1', { version: 3, sealed: 's3', createdAt: T0 + 30 }, T0 + 5000), true);
          assert.deepEqual((await s.listValidSecretVersions(T0 + 40)).map((v) => [v.version, v.expiresAt]), [[1, T0 + 1000], [2, T0 + 5000], [3, null]]);
        }));

      test('concurrent rotations to the same version: exactly one wins', () =>
        withStore(async (s) => {
          await s.createSecret(newSecret('id1', 'gh'));
          const results = await Promise.all(Array.from({ length: 6 }, (_, i) => s.rotateSecret('id1', { version: 2, sealed: `s${i}`, createdAt: T0 + 1 }, T0 + 100)));
          assert.equal(results.filter(Boolean).length, 1);
          assert.equal((await s.getSecretByName('gh'))?.version, 2);
        }));

      test('revokeSecret expires every version, frees the name, and is not repeatable', () =>
        withStore(async (s) => {
          await s.createSecret(newSecret('id1', 'gh'));
          await s.rotateSecret('id1', { version: 2, sealed: 's2', createdAt: T0 + 10 }, T0 + 1000);
          assert.equal(await s.revokeSecret('id1', T0 + 50), true);
          assert.equal(await s.vaultGeneration(), 3);
          assert.equal(await s.getSecretByName('gh'), undefined);
          assert.deepEqual(await s.listSecrets(), []);
          assert.deepEqual(await s.listValidSecretVersions(T0), [], 'a revoked secret has no valid version at any time');
          assert.equal(await s.revokeSecret('id1', T0 + 60), false);
          assert.equal(await s.revokeSecret('nope', T0 + 60), false);
          assert.equal(await s.rotateSecret('id1', { version: 3, sealed: 's3', createdAt: T0 + 70 }, T0 + 80), false, 'a revoked secret cannot rotate');
          assert.equal(await s.vaultGeneration(), 3);
          await s.createSecret(newSecret('id2', 'gh', { createdAt: T0 + 100, sealed: 'n1' }));
          const again = await s.getSecretByName('gh');
          assert.equal(again?.id, 'id2');
          assert.equal(again?.version, 1);
          assert.deepEqual((await s.listValidSecretVersions(T0 + 100)).map((v) => [v.secretId, v.version]), [['id2', 1]]);
        }));

      test('touchSecret records the latest use only, without a generation bump', () =>
        withStore(async (s) => {
          await s.createSecret(newSecret('id1', 'gh'));
          await s.touchSecret('id1', T0 + 20);
          await s.touchSecret('id1', T0 + 10);
          await s.touchSecret('missing', T0 + 30);
          assert.equal((await s.getSecretByName('gh'))?.lastUsedAt, T0 + 20);
          assert.equal(await s.vaultGeneration(), 1);
        }));

      test('vault items: insert-if-absent returns the first value to every caller', () =>
        withStore(async (s) => {
          assert.equal(await s.getVaultItem('root'), undefined);
          assert.equal(await s.putVaultItemIfAbsent('root', 'first'), 'first');
          assert.equal(await s.putVaultItemIfAbsent('root', 'second'), 'first');
          assert.equal(await s.getVaultItem('root'), 'first');
          const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => s.putVaultItemIfAbsent('other', `v${i}`)));
          assert.equal(new Set(raced).size, 1);
          assert.equal(await s.vaultGeneration(), 0);
        }));
    });

    test('methods of a closed store throw ERR_STORE', async () => {
      const s = await open();
      await s.close();
      await s.close();
      await assert.rejects(s.lastAudit(), (err) => isBastionError(err, 'ERR_STORE'));
      await assert.rejects(s.getApproval('x'), (err) => isBastionError(err, 'ERR_STORE'));
      await assert.rejects(s.vaultGeneration(), (err) => isBastionError(err, 'ERR_STORE'));
      await assert.rejects(s.listSecrets(), (err) => isBastionError(err, 'ERR_STORE'));
    });
  });
}
