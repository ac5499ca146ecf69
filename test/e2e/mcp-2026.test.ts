/**
 * MCP revision 2026-07-28 at the tool door, end to end: the official 2.x SDK
 * client (stateless) and the 1.x SDK client (sessions) against the same
 * Bastion and the same upstream; the wire checks (envelope, headers, version)
 * over raw HTTP; server/discover and cache hints; and held calls as
 * multi-round-trip requests with a sealed requestState (forged, replayed,
 * re-bound and expired states refused, the approved call run once).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import type { AuditRecord } from '../../src/audit/types.ts';
import { verifyAudit } from '../../src/audit/log.ts';
import { BAD_UPSTREAM_YAML, OTHER_KEY, TEST_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

const V = '2026-07-28';
const PV = 'io.modelcontextprotocol/protocolVersion';
const CC = 'io.modelcontextprotocol/clientCapabilities';

const CONFIG = `version: 1
server:
  listen: 127.0.0.1:0
  cacheTtlMs: 5000
store:
  sqlite: ./bastion.db
agents:
  demo:
    keys: [env:T_KEY]
    tools: ["bad__echo", "bad__fingerprint", "bad__echo_any"]
    approve: ["bad__echo_any"]
  other:
    keys: [env:T_OTHER]
    tools: ["bad__echo", "bad__echo_any"]
    approve: ["bad__echo_any"]
approvals:
  timeoutMs: 60000
${BAD_UPSTREAM_YAML}`;

interface Rpc {
  status: number;
  body: { id?: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: Record<string, unknown> } };
}

describe('MCP 2026-07-28 at the tool door', { timeout: 120_000 }, () => {
  let gw: TestGateway;
  let nextId = 1;

  /** One raw modern request; `headers` override the ones derived from the body. */
  async function post(body: Record<string, unknown>, opts: { key?: string; headers?: Record<string, string | undefined>; user?: string } = {}): Promise<Rpc> {
    const params = (body.params ?? {}) as Record<string, unknown>;
    const name = body.method === 'resources/read' ? params.uri : params.name;
    const headers: Record<string, string> = {
      authorization: `Bearer ${opts.key ?? TEST_KEY}`,
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': String(body.method),
      ...(typeof name === 'string' ? { 'mcp-name': name } : {}),
      ...(opts.user ? { 'bastion-user': opts.user } : {}),
    };
    for (const [k, v] of Object.entries(opts.headers ?? {})) {
      if (v === undefined) delete headers[k];
      else headers[k] = v;
    }
    const res = await fetch(gw.url, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, ...body }) });
    const text = await res.text();
    return { status: res.status, body: text.length > 0 ? JSON.parse(text) : {} };
  }

  const envelope = (caps: Record<string, unknown> = {}): Record<string, unknown> => ({ [PV]: V, [CC]: caps });
  const call = (name: string, args: Record<string, unknown>, extra: Record<string, unknown> = {}, caps: Record<string, unknown> = {}): Record<string, unknown> => ({
    method: 'tools/call',
    params: { name, arguments: args, _meta: envelope(caps), ...extra },
  });
  const records = (): Promise<AuditRecord[]> => gw.gateway.store.readAudit(1, 100_000);

  before(async () => {
    gw = await startGateway(tempDir(), CONFIG, { T_KEY: TEST_KEY, T_OTHER: OTHER_KEY });
  });
  after(async () => {
    await gw?.close();
  });

  test('a 2.x SDK client (stateless) and a 1.x SDK client (session) use the same /mcp', async () => {
    const modern = new ModernClient({ name: 'modern', version: '1.0.0' }, { versionNegotiation: { mode: 'auto' } });
    await modern.connect(new ModernTransport(gw.url, { requestInit: { headers: { authorization: `Bearer ${TEST_KEY}` } } }));
    const legacy = await connect(gw.url, TEST_KEY);
    try {
      const [mTools, lTools] = await Promise.all([modern.listTools(), legacy.listTools()]);
      assert.deepEqual(mTools.tools.map((t) => t.name).sort(), ['bad__echo', 'bad__echo_any', 'bad__fingerprint']);
      assert.deepEqual(lTools.tools.map((t) => t.name).sort(), ['bad__echo', 'bad__echo_any', 'bad__fingerprint']);
      const m = await modern.callTool({ name: 'bad__echo', arguments: { text: 'from 2026' } });
    const conv = await post(call('bad__echo', { text: 'in a conversation' }), { headers: { 'bastion-conversation': 'conv-1' } });
    assert.equal((conv.body.result?.content as { text: string }[])[0]?.text, 'in a conversation');
    const viaMeta = await post({ method: 'tools/call', params: { name: 'bad__echo', arguments: { text: 'meta' }, _meta: { ...envelope(), 'dev.bastion/conversation': 'conv-2' } } });
    assert.equal((viaMeta.body.result?.content as { text: string }[])[0]?.text, 'meta');
    const disagree = await post(
      { method: 'tools/call', params: { name: 'bad__echo', arguments: { text: 'x' }, _meta: { ...envelope(), 'dev.bastion/conversation': 'conv-3' } } },
      { headers: { 'bastion-conversation': 'conv-4' } },
    );
    assert.equal(disagree.status, 400);
      const l = await legacy.callTool({ name: 'bad__echo', arguments: { text: 'from 2025' } });
      assert.equal((m.content as { text: string }[])[0]?.text, 'from 2026');
      assert.equal((l.content as { text: string }[])[0]?.text, 'from 2025');
      // A tool outside the agent's list is refused the same way on both paths.
      const mDenied = await modern.callTool({ name: 'bad__leak', arguments: {} });
      assert.equal(mDenied.isError, true);
      assert.match((mDenied.content as { text: string }[])[0]?.text ?? '', /ERR_POLICY_DENIED/);
    } finally {
      await modern.close();
      await legacy.close();
    }
    const recs = await records();
    const modernCall = recs.find((r) => r.method === 'tools/call' && r.target === 'bad__echo' && r.session === null);
    assert.ok(modernCall, 'the stateless call has its own record, with no session');
    assert.equal(modernCall.outcome, 'ok');
    const inConv = recs.find((r) => r.method === 'tools/call' && r.detail?.conversation === 'conv-1');
    assert.ok(inConv && inConv.session === null, 'a stateless record names its conversation');
    assert.ok(recs.some((r) => r.method === 'tools/call' && r.detail?.conversation === 'conv-2'), 'named in _meta too');
    assert.ok(recs.some((r) => r.decision.reason === 'conversation.invalid'));
    assert.ok(recs.some((r) => r.method === 'tools/call' && r.target === 'bad__echo' && typeof r.session === 'string'), 'the session call is recorded with its session');
    assert.equal((await verifyAudit(gw.gateway.store)).ok, true);
  });

  test('server/discover and list results carry revision, capabilities and private cache hints', async () => {
    const d = await post({ method: 'server/discover', params: { _meta: envelope() } });
    assert.equal(d.status, 200);
    assert.ok((d.body.result?.supportedVersions as string[]).includes(V));
    assert.ok((d.body.result?.supportedVersions as string[]).includes('2025-11-25'));
    assert.equal(d.body.result?.cacheScope, 'private');
    assert.equal(d.body.result?.ttlMs, 5000);
    assert.ok((d.body.result?.capabilities as Record<string, unknown>).tools);
    const l = await post({ method: 'tools/list', params: { _meta: envelope() } });
    assert.equal(l.status, 200);
    assert.equal(l.body.result?.resultType, 'complete');
    assert.equal(l.body.result?.cacheScope, 'private');
    assert.equal(l.body.result?.ttlMs, 5000);
    assert.equal(((l.body.result?._meta as Record<string, unknown>)['io.modelcontextprotocol/serverInfo'] as { name: string }).name, 'bastion');
    // Per agent: `other` sees its own list.
    const o = await post({ method: 'tools/list', params: { _meta: envelope() } }, { key: OTHER_KEY });
    assert.deepEqual((o.body.result?.tools as { name: string }[]).map((t) => t.name).sort(), ['bad__echo', 'bad__echo_any']);
  });

  test('bad wire input: each gets the spec error and one audit record', async () => {
    const before = (await records()).length;
    const noCaps = await post({ method: 'tools/list', params: { _meta: { [PV]: V } } });
    assert.equal(noCaps.status, 400);
    assert.equal(noCaps.body.error?.code, -32602);

    const methodMismatch = await post({ method: 'tools/list', params: { _meta: envelope() } }, { headers: { 'mcp-method': 'tools/call' } });
    assert.equal(methodMismatch.status, 400);
    assert.equal(methodMismatch.body.error?.code, -32020);

    const nameMismatch = await post(call('bad__echo', { text: 'x' }), { headers: { 'mcp-name': 'bad__fingerprint' } });
    assert.equal(nameMismatch.status, 400);
    assert.equal(nameMismatch.body.error?.code, -32020);
    assert.deepEqual(nameMismatch.body.error?.data, { mismatch: { header: 'Mcp-Name', body: 'params.name' } });

    const nameMissing = await post(call('bad__echo', { text: 'x' }), { headers: { 'mcp-name': undefined } });
    assert.equal(nameMissing.body.error?.code, -32020);
    const methodMissing = await post({ method: 'tools/list', params: { _meta: envelope() } }, { headers: { 'mcp-method': undefined } });
    assert.equal(methodMissing.body.error?.code, -32020);
    const versionMissing = await post({ method: 'tools/list', params: { _meta: envelope() } }, { headers: { 'mcp-protocol-version': undefined } });
    assert.equal(versionMissing.body.error?.code, -32020);
    const versionMismatch = await post({ method: 'tools/list', params: { _meta: envelope() } }, { headers: { 'mcp-protocol-version': '2025-11-25' } });
    assert.equal(versionMismatch.body.error?.code, -32020);

    const future = await post({ method: 'tools/list', params: { _meta: { [PV]: '2031-01-01', [CC]: {} } } }, { headers: { 'mcp-protocol-version': '2031-01-01' } });
    assert.equal(future.status, 400);
    assert.equal(future.body.error?.code, -32022);
    assert.ok((future.body.error?.data?.supported as string[]).includes(V));
    assert.equal(future.body.error?.data?.requested, '2031-01-01');

    const removed = await post({ method: 'ping', params: { _meta: envelope() } });
    assert.equal(removed.status, 404);
    assert.equal(removed.body.error?.code, -32601);
    assert.equal(removed.body.id, nextId - 1, 'the error keeps the request id');

    const get = await fetch(gw.url, { headers: { authorization: `Bearer ${TEST_KEY}`, 'mcp-protocol-version': V } });
    assert.equal(get.status, 405);
    assert.equal(get.headers.get('allow'), 'POST');

    const recs = (await records()).slice(before);
    const reasons = recs.map((r) => r.decision.reason);
    assert.deepEqual(reasons, [
      'mcp.envelope_invalid',
      'mcp.header_mismatch',
      'mcp.header_mismatch',
      'mcp.header_mismatch',
      'mcp.header_mismatch',
      'mcp.header_mismatch',
      'mcp.header_mismatch',
      'mcp.unsupported_version',
      'mcp.method_unknown',
      'http.method',
    ]);
    assert.ok(recs.filter((r) => r.decision.reason === 'mcp.header_mismatch').every((r) => r.detail?.possibleBypass === true));
  });

  test('a held call answers input_required; the sealed state brings it back once approved, and only once', async () => {
    const args = { text: 'needs a human' };
    const first = await post(call('bad__echo_any', args, {}, { elicitation: { url: {} } }), { user: 'alice' });
    assert.equal(first.status, 200);
    const r1 = first.body.result as Record<string, unknown>;
    assert.equal(r1.resultType, 'input_required');
    const state1 = r1.requestState as string;
    assert.equal(typeof state1, 'string');
    const ask = (r1.inputRequests as Record<string, { method: string; params: { mode: string; url: string } }>)['bastion/approval'];
    assert.equal(ask?.method, 'elicitation/create');
    assert.equal(ask?.params.mode, 'url');
    const approvalId = decodeURIComponent(new URL(ask?.params.url ?? '').pathname.split('/').pop() ?? '');
    const pending = await gw.gateway.deps.approvals.list({ status: 'pending' });
    assert.ok(pending.some((a) => a.id === approvalId && a.user === 'alice'));

    // A client without URL elicitation gets the state only.
    const stateOnly = await post(call('bad__echo_any', args), { user: 'alice' });
    assert.equal(stateOnly.body.result?.resultType, 'input_required');
    assert.equal(stateOnly.body.result?.inputRequests, undefined);

    // Still pending: coming back gives a fresh state; the old one is spent.
    const again = await post(call('bad__echo_any', args, { requestState: state1 }), { user: 'alice' });
    assert.equal(again.body.result?.resultType, 'input_required');
    const state2 = again.body.result?.requestState as string;
    assert.notEqual(state2, state1);
    const replay = await post(call('bad__echo_any', args, { requestState: state1 }), { user: 'alice' });
    assert.equal(replay.body.error?.code, -32602, 'a refused state is an invalid request (JSON-RPC error)');
    assert.match(replay.body.error?.message ?? '', /ERR_REQUEST_STATE/);

    // Re-bound: another user, other arguments, another agent; forged: one character changed.
    const otherUser = await post(call('bad__echo_any', args, { requestState: state2 }), { user: 'mallory' });
    assert.match(otherUser.body.error?.message ?? '', /ERR_REQUEST_STATE/);
    const otherArgs = await post(call('bad__echo_any', { text: 'something else' }, { requestState: state2 }), { user: 'alice' });
    assert.match(otherArgs.body.error?.message ?? '', /ERR_REQUEST_STATE/);
    const otherAgent = await post(call('bad__echo_any', args, { requestState: state2 }), { user: 'alice', key: OTHER_KEY });
    assert.match(otherAgent.body.error?.message ?? '', /ERR_REQUEST_STATE/);
    const flipped = state2.slice(0, -3) + (state2.at(-3) === 'A' ? 'B' : 'A') + state2.slice(-2);
    const forged = await post(call('bad__echo_any', args, { requestState: flipped }), { user: 'alice' });
    assert.match(forged.body.error?.message ?? '', /ERR_REQUEST_STATE/);

    // state2 was consumed by the refused attempts above (each opened it): get a fresh one, approve, come back.
    const fresh = await post(call('bad__echo_any', args), { user: 'alice' });
    const state3 = fresh.body.result?.requestState as string;
    await gw.gateway.deps.approvals.decide(approvalId, 'approved', 'admin', 'ok');
    const ran = await post(call('bad__echo_any', args, { requestState: state3 }), { user: 'alice' });
    assert.equal(ran.body.result?.resultType, 'complete');
    assert.equal((ran.body.result?.content as { text: string }[])[0]?.text, 'needs a human');
    const twice = await post(call('bad__echo_any', args, { requestState: state3 }), { user: 'alice' });
    assert.match(twice.body.error?.message ?? '', /ERR_REQUEST_STATE/);
    // Without a state the same call needs a new approval: the grant was used.
    const anew = await post(call('bad__echo_any', args), { user: 'alice' });
    assert.equal(anew.body.result?.resultType, 'input_required');

    const recs = await records();
    const stateRefusals = recs.filter((r) => r.decision.rule === 'requestState').map((r) => r.decision.reason);
    assert.deepEqual(stateRefusals, ['state.replayed', 'state.rebound', 'state.rebound', 'state.rebound', 'state.forged', 'state.replayed']);
    assert.ok(recs.some((r) => r.target === 'bad__echo_any' && r.outcome === 'ok' && r.decision.reason === 'approval.granted'));
    assert.ok(recs.filter((r) => r.target === 'bad__echo_any' && r.outcome === 'held').length >= 4);
  });
});
