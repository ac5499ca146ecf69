/**
 * RFC 9728 discovery from an upstream's 401: a loopback protected resource
 * answers with a Bearer challenge naming its metadata, and serves that metadata;
 * the discovered issuer then drives a real authorization (oidc-provider).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';
import { discoverFromChallenge, MemoryPendingAuthorizationStore, MemoryUserTokenStore, UserOAuth } from '../../src/oauth/index.ts';
import { testSealer } from './sealer.ts';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(routes: Map<string, Handler>): Promise<{ base: string; server: Server }> {
  const server = createServer((req, res) => {
    const h = routes.get(req.url ?? '');
    if (h) h(req, res);
    else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const json = (body: unknown, status = 200): Handler => (_req, res) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const routes = new Map<string, Handler>();
const otherRoutes = new Map<string, Handler>();
let rs: { base: string; server: Server };
let other: { base: string; server: Server };
let as: OidcServer;
const opts = { unsafeAllowHttp: true, timeoutMs: 2_000 } as const;

before(async () => {
  rs = await listen(routes);
  other = await listen(otherRoutes);
  as = await startOidcServer({
    clients: [{ client_id: 'bastion-public', redirect_uris: ['https://bastion.test/oauth/callback'], token_endpoint_auth_method: 'none' }],
    resources: [{ indicator: `${rs.base}/mcp`, scope: 'files:read' }],
  });
});
after(async () => {
  rs.server.closeAllConnections();
  other.server.closeAllConnections();
  await Promise.all([new Promise((r) => rs.server.close(r)), new Promise((r) => other.server.close(r)), as.close()]);
});

/** Sets the upstream's answer on /mcp (a 401 with `challenge`) and the metadata at `path`. */
function upstream(challenge: string, path: string, metadata: Handler): void {
  routes.clear();
  routes.set('/mcp', (_req, res) => res.writeHead(401, { 'www-authenticate': challenge }).end());
  routes.set(path, metadata);
}

async function challengeOf(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 401);
  const h = res.headers.get('www-authenticate');
  assert.ok(h !== null);
  return h;
}

describe('discoverFromChallenge', () => {
  test('a 401 with resource_metadata → metadata → issuer, and the issuer completes a real authorization', async () => {
    const metaPath = '/.well-known/oauth-protected-resource/mcp';
    upstream(`Bearer error="invalid_token", resource_metadata="${rs.base}${metaPath}", scope="files:read"`, metaPath, json({ resource: `${rs.base}/mcp`, authorization_servers: [as.issuer], scopes_supported: ['files:read', 'files:write'] }));
    const found = await discoverFromChallenge(await challengeOf(`${rs.base}/mcp`), new URL(`${rs.base}/mcp`), opts);
    assert.deepEqual(found, {
      ok: true,
      resource: `${rs.base}/mcp`,
      issuer: as.issuer,
      authorizationServers: [as.issuer],
      scopes: ['files:read'],
      metadataUrl: `${rs.base}${metaPath}`,
    });
    if (!found.ok) return;

    const oauth = new UserOAuth({
      providers: [{ name: 'mcp', issuer: found.issuer, clientId: 'bastion-public', clientAuth: 'none', scopes: [...found.scopes], resource: found.resource, redirectUri: 'https://bastion.test/oauth/callback' }],
      pending: new MemoryPendingAuthorizationStore(),
      tokens: new MemoryUserTokenStore(),
      sealer: testSealer(),
      unsafeAllowHttp: true,
    });
    const s = await oauth.startAuthorization({ provider: 'mcp', user: 'alice', agent: 'a' });
    assert.ok(s.ok);
    assert.deepEqual(await oauth.completeAuthorization(await as.authorize(s.url, { account: 'alice' }), { user: 'alice' }), { ok: true, user: 'alice', provider: 'mcp', agent: 'a' });
    const t = await oauth.accessToken({ user: 'alice', provider: 'mcp' });
    assert.ok(t.ok);
    assert.equal(decodeJwt(t.token).sub, 'alice');
    assert.equal(decodeJwt(t.token).aud, `${rs.base}/mcp`);
  });

  test('metadata whose resource is not the URL requested is refused (RFC 9728 §3.3)', async () => {
    const metaPath = '/meta';
    upstream(`Bearer resource_metadata="${rs.base}${metaPath}"`, metaPath, json({ resource: `${rs.base}/another`, authorization_servers: [as.issuer] }));
    assert.deepEqual(await discoverFromChallenge(await challengeOf(`${rs.base}/mcp`), new URL(`${rs.base}/mcp`), opts), { ok: false, reason: 'oauth.resource_mismatch' });
  });

  test('without resource_metadata, the well-known location of the resource is used (RFC 9728 §3.1)', async () => {
    const metaPath = '/.well-known/oauth-protected-resource/mcp';
    upstream('Bearer realm="mcp"', metaPath, json({ resource: `${rs.base}/mcp`, authorization_servers: [as.issuer] }));
    const found = await discoverFromChallenge(await challengeOf(`${rs.base}/mcp`), new URL(`${rs.base}/mcp`), opts);
    assert.ok(found.ok);
    assert.equal(found.issuer, as.issuer);
    assert.equal(found.metadataUrl, `${rs.base}${metaPath}`);
    assert.deepEqual(found.scopes, []);
  });

  test('metadata on another origin is refused unless allowed', async () => {
    otherRoutes.set('/meta', json({ resource: `${rs.base}/mcp`, authorization_servers: [as.issuer] }));
    const header = `Bearer resource_metadata="${other.base}/meta"`;
    assert.deepEqual(await discoverFromChallenge(header, new URL(`${rs.base}/mcp`), opts), { ok: false, reason: 'oauth.challenge_invalid' });
    const found = await discoverFromChallenge(header, new URL(`${rs.base}/mcp`), { ...opts, crossOriginMetadata: true });
    assert.ok(found.ok);
    assert.equal(found.metadataUrl, `${other.base}/meta`);
  });

  test('challenges that are not Bearer, or do not parse, or name an unusable URL', async () => {
    const url = new URL(`${rs.base}/mcp`);
    for (const header of ['Basic realm="x"', '', '"unterminated', 'Bearer resource_metadata="not a url"', `Bearer resource_metadata="ftp://127.0.0.1/meta"`, 'x'.repeat(9000)]) {
      assert.deepEqual(await discoverFromChallenge(header, url, opts), { ok: false, reason: 'oauth.challenge_invalid' }, header.slice(0, 40));
    }
    // https only outside loopback tests.
    assert.deepEqual(await discoverFromChallenge(`Bearer resource_metadata="${rs.base}/meta"`, url), { ok: false, reason: 'oauth.challenge_invalid' });
  });

  test('metadata that is missing, redirected, oversized, not JSON, or slow is refused', async () => {
    const url = new URL(`${rs.base}/mcp`);
    const cases: [string, Handler][] = [
      ['missing', json({ error: 'nope' }, 404)],
      ['redirected', (_req, res) => res.writeHead(302, { location: `${rs.base}/elsewhere` }).end()],
      ['oversized', json({ resource: `${rs.base}/mcp`, authorization_servers: [as.issuer], pad: 'x'.repeat(100_000) })],
      [
        'oversized, chunked (no content-length)',
        (_req, res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(`{"resource":"${rs.base}/mcp","authorization_servers":["${as.issuer}"],"pad":"`);
          for (let i = 0; i < 100; i++) res.write('x'.repeat(1000));
          res.end('"}');
        },
      ],
      ['not json', (_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html></html>')],
      ['slow', () => undefined],
    ];
    for (const [label, handler] of cases) {
      upstream(`Bearer resource_metadata="${rs.base}/meta"`, '/meta', handler);
      assert.deepEqual(await discoverFromChallenge(`Bearer resource_metadata="${rs.base}/meta"`, url, { ...opts, timeoutMs: 300 }), { ok: false, reason: 'oauth.resource_metadata_failed' }, label);
    }
  });

  test('metadata that names no usable authorization server', async () => {
    const url = new URL(`${rs.base}/mcp`);
    for (const servers of [undefined, [], ['ftp://as.example'], ['https://as.example/?q=1']]) {
      upstream(`Bearer resource_metadata="${rs.base}/meta"`, '/meta', json({ resource: `${rs.base}/mcp`, ...(servers ? { authorization_servers: servers } : {}) }));
      assert.deepEqual(await discoverFromChallenge(`Bearer resource_metadata="${rs.base}/meta"`, url, opts), { ok: false, reason: 'oauth.authorization_server_missing' }, JSON.stringify(servers));
    }
  });
});
