import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { GENESIS_HASH, chainRecord, chainRecords, checkpointPayload, recordHash, verifyChain } from '../../src/audit/chain.ts';
import { canonicalJson, jsonSnapshot } from '../../src/audit/canonical.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from '../../src/audit/types.ts';
import { generateEd25519, keyIdOf, sha256Hex, signEd25519 } from '../../src/util/crypto.ts';
import { sampleEvent } from './fixtures.ts';

const pair = generateEd25519();
const keyId = keyIdOf(pair.publicKeyPem);
const keys = new Map([[keyId, pair.publicKeyPem]]);

function chain(events: readonly AuditEvent[]): AuditRecord[] {
  const out: AuditRecord[] = [];
  for (const e of events) out.push(chainRecord(out.at(-1), e));
  return out;
}

function sign(record: AuditRecord, key = pair, id = keyId): AuditCheckpoint {
  const unsigned = { seq: record.seq, hash: record.hash, time: '2026-01-01T00:00:00.000Z', keyId: id };
  return { ...unsigned, signature: signEd25519(key.privateKeyPem, checkpointPayload(unsigned)) };
}

const events = Array.from({ length: 20 }, (_, i) => sampleEvent(i + 1));

test('chainRecord: seq from 1, prevHash links, hash over canonical JSON without hash', () => {
  const records = chain(events);
  assert.equal(records[0]!.seq, 1);
  assert.equal(records[0]!.prevHash, GENESIS_HASH);
  assert.equal(GENESIS_HASH, '0'.repeat(64));
  for (let i = 1; i < records.length; i++) {
    assert.equal(records[i]!.seq, i + 1);
    assert.equal(records[i]!.prevHash, records[i - 1]!.hash);
  }
  const { hash, ...body } = records[3]!;
  assert.equal(hash, sha256Hex(canonicalJson(body)));
  assert.equal(recordHash(records[3]!), hash);
});

test('chainRecord: undefined fields are dropped so the record round-trips through JSON', () => {
  const record = chainRecord(undefined, sampleEvent(1, { session: undefined, target: undefined }));
  assert.equal('session' in record, false);
  assert.equal('target' in record, false);
  assert.deepEqual(JSON.parse(canonicalJson(record)), record);
});

test('chainRecord: a stray hash on the event is ignored; non-JSON events are TypeError', () => {
  const withHash = { ...sampleEvent(1), hash: 'f'.repeat(64) } as AuditEvent;
  assert.equal(chainRecord(undefined, withHash).hash, chainRecord(undefined, sampleEvent(1)).hash);
  assert.throws(() => chainRecord(undefined, sampleEvent(1, { detail: { big: 1n } })), TypeError);
});

test('checkpointPayload is canonical JSON of {seq, hash, time, keyId} only', () => {
  const cp = sign(chain(events)[4]!);
  assert.equal(
    checkpointPayload(cp),
    `{"hash":"${cp.hash}","keyId":"${cp.keyId}","seq":5,"time":"2026-01-01T00:00:00.000Z"}`,
  );
});

test('verifyChain: an intact chain with checkpoints is ok (sync and async iterables)', async () => {
  const records = chain(events);
  const cps = [sign(records[9]!), sign(records[19]!)];
  assert.deepEqual(await verifyChain(records, cps, keys), { ok: true, count: 20, lastSeq: 20, checkpoints: 2 });
  async function* gen(): AsyncGenerator<AuditRecord> {
    yield* records;
  }
  assert.deepEqual(await verifyChain(gen(), cps, keys), { ok: true, count: 20, lastSeq: 20, checkpoints: 2 });
  assert.deepEqual(await verifyChain([], [], keys), { ok: true, count: 0, lastSeq: 0, checkpoints: 0 });
});

test('verifyChain stops consuming at the first fault (streaming)', async () => {
  const records = chain(events);
  records[2] = { ...records[2]!, durationMs: 999 };
  let pulled = 0;
  function* gen(): Generator<AuditRecord> {
    for (const r of records) {
      pulled++;
      yield r;
    }
  }
  const result = await verifyChain(gen(), [], keys);
  assert.equal(result.ok, false);
  assert.equal(pulled, 3);
});

function expectBroken(result: Awaited<ReturnType<typeof verifyChain>>, seq: number, reason: string): void {
  assert.equal(result.ok, false, 'expected a broken chain');
  if (result.ok) return;
  assert.equal(result.code, 'ERR_AUDIT_CHAIN_BROKEN');
  assert.equal(result.reason, reason);
  assert.equal(result.seq, seq);
  assert.equal(typeof result.message, 'string');
}

test('verifyChain: altered record → hash_mismatch at its seq', async () => {
  const records = chain(events);
  records[6] = { ...records[6]!, agent: 'mallory' };
  expectBroken(await verifyChain(records, [], keys), 7, 'hash_mismatch');
});

test('verifyChain: altered record with recomputed hash → prev_mismatch at the next seq', async () => {
  const records = chain(events);
  const forged = { ...records[6]!, agent: 'mallory' };
  records[6] = { ...forged, hash: recordHash(forged) };
  expectBroken(await verifyChain(records, [], keys), 8, 'prev_mismatch');
});

test('verifyChain: removed record → seq_gap naming the missing seq', async () => {
  const records = chain(events);
  records.splice(4, 1);
  expectBroken(await verifyChain(records, [], keys), 5, 'seq_gap');
});

test('verifyChain: repeated or reordered record → seq_order', async () => {
  const records = chain(events);
  records.splice(5, 0, records[3]!);
  expectBroken(await verifyChain(records, [], keys), 6, 'seq_order');
});

test('verifyChain: swapped records → broken at the first swapped position', async () => {
  const records = chain(events);
  [records[3], records[8]] = [records[8]!, records[3]!];
  expectBroken(await verifyChain(records, [], keys), 4, 'seq_gap');
});

test('verifyChain: a whole chain rewritten with consistent hashes is caught by a checkpoint', async () => {
  const records = chain(events);
  const cps = [sign(records[19]!)];
  const rewritten = chain(events.map((e, i) => (i === 2 ? { ...e, agent: 'mallory' } : e)));
  expectBroken(await verifyChain(rewritten, cps, keys), 20, 'checkpoint_mismatch');
});

test('verifyChain: forged checkpoint signature → checkpoint_signature', async () => {
  const records = chain(events);
  const cp = sign(records[9]!);
  const forged = { ...cp, signature: signEd25519(generateEd25519().privateKeyPem, checkpointPayload(cp)) };
  expectBroken(await verifyChain(records, [forged], keys), 10, 'checkpoint_signature');
  const garbage = { ...cp, signature: 'not-a-signature' };
  expectBroken(await verifyChain(records, [garbage], keys), 10, 'checkpoint_signature');
  const retimed = { ...cp, time: '2027-01-01T00:00:00.000Z' };
  expectBroken(await verifyChain(records, [retimed], keys), 10, 'checkpoint_signature');
});

test('verifyChain: checkpoint by a key not in the trusted set → checkpoint_key_unknown', async () => {
  const records = chain(events);
  const other = generateEd25519();
  const cp = sign(records[9]!, other, keyIdOf(other.publicKeyPem));
  expectBroken(await verifyChain(records, [cp], keys), 10, 'checkpoint_key_unknown');
});

test('verifyChain: truncation at or before the last checkpoint → truncated naming the checkpoint seq', async () => {
  const records = chain(events);
  const cps = [sign(records[9]!), sign(records[17]!)];
  expectBroken(await verifyChain(records.slice(0, 15), cps, keys), 18, 'truncated');
  expectBroken(await verifyChain(records.slice(0, 17), cps, keys), 18, 'truncated');
  // Removing only records after the last checkpoint is undetectable by construction.
  assert.equal((await verifyChain(records.slice(0, 18), cps, keys)).ok, true);
});

test('verifyChain: a forged checkpoint beyond the end is a signature failure, not truncation', async () => {
  const records = chain(events);
  const beyond = { ...sign(records[19]!), seq: 30 };
  expectBroken(await verifyChain(records, [beyond], keys), 30, 'checkpoint_signature');
});

test('verifyChain: a checkpoint with an invalid seq is rejected', async () => {
  const records = chain(events);
  const bad = { ...sign(records[0]!), seq: 0 };
  assert.equal((await verifyChain(records, [bad], keys)).ok, false);
});

test('verifyChain: a record that is not an object, or has a non-integer seq, is a fault', async () => {
  const records = chain(events) as unknown[];
  records[2] = null;
  expectBroken(await verifyChain(records as AuditRecord[], [], keys), 3, 'hash_mismatch');
  const again = chain(events);
  again[2] = { ...again[2]!, seq: '3' as unknown as number };
  expectBroken(await verifyChain(again, [], keys), 3, 'hash_mismatch');
});

type Mutation = { kind: 'alter'; index: number; field: number } | { kind: 'remove'; index: number } | { kind: 'swap'; i: number; j: number };

const eventArb: fc.Arbitrary<AuditEvent> = fc.record({
  time: fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString()),
  door: fc.constantFrom('tool' as const, 'admin' as const, 'system' as const),
  agent: fc.option(fc.string(), { nil: null }),
  method: fc.string({ minLength: 1 }),
  target: fc.option(fc.string(), { nil: undefined }),
  decision: fc.record({ effect: fc.constantFrom('allow' as const, 'deny' as const, 'approve' as const), reason: fc.string(), rule: fc.string() }),
  outcome: fc.constantFrom('ok' as const, 'denied' as const, 'held' as const, 'error' as const, 'timeout' as const),
  durationMs: fc.nat(),
  detail: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: undefined }),
});

function alter(record: AuditRecord, field: number): AuditRecord {
  switch (field % 6) {
    case 0:
      return { ...record, durationMs: record.durationMs + 1 };
    case 1:
      return { ...record, agent: record.agent === 'x' ? 'y' : 'x' };
    case 2:
      return { ...record, decision: { ...record.decision, effect: record.decision.effect === 'allow' ? 'deny' : 'allow' } };
    case 3:
      return { ...record, prevHash: record.prevHash === GENESIS_HASH ? 'f'.repeat(64) : GENESIS_HASH };
    case 4:
      return { ...record, hash: record.hash.startsWith('0') ? `1${record.hash.slice(1)}` : `0${record.hash.slice(1)}` };
    default:
      return { ...record, detail: { ...record.detail, injected: true } };
  }
}

test('property: any single alteration, removal or swap is never verified ok', async () => {
  const caseArb = fc
    .array(eventArb, { minLength: 1, maxLength: 25 })
    .chain((evs) => {
      const n = evs.length;
      const mutations: fc.Arbitrary<Mutation>[] = [
        fc.record({ kind: fc.constant('alter' as const), index: fc.nat(n - 1), field: fc.nat(5) }),
        fc.record({ kind: fc.constant('remove' as const), index: fc.nat(n - 1) }),
      ];
      if (n >= 2) {
        mutations.push(
          fc
            .tuple(fc.nat(n - 1), fc.nat(n - 2))
            .map(([i, k]) => ({ kind: 'swap' as const, i, j: k >= i ? k + 1 : k })),
        );
      }
      return fc.tuple(fc.constant(evs), fc.oneof(...mutations));
    });
  await fc.assert(
    fc.asyncProperty(caseArb, async ([evs, mutation]) => {
      const records = chain(evs);
      // The log writes a checkpoint over the last record on close.
      const checkpoints = [sign(records.at(-1)!)];
      assert.equal((await verifyChain(records, checkpoints, keys)).ok, true);
      const mutated = [...records];
      if (mutation.kind === 'alter') mutated[mutation.index] = alter(mutated[mutation.index]!, mutation.field);
      else if (mutation.kind === 'remove') mutated.splice(mutation.index, 1);
      else [mutated[mutation.i], mutated[mutation.j]] = [mutated[mutation.j]!, mutated[mutation.i]!];
      const result = await verifyChain(mutated, checkpoints, keys);
      assert.equal(result.ok, false);
    }),
    { numRuns: 300 },
  );
});

test('chainRecords({snapshots}): the same records as the full path, for any JSON event snapshotted first', () => {
  const event = fc.record({ door: fc.constantFrom('tool', 'model', 'network'), detail: fc.jsonValue({ maxDepth: 4 }), hash: fc.option(fc.string(), { nil: undefined }) });
  fc.assert(
    fc.property(fc.array(event, { minLength: 1, maxLength: 5 }), fc.option(fc.record({ seq: fc.integer({ min: 1, max: 1e6 }), hash: fc.stringMatching(/^[0-9a-f]{64}$/) }), { nil: undefined }), (events, tip) => {
      const snaps = events.map((e, i) => jsonSnapshot({ ...sampleEvent(i), ...e } as unknown as AuditEvent));
      const full = chainRecords(tip, snaps);
      const fast = chainRecords(tip, snaps, { snapshots: true });
      assert.deepEqual(fast, full);
      for (const r of fast) assert.equal(r.hash, recordHash(r));
    }),
    { numRuns: 300 },
  );
});
