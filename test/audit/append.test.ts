// The audit port after issue 11: the audit module chains, a store adapter only stores rows, and only
// if they extend its tip. Run against the SQLite adapter on its own connection (:memory:) and through
// its audit worker thread (a file store), so the conflict code crosses the thread boundary intact.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { appendAuditEvents, appendChained, assertExtendsTip, tipOf } from '../../src/audit/append.ts';
import { GENESIS_HASH, chainRecords } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditCheckpoint } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;

const cpOver = (seq: number, hash: string): AuditCheckpoint => ({ seq, hash, time: '2026-01-01T00:00:00.000Z', keyId: 'k', signature: 's' });

for (const [name, open] of [
  ['sqlite (:memory:, same connection)', () => openSqliteStore(':memory:')],
  ['sqlite file (audit worker thread)', () => openSqliteStore(join(tmp.dir, `a${n++}.db`))],
] as const) {
  describe(`audit port: ${name}`, () => {
    async function withStore(fn: (s: Store) => Promise<void>): Promise<void> {
      const s = await open();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    }

    test('stores chained rows and their checkpoints in one transaction; readAudit returns them exactly', () =>
      withStore(async (s) => {
        const records = chainRecords(undefined, [sampleEvent(1), sampleEvent(2)]);
        await s.appendAuditRecords(records, [cpOver(1, records[0]!.hash)]);
        assert.deepEqual(await s.readAudit(1, 10), records);
        assert.deepEqual(await s.listCheckpoints(), [cpOver(1, records[0]!.hash)]);
      }));

    test('rows that do not extend the tip are refused with ERR_AUDIT_CONFLICT, storing nothing (no checkpoint either)', () =>
      withStore(async (s) => {
        const first = chainRecords(undefined, [sampleEvent(1)]);
        await s.appendAuditRecords(first, []);
        // Chained onto a stale tip (the empty chain): seq 1 again.
        const stale = chainRecords(undefined, [sampleEvent(2)]);
        await assert.rejects(s.appendAuditRecords(stale, [cpOver(1, stale[0]!.hash)]), (err: unknown) => isBastionError(err, 'ERR_AUDIT_CONFLICT'));
        // Right seq, wrong prevHash (a fork).
        const fork = chainRecords({ seq: 1, hash: 'f'.repeat(64) }, [sampleEvent(3)]);
        await assert.rejects(s.appendAuditRecords(fork, []), (err: unknown) => isBastionError(err, 'ERR_AUDIT_CONFLICT'));
        assert.equal((await s.lastAudit())?.seq, 1);
        assert.deepEqual(await s.listCheckpoints(), []);
      }));

    test('records that are not consecutive are TypeError and nothing is stored', () =>
      withStore(async (s) => {
        const records = chainRecords(undefined, [sampleEvent(1), sampleEvent(2), sampleEvent(3)]);
        await assert.rejects(s.appendAuditRecords([records[0]!, records[2]!], []), TypeError);
        assert.equal(await s.lastAudit(), undefined);
      }));

    test('appendChained retries on a conflict: two writers racing from the same stale tip both land, one chain', () =>
      withStore(async (s) => {
        const tip = tipOf(await s.lastAudit());
        const a = appendChained(s, [sampleEvent(1), sampleEvent(2)], { tip });
        const b = appendChained(s, [sampleEvent(3)], { tip });
        const [ra, rb] = await Promise.all([a, b]);
        assert.deepEqual([...ra.records, ...rb.records].map((r) => r.seq).sort(), [1, 2, 3]);
        const v = await verifyAudit(s, { checkpointEvery: 1_000_000 });
        // No checkpoint was written, so only the density rule fails: the hash chain itself is whole.
        assert.equal(v.ok ? 'ok' : v.reason, 'checkpoint_missing');
      }));

    test('appendAuditEvents (CLI admin records) then an audit log: the log signs the positions and the store verifies', () =>
      withStore(async (s) => {
        assert.deepEqual(await appendAuditEvents(s, []), []);
        await appendAuditEvents(s, [sampleEvent(1), sampleEvent(2)]);
        const log = await AuditLog.open(s, { checkpointEvery: 2 });
        await log.append(sampleEvent(3));
        await log.close();
        assert.deepEqual((await s.listCheckpoints()).map((c) => c.seq), [1, 2, 3]);
        assert.equal((await verifyAudit(s, { checkpointEvery: 2 })).ok, true);
      }));
  });
}

test('assertExtendsTip: genesis and a tip; an empty batch is accepted', () => {
  const [r1] = chainRecords(undefined, [sampleEvent(1)]);
  assert.equal(r1!.prevHash, GENESIS_HASH);
  assertExtendsTip(undefined, [r1!]);
  assertExtendsTip({ seq: 7, hash: 'a'.repeat(64) }, []);
  const [r8] = chainRecords({ seq: 7, hash: 'a'.repeat(64) }, [sampleEvent(8)]);
  assertExtendsTip({ seq: 7, hash: 'a'.repeat(64) }, [r8!]);
  assert.throws(() => assertExtendsTip({ seq: 7, hash: 'b'.repeat(64) }, [r8!]), (err: unknown) => isBastionError(err, 'ERR_AUDIT_CONFLICT'));
  assert.throws(() => assertExtendsTip(undefined, [r8!]), (err: unknown) => isBastionError(err, 'ERR_AUDIT_CONFLICT'));
});

test('verifyAudit on a live store: an audit log appending meanwhile (another thread) never makes it report a false gap', async () => {
  const path = join(tmp.dir, 'live.db');
  await (await openSqliteStore(path)).close();
  const worker = new Worker(new URL('./live-writer.ts', import.meta.url), { workerData: { path, every: 3 } });
  // A failed or timed-out test must not leave the writer holding the test process open.
  worker.unref();
  const messages: unknown[] = [];
  const next = (): Promise<unknown> => new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  messages.push(await next());
  const store = await openSqliteStore(path, { auditWorker: false });
  try {
    let verified = 0;
    for (let k = 0; k < 20; k++) {
      const v = await verifyAudit(store, { checkpointEvery: 3, pageSize: 5 });
      assert.equal(v.ok, true, v.ok ? '' : `${v.reason} at ${v.seq}: ${v.message}`);
      if (v.ok) verified = Math.max(verified, v.count);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    assert.ok(verified > 0);
  } finally {
    const done = next();
    worker.postMessage('stop');
    messages.push(await done);
    await store.close();
  }
  assert.equal(typeof messages[1], 'number');
  await worker.terminate();
});
