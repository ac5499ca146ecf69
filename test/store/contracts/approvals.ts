/**
 * The ApprovalStore contract (src/approvals/store.ts): approvals bound to
 * agent, end user, tool and digest; every transition is won by exactly one
 * caller, so a grant is single use.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ApprovalRecord, ApprovalStore } from '../../../src/approvals/store.ts';
import { isBastionError } from '../../../src/errors.ts';
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

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

const approve = (at: number, claimUntil = at + 600_000) => ({ status: 'approved' as const, by: 'admin', reason: 'ok', at, claimUntil });
const denyIt = (at: number) => ({ status: 'denied' as const, by: 'admin', reason: 'no', at, claimUntil: at });

/** Runs the ApprovalStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runApprovalStoreContract(name: string, open: PortFactory<ApprovalStore>, opts: ContractOptions<ApprovalStore> = {}): void {
  describe(`ApprovalStore contract: ${name}`, () => {
    test('create, get, list newest first with status filter and limit', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        await s.createApproval(approval('a1'));
        await assert.rejects(s.createApproval(approval('a1')), (err) => isBastionError(err, 'ERR_STORE'));
      }));

    test('findPendingApproval matches agent, tool, digest and deadline exactly', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        await s.createApproval(approval('a1'));
        assert.equal(await s.decideApproval('a1', denyIt(T0 + 5)), true);
        const a1 = await s.getApproval('a1');
        assert.equal(a1?.status, 'denied');
        assert.equal(a1?.expiresAt, T0 + 120_000);
      }));

    test('concurrent decisions: exactly one wins', () =>
      withPort(open, async (s) => {
        await s.createApproval(approval('a1'));
        const results = await Promise.all(
          Array.from({ length: 10 }, (_, i) => s.decideApproval('a1', i % 2 ? approve(T0 + i) : denyIt(T0 + i))),
        );
        assert.equal(results.filter(Boolean).length, 1);
      }));

    test('consumeApproval is single use, also under concurrent calls', () =>
      withPort(open, async (s) => {
        await s.createApproval(approval('a1'));
        assert.equal(await s.consumeApproval('a1', T0), false, 'pending cannot be consumed');
        await s.decideApproval('a1', approve(T0 + 1, T0 + 1000));
        const results = await Promise.all(Array.from({ length: 20 }, () => s.consumeApproval('a1', T0 + 2)));
        assert.equal(results.filter(Boolean).length, 1);
        assert.equal((await s.getApproval('a1'))?.status, 'used');
        assert.equal(await s.consumeApproval('a1', T0 + 3), false);
      }));

    test('consumeApproval refuses an expired or denied approval', () =>
      withPort(open, async (s) => {
        await s.createApproval(approval('a1'));
        await s.createApproval(approval('a2'));
        await s.decideApproval('a1', approve(T0 + 1, T0 + 1000));
        await s.decideApproval('a2', denyIt(T0 + 1));
        assert.equal(await s.consumeApproval('a1', T0 + 1000), false);
        assert.equal(await s.consumeApproval('a2', T0 + 2), false);
        assert.equal(await s.consumeApproval('missing', T0), false);
      }));

    test('claimApproval respects agent, tool, digest and expiry, and takes the oldest one only', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        for (let i = 0; i < 3; i++) {
          await s.createApproval(approval(`a${i}`, { createdAt: T0 + i }));
          await s.decideApproval(`a${i}`, approve(T0 + 10));
        }
        const results = await Promise.all(Array.from({ length: 10 }, () => s.claimApproval('demo', null, 'fs__write_file', 'd'.repeat(64), T0 + 20)));
        const ids = results.filter((r) => r !== undefined).map((r) => r.id);
        assert.deepEqual(ids.sort(), ['a0', 'a1', 'a2']);
      }));

    test('expireApproval only expires a pending approval; expire vs decide: exactly one wins', () =>
      withPort(open, async (s) => {
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

    pairTest('two handles: an approval consumed through one cannot be consumed or claimed through the other', opts, async (a, b) => {
      const T = 1_000_000;
      await a.createApproval({
        id: 'x', agent: 'demo', user: null, tool: 't', argsDigest: 'd', argsPreview: '{}', status: 'pending',
        createdAt: T, expiresAt: T + 10, decidedAt: null, decidedBy: null, reason: null,
      });
      assert.equal(await b.decideApproval('x', { status: 'approved', by: 'admin', reason: null, at: T + 1, claimUntil: T + 100 }), true);
      const results = await Promise.all([a.consumeApproval('x', T + 2), b.consumeApproval('x', T + 2), a.claimApproval('demo', null, 't', 'd', T + 2)]);
      assert.equal(results.filter((r) => r === true || (typeof r === 'object' && r !== undefined)).length, 1);
    });

    closedTest(open, [(s) => s.getApproval('x'), (s) => s.listApprovals(), (s) => s.createApproval(approval('c'))]);
  });
}
