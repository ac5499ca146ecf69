import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { checkpointPayload } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditCheckpoint, AuditRecord } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { generateEd25519, keyIdOf, signEd25519 } from '../../src/util/crypto.ts';
import { expectBroken, sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshPath = (): string => join(tmp.dir, `db${n++}.sqlite`);
const fixedNow = () => new Date('2026-01-01T00:00:00.000Z');

/** A store wrapper counting calls and optionally failing them. */
function instrument(store: Store) {
  const counts = { appendAuditRecords: 0, appendCheckpoint: 0 };
  const failures = { appendAuditRecords: 0, appendCheckpoint: 0 };
  const wrapped: Store = Object.create(store) as Store;
  Object.assign(wrapped, {
    appendAuditRecords: async (records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]) => {
      counts.appendAuditRecords++;
      if (failures.appendAuditRecords > 0) {
        failures.appendAuditRecords--;
        throw new Error('disk full');
      }
      return store.appendAuditRecords(records, checkpoints);
    },
    appendCheckpoint: async (cp: Parameters<Store['appendCheckpoint']>[0]) => {
      counts.appendCheckpoint++;
      if (failures.appendCheckpoint > 0) {
        failures.appendCheckpoint--;
        throw new Error('disk full');
      }
      return store.appendCheckpoint(cp);
    },
  });
  for (const name of ['readAudit', 'lastAudit', 'listCheckpoints', 'getKey', 'listKeys', 'putKey', 'close'] as const) {
    (wrapped as unknown as Record<string, unknown>)[name] = (store[name] as (...a: unknown[]) => unknown).bind(store);
  }
  return { store: wrapped, counts, failures };
}

/** Appends `count` events in batches of `batch` awaited one after another. */
async function appendMany(log: AuditLog, count: number, batch: number, start = 1): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (let i = 0; i < count; i += batch) {
    const size = Math.min(batch, count - i);
    out.push(...(await Promise.all(Array.from({ length: size }, (_, k) => log.append(sampleEvent(start + i + k))))));
  }
  return out;
}

test('1000 concurrent appends verify ok, through the SQLite store', async () => {
  const store = await openSqliteStore(freshPath());
  const log = await AuditLog.open(store, { checkpointEvery: 256 });
  const records = await Promise.all(Array.from({ length: 1000 }, (_, i) => log.append(sampleEvent(i + 1))));
  assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 1000 }, (_, i) => i + 1));
  await log.close();
  const result = await verifyAudit(store);
  assert.equal(result.ok, true);
  if (result.ok) assert.equal(result.count, 1000);
  await store.close();
});

test('group commit: 500 concurrent appends are gapless and take fewer than 500 transactions', async () => {
  const inner = await openSqliteStore(freshPath());
  const { store, counts } = instrument(inner);
  const log = await AuditLog.open(store, { checkpointEvery: 10_000 });
  const records = await Promise.all(Array.from({ length: 500 }, (_, i) => log.append(sampleEvent(i))));
  assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 500 }, (_, i) => i + 1));
  assert.ok(counts.appendAuditRecords < 500, `appendAuditRecords called ${counts.appendAuditRecords} times`);
  assert.ok(counts.appendAuditRecords >= 1);
  // Each caller gets its own event back.
  for (let i = 0; i < 500; i++) assert.equal(records[i]!.detail?.['n'], i);
  await log.close();
  await inner.close();
});

test('group commit: appends arriving while a batch commits form the next batch', async () => {
  const inner = await openSqliteStore(freshPath());
  const { store, counts } = instrument(inner);
  const log = new AuditLog(store, { checkpointEvery: 10_000, maxBatch: 100 });
  const all = await Promise.all(Array.from({ length: 350 }, (_, i) => log.append(sampleEvent(i))));
  assert.equal(counts.appendAuditRecords, 4, 'batches of at most maxBatch');
  assert.equal(all.at(-1)?.seq, 350);
  await inner.close();
});

test('checkpoints: over seq 1 and every multiple of checkpointEvery (whatever the batches), and on close', async () => {
  const store = await openSqliteStore(freshPath());
  const log = await AuditLog.open(store, { checkpointEvery: 10, now: fixedNow });
  for (let i = 1; i <= 25; i++) await log.append(sampleEvent(i));
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20]);
  // A batch not reaching a multiple writes none; one spanning a multiple checkpoints the multiple, not its last record.
  await appendMany(log, 4, 4, 26);
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20]);
  await appendMany(log, 8, 8, 30);
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20, 30]);
  // A batch larger than checkpointEvery checkpoints every multiple inside it.
  await appendMany(log, 25, 25, 38);
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20, 30, 40, 50, 60]);
  await log.close();
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20, 30, 40, 50, 60, 62], 'close: the newest record');
  await log.close().catch(() => undefined);
  const log2 = await AuditLog.open(store, { checkpointEvery: 10, now: fixedNow });
  assert.equal(await log2.checkpoint(), undefined, 'already checkpointed');
  await log2.append(sampleEvent(63));
  const cp = await log2.checkpoint();
  assert.equal(cp?.seq, 63);
  assert.equal(cp?.time, '2026-01-01T00:00:00.000Z');
  const key = await store.getKey('audit');
  assert.equal(cp?.keyId, keyIdOf(key!.publicKeyPem));
  assert.deepEqual(await verifyAudit(store, { checkpointEvery: 10 }), { ok: true, count: 63, lastSeq: 63, checkpoints: 9 });
  await store.close();
});

test('records appended without a checkpoint (CLI admin commands) get their positions signed when the log opens or commits', async () => {
  const store = await openSqliteStore(freshPath());
  // Before any gateway ran: the CLI appends 12 records, no checkpoint.
  await store.appendAudit(Array.from({ length: 12 }, (_, i) => sampleEvent(i + 1)));
  expectBroken(await verifyAudit(store, { checkpointEvery: 10 }), 11, 'checkpoint_gap');
  const log = await AuditLog.open(store, { checkpointEvery: 10 });
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10]);
  // While it runs, another writer moves the tip across position 20: the log's next batch signs it in its transaction.
  await log.append(sampleEvent(13));
  await store.appendAudit(Array.from({ length: 9 }, (_, i) => sampleEvent(i + 14)));
  await log.append(sampleEvent(23));
  assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 10, 20]);
  assert.deepEqual(await verifyAudit(store, { checkpointEvery: 10 }), { ok: true, count: 23, lastSeq: 23, checkpoints: 3 });
  await log.close();
  await store.close();
});

test('checkpoint() on an empty chain writes nothing', async () => {
  const store = await openSqliteStore(':memory:');
  const log = await AuditLog.open(store, { checkpointEvery: 10 });
  assert.equal(await log.checkpoint(), undefined);
  await log.close();
  assert.deepEqual(await store.listCheckpoints(), []);
  await store.close();
});

test('AuditLog.open creates one audit key and reuses it', async () => {
  const store = await openSqliteStore(':memory:');
  await AuditLog.open(store, { checkpointEvery: 10 });
  const first = await store.getKey('audit');
  assert.equal(first?.alg, 'Ed25519');
  assert.equal(first?.id, keyIdOf(first!.publicKeyPem));
  await AuditLog.open(store, { checkpointEvery: 10 });
  assert.equal((await store.listKeys('audit')).length, 1);
  await store.close();
});

test('invalid options are RangeError', async () => {
  const store = await openSqliteStore(':memory:');
  assert.throws(() => new AuditLog(store, { checkpointEvery: 0 }), RangeError);
  assert.throws(() => new AuditLog(store, { checkpointEvery: 1.5 }), RangeError);
  assert.throws(() => new AuditLog(store, { checkpointEvery: 1, maxBatch: 0 }), RangeError);
  await store.close();
});

test('a failed write rejects every caller in the batch with ERR_AUDIT_WRITE; the log recovers', async () => {
  const inner = await openSqliteStore(':memory:');
  const { store, failures } = instrument(inner);
  const log = await AuditLog.open(store, { checkpointEvery: 100 });
  failures.appendAuditRecords = 1;
  const settled = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => log.append(sampleEvent(i))));
  for (const s of settled) {
    assert.equal(s.status, 'rejected');
    if (s.status === 'rejected') assert.ok(isBastionError(s.reason, 'ERR_AUDIT_WRITE'));
  }
  assert.equal((await log.append(sampleEvent(9))).seq, 1);
  await inner.close();
});

test('a non-JSON event fails alone, not its batch; the event is snapshotted at append', async () => {
  const store = await openSqliteStore(':memory:');
  const log = await AuditLog.open(store, { checkpointEvery: 100 });
  const event = { ...sampleEvent(1), detail: { n: 1 } };
  const results = await Promise.allSettled([
    log.append(event),
    log.append(sampleEvent(2, { detail: { big: 10n } })),
    log.append(sampleEvent(3)),
  ]);
  (event.detail as { n: number }).n = 999;
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  if (results[1].status === 'rejected') assert.ok(isBastionError(results[1].reason, 'ERR_AUDIT_WRITE'));
  assert.equal(results[2].status, 'fulfilled');
  assert.deepEqual((await store.readAudit(1, 10)).map((r) => [r.seq, r.detail?.['n']]), [[1, 1], [2, 3]]);
  await store.close();
});

test('a position checkpoint is committed with its record: a failed transaction leaves neither, and the retry writes both', async () => {
  const inner = await openSqliteStore(':memory:');
  const { store, failures } = instrument(inner);
  const log = await AuditLog.open(store, { checkpointEvery: 5 });
  await appendMany(log, 4, 4);
  failures.appendAuditRecords = 1;
  await assert.rejects(log.append(sampleEvent(5)), (err) => isBastionError(err, 'ERR_AUDIT_WRITE'));
  assert.equal((await inner.lastAudit())?.seq, 4);
  assert.deepEqual((await inner.listCheckpoints()).map((c) => c.seq), [1]);
  await log.append(sampleEvent(6));
  assert.deepEqual((await inner.listCheckpoints()).map((c) => c.seq), [1, 5]);
  assert.equal((await verifyAudit(inner, { checkpointEvery: 5 })).ok, true);
  await inner.close();
});

test('append after close rejects with ERR_AUDIT_WRITE', async () => {
  const store = await openSqliteStore(':memory:');
  const log = await AuditLog.open(store, { checkpointEvery: 5 });
  await log.close();
  await assert.rejects(log.append(sampleEvent(1)), (err) => isBastionError(err, 'ERR_AUDIT_WRITE'));
  await store.close();
});

test('subscribe: committed records in order; a throwing subscriber is isolated; unsubscribe stops', async () => {
  const store = await openSqliteStore(':memory:');
  const log = await AuditLog.open(store, { checkpointEvery: 100 });
  const seen: number[] = [];
  const off = log.subscribe((r) => seen.push(r.seq));
  log.subscribe(() => {
    throw new Error('bad subscriber');
  });
  await Promise.all([log.append(sampleEvent(1)), log.append(sampleEvent(2)), log.append(sampleEvent(3))]);
  off();
  await log.append(sampleEvent(4));
  assert.deepEqual(seen, [1, 2, 3]);
  await store.close();
});

test('two logs in two processes-worth of connections share one chain', async () => {
  const path = freshPath();
  const a = await openSqliteStore(path);
  const b = await openSqliteStore(path);
  const logA = await AuditLog.open(a, { checkpointEvery: 50 });
  const logB = await AuditLog.open(b, { checkpointEvery: 50 });
  await Promise.all([appendMany(logA, 120, 7), appendMany(logB, 120, 11, 1000)]);
  await logA.close();
  await logB.close();
  const result = await verifyAudit(a, { pageSize: 7 });
  assert.equal(result.ok, true);
  if (result.ok) assert.equal(result.count, 240);
  await a.close();
  await b.close();
});

describe('tampering with the SQLite file is detected', () => {
  let template = '';
  let publicKeyPem = '';

  before(async () => {
    template = freshPath();
    const store = await openSqliteStore(template);
    const log = await AuditLog.open(store, { checkpointEvery: 100 });
    await appendMany(log, 1000, 50);
    await log.close();
    publicKeyPem = (await store.getKey('audit'))!.publicKeyPem;
    assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
    await store.close();
  });

  /** A copy of the template, tampered by `sql`, then verified. */
  async function tamper(sql: string, opts: { publicKeyPem?: string } = {}) {
    const path = freshPath();
    copyFileSync(template, path);
    const db = new DatabaseSync(path);
    db.exec(sql);
    db.close();
    const store = await openSqliteStore(path, { create: false });
    try {
      return await verifyAudit(store, opts);
    } finally {
      await store.close();
    }
  }

  test('the untouched copy verifies, also against the exported key', async () => {
    assert.deepEqual(await tamper('SELECT 1'), { ok: true, count: 1000, lastSeq: 1000, checkpoints: 11 });
    assert.equal((await tamper('SELECT 1', { publicKeyPem })).ok, true);
  });

  test('an altered record → hash_mismatch at its seq', async () => {
    expectBroken(await tamper(`UPDATE audit SET json = json_set(json, '$.agent', 'mallory') WHERE seq = 437`), 437, 'hash_mismatch');
    expectBroken(await tamper(`UPDATE audit SET json = replace(json, '"outcome":"ok"', '"outcome":"denied"') WHERE seq = 2`), 2, 'hash_mismatch');
  });

  test('a deleted middle record → seq_gap at its seq', async () => {
    expectBroken(await tamper('DELETE FROM audit WHERE seq = 555'), 555, 'seq_gap');
  });

  test('two records with swapped contents → broken at the first', async () => {
    const result = await tamper(`
      UPDATE audit SET seq = -1 WHERE seq = 300;
      UPDATE audit SET seq = 300 WHERE seq = 301;
      UPDATE audit SET seq = 301 WHERE seq = -1;`);
    expectBroken(result, 300, 'seq_gap');
  });

  test('deleting the last 10 records, covered by the last checkpoint → truncated', async () => {
    expectBroken(await tamper('DELETE FROM audit WHERE seq > 990'), 1000, 'truncated');
  });

  test('deleting records after the last checkpoint is undetectable by construction', async () => {
    const path = freshPath();
    copyFileSync(template, path);
    const store = await openSqliteStore(path);
    await store.appendAudit([sampleEvent(1), sampleEvent(2), sampleEvent(3)]);
    await store.close();
    const db = new DatabaseSync(path);
    db.exec('DELETE FROM audit WHERE seq > 1000');
    db.close();
    const again = await openSqliteStore(path);
    assert.equal((await verifyAudit(again)).ok, true);
    await again.close();
  });

  test('a forged checkpoint signature → checkpoint_signature', async () => {
    const forged = signEd25519(generateEd25519().privateKeyPem, 'anything');
    expectBroken(await tamper(`UPDATE audit_checkpoints SET signature = '${forged}' WHERE seq = 500`), 500, 'checkpoint_signature');
  });

  test('a checkpoint naming a different record hash → checkpoint_signature (the hash is signed)', async () => {
    expectBroken(await tamper(`UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit WHERE seq = 1) WHERE seq = 200`), 200, 'checkpoint_signature');
  });

  test('verification against an unrelated public key fails', async () => {
    const result = await tamper('SELECT 1', { publicKeyPem: generateEd25519().publicKeyPem });
    expectBroken(result, 1, 'checkpoint_key_unknown');
  });

  test('an attacker who rewrites the chain and re-signs with a planted key passes only without the exported key', async () => {
    const path = freshPath();
    copyFileSync(template, path);
    const db = new DatabaseSync(path);
    db.exec('DELETE FROM audit WHERE seq >= 400; DELETE FROM audit_checkpoints WHERE seq >= 400');
    db.close();
    const store = await openSqliteStore(path);
    const attacker = generateEd25519();
    const attackerId = keyIdOf(attacker.publicKeyPem);
    await store.putKey({ id: attackerId, purpose: 'audit', alg: 'Ed25519', ...attacker, createdAt: 0 });
    const last = (await store.lastAudit())!;
    const unsigned = { seq: last.seq, hash: last.hash, time: '2026-01-02T00:00:00.000Z', keyId: attackerId };
    await store.appendCheckpoint({ ...unsigned, signature: signEd25519(attacker.privateKeyPem, checkpointPayload(unsigned)) });
    // The truncation is hidden from a verifier that trusts the store's keys...
    // (the old checkpoints at >= 400 were deleted with the records).
    assert.equal((await verifyAudit(store)).ok, true);
    // ...but not from one holding the exported key.
    expectBroken(await verifyAudit(store, { publicKeyPem }), 399, 'checkpoint_key_unknown');
    await store.close();
  });

  test('a public key argument without a PEM public key is TypeError', async () => {
    const store = await openSqliteStore(template, { create: false });
    await assert.rejects(verifyAudit(store, { publicKeyPem: 'nonsense' }), TypeError);
    await assert.rejects(verifyAudit(store, { publicKeyPem: '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n' }), TypeError);
    await store.close();
  });
});

test('lazy appends share a commit; an urgent append or a flush ends the wait', { timeout: 30_000 }, async () => {
  const store = await openSqliteStore(':memory:');
  let commits = 0;
  const counted = new Proxy(store, {
    get(target, prop) {
      if (prop === 'appendAuditRecords') {
        return (...args: Parameters<typeof store.appendAuditRecords>) => {
          commits++;
          return store.appendAuditRecords(...args);
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  // A linger longer than the test's timeout: only a flush or an urgent append can end the wait.
  const log = await AuditLog.open(counted, { checkpointEvery: 10_000, lazyLingerMs: 3_600_000 });
  // Lazy events appended over several turns land in one batch.
  const lazy = [log.append(sampleEvent(1), { lazy: true })];
  await new Promise((r) => setImmediate(r));
  lazy.push(log.append(sampleEvent(2), { lazy: true }));
  await new Promise((r) => setImmediate(r));
  lazy.push(log.append(sampleEvent(3), { lazy: true }));
  assert.equal(commits, 0, 'lazy events wait');
  await log.flush();
  await Promise.all(lazy);
  assert.equal(commits, 1);
  // An urgent append does not wait for the linger, and carries the lazy one queued before it.
  const queued = log.append(sampleEvent(4), { lazy: true });
  await log.append(sampleEvent(5));
  assert.equal((await queued).seq, 4);
  assert.equal(commits, 2);
  assert.equal((await store.lastAudit())?.seq, 5);
  await log.close();
  await store.close();
});
