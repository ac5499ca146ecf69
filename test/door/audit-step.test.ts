/**
 * The kernel's audit step (src/door/audit-step.ts): a failed write is never
 * silent. Before the kernel, four doors caught audit failures with
 * `.catch(() => undefined)`: nothing counted them and nobody was told.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AuditEvent, AuditRecord } from '../../src/audit/types.ts';
import { AuditStep, type AuditFailure } from '../../src/door/audit-step.ts';
import { BastionError } from '../../src/errors.ts';

const event = (method = 'tools/call'): AuditEvent => ({ time: new Date(0).toISOString(), door: 'tool', agent: 'a', method, decision: { effect: 'allow', reason: 'policy.permit', rule: 'r' }, outcome: 'ok', durationMs: 1 });

function sink(fail: boolean) {
  const written: { event: AuditEvent; lazy: boolean }[] = [];
  return {
    written,
    append(e: AuditEvent, opts?: { lazy?: boolean }): Promise<AuditRecord> {
      if (fail) return Promise.reject(new BastionError('ERR_AUDIT_WRITE', 'audit: disk full'));
      written.push({ event: e, lazy: opts?.lazy === true });
      return Promise.resolve({ ...e, seq: written.length, prevHash: '0'.repeat(64), hash: '1'.repeat(64) });
    },
  };
}

test('durable: resolves true once written (not lazy); false on failure, counted and reported', async () => {
  const ok = sink(false);
  const step = new AuditStep(ok);
  assert.equal(await step.durable(event()), true);
  assert.deepEqual(ok.written.map((w) => w.lazy), [false]);

  const reports: AuditFailure[] = [];
  const bad = new AuditStep(sink(true), { onFailure: (f) => reports.push(f) });
  assert.equal(await bad.durable(event()), false);
  assert.deepEqual(bad.failures, { durable: 1, batched: 0 });
  assert.deepEqual(reports, [{ door: 'tool', method: 'tools/call', durability: 'durable', code: 'ERR_AUDIT_WRITE', count: 1 }]);
});

test('batched: queued lazily and returns at once; a failure is counted and reported, never thrown', async () => {
  const ok = sink(false);
  new AuditStep(ok).batched(event());
  assert.deepEqual(ok.written.map((w) => w.lazy), [true]);

  const reports: AuditFailure[] = [];
  const bad = new AuditStep(sink(true), { onFailure: (f) => reports.push(f) });
  bad.batched(event('http.request'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(bad.failures, { durable: 0, batched: 1 });
  assert.equal(reports[0]?.durability, 'batched');
  // A sink that throws synchronously is counted too.
  const throwing = new AuditStep({ append: () => { throw new Error('boom'); } });
  throwing.batched(event());
  assert.deepEqual(throwing.failures, { durable: 0, batched: 1 });
});

test('reports are rate-limited, counts are not; a throwing reporter does not fail the request', async () => {
  let now = 0;
  const reports: AuditFailure[] = [];
  const step = new AuditStep(sink(true), { reportEveryMs: 1000, now: () => now, onFailure: (f) => { reports.push(f); throw new Error('reporter down'); } });
  for (let i = 0; i < 5; i++) assert.equal(await step.durable(event()), false);
  assert.equal(reports.length, 1);
  now = 1000;
  assert.equal(await step.durable(event()), false);
  assert.deepEqual(reports.map((r) => r.count), [1, 6]);
  assert.deepEqual(step.failures, { durable: 6, batched: 0 });
});

test('auditEventOf: one record shape from the request context (times in ms, the user and conversation when known)', async () => {
  const { auditEventOf, newRequestContext } = await import('../../src/door/context.ts');
  const ctx = newRequestContext('model', 'chat.completions', 1000);
  ctx.agent = 'support';
  ctx.user = { id: 'alice', verified: true };
  ctx.conversation = 'c-1';
  ctx.target = 'gpt-4o';
  ctx.detail.stream = true;
  const e = auditEventOf(ctx, { effect: 'deny', reason: 'user.banned', rule: 'ban:1' }, 'denied', { status: 403 }, 1012.3456);
  assert.equal(e.durationMs, 12.346);
  assert.deepEqual({ ...e, time: undefined }, {
    time: undefined,
    door: 'model',
    agent: 'support',
    user: 'alice',
    method: 'chat.completions',
    target: 'gpt-4o',
    decision: { effect: 'deny', reason: 'user.banned', rule: 'ban:1' },
    outcome: 'denied',
    durationMs: 12.346,
    detail: { stream: true, userVerified: true, conversation: 'c-1', status: 403 },
  });
  const anon = auditEventOf(newRequestContext('tool', 'http.POST', 0), { effect: 'deny', reason: 'auth.missing', rule: 'http' }, 'denied', {}, 1);
  assert.equal('user' in anon, false);
  assert.equal('session' in anon, false);
  assert.deepEqual(anon.detail, {}, 'no user, no conversation: nothing claimed about them');
});

test('auditEventOf: the MCP session is recorded when known; an asserted (unproven) user is never marked verified', async (t) => {
  const { auditEventOf, newRequestContext } = await import('../../src/door/context.ts');
  const ctx = newRequestContext('tool', 'tools/call', 500);
  ctx.user = { id: 'bob', verified: false };
  ctx.session = 's-42';
  const e = auditEventOf(ctx, { effect: 'allow', reason: 'policy.permit', rule: 'p1' }, 'ok', {}, 520);
  assert.equal(e.session, 's-42');
  assert.equal(e.user, 'bob');
  assert.deepEqual(e.detail, {});
  // The record's time is the arrival: the clock now, less the time elapsed since arrival.
  t.mock.timers.enable({ apis: ['Date'], now: 1_700_000_000_000 });
  assert.equal(auditEventOf(ctx, { effect: 'allow', reason: 'policy.permit', rule: 'p1' }, 'ok', {}, 750).time, new Date(1_700_000_000_000 - 250).toISOString());
});

test('the report carries the failure\'s own code (ERR_AUDIT_WRITE when it has none), its durability, and the count over both kinds', async () => {
  const reports: AuditFailure[] = [];
  let now = 0;
  const failing = (err: unknown) => ({ append: (): Promise<AuditRecord> => Promise.reject(err) });
  const step = new AuditStep(failing(new BastionError('ERR_STORE', 'store down')), { reportEveryMs: 1, now: () => now, onFailure: (f) => reports.push(f) });
  assert.equal(await step.durable(event()), false);
  now = 10;
  step.batched(event('http.request'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reports.map((r) => [r.code, r.durability, r.count]), [['ERR_STORE', 'durable', 1], ['ERR_STORE', 'batched', 2]]);

  for (const err of [new Error('plain'), 'a string', null, { code: 42 }]) {
    const got: AuditFailure[] = [];
    assert.equal(await new AuditStep(failing(err), { onFailure: (f) => got.push(f) }).durable(event()), false);
    assert.equal(got[0]?.code, 'ERR_AUDIT_WRITE', String(err));
  }
  const sync: AuditFailure[] = [];
  new AuditStep({ append: () => { throw new BastionError('ERR_STORE', 'sync'); } }, { onFailure: (f) => sync.push(f) }).batched(event());
  assert.deepEqual(sync.map((r) => [r.code, r.durability, r.method]), [['ERR_STORE', 'batched', 'tools/call']]);
});
