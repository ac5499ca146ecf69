/**
 * The AuditPrunePort contract (src/audit/retention-store.ts) with the prune
 * above it (src/audit/prune.ts): after pruning, `verifyAudit` passes; tampering
 * with the pruned region (tombstones, the prefix, the manifest) fails it. Run
 * by test/store/audit-retention-sqlite.test.ts and -postgres.test.ts, with raw
 * access to the audit table to tamper with.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chainRecord } from '../../../src/audit/chain.ts';
import { FileWitness, readWitnessFile } from '../../../src/audit/witness.ts';
import { AuditLog, verifyAudit } from '../../../src/audit/log.ts';
import { pruneAudit } from '../../../src/audit/prune.ts';
import { isTombstone, type AuditRow, type RetentionPolicy } from '../../../src/audit/retention.ts';
import type { AuditEvent } from '../../../src/audit/types.ts';
import { isBastionError } from '../../../src/errors.ts';
import type { Store } from '../../../src/store/store.ts';
import { expectBroken, sampleEvent } from '../../audit/fixtures.ts';

/** Raw access to a store's audit table, bypassing the store (the attacker's view). */
export interface RawAudit {
  /** Replaces the stored JSON of the row at `seq` (the hash column is left). */
  setJson(seq: number, json: string): Promise<void>;
  /** Deletes the row at `seq`. */
  remove(seq: number): Promise<void>;
  close(): Promise<void>;
}

/** A fresh, empty store and raw access to it. */
export type RetentionFactory = () => Promise<{ readonly store: Store; readonly raw: RawAudit }>;

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);
const POLICY: RetentionPolicy = { allows: 30 * DAY, denials: 90 * DAY, system: 365 * DAY };
const EVERY = 4;

function at(i: number, daysAgo: number, denied = false): AuditEvent {
  const base = sampleEvent(i * 2 + 1);
  return {
    ...base,
    time: new Date(NOW - daysAgo * DAY + i).toISOString(),
    decision: denied ? { effect: 'deny', reason: 'policy.forbid', rule: 'p' } : { effect: 'allow', reason: 'policy.permit', rule: 'p' },
    outcome: denied ? 'denied' : 'ok',
  };
}

/**
 * Records 1-6 allows 40 days old, 7 a denial 40 days old, 8-10 allows 40 days
 * old, 11 a denial 40 days old, 12-14 allows a day old; checkpoints every 4 and
 * on close (14).
 */
async function seed(store: Store): Promise<void> {
  const log = await AuditLog.open(store, { checkpointEvery: EVERY });
  for (let i = 1; i <= 14; i++) await log.append(at(i, i <= 11 ? 40 : 1, i === 7 || i === 11));
  await log.close();
}

async function prune(store: Store, now = NOW, dryRun = false): Promise<Awaited<ReturnType<typeof pruneAudit>>> {
  const log = await AuditLog.open(store, { checkpointEvery: EVERY });
  try {
    return await pruneAudit(store, { policy: POLICY, sign: await log.checkpointSigner(), checkpointEvery: EVERY, now: new Date(now), dryRun });
  } finally {
    await log.close();
  }
}

async function rows(store: Store): Promise<AuditRow[]> {
  return (await store.readAudit(1, 1000)) as AuditRow[];
}

/** Runs the retention contract against stores made by `open`. */
export function runAuditRetentionContract(name: string, open: RetentionFactory): void {
  const withPruned = (fn: (store: Store, raw: RawAudit) => Promise<void>) => async () => {
    const { store, raw } = await open();
    try {
      await seed(store);
      const r = await prune(store);
      assert.equal(r.changed, true);
      await fn(store, raw);
    } finally {
      await raw.close();
      await store.close();
    }
  };

  describe(`AuditPrunePort contract: ${name}`, () => {
    test('a prune deletes the expired prefix, tombstones expired records above it, and verify passes', withPruned(async (store) => {
      const all = await rows(store);
      assert.deepEqual(all.map((r) => r.seq), [7, 8, 9, 10, 11, 12, 13, 14, 15]);
      assert.deepEqual(all.filter(isTombstone).map((t) => [t.seq, t.tombstone]), [[8, 'allows'], [9, 'allows'], [10, 'allows']]);
      const t = all.find(isTombstone)!;
      assert.deepEqual(Object.keys(t).sort(), ['door', 'hash', 'prevHash', 'seq', 'time', 'tombstone']);
      const manifest = all.at(-1)!;
      assert.ok(!isTombstone(manifest));
      assert.equal(manifest.method, 'audit.pruned');
      assert.equal(manifest.door, 'system');
      assert.equal(manifest.detail?.['through'], 6);
      assert.deepEqual(manifest.detail?.['deleted'], { allows: 6 });
      assert.deepEqual(manifest.detail?.['tombstoned'], { allows: 3 });
      assert.equal(manifest.detail?.['head'], all[0]!.prevHash);
      // The signed checkpoint over the manifest was stored with it; those of the deleted prefix are gone.
      const cps = await store.listCheckpoints();
      assert.ok(cps.some((c) => c.seq === 15 && c.hash === manifest.hash));
      assert.ok(cps.every((c) => c.seq > 6));
      assert.deepEqual(await verifyAudit(store, { checkpointEvery: EVERY }), { ok: true, count: 9, lastSeq: 15, checkpoints: cps.length });
    }));

    test('a second prune at the same time changes nothing; a later one extends the prefix and still verifies', withPruned(async (store) => {
      const again = await prune(store);
      assert.equal(again.changed, false);
      assert.equal((await store.lastAudit())?.seq, 15);
      const later = await prune(store, NOW + 60 * DAY);
      assert.equal(later.changed, true);
      assert.equal(later.through, 14);
      const all = await rows(store);
      // The first manifest (system, 365 days) stays; the second vouches for the new prefix.
      assert.deepEqual(all.map((r) => r.seq), [15, 16]);
      assert.equal((await verifyAudit(store, { checkpointEvery: EVERY })).ok, true);
      // Appends go on after pruning.
      await store.appendAudit([at(99, 0)]);
      const log = await AuditLog.open(store, { checkpointEvery: EVERY });
      await log.close();
      assert.equal((await verifyAudit(store, { checkpointEvery: EVERY })).ok, true);
    }));

    test('the store refuses a stale plan with ERR_AUDIT_CONFLICT and changes nothing', withPruned(async (store) => {
      const before = await rows(store);
      const cps = await store.listCheckpoints();
      const tomb = before.find(isTombstone)!;
      const stale = [
        // Planned before the first prune: the first record has moved since.
        { firstSeq: 1, scannedTip: 14, tombstones: [] },
        // Planned before another prune's manifest (seq 15) was appended.
        { firstSeq: 7, scannedTip: 14, tombstones: [] },
        // A row that is a tombstone already (another prune made it).
        { firstSeq: 7, scannedTip: 15, tombstones: [tomb] },
      ];
      for (const plan of stale) {
        await assert.rejects(
          store.pruneAudit((tip) => ({ records: [chainRecord(tip, at(50, 0))], checkpoints: [], through: 0, ...plan })),
          (err) => isBastionError(err, 'ERR_AUDIT_CONFLICT'),
          JSON.stringify(plan).slice(0, 60),
        );
        assert.deepEqual(await rows(store), before);
        assert.deepEqual(await store.listCheckpoints(), cps);
      }
      // A manifest that does not extend the tip: a conflict too.
      await assert.rejects(
        store.pruneAudit(() => ({ records: [chainRecord(undefined, at(51, 0))], checkpoints: [], firstSeq: 7, through: 0, tombstones: [], scannedTip: 15 })),
        (err) => isBastionError(err, 'ERR_AUDIT_CONFLICT'),
      );
      assert.deepEqual(await rows(store), before);
    }));

    test('a witness holding checkpoints over pruned and tombstoned records: the next start and verify --witness pass', async () => {
      const { store, raw } = await open();
      const dir = mkdtempSync(join(tmpdir(), 'bastion-retention-'));
      try {
        const file = join(dir, 'witness.jsonl');
        const log = await AuditLog.open(store, { checkpointEvery: EVERY, witness: await FileWitness.open(file) });
        for (let i = 1; i <= 14; i++) await log.append(at(i, i <= 11 ? 40 : 1, i === 7 || i === 11));
        await log.close();
        await prune(store);
        // Checkpoints at 1 and 4 (deleted) and 8 (a tombstone) are in the witness.
        const witnessed = (await readWitnessFile(file)).checkpoints;
        assert.ok(witnessed.some((c) => c.seq === 4) && witnessed.some((c) => c.seq === 8));
        const again = await AuditLog.open(store, { checkpointEvery: EVERY, witness: await FileWitness.open(file) });
        await again.close();
        assert.equal((await verifyAudit(store, { checkpointEvery: EVERY, witness: (await readWitnessFile(file)).checkpoints })).ok, true);
        // A tombstone whose hash was changed no longer matches the witness's checkpoint over it.
        const t = (await rows(store)).find((r) => r.seq === 8)!;
        await raw.setJson(8, JSON.stringify({ ...t, hash: 'e'.repeat(64) }));
        await assert.rejects(AuditLog.open(store, { checkpointEvery: EVERY, witness: await FileWitness.open(file) }), (err) => isBastionError(err, 'ERR_AUDIT_CHAIN_BROKEN'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await raw.close();
        await store.close();
      }
    });

    test('a dry run changes nothing', async () => {
      const { store, raw } = await open();
      try {
        await seed(store);
        const before = await rows(store);
        const r = await prune(store, NOW, true);
        assert.equal(r.dryRun, true);
        assert.equal(r.changed, true);
        assert.equal(r.through, 6);
        assert.deepEqual(r.tombstoned, { allows: 3 });
        assert.deepEqual(await rows(store), before);
      } finally {
        await raw.close();
        await store.close();
      }
    });

    test('tampering: a tombstone whose class was changed fails verify (tombstone_unvouched)', withPruned(async (store, raw) => {
      const t = (await rows(store)).find((r) => r.seq === 9)!;
      await raw.setJson(9, JSON.stringify({ ...t, tombstone: 'denials' }));
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 8, 'tombstone_unvouched');
    }));

    test('tampering: a kept record turned into a tombstone fails verify (tombstone_unvouched)', withPruned(async (store, raw) => {
      const r = (await rows(store)).find((x) => x.seq === 11)!;
      assert.ok(!isTombstone(r));
      await raw.setJson(11, JSON.stringify({ tombstone: 'denials', seq: r.seq, prevHash: r.prevHash, hash: r.hash, time: r.time, door: r.door }));
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 8, 'tombstone_unvouched');
    }));

    test('tampering: a tombstone with another hash breaks the next link (prev_mismatch)', withPruned(async (store, raw) => {
      const t = (await rows(store)).find((r) => r.seq === 9)!;
      await raw.setJson(9, JSON.stringify({ ...t, hash: 'f'.repeat(64) }));
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 10, 'prev_mismatch');
    }));

    test('tampering: deleting past the pruned prefix fails verify (prune_unexplained)', withPruned(async (store, raw) => {
      await raw.remove(7);
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 8, 'prune_unexplained');
    }));

    test('tampering: deleting a tombstone fails verify (seq_gap)', withPruned(async (store, raw) => {
      await raw.remove(9);
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 9, 'seq_gap');
    }));

    test('tampering: a changed manifest fails verify (hash_mismatch)', withPruned(async (store, raw) => {
      const m = (await rows(store)).at(-1)!;
      assert.ok(!isTombstone(m));
      await raw.setJson(m.seq, JSON.stringify({ ...m, detail: { ...m.detail, through: 7 } }));
      expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 15, 'hash_mismatch');
    }));

    test('tampering: a prefix deleted without any manifest fails verify (prune_unexplained)', async () => {
      const { store, raw } = await open();
      try {
        await seed(store);
        for (const seq of [1, 2, 3]) await raw.remove(seq);
        expectBroken(await verifyAudit(store, { checkpointEvery: EVERY }), 4, 'prune_unexplained');
        // And a prune refuses a chain that does not verify, changing nothing.
        await assert.rejects(prune(store), (err) => isBastionError(err, 'ERR_AUDIT_CHAIN_BROKEN') && err.detail?.['reason'] === 'prune_unexplained');
        assert.equal((await rows(store)).length, 11);
      } finally {
        await raw.close();
        await store.close();
      }
    });

    test('records past the newest signed checkpoint are never pruned', async () => {
      const { store, raw } = await open();
      try {
        const log = await AuditLog.open(store, { checkpointEvery: 1000 });
        await log.append(at(1, 40));
        await log.close();
        // Appended without a checkpoint (as a CLI command without the vault key does).
        await store.appendAudit([at(2, 40), at(3, 40)]);
        const r = await prune(store);
        assert.deepEqual([r.coveredBy, r.through, r.tombstones], [1, 1, 0], 'records 2 and 3 carry no checkpoint yet');
        assert.deepEqual((await rows(store)).map((x) => [x.seq, isTombstone(x)]), [[2, false], [3, false], [4, false]]);
        const unsigned = await store.appendAudit([at(4, 40)]);
        const r2 = await prune(store);
        assert.ok(r2.through < unsigned[0]!.seq);
        assert.ok((await rows(store)).some((x) => x.seq === unsigned[0]!.seq && !isTombstone(x)));
        assert.equal((await verifyAudit(store, { checkpointEvery: 1000 })).ok, true);
      } finally {
        await raw.close();
        await store.close();
      }
    });
  });
}
