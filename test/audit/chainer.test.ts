/**
 * The off-thread chainer (src/audit/chainer.ts): the same records as
 * `chainRecords` on this thread, for any event (property); the audit log that
 * uses it writes a chain `verifyAudit` accepts; a worker failure fails the
 * append closed with `ERR_AUDIT_WRITE`.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { jsonSnapshot } from '../../src/audit/canonical.ts';
import { GENESIS_HASH, chainRecords } from '../../src/audit/chain.ts';
import { OffThreadChainer } from '../../src/audit/chainer.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import type { AuditEvent } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);

test('OffThreadChainer: the same records as chainRecords on this thread, for any events and tip (property)', async () => {
  const chainer = new OffThreadChainer();
  try {
    const event = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 });
    const tip = fc.option(fc.record({ seq: fc.integer({ min: 0, max: 2 ** 40 }), hash: fc.stringMatching(/^[0-9a-f]{64}$/) }), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(tip, fc.array(event, { minLength: 1, maxLength: 8 }), async (t, raw) => {
        const events = raw.map((e) => jsonSnapshot(e as unknown as AuditEvent));
        const here = chainRecords(t, events, { snapshots: true });
        assert.deepEqual(await chainer.chain(t, events), here);
        assert.deepEqual(here, chainRecords(t, events), 'and the snapshot path is the full path');
      }),
      { numRuns: 150 },
    );
  } finally {
    await chainer.close();
  }
});

test('OffThreadChainer: a chaining error in the worker is ERR_AUDIT_WRITE, and the worker keeps serving', async () => {
  const chainer = new OffThreadChainer();
  try {
    await assert.rejects(chainer.chain({ seq: -5, hash: GENESIS_HASH }, [jsonSnapshot(sampleEvent(1))]), (e: unknown) => isBastionError(e, 'ERR_AUDIT_WRITE'));
    const [record] = await chainer.chain(undefined, [jsonSnapshot(sampleEvent(1))]);
    assert.equal(record?.seq, 1);
  } finally {
    await chainer.close();
  }
});

test('AuditLog with chainOffThread: concurrent appends form one chain that verifies; records resolve as stored', async () => {
  const store = await openSqliteStore(join(tmp.dir, 'off.sqlite'));
  try {
    const log = await AuditLog.open(store, { checkpointEvery: 7, chainOffThread: true });
    const records = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(sampleEvent(i), { lazy: i % 2 === 0 })));
    assert.deepEqual(records.map((r) => r.seq), Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual(await store.readAudit(1, 100), records);
    await log.close();
    const result = await verifyAudit(store, { checkpointEvery: 7 });
    assert.deepEqual(result, { ok: true, count: 40, lastSeq: 40, checkpoints: 7 }, 'seq 1, 7, 14, 21, 28, 35 and 40 on close');
  } finally {
    await store.close();
  }
});
