/**
 * UserOAuth against a real authorization server (oidc-provider on 127.0.0.1):
 * the authorization code flow with PKCE per end user, refresh, revocation, and
 * every refusal of a forged or misrouted callback, asserted by reason code.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import { startOidcServer, type OidcServer } from '../helpers/oidc-server.ts';
import {
  MemoryPendingAuthorizationStore,
  MemoryUserTokenStore,
  OAUTH_REASONS,
  tokenSetAad,
  UserOAuth,
  type OAuthClientAuth,
  type OAuthEvent,
  type OAuthProviderConfig,
  type TokenSealer,
  type UserOAuthOptions,
} from '../../src/oauth/index.ts';
import { Secret } from '../../src/util/secret.ts';
import { isBastionError } from '../../src/errors.ts';
import { testSealer } from './sealer.ts';

const REDIRECT = 'https://bastion.test/oauth/callback';
const RESOURCE = 'https://mcp.example.test/mcp';
const SECRET = 'a-client-secret-of-sufficient-length-0123456789';
const TTL_S = 600;

let as: OidcServer;

before(async () => {
  as = await startOidcServer({
    clients: [
      { client_id: 'bastion-basic', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_basic' },
      { client_id: 'bastion-post', client_secret: SECRET, redirect_uris: [REDIRECT], token_endpoint_auth_method: 'client_secret_post' },
      { client_id: 'bastion-public', redirect_uris: [REDIRECT], token_endpoint_auth_method: 'none' },
    ],
    resources: [{ indicator: RESOURCE, scope: 'files:read' }],
    accessTokenTtlS: TTL_S,
  });
});
after(() => as.close());

function provider(auth: OAuthClientAuth = 'client_secret_basic', over: Partial<OAuthProviderConfig> = {}): OAuthProviderConfig {
  const clientId = auth === 'none' ? 'bastion-public' : auth === 'client_secret_post' ? 'bastion-post' : 'bastion-basic';
  return {
    name: 'files',
    issuer: as.issuer,
    clientId,
    clientAuth: auth,
    ...(auth === 'none' ? {} : { clientSecret: new Secret(SECRET) }),
    scopes: ['openid', 'files:read'],
    resource: RESOURCE,
    redirectUri: REDIRECT,
    ...over,
  };
}

interface Rig {
  oauth: UserOAuth;
  tokens: MemoryUserTokenStore;
  pending: MemoryPendingAuthorizationStore;
  events: OAuthEvent[];
  clock: { now: number };
  sealer: TokenSealer;
}

function rig(providers: OAuthProviderConfig[] = [provider()], over: Partial<UserOAuthOptions> = {}): Rig {
  const clock = { now: Date.now() };
  const tokens = new MemoryUserTokenStore();
  const pending = new MemoryPendingAuthorizationStore({ now: () => clock.now });
  const events: OAuthEvent[] = [];
  const sealer = testSealer();
  const oauth = new UserOAuth({
    providers,
    pending,
    tokens,
    sealer,
    now: () => clock.now,
    onEvent: (e) => events.push(e),
    unsafeAllowHttp: true,
    timeoutMs: 5_000,
    ...over,
  });
  return { oauth, tokens, pending, events, clock, sealer };
}

async function start(r: Rig, user: string, providerName = 'files'): Promise<{ url: URL; state: string }> {
  const s = await r.oauth.startAuthorization({ provider: providerName, user, agent: 'agent-1' });
  assert.equal(s.ok, true, `start refused: ${s.ok ? '' : s.reason}`);
  if (!s.ok) throw new Error('unreachable');
  return s;
}

/** start → the AS logs `account` in and consents → the callback URL Bastion would receive. */
async function consent(r: Rig, user: string, account = user): Promise<{ callback: URL; state: string }> {
  const s = await start(r, user);
  return { callback: await as.authorize(s.url, { account }), state: s.state };
}

async function tokenOf(r: Rig, user: string): Promise<string> {
  const t = await r.oauth.accessToken({ user, provider: 'files' });
  assert.equal(t.ok, true, `accessToken refused: ${t.ok ? '' : t.reason}`);
  if (!t.ok) throw new Error('unreachable');
  return t.token;
}

/** A refresh grant sent straight to the token endpoint: the AS's own word on whether a refresh token still lives. */
async function refreshAtAs(refreshToken: string): Promise<{ status: number; error?: string }> {
  const res = await fetch(as.tokenEndpoint, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`bastion-basic:${SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
  });
  const body = (await res.json()) as { error?: string };
  return { status: res.status, ...(body.error !== undefined ? { error: body.error } : {}) };
}

/** The refresh token inside a stored set, opened with the rig's sealer (tests only). */
async function storedRefreshToken(r: Rig, user: string): Promise<string> {
  const sealed = await r.tokens.get(user, 'files');
  assert.ok(sealed !== undefined);
  const set = JSON.parse(await r.sealer.open(sealed, tokenSetAad(user, 'files'))) as { refreshToken?: string };
  assert.ok(typeof set.refreshToken === 'string');
  return set.refreshToken;
}

describe('the authorization code flow, per user', () => {
  for (const auth of ['client_secret_basic', 'client_secret_post', 'none'] as const) {
    test(`start → consent as alice → callback → an access token whose sub is alice (${auth})`, async () => {
      const r = rig([provider(auth)]);
      const s = await start(r, 'alice');
      assert.equal(s.url.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(s.url.searchParams.get('resource'), RESOURCE);
      assert.equal(s.url.searchParams.get('state'), s.state);
      assert.equal(s.url.searchParams.get('code_verifier'), null);
      const callback = await as.authorize(s.url, { account: 'alice' });
      assert.equal(callback.searchParams.get('iss'), as.issuer);

      const done = await r.oauth.completeAuthorization(callback, { user: 'alice' });
      assert.deepEqual(done, { ok: true, user: 'alice', provider: 'files', agent: 'agent-1' });

      const token = await tokenOf(r, 'alice');
      const claims = decodeJwt(token);
      assert.equal(claims.sub, 'alice');
      assert.equal(claims.aud, RESOURCE);
      // Another user has no token, whatever alice holds.
      assert.deepEqual(await r.oauth.accessToken({ user: 'bob', provider: 'files' }), { ok: false, reason: 'oauth.consent_required' });
      // Nothing secret reached the audit hook, and the store holds no clear token.
      const sealed = await r.tokens.get('alice', 'files');
      assert.ok(sealed !== undefined && !sealed.includes(token));
      assert.ok(!JSON.stringify(r.events).includes(token));
      assert.ok(!JSON.stringify(r.events).includes(SECRET));
    });
  }

  test('two users at one provider hold two tokens, each with its own sub', async () => {
    const r = rig();
    for (const user of ['alice', 'bob']) assert.equal((await r.oauth.completeAuthorization((await consent(r, user)).callback, { user })).ok, true);
    assert.equal(decodeJwt(await tokenOf(r, 'alice')).sub, 'alice');
    assert.equal(decodeJwt(await tokenOf(r, 'bob')).sub, 'bob');
  });
});

describe('refresh and revocation', () => {
  test('within the skew of expiry, accessToken refreshes and answers a new token for the same user', async () => {
    const r = rig();
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'carol')).callback)).ok, true);
    const first = await tokenOf(r, 'carol');
    assert.equal(await tokenOf(r, 'carol'), first, 'a fresh token is reused, not refreshed');
    r.clock.now += (TTL_S - 30) * 1000; // 30 s before expiry: inside the 60 s skew
    const second = await tokenOf(r, 'carol');
    assert.notEqual(second, first);
    assert.equal(decodeJwt(second).sub, 'carol');
    assert.ok(r.events.some((e) => e.op === 'refresh' && e.outcome === 'ok'));
    // The rotated refresh token was stored: a second refresh works too.
    r.clock.now += (TTL_S - 30) * 1000;
    const third = await tokenOf(r, 'carol');
    assert.notEqual(third, second);
  });

  test('concurrent calls near expiry refresh once: rotation does not race the stored refresh token', async () => {
    const r = rig();
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'dave')).callback)).ok, true);
    await tokenOf(r, 'dave');
    r.clock.now += (TTL_S - 10) * 1000;
    const results = await Promise.all([1, 2, 3].map(() => r.oauth.accessToken({ user: 'dave', provider: 'files' })));
    assert.ok(results.every((x) => x.ok));
    assert.equal(r.events.filter((e) => e.op === 'refresh' && e.outcome === 'ok').length, 1);
  });

  test('grant revoked at the provider: a forced refresh answers consent_required and drops the stored set', async () => {
    const r = rig();
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'erin')).callback)).ok, true);
    await tokenOf(r, 'erin');
    await as.revokeAccount('erin');
    assert.deepEqual(await r.oauth.accessToken({ user: 'erin', provider: 'files' }, { forceRefresh: true }), { ok: false, reason: 'oauth.consent_required' });
    assert.equal(await r.tokens.get('erin', 'files'), undefined);
    assert.ok(r.events.some((e) => e.op === 'refresh' && e.outcome === 'oauth.consent_required' && e.cause === 'invalid_grant'));
    // Asking again works: the user consents anew.
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'erin')).callback)).ok, true);
    assert.equal(decodeJwt(await tokenOf(r, 'erin')).sub, 'erin');
  });

  test('revoke() revokes at the provider (RFC 7009) and deletes the stored set', async () => {
    const r = rig();
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'frank')).callback)).ok, true);
    await tokenOf(r, 'frank');
    const refreshToken = await storedRefreshToken(r, 'frank');
    assert.deepEqual(await r.oauth.revoke({ user: 'frank', provider: 'files' }), { ok: true, hadTokens: true, provider: 'revoked' });
    assert.deepEqual(await refreshAtAs(refreshToken), { status: 400, error: 'invalid_grant' });
    assert.equal(await r.tokens.get('frank', 'files'), undefined);
    assert.deepEqual(await r.oauth.accessToken({ user: 'frank', provider: 'files' }), { ok: false, reason: 'oauth.consent_required' });
    assert.deepEqual(await r.oauth.revoke({ user: 'frank', provider: 'files' }), { ok: true, hadTokens: false, provider: 'not_attempted' });
  });

  test('the AS unreachable at refresh time: the still-valid token is served, an expired one answers refresh_failed and is kept', async () => {
    let down = false;
    const r = rig(undefined, { fetch: (url, init) => (down ? Promise.reject(new TypeError('fetch failed')) : fetch(url, init)) });
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'gina')).callback)).ok, true);
    const token = await tokenOf(r, 'gina');
    down = true;
    r.clock.now += (TTL_S - 30) * 1000;
    assert.equal(await tokenOf(r, 'gina'), token, 'inside the skew but not expired: the current token still serves');
    assert.ok(r.events.some((e) => e.op === 'refresh' && e.outcome === 'oauth.refresh_failed'));
    r.clock.now += 60_000;
    assert.deepEqual(await r.oauth.accessToken({ user: 'gina', provider: 'files' }), { ok: false, reason: 'oauth.refresh_failed' });
    assert.notEqual(await r.tokens.get('gina', 'files'), undefined, 'a transient failure keeps the set');
    down = false;
    const next = await tokenOf(r, 'gina');
    assert.notEqual(next, token);
    assert.equal(decodeJwt(next).sub, 'gina');
  });
});

describe('callbacks that must be refused', () => {
  test('an unknown state, and a missing one', async () => {
    const r = rig();
    const { callback } = await consent(r, 'alice');
    const forged = new URL(callback);
    forged.searchParams.set('state', 'not-a-state-bastion-issued');
    assert.deepEqual(await r.oauth.completeAuthorization(forged), { ok: false, reason: 'oauth.state_unknown' });
    forged.searchParams.delete('state');
    assert.deepEqual(await r.oauth.completeAuthorization(forged), { ok: false, reason: 'oauth.state_unknown' });
    const doubled = new URL(callback);
    doubled.searchParams.append('state', 'second');
    assert.deepEqual(await r.oauth.completeAuthorization(doubled), { ok: false, reason: 'oauth.state_unknown' });
  });

  test('a state used twice: the second completion is refused', async () => {
    const r = rig();
    const { callback } = await consent(r, 'alice');
    assert.equal((await r.oauth.completeAuthorization(callback)).ok, true);
    assert.deepEqual(await r.oauth.completeAuthorization(callback), { ok: false, reason: 'oauth.state_unknown' });
  });

  test("bob's state completed as alice is refused, and the state is spent", async () => {
    const r = rig();
    const { callback } = await consent(r, 'bob');
    assert.deepEqual(await r.oauth.completeAuthorization(callback, { user: 'alice' }), { ok: false, reason: 'oauth.state_user_mismatch' });
    assert.equal(await r.tokens.get('alice', 'files'), undefined);
    assert.equal(await r.tokens.get('bob', 'files'), undefined);
    assert.deepEqual(await r.oauth.completeAuthorization(callback, { user: 'bob' }), { ok: false, reason: 'oauth.state_unknown' });
  });

  test('an expired state', async () => {
    const r = rig(undefined, { stateTtlMs: 60_000 });
    const { callback } = await consent(r, 'alice');
    r.clock.now += 60_001;
    assert.deepEqual(await r.oauth.completeAuthorization(callback), { ok: false, reason: 'oauth.state_expired' });
  });

  test('an iss naming another server, or missing where the server promises it (RFC 9207 mix-up)', async () => {
    const r = rig();
    const a = await consent(r, 'alice');
    const other = new URL(a.callback);
    other.searchParams.set('iss', 'https://attacker.example');
    assert.deepEqual(await r.oauth.completeAuthorization(other), { ok: false, reason: 'oauth.issuer_mismatch' });
    const b = await consent(r, 'alice');
    const none = new URL(b.callback);
    none.searchParams.delete('iss');
    assert.deepEqual(await r.oauth.completeAuthorization(none), { ok: false, reason: 'oauth.issuer_mismatch' });
    assert.equal(await r.tokens.get('alice', 'files'), undefined);
  });

  test('an error response from the authorization server', async () => {
    const r = rig();
    const s = await start(r, 'alice');
    const denied = new URL(REDIRECT);
    denied.searchParams.set('error', 'access_denied');
    denied.searchParams.set('state', s.state);
    denied.searchParams.set('iss', as.issuer);
    assert.deepEqual(await r.oauth.completeAuthorization(denied), { ok: false, reason: 'oauth.authorization_denied' });
  });

  test('a callback without a code', async () => {
    const r = rig();
    const { callback } = await consent(r, 'alice');
    callback.searchParams.delete('code');
    const res = await r.oauth.completeAuthorization(callback);
    assert.equal(res.ok, false);
    assert.ok(!res.ok && (res.reason === 'oauth.callback_invalid' || res.reason === 'oauth.code_exchange_failed'));
  });

  test("a code from another pending authorization (injected code, PKCE mismatch) is refused by the token endpoint", async () => {
    const r = rig();
    const victim = await start(r, 'alice');
    const injected = await consent(r, 'alice', 'mallory'); // a code the attacker obtained for their own session
    const forged = new URL(injected.callback);
    forged.searchParams.set('state', victim.state);
    assert.deepEqual(await r.oauth.completeAuthorization(forged), { ok: false, reason: 'oauth.code_exchange_failed' });
    assert.equal(await r.tokens.get('alice', 'files'), undefined);
    assert.ok(r.events.some((e) => e.op === 'complete' && e.outcome === 'oauth.code_exchange_failed' && e.cause === 'invalid_grant'));
  });
});

describe('sealing and configuration', () => {
  test("alice's sealed set moved to bob does not open for bob", async () => {
    const r = rig();
    assert.equal((await r.oauth.completeAuthorization((await consent(r, 'alice')).callback)).ok, true);
    const sealed = await r.tokens.get('alice', 'files');
    assert.ok(sealed !== undefined);
    await r.tokens.put('bob', 'files', sealed);
    assert.deepEqual(await r.oauth.accessToken({ user: 'bob', provider: 'files' }), { ok: false, reason: 'oauth.token_unreadable' });
    assert.equal(decodeJwt(await tokenOf(r, 'alice')).sub, 'alice');
  });

  test('a failing store answers store_error', async () => {
    const broken = new MemoryUserTokenStore();
    broken.get = () => Promise.reject(new Error('disk gone'));
    const r = rig(undefined, { tokens: broken });
    assert.deepEqual(await r.oauth.accessToken({ user: 'alice', provider: 'files' }), { ok: false, reason: 'oauth.store_error' });
  });

  test('an unknown provider', async () => {
    const r = rig();
    assert.deepEqual(await r.oauth.startAuthorization({ provider: 'nope', user: 'alice', agent: 'a' }), { ok: false, reason: 'oauth.provider_unknown' });
    assert.deepEqual(await r.oauth.accessToken({ user: 'alice', provider: 'nope' }), { ok: false, reason: 'oauth.provider_unknown' });
  });

  test('a client ID metadata document URL is refused where the server does not advertise support', async () => {
    const r = rig([provider('none', { clientId: 'https://bastion.test/oauth/client.json' })]);
    assert.deepEqual(await r.oauth.startAuthorization({ provider: 'files', user: 'alice', agent: 'a' }), { ok: false, reason: 'oauth.client_id_metadata_unsupported' });
  });

  test('a server whose metadata does not list PKCE S256 is refused (RFC 8414 §2, OAuth 2.1)', async () => {
    const server = createServer((req, res) => {
      if (req.url !== '/.well-known/oauth-authorization-server') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: base, authorization_endpoint: `${base}/auth`, token_endpoint: `${base}/token` }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = rig([provider('none', { issuer: base })]);
      assert.deepEqual(await r.oauth.startAuthorization({ provider: 'files', user: 'alice', agent: 'a' }), { ok: false, reason: 'oauth.pkce_unsupported' });
      assert.equal(r.pending.size, 0);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test('an unreachable issuer answers discovery_failed', async () => {
    const r = rig([provider('client_secret_basic', { issuer: 'http://127.0.0.1:1' })]);
    assert.deepEqual(await r.oauth.startAuthorization({ provider: 'files', user: 'alice', agent: 'a' }), { ok: false, reason: 'oauth.discovery_failed' });
  });

  test('the pending store bounds authorizations in flight', async () => {
    const r = rig(undefined, { pending: new MemoryPendingAuthorizationStore({ maxEntries: 1 }) });
    await start(r, 'alice');
    assert.deepEqual(await r.oauth.startAuthorization({ provider: 'files', user: 'alice', agent: 'a' }), { ok: false, reason: 'oauth.pending_limit' });
  });

  test('bad provider configs are refused with the path at fault', () => {
    const cases: [Partial<OAuthProviderConfig>, string][] = [
      [{ name: 'Bad Name' }, 'providers[0].name'],
      [{ issuer: 'ftp://x' }, 'providers[0].issuer'],
      [{ issuer: 'https://as.example/?q=1' }, 'providers[0].issuer'],
      [{ clientAuth: 'client_secret_basic', clientSecret: undefined }, 'providers[0].clientSecret'],
      [{ clientId: 'https://bastion.test/client.json' }, 'providers[0].clientAuth'],
      [{ scopes: ['has space'] }, 'providers[0].scopes'],
      [{ resource: 'https://r.example/#frag' }, 'providers[0].resource'],
    ];
    for (const [over, path] of cases) {
      assert.throws(
        () => new UserOAuth({ providers: [{ ...provider(), ...over }], pending: new MemoryPendingAuthorizationStore(), tokens: new MemoryUserTokenStore(), sealer: testSealer(), unsafeAllowHttp: true }),
        (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && err.detail?.path === path,
        path,
      );
    }
    assert.throws(
      () => new UserOAuth({ providers: [provider()], pending: new MemoryPendingAuthorizationStore(), tokens: new MemoryUserTokenStore(), sealer: testSealer() }),
      (err: unknown) => isBastionError(err, 'ERR_CONFIG_INVALID') && err.detail?.path === 'providers[0].issuer',
      'http issuers need unsafeAllowHttp',
    );
  });

  test('the reason list is closed and namespaced', () => {
    assert.equal(new Set(OAUTH_REASONS).size, OAUTH_REASONS.length);
    assert.ok(OAUTH_REASONS.every((r) => /^oauth\.[a-z_]+$/.test(r)));
  });
});
