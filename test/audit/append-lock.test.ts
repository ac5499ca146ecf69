// Scale test finding: adding `bastion serve` instances on one PostgreSQL store lowered audit throughput and
// raised CPU per request (1.5-2.3x), because compare-and-append made a writer that lost the race re-read the
// tip, chain (hash and sign) its batch again and retry, and a "loser keeps the lock up to 1 s" hack held
// the lock across round trips. Now the PostgreSQL store allocates sequence numbers under its lock
// (`appendUnderLock`): every batch is chained exactly once, onto the tip read under the lock.
// Each test works in its own schema (test/helpers/postgres.ts starts PostgreSQL when it is down).
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import pg from 'pg';
import { appendChained, hasAppendUnderLock, type AuditLockPort, type AuditTip } from '../../src/audit/append.ts';
import { chainRecords } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditEvent } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { LOCK_CLASS_AUDIT, schemaLockKey } from '../../src/store/postgres-migrations.ts';
import { openPostgresStore } from '../../src/store/postgres.ts';
import type { Store } from '../../src/store/store.ts';
import { freshSchema, POSTGRES_URL } from '../helpers/postgres.ts';
import { sampleEvent } from './fixtures.ts';

const drops: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(drops.map((d) => d()));
});

async function schema(): Promise<{ url: string; schema: string }> {
  const s = await freshSchema('alock');
  drops.push(s.drop);
  return s;
}

/** `store` as the lock port (asserting the PostgreSQL store has it). */
function locking(store: Store): Store & AuditLockPort {
  assert.ok(hasAppendUnderLock(store), 'the PostgreSQL store allocates under its lock');
  return store;
}

test('three writers on one PostgreSQL schema: every batch is chained exactly once, and the chain is gapless', async () => {
  const { url } = await schema();
  const stores: Store[] = [];
  for (let i = 0; i < 3; i++) stores.push(await openPostgresStore(url, { poolMax: 3 }));
  const batches = 20;
  let chained = 0;
  const chain = (tip: AuditTip | undefined, events: readonly AuditEvent[]): Promise<ReturnType<typeof chainRecords>> => {
    chained++;
    return Promise.resolve(chainRecords(tip, events));
  };
  try {
    await Promise.all(
      stores.map(async (store, w) => {
        for (let i = 0; i < batches; i++) {
          // A stale tip on purpose (the empty chain): under the lock it does not matter.
          await appendChained(store, [sampleEvent(w * 1000 + i * 2), sampleEvent(w * 1000 + i * 2 + 1)], { tip: undefined, chain });
        }
      }),
    );
    assert.equal(chained, 3 * batches, 'no batch was chained twice (no conflict, no retry)');
    const all = await stores[0]!.readAudit(1, 1000);
    assert.deepEqual(
      all.map((r) => r.seq),
      Array.from({ length: 3 * batches * 2 }, (_, i) => i + 1),
    );
    // Each batch's two records are adjacent: batches never interleave.
    for (let i = 0; i < all.length; i += 2) assert.equal((all[i + 1]!.detail!['n'] as number) - (all[i]!.detail!['n'] as number), 1);
  } finally {
    for (const s of stores) await s.close();
  }
});

test('audit logs of four instances on one schema keep one verifiable chain with position checkpoints', async () => {
  const { url } = await schema();
  const stores: Store[] = [];
  for (let i = 0; i < 4; i++) stores.push(await openPostgresStore(url, { poolMax: 3 }));
  const logs: AuditLog[] = [];
  for (const s of stores) logs.push(await AuditLog.open(s, { checkpointEvery: 8 }));
  try {
    await Promise.all(logs.map(async (log, w) => Promise.all(Array.from({ length: 30 }, (_, i) => log.append(sampleEvent(w * 100 + i))))));
    for (const log of logs) await log.close();
    const result = await verifyAudit(stores[0]!, { checkpointEvery: 8 });
    assert.equal(result.ok, true, JSON.stringify(result));
    assert.ok(result.ok && result.count === 120);
  } finally {
    for (const s of stores) await s.close();
  }
});

test('a writer waiting for the lock is served before the instance that just committed appends again (fairness)', async () => {
  const { url, schema: name } = await schema();
  const [a, b] = [locking(await openPostgresStore(url, { poolMax: 3 })), locking(await openPostgresStore(url, { poolMax: 3 }))];
  const c = new pg.Client({ connectionString: POSTGRES_URL });
  await c.connect();
  const waiting = async (): Promise<boolean> =>
    (await c.query(`SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND classid = $1 AND objid = $2`, [LOCK_CLASS_AUDIT, schemaLockKey(name) >>> 0])).rows
      .length > 0;
  try {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inside = new Promise<void>((r) => (entered = r));
    // a takes the lock and keeps it until released.
    const first = a.appendUnderLock(async (tip) => {
      entered();
      await held;
      return { records: chainRecords(tip, [sampleEvent(1)]), checkpoints: [] };
    });
    await inside;
    const second = b.appendUnderLock(async (tip) => ({ records: chainRecords(tip, [sampleEvent(2)]), checkpoints: [] }));
    // Bounded wait (no timing assertion): b's request reaches the lock queue.
    for (let i = 0; i < 500 && !(await waiting()); i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await waiting(), true, 'b waits for the lock');
    release();
    await first;
    // a, which knows the new tip, appends at once: it queues behind b.
    const third = await a.appendUnderLock(async (tip) => ({ records: chainRecords(tip, [sampleEvent(3)]), checkpoints: [] }));
    assert.equal((await second).records[0]!.seq, 2, "b's batch is seq 2");
    assert.equal(third.records[0]!.seq, 3);
  } finally {
    await c.end();
    await a.close();
    await b.close();
  }
});

test('appendUnderLock: an error of the chain function passes through unchanged and stores nothing; rows that ignore the tip are a TypeError', async () => {
  const { url } = await schema();
  const store = locking(await openPostgresStore(url, { poolMax: 2 }));
  try {
    await store.appendAudit([sampleEvent(1)]);
    await assert.rejects(
      store.appendUnderLock(() => Promise.reject(new RangeError('no key'))),
      (err) => err instanceof RangeError && err.message === 'no key',
    );
    await assert.rejects(
      store.appendUnderLock(() => Promise.resolve({ records: chainRecords(undefined, [sampleEvent(2)]), checkpoints: [] })),
      (err) => err instanceof TypeError && /do not extend the tip/.test(err.message),
    );
    assert.equal((await store.lastAudit())?.seq, 1, 'nothing stored');
    // The lock was released each time: the next append goes through.
    assert.equal((await store.appendAudit([sampleEvent(3)]))[0]?.seq, 2);
    // Compare-and-append stays for the contract: a stale batch is ERR_AUDIT_CONFLICT.
    await assert.rejects(store.appendAuditRecords(chainRecords(undefined, [sampleEvent(4)]), []), (err) => isBastionError(err, 'ERR_AUDIT_CONFLICT'));
  } finally {
    await store.close();
  }
});
