/**
 * Per-user OAuth to an OAuth-protected upstream ("personal secrets"), end to
 * end: a real authorization server (oidc-provider on loopback), an upstream MCP
 * server (2.x SDK) that refuses requests without a bearer token and answers
 * `whoami` with the token's subject, and Bastion between them as each end
 * user's OAuth client. A user connects through a link, their calls then carry
 * their own token (refreshed as it expires), another user never gets it, the
 * callback refuses a wrong state, a replay, a mixed-up issuer and a code
 * injected from another flow, and `bastion oauth revoke` / a revocation at the
 * provider send the user back to the link.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer, createMcpHandler } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { decodeJwt } from 'jose';
import type { Gateway } from '../../src/server/gateway.ts';
import type { RunningServer } from '../../src/server/http.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import { randomKeyBytes } from '../../src/util/crypto.ts';
import { runCli } from '../helpers/processes.ts';
import { startGateway, TEST_KEY, tempDir } from '../helpers/gateway.ts';
import { freePort } from '../helpers/mcp.ts';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as LegacyClient } from '@modelcontextprotocol/sdk/client/index.js';

const SECRET = 'bastion-client-secret-0123456789';

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const upstreamTools = (l: { tools: { name: string }[] }): string[] => l.tools.map((t) => t.name).filter((n) => n.startsWith('acct__')).sort();
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');

describe('per-user OAuth to an upstream', { timeout: 180_000 }, () => {
  let as: OidcServer;
  let other: OidcServer;
  let upstream: Server;
  const seen: { sub: string | undefined; tool: string }[] = [];
  let gateway: Gateway;
  let running: RunningServer;
  let base: string;
  let upstreamUrl: string;
  let configFile: string;
  const masterKey = randomKeyBytes(32);

  async function userClient(user: string): Promise<Client> {
    const c = new LegacyClient({ name: 'agent', version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL('/mcp', base), { requestInit: { headers: { authorization: `Bearer ${TEST_KEY}`, 'bastion-user': user } } }));
    return c;
  }
  const linkOf = (r: unknown): string => {
    const url = (r as ToolResult)._meta?.['bastion/consentUrl'];
    assert.equal(typeof url, 'string', JSON.stringify(r));
    return url as string;
  };
  const records = () => gateway.store.readAudit(1, 100_000);

  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    // The upstream: OAuth-protected (401 with a challenge without a token), answers whoami with the token's subject.
    const handler = toNodeHandler(
      createMcpHandler(() => {
        const s = new McpServer({ name: 'acct', version: '1.0.0' });
        // The calls in this file are sequential: the subject of the request being served is the last one seen.
        s.registerTool('whoami', { description: 'The account the token is for' }, async () => ({ content: [{ type: 'text', text: seen.at(-1)?.sub ?? 'nobody' }] }));
        return s;
      }),
    );
    upstream = createServer((req, res) => {
      const auth = req.headers.authorization;
      if (req.url === '/api/me') {
        // A plain API for the ability: who the bearer token is for.
        if (auth === undefined || !auth.startsWith('Bearer ')) {
          res.writeHead(401);
          return void res.end();
        }
        const me = String(decodeJwt(auth.slice(7)).sub);
        seen.push({ sub: me, tool: 'api/me' });
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ login: me }));
      }
      if (auth === undefined || !auth.startsWith('Bearer ')) {
        res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${upstreamUrl.replace('/mcp', '/.well-known/oauth-protected-resource/mcp')}"` });
        return void res.end();
      }
      let sub: string | undefined;
      try {
        sub = String(decodeJwt(auth.slice(7)).sub);
      } catch {
        res.writeHead(401);
        return void res.end();
      }
      seen.push({ sub, tool: String(req.headers['mcp-name'] ?? req.headers['mcp-method'] ?? '') });
      void handler(req, res);
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/mcp`;
    const clients = [{ client_id: 'bastion', client_secret: SECRET, redirect_uris: [`${base}/oauth/callback`], token_endpoint_auth_method: 'client_secret_basic' }];
    // Access tokens live 30 s: under Bastion's 60 s refresh skew, so every use refreshes (the refresh path is exercised on each call).
    [as, other] = await Promise.all([
      startOidcServer({ clients, resources: [{ indicator: upstreamUrl, scope: 'acct' }], accessTokenTtlS: 30 }),
      startOidcServer({ clients, resources: [{ indicator: upstreamUrl, scope: 'acct' }] }),
    ]);
    const gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:${port}
store:
  sqlite: ./bastion.db
agents:
  assistant:
    keys: [env:T_KEY]
    tools: ["acct__*", "acct_me"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
abilities:
  acct_me:
    description: Who the user is at acct
    url: ${upstreamUrl.replace('/mcp', '/api/me')}
    oauth: acct
    signContext: false
oauth:
  callbackBase: ${base}
  providers:
    acct:
      issuer: ${as.issuer}
      clientId: bastion
      clientSecret: env:T_OAUTH_SECRET
      scopes: [acct]
      resource: ${upstreamUrl}
upstreams:
  acct:
    url: ${upstreamUrl}
    oauth: acct
`,
      { T_KEY: TEST_KEY, T_OAUTH_SECRET: SECRET },
      { port, kek: kekFromBytes(masterKey) },
    );
    ({ gateway, running, configFile } = gw);
  });

  after(async () => {
    await running?.close();
    await gateway?.close();
    await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
    await Promise.all([as?.close(), other?.close()]);
  });

  test('a user connects through a link; their calls then carry their own token, refreshed; another user never gets it', async () => {
    const alice = await userClient('alice');
    const bob = await userClient('bob');
    try {
      const before = await alice.listTools();
      assert.deepEqual(upstreamTools(before), ['acct__connect_account'], 'not connected: only the connect tool');
      const link = linkOf(await alice.callTool({ name: 'acct__connect_account', arguments: {} }));
      assert.ok(link.startsWith(as.issuer), 'the link goes to the provider');
      const u = new URL(link);
      assert.equal(u.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(u.searchParams.get('resource'), upstreamUrl);
      const callback = await as.authorize(link, { account: 'alice' });
      assert.equal(callback.origin + callback.pathname, `${base}/oauth/callback`);
      const page = await fetch(callback);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /connected/);
      // The same callback again: the state was single use.
      assert.equal((await fetch(callback)).status, 400);

      assert.match(text(await alice.callTool({ name: 'acct__connect_account', arguments: {} })), /is connected/);
      const after1 = await alice.listTools();
      assert.deepEqual(upstreamTools(after1), ['acct__connect_account', 'acct__whoami']);
      assert.equal(text(await alice.callTool({ name: 'acct__whoami', arguments: {} })), 'alice');
      assert.equal(text(await alice.callTool({ name: 'acct__whoami', arguments: {} })), 'alice', 'a second call, with a refreshed token');
      // An ability with the same provider: the call carries alice's token too, and the token never shows in the answer.
      const me = await alice.callTool({ name: 'acct_me', arguments: {} });
      assert.match(text(me), /"login":\s*"alice"/);

      // Bob has not connected: he sees only the connect tool and cannot reach alice's account.
      assert.deepEqual(upstreamTools(await bob.listTools()), ['acct__connect_account']);
      const bobCall = await bob.callTool({ name: 'acct__whoami', arguments: {} });
      assert.equal(bobCall.isError, true);
      // Bob's ability call gets a link of his own, never alice's token.
      const bobAbility = await bob.callTool({ name: 'acct_me', arguments: {} });
      assert.equal(bobAbility.isError, true);
      assert.match(text(bobAbility), /ERR_OAUTH_CONSENT/);
      assert.match(text(bobAbility), new RegExp(`open ${as.issuer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.ok(seen.every((s) => s.sub === 'alice'), 'every request the upstream got carried alice\'s token, and only alice\'s calls reached it');
    } finally {
      await alice.close();
      await bob.close();
    }
    const recs = await records();
    assert.ok(recs.some((r) => r.method === 'oauth.callback' && r.decision.reason === 'oauth.connected' && r.user === 'alice'));
    assert.ok(recs.some((r) => r.method === 'oauth.callback' && r.decision.reason === 'oauth.state_unknown'));
    const all = JSON.stringify(recs);
    assert.ok(!/eyJ[A-Za-z0-9_-]{10,}\./.test(all), 'no token in the audit chain');
  });

  test('bad callbacks: a made-up state, a mixed-up issuer, a code from another flow — refused, nothing stored', async () => {
    const bob = await userClient('bob');
    const carol = await userClient('carol');
    try {
      const madeUp = await fetch(`${base}/oauth/callback?code=x&state=not-a-state&iss=${encodeURIComponent(as.issuer)}`);
      assert.equal(madeUp.status, 400);
      assert.ok(!(await madeUp.text()).includes('not-a-state'), 'nothing from the query is echoed');

      const bobLink = linkOf(await bob.callTool({ name: 'acct__connect_account', arguments: {} }));
      const bobCallback = await as.authorize(bobLink, { account: 'bob' });
      const mixedUp = new URL(bobCallback);
      mixedUp.searchParams.set('iss', other.issuer);
      assert.equal((await fetch(mixedUp)).status, 400);

      // Code injection: carol's code replayed with a state of bob's (PKCE binds the code to carol's flow).
      const bobLink2 = linkOf(await bob.callTool({ name: 'acct__connect_account', arguments: {} }));
      const carolLink = linkOf(await carol.callTool({ name: 'acct__connect_account', arguments: {} }));
      const carolCallback = await as.authorize(carolLink, { account: 'carol' });
      const bobCallback2 = await as.authorize(bobLink2, { account: 'bob' });
      const injected = new URL(bobCallback2);
      injected.searchParams.set('code', carolCallback.searchParams.get('code') as string);
      assert.equal((await fetch(injected)).status, 400);

      assert.deepEqual(upstreamTools(await bob.listTools()), ['acct__connect_account'], 'bob is still not connected');
    } finally {
      await bob.close();
      await carol.close();
    }
    const reasons = (await records()).filter((r) => r.method === 'oauth.callback').map((r) => r.decision.reason);
    assert.ok(reasons.includes('oauth.issuer_mismatch'), reasons.join(','));
    assert.ok(reasons.includes('oauth.code_exchange_failed'), reasons.join(','));
  });

  test('a 2026-07-28 client with URL elicitation gets the link as an input_required URL elicitation', async () => {
    const res = await fetch(new URL('/mcp', base), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_KEY}`,
        'bastion-user': 'dave',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2026-07-28',
        'mcp-method': 'tools/call',
        'mcp-name': 'acct__connect_account',
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'acct__connect_account', arguments: {}, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': { elicitation: { url: {} } } } },
      }),
    });
    const body = (await res.json()) as { result: { resultType: string; requestState: string; inputRequests: Record<string, { method: string; params: { mode: string; url: string } }> } };
    assert.equal(body.result.resultType, 'input_required');
    const ask = body.result.inputRequests['bastion/connect'];
    assert.equal(ask?.params.mode, 'url');
    assert.ok(ask?.params.url.startsWith(as.issuer));
    assert.equal(typeof body.result.requestState, 'string');
  });

  test('revocation: `bastion oauth revoke` and a revocation at the provider both send the user back to the link', async () => {
    const alice = await userClient('alice');
    try {
      assert.equal(text(await alice.callTool({ name: 'acct__whoami', arguments: {} })), 'alice');
      // At the provider: the grant is revoked, the next refresh is refused, the user is asked again.
      await as.revokeAccount('alice');
      const refused = await alice.callTool({ name: 'acct__whoami', arguments: {} });
      assert.equal(refused.isError, true);
      assert.match(text(refused), /ERR_OAUTH_CONSENT/);
      assert.deepEqual(upstreamTools(await alice.listTools()), ['acct__connect_account']);
      // Connect again, then revoke through Bastion.
      const link = linkOf(await alice.callTool({ name: 'acct__connect_account', arguments: {} }));
      assert.equal((await fetch(await as.authorize(link, { account: 'alice' }))).status, 200);
      assert.match(text(await alice.callTool({ name: 'acct__connect_account', arguments: {} })), /is connected/);
      const env = { BASTION_MASTER_KEY: masterKey.toString('base64url'), T_KEY: TEST_KEY, T_OAUTH_SECRET: SECRET };
      const listed = await runCli(['oauth', 'list', '--config', configFile], { env });
      assert.equal(listed.code, 0, listed.stderr);
      assert.match(listed.stdout, /^alice\tacct\t/m);
      assert.ok(!listed.stdout.includes('eyJ'), 'never a token');
      const revoked = await runCli(['oauth', 'revoke', 'alice', 'acct', '--config', configFile], { env });
      assert.equal(revoked.code, 0, revoked.stderr);
      assert.match(revoked.stdout, /revoked alice's acct tokens \(provider: revoked\)/);
      assert.equal((await runCli(['oauth', 'revoke', 'alice', 'acct', '--config', configFile], { env })).code, 5, 'nothing left to revoke');
      assert.equal((await runCli(['oauth', 'revoke', 'alice', 'nope', '--config', configFile], { env })).code, 5, 'no such provider');
      assert.equal((await runCli(['oauth', 'revoke', 'alice', '--config', configFile], { env })).code, 2, 'usage');
      const after = await alice.callTool({ name: 'acct__whoami', arguments: {} });
      assert.equal(after.isError, true);
      assert.match(text(after), /ERR_OAUTH_CONSENT/);
    } finally {
      await alice.close();
    }
  });
});

