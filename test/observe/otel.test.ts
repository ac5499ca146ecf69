/**
 * OTLP/HTTP export end to end: a gateway configured with `observability.otlp`
 * (a header as a secret reference) sends its request spans, one child per timed
 * stage, and the access log records to a local receiver on 127.0.0.1, as OTLP
 * JSON. Asserted: span names, parent ids, attributes, the header, and that no
 * secret of a request appears in anything exported.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { openServeObservability } from '../../src/observe/setup.ts';
import { runInRequestScope, timeStage } from '../../src/observe/scope.ts';
import { TEST_KEY, tempDir } from '../helpers/gateway.ts';

const OTLP_TOKEN = 'otlp-token-0123456789abcdef';
const SECRET = ['sk-', 'live-', 'Pq7Wm3Xc9Vb2Nz5Lk8Jh4Gf1Ds6Aa0Ee'].join('');

interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface OtlpAttr {
  readonly key: string;
  readonly value: { stringValue?: string; intValue?: number | string; doubleValue?: number };
}
interface OtlpSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId?: string;
  readonly name: string;
  readonly startTimeUnixNano: string;
  readonly endTimeUnixNano: string;
  readonly attributes: OtlpAttr[];
}
interface OtlpLog {
  readonly body: { stringValue?: string };
  readonly traceId?: string;
  readonly spanId?: string;
  readonly attributes: OtlpAttr[];
}

const attr = (attrs: readonly OtlpAttr[], key: string): unknown => {
  const v = attrs.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.doubleValue);
};

let receiver: Server;
const received: Received[] = [];
let gateway: Gateway;
let running: RunningServer;

before(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const endpoint = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(
    file,
    `version: 1
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
observability:
  otlp:
    endpoint: ${endpoint}
    headers:
      Authorization: env:OTLP_AUTH
    serviceName: bastion-test
`,
  );
  const env = { ...process.env, T_KEY: TEST_KEY, OTLP_AUTH: `Bearer ${OTLP_TOKEN}` };
  const { config } = await loadConfig(file, { env, secrets: 'strict' });
  const obs = openServeObservability(config.observability, {}, () => undefined, false);
  assert.ok(obs.telemetry, 'no telemetry from the config');
  ({ gateway } = await Gateway.open(config, { observe: { telemetry: obs.telemetry, defaultMetrics: false } }));
  running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 });
});

after(async () => {
  await running.close();
  await gateway.close();
  await new Promise<void>((r) => receiver.close(() => r()));
});

test('a request span with a child per stage, and the access record, reach the OTLP receiver without secrets', async () => {
  // A refused request carrying the secret in a header and the body (the listener's own refusal).
  const refused = await fetch(running.url, { method: 'POST', headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' }, body: JSON.stringify({ secret: SECRET }) });
  assert.equal(refused.status, 401);
  // A door request whose stages are timed: the record is appended in the request's scope.
  await runInRequestScope(async () => {
    timeStage('resolveTool', () => undefined);
    await timeStage('decide', async () => new Promise((r) => setTimeout(r, 2)));
    await gateway.audit.append({
      time: new Date().toISOString(),
      door: 'tool',
      agent: 'a',
      method: 'tools/call',
      target: 'x__y',
      decision: { effect: 'deny', reason: 'policy.no_permit', rule: 'default-deny' },
      outcome: 'denied',
      durationMs: 5,
      args: { token: SECRET },
      detail: { code: 'ERR_POLICY_DENIED', note: SECRET },
    });
  });
  await gateway.observer.flush();

  const traces = received.filter((r) => r.path === '/v1/traces');
  const logs = received.filter((r) => r.path === '/v1/logs');
  assert.ok(traces.length > 0, 'no traces exported');
  assert.ok(logs.length > 0, 'no logs exported');
  for (const r of received) {
    assert.equal(r.headers.authorization, `Bearer ${OTLP_TOKEN}`);
    assert.match(r.headers['content-type'] ?? '', /^application\/json/);
    assert.ok(!r.body.includes(SECRET), `secret exported to ${r.path}`);
  }
  const spans: OtlpSpan[] = traces.flatMap((t) => (JSON.parse(t.body) as { resourceSpans: { resource: { attributes: OtlpAttr[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans.flatMap((rs) => {
    assert.equal(attr(rs.resource.attributes, 'service.name'), 'bastion-test');
    return rs.scopeSpans.flatMap((ss) => ss.spans);
  }));

  const refusedSpan = spans.find((s) => s.name === 'bastion.tool' && attr(s.attributes, 'bastion.decision.reason') === 'auth.invalid');
  assert.ok(refusedSpan, 'no span for the refused request');
  assert.equal(attr(refusedSpan.attributes, 'http.response.status_code'), 401);
  assert.equal(refusedSpan.parentSpanId ?? '', '');

  const call = spans.find((s) => s.name === 'bastion.tool' && attr(s.attributes, 'bastion.method') === 'tools/call');
  assert.ok(call, 'no span for the tool call');
  assert.equal(attr(call.attributes, 'bastion.agent'), 'a');
  assert.equal(attr(call.attributes, 'bastion.decision.effect'), 'deny');
  assert.equal(attr(call.attributes, 'bastion.decision.rule'), 'default-deny');
  assert.equal(attr(call.attributes, 'bastion.error_code'), 'ERR_POLICY_DENIED');
  const lasted = BigInt(call.endTimeUnixNano) - BigInt(call.startTimeUnixNano);
  assert.ok(lasted > 4_999_000n && lasted < 5_001_000n, `span lasted ${lasted} ns, recorded 5 ms`);
  const children = spans.filter((s) => s.parentSpanId === call.spanId);
  assert.deepEqual(children.map((s) => s.name).sort(), ['decide', 'resolveTool']);
  for (const c of children) {
    assert.equal(c.traceId, call.traceId);
    assert.equal(attr(c.attributes, 'bastion.stage'), c.name);
    assert.ok(BigInt(c.endTimeUnixNano) >= BigInt(c.startTimeUnixNano));
  }
  // The refused request had no stages: no span has it as parent.
  assert.equal(spans.filter((s) => s.parentSpanId === refusedSpan.spanId).length, 0);

  const records: OtlpLog[] = logs.flatMap((l) => (JSON.parse(l.body) as { resourceLogs: { scopeLogs: { logRecords: OtlpLog[] }[] }[] }).resourceLogs.flatMap((rl) => rl.scopeLogs.flatMap((sl) => sl.logRecords)));
  const access = records.find((r) => r.traceId === call.traceId);
  assert.ok(access, 'no access record in the call span');
  assert.equal(access.body.stringValue, 'access');
  assert.equal(access.spanId, call.spanId);
  assert.equal(attr(access.attributes, 'bastion.decision.reason'), 'policy.no_permit');
});
