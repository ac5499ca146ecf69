// Issue 14, finding 2: a kill -9 lost 286 batched (network door) records, about 66 ms of traffic, although the
// linger is 5 ms: nothing bounded what was appended but not yet durable, so behind a slow commit the queue kept
// growing, and each batch could carry up to 1000 records of any size. Now the backlog is bounded: past
// `maxPendingRecords`, `AuditStep.batchedBounded` makes its caller wait for durability, and a batch is bounded
// by records and by bytes. Deterministic: the store's commits are held by a gate, and the bound is on counts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditLog, type AuditLogStore } from '../../src/audit/log.ts';
import type { AuditCheckpoint, AuditRecord } from '../../src/audit/types.ts';
import { AuditStep } from '../../src/door/audit-step.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent } from './fixtures.ts';

/** An in-memory store whose commits wait for `release()`, recording each batch's size. */
async function gatedStore(): Promise<{ store: AuditLogStore; batches: number[]; release: () => void; close: () => Promise<void> }> {
  const inner = await openSqliteStore(':memory:');
  let open = false;
  let wake: () => void = () => undefined;
  const gate = (): Promise<void> => (open ? Promise.resolve() : new Promise((resolve) => (wake = resolve)));
  const batches: number[] = [];
  const append = async (records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void> => {
    await gate();
    batches.push(records.length);
    await inner.appendAuditRecords(records, checkpoints);
  };
  const store = new Proxy(inner, {
    get(target, key) {
      if (key === 'appendAuditRecords') return append;
      const value: unknown = Reflect.get(target, key);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return {
    store,
    batches,
    release: () => {
      open = true;
      wake();
    },
    close: () => inner.close(),
  };
}

/** Event-loop turns until `done()` holds (at most `max`); a deterministic wait, not a timed one. */
async function turnsUntil(done: () => boolean, max = 20_000): Promise<void> {
  for (let i = 0; i < max && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
}

test('behind a stalled commit, the backlog stops at the bound plus one record per waiting caller; all are stored after', async () => {
  const BOUND = 8;
  const CLIENTS = 5;
  const CALLS = 40;
  const gated = await gatedStore();
  const log = await AuditLog.open(gated.store, { checkpointEvery: 1000, maxPendingRecords: BOUND });
  const step = new AuditStep(log);
  let maxBacklog = 0;
  log.observe({ appended: () => (maxBacklog = Math.max(maxBacklog, log.backlog)) });
  let done = 0;
  let n = 0;
  const clients = Array.from({ length: CLIENTS }, async () => {
    for (let i = 0; i < CALLS; i++) {
      await step.batchedBounded(sampleEvent(++n));
      done++;
    }
  });
  await turnsUntil(() => log.backlog >= BOUND + CLIENTS);
  // Many more turns: nothing more gets in while the commit is stalled.
  await turnsUntil(() => false, 200);
  assert.equal(log.backlog, BOUND + CLIENTS);
  assert.equal(done, BOUND, 'the callers past the bound are waiting for durability');
  gated.release();
  await Promise.all(clients);
  await log.close();
  assert.ok(maxBacklog <= BOUND + CLIENTS, `backlog reached ${maxBacklog}`);
  assert.equal((await gated.store.lastAudit())!.seq, CLIENTS * CALLS);
  assert.equal(step.failures.batched, 0);
  await gated.close();
});

test('without waiting callers (batched), the records are still all kept: the bound only stops the wait, never drops', async () => {
  const gated = await gatedStore();
  const log = await AuditLog.open(gated.store, { checkpointEvery: 1000, maxPendingRecords: 4 });
  const step = new AuditStep(log);
  for (let i = 1; i <= 50; i++) step.batched(sampleEvent(i));
  await turnsUntil(() => false, 50);
  assert.equal(log.backlog, 50);
  gated.release();
  await log.close();
  assert.equal((await gated.store.lastAudit())!.seq, 50);
  await gated.close();
});

test('a batch holds at most maxBatch records and maxBatchBytes of events; one larger event goes alone', async () => {
  const gated = await gatedStore();
  const log = await AuditLog.open(gated.store, { checkpointEvery: 1000, maxBatch: 6, maxBatchBytes: 4096, maxPendingRecords: 10_000 });
  const pad = (bytes: number): Record<string, unknown> => ({ pad: 'x'.repeat(bytes) });
  const appends: Promise<unknown>[] = [];
  // Small events first (count-bound: 6 per batch), then ~1 KiB events (byte-bound: 3 per batch), then one of 8 KiB.
  for (let i = 1; i <= 12; i++) appends.push(log.append(sampleEvent(i), { lazy: true }));
  for (let i = 13; i <= 18; i++) appends.push(log.append(sampleEvent(i, { detail: pad(1000) }), { lazy: true }));
  appends.push(log.append(sampleEvent(19, { detail: pad(8192) }), { lazy: true }));
  gated.release();
  await Promise.all(appends);
  await log.close();
  assert.deepEqual(gated.batches, [6, 6, 3, 3, 1]);
  await gated.close();
});
