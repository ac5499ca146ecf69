/**
 * Console sessions (src/console/sessions.ts): absolute and idle expiry, peek
 * without touching, the cap, CSRF comparison; and the audit filter parser.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConsoleSessions, csrfMatches } from '../../src/console/sessions.ts';
import { matchesAudit, parseAuditFilter, queryAudit } from '../../src/console/audit-query.ts';
import type { AuditRecord } from '../../src/audit/types.ts';

test('a session ends after its idle time, and after its lifetime however active', () => {
  let now = 1_000_000;
  const s = new ConsoleSessions({ ttlMs: 10_000, idleMs: 3_000, now: () => now });
  const a = s.create('alice');
  assert.equal(a.id.length, 43);
  assert.equal(s.get(a.id)?.admin, 'alice');
  now += 2_999;
  assert.ok(s.get(a.id), 'used within the idle time');
  now += 2_999;
  assert.ok(s.peek(a.id), 'peek sees it');
  now += 1;
  // peek did not count as use: 3000 ms since the last get.
  assert.equal(s.peek(a.id), undefined);
  assert.equal(s.get(a.id), undefined);
  const b = s.create('bob');
  for (let i = 0; i < 3; i++) {
    now += 2_500;
    assert.ok(s.get(b.id), `active at ${i}`);
  }
  now += 2_499;
  assert.ok(s.get(b.id), 'just inside the lifetime');
  now += 1;
  assert.equal(s.get(b.id), undefined, 'the 10 s lifetime is over');
});

test('unknown, malformed and deleted ids find nothing; the cap drops the least recently used', () => {
  const s = new ConsoleSessions({ ttlMs: 60_000, idleMs: 60_000, max: 2 });
  assert.equal(s.get(undefined), undefined);
  assert.equal(s.get('short'), undefined);
  assert.equal(s.get('A'.repeat(43)), undefined);
  const a = s.create('a');
  const b = s.create('b');
  assert.ok(s.get(a.id));
  const c = s.create('c');
  assert.equal(s.size, 2);
  assert.equal(s.get(b.id), undefined, 'b was the least recently used');
  assert.ok(s.get(a.id) && s.get(c.id));
  assert.equal(s.delete(a.id), true);
  assert.equal(s.get(a.id), undefined);
  assert.throws(() => new ConsoleSessions({ ttlMs: 0, idleMs: 1 }), RangeError);
});

test('the CSRF token must match exactly', () => {
  const s = new ConsoleSessions({ ttlMs: 60_000, idleMs: 60_000 });
  const { session } = s.create('a');
  assert.equal(csrfMatches(session, session.csrf), true);
  assert.equal(csrfMatches(session, undefined), false);
  assert.equal(csrfMatches(session, ''), false);
  assert.equal(csrfMatches(session, `${session.csrf}x`), false);
  assert.equal(csrfMatches(session, session.csrf.slice(1) + (session.csrf[0] === 'A' ? 'B' : 'A')), false);
});

const rec = (seq: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  seq,
  prevHash: '0'.repeat(64),
  hash: '0'.repeat(64),
  time: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
  door: seq % 2 === 0 ? 'tool' : 'admin',
  agent: seq % 3 === 0 ? 'a' : 'b',
  method: 'tools/call',
  decision: { effect: seq % 5 === 0 ? 'deny' : 'allow', reason: 'r', rule: 'x' },
  outcome: 'ok',
  durationMs: 1,
  ...over,
});

test('audit filters parse with named errors and match every given field', () => {
  assert.equal(parseAuditFilter(new URLSearchParams('door=kitchen')), 'door must be one of model, tool, network, a2a, admin, system');
  assert.equal(parseAuditFilter(new URLSearchParams('effect=maybe')), 'effect must be one of allow, deny, approve');
  assert.equal(parseAuditFilter(new URLSearchParams('from=yesterday')), 'from must be an ISO 8601 time or epoch milliseconds');
  assert.match(parseAuditFilter(new URLSearchParams(`agent=${'x'.repeat(300)}`)) as string, /agent must be at most 256/);
  const f = parseAuditFilter(new URLSearchParams('door=tool&agent=a&effect=allow'));
  assert.equal(typeof f, 'object');
  assert.equal(matchesAudit(rec(6), f as object), true);
  assert.equal(matchesAudit(rec(4), f as object), false);
  const t = parseAuditFilter(new URLSearchParams(`from=${new Date(1_700_000_010_000).toISOString()}&to=1700000012000`));
  assert.deepEqual([9, 10, 11, 12, 13].map((s) => matchesAudit(rec(s), t as object)), [false, true, true, true, false]);
});

test('queryAudit pages newest first and never reads more than its scan limit', async () => {
  const all = Array.from({ length: 1000 }, (_, i) => rec(i + 1));
  let read = 0;
  const store = {
    lastAudit: () => Promise.resolve(all[all.length - 1]),
    readAudit: (from: number, n: number) => {
      read += n;
      return Promise.resolve(all.slice(from - 1, from - 1 + n));
    },
  };
  const p1 = await queryAudit(store, { door: 'tool', agent: 'a' }, { limit: 3, scanLimit: 1000, pageSize: 50 });
  assert.deepEqual(p1.records.map((r) => r.seq), [996, 990, 984]);
  assert.equal(p1.next, 984);
  const p2 = await queryAudit(store, { door: 'tool', agent: 'a' }, { before: p1.next ?? 0, limit: 2, scanLimit: 1000, pageSize: 50 });
  assert.deepEqual(p2.records.map((r) => r.seq), [978, 972]);
  read = 0;
  const none = await queryAudit(store, { agent: 'nobody' }, { limit: 10, scanLimit: 120, pageSize: 50 });
  assert.equal(none.records.length, 0);
  assert.equal(read, 120);
  assert.equal(none.scanned, 120);
  assert.equal(none.next, 881, 'the next page goes on below what was scanned');
  const end = await queryAudit(store, { agent: 'nobody' }, { before: 50, limit: 10, scanLimit: 1000 });
  assert.equal(end.next, null);
});
