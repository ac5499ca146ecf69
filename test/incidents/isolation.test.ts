/**
 * `Isolations` (src/incidents/isolation.ts) and the kernel's authentication of
 * an isolated agent: the state machine and its errors, listeners, the store
 * outage rule (last known state kept), keys and OAuth access tokens refused; and
 * the embedded case: two gateways in one process on one SQLite file, each with
 * its own LocalBus (so only the store poll connects them), converge in < 1 s.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LocalBus } from '../../src/cluster/bus.ts';
import { authenticateAgent, authenticateAgentOrToken, KeyIndex } from '../../src/door/authenticate.ts';
import { isBastionError } from '../../src/errors.ts';
import { Isolations, type IsolationChange } from '../../src/incidents/isolation.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { sha256Hex } from '../../src/util/crypto.ts';
import { tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';

const KEY = 'incident-key-0123456789abcdef-demo';

describe('Isolations', () => {
  let store: Store;
  let iso: Isolations;
  const bus = new LocalBus();
  const agents = new Set(['demo', 'other']);

  before(async () => {
    store = await openSqliteStore(':memory:');
    iso = await Isolations.open({ store, bus, isAgent: (a) => agents.has(a), reuseTtlMs: 0, pollMs: 60_000 });
  });
  after(async () => {
    iso.close();
    await store.close();
  });

  test('isolate, idempotent isolate, restore; errors; listeners; the bus message', async () => {
    const changes: IsolationChange[] = [];
    const off = iso.onChange((c) => changes.push(c));
    const messages: unknown[] = [];
    bus.subscribe('broadcast', (m) => messages.push(m));
    await assert.rejects(iso.isolate('nobody', 'x', 'admin'), (e) => isBastionError(e, 'ERR_AGENT_UNKNOWN'));
    await assert.rejects(iso.isolate('demo', 'x'.repeat(501), 'admin'), (e) => isBastionError(e, 'ERR_CLI_USAGE'));
    await assert.rejects(iso.restore('demo', 'r', 'admin'), (e) => isBastionError(e, 'ERR_AGENT_NOT_ISOLATED'));
    await assert.rejects(iso.restore('nobody', 'r', 'admin'), (e) => isBastionError(e, 'ERR_AGENT_UNKNOWN'));
    assert.equal(iso.isIsolated('demo'), false);
    const rec = await iso.isolate('demo', 'leak', 'admin');
    assert.deepEqual([rec.agent, rec.reason, rec.by, rec.restoredAt], ['demo', 'leak', 'admin', undefined]);
    assert.match(rec.at, /^\d{4}-\d{2}-\d{2}T/);
    assert.equal(iso.isIsolated('demo'), true, 'at once, from memory');
    const again = await iso.isolateDetailed('demo', 'other reason', 'cli:x');
    assert.deepEqual([again.created, again.record.reason, again.record.at], [false, 'leak', rec.at]);
    const restored = await iso.restore('demo', 'fixed', 'admin');
    assert.deepEqual([restored.restoredBy, restored.restoreReason], ['admin', 'fixed']);
    assert.equal(iso.isIsolated('demo'), false);
    assert.deepEqual(changes, [{ agent: 'demo', isolated: true }, { agent: 'demo', isolated: false }]);
    assert.deepEqual(messages, [{ type: 'incident.isolate', agent: 'demo' }, { type: 'incident.isolate', agent: 'demo' }, { type: 'incident.restore', agent: 'demo' }]);
    assert.deepEqual((await iso.list()).map((r) => [r.agent, r.restoredBy]), [['demo', 'admin']]);
    off();
  });

  test('a store that cannot be read keeps the last known state', async () => {
    const s2 = await openSqliteStore(':memory:');
    const other = await Isolations.open({ store: s2, bus: new LocalBus(), isAgent: () => true, pollMs: 60_000 });
    await s2.isolateAgent({ id: 'i', agent: 'demo', reason: 'r', by: 'b', at: 1 });
    await other.refresh();
    assert.equal(other.isIsolated('demo'), true);
    await s2.close();
    await other.refresh();
    assert.equal(other.isIsolated('demo'), true, 'still isolated after a failed read');
    other.close();
  });

  test('the kernel refuses an isolated agent\'s key and its OAuth access token as agent.isolated, naming it', async () => {
    const isolated = new Set<string>();
    const keys = new KeyIndex({ isolated: (a) => isolated.has(a) });
    keys.add(sha256Hex(KEY), 'demo');
    const headers = { authorization: `Bearer ${KEY}` };
    assert.deepEqual(authenticateAgent(headers, keys, ['authorization']), { ok: true, agent: 'demo', header: 'authorization' });
    isolated.add('demo');
    assert.deepEqual(authenticateAgent(headers, keys, ['authorization']), { ok: false, reason: 'agent.isolated', agent: 'demo' });
    const tokens = { verify: async () => ({ ok: true as const, agent: 'demo', user: 'alice' }) };
    assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Bearer an.access.token' }, keys, tokens), { ok: false, reason: 'agent.isolated', agent: 'demo' });
    assert.deepEqual(await authenticateAgentOrToken(headers, keys, tokens), { ok: false, reason: 'agent.isolated', agent: 'demo' });
    isolated.delete('demo');
    assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Bearer an.access.token' }, keys, tokens), { ok: true, agent: 'demo', tokenUser: 'alice' });
    // A predicate that throws isolates (fail closed); a wrong key is still auth.invalid.
    const failing = new KeyIndex({ isolated: () => { throw new Error('x'); } });
    failing.add(sha256Hex(KEY), 'demo');
    assert.equal(authenticateAgent(headers, failing, ['authorization']).ok, false);
    assert.deepEqual(authenticateAgent({ authorization: 'Bearer wrong-key-0123456789abcdef' }, keys, ['authorization']), { ok: false, reason: 'auth.invalid' });
  });
});

describe('embedded store: two gateways on one SQLite file, no Redis (store poll)', { timeout: 30_000 }, () => {
  let a: Gateway;
  let b: Gateway;
  let runB: RunningServer;

  before(async () => {
    const dir = tempDir();
    const { config } = await writeAndLoadConfig(dir, `version: 1\nserver: { listen: 127.0.0.1:0 }\nstore: { sqlite: ./bastion.db }\nagents:\n  demo:\n    keys: [env:INC_KEY]\n`, { INC_KEY: KEY });
    ({ gateway: a } = await Gateway.open(config));
    ({ gateway: b } = await Gateway.open(config));
    runB = await startHttpServer(b, { host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await runB?.close();
    await a?.close();
    await b?.close();
  });

  const toolOnB = async (): Promise<{ status: number; text: string }> => {
    // A stateless (2026-07-28) tools/list at the tool door: 200 while served, 403 once isolated.
    const res = await fetch(runB.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/list' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
    return { status: res.status, text: await res.text() };
  };

  test('isolate on A → refusal on B within a second; restore on A → served on B', async () => {
    assert.ok(a.bus instanceof LocalBus && b.bus instanceof LocalBus && a.bus !== b.bus);
    assert.equal((await toolOnB()).status, 200);
    const t0 = performance.now();
    await a.isolations.isolate('demo', 'test', 'admin');
    let r = await toolOnB();
    while (r.status !== 403 && performance.now() - t0 < 5_000) {
      await new Promise((res) => setTimeout(res, 5));
      r = await toolOnB();
    }
    const ms = Math.round(performance.now() - t0);
    console.log(`isolate→refusal on another gateway (embedded SQLite, store poll): ${ms} ms`);
    assert.equal(r.status, 403);
    assert.match(r.text, /ERR_AGENT_ISOLATED/);
    assert.ok(ms < 1000, `${ms} ms`);
    const t1 = performance.now();
    await a.isolations.restore('demo', 'done', 'admin');
    while (b.isolations.isIsolated('demo') && performance.now() - t1 < 5_000) await new Promise((res) => setTimeout(res, 5));
    assert.ok(performance.now() - t1 < 1000);
    assert.equal((await toolOnB()).status, 200);
  });
});
