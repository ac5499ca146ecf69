/**
 * Observability of a running gateway over real sockets: `/metrics` parsed
 * (names, a denied tool call counted by door, effect and reason), its access
 * rule, per-gateway registries, one access line per request captured from a
 * pino destination with no secret of the request in it, and `/readyz` turning
 * 503 while a registered check fails and 200 after it recovers.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { createLogger } from '../../src/observe/log.ts';
import { ModelDoor } from '../../src/model/door.ts';
import { BAD_UPSTREAM_YAML, OTHER_KEY, TEST_KEY, connect, tempDir } from '../helpers/gateway.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdef-observe';
/** A credential-shaped value sent in a header and as a tool argument: it must appear in no log line. */
const SECRET = ['sk-', 'live-', 'Zq8Xw2Vb7Nm4Kp1Lr6Ts3Yu9Hj5Gf0Dc'].join('');

/** One sample of the Prometheus text format. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text exposition (0.0.4): samples only, comments skipped. */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string>): number {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value ?? 0;
}

interface Started {
  readonly gateway: Gateway;
  readonly running: RunningServer;
  readonly lines: string[];
  close(): Promise<void>;
}

async function start(extra = ''): Promise<Started> {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(
    file,
    `version: 1
store:
  sqlite: ./bastion.db
admin:
  keys: [env:ADMIN_KEY]
agents:
  a:
    keys: [env:T_KEY]
    tools: ["bad__echo"]
  b:
    keys: [env:O_KEY]
    tools: ["bad__echo"]
${extra}
${BAD_UPSTREAM_YAML}`,
  );
  const { config } = await loadConfig(file, { env: { ...process.env, T_KEY: TEST_KEY, O_KEY: OTHER_KEY, ADMIN_KEY }, secrets: 'strict' });
  const lines: string[] = [];
  const logger = createLogger({ level: 'info', format: 'json', destination: { write: (s: string) => void lines.push(s) }, isTTY: false });
  const { gateway } = await Gateway.open(config, { observe: { logger, defaultMetrics: false } });
  const model = await ModelDoor.open(gateway);
  const running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 }, { model });
  return {
    gateway,
    running,
    lines,
    close: async () => {
      await running.close();
      await model.close();
      await gateway.close();
    },
  };
}

const get = (url: URL, path: string, headers: Record<string, string> = {}): Promise<Response> => fetch(new URL(path, url), { headers });

describe('a gateway on a loopback listener', () => {
  let gw: Started;
  let client: Client;
  before(async () => {
    gw = await start();
    client = await connect(gw.running.url, TEST_KEY);
  });
  after(async () => {
    await client.close();
    await gw.close();
  });

  test('/metrics answers without a key and counts a denied tool call by door, effect and reason', async () => {
    const before = parseMetrics(await (await get(gw.running.url, '/metrics')).text());
    const result = await client.callTool({ name: 'bad__leak', arguments: {} });
    assert.equal(result.isError, true);
    await gw.gateway.audit.flush();
    const res = await get(gw.running.url, '/metrics');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const samples = parseMetrics(await res.text());
    const names = new Set(samples.map((s) => s.name));
    for (const n of [
      'bastion_requests_total',
      'bastion_decisions_total',
      'bastion_request_duration_seconds_bucket',
      'bastion_audit_records_total',
      'bastion_audit_write_seconds_bucket',
      'bastion_audit_queue_depth',
      'bastion_audit_queue_capacity',
      'bastion_audit_write_failures_total',
      'bastion_approvals_pending',
      'bastion_ready',
      'bastion_readiness_check',
    ]) {
      assert.ok(names.has(n), `missing ${n}`);
    }
    // The tool is hidden from agent a: refused as unknown (the same answer as for a tool that does not exist).
    const denied = samples.filter((s) => s.name === 'bastion_decisions_total' && s.labels.door === 'tool' && s.labels.effect === 'deny');
    assert.ok(denied.length > 0, 'no tool denial counted');
    const reason = denied.find((s) => s.value > valueOf(before, 'bastion_decisions_total', s.labels))?.labels.reason;
    assert.ok(reason !== undefined, 'no denial count grew');
    assert.match(reason, /^[a-z_]+\.[a-z_.]+$/);
    assert.equal(valueOf(samples, 'bastion_decisions_total', { door: 'tool', effect: 'deny', reason }), valueOf(before, 'bastion_decisions_total', { door: 'tool', effect: 'deny', reason }) + 1);
    assert.ok(valueOf(samples, 'bastion_requests_total', { door: 'tool', outcome: 'denied', agent: 'a' }) >= 1);
    assert.equal(valueOf(samples, 'bastion_readiness_check', { check: 'store' }), 1);
    assert.equal(valueOf(samples, 'bastion_audit_queue_depth', {}), 0);
  });

  test('one access line per request, fixed fields, no secret from the request', async () => {
    await gw.gateway.audit.flush();
    const from = gw.lines.length;
    const records = (await gw.gateway.store.readAudit(1, 100_000)).length;
    // Three requests: a denied call carrying the secret as an argument, an allowed call, and a refused key carrying it as a header.
    await client.callTool({ name: 'bad__fingerprint', arguments: { text: SECRET } });
    await client.callTool({ name: 'bad__echo', arguments: { text: 'hello' } });
    const refused = await fetch(gw.running.url, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json', 'x-extra': SECRET }, body: '{}' });
    assert.equal(refused.status, 401);
    await gw.gateway.audit.flush();
    // Side events (first-use tool pins written while the catalogue loads) are records but not requests: no line.
    const newRecords = (await gw.gateway.store.readAudit(records + 1, 100_000)).filter((r) => r.door !== 'system' && r.method !== 'tools/pin');
    const lines = gw.lines.slice(from);
    assert.equal(lines.length, newRecords.length, lines.join(''));
    assert.ok(lines.length >= 3);
    for (const l of lines) {
      assert.ok(!l.includes(SECRET), `secret in ${l}`);
      const j = JSON.parse(l) as Record<string, unknown>;
      assert.equal(j.msg, 'access');
      for (const k of ['door', 'method', 'outcome', 'effect', 'reason', 'rule', 'durationMs']) assert.ok(k in j, `${k} missing from ${l}`);
      assert.equal('args' in j || 'headers' in j || 'detail' in j || 'user' in j, false);
    }
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(parsed.some((j) => j.method === 'tools/call' && j.outcome === 'ok' && j.agent === 'a'));
    assert.ok(parsed.some((j) => j.reason === 'auth.invalid' && j.status === 401 && j.agent === null));
  });

  test('the model door and the admin API reach the same observer: one access line each', async () => {
    await gw.gateway.audit.flush();
    const from = gw.lines.length;
    const model = await fetch(new URL('/v1/chat/completions', gw.running.url), { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(model.status, 401);
    const admin = await get(gw.running.url, '/api/approvals', { authorization: `Bearer ${SECRET}` });
    assert.equal(admin.status, 401);
    await gw.gateway.audit.flush();
    const lines = gw.lines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((j) => [j.door, j.reason]), [['model', 'auth.invalid'], ['admin', 'auth.invalid']]);
    assert.ok(!JSON.stringify(lines).includes(SECRET));
    const samples = parseMetrics(await (await get(gw.running.url, '/metrics')).text());
    assert.ok(valueOf(samples, 'bastion_requests_total', { door: 'model', outcome: 'denied', agent: 'none' }) >= 1);
    assert.ok(valueOf(samples, 'bastion_request_duration_seconds_count', { door: 'admin' }) >= 1);
  });

  test('/readyz is 503 while a registered check fails and 200 after it recovers; details stay short codes', async () => {
    let up = true;
    const remove = gw.gateway.readiness.register('upstream:bad', () => (up ? { ok: true } : { ok: false, detail: 'connect ECONNREFUSED http://user:pw@10.0.0.1/' }));
    try {
      let res = await get(gw.running.url, '/readyz');
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { ready: true, checks: { store: { ok: true }, 'upstream:bad': { ok: true } } });
      up = false;
      res = await get(gw.running.url, '/readyz');
      assert.equal(res.status, 503);
      const body = await res.text();
      assert.deepEqual(JSON.parse(body), { ready: false, checks: { store: { ok: true }, 'upstream:bad': { ok: false, detail: 'error' } } });
      assert.ok(!body.includes('pw@'));
      const samples = parseMetrics(await (await get(gw.running.url, '/metrics')).text());
      assert.equal(valueOf(samples, 'bastion_upstream_up', { upstream: 'bad' }), 0);
      assert.equal(valueOf(samples, 'bastion_ready', {}), 0);
      up = true;
      res = await get(gw.running.url, '/readyz');
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { ready: boolean }).ready, true);
      // Liveness stays as it was.
      assert.equal((await get(gw.running.url, '/healthz')).status, 200);
    } finally {
      remove();
    }
  });
});

describe('/metrics access', () => {
  let gw: Started;
  before(async () => {
    gw = await start('observability:\n  metrics:\n    access: admin-key\n');
  });
  after(async () => gw.close());

  test('with access admin-key, a request without or with a wrong key is refused (401) and audited; an admin key reads', async () => {
    const none = await get(gw.running.url, '/metrics');
    assert.equal(none.status, 401);
    assert.match(await none.text(), /ERR_AUTH_MISSING|ERR_AUTH/);
    assert.equal((await get(gw.running.url, '/metrics', { authorization: `Bearer ${TEST_KEY}` })).status, 401);
    const ok = await get(gw.running.url, '/metrics', { authorization: `Bearer ${ADMIN_KEY}` });
    assert.equal(ok.status, 200);
    assert.match(await ok.text(), /^# HELP bastion_/m);
    await gw.gateway.audit.flush();
    const refusals = (await gw.gateway.store.readAudit(1, 100_000)).filter((r) => r.method === 'api.metrics');
    assert.deepEqual(refusals.map((r) => r.decision.reason), ['auth.missing', 'auth.invalid']);
  });

  test('two gateways in one process keep their own registries', async () => {
    const other = await start('observability:\n  metrics:\n    listen: 127.0.0.1:0\n');
    try {
      // Served on its own listener: the main listener does not know /metrics.
      assert.equal((await get(other.running.url, '/metrics')).status, 404);
      assert.notEqual(other.gateway.observer.metrics.registry, gw.gateway.observer.metrics.registry);
      const a = parseMetrics((await gw.gateway.observer.metrics.scrape()).body);
      const b = parseMetrics((await other.gateway.observer.metrics.scrape()).body);
      assert.ok(valueOf(a, 'bastion_decisions_total', { door: 'admin', effect: 'deny', reason: 'auth.missing' }) >= 1);
      assert.equal(valueOf(b, 'bastion_decisions_total', { door: 'admin', effect: 'deny', reason: 'auth.missing' }), 0);
    } finally {
      await other.close();
    }
  });
});
