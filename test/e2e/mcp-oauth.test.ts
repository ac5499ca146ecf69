/**
 * MCP authorization at the tool door, end to end: a real OAuth 2.1 / OpenID
 * authorization server (oidc-provider on loopback) issues access tokens for
 * Bastion's `/mcp` (RFC 8707 resource indicator); MCP clients of both SDKs use
 * them instead of agent keys. Bastion serves the RFC 9728 metadata, answers 401
 * with the resource-metadata challenge, refuses a token for another resource,
 * from another issuer (mix-up) or expired, each with one audit record, and never
 * passes the token to the upstream.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { z } from 'zod';
import type { Gateway } from '../../src/server/gateway.ts';
import type { RunningServer } from '../../src/server/http.ts';
import { connect, startGateway, tempDir } from '../helpers/gateway.ts';
import { freePort } from '../helpers/mcp.ts';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';

const SECRET = 'client-secret-0123456789abcdef';

describe('MCP authorization: OAuth access tokens at /mcp', { timeout: 120_000 }, () => {
  let as: OidcServer;
  let other: OidcServer;
  let upstream: Server;
  const upstreamAuth: (string | undefined)[] = [];
  let gateway: Gateway;
  let running: RunningServer;
  let resource: string;

  before(async () => {
    const port = await freePort();
    resource = `http://127.0.0.1:${port}/mcp`;
    const clients = [
      { client_id: 'support-app', client_secret: SECRET },
      { client_id: 'unknown-app', client_secret: SECRET },
      { client_id: 'helper-app', client_secret: SECRET },
    ];
    [as, other] = await Promise.all([
      startOidcServer({ clients, resources: [{ indicator: resource, scope: 'mcp' }, { indicator: 'http://127.0.0.1:9/elsewhere', scope: 'mcp' }] }),
      startOidcServer({ clients, resources: [{ indicator: resource, scope: 'mcp' }] }),
    ]);
    // An HTTP upstream (the 2.x SDK) that records the Authorization header of every request it gets.
    const handler = toNodeHandler(
      createMcpHandler(() => {
        const s = new McpServer({ name: 'recorder', version: '1.0.0' });
        s.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }));
        s.registerTool('transfer', { inputSchema: { amount: z.number() } }, async ({ amount }) => ({ content: [{ type: 'text', text: `sent ${amount}` }] }));
        return s;
      }),
    );
    upstream = createServer((req: IncomingMessage, res) => {
      upstreamAuth.push(req.headers.authorization);
      void handler(req, res);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    const gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:${port}
store:
  sqlite: ./bastion.db
agents:
  support:
    tools: ["rec__*"]
    approve: ["rec__transfer"]
  helper:
    tools: ["rec__*"]
    approve: ["rec__transfer"]
oauth:
  resourceServer:
    resource: ${resource}
    resourceName: Bastion test
    requiredScopes: [mcp]
    agents: { support-app: support, helper-app: helper }
    issuers:
      - issuer: ${as.issuer}
upstreams:
  rec:
    url: ${upstreamUrl}
`,
      {},
      { port },
    );
    ({ gateway, running } = gw);
  });

  after(async () => {
    await running?.close();
    await gateway?.close();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    await Promise.all([as?.close(), other?.close()]);
  });

  const token = (server: OidcServer, opts: { clientId?: string; resource?: string } = {}): Promise<string> =>
    server.clientCredentialsToken({ clientId: opts.clientId ?? 'support-app', clientSecret: SECRET, resource: opts.resource ?? resource, scope: 'mcp' });
  const post = (auth: string | undefined): Promise<Response> =>
    fetch(resource, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}) },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
    });

  test('the protected resource metadata (RFC 9728) is public at the well-known path', async () => {
    const res = await fetch(new URL('/.well-known/oauth-protected-resource/mcp', resource));
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, unknown>;
    assert.equal(doc.resource, resource);
    assert.deepEqual(doc.authorization_servers, [as.issuer]);
    assert.deepEqual(doc.bearer_methods_supported, ['header']);
  });

  test('no credentials: 401 with the resource-metadata challenge', async () => {
    const res = await post(undefined);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), `Bearer resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', resource).href}"`);
  });

  test('a token from the configured issuer for this resource: both SDK clients work, as the mapped agent; the upstream never sees the token', async () => {
    const t = await token(as);
    const modern = new ModernClient({ name: 'm', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await modern.connect(new ModernTransport(new URL(resource), { requestInit: { headers: { authorization: `Bearer ${t}` } } }));
    const legacy = await connect(new URL(resource), t);
    try {
      const a = await modern.callTool({ name: 'rec__echo', arguments: { text: 'modern with a token' } });
      const b = await legacy.callTool({ name: 'rec__echo', arguments: { text: 'legacy with a token' } });
      assert.equal((a.content as { text: string }[])[0]?.text, 'modern with a token');
      assert.equal((b.content as { text: string }[])[0]?.text, 'legacy with a token');
    } finally {
      await modern.close();
      await legacy.close();
    }
    assert.ok(upstreamAuth.length > 0);
    assert.ok(upstreamAuth.every((h) => h === undefined), 'no Authorization header reached the upstream');
    const recs = await gateway.store.readAudit(1, 100_000);
    assert.ok(recs.some((r) => r.method === 'tools/call' && r.agent === 'support' && r.outcome === 'ok'));
  });

  test('refused tokens: another resource, another issuer, a forged issuer, expired, unmapped client — each 401 with invalid_token and one record', async () => {
    const before = (await gateway.store.readAudit(1, 100_000)).length;
    const now = Math.floor(Date.now() / 1000);
    const cases: [string, string, string][] = [
      ['another resource', await token(as, { resource: 'http://127.0.0.1:9/elsewhere' }), 'oauth.audience'],
      ['another issuer (mix-up)', await token(other), 'oauth.issuer'],
      ['issuer A, signed by B', await other.signJwt({ iss: as.issuer, aud: resource, client_id: 'support-app', scope: 'mcp', exp: now + 300, iat: now }, { typ: 'at+jwt' }), 'oauth.token_invalid'],
      ['expired', await as.signJwt({ iss: as.issuer, aud: resource, client_id: 'support-app', scope: 'mcp', exp: now - 600, iat: now - 900 }, { typ: 'at+jwt' }), 'oauth.token_expired'],
      ['unmapped client', await token(as, { clientId: 'unknown-app' }), 'oauth.unmapped'],
      ['not a token', 'not-a-jwt-and-not-an-agent-key', 'oauth.token_invalid'],
    ];
    for (const [what, t, reason] of cases) {
      const res = await post(`Bearer ${t}`);
      assert.equal(res.status, 401, what);
      const challenge = res.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /error="invalid_token"/, what);
      assert.match(challenge, /resource_metadata="/, what);
      assert.ok(!challenge.includes(t.slice(0, 20)), `${what}: the challenge never echoes the token`);
      const body = (await res.json()) as { error: { message: string } };
      assert.ok(!JSON.stringify(body).includes(t.slice(0, 20)), `${what}: the body never echoes the token`);
      const recs = (await gateway.store.readAudit(1, 100_000)).slice(before);
      assert.equal(recs.at(-1)?.decision.reason, reason, what);
    }
    const recs = (await gateway.store.readAudit(1, 100_000)).slice(before);
    assert.equal(recs.length, cases.length, 'one record per refused request');
    assert.ok(recs.every((r) => !JSON.stringify(r).includes('eyJ')), 'no token in any record');
  });

  test('a stolen requestState: issued to one token\'s agent, refused for another\'s', async () => {
    const modern = (t: string, extra: Record<string, unknown> = {}): Promise<Response> =>
      fetch(resource, {
        method: 'POST',
        headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'rec__transfer' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'rec__transfer', arguments: { amount: 100 }, ...extra, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } } }),
      });
    const held = (await (await modern(await token(as))).json()) as { result: { resultType: string; requestState: string } };
    assert.equal(held.result.resultType, 'input_required');
    const thief = await as.clientCredentialsToken({ clientId: 'helper-app', clientSecret: SECRET, resource, scope: 'mcp' });
    const stolen = (await (await modern(thief, { requestState: held.result.requestState })).json()) as { error?: { code: number; message: string } };
    assert.equal(stolen.error?.code, -32602);
    assert.match(stolen.error?.message ?? '', /ERR_REQUEST_STATE/);
    const recs = await gateway.store.readAudit(1, 100_000);
    assert.ok(recs.some((r) => r.agent === 'helper' && r.decision.reason === 'state.rebound'));
  });
});
