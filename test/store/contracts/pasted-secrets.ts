/** The PastedSecretStore contract (src/vault/pasted-store.ts): one row per (agent, user, fingerprint), found by token. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isBastionError } from '../../../src/errors.ts';
import type { PastedSecretStore, StoredPastedSecret } from '../../../src/vault/pasted-store.ts';
import { closedTest, withPort, type ContractOptions, type PortFactory } from './harness.ts';

const row: StoredPastedSecret = { id: 'p1', token: 'aaaaaaaaaaaa', agent: 'a', user: 'u', fingerprint: 'f', rule: 'github-token', hosts: ['api.github.com'], sealed: '{}', createdAt: 5, lastUsedAt: null };

/** Runs the PastedSecretStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runPastedSecretStoreContract(name: string, open: PortFactory<PastedSecretStore>, _opts: ContractOptions<PastedSecretStore> = {}): void {
  describe(`PastedSecretStore contract: ${name}`, () => {
    test('one row per (agent, user, fingerprint), found by token; hosts can be bound later', () =>
      withPort(open, async (s) => {
        assert.deepEqual(await s.putPastedSecret(row), row);
        // The same value again (same fingerprint) under a new id returns the first row.
        assert.equal((await s.putPastedSecret({ ...row, id: 'p2', token: 'bbbbbbbbbbbb' })).id, 'p1');
        // Another user with the same fingerprint is a different secret.
        assert.equal((await s.putPastedSecret({ ...row, id: 'p3', token: 'cccccccccccc', user: 'v' })).id, 'p3');
        // A token collision with another secret is a store error, not a silent overwrite.
        await assert.rejects(s.putPastedSecret({ ...row, id: 'p4', token: 'aaaaaaaaaaaa', fingerprint: 'g' }), (err) => isBastionError(err, 'ERR_STORE'));
        assert.equal((await s.getPastedSecretByToken('cccccccccccc'))?.user, 'v');
        assert.equal(await s.getPastedSecretByToken('zzzzzzzzzzzz'), undefined);
        assert.equal(await s.setPastedSecretHosts('p3', ['slack.com']), true);
        assert.deepEqual((await s.getPastedSecretByToken('cccccccccccc'))?.hosts, ['slack.com']);
        assert.equal(await s.setPastedSecretHosts('nope', []), false);
        await s.touchPastedSecret('p1', 9);
        assert.equal((await s.listPastedSecrets({ user: 'u' }))[0]?.lastUsedAt, 9);
      }));

    test('listPastedSecrets: newest first, filtered by user and agent, limited; touch keeps the latest use', () =>
      withPort(open, async (s) => {
        await s.putPastedSecret(row);
        await s.putPastedSecret({ ...row, id: 'p2', token: 'bbbbbbbbbbbb', fingerprint: 'g', createdAt: 6 });
        await s.putPastedSecret({ ...row, id: 'p3', token: 'cccccccccccc', agent: 'b', fingerprint: 'h', createdAt: 7 });
        await s.putPastedSecret({ ...row, id: 'p4', token: 'dddddddddddd', user: 'v', fingerprint: 'i', createdAt: 8 });
        assert.deepEqual((await s.listPastedSecrets()).map((p) => p.id), ['p4', 'p3', 'p2', 'p1']);
        assert.deepEqual((await s.listPastedSecrets({ user: 'u' })).map((p) => p.id), ['p3', 'p2', 'p1']);
        assert.deepEqual((await s.listPastedSecrets({ user: 'u', agent: 'a' })).map((p) => p.id), ['p2', 'p1']);
        assert.deepEqual((await s.listPastedSecrets({ limit: 1 })).map((p) => p.id), ['p4']);
        await s.touchPastedSecret('p1', 20);
        await s.touchPastedSecret('p1', 10);
        await s.touchPastedSecret('missing', 30);
        assert.equal((await s.getPastedSecretByToken('aaaaaaaaaaaa'))?.lastUsedAt, 20);
      }));

    closedTest(open, [(s) => s.getPastedSecretByToken('aaaaaaaaaaaa'), (s) => s.listPastedSecrets()]);
  });
}
