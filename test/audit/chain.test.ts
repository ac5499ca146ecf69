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

test('chainRecord: a previous seq that is not a positive safe integer is RangeError (a chain never restarts or overflows)', () => {
  for (const seq of [1.5, -3, -1, Number.MAX_SAFE_INTEGER, Number.NaN]) {
    assert.throws(() => chainRecord({ seq, hash: GENESIS_HASH }, events[0]!), (err: unknown) => err instanceof RangeError && /prev\.seq must be a non-negative integer/.test(err.message), String(seq));
  }
  assert.equal(chainRecord({ seq: 0, hash: GENESIS_HASH }, events[0]!).seq, 1);
});

test('verifyChain: checkpoints and witness lines in any order are read in seq order', async () => {
  const records = chain(events);
  const cps = [sign(records[19]!), sign(records[4]!), sign(records[9]!)];
  const witness = [sign(records[14]!), sign(records[2]!), sign(records[7]!)];
  assert.deepEqual(await verifyChain(records, cps, keys, { witness }), { ok: true, count: 20, lastSeq: 20, checkpoints: 3 });
});

test('verifyChain: a checkpoint or witness line whose seq is not a positive integer breaks the chain at seq 0', async () => {
  const records = chain(events);
  for (const seq of [0, -1, 1.5, Number.NaN]) {
    const bad = { ...sign(records[0]!), seq };
    for (const result of [await verifyChain(records, [bad], keys), await verifyChain(records, [], keys, { witness: [bad] })]) {
      expectBroken(result, 0, 'checkpoint_mismatch');
      assert.equal(!result.ok && result.message, 'a checkpoint has an invalid seq');
    }
  }
});

test('verifyChain: a validly signed checkpoint whose hash is no string never matches (value, not exception)', async () => {
  const records = chain(events);
  const unsigned = { seq: 3, hash: 42 as unknown as string, time: '2026-01-01T00:00:00.000Z', keyId };
  const cp = { ...unsigned, signature: signEd25519(pair.privateKeyPem, checkpointPayload(unsigned)) };
  expectBroken(await verifyChain(records, [cp], keys), 3, 'checkpoint_mismatch');
  expectBroken(await verifyChain(records, [], keys, { witness: [cp] }), 3, 'witness_mismatch');
});

test('verifyChain: a record whose hash or prevHash is no string, or that is not canonical JSON, is a fault (value, not exception)', async () => {
  const records = chain(events);
  const noHash = [...records];
  noHash[2] = { ...records[2]!, hash: 42 as unknown as string };
  expectBroken(await verifyChain(noHash, [], keys), 3, 'hash_mismatch');
  const noPrev = [...records];
  noPrev[2] = { ...records[2]!, prevHash: 42 as unknown as string };
  noPrev[2] = { ...noPrev[2], hash: recordHash(noPrev[2]) };
  expectBroken(await verifyChain(noPrev, [], keys), 3, 'prev_mismatch');
  const notJson = [...records];
  notJson[2] = { ...records[2]!, durationMs: Number.NaN };
  const r = await verifyChain(notJson, [], keys);
  expectBroken(r, 3, 'hash_mismatch');
  assert.equal(!r.ok && r.message, 'record 3 is not canonicalizable JSON');
});

test('verifyChain: a checkpoint whose payload is not JSON, or whose signature is no string, fails its signature', async () => {
  const records = chain(events);
  const malformed = { ...sign(records[4]!), time: Number.NaN as unknown as string };
  const r = await verifyChain(records, [malformed], keys);
  expectBroken(r, 5, 'checkpoint_signature');
  assert.equal(!r.ok && r.message, 'checkpoint at seq 5 is malformed');
  const w = await verifyChain(records, [], keys, { witness: [malformed] });
  assert.equal(!w.ok && w.message, 'witness checkpoint at seq 5 is malformed');
  expectBroken(await verifyChain(records, [{ ...sign(records[4]!), signature: 42 as unknown as string }], keys), 5, 'checkpoint_signature');
});

test('verifyChain: every break says what is wrong and where (the message `bastion audit verify` prints)', async () => {
  const records = chain(events);
  const messageOf = async (...args: Parameters<typeof verifyChain>): Promise<string> => {
    const r = await verifyChain(...args);
    assert.equal(r.ok, false);
    return r.ok ? '' : r.message;
  };
  const altered = [...records];
  altered[4] = { ...records[4]!, agent: 'mallory' };
  const notObject = [...records] as unknown[];
  notObject[2] = 5;
  const noSeq = [...records];
  noSeq[2] = { ...records[2]!, seq: 'x' as unknown as number };
  const rechained = [...records];
  rechained[4] = { ...records[4]!, prevHash: 'f'.repeat(64) };
  rechained[4] = { ...rechained[4]!, hash: recordHash(rechained[4]!) };
  const other = generateEd25519();
  const cases: [Promise<string>, string][] = [
    [messageOf(altered, [], keys), 'record 5 content does not match its hash'],
    [messageOf(notObject as AuditRecord[], [], keys), 'record 3 is not an object'],
    [messageOf(noSeq, [], keys), 'record 3 has no integer seq'],
    [messageOf([...records.slice(0, 3), ...records.slice(4)], [], keys), 'record 4 is missing (next record has seq 5)'],
    [messageOf([...records.slice(0, 3), records[1]!], [], keys), 'record at position 4 has seq 2'],
    [messageOf(rechained, [], keys), 'record 5 prevHash does not match record 4'],
    [messageOf(records, [{ ...sign(records[4]!), hash: 'f'.repeat(64), signature: sign({ ...records[4]!, hash: 'f'.repeat(64) }).signature }], keys), "checkpoint at seq 5 does not match the record's hash"],
    [messageOf(records, [], keys, { witness: [{ ...sign(records[4]!), hash: 'f'.repeat(64), signature: sign({ ...records[4]!, hash: 'f'.repeat(64) }).signature }] }), "record 5 does not match the witness's checkpoint: the store was rewritten at or before seq 5"],
    [messageOf(records, [sign(records[4]!, other, keyIdOf(other.publicKeyPem))], keys), 'checkpoint at seq 5 is signed by an unknown key'],
    [messageOf(records, [], keys, { witness: [sign(records[4]!, other, keyIdOf(other.publicKeyPem))] }), 'witness checkpoint at seq 5 is signed by an unknown key'],
    [messageOf(records, [{ ...sign(records[4]!), signature: sign(records[5]!).signature }], keys), 'checkpoint at seq 5 has an invalid signature'],
    [messageOf(records.slice(0, 10), [sign(records[14]!)], keys), 'records end at seq 10 but a signed checkpoint covers seq 15'],
    [messageOf(records.slice(0, 10), [], keys, { witness: [{ ...sign(records[14]!), signature: sign(records[13]!).signature }] }), 'witness checkpoint at seq 15 has an invalid signature'],
    [messageOf(records.slice(0, 10), [], keys, { witness: [sign(records[14]!)] }), 'records end at seq 10 but the witness holds a signed checkpoint at seq 15'],
    [messageOf([], [], keys, { witness: [sign(records[14]!)] }), 'the store holds no record (emptied) but the witness holds a signed checkpoint at seq 15'],
    [messageOf(records, [sign(records[0]!), sign(records[9]!)], keys, { checkpointEvery: 4 }), 'records 2-6 carry no checkpoint (at most 4 may): checkpoints were removed'],
    [messageOf(records.slice(0, 3), [], keys, { checkpointEvery: 4 }), 'the store holds records 1-3 but no checkpoint over any of them'],
  ];
  for (const [got, want] of cases) assert.equal(await got, want);
  await assert.rejects(verifyChain(records, [], keys, { checkpointEvery: 0 }), (err: unknown) => err instanceof RangeError && /checkpointEvery must be a positive integer/.test(err.message));
});
