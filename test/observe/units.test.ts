/**
 * The pure parts of src/observe/: who may read `/metrics`, what counts as
 * loopback, what `/readyz` may show, bounded label values, the access line's
 * fields and redaction, the request scope, and the serve-time setup from the
 * environment.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { test } from 'node:test';
import fc from 'fast-check';
import type { AuditEvent } from '../../src/audit/types.ts';
import { KeyIndex } from '../../src/door/authenticate.ts';
import { REASONS } from '../../src/door/reasons.ts';
import { publicReport, Readiness } from '../../src/observe/health.ts';
import { accessFields } from '../../src/observe/log.ts';
import { GatewayMetrics, MAX_EXTRA_REASONS } from '../../src/observe/metrics.ts';
import { isLoopback, isRequestRecord, metricsAccess } from '../../src/observe/observer.ts';
import { currentScope, MAX_STAGES, runInRequestScope, timedStages, timeStage } from '../../src/observe/scope.ts';
import { openServeObservability } from '../../src/observe/setup.ts';
import { startMetricsServer } from '../../src/observe/metrics-server.ts';
import type { ResolvedObservability } from '../../src/config/types.ts';

const event = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  time: new Date().toISOString(),
  door: 'tool',
  agent: 'a',
  method: 'tools/call',
  decision: { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny' },
  outcome: 'denied',
  durationMs: 1.5,
  ...over,
});

test('metricsAccess: off, loopback open, admin key elsewhere or always (the kernel authenticator)', () => {
  const admin = new KeyIndex();
  admin.add(createHash('sha256').update('the-admin-key-0123456789').digest('hex'), 'admin');
  const auto = { enabled: true, access: 'auto' as const };
  const h = (authorization?: string): IncomingHttpHeaders => (authorization === undefined ? {} : { authorization });
  assert.equal(metricsAccess(auto, '127.0.0.1', h(), admin), 'serve');
  assert.equal(metricsAccess(auto, '::1', h(), admin), 'serve');
  assert.equal(metricsAccess(auto, '0.0.0.0', h(), admin), 'auth.missing');
  assert.equal(metricsAccess(auto, '10.1.2.3', h('Bearer wrong'), admin), 'auth.invalid');
  assert.equal(metricsAccess(auto, '10.1.2.3', h('Bearer the-admin-key-0123456789'), admin), 'serve');
  assert.equal(metricsAccess(auto, '10.1.2.3', h(`Basic ${Buffer.from('admin:the-admin-key-0123456789').toString('base64')}`), admin), 'serve');
  // A header that holds no credential is an invalid one, not a missing one: the client tried.
  assert.equal(metricsAccess(auto, '10.1.2.3', h(`Basic ${Buffer.from('the-admin-key-0123456789').toString('base64')}`), admin), 'auth.invalid');
  assert.equal(metricsAccess(auto, '10.1.2.3', h('Token the-admin-key-0123456789'), admin), 'auth.invalid');
  assert.equal(metricsAccess({ enabled: true, access: 'admin-key' }, '127.0.0.1', h(), admin), 'auth.missing');
  assert.equal(metricsAccess({ enabled: false, access: 'auto' }, '127.0.0.1', h(), admin), 'off');
  assert.equal(metricsAccess({ enabled: true, access: 'auto', listen: '127.0.0.1:9464' }, '127.0.0.1', h('Bearer the-admin-key-0123456789'), admin), 'off');
});

test('isLoopback: 127/8, ::1 and IPv4-mapped loopback only', () => {
  for (const a of ['127.0.0.1', '127.255.0.9', '::1', '[::1]', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['0.0.0.0', '::', '10.0.0.1', '::ffff:10.0.0.1', '128.0.0.1', 'localhost', '1127.0.0.1', '']) assert.equal(isLoopback(a), false, a);
  fc.assert(
    fc.property(fc.ipV4(), (ip) => isLoopback(ip) === ip.startsWith('127.')),
    { numRuns: 500 },
  );
});

test('publicReport keeps short codes and replaces anything else', async () => {
  const r = new Readiness(50);
  r.register('store', () => ({ ok: true }));
  r.register('redis', () => ({ ok: false, detail: 'ECONNREFUSED' }));
  r.register('upstream:x', () => ({ ok: false, detail: 'connect to https://user:secret@host/path failed' }));
  r.register('upstream:slow', () => new Promise(() => undefined));
  assert.deepEqual(publicReport(await r.report()), {
    ready: false,
    checks: { redis: { ok: false, detail: 'ECONNREFUSED' }, store: { ok: true }, 'upstream:slow': { ok: false, detail: 'timeout' }, 'upstream:x': { ok: false, detail: 'error' } },
  });
});

test('label values stay bounded whatever reasons, agents and stages arrive', async () => {
  const m = new GatewayMetrics((n) => n === 'a', {}, { defaultMetrics: false });
  fc.assert(
    fc.property(fc.string(), fc.option(fc.string(), { nil: null }), fc.string(), (reason, agent, stage) => {
      m.observeRecord(event({ decision: { effect: 'deny', reason, rule: 'r' }, agent }), true, [{ name: stage, start: 0, end: 1, failed: false }]);
    }),
    { numRuns: 400 },
  );
  for (const r of Object.keys(REASONS).slice(0, 5)) m.observeRecord(event({ decision: { effect: 'deny', reason: r, rule: 'r' } }), true);
  const text = (await m.scrape()).body;
  const values = (label: string): Set<string> => new Set([...text.matchAll(new RegExp(`${label}="((?:[^"\\\\]|\\\\.)*)"`, 'g'))].map((x) => x[1]!));
  assert.ok(values('reason').size <= 5 + MAX_EXTRA_REASONS + 1);
  for (const a of values('agent')) assert.ok(['a', 'admin', 'none', 'other'].includes(a), a);
  for (const r of values('reason')) assert.match(r, /^[a-z0-9_.-]+$/);
  assert.ok(values('stage').size <= 65);
});

test('accessFields: fixed fields only, free text redacted and bounded', () => {
  const token = ['gh', 'p_', 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8'].join('');
  const f = accessFields(event({ method: `tools/call ${token}`, args: { token }, argsDigest: 'ab', user: 'alice@example.com', detail: { status: 403, code: 'ERR_POLICY_DENIED', text: token } }));
  const line = JSON.stringify(f);
  assert.ok(!line.includes(token), line);
  assert.ok(!line.includes('alice'), line);
  assert.deepEqual(Object.keys(f).sort(), ['agent', 'code', 'door', 'durationMs', 'effect', 'method', 'outcome', 'reason', 'rule', 'status']);
  assert.equal(f.status, 403);
  assert.ok(accessFields(event({ method: 'x'.repeat(10_000) })).method.length <= 128);
  assert.equal('code' in accessFields(event({ detail: { code: 'not a code; <script>' } })), false);
});

test('side events and system records are not requests', () => {
  assert.equal(isRequestRecord({ door: 'tool', method: 'tools/call' }), true);
  assert.equal(isRequestRecord({ door: 'network', method: 'CONNECT' }), true);
  for (const e of [{ door: 'system', method: 'serve.start' }, { door: 'model', method: 'alert' }, { door: 'model', method: 'ratelimit.charge' }, { door: 'tool', method: 'tools/pin' }, { door: 'tool', method: 'oauth.refresh' }] as const) {
    assert.equal(isRequestRecord(e), false, e.method);
  }
});

test('timeStage records in the request scope, is a no-op outside, and keeps at most MAX_STAGES', async () => {
  assert.equal(timeStage('outside', () => 7), 7);
  assert.equal(currentScope(), undefined);
  await runInRequestScope(async () => {
    assert.equal(timeStage('one', () => 1), 1);
    await assert.rejects(timeStage('two', () => Promise.reject(new Error('boom'))), /boom/);
    // A concurrent request has its own scope.
    runInRequestScope(() => timeStage('other', () => 0));
    const s = currentScope()!;
    assert.deepEqual(s.stages.map((x) => [x.name, x.failed]), [['one', false], ['two', true]]);
    for (let i = 0; i < MAX_STAGES + 10; i++) timeStage(`s${i}`, () => i);
    assert.equal(s.stages.length, MAX_STAGES);
  });
});

test('timedStages wraps the named stages of a module, keeping sync stages sync', async () => {
  const mod = { load: async (x: number) => x + 1, check: (x: number) => x * 2, isRefused: (x: object) => 'refused' in x, label: 'not a function' };
  const { load, check } = timedStages(mod, ['load', 'check']);
  assert.throws(() => timedStages(mod, ['label']), TypeError);
  await runInRequestScope(async () => {
    assert.equal(check(4), 8);
    assert.equal(await load(1), 2);
    assert.equal(mod.isRefused({}), false);
    assert.deepEqual(currentScope()!.stages.map((s) => s.name), ['check', 'load']);
  });
  // Outside a request: the plain functions.
  assert.equal(check(1), 2);
});

test('openServeObservability: BASTION_LOG_LEVEL wins, a bad one or a bad endpoint only warns', async () => {
  const cfg: ResolvedObservability = { metrics: { enabled: true, access: 'auto' }, logs: { level: 'info', format: 'json', access: true } };
  const lines: string[] = [];
  const a = openServeObservability(cfg, { BASTION_LOG_LEVEL: 'warn' }, (s) => void lines.push(s), false);
  a.logger.info('hidden');
  a.logger.warn('shown');
  a.logger.error('also shown');
  // The lines of one event-loop turn reach the writer together, at the end of the turn.
  assert.equal(lines.length, 0);
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, 1);
  assert.deepEqual(lines[0]!.trimEnd().split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg), ['shown', 'also shown']);
  assert.equal(a.telemetry, undefined);
  const b = openServeObservability(cfg, { BASTION_LOG_LEVEL: 'loud', OTEL_EXPORTER_OTLP_ENDPOINT: 'file:///etc/passwd' }, () => undefined, false);
  assert.equal(b.logger.level, 'info');
  assert.equal(b.warnings.length, 2);
  assert.equal(b.telemetry, undefined);
  const c = openServeObservability(cfg, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1' }, () => undefined, false);
  assert.ok(c.telemetry);
  await c.telemetry.shutdown();
  // Pretty on a terminal: not JSON.
  const pretty: string[] = [];
  const d = openServeObservability({ ...cfg, logs: { ...cfg.logs, format: 'auto' } }, {}, (s) => void pretty.push(s), true);
  d.logger.info({ door: 'tool' }, 'access');
  await new Promise((r) => setImmediate(r));
  assert.equal(pretty.length > 0, true);
  assert.throws(() => JSON.parse(pretty.join('')) as unknown);
});

test('the separate metrics listener serves GET /metrics only', async () => {
  const m = new GatewayMetrics(() => false, {}, { defaultMetrics: false });
  m.observeRecord(event(), true);
  const server = await startMetricsServer(m, '127.0.0.1', 0);
  try {
    const ok = await fetch(server.url);
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^bastion_requests_total\{door="tool",outcome="denied",agent="other"\} 1$/m);
    assert.equal((await fetch(new URL('/mcp', server.url))).status, 404);
    assert.equal((await fetch(server.url, { method: 'POST', body: '' })).status, 404);
  } finally {
    await server.close();
  }
});
