/** The IsolationStore contract (src/incidents/isolation-store.ts): one isolation in force per agent, with its history. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { IsolationStore } from '../../../src/incidents/isolation-store.ts';
import type { VaultStore } from '../../../src/vault/store.ts';

/** The port, with the vault calls its grace case sets up versions through. */
type Port = IsolationStore & Pick<VaultStore, 'createSecret' | 'rotateSecret' | 'listValidSecretVersions' | 'vaultGeneration'>;
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

/** Runs the IsolationStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runIsolationStoreContract(name: string, open: PortFactory<Port>, opts: ContractOptions<Port> = {}): void {
  describe(`IsolationStore contract: ${name}`, () => {
    test('isolate is idempotent while in force; restore ends it; history newest first', () =>
      withPort(open, async (s) => {
        const first = await s.isolateAgent({ id: 'i1', agent: 'a', reason: 'leak', by: 'admin', at: T0 });
        assert.equal(first.created, true);
        assert.deepEqual(first.record, { id: 'i1', agent: 'a', reason: 'leak', by: 'admin', at: T0, restoredAt: null, restoredBy: null, restoreReason: null });
        const again = await s.isolateAgent({ id: 'i2', agent: 'a', reason: 'other', by: 'cli:x', at: T0 + 1 });
        assert.equal(again.created, false);
        assert.equal(again.record.id, 'i1', 'the isolation in force is kept');
        await s.isolateAgent({ id: 'i3', agent: 'b', reason: 'r', by: 'admin', at: T0 + 2 });
        assert.deepEqual((await s.listIsolations({ current: true })).map((i) => i.agent), ['b', 'a']);
        const restored = await s.restoreAgent('a', { at: T0 + 10, by: 'admin', reason: 'clean' });
        assert.deepEqual([restored?.id, restored?.restoredAt, restored?.restoredBy, restored?.restoreReason], ['i1', T0 + 10, 'admin', 'clean']);
        assert.equal(await s.restoreAgent('a', { at: T0 + 11, by: 'admin', reason: 'again' }), undefined, 'nothing in force');
        assert.equal(await s.restoreAgent('nobody', { at: T0 + 11, by: 'admin', reason: 'x' }), undefined);
        assert.deepEqual((await s.listIsolations({ current: true })).map((i) => i.agent), ['b']);
        const next = await s.isolateAgent({ id: 'i4', agent: 'a', reason: 'again', by: 'admin', at: T0 + 20 });
        assert.equal(next.created, true);
        assert.deepEqual((await s.listIsolations({ agent: 'a' })).map((i) => [i.id, i.restoredAt]), [['i4', null], ['i1', T0 + 10]]);
        assert.deepEqual((await s.listIsolations({ limit: 1 })).map((i) => i.id), ['i4']);
        assert.equal((await s.listIsolations()).length, 3);
      }));

    test('malformed input is TypeError / RangeError', () =>
      withPort(open, async (s) => {
        await assert.rejects(s.isolateAgent({ id: 'i', agent: 1 as unknown as string, reason: 'r', by: 'b', at: T0 }), TypeError);
        await assert.rejects(s.isolateAgent({ id: 'i', agent: 'a', reason: 'r', by: 'b', at: 1.5 }), RangeError);
        await assert.rejects(s.listIsolations({ limit: -1 }), RangeError);
      }));

    test('rotation marks replace earlier ones; endSecretGrace cuts the grace of superseded versions only', () =>
      withPort(open, async (s) => {
        await s.markSecretForRotation({ secret: 'gh', agent: 'a', reason: 'r1', by: 'cli', at: T0 });
        await s.markSecretForRotation({ secret: 'aws', agent: 'a', reason: 'r1', by: 'cli', at: T0 });
        await s.markSecretForRotation({ secret: 'gh', agent: 'b', reason: 'r2', by: 'admin', at: T0 + 5 });
        assert.deepEqual(await s.listRotationMarks(), [
          { secret: 'aws', agent: 'a', reason: 'r1', by: 'cli', at: T0 },
          { secret: 'gh', agent: 'b', reason: 'r2', by: 'admin', at: T0 + 5 },
        ]);
        const v = s;
        await v.createSecret({ id: 'id1', name: 'gh', hosts: ['api.github.com'], header: null, format: null, createdAt: T0, sealed: 's1' });
        assert.equal(await v.rotateSecret('id1', { version: 2, sealed: 's2', createdAt: T0 + 10 }, T0 + 100_000), true);
        assert.deepEqual((await v.listValidSecretVersions(T0 + 20)).map((x) => x.version).sort(), [1, 2]);
        const gen = await v.vaultGeneration();
        assert.equal(await s.endSecretGrace('id1', T0 + 20), 1);
        assert.equal(await v.vaultGeneration(), gen + 1, 'the vault caches re-read');
        assert.deepEqual((await v.listValidSecretVersions(T0 + 20)).map((x) => x.version), [2], 'the current version stays');
        assert.equal(await s.endSecretGrace('id1', T0 + 30), 0, 'nothing left in grace');
      }));

    pairTest('two handles: an isolation through one is seen and restored through the other; racing isolations keep one', opts, async (a, b) => {
      const [x, y] = await Promise.all([
        a.isolateAgent({ id: 'x', agent: 'a', reason: 'r', by: 'one', at: T0 }),
        b.isolateAgent({ id: 'y', agent: 'a', reason: 'r', by: 'two', at: T0 }),
      ]);
      assert.equal([x.created, y.created].filter(Boolean).length, 1);
      assert.equal(x.record.id, y.record.id);
      assert.equal((await b.listIsolations({ current: true })).length, 1);
      assert.equal((await b.restoreAgent('a', { at: T0 + 1, by: 'two', reason: 'ok' }))?.id, x.record.id);
      assert.deepEqual(await a.listIsolations({ current: true }), []);
    });

    closedTest(open, [(s) => s.listIsolations(), (s) => s.restoreAgent('a', { at: 0, by: 'b', reason: 'r' })]);
  });
}
