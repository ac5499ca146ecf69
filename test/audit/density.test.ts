// Checkpoint density (issue 11, class 4): `verifyChain` with `checkpointEvery` fails when more than
// checkpointEvery consecutive records carry no checkpoint, or when records carry none at all; the audit
// log's writer never produces such a store. Before this rule, deleting checkpoints (and re-chaining the
// records after them) verified ok.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkpointPayload, isCheckpointPosition, verifyChain } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditCheckpoint, AuditRecord } from '../../src/audit/types.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { generateEd25519, keyIdOf, signEd25519 } from '../../src/util/crypto.ts';
import { chainEvents, expectBroken, sampleEvent } from './fixtures.ts';

const pair = generateEd25519();
const keyId = keyIdOf(pair.publicKeyPem);
const keys = new Map([[keyId, pair.publicKeyPem]]);

const signatures = new Map<string, string>();
function sign(record: AuditRecord): AuditCheckpoint {
  const unsigned = { seq: record.seq, hash: record.hash, time: '2026-01-01T00:00:00.000Z', keyId };
  const payload = checkpointPayload(unsigned);
  let signature = signatures.get(payload);
  if (signature === undefined) {
    signature = signEd25519(pair.privateKeyPem, payload);
    signatures.set(payload, signature);
  }
  return { ...unsigned, signature };
}

const events = Array.from({ length: 120 }, (_, i) => sampleEvent(i + 1));
const full = chainEvents(events);

/** What the audit log writes: checkpoints at seq 1 and every multiple of `every`, optionally the last record (close). */
function positionCheckpoints(records: readonly AuditRecord[], every: number, closed: boolean): AuditCheckpoint[] {
  const out = records.filter((r) => isCheckpointPosition(r.seq, every)).map(sign);
  const last = records.at(-1);
  if (closed && last !== undefined && !isCheckpointPosition(last.seq, every)) out.push(sign(last));
  return out;
}

/** The rule, stated directly: no run of more than `every` records without a checkpoint, and some checkpoint when there are records. */
function denseEnough(n: number, checkpointSeqs: readonly number[], every: number): boolean {
  if (n === 0) return true;
  const covered = new Set(checkpointSeqs.filter((s) => s <= n));
  if (covered.size === 0) return false;
  let run = 0;
  for (let seq = 1; seq <= n; seq++) {
    run = covered.has(seq) ? 0 : run + 1;
    if (run > every) return false;
  }
  return true;
}

test('isCheckpointPosition: seq 1 and every multiple', () => {
  assert.deepEqual(
    Array.from({ length: 25 }, (_, i) => i + 1).filter((s) => isCheckpointPosition(s, 10)),
    [1, 10, 20],
  );
  assert.equal(isCheckpointPosition(7, 1), true);
});

test('density: the writer\'s checkpoints verify, the tail after the last may hold up to checkpointEvery records', async () => {
  const records = full.slice(0, 59);
  const cps = positionCheckpoints(records, 10, false);
  assert.deepEqual(cps.map((c) => c.seq), [1, 10, 20, 30, 40, 50]);
  assert.equal((await verifyChain(records, cps, keys, { checkpointEvery: 10 })).ok, true);
  // 10 records after the last checkpoint (51-60) are allowed; 11 are not.
  assert.equal((await verifyChain(full.slice(0, 60), cps, keys, { checkpointEvery: 10 })).ok, true);
  expectBroken(await verifyChain(full.slice(0, 61), cps, keys, { checkpointEvery: 10 }), 61, 'checkpoint_gap');
});

test('density: a deleted middle checkpoint → checkpoint_gap naming the first record past the allowance', async () => {
  const cps = positionCheckpoints(full.slice(0, 60), 10, true).filter((c) => c.seq !== 30);
  expectBroken(await verifyChain(full.slice(0, 60), cps, keys, { checkpointEvery: 10 }), 31, 'checkpoint_gap');
});

test('density: records but no checkpoint at all → checkpoint_missing at seq 1, even below checkpointEvery', async () => {
  expectBroken(await verifyChain(full.slice(0, 5), [], keys, { checkpointEvery: 10 }), 1, 'checkpoint_missing');
  expectBroken(await verifyChain(full.slice(0, 1), [], keys, { checkpointEvery: 1 }), 1, 'checkpoint_missing');
  // An empty store has nothing to checkpoint.
  assert.equal((await verifyChain([], [], keys, { checkpointEvery: 10 })).ok, true);
  // Without checkpointEvery the density rule is off (hashes and checkpoints only).
  assert.equal((await verifyChain(full.slice(0, 5), [], keys)).ok, true);
});

test('density: densityThrough limits the rule to records listed before the checkpoints were read (a live store)', async () => {
  const cps = positionCheckpoints(full.slice(0, 20), 10, false);
  // Records 21-40 were appended (with checkpoints this reader did not list) while it read.
  assert.equal((await verifyChain(full.slice(0, 40), cps, keys, { checkpointEvery: 10, densityThrough: 20 })).ok, true);
  expectBroken(await verifyChain(full.slice(0, 40), cps, keys, { checkpointEvery: 10, densityThrough: 35 }), 31, 'checkpoint_gap');
  // The boundary: the record at densityThrough is still covered by the rule.
  expectBroken(await verifyChain(full.slice(0, 40), cps, keys, { checkpointEvery: 10, densityThrough: 31 }), 31, 'checkpoint_gap');
  assert.equal((await verifyChain(full.slice(0, 40), cps, keys, { checkpointEvery: 10, densityThrough: 30 })).ok, true);
  // A store that was empty when the checkpoints were listed: records appended since need none yet.
  assert.equal((await verifyChain(full.slice(0, 5), [], keys, { checkpointEvery: 10, densityThrough: 0 })).ok, true);
  expectBroken(await verifyChain(full.slice(0, 5), [], keys, { checkpointEvery: 10, densityThrough: 1 }), 1, 'checkpoint_missing');
});

test('density: a bad checkpointEvery is RangeError', async () => {
  await assert.rejects(verifyChain(full, [], keys, { checkpointEvery: 0 }), RangeError);
  await assert.rejects(verifyChain(full, [], keys, { checkpointEvery: 1.5 }), RangeError);
});

test('property: after deleting any checkpoints, verify fails exactly when the density rule is broken', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 120 }),
      fc.integer({ min: 1, max: 15 }),
      fc.boolean(),
      fc.infiniteStream(fc.boolean()),
      async (n, every, closed, keep) => {
        const records = full.slice(0, n);
        const all = positionCheckpoints(records, every, closed);
        assert.equal((await verifyChain(records, all, keys, { checkpointEvery: every })).ok, true, 'the writer\'s layout verifies');
        const kept = all.filter(() => keep.next().value as boolean);
        const result = await verifyChain(records, kept, keys, { checkpointEvery: every });
        assert.equal(result.ok, denseEnough(n, kept.map((c) => c.seq), every));
        if (kept.length === 0) assert.equal(result.ok, false, 'every checkpoint deleted is always detected');
      },
    ),
    { numRuns: 300 },
  );
});

test('property: a cut of more than checkpointEvery records, re-chained or not, with the checkpoints it invalidates deleted, fails verify unless what follows the last kept checkpoint fits the tail allowance; with the witness it always fails', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 12 }).chain((every) =>
        fc.integer({ min: every + 2, max: 120 }).chain((n) =>
          fc.integer({ min: every + 1, max: n - 1 }).chain((k) =>
            fc.record({ every: fc.constant(every), n: fc.constant(n), k: fc.constant(k), start: fc.integer({ min: 1, max: n - k + 1 }), rechain: fc.boolean() }),
          ),
        ),
      ),
      async ({ every, n, k, start, rechain }) => {
        const records = full.slice(0, n);
        const original = positionCheckpoints(records, every, true);
        const left = [...records.slice(0, start - 1), ...records.slice(start - 1 + k)];
        // The strongest attacker without the signing key: re-chains the records after the cut so every hash
        // and link is consistent, and deletes every checkpoint that no longer matches a record.
        const tampered = rechain ? chainEvents(left) : left;
        const byHash = new Map(tampered.map((r) => [`${r.seq}:${r.hash}`, r]));
        const kept = original.filter((c) => byHash.has(`${c.seq}:${c.hash}`));
        const result = await verifyChain(tampered, kept, keys, { checkpointEvery: every });
        const endsTheLog = start - 1 + k === n;
        const tailAfterLastCheckpoint = tampered.length - Math.max(0, ...kept.map((c) => c.seq));
        if (!rechain && !endsTheLog) assert.equal(result.ok, false, 'a gap in seq');
        if (rechain || endsTheLog) assert.equal(result.ok, tailAfterLastCheckpoint <= every && kept.length > 0);
        // The witness, holding the original checkpoints, always tells.
        const witnessed = await verifyChain(tampered, kept, keys, { checkpointEvery: every, witness: original });
        assert.equal(witnessed.ok, false, 'the witness detects the cut');
      },
    ),
    { numRuns: 300 },
  );
});

test('property: the audit log\'s own stores always verify, whatever the batch sizes and checkpointEvery', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 9 }),
      fc.array(fc.integer({ min: 1, max: 25 }), { minLength: 1, maxLength: 6 }),
      fc.boolean(),
      async (every, batches, close) => {
        const store = await openSqliteStore(':memory:');
        try {
          const log = await AuditLog.open(store, { checkpointEvery: every });
          let i = 0;
          for (const size of batches) {
            await Promise.all(Array.from({ length: size }, () => log.append(sampleEvent(++i))));
          }
          if (close) await log.close();
          const result = await verifyAudit(store, { checkpointEvery: every });
          assert.equal(result.ok, true, result.ok ? '' : result.message);
        } finally {
          await store.close();
        }
      },
    ),
    { numRuns: 40 },
  );
});

test('verifyChain with a witness: mismatch, cut, emptied, forged witness lines; store checkpoints are reported first', async () => {
  const records = full.slice(0, 40);
  const witness = positionCheckpoints(records, 10, true);
  const opts = { checkpointEvery: 10, witness };
  assert.deepEqual(await verifyChain(records, witness, keys, opts), { ok: true, count: 40, lastSeq: 40, checkpoints: 5 });
  // Re-chained from 25 with the store's stale checkpoints gone: the witness names the first witnessed seq at or after 25.
  const rechained = chainEvents(events.slice(0, 40).map((e, i) => (i === 24 ? { ...e, agent: 'mallory' } : e)));
  const storeKept = witness.filter((c) => c.seq < 25);
  expectBroken(await verifyChain(rechained, storeKept, keys, opts), 30, 'witness_mismatch');
  // Cut at 33 (store checkpoints past it deleted too): the witness's last seq.
  expectBroken(await verifyChain(records.slice(0, 33), witness.filter((c) => c.seq <= 33), keys, opts), 40, 'witness_truncated');
  // Emptied.
  const emptied = await verifyChain([], [], keys, opts);
  expectBroken(emptied, 40, 'witness_truncated');
  assert.match(emptied.ok ? '' : emptied.message, /no record \(emptied\)/);
  // A cut that left a store checkpoint behind is the store's own evidence (truncated), reported before the witness's.
  expectBroken(await verifyChain(records.slice(0, 33), witness, keys, opts), 40, 'truncated');
  // A forged witness line, in range or past the end, is a signature failure, never evidence.
  const forged = { ...witness[1]!, signature: signEd25519(generateEd25519().privateKeyPem, 'x') };
  const bad = await verifyChain(records, witness, keys, { ...opts, witness: [witness[0]!, forged] });
  expectBroken(bad, 10, 'checkpoint_signature');
  assert.match(bad.ok ? '' : bad.message, /^witness checkpoint at seq 10/);
  expectBroken(await verifyChain(records.slice(0, 5), [witness[0]!], keys, { ...opts, witness: [{ ...forged, seq: 50 }] }), 50, 'checkpoint_signature');
});
