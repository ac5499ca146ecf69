// The pure parts of audit retention and export (src/audit/retention.ts, src/audit/export.ts): durations,
// classes, the prune plan, and the OCSF mapping of each door.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chainRecords } from '../../src/audit/chain.ts';
import { toOcsf } from '../../src/audit/export.ts';
import { startAuditRetention } from '../../src/audit/prune.ts';
import { BastionError } from '../../src/errors.ts';
import { isTombstone, parseRetention, planPrune, retentionClassOf, tombstoneOf } from '../../src/audit/retention.ts';
import type { AuditEvent } from '../../src/audit/types.ts';
import { sampleEvent } from './fixtures.ts';

test('parseRetention takes <n>d and <n>h only, and names the field otherwise', () => {
  assert.equal(parseRetention('30d'), 30 * 86_400_000);
  assert.equal(parseRetention('12h'), 12 * 3_600_000);
  assert.equal(parseRetention('999999d'), 999_999 * 86_400_000);
  for (const bad of ['0d', '30', 'd', '30 d', '30D', '1.5d', '-1d', '030d', '1000000d', '30m', '', 30, null]) {
    assert.throws(() => parseRetention(bad, 'audit.retention.allows'), (e: Error) => e instanceof RangeError && /audit\.retention\.allows/.test(e.message), String(bad));
  }
});

test('retention classes follow door, decision and outcome in order', () => {
  const e = (over: Partial<AuditEvent>): AuditEvent => ({ ...sampleEvent(1), ...over });
  assert.equal(retentionClassOf(e({ door: 'system', decision: { effect: 'deny', reason: 'x', rule: 'y' } })), 'system');
  assert.equal(retentionClassOf(e({ door: 'admin' })), 'admin');
  assert.equal(retentionClassOf(e({ decision: { effect: 'deny', reason: 'x', rule: 'y' }, outcome: 'denied' })), 'denials');
  assert.equal(retentionClassOf(e({ decision: { effect: 'allow', reason: 'x', rule: 'y' }, outcome: 'denied' })), 'denials');
  assert.equal(retentionClassOf(e({ decision: { effect: 'approve', reason: 'x', rule: 'y' }, outcome: 'ok' })), 'approvals');
  assert.equal(retentionClassOf(e({ decision: { effect: 'allow', reason: 'x', rule: 'y' }, outcome: 'timeout' })), 'errors');
  assert.equal(retentionClassOf(e({ decision: { effect: 'allow', reason: 'x', rule: 'y' }, outcome: 'client_closed' })), 'allows');
});

test('planPrune: the prefix stops at the first kept record and never passes the signed coverage', async () => {
  const DAY = 86_400_000;
  const now = Date.UTC(2026, 5, 1);
  const ev = (i: number, days: number, deny = false): AuditEvent => ({
    ...sampleEvent(i),
    time: new Date(now - days * DAY).toISOString(),
    decision: { effect: deny ? 'deny' : 'allow', reason: 'r', rule: 'p' },
    outcome: deny ? 'denied' : 'ok',
  });
  const rows = chainRecords(undefined, [ev(1, 40), ev(2, 40), ev(3, 40, true), ev(4, 40), ev(5, 1), ev(6, 40), ev(7, 40)]);
  const policy = { allows: 30 * DAY, denials: 90 * DAY };
  const plan = await planPrune(rows, policy, now, 6);
  assert.equal(plan.through, 2);
  assert.equal(plan.head, rows[1]!.hash);
  assert.deepEqual(plan.tombstone.map((t) => t.seq), [4, 6], 'seq 7 is past the newest checkpoint (6)');
  assert.equal(plan.tombstones.count, 2);
  assert.equal(plan.empty, false);
  // Nothing expired, or nothing signed: an empty plan that keeps the head.
  const none = await planPrune(rows, policy, now - 100 * DAY, 6);
  assert.deepEqual([none.through, none.tombstone.length, none.empty], [0, 0, true]);
  assert.equal((await planPrune(rows, policy, now, 0)).empty, true);
  // Without a retention for a class (and no default), it is kept forever.
  assert.equal((await planPrune(rows, { denials: DAY }, now, 7)).through, 0);
  // Existing tombstones are carried in the digest, not made again.
  const t = tombstoneOf(rows[3]!);
  assert.ok(isTombstone(t));
  assert.deepEqual(Object.keys(t)[0], 'tombstone');
  const withTomb = [...rows.slice(0, 3), t as never, ...rows.slice(4)];
  const again = await planPrune(withTomb, policy, now, 6);
  assert.deepEqual(again.tombstone.map((x) => x.seq), [6]);
  assert.equal(again.tombstones.count, 2);
  assert.equal(again.tombstones.digest, plan.tombstones.digest);
});

test('OCSF: network records are HTTP Activity (4002), failed authentication Authentication (3002), the rest API Activity (6003)', () => {
  const [net, auth, tool, tomb] = chainRecords(undefined, [
    { ...sampleEvent(1), door: 'network', method: 'POST', target: 'api.example.com:443', detail: { status: 201, mode: 'intercept' }, decision: { effect: 'allow', reason: 'egress.allow', rule: 'r' }, outcome: 'ok' },
    { ...sampleEvent(2), agent: null, method: 'http.request', decision: { effect: 'deny', reason: 'auth.invalid', rule: 'auth' }, outcome: 'denied' },
    { ...sampleEvent(3), decision: { effect: 'allow', reason: 'policy.permit', rule: 'p' }, outcome: 'error' },
    sampleEvent(4),
  ]);
  const n = toOcsf(net!)!;
  assert.deepEqual([n['class_uid'], n['category_uid'], n['activity_id'], n['type_uid']], [4002, 4, 6, 400206]);
  assert.deepEqual(n['http_request'], { http_method: 'POST', url: { hostname: 'api.example.com', port: 443 } });
  assert.deepEqual(n['http_response'], { code: 201 });
  assert.deepEqual([n['action_id'], n['status_id'], n['severity_id']], [1, 1, 1]);
  const a = toOcsf(auth!)!;
  assert.deepEqual([a['class_uid'], a['category_uid'], a['activity_id'], a['status_id'], a['action_id'], a['disposition_id']], [3002, 3, 1, 2, 2, 2]);
  assert.equal(a['actor'], undefined);
  const t = toOcsf(tool!)!;
  assert.deepEqual([t['class_uid'], t['activity_id'], t['type_uid'], t['status_id'], t['severity_id'], t['status_code']], [6003, 99, 600399, 2, 2, 'error']);
  assert.deepEqual(t['resources'], [{ name: 'fs__read_file', type: 'tool' }]);
  assert.equal(toOcsf(tombstoneOf(tomb!)), undefined);
  const v6 = toOcsf({ ...net!, target: '[::1]:8080', method: 'BREW' })!;
  assert.deepEqual([v6['activity_id'], v6['activity_name'], v6['dst_endpoint']], [99, 'BREW', { hostname: '::1', port: 8080 }]);
});

test('startAuditRetention runs at once and then every period, never overlapping, and reports failures', async () => {
  let runs = 0;
  let active = 0;
  let overlapped = false;
  const outcomes: boolean[] = [];
  const task = startAuditRetention(
    async () => {
      runs++;
      active++;
      if (active > 1) overlapped = true;
      await new Promise((r) => setTimeout(r, 30));
      active--;
      if (runs === 2) throw new BastionError('ERR_STORE', 'down');
      return { dryRun: false, changed: false, firstSeq: 1, through: 0, deleted: {}, tombstoned: {}, tombstones: 0, coveredBy: 0 };
    },
    (o) => outcomes.push(o.ok),
    10,
  );
  await task.first;
  assert.equal(runs, 1);
  await new Promise((r) => setTimeout(r, 120));
  await task.close();
  const after = runs;
  assert.ok(after >= 3, `ran ${after} times`);
  assert.equal(overlapped, false);
  assert.equal(outcomes[1], false, 'the failed run was reported');
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(runs, after, 'closed: no more runs');
});
