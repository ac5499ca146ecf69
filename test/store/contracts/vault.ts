/**
 * The VaultStore contract (src/vault/store.ts): secrets unique by live name,
 * versions with a rotation grace, revocation, and a generation bumped with
 * every change, in one transaction each.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isBastionError } from '../../../src/errors.ts';
import type { NewSecret, VaultStore } from '../../../src/vault/store.ts';
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

function newSecret(id: string, name: string, overrides: Partial<NewSecret> = {}): NewSecret {
  return { id, name, hosts: ['api.example.com', '*.example.org'], header: 'Authorization', format: 'Bearer {}', createdAt: T0, sealed: `{"sealed":"${id}-1"}`, ...overrides };
}

/** Runs the VaultStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runVaultStoreContract(name: string, open: PortFactory<VaultStore>, opts: ContractOptions<VaultStore> = {}): void {
  describe(`VaultStore contract: ${name}`, () => {
    test('createSecret stores metadata and version 1 and bumps the generation', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        await s.createSecret(newSecret('id1', 'gh'));
        await assert.rejects(s.createSecret(newSecret('id2', 'gh')), (err) => isBastionError(err, 'ERR_VAULT_SECRET_EXISTS'));
        await assert.rejects(s.createSecret(newSecret('id1', 'other')), (err) => isBastionError(err, 'ERR_STORE'));
        assert.equal(await s.vaultGeneration(), 1);
        assert.deepEqual((await s.listSecrets()).map((x) => x.id), ['id1']);
        assert.equal((await s.listValidSecretVersions(T0)).length, 1);
      }));

    test('concurrent creates of one name: exactly one wins', () =>
      withPort(open, async (s) => {
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.createSecret(newSecret(`id${i}`, 'gh'))));
        assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
        for (const r of results) if (r.status === 'rejected') assert.ok(isBastionError(r.reason, 'ERR_VAULT_SECRET_EXISTS'));
        assert.equal((await s.listSecrets()).length, 1);
      }));

    test('rotateSecret adds the next version, puts older ones on grace, and refuses a stale version', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        await s.createSecret(newSecret('id1', 'gh'));
        const results = await Promise.all(Array.from({ length: 6 }, (_, i) => s.rotateSecret('id1', { version: 2, sealed: `s${i}`, createdAt: T0 + 1 }, T0 + 100)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal((await s.getSecretByName('gh'))?.version, 2);
      }));

    test('revokeSecret expires every version, frees the name, and is not repeatable', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        await s.createSecret(newSecret('id1', 'gh'));
        await s.touchSecret('id1', T0 + 20);
        await s.touchSecret('id1', T0 + 10);
        await s.touchSecret('missing', T0 + 30);
        assert.equal((await s.getSecretByName('gh'))?.lastUsedAt, T0 + 20);
        assert.equal(await s.vaultGeneration(), 1);
      }));

    test('vault items: insert-if-absent returns the first value to every caller', () =>
      withPort(open, async (s) => {
        assert.equal(await s.getVaultItem('root'), undefined);
        assert.equal(await s.putVaultItemIfAbsent('root', 'first'), 'first');
        assert.equal(await s.putVaultItemIfAbsent('root', 'second'), 'first');
        assert.equal(await s.getVaultItem('root'), 'first');
        const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => s.putVaultItemIfAbsent('other', `v${i}`)));
        assert.equal(new Set(raced).size, 1);
        assert.equal(await s.vaultGeneration(), 0);
      }));

    pairTest('two handles: a vault change through one bumps the generation the other reads', opts, async (a, b) => {
      assert.equal(await b.vaultGeneration(), 0);
      await a.createSecret({ id: 'i', name: 'n', hosts: ['h.example'], header: null, format: null, createdAt: 1, sealed: '{}' });
      assert.equal(await b.vaultGeneration(), 1);
      await assert.rejects(
        b.createSecret({ id: 'j', name: 'n', hosts: ['h.example'], header: null, format: null, createdAt: 2, sealed: '{}' }),
        (err) => isBastionError(err, 'ERR_VAULT_SECRET_EXISTS'),
      );
      assert.equal(await b.revokeSecret('i', 3), true);
      assert.equal(await a.vaultGeneration(), 2);
      assert.equal(await a.getSecretByName('n'), undefined);
    });

    closedTest(open, [(s) => s.vaultGeneration(), (s) => s.listSecrets(), (s) => s.getVaultItem('root')]);
  });
}
