/** The BanStore contract (src/model/ban-store.ts): escalating bans per (agent, end user), lifted by an admin. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BanStore } from '../../../src/model/ban-store.ts';
import { closedTest, withPort, type ContractOptions, type PortFactory } from './harness.ts';

/** Runs the BanStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runBanStoreContract(name: string, open: PortFactory<BanStore>, _opts: ContractOptions<BanStore> = {}): void {
  describe(`BanStore contract: ${name}`, () => {
    test('escalation counts unlifted offences in the forget window; active, list and lift', () =>
      withPort(open, async (s) => {
        const durations = [10, 100, 1000];
        const b1 = await s.addBan({ agent: 'a', user: 'u', at: 1000, rule: 'r', reason: 'x' }, durations, 500);
        assert.deepEqual([b1.level, b1.until], [1, 1010]);
        const b2 = await s.addBan({ agent: 'a', user: 'u', at: 1200, rule: 'r', reason: 'x' }, durations, 500);
        assert.deepEqual([b2.level, b2.until], [2, 1300]);
        const b3 = await s.addBan({ agent: 'a', user: 'u', at: 1300, rule: 'r', reason: 'x' }, durations, 500);
        const b4 = await s.addBan({ agent: 'a', user: 'u', at: 1400, rule: 'r', reason: 'x' }, durations, 500);
        assert.deepEqual([b3.level, b4.level, b4.until], [3, 4, 2400], 'the last duration repeats');
        // Outside the forget window, escalation starts over.
        assert.equal((await s.addBan({ agent: 'a', user: 'u', at: 10_000, rule: 'r', reason: 'x' }, durations, 500)).level, 1);
        // Another agent's user of the same name is someone else.
        assert.equal((await s.addBan({ agent: 'b', user: 'u', at: 10_000, rule: 'r', reason: 'x' }, durations, 500)).level, 1);
        assert.equal((await s.activeBan('a', 'u', 10_005))?.until, 10_010);
        assert.equal(await s.activeBan('a', 'u', 10_010), undefined, 'a ban ends at until');
        assert.equal((await s.listBans({ activeAt: 10_005 })).length, 2);
        assert.equal(await s.liftBans('u', { agent: 'a', at: 10_005, by: 't' }), 1);
        assert.equal(await s.activeBan('a', 'u', 10_005), undefined);
        assert.equal((await s.activeBan('b', 'u', 10_005))?.agent, 'b');
        // A lifted offence no longer escalates.
        assert.equal((await s.addBan({ agent: 'a', user: 'u', at: 10_006, rule: 'r', reason: 'x' }, durations, 500)).level, 1);
        assert.equal((await s.listBans({ user: 'u' }))[0]?.at, 10_006);
      }));

    test('a ban records who lifted it and when; liftBans without an agent lifts every agent\'s; empty durations are RangeError', () =>
      withPort(open, async (s) => {
        await s.addBan({ agent: 'a', user: 'u', at: 1000, rule: 'r', reason: 'x' }, [100], 500);
        await s.addBan({ agent: 'b', user: 'u', at: 1000, rule: 'r', reason: 'x' }, [100], 500);
        await s.addBan({ agent: 'a', user: 'w', at: 1000, rule: 'r', reason: 'x' }, [100], 500);
        assert.equal(await s.liftBans('u', { at: 1050, by: 'admin' }), 2);
        assert.equal(await s.liftBans('u', { at: 1051, by: 'admin' }), 0, 'nothing left in force');
        const lifted = (await s.listBans({ user: 'u' })).map((b) => [b.agent, b.liftedAt, b.liftedBy]);
        assert.deepEqual(lifted.sort(), [['a', 1050, 'admin'], ['b', 1050, 'admin']]);
        assert.equal((await s.activeBan('a', 'w', 1050))?.liftedAt, null);
        assert.deepEqual((await s.listBans({ activeAt: 1050 })).map((b) => b.user), ['w']);
        await assert.rejects(s.addBan({ agent: 'a', user: 'u', at: 2000, rule: 'r', reason: 'x' }, [], 500), RangeError);
      }));

    closedTest(open, [(s) => s.activeBan('a', 'u', 0), (s) => s.listBans()]);
  });
}
