/** The CaStore contract (src/egress/ca-store.ts): items written once; every racing writer reads back the one stored. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CaStore } from '../../../src/egress/ca-store.ts';
import { closedTest, pairTest, withPort, type ContractOptions, type PortFactory } from './harness.ts';

/** Runs the CaStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runCaStoreContract(name: string, open: PortFactory<CaStore>, opts: ContractOptions<CaStore> = {}): void {
  describe(`CaStore contract: ${name}`, () => {
    test('insert-if-absent: the first value stays, every racing caller gets it; names are independent', () =>
      withPort(open, async (s) => {
        assert.equal(await s.getVaultItem('local-ca'), undefined);
        assert.equal(await s.putVaultItemIfAbsent('local-ca', '{"ca":1}'), '{"ca":1}');
        assert.equal(await s.putVaultItemIfAbsent('local-ca', '{"ca":2}'), '{"ca":1}');
        assert.equal(await s.getVaultItem('local-ca'), '{"ca":1}');
        assert.equal(await s.getVaultItem('other'), undefined);
        const raced = await Promise.all(Array.from({ length: 8 }, (_, i) => s.putVaultItemIfAbsent('other', `v${i}`)));
        assert.equal(new Set(raced).size, 1);
        assert.equal(await s.getVaultItem('other'), raced[0]);
      }));

    pairTest('two handles creating one item at once both get the same value', opts, async (a, b) => {
      const [x, y] = await Promise.all([a.putVaultItemIfAbsent('local-ca', 'from-a'), b.putVaultItemIfAbsent('local-ca', 'from-b')]);
      assert.equal(x, y);
      assert.equal(await b.getVaultItem('local-ca'), x);
    });

    closedTest(open, [(s) => s.getVaultItem('local-ca'), (s) => s.putVaultItemIfAbsent('local-ca', 'x')]);
  });
}
