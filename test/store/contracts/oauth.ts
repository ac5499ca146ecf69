/**
 * The OAuthStore contract (src/oauth/store.ts): pending authorizations are
 * taken once, ever (expired ones too, pruned by later puts) and bounded; sealed
 * token sets are kept per (user, provider), replaced in place, deleted, and
 * listed as metadata only.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OAuthStore, StoredPendingAuthorization } from '../../../src/oauth/store.ts';
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

const pending = (state: string, over: Partial<StoredPendingAuthorization> = {}): StoredPendingAuthorization => ({
  state,
  provider: 'github',
  user: 'alice',
  agent: 'demo',
  sealedCodeVerifier: `{"sealed":"${state}"}`,
  createdAt: T0,
  expiresAt: T0 + 600_000,
  ...over,
});

const LIMITS = { maxPending: 100, now: T0 };

/** Runs the OAuthStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runOAuthStoreContract(name: string, open: PortFactory<OAuthStore>, opts: ContractOptions<OAuthStore> = {}): void {
  describe(`OAuthStore contract: ${name}`, () => {
    test('a pending authorization round-trips and is taken once; an unknown state is undefined; a duplicate state is refused', () =>
      withPort(open, async (s) => {
        assert.equal(await s.putPendingAuthorization(pending('s1'), LIMITS), true);
        assert.equal(await s.putPendingAuthorization(pending('s1', { user: 'mallory' }), LIMITS), false, 'a state is never overwritten');
        assert.equal(await s.takePendingAuthorization('nope'), undefined);
        assert.deepEqual(await s.takePendingAuthorization('s1'), pending('s1'));
        assert.equal(await s.takePendingAuthorization('s1'), undefined, 'taken once');
        assert.equal(await s.putPendingAuthorization(pending('s1'), LIMITS), true, 'a taken state no longer occupies its key');
      }));

    test('concurrent takes of one state: exactly one gets it', () =>
      withPort(open, async (s) => {
        assert.equal(await s.putPendingAuthorization(pending('race'), LIMITS), true);
        const results = await Promise.all(Array.from({ length: 10 }, () => s.takePendingAuthorization('race')));
        assert.deepEqual(results.filter((r) => r !== undefined), [pending('race')]);
      }));

    pairTest('two handles: concurrent takes of one state on two connections, exactly one gets it', opts, async (a, b) => {
      assert.equal(await a.putPendingAuthorization(pending('shared'), LIMITS), true);
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? a : b).takePendingAuthorization('shared')));
      assert.equal(results.filter((r) => r !== undefined).length, 1);
      assert.equal(await a.takePendingAuthorization('shared'), undefined);
    });

    test('an expired pending authorization is still taken (the caller checks expiry)', () =>
      withPort(open, async (s) => {
        assert.equal(await s.putPendingAuthorization(pending('old', { expiresAt: T0 + 10 }), LIMITS), true);
        // No put since it expired, so nothing pruned it.
        assert.equal((await s.takePendingAuthorization('old'))?.expiresAt, T0 + 10);
      }));

    test('maxPending: a full store answers false; expired rows are pruned by the next put and free their slots', () =>
      withPort(open, async (s) => {
        const limits = { maxPending: 2, now: T0 };
        assert.equal(await s.putPendingAuthorization(pending('a', { expiresAt: T0 + 10 }), limits), true);
        assert.equal(await s.putPendingAuthorization(pending('b', { expiresAt: T0 + 1000 }), limits), true);
        assert.equal(await s.putPendingAuthorization(pending('c'), limits), false, 'full');
        assert.equal(await s.putPendingAuthorization(pending('c'), { maxPending: 2, now: T0 + 9 }), false, 'still full 1 ms before a expires');
        // At a's expiry the put prunes it: c takes its slot, and a is gone for good.
        assert.equal(await s.putPendingAuthorization(pending('c'), { maxPending: 2, now: T0 + 10 }), true);
        assert.equal(await s.takePendingAuthorization('a'), undefined, 'pruned');
        assert.equal((await s.takePendingAuthorization('b'))?.state, 'b', 'unexpired rows are kept');
        assert.equal((await s.takePendingAuthorization('c'))?.state, 'c');
      }));

    test('racing puts cannot overshoot maxPending', () =>
      withPort(open, async (s) => {
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => s.putPendingAuthorization(pending(`r${i}`), { maxPending: 3, now: T0 })));
        assert.equal(results.filter(Boolean).length, 3);
      }));

    test('malformed input: RangeError on a bad maxPending or time, TypeError on a non-string', () =>
      withPort(open, async (s) => {
        for (const maxPending of [0, -1, 1.5, Number.NaN, 2_000_000]) {
          await assert.rejects(s.putPendingAuthorization(pending('x'), { maxPending, now: T0 }), RangeError, String(maxPending));
        }
        await assert.rejects(s.putPendingAuthorization(pending('x', { expiresAt: Number.NaN }), LIMITS), RangeError);
        await assert.rejects(s.putPendingAuthorization(pending('x'), { maxPending: 1, now: 1.5 }), RangeError);
        await assert.rejects(s.putPendingAuthorization(pending('x', { sealedCodeVerifier: 1 as unknown as string }), LIMITS), TypeError);
        await assert.rejects(s.putUserTokenSet('alice', 'github', null as unknown as string, T0), TypeError);
        await assert.rejects(s.putUserTokenSet('alice', 'github', '{}', Number.NaN), RangeError);
        await assert.rejects(s.listUserTokenSets({ limit: -1 }), RangeError);
        assert.equal(await s.takePendingAuthorization('x'), undefined, 'nothing was stored');
      }));

    test('token sets: put, get, overwrite, delete', () =>
      withPort(open, async (s) => {
        assert.equal(await s.getUserTokenSet('alice', 'github'), undefined);
        await s.putUserTokenSet('alice', 'github', '{"v":1}', T0);
        assert.equal(await s.getUserTokenSet('alice', 'github'), '{"v":1}');
        await s.putUserTokenSet('alice', 'github', '{"v":2}', T0 + 5);
        assert.equal(await s.getUserTokenSet('alice', 'github'), '{"v":2}');
        assert.deepEqual(await s.listUserTokenSets(), [{ user: 'alice', provider: 'github', updatedAt: T0 + 5 }], 'replaced in place');
        assert.equal(await s.deleteUserTokenSet('alice', 'github'), true);
        assert.equal(await s.deleteUserTokenSet('alice', 'github'), false, 'deleting an absent set is not an error');
        assert.equal(await s.getUserTokenSet('alice', 'github'), undefined);
      }));

    test('token sets are isolated between users and between providers', () =>
      withPort(open, async (s) => {
        await s.putUserTokenSet('alice', 'github', 'a-gh', T0);
        await s.putUserTokenSet('alice', 'google', 'a-go', T0);
        await s.putUserTokenSet('bob', 'github', 'b-gh', T0);
        // Names that would collide under a naive "user:provider" key.
        await s.putUserTokenSet('a:b', 'c', 'x1', T0);
        await s.putUserTokenSet('a', 'b:c', 'x2', T0);
        assert.equal(await s.getUserTokenSet('alice', 'github'), 'a-gh');
        assert.equal(await s.getUserTokenSet('alice', 'google'), 'a-go');
        assert.equal(await s.getUserTokenSet('bob', 'github'), 'b-gh');
        assert.equal(await s.getUserTokenSet('bob', 'google'), undefined);
        assert.equal(await s.getUserTokenSet('a:b', 'c'), 'x1');
        assert.equal(await s.getUserTokenSet('a', 'b:c'), 'x2');
        assert.equal(await s.deleteUserTokenSet('alice', 'github'), true);
        assert.equal(await s.getUserTokenSet('alice', 'google'), 'a-go', 'another provider of the user is kept');
        assert.equal(await s.getUserTokenSet('bob', 'github'), 'b-gh', 'another user of the provider is kept');
      }));

    test('listUserTokenSets: metadata only, filtered by user and provider, ordered, limited', () =>
      withPort(open, async (s) => {
        await s.putUserTokenSet('bob', 'github', 'SEALED-1', T0 + 1);
        await s.putUserTokenSet('alice', 'google', 'SEALED-2', T0 + 2);
        await s.putUserTokenSet('alice', 'github', 'SEALED-3', T0 + 3);
        const all = await s.listUserTokenSets();
        assert.deepEqual(all, [
          { user: 'alice', provider: 'github', updatedAt: T0 + 3 },
          { user: 'alice', provider: 'google', updatedAt: T0 + 2 },
          { user: 'bob', provider: 'github', updatedAt: T0 + 1 },
        ]);
        assert.doesNotMatch(JSON.stringify(all), /SEALED/, 'no sealed value in a listing');
        assert.deepEqual((await s.listUserTokenSets({ user: 'alice' })).map((r) => r.provider), ['github', 'google']);
        assert.deepEqual((await s.listUserTokenSets({ provider: 'github' })).map((r) => r.user), ['alice', 'bob']);
        assert.deepEqual(await s.listUserTokenSets({ user: 'bob', provider: 'google' }), []);
        assert.equal((await s.listUserTokenSets({ limit: 1 })).length, 1);
      }));

    pairTest('two handles: a token set put through one is read and deleted through the other', opts, async (a, b) => {
      await a.putUserTokenSet('alice', 'github', 'sealed', T0);
      assert.equal(await b.getUserTokenSet('alice', 'github'), 'sealed');
      assert.equal(await b.deleteUserTokenSet('alice', 'github'), true);
      assert.equal(await a.getUserTokenSet('alice', 'github'), undefined);
    });

    closedTest(open, [
      (s) => s.putPendingAuthorization(pending('z'), LIMITS),
      (s) => s.takePendingAuthorization('z'),
      (s) => s.getUserTokenSet('alice', 'github'),
      (s) => s.putUserTokenSet('alice', 'github', 'x', T0),
      (s) => s.deleteUserTokenSet('alice', 'github'),
      (s) => s.listUserTokenSets(),
    ]);
  });
}
