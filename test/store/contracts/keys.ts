/** The KeyStore contract (src/identity/key-store.ts): one current key per purpose, retired ones kept. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KeyStore, StoredKey } from '../../../src/identity/key-store.ts';
import { closedTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

function key(id: string, createdAt: number, purpose: StoredKey['purpose'] = 'audit'): StoredKey {
  return { id, purpose, alg: 'Ed25519', publicKeyPem: `pub-${id}`, privateKeyPem: `priv-${id}`, createdAt };
}

/** Runs the KeyStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runKeyStoreContract(name: string, open: PortFactory<KeyStore>, _opts: ContractOptions<KeyStore> = {}): void {
  describe(`KeyStore contract: ${name}`, () => {
    test('putKey makes the key current; listKeys keeps retired ones', () =>
      withPort(open, async (s) => {
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

    test('purposes are independent: an identity key is neither the audit key nor listed with it', () =>
      withPort(open, async (s) => {
        await s.putKey(key('a1', T0));
        await s.putKey(key('i1', T0 + 1, 'identity'));
        assert.equal((await s.getKey('audit'))?.id, 'a1');
        assert.equal((await s.getKey('identity'))?.id, 'i1');
        assert.deepEqual((await s.listKeys('audit')).map((k) => k.id), ['a1']);
        assert.deepEqual((await s.listKeys('identity')).map((k) => k.id), ['i1']);
      }));

    closedTest(open, [(s) => s.getKey('audit'), (s) => s.listKeys('identity')]);
  });
}
