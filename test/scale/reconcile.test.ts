/**
 * The scale harness's reconciliation (test/scale/reconcile.ts): lost,
 * duplicated, mismatched and unknown records are found; losses in the accepted
 * windows (batched doors only) are classed, not failed.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuditRecord } from '../../src/audit/types.ts';
import type { Sent } from './load.ts';
import { reconcile, type RunFacts } from './reconcile.ts';

const PORT = 4000;
let seq = 0;

function sent(door: Sent['door'], id: number, over: Partial<Sent> = {}): Sent {
  const key = door === 'tool' ? `tool:${id}` : door === 'model' ? `model:m-${id}` : `network:${id >> 8}:${id & 255}`;
  return { door, intent: 'allow', id, key, instance: 'b1', phase: 'steady', ackPhase: 'steady', sentAt: 1000, ackAt: 1010, result: 'ok', reason: '', status: 200, ...over };
}

function record(door: AuditRecord['door'], id: number, over: Partial<AuditRecord> = {}): AuditRecord {
  seq++;
  const base = { time: new Date(1000).toISOString(), door, agent: 'scale', decision: { effect: 'allow' as const, reason: 'policy.permit', rule: 'r' }, outcome: 'ok' as const, durationMs: 1, seq, prevHash: '0'.repeat(64), hash: 'h'.repeat(64) };
  if (door === 'tool') return { ...base, method: 'tools/call', args: { n: id }, ...over };
  if (door === 'model') return { ...base, method: 'model.chat', user: `m-${id}`, ...over };
  return { ...base, method: 'POST', target: `echo.scale.test:${PORT}`, detail: { bytesOut: id >> 8, bytesIn: id & 255 }, ...over };
}

const facts: RunFacts = { originPort: PORT, storeOutages: [], acceptOutageLoss: true };

describe('scale reconciliation', () => {
  test('one record per answered request: nothing to report', () => {
    const r = reconcile([sent('tool', 1), sent('model', 2), sent('network', 300)], [record('tool', 1), record('model', 2), record('network', 300)], facts);
    assert.deepEqual(r.violations, []);
    assert.deepEqual([r.doors.tool.audited, r.doors.model.audited, r.doors.network.audited], [1, 1, 1]);
  });

  test('a missing record of a durable door is a violation, even for the killed instance', () => {
    const r = reconcile([sent('tool', 1, { instance: 'b3' })], [], { ...facts, killed: { instance: 'b3', at: 2000 } });
    assert.equal(r.doors.tool.lost.violation, 1);
    assert.match(r.violations.join('\n'), /1 lost: tool:1/);
  });

  test('a batched record lost by the killed instance before the kill is its crash window; after it is a violation', () => {
    const killed = { instance: 'b3', at: 1005 };
    const r = reconcile([sent('network', 1, { instance: 'b3', ackAt: 1000 }), sent('network', 2, { instance: 'b1', ackAt: 1000 })], [], { ...facts, killed });
    assert.deepEqual(r.doors.network.lost, { violation: 1, crash: 1, outage: 0 });
  });

  test('store-outage losses of batched doors are classed unless strict', () => {
    const storeOutages = [{ name: 'pg', from: 900, to: 1100 }];
    assert.equal(reconcile([sent('model', 1)], [], { ...facts, storeOutages }).doors.model.lost.outage, 1);
    assert.equal(reconcile([sent('model', 1)], [], { ...facts, storeOutages, acceptOutageLoss: false }).doors.model.lost.violation, 1);
  });

  test('a refusal for a failed audit write may have no record; a policy refusal must have one', () => {
    const r = reconcile([sent('tool', 1, { result: 'refused', reason: 'ERR_AUDIT_WRITE' }), sent('tool', 2, { result: 'refused', reason: 'ERR_POLICY_DENIED' })], [], facts);
    assert.equal(r.doors.tool.lost.violation, 1);
    assert.match(r.violations.join('\n'), /tool:2/);
  });

  test('duplicates, mismatches and unknown records are found', () => {
    const r = reconcile(
      [sent('tool', 1), sent('model', 2)],
      [record('tool', 1), record('tool', 1), record('model', 2, { decision: { effect: 'deny', reason: 'x', rule: 'y' }, outcome: 'denied' }), record('model', 99)],
      facts,
    );
    assert.equal(r.doors.tool.duplicates, 1);
    assert.equal(r.doors.model.mismatched, 1);
    assert.equal(r.unknown, 1);
    assert.equal(r.violations.length, 3);
  });

  test('told ERR_AUDIT_WRITE but recorded allow/ok is a commit in doubt, counted apart; any other disagreement is a mismatch', () => {
    const r = reconcile(
      [sent('tool', 1, { result: 'refused', reason: 'ERR_AUDIT_WRITE' }), sent('tool', 2, { result: 'refused', reason: 'ERR_POLICY_DENIED' })],
      [record('tool', 1), record('tool', 2)],
      facts,
    );
    assert.equal(r.doors.tool.inDoubt, 1);
    assert.equal(r.doors.tool.mismatched, 1);
    assert.match(r.violations.join('\n'), /tool:2 answered refused ERR_POLICY_DENIED/);
    assert.doesNotMatch(r.violations.join('\n'), /tool:1 /);
  });

  test('counted buckets: fewer records than answered refusals is a loss, more than sent a duplicate', () => {
    const deny = (id: number): Sent => sent('model', id, { intent: 'deny', key: null, result: 'refused', reason: 'ERR_MODEL_NOT_CONFIGURED', status: 404 });
    const rec = (): AuditRecord => record('model', 0, { agent: 'nomodel', user: null, decision: { effect: 'deny', reason: 'model.not_configured', rule: 'r' }, outcome: 'denied' });
    assert.equal(reconcile([deny(1), deny(2)], [rec()], facts).doors.model.lost.violation, 1);
    assert.equal(reconcile([deny(1)], [rec(), rec()], facts).doors.model.duplicates, 1);
  });
});
