// Scale test finding (bug 4 and 5): during a store outage the tool door EXECUTED 228 tool calls whose audit record
// then failed to write (the record is written after the upstream answers), and
// `bastion_audit_write_failures_total{durability="durable"}` stayed 0 (the session wrote through the log directly,
// not through the audit step). Now the audit log has a write gate: closed by a failed commit, reopened by a
// successful commit or store probe; the doors check it before contacting anything, and the session writes through
// the audit step. Deterministic: the store's appends fail while a flag is set; the assertions are on counts.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { AUDIT_RESTORED, AuditLog, type AuditLogStore } from '../../src/audit/log.ts';
import { AuditStep } from '../../src/door/audit-step.ts';
import { ModelDoor } from '../../src/model/door.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { failingAppends } from '../helpers/audit-store.ts';
import { connect, tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';
import { startScaleUpstream, type ScaleUpstream } from '../scale/upstream.ts';
import { sampleEvent } from './fixtures.ts';

const KEY = 'write-gate-key-0123456789abcdef';

/** Waits (bounded, polling) until `done()` holds; the assertion after it says what was expected. */
async function until(done: () => boolean, maxMs = 10_000): Promise<void> {
  const end = Date.now() + maxMs;
  while (!done() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** The error code in a rejected call's message, or 'none' when it did not reject. */
async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'none';
  } catch (err) {
    return /\((ERR_[A-Z_]+)/.exec((err as Error).message)?.[1] ?? (err as Error).message;
  }
}

describe('the audit log write gate', () => {
  test('a failed commit closes it; the probe reopens it once the store writes, with one audit.restored record', async () => {
    const inner = await openSqliteStore(':memory:');
    const { store, failing } = failingAppends<AuditLogStore>(inner);
    const log = await AuditLog.open(store, { checkpointEvery: 1000, probeEveryMs: 5 });
    const step = new AuditStep(log);
    try {
      assert.equal(log.writable, true);
      assert.equal(await step.durable(sampleEvent(1)), true);
      failing.on = true;
      assert.equal(await step.durable(sampleEvent(2)), false);
      assert.equal(log.writable, false, 'closed by the failed commit, before the caller learned of it');
      assert.equal(step.writable, false);
      assert.equal(step.failures.durable, 1);
      failing.on = false;
      await until(() => log.writable);
      assert.equal(log.writable, true);
      const records = await inner.readAudit(1, 100);
      const restored = records.filter((r) => r.method === AUDIT_RESTORED);
      assert.equal(restored.length, 1);
      assert.equal(restored[0]!.door, 'system');
      assert.ok((restored[0]!.detail?.['failedCommits'] as number) >= 1);
      assert.deepEqual(records.filter((r) => r.door !== 'system').map((r) => r.method), [sampleEvent(1).method], 'the failed record is not there, nothing else is');
    } finally {
      await log.close();
      await inner.close();
    }
    assert.equal(log.writable, false, 'a closed log writes nothing');
  });

  test('probeEveryMs is validated', async () => {
    const inner = await openSqliteStore(':memory:');
    try {
      assert.throws(() => new AuditLog(inner, { checkpointEvery: 10, probeEveryMs: 0 }), RangeError);
    } finally {
      await inner.close();
    }
  });
});

describe('the tool door during a store outage (bug 4, bug 5)', () => {
  let upstream: ScaleUpstream;
  let gateway: Gateway;
  let running: RunningServer;
  let client: Client;
  let failing: { on: boolean };
  let inner: Store;
  const alerts: string[] = [];
  before(async () => {
    upstream = await startScaleUpstream();
    const dir = tempDir();
    const { config } = await writeAndLoadConfig(
      dir,
      `version: 1
store: { sqlite: ./bastion.db }
agents:
  a:
    keys: [env:KEY]
    tools: ["up__small"]
upstreams:
  up:
    url: ${JSON.stringify(upstream.url)}
`,
      { KEY },
    );
    inner = await openSqliteStore(join(dir, 'bastion.db'));
    let store: Store;
    ({ store, failing } = failingAppends<Store>(inner));
    ({ gateway } = await Gateway.open(config, { store, onAuditFailure: (f) => alerts.push(`${f.durability}:${f.code}`) }));
    running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 });
    client = await connect(running.url, KEY);
  });
  after(async () => {
    await client.close();
    await running.close();
    await gateway.close();
    await upstream.close();
  });

  const call = (n: number): Promise<unknown> => client.callTool({ name: 'up__small', arguments: { n } });

  test('while appends fail, only the call already in flight executes; later calls are refused with ERR_AUDIT_WRITE, counted and alerted; after recovery calls run and are recorded', async () => {
    assert.equal(await codeOf(call(1)), 'none');
    assert.deepEqual([...upstream.executed], [1]);
    const failuresBefore = gateway.auditStep.failures.durable;

    failing.on = true;
    // The residual window: the store died after the gate was last open, so this call executes; its record fails.
    assert.equal(await codeOf(call(2)), 'ERR_AUDIT_WRITE');
    assert.equal(gateway.audit.writable, false);
    // Fail closed: refused before the upstream is contacted (their refusal records fail too).
    for (const n of [3, 4, 5]) assert.equal(await codeOf(call(n)), 'ERR_AUDIT_WRITE');
    assert.deepEqual([...upstream.executed].sort(), [1, 2], 'no call executed while the gate was closed');
    // Bug 5: the session's failures are the audit step's (the metric's source), and alerted.
    assert.equal(gateway.auditStep.failures.durable - failuresBefore, 4);
    assert.ok(alerts.includes('durable:ERR_AUDIT_WRITE'));
    const metrics = await (await fetch(new URL('/metrics', running.url))).text();
    const m = /^bastion_audit_write_failures_total\{[^}]*durability="durable"[^}]*\} (\d+)/m.exec(metrics);
    assert.ok(m !== null && Number(m[1]) >= 4, `metric: ${m?.[0] ?? 'missing'}`);

    failing.on = false;
    await until(() => gateway.audit.writable);
    assert.equal(gateway.audit.writable, true, 'the store probe reopened the gate');
    assert.equal(await codeOf(call(6)), 'none');
    assert.deepEqual([...upstream.executed].sort(), [1, 2, 6]);
    await gateway.audit.flush();
    const records = await inner.readAudit(1, 1000);
    const calls = records.filter((r) => r.method === 'tools/call');
    assert.equal(calls.length, 2, 'the calls before and after the outage are recorded, once each');
    assert.ok(calls.every((r) => r.outcome === 'ok' && r.target === 'up__small'));
    assert.equal(records.filter((r) => r.method === AUDIT_RESTORED).length, 1);
  });
});

describe('the model door while the gate is closed', () => {
  let provider: Server;
  let hits = 0;
  let gateway: Gateway;
  let server: Server;
  let port: number;
  let door: ModelDoor;
  before(async () => {
    provider = createServer((req, res) => {
      hits++;
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }] }));
    });
    const providerPort = await listenLoopback(provider);
    const dir = tempDir();
    const { config } = await writeAndLoadConfig(
      dir,
      `version: 1
store: { sqlite: ./bastion.db }
agents:
  m:
    keys: [env:KEY]
    model: { provider: openai, baseUrl: "http://127.0.0.1:${providerPort}/v1" }
`,
      { KEY },
    );
    ({ gateway } = await Gateway.open(config));
    const gate = { writable: true };
    const step = gateway.auditStep;
    door = await ModelDoor.open({
      config: gateway.config,
      agentKeys: gateway.agentKeys,
      users: gateway.users,
      store: gateway.store,
      deps: gateway.deps,
      auditStep: { batched: (e) => step.batched(e), batchedBounded: (e) => step.batchedBounded(e), get writable() { return gate.writable; } },
    });
    server = createServer((req, res) => void door.handle(req, res, new URL(req.url ?? '/', 'http://bastion.invalid')));
    port = await listenLoopback(server);
    closeGate = () => (gate.writable = false);
  });
  let closeGate: () => void = () => undefined;
  after(async () => {
    await closeServer(server);
    await door.close();
    await gateway.close();
    await closeServer(provider);
  });

  const ask = (): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'bastion-user': 'alice' },
      body: JSON.stringify({ model: 'gpt-x', messages: [{ role: 'user', content: 'hello' }] }),
    });

  test('refuses with 503 ERR_AUDIT_WRITE before the provider is asked', async () => {
    const ok = await ask();
    const text = await ok.text();
    assert.equal(ok.status, 200, text);
    assert.equal(hits, 1);
    closeGate();
    const refused = await ask();
    const body = await refused.text();
    assert.equal(refused.status, 503);
    assert.match(body, /ERR_AUDIT_WRITE/);
    assert.equal(hits, 1, 'the provider was not contacted');
  });
});
