/**
 * Isolation enforced in every door of one gateway, over real sockets: the tool
 * door (legacy sessions closed, stateless 2026-07-28 requests refused), the
 * model door, the network door (proxy mode, CONNECT, base-URL mode; open tunnels
 * closed), the agent's pending approvals denied, another agent unaffected, a
 * pasted-secret placeholder of the isolated agent dead whoever presents it; the
 * admin API routes (isolate, list, restore, snapshot) with their bad input; and
 * the snapshot holding no secret.
 */
import assert from 'node:assert/strict';
import { connect as netConnect, type Socket } from 'node:net';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../../src/audit/types.ts';
import { verifySnapshot, type IncidentSnapshot } from '../../src/incidents/snapshot.ts';
import { sha256Hex } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY, TEST_MASTER_KEY, badUpstreamYaml, makeCert, proxyAuth, rawExchange, reasonOf, startEgress, startOrigin, statusOf, type Origin, type TestEgress } from '../helpers/egress.ts';
import { connect, tempDir } from '../helpers/gateway.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdef-incidents';
const GITHUB_VALUE = 'ghp_' + 'Inc1dentV'.repeat(4);
const PASTED_VALUE = 'ghp_' + 'Pa5tedVal'.repeat(4);
const V = '2026-07-28';

async function records(eg: TestEgress): Promise<AuditRecord[]> {
  await eg.gateway.audit.flush();
  return eg.gateway.store.readAudit(1, 100_000);
}

describe('incidents: an isolated agent is refused in every door', { timeout: 60_000 }, () => {
  let github: Origin;
  let plain: Origin;
  let eg: TestEgress;
  let pastedToken: string;
  const certDir = tempDir();
  const githubCert = makeCert(certDir, ['api.github.com'], 'github');

  const admin = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(new URL(path, eg.running.url), {
      method,
      headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
  const modelCall = (key: string): Promise<Response> =>
    fetch(new URL('/v1/chat/completions', eg.running.url), { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }) });
  const statelessCall = (key: string): Promise<Response> =>
    fetch(eg.running.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': V, 'mcp-method': 'tools/list' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} } } }),
    });
  const proxyGet = (key: string): Promise<string> =>
    rawExchange(Number(eg.proxyUrl.port), [`GET http://plain.example.net:${plain.port}/x HTTP/1.1\r\nHost: plain.example.net:${plain.port}\r\nProxy-Authorization: ${proxyAuth(key)}\r\nConnection: close\r\n\r\n`]);
  const baseUrl = (key: string, headers: Record<string, string> = {}): Promise<Response> =>
    fetch(new URL(`/egress/api.github.com:${github.port}/echo`, eg.running.url), { headers: { 'bastion-key': key, ...headers } });

  /** Opens a CONNECT tunnel and resolves once the proxy answered 200; the socket stays open. */
  async function openTunnel(host: string, port: number, key = EGRESS_KEY): Promise<Socket> {
    const s = netConnect({ host: '127.0.0.1', port: Number(eg.proxyUrl.port) });
    await once(s, 'connect');
    s.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\nProxy-Authorization: ${proxyAuth(key)}\r\n\r\n`);
    const [chunk] = (await once(s, 'data')) as [Buffer];
    assert.match(chunk.toString('latin1'), /^HTTP\/1\.1 200/);
    return s;
  }

  before(async () => {
    github = await startOrigin(githubCert);
    plain = await startOrigin();
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
admin: { keys: [env:ADMIN_KEY] }
secrets:
  github: { hosts: [api.github.com] }
egress:
  staticHosts: { api.github.com: [127.0.0.1], plain.example.net: [127.0.0.1] }
upstreams:
  bad: ${badUpstreamYaml()}
agents:
  demo:
    keys: [env:EGRESS_KEY]
    tools: ["bad__echo"]
    secrets: [github]
    network: ["api.github.com:${github.port}", "plain.example.net:${plain.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    tools: ["bad__echo"]
    network: ["api.github.com:${github.port}", "plain.example.net:${plain.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [githubCert.cert], model: true, env: { ADMIN_KEY } },
    );
    await eg.door.vault.add('github', new Secret(GITHUB_VALUE), { hosts: ['api.github.com'], header: 'Authorization', format: 'token {}' });
    const pasted = await eg.door.pasted.vault('demo', 'alice', new Secret(PASTED_VALUE), 'github-pat');
    pastedToken = pasted.placeholder;
    await eg.door.pasted.bind(pasted.secret.token, ['api.github.com']);
  });

  after(async () => {
    await eg?.close();
    await Promise.all([github?.close(), plain?.close()]);
  });

  test('isolate: sessions and tunnels closed, pending approvals denied, every door refuses with ERR_AGENT_ISOLATED; others unaffected; restore', async () => {
    // Before: the agent works in every door.
    const client = await connect(eg.running.url, EGRESS_KEY);
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'bad__echo'));
    assert.equal((await modelCall(EGRESS_KEY)).status, 404, 'no model configured: the model door gets past authentication');
    assert.equal(statusOf(await proxyGet(EGRESS_KEY)), 200);
    const tunnel = await openTunnel('plain.example.net', plain.port);
    const intercepted = await openTunnel('api.github.com', github.port);
    const tunnelClosed = once(tunnel, 'close');
    const interceptedClosed = once(intercepted, 'close');
    // Another agent presenting demo's pasted secret: refused by the release rule (it is demo's and alice's).
    const foreignBefore = await baseUrl(OTHER_EGRESS_KEY, { authorization: `token ${pastedToken}`, 'bastion-user': 'alice' });
    assert.equal(foreignBefore.status, 403);
    const foreignReasonBefore = foreignBefore.headers.get('bastion-reason');
    // A call held for approval.
    let heldId = '';
    const held = eg.gateway.deps.approvals.hold({ agent: 'demo', user: null, tool: 'bad__echo', argsDigest: 'a'.repeat(64), argsPreview: '{}', onCreated: (id) => void (heldId = id) });
    while (heldId === '') await new Promise((r) => setTimeout(r, 10));

    const iso = await admin('POST', '/api/incidents/demo/isolate', { reason: 'leaked key' });
    assert.equal(iso.status, 200);
    const body = (await iso.json()) as { record: { agent: string; reason: string; by: string; at: string }; created: boolean; deniedApprovals: string[]; notified: boolean };
    assert.deepEqual([body.record.agent, body.record.reason, body.record.by, body.created, body.notified], ['demo', 'leaked key', 'admin-api', true, true]);
    assert.deepEqual(body.deniedApprovals, [heldId]);
    assert.equal((await held).status, 'denied', 'the held call is released as denied');
    assert.equal((await eg.gateway.store.getApproval(heldId))?.reason, 'agent isolated');
    await tunnelClosed;
    await interceptedClosed;
    assert.equal(eg.running.sessionCount(), 0, 'the legacy session is closed');

    // Tool door: the session's next request and a stateless 2026-07-28 request.
    await assert.rejects(client.listTools());
    await client.close().catch(() => undefined);
    const stateless = await statelessCall(EGRESS_KEY);
    assert.equal(stateless.status, 403);
    const rpc = (await stateless.json()) as { error: { code: number; message: string } };
    assert.equal(rpc.error.code, -32003);
    assert.match(rpc.error.message, /ERR_AGENT_ISOLATED/);
    // Model door.
    const model = await modelCall(EGRESS_KEY);
    assert.equal(model.status, 403);
    assert.match(await model.text(), /ERR_AGENT_ISOLATED/);
    // Network door: proxy mode, CONNECT, base-URL mode.
    const proxied = await proxyGet(EGRESS_KEY);
    assert.deepEqual([statusOf(proxied), reasonOf(proxied)], [403, 'agent.isolated']);
    assert.match(proxied, /ERR_AGENT_ISOLATED/);
    const connectRaw = await rawExchange(Number(eg.proxyUrl.port), [`CONNECT plain.example.net:${plain.port} HTTP/1.1\r\nProxy-Authorization: ${proxyAuth()}\r\n\r\n`]);
    assert.equal(statusOf(connectRaw), 403);
    assert.match(connectRaw, /ERR_AGENT_ISOLATED/);
    const base = await baseUrl(EGRESS_KEY);
    assert.deepEqual([base.status, base.headers.get('bastion-reason')], [403, 'agent.isolated']);
    // The isolated agent's pasted secret is dead whoever presents it: now unknown, not merely foreign.
    const foreignAfter = await baseUrl(OTHER_EGRESS_KEY, { authorization: `token ${pastedToken}`, 'bastion-user': 'alice' });
    assert.deepEqual([foreignAfter.status, foreignAfter.headers.get('bastion-reason')], [403, 'placeholder.unknown']);
    assert.notEqual(foreignReasonBefore, 'placeholder.unknown');
    // The placeholder function refuses too (abilities, the tool door's upstream environments).
    await assert.rejects(eg.gateway.deps.placeholder!('demo', 'github'), (e: unknown) => (e as { code?: string }).code === 'ERR_AGENT_ISOLATED');
    // Another agent is served.
    assert.equal(statusOf(await proxyGet(OTHER_EGRESS_KEY)), 200);
    assert.equal((await statelessCall(OTHER_EGRESS_KEY)).status, 200);

    // Each refusal is audited, naming the agent.
    const recs = await records(eg);
    const refused = recs.filter((r) => r.decision.reason === 'agent.isolated' && r.agent === 'demo');
    for (const door of ['tool', 'model', 'network'] as const) assert.ok(refused.some((r) => r.door === door), `a ${door} door record`);
    assert.ok(refused.some((r) => r.method === 'session.close'), 'the closed session is recorded');
    const adminRec = recs.findLast((r) => r.door === 'admin' && r.method === 'api.POST /api/incidents/:agent/isolate');
    assert.deepEqual([adminRec?.decision.reason, adminRec?.target, adminRec?.outcome], ['incident.isolate', 'demo', 'ok']);

    // Idempotent; listed.
    const again = (await (await admin('POST', '/api/incidents/demo/isolate', { reason: 'again' })).json()) as { created: boolean; record: { reason: string } };
    assert.deepEqual([again.created, again.record.reason], [false, 'leaked key']);
    const list = (await (await admin('GET', '/api/incidents')).json()) as { isolated: string[]; isolations: { agent: string }[] };
    assert.deepEqual(list.isolated, ['demo']);

    // Restore: served again.
    const restored = await admin('POST', '/api/incidents/demo/restore', { reason: 'key rotated' });
    assert.equal(restored.status, 200);
    const rec = (await restored.json()) as { restoredBy: string; restoreReason: string };
    assert.deepEqual([rec.restoredBy, rec.restoreReason], ['admin-api', 'key rotated']);
    assert.equal((await modelCall(EGRESS_KEY)).status, 404);
    assert.equal(statusOf(await proxyGet(EGRESS_KEY)), 200);
  });

  test('admin API bad input: unknown agent 404, restore of an agent not isolated 409, bad body 400, not JSON 415, no key 401', async () => {
    const unknown = await admin('POST', '/api/incidents/nobody/isolate', { reason: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as { code: string }).code, 'ERR_AGENT_UNKNOWN');
    const notIsolated = await admin('POST', '/api/incidents/other/restore', { reason: 'x' });
    assert.equal(notIsolated.status, 409);
    assert.equal(((await notIsolated.json()) as { code: string }).code, 'ERR_AGENT_NOT_ISOLATED');
    assert.equal((await admin('POST', '/api/incidents/other/isolate', { reason: 42 })).status, 400);
    assert.equal((await admin('POST', '/api/incidents/other/isolate', { reason: 'x'.repeat(501) })).status, 400);
    assert.equal((await admin('POST', '/api/incidents/other/isolate', '[1]')).status, 400);
    assert.equal((await admin('POST', '/api/incidents/other/isolate', 'reason=x', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
    assert.equal((await admin('POST', '/api/incidents/%E0%A4%A/isolate', { reason: 'x' })).status, 400);
    assert.equal((await admin('GET', '/api/incidents/other/nothing')).status, 404);
    const anon = await fetch(new URL('/api/incidents/other/isolate', eg.running.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anon.status, 401);
    assert.equal(eg.gateway.isolations.isIsolated('other'), false, 'nothing was isolated by bad input');
  });

  test('snapshot over the admin API: the agent slice with a verifiable proof, its digest, and no secret value anywhere', async () => {
    const res = await admin('GET', '/api/incidents/demo/snapshot');
    assert.equal(res.status, 200);
    const text = await res.text();
    assert.equal(res.headers.get('x-bastion-sha256'), sha256Hex(text));
    const bundle = JSON.parse(text) as IncidentSnapshot;
    assert.equal(bundle.format, 'bastion.incident-snapshot/v1');
    assert.ok(bundle.audit.records.length > 5);
    assert.ok(bundle.audit.records.every((r) => r.agent === 'demo' || (r.detail as { forAgent?: string } | undefined)?.forAgent === 'demo'));
    assert.ok(bundle.audit.records.some((r) => r.decision.reason === 'agent.isolated'));
    assert.deepEqual(await verifySnapshot(bundle), { ok: true });
    assert.equal(bundle.audit.chain.verified.ok, true);
    assert.deepEqual(bundle.isolations.length, 1);
    assert.deepEqual(bundle.secrets.vault.map((s) => s.name), ['github']);
    assert.deepEqual(bundle.keys.configuredDigests, [sha256Hex(EGRESS_KEY)]);
    assert.equal(bundle.secrets.pasted.length, 1);
    for (const secret of [GITHUB_VALUE, PASTED_VALUE, EGRESS_KEY, OTHER_EGRESS_KEY, ADMIN_KEY, TEST_MASTER_KEY, pastedToken]) {
      assert.ok(!text.includes(secret), 'no secret value, key or placeholder in the bundle');
    }
    // A tampered record fails the proof.
    const tampered = structuredClone(bundle);
    (tampered.audit.records as unknown as { method: string }[])[0]!.method = 'forged';
    assert.equal((await verifySnapshot(tampered)).ok, false);
    assert.equal((await admin('GET', '/api/incidents/nobody/snapshot')).status, 404);
  });
});
