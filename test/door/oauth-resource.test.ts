/**
 * The tool door as an OAuth resource server (src/door/oauth-resource.ts), against real
 * authorization servers (oidc-provider, test/helpers/oidc-server.ts) on loopback: tokens come
 * from the real token endpoint or are signed with the servers' own keys, and the verifier
 * fetches JWKS, metadata and introspection answers over real sockets. Every refusal asserts its
 * reason code exactly.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT, UnsecuredJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import {
  AccessTokenVerifier,
  challenge,
  OAUTH_REASON_STATUS,
  OAUTH_RESOURCE_REASONS,
  protectedResourceMetadata,
  protectedResourceMetadataUrl,
  type AccessTokenVerifierConfig,
} from '../../src/door/oauth-resource.ts';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';

const R = 'http://127.0.0.1:9/mcp';
const OTHER = 'http://127.0.0.1:9/other';
const SECRET = 'agent-secret-0123456789abcdef';
const RS_SECRET = 'rs-secret-0123456789abcdef';
const REDIRECT = 'http://127.0.0.1:7/callback';
const now = (): number => Math.floor(Date.now() / 1000);

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

let a: OidcServer; // the trusted authorization server
let b: OidcServer; // another, untrusted one (mix-up)
let c: OidcServer; // issues opaque tokens, trusted through introspection

before(async () => {
  const clients = [
    { client_id: 'agent-a', client_secret: SECRET },
    { client_id: 'stranger', client_secret: SECRET },
    { client_id: 'constructor', client_secret: SECRET },
    { client_id: 'desktop', redirect_uris: [REDIRECT] },
    { client_id: 'rs', client_secret: RS_SECRET, grant_types: [] },
  ];
  [a, b, c] = await Promise.all([
    startOidcServer({ clients, resources: [{ indicator: R, scope: 'mcp:tools mcp:admin' }, { indicator: OTHER, scope: 'mcp:tools' }] }),
    startOidcServer({ clients, resources: [{ indicator: R, scope: 'mcp:tools mcp:admin' }] }),
    startOidcServer({
      clients,
      resources: [
        { indicator: R, scope: 'mcp:tools mcp:admin', format: 'opaque' },
        { indicator: OTHER, scope: 'mcp:tools', format: 'opaque' },
      ],
    }),
  ]);
});

after(async () => {
  await Promise.all([a.close(), b.close(), c.close()]);
});

const AGENTS = { 'agent-a': 'alice-agent', desktop: 'desktop-agent' };
const config = (over: Partial<AccessTokenVerifierConfig> = {}): AccessTokenVerifierConfig => ({
  resource: R,
  issuers: [{ issuer: a.issuer }],
  requiredScopes: ['mcp:tools'],
  agentClaim: 'client_id',
  agents: AGENTS,
  ...over,
});
const ccToken = (server: OidcServer, clientId = 'agent-a', scope = 'mcp:tools', resource = R): Promise<string> =>
  server.clientCredentialsToken({ clientId, clientSecret: SECRET, resource, scope });
/** Claims of a valid access token for R from `iss`, as the token endpoint would issue them. */
const claims = (iss: string, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss,
  aud: R,
  sub: 'agent-a',
  client_id: 'agent-a',
  scope: 'mcp:tools',
  iat: now(),
  exp: now() + 300,
  ...over,
});

describe('JWT access tokens from a trusted issuer', () => {
  test('a client_credentials token from the real token endpoint maps to its agent; no user (RFC 9068 §2.2)', async () => {
    const v = new AccessTokenVerifier(config());
    const result = await v.verify(await ccToken(a));
    assert.equal(result.ok, true);
    if (!result.ok) return;
    assert.equal(result.agent, 'alice-agent');
    assert.equal(result.user, null);
    assert.equal(result.issuer, a.issuer);
    assert.deepEqual(result.scopes, ['mcp:tools']);
    assert.ok(result.expiresAt > now());
  });

  test('the JWKS is found through the issuer metadata or given explicitly', async () => {
    const token = await ccToken(a);
    const explicit = new AccessTokenVerifier(config({ issuers: [{ issuer: a.issuer, jwksUri: a.jwksUri }] }));
    assert.equal((await explicit.verify(token)).ok, true);
  });

  test('an authorization code + PKCE token (real client: oauth4webapi) names the user; refresh works until the grant is revoked', async () => {
    const as = await oauth.processDiscoveryResponse(new URL(a.issuer), await oauth.discoveryRequest(new URL(a.issuer), { [oauth.allowInsecureRequests]: true }));
    const client: oauth.Client = { client_id: 'desktop', token_endpoint_auth_method: 'none' };
    const verifier = oauth.generateRandomCodeVerifier();
    const url = new URL(as.authorization_endpoint as string);
    url.search = new URLSearchParams({
      client_id: 'desktop',
      redirect_uri: REDIRECT,
      response_type: 'code',
      scope: 'mcp:tools',
      resource: R,
      state: 'st-1',
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    }).toString();
    const back = await a.authorize(url, { account: 'alice' });
    // validateAuthResponse checks the RFC 9207 `iss` parameter against the discovered issuer.
    const params = oauth.validateAuthResponse(as, client, back, 'st-1');
    const tokenRes = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier, {
      additionalParameters: { resource: R },
      [oauth.allowInsecureRequests]: true,
    });
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, tokenRes);
    const v = new AccessTokenVerifier(config());
    const first = await v.verify(tokens.access_token);
    assert.deepEqual(first.ok && { agent: first.agent, user: first.user }, { agent: 'desktop-agent', user: 'alice' });

    assert.equal(typeof tokens.refresh_token, 'string');
    const refreshed = await oauth.processRefreshTokenResponse(
      as,
      client,
      await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token as string, { [oauth.allowInsecureRequests]: true }),
    );
    const second = await v.verify(refreshed.access_token);
    assert.deepEqual(second.ok && second.user, 'alice');

    await a.revokeAccount('alice');
    await assert.rejects(
      async () => oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, oauth.None(), refreshed.refresh_token as string, { [oauth.allowInsecureRequests]: true })),
      (err: unknown) => err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant',
    );
  });

  test('a token for another resource is refused: oauth.audience (RFC 8707)', async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await ccToken(a, 'agent-a', 'mcp:tools', OTHER)), { ok: false, reason: 'oauth.audience' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { aud: [OTHER, `${R}/`] }))), { ok: false, reason: 'oauth.audience' });
  });

  test('a client the config does not map is refused: oauth.unmapped (prototype names included)', async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await ccToken(a, 'stranger')), { ok: false, reason: 'oauth.unmapped' });
    assert.deepEqual(await v.verify(await ccToken(a, 'constructor')), { ok: false, reason: 'oauth.unmapped' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { client_id: '__proto__' }))), { ok: false, reason: 'oauth.unmapped' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { client_id: undefined }))), { ok: false, reason: 'oauth.unmapped' });
  });

  test('a token without a required scope is refused: oauth.scope', async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await ccToken(a, 'agent-a', 'mcp:admin')), { ok: false, reason: 'oauth.scope' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { scope: undefined }))), { ok: false, reason: 'oauth.scope' });
    const admin = new AccessTokenVerifier(config({ requiredScopes: ['mcp:tools', 'mcp:admin'] }));
    assert.deepEqual(await admin.verify(await ccToken(a)), { ok: false, reason: 'oauth.scope' });
    assert.equal((await admin.verify(await ccToken(a, 'agent-a', 'mcp:tools mcp:admin'))).ok, true);
  });

  test('an expired token is refused: oauth.token_expired; a token not yet valid: oauth.token_invalid', async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { iat: now() - 7200, exp: now() - 3600 }))), { ok: false, reason: 'oauth.token_expired' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { nbf: now() + 3600 }))), { ok: false, reason: 'oauth.token_invalid' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { exp: undefined }))), { ok: false, reason: 'oauth.token_invalid' });
  });

  test('a tampered token is refused: oauth.token_invalid', async () => {
    const v = new AccessTokenVerifier(config());
    const token = await ccToken(a);
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    assert.deepEqual(await v.verify(`${h}.${p}.${flipped}`), { ok: false, reason: 'oauth.token_invalid' });
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const widened = Buffer.from(JSON.stringify({ ...payload, scope: 'mcp:tools mcp:admin' })).toString('base64url');
    assert.deepEqual(await v.verify(`${h}.${widened}.${s}`), { ok: false, reason: 'oauth.token_invalid' });
  });

  test('alg none, HMAC and a typ other than at+jwt are refused: oauth.token_invalid (RFC 9068 §4)', async () => {
    const v = new AccessTokenVerifier(config());
    const unsecured = new UnsecuredJWT(claims(a.issuer)).encode();
    assert.deepEqual(await v.verify(unsecured), { ok: false, reason: 'oauth.token_invalid' });
    const hmac = await new SignJWT(claims(a.issuer)).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' }).sign(new TextEncoder().encode('k'.repeat(32)));
    assert.deepEqual(await v.verify(hmac), { ok: false, reason: 'oauth.token_invalid' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer), { typ: 'JWT' })), { ok: false, reason: 'oauth.token_invalid' });
    // An issuer configured to accept any typ takes it.
    const anyTyp = new AccessTokenVerifier(config({ issuers: [{ issuer: a.issuer, jwtType: null }] }));
    assert.equal((await anyTyp.verify(await a.signJwt(claims(a.issuer), { typ: 'JWT' }))).ok, true);
    // The EC key verifies too.
    assert.equal((await v.verify(await a.signJwt(claims(a.issuer), { alg: 'ES256' }))).ok, true);
  });

  test('malformed or oversized input is refused: oauth.token_invalid', async () => {
    const v = new AccessTokenVerifier(config());
    for (const bad of ['', 'a'.repeat(8193), 'has space', 'a.b.c', 'é', 'opaque-token-with-no-introspection']) {
      assert.deepEqual(await v.verify(bad), { ok: false, reason: 'oauth.token_invalid' }, bad.slice(0, 20));
    }
  });
});

describe('issuer mix-up', () => {
  test("another authorization server's real token is refused: oauth.issuer", async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await ccToken(b)), { ok: false, reason: 'oauth.issuer' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(a.issuer, { iss: undefined }))), { ok: false, reason: 'oauth.issuer' });
    assert.deepEqual(await v.verify(await a.signJwt(claims(`${a.issuer}/`))), { ok: false, reason: 'oauth.issuer' });
  });

  test("a token claiming the trusted issuer but signed by another's key is refused: oauth.token_invalid", async () => {
    const v = new AccessTokenVerifier(config());
    assert.deepEqual(await v.verify(await b.signJwt(claims(a.issuer))), { ok: false, reason: 'oauth.token_invalid' });
    // Even when it names the trusted issuer's own key id.
    const jwks = (await (await fetch(a.jwksUri)).json()) as { keys: { kid: string; kty: string }[] };
    const kid = jwks.keys.find((k) => k.kty === 'RSA')?.kid;
    assert.equal(typeof kid, 'string');
    assert.deepEqual(await v.verify(await b.signJwt(claims(a.issuer), { kid })), { ok: false, reason: 'oauth.token_invalid' });
  });

  test('with both issuers trusted, each token is checked against its own issuer', async () => {
    const v = new AccessTokenVerifier(config({ issuers: [{ issuer: a.issuer }, { issuer: b.issuer }] }));
    assert.equal((await v.verify(await ccToken(a))).ok, true);
    const fromB = await v.verify(await ccToken(b));
    assert.deepEqual(fromB.ok && fromB.issuer, b.issuer);
    assert.deepEqual(await v.verify(await b.signJwt(claims(a.issuer))), { ok: false, reason: 'oauth.token_invalid' });
  });
});

describe('JWKS availability', () => {
  test('an unreachable JWKS refuses with oauth.jwks_unavailable', async () => {
    const port = await closedPort();
    const v = new AccessTokenVerifier(config({ issuers: [{ issuer: a.issuer, jwksUri: `http://127.0.0.1:${port}/jwks` }] }));
    assert.deepEqual(await v.verify(await ccToken(a)), { ok: false, reason: 'oauth.jwks_unavailable' });
  });

  test('an issuer whose metadata cannot be fetched refuses with oauth.jwks_unavailable', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    const v = new AccessTokenVerifier(config({ issuers: [{ issuer: dead }] }));
    assert.deepEqual(await v.verify(await a.signJwt(claims(dead))), { ok: false, reason: 'oauth.jwks_unavailable' });
  });

  test('a JWKS URL that answers something else refuses with oauth.jwks_unavailable', async () => {
    const v = new AccessTokenVerifier(config({ issuers: [{ issuer: a.issuer, jwksUri: `${a.issuer}/.well-known/openid-configuration` }] }));
    assert.deepEqual(await v.verify(await ccToken(a)), { ok: false, reason: 'oauth.jwks_unavailable' });
  });
});

describe('introspection (RFC 7662)', () => {
  const introspecting = (over: Partial<{ endpoint: string; clientSecret: string }> = {}): AccessTokenVerifierConfig =>
    config({
      issuers: [{ issuer: c.issuer, introspection: { endpoint: over.endpoint ?? c.introspectionEndpoint, clientId: 'rs', clientSecret: over.clientSecret ?? RS_SECRET } }],
      agents: { 'agent-a': 'carol-agent' },
    });
  const opaque = (resource = R, scope = 'mcp:tools'): Promise<string> => c.clientCredentialsToken({ clientId: 'agent-a', clientSecret: SECRET, resource, scope });

  test('an active opaque token maps to its agent; after revocation it is refused: oauth.token_invalid', async () => {
    const v = new AccessTokenVerifier(introspecting());
    const token = await opaque();
    assert.equal(token.split('.').length, 1);
    const ok = await v.verify(token);
    assert.deepEqual(ok.ok && { agent: ok.agent, user: ok.user, issuer: ok.issuer, scopes: ok.scopes }, { agent: 'carol-agent', user: null, issuer: c.issuer, scopes: ['mcp:tools'] });

    const as = { issuer: c.issuer, revocation_endpoint: c.revocationEndpoint };
    const revoked = await oauth.revocationRequest(as, { client_id: 'agent-a' }, oauth.ClientSecretBasic(SECRET), token, { [oauth.allowInsecureRequests]: true });
    await oauth.processRevocationResponse(revoked);
    assert.deepEqual(await v.verify(token), { ok: false, reason: 'oauth.token_invalid' });
  });

  test('an opaque token for another resource is refused: oauth.audience; a missing scope: oauth.scope', async () => {
    const v = new AccessTokenVerifier(introspecting());
    const other = await opaque(OTHER);
    assert.deepEqual(await v.verify(other), { ok: false, reason: 'oauth.audience' });
    const admin = await opaque(R, 'mcp:admin');
    assert.deepEqual(await v.verify(admin), { ok: false, reason: 'oauth.scope' });
  });

  test('an unknown token is inactive: oauth.token_invalid', async () => {
    const v = new AccessTokenVerifier(introspecting());
    assert.deepEqual(await v.verify('NotATokenTheServerIssued0123456789abcdef'), { ok: false, reason: 'oauth.token_invalid' });
  });

  test('an unreachable endpoint or refused client authentication: oauth.introspection_failed', async () => {
    const token = await opaque();
    const port = await closedPort();
    const down = new AccessTokenVerifier(introspecting({ endpoint: `http://127.0.0.1:${port}/introspect` }));
    assert.deepEqual(await down.verify(token), { ok: false, reason: 'oauth.introspection_failed' });
    const wrongSecret = new AccessTokenVerifier(introspecting({ clientSecret: 'not-the-secret-0123456789' }));
    assert.deepEqual(await wrongSecret.verify(token), { ok: false, reason: 'oauth.introspection_failed' });
  });

  test('opaque tokens are refused when no issuer, or more than one, introspects (the token would go to a server that may not have issued it)', async () => {
    const token = await opaque();
    const intro = { endpoint: c.introspectionEndpoint, clientId: 'rs', clientSecret: RS_SECRET };
    const two = new AccessTokenVerifier(config({ issuers: [{ issuer: c.issuer, introspection: intro }, { issuer: b.issuer, introspection: { ...intro, endpoint: b.introspectionEndpoint } }] }));
    assert.deepEqual(await two.verify(token), { ok: false, reason: 'oauth.token_invalid' });
    assert.deepEqual(await new AccessTokenVerifier(config()).verify(token), { ok: false, reason: 'oauth.token_invalid' });
  });
});

describe('protected resource metadata and challenges', () => {
  test('the RFC 9728 §2 document', () => {
    assert.deepEqual(
      protectedResourceMetadata({ resource: 'https://bastion.example/mcp', authorizationServers: ['https://as.example', 'http://127.0.0.1:8080/tenant'], scopesSupported: ['mcp:tools'], resourceName: 'Bastion' }),
      {
        resource: 'https://bastion.example/mcp',
        authorization_servers: ['https://as.example', 'http://127.0.0.1:8080/tenant'],
        bearer_methods_supported: ['header'],
        scopes_supported: ['mcp:tools'],
        resource_name: 'Bastion',
      },
    );
    assert.throws(() => protectedResourceMetadata({ resource: 'http://bastion.example/mcp', authorizationServers: ['https://as.example'] }), TypeError);
    assert.throws(() => protectedResourceMetadata({ resource: 'https://bastion.example/mcp#x', authorizationServers: ['https://as.example'] }), TypeError);
    assert.throws(() => protectedResourceMetadata({ resource: 'https://bastion.example/mcp', authorizationServers: ['https://as.example?x=1'] }), TypeError);
    assert.throws(() => protectedResourceMetadata({ resource: 'https://bastion.example/mcp', authorizationServers: [] }), TypeError);
  });

  test('the well-known URL inserts the prefix before the resource path (RFC 9728 §3.1)', () => {
    assert.equal(protectedResourceMetadataUrl('https://bastion.example/mcp'), 'https://bastion.example/.well-known/oauth-protected-resource/mcp');
    assert.equal(protectedResourceMetadataUrl('https://bastion.example'), 'https://bastion.example/.well-known/oauth-protected-resource');
    assert.equal(protectedResourceMetadataUrl('http://127.0.0.1:4000/mcp'), 'http://127.0.0.1:4000/.well-known/oauth-protected-resource/mcp');
  });

  test('challenges: none when no credential was presented, invalid_token, insufficient_scope with the scope (RFC 6750 §3)', () => {
    const url = 'https://bastion.example/.well-known/oauth-protected-resource/mcp';
    assert.equal(challenge({ resourceMetadataUrl: url }), `Bearer resource_metadata="${url}"`);
    assert.equal(
      challenge({ resourceMetadataUrl: url, reason: 'oauth.token_expired' }),
      `Bearer error="invalid_token", error_description="The access token expired", resource_metadata="${url}"`,
    );
    assert.equal(
      challenge({ resourceMetadataUrl: url, reason: 'oauth.scope', scopes: ['mcp:tools', 'mcp:admin'] }),
      `Bearer error="insufficient_scope", error_description="The access token lacks a required scope", scope="mcp:tools mcp:admin", resource_metadata="${url}"`,
    );
    for (const reason of OAUTH_RESOURCE_REASONS) {
      const value = challenge({ resourceMetadataUrl: url, reason });
      assert.match(value, reason === 'oauth.scope' ? /^Bearer error="insufficient_scope"/ : /^Bearer error="invalid_token"/);
      assert.ok([401, 403, 503].includes(OAUTH_REASON_STATUS[reason]));
    }
    assert.throws(() => challenge({ resourceMetadataUrl: url, reason: 'oauth.scope', scopes: ['a"b'] }), TypeError);
  });

  test('a refusal carries only its reason, never the token', async () => {
    const v = new AccessTokenVerifier(config());
    const token = await a.signJwt(claims(a.issuer, { exp: now() - 3600, secret_claim: 'do-not-echo' }));
    const result = await v.verify(token);
    assert.deepEqual(Object.keys(result).sort(), ['ok', 'reason']);
    assert.ok(!JSON.stringify(result).includes('do-not-echo'));
  });
});

describe('configuration', () => {
  test('is validated once, naming the field', () => {
    const bad: [Partial<AccessTokenVerifierConfig>, RegExp][] = [
      [{ issuers: [] }, /^issuers must/],
      [{ issuers: [{ issuer: 'http://as.example' }] }, /^issuers\[0\]\.issuer must be an https URL/],
      [{ issuers: [{ issuer: 'https://as.example' }, { issuer: 'https://as.example' }] }, /^issuers\[1\]\.issuer repeats/],
      [{ issuers: [{ issuer: 'https://as.example', jwksUri: 'ftp://as.example/jwks' }] }, /^issuers\[0\]\.jwksUri/],
      [{ issuers: [{ issuer: 'https://as.example', introspection: { endpoint: 'https://as.example/i', clientId: 'rs', clientSecret: '' } }] }, /clientSecret must not be empty/],
      [{ requiredScopes: ['has space'] }, /^requiredScopes\[0\]/],
      [{ agentClaim: '' }, /^agentClaim/],
      [{ agents: { x: '' } }, /^agents maps/],
      [{ resource: 'https://h.example/mcp#f' }, /fragment/],
      [{ limits: { maxTokenChars: 0 } }, /^limits\.maxTokenChars/],
    ];
    for (const [over, message] of bad) assert.throws(() => new AccessTokenVerifier(config(over)), (e: unknown) => e instanceof TypeError && message.test(e.message), message.source);
  });

  test('the introspection secret does not show when the verifier is printed', () => {
    const v = new AccessTokenVerifier(config({ issuers: [{ issuer: 'https://as.example', introspection: { endpoint: 'https://as.example/i', clientId: 'rs', clientSecret: 'sekrit-value-123' } }] }));
    assert.ok(!JSON.stringify(v).includes('sekrit'));
    assert.equal(v.resource, R);
  });
});
