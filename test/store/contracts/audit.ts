/**
 * The AuditStore contract (src/audit/store.ts): a gapless chain stored exactly
 * as appended, checkpoints ascending. The compare-and-append rule of
 * `appendAuditRecords` (ERR_AUDIT_CONFLICT, nothing stored) is tested in
 * test/audit/append.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyChain } from '../../../src/audit/chain.ts';
import type { AuditStore } from '../../../src/audit/store.ts';
import type { AuditCheckpoint } from '../../../src/audit/types.ts';
import { sampleEvent } from '../../audit/fixtures.ts';
import { closedTest, pairTest, T0, withPort, type ContractOptions, type PortFactory } from './harness.ts';

/** Runs the AuditStore contract against implementations made by `open` (each call a fresh, empty store). */
export function runAuditStoreContract(name: string, open: PortFactory<AuditStore>, opts: ContractOptions<AuditStore> = {}): void {
  describe(`AuditStore contract: ${name}`, () => {
    test('an empty chain', () =>
      withPort(open, async (s) => {
        assert.equal(await s.lastAudit(), undefined);
        assert.deepEqual(await s.readAudit(1, 10), []);
        assert.deepEqual(await s.appendAudit([]), []);
        assert.deepEqual(await s.listCheckpoints(), []);
      }));

    test('appendAudit chains gapless records and readAudit returns them exactly', () =>
      withPort(open, async (s) => {
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
      withPort(open, async (s) => {
        const [r] = await s.appendAudit([sampleEvent(1, { session: undefined, target: undefined, args: { a: [1, 'x', null] } })]);
        assert.deepEqual(await s.readAudit(1, 1), [r]);
      }));

    test('a batch with a non-JSON event is rejected as a whole', () =>
      withPort(open, async (s) => {
        await s.appendAudit([sampleEvent(1)]);
        await assert.rejects(s.appendAudit([sampleEvent(2), sampleEvent(3, { detail: { n: 1n } })]), TypeError);
        assert.equal((await s.lastAudit())?.seq, 1);
        assert.equal((await s.appendAudit([sampleEvent(4)]))[0]!.seq, 2);
      }));

    test('readAudit rejects a bad limit with RangeError', () =>
      withPort(open, async (s) => {
        await assert.rejects(s.readAudit(1, -1), RangeError);
        await assert.rejects(s.readAudit(1, 1.5), RangeError);
      }));

    test('checkpoints are listed ascending by seq', () =>
      withPort(open, async (s) => {
        const cp = (seq: number): AuditCheckpoint => ({ seq, hash: 'h'.repeat(64), time: new Date(T0).toISOString(), keyId: 'k1', signature: `sig${seq}` });
        await s.appendCheckpoint(cp(20));
        await s.appendCheckpoint(cp(10));
        await s.appendCheckpoint(cp(30));
        assert.deepEqual(await s.listCheckpoints(), [cp(10), cp(20), cp(30)]);
      }));

    pairTest('two handles on one store, interleaved appends: one gapless chain', opts, async (a, b) => {
      const writes = [];
      for (let i = 0; i < 100; i++) {
        writes.push((i % 2 ? a : b).appendAudit([sampleEvent(i), sampleEvent(i + 1000)]));
      }
      await Promise.all(writes);
      // The hash chain only: appendAudit writes no checkpoint (the audit log's density rule is tested in test/audit).
      const result = await verifyChain(await a.readAudit(1, 1000), [], new Map());
      assert.deepEqual(result, { ok: true, count: 200, lastSeq: 200, checkpoints: 0 });
    });

    closedTest(open, [(s) => s.lastAudit(), (s) => s.readAudit(1, 1), (s) => s.listCheckpoints()]);
  });
}
