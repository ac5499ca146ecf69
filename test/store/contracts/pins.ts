/**
 * The PinStore contract (src/mcp/pin-store.ts): one pin per agent and tool, kept
 * on first use; withheld definitions recorded once per detection; an approval
 * pins only the definition still withheld under the hash given.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PinStore, StoredPendingPin, StoredPin } from '../../../src/mcp/pin-store.ts';
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);
const H3 = '3'.repeat(64);
const S1 = 'a'.repeat(64);

const pin = (over: Partial<StoredPin> = {}): StoredPin => ({
  agent: 'demo',
  tool: 'files__read',
  hash: H1,
  shape: S1,
  definition: '{"name":"files__read"}',
  pinnedAt: T0,
  pinnedBy: 'first-use',
  ...over,
});

const pending = (over: Partial<StoredPendingPin> = {}): StoredPendingPin => ({
  agent: 'demo',
  tool: 'files__read',
  kind: 'changed',
  hash: H2,
  shape: 'b'.repeat(64),
  definition: '{"description":"new","name":"files__read"}',
  detail: '{"pinnedHash":"' + H1 + '"}',
  detectedAt: T0 + 1,
  ...over,
});

/** Runs the PinStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runPinStoreContract(name: string, open: PortFactory<PinStore>, opts: ContractOptions<PinStore> = {}): void {
  describe(`PinStore contract: ${name}`, () => {
    test('pinIfAbsent keeps the first pin per agent and tool; pins are per agent; listed by tool', () =>
      withPort(open, async (store) => {
        assert.deepEqual(await store.pinIfAbsent(pin()), pin());
        assert.deepEqual(await store.pinIfAbsent(pin({ hash: H2, pinnedAt: T0 + 5 })), pin(), 'the first definition stays pinned');
        assert.deepEqual(await store.pinIfAbsent(pin({ agent: 'other', hash: H2 })), pin({ agent: 'other', hash: H2 }));
        await store.pinIfAbsent(pin({ tool: 'a__x' }));
        assert.deepEqual((await store.listPins('demo')).map((p) => [p.tool, p.hash]), [['a__x', H1], ['files__read', H1]]);
        assert.deepEqual(await store.listPins('nobody'), []);
      }));

    test('putPendingPin: a new detection is true, the same definition and reason again is false, a newer one replaces it', () =>
      withPort(open, async (store) => {
        assert.equal(await store.putPendingPin(pending()), true);
        assert.equal(await store.putPendingPin(pending({ detectedAt: T0 + 9 })), false);
        assert.deepEqual(await store.listPendingPins('demo'), [pending()], 'unchanged, first detection time kept');
        assert.equal(await store.putPendingPin(pending({ hash: H3, detectedAt: T0 + 10 })), true);
        assert.equal(await store.putPendingPin(pending({ hash: H3, kind: 'flagged', detectedAt: T0 + 11 })), true, 'another reason is another detection');
        const list = await store.listPendingPins('demo');
        assert.equal(list.length, 1);
        assert.deepEqual([list[0]?.hash, list[0]?.kind, list[0]?.detectedAt], [H3, 'flagged', T0 + 11]);
        assert.deepEqual(await store.listPendingPins('other'), []);
        await assert.rejects(store.putPendingPin(pending({ kind: 'bogus' as never })), TypeError);
        assert.equal(await store.removePendingPin('demo', 'files__read'), true);
        assert.equal(await store.removePendingPin('demo', 'files__read'), false);
        assert.deepEqual(await store.listPendingPins('demo'), []);
      }));

    test('approvePendingPin pins the withheld definition only under its current hash, and forgets it', () =>
      withPort(open, async (store) => {
        await store.pinIfAbsent(pin());
        await store.putPendingPin(pending());
        assert.equal(await store.approvePendingPin('demo', 'files__read', H1, T0 + 2, 'cli:root'), undefined, 'the old hash is not what is withheld');
        assert.equal(await store.approvePendingPin('demo', 'files__read', H3, T0 + 2, 'cli:root'), undefined);
        assert.equal(await store.approvePendingPin('demo', 'nosuch', H2, T0 + 2, 'cli:root'), undefined);
        assert.deepEqual(await store.listPins('demo'), [pin()], 'nothing changed');
        const approved = await store.approvePendingPin('demo', 'files__read', H2, T0 + 2, 'cli:root');
        const expected = pin({ hash: H2, shape: 'b'.repeat(64), definition: pending().definition, pinnedAt: T0 + 2, pinnedBy: 'cli:root' });
        assert.deepEqual(approved, expected);
        assert.deepEqual(await store.listPins('demo'), [expected]);
        assert.deepEqual(await store.listPendingPins('demo'), []);
        assert.equal(await store.approvePendingPin('demo', 'files__read', H2, T0 + 3, 'cli:root'), undefined, 'approved once');
        // A tool never pinned (manual mode) is pinned by its approval.
        await store.putPendingPin(pending({ tool: 'b__new', kind: 'unapproved', hash: H3 }));
        assert.equal((await store.approvePendingPin('demo', 'b__new', H3, T0 + 4, 'cli:root'))?.hash, H3);
        assert.deepEqual((await store.listPins('demo')).map((p) => p.tool), ['b__new', 'files__read']);
      }));

    pairTest('two handles: a definition withheld through one is seen and approved through the other; racing first uses agree', opts, async (a, b) => {
      await a.putPendingPin(pending({ kind: 'unapproved' }));
      assert.equal((await b.listPendingPins('demo'))[0]?.hash, H2);
      assert.equal((await b.approvePendingPin('demo', 'files__read', H2, T0 + 2, 'cli:root'))?.hash, H2);
      assert.deepEqual(await a.listPendingPins('demo'), []);
      const [x, y] = await Promise.all([a.pinIfAbsent(pin({ tool: 't', hash: H1 })), b.pinIfAbsent(pin({ tool: 't', hash: H3 }))]);
      assert.equal(x.hash, y.hash, 'both see the one pin that won');
    });

    closedTest(open, [(s) => s.listPins('demo'), (s) => s.listPendingPins('demo'), (s) => s.putPendingPin(pending()), (s) => s.approvePendingPin('demo', 't', H1, T0, 'x')]);
  });
}
