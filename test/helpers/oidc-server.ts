/**
 * A real OAuth 2.1 / OpenID Connect authorization server on 127.0.0.1:0, built on
 * `oidc-provider`, for tests of Bastion as an OAuth resource server (issue 12).
 *
 * What it serves (all from oidc-provider, nothing hand-written except the interaction):
 * - authorization code with PKCE (S256, required for every client) and the RFC 9207 `iss`
 *   authorization response parameter;
 * - refresh tokens for every client allowed the `refresh_token` grant (rotated on use);
 * - client_credentials;
 * - resource indicators (RFC 8707): an access token requested for a configured indicator is a
 *   JWT (RFC 9068, `typ: at+jwt`, RS256) whose `aud` is the indicator, or an opaque token when
 *   the resource says `format: 'opaque'`;
 * - revocation (RFC 7009) at `/token/revocation`, introspection (RFC 7662) at `/token/introspection`;
 * - discovery at `/.well-known/openid-configuration`, and the same document at
 *   `/.well-known/oauth-authorization-server` (RFC 8414 §3) for OAuth-only clients.
 *
 * The login/consent interaction is a small non-interactive route: `authorize()` follows the
 * redirects as a browser would (with its own cookie jar) and names the account in a header;
 * the route logs that account in and grants every requested scope and resource.
 *
 * oidc-provider ships no type declarations, so it is imported dynamically and typed with the
 * few members used here.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export interface OidcClient {
  client_id: string;
  client_secret?: string;
  redirect_uris?: string[];
  grant_types?: string[];
  response_types?: string[];
  token_endpoint_auth_method?: string;
}

export interface OidcServerOptions {
  clients: OidcClient[];
  /**
   * Resource indicators (RFC 8707) this AS issues access tokens for. `scope` is the
   * space-separated scopes the resource accepts; `format` defaults to 'jwt'.
   */
  resources?: { indicator: string; scope: string; accessTokenTtlS?: number; format?: 'jwt' | 'opaque' }[];
  /** Access token lifetime in seconds (default 600). */
  accessTokenTtlS?: number;
  /** Refresh token lifetime in seconds (default 86400). */
  refreshTokenTtlS?: number;
  /** Enables dynamic client registration (RFC 7591) at `/reg`, open to anyone (default false). */
  registration?: boolean;
}

export interface OidcServer {
  /** The issuer identifier, e.g. `http://127.0.0.1:PORT` (no trailing slash). */
  readonly issuer: string;
  readonly jwksUri: string;
  readonly tokenEndpoint: string;
  readonly introspectionEndpoint: string;
  readonly revocationEndpoint: string;
  readonly authorizationEndpoint: string;
  /** A JWT (or opaque) access token from the real token endpoint (client_secret_basic). @throws Error with the AS error body when the AS refuses. */
  clientCredentialsToken(o: { clientId: string; clientSecret: string; resource: string; scope?: string }): Promise<string>;
  /**
   * Signs `claims` with the server's own signing key, so the result verifies against its JWKS.
   * Defaults (overridden by `claims`): `iss` = issuer, `iat` = now, `jti` = random.
   * Header defaults: `{ alg: 'RS256', typ: 'at+jwt', kid }`; `alg: 'ES256'` selects the EC key.
   */
  signJwt(claims: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>;
  /**
   * Non-interactive login+consent: GETs an authorization URL, follows redirects through the
   * interaction as user `account` (auto login, grants every requested scope and resource), and
   * returns the final redirect URL (the client's redirect_uri with code, state, iss) WITHOUT
   * requesting it. @throws Error when a hop answers anything but a redirect.
   */
  authorize(url: string | URL, o: { account: string }): Promise<URL>;
  /** Revokes every grant of an account and every token issued under them (refresh fails afterwards). */
  revokeAccount(account: string): Promise<void>;
  close(): Promise<void>;
}

// --- the few oidc-provider members used here -------------------------------------------------

interface ProviderGrant {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}
interface InteractionDetails {
  prompt: { name: string; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } };
  params: Record<string, unknown>;
  session?: { accountId?: string };
  grantId?: string;
}
interface ProviderInstance {
  silent: boolean;
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, o?: { mergeWithLastSubmission?: boolean }): Promise<void>;
  Grant: { new (o: { accountId: string; clientId: string }): ProviderGrant; find(id: string): Promise<ProviderGrant | undefined> };
}
interface ProviderModule {
  default: new (issuer: string, config: Record<string, unknown>) => ProviderInstance;
  errors: { InvalidTarget: new () => Error };
}

// oidc-provider prints notices (runtime version, defaults) through console.info/warn while it
// loads and configures; tests keep them out of the output.
async function quietly<T>(fn: () => Promise<T> | T): Promise<T> {
  const { info, warn } = console;
  console.info = () => {};
  console.warn = () => {};
  try {
    return await fn();
  } finally {
    console.info = info;
    console.warn = warn;
  }
}

let providerModule: Promise<ProviderModule> | undefined;
function loadProvider(): Promise<ProviderModule> {
  const specifier: string = 'oidc-provider';
  providerModule ??= quietly(() => import(specifier) as Promise<ProviderModule>);
  return providerModule;
}

// --- storage: one in-memory adapter per server, indexed by grant so grants can be revoked ------

interface Stored { payload: Record<string, unknown>; expiresAt: number }

class Store {
  readonly records = new Map<string, Stored>();
  readonly byGrant = new Map<string, Set<string>>();

  get(key: string): Record<string, unknown> | undefined {
    const r = this.records.get(key);
    if (r === undefined) return undefined;
    if (r.expiresAt <= Date.now()) {
      this.records.delete(key);
      return undefined;
    }
    return r.payload;
  }

  revokeGrant(grantId: string): void {
    for (const key of this.byGrant.get(grantId) ?? []) this.records.delete(key);
    this.byGrant.delete(grantId);
    this.records.delete(`Grant:${grantId}`);
  }
}

function adapterFor(store: Store): (model: string) => unknown {
  return (model: string) => ({
    upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      const key = `${model}:${id}`;
      store.records.set(key, { payload, expiresAt: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity });
      if (typeof payload.grantId === 'string') {
        const set = store.byGrant.get(payload.grantId) ?? new Set<string>();
        set.add(key);
        store.byGrant.set(payload.grantId, set);
      }
      if (typeof payload.uid === 'string') store.records.set(`${model}:uid:${payload.uid}`, { payload: { id }, expiresAt: Infinity });
      if (typeof payload.userCode === 'string') store.records.set(`${model}:userCode:${payload.userCode}`, { payload: { id }, expiresAt: Infinity });
      return Promise.resolve();
    },
    find(id: string): Promise<Record<string, unknown> | undefined> {
      return Promise.resolve(store.get(`${model}:${id}`));
    },
    findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const ref = store.get(`${model}:uid:${uid}`);
      return Promise.resolve(typeof ref?.id === 'string' ? store.get(`${model}:${ref.id}`) : undefined);
    },
    findByUserCode(code: string): Promise<Record<string, unknown> | undefined> {
      const ref = store.get(`${model}:userCode:${code}`);
      return Promise.resolve(typeof ref?.id === 'string' ? store.get(`${model}:${ref.id}`) : undefined);
    },
    consume(id: string): Promise<void> {
      const p = store.get(`${model}:${id}`);
      if (p !== undefined) p.consumed = Math.floor(Date.now() / 1000);
      return Promise.resolve();
    },
    destroy(id: string): Promise<void> {
      store.records.delete(`${model}:${id}`);
      return Promise.resolve();
    },
    revokeByGrantId(grantId: string): Promise<void> {
      store.revokeGrant(grantId);
      return Promise.resolve();
    },
  });
}

// --- a browser's cookie jar, just enough for one authorization run on one origin ---------------

class CookieJar {
  readonly #cookies = new Map<string, string>();
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => {
        const [k = '', v = ''] = a.split('=');
        const key = k.trim().toLowerCase();
        return (key === 'max-age' && Number(v) <= 0) || (key === 'expires' && Date.parse(v) <= Date.now());
      });
      if (expired || value === '') this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

const ACCOUNT_HEADER = 'x-oidc-fixture-account';
const MAX_HOPS = 20;

/**
 * Starts an authorization server on 127.0.0.1:0. Clients and resources are fixed at start.
 * @throws Error when oidc-provider rejects the configuration (e.g. invalid client metadata).
 */
export async function startOidcServer(o: OidcServerOptions): Promise<OidcServer> {
  const { default: Provider, errors } = await loadProvider();

  const [rsa, ec] = await Promise.all([generateKeyPair('RS256', { extractable: true }), generateKeyPair('ES256', { extractable: true })]);
  const rsaJwk: JWK = { ...(await exportJWK(rsa.privateKey)), kid: `rsa-${randomUUID()}`, alg: 'RS256', use: 'sig' };
  const ecJwk: JWK = { ...(await exportJWK(ec.privateKey)), kid: `ec-${randomUUID()}`, alg: 'ES256', use: 'sig' };

  const store = new Store();
  const grantsByAccount = new Map<string, Set<string>>();
  const resources = o.resources ?? [];
  const accessTokenTtlS = o.accessTokenTtlS ?? 600;
  const refreshTokenTtlS = o.refreshTokenTtlS ?? 86_400;

  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.statusCode = 503;
    res.end();
  };
  const server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;

  const clients = o.clients.map((c) => {
    const grantTypes = c.grant_types ?? (c.redirect_uris !== undefined ? ['authorization_code', 'refresh_token'] : ['client_credentials']);
    return {
      ...c,
      grant_types: grantTypes,
      response_types: c.response_types ?? (grantTypes.includes('authorization_code') ? ['code'] : []),
      redirect_uris: c.redirect_uris ?? [],
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? (c.client_secret === undefined ? 'none' : 'client_secret_basic'),
    };
  });

  const provider = await quietly(
    () =>
      new Provider(issuer, {
        clients,
        jwks: { keys: [rsaJwk, ecJwk] },
        adapter: adapterFor(store),
        cookies: { keys: [randomBytes(32).toString('base64url')] },
        findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
        interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
        pkce: { required: () => true },
        scopes: ['openid', 'offline_access'],
        clientBasedCORS: () => true,
        renderError: (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
          ctx.type = 'json';
          ctx.body = out;
        },
        issueRefreshToken: (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed('refresh_token'),
        rotateRefreshToken: () => true,
        ttl: {
          AccessToken: accessTokenTtlS,
          ClientCredentials: accessTokenTtlS,
          RefreshToken: refreshTokenTtlS,
          AuthorizationCode: 60,
          IdToken: 3600,
          Interaction: 600,
          Session: 3600,
          Grant: refreshTokenTtlS,
        },
        features: {
          devInteractions: { enabled: false },
          registration: { enabled: o.registration === true },
          clientCredentials: { enabled: true },
          introspection: {
            enabled: true,
            // A confidential client (a resource server) may introspect any token; a public one only its own.
            allowedPolicy: (_ctx: unknown, client: { clientAuthMethod: string; clientId: string }, token: { clientId: string }) =>
              client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
          },
          revocation: {
            enabled: true,
            allowedPolicy: (_ctx: unknown, client: { clientId: string }, token: { clientId: string }) => token.clientId === client.clientId,
          },
          resourceIndicators: {
            enabled: true,
            defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string) => oneOf,
            useGrantedResource: () => true,
            getResourceServerInfo: (_ctx: unknown, indicator: string) => {
              const r = resources.find((x) => x.indicator === indicator);
              if (r === undefined) throw new errors.InvalidTarget();
              return {
                scope: r.scope,
                audience: r.indicator,
                accessTokenTTL: r.accessTokenTtlS ?? accessTokenTtlS,
                accessTokenFormat: r.format ?? 'jwt',
                ...(r.format === 'opaque' ? {} : { jwt: { sign: { alg: 'RS256' } } }),
              };
            },
          },
        },
      }),
  );
  provider.silent = true;
  const providerCallback = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const account = req.headers[ACCOUNT_HEADER];
    if (typeof account !== 'string' || account === '') {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('this fixture logs in only through authorize()');
      return;
    }
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: account } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name !== 'consent') throw new Error(`unexpected prompt ${details.prompt.name}`);
    const accountId = details.session?.accountId ?? account;
    const clientId = String(details.params.client_id);
    const existing = details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId);
    const grant = existing ?? new provider.Grant({ accountId, clientId });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope !== undefined) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims !== undefined) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    const grantId = await grant.save();
    const set = grantsByAccount.get(accountId) ?? new Set<string>();
    set.add(grantId);
    grantsByAccount.set(accountId, set);
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  handler = (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path.startsWith('/interaction/') && req.method === 'GET') {
      interaction(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(err instanceof Error ? err.message : 'interaction failed');
      });
      return;
    }
    // RFC 8414 §3: the same metadata at the OAuth well-known path.
    if (path === '/.well-known/oauth-authorization-server') req.url = '/.well-known/openid-configuration';
    providerCallback(req, res);
  };

  const tokenEndpoint = `${issuer}/token`;

  return {
    issuer,
    jwksUri: `${issuer}/jwks`,
    tokenEndpoint,
    introspectionEndpoint: `${issuer}/token/introspection`,
    revocationEndpoint: `${issuer}/token/revocation`,
    authorizationEndpoint: `${issuer}/auth`,

    async clientCredentialsToken({ clientId, clientSecret, resource, scope }) {
      const body = new URLSearchParams({ grant_type: 'client_credentials', resource });
      if (scope !== undefined) body.set('scope', scope);
      const res = await fetch(tokenEndpoint, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
      });
      const json = (await res.json()) as { access_token?: unknown };
      if (!res.ok || typeof json.access_token !== 'string') throw new Error(`client_credentials refused: ${res.status} ${JSON.stringify(json)}`);
      return json.access_token;
    },

    async signJwt(claims, header = {}) {
      const alg = header.alg === 'ES256' ? 'ES256' : 'RS256';
      const key: CryptoKey = alg === 'ES256' ? ec.privateKey : rsa.privateKey;
      const kid = alg === 'ES256' ? ecJwk.kid : rsaJwk.kid;
      const payload = { iss: issuer, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ...claims };
      return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt', kid, ...header }).sign(key);
    },

    async authorize(url, { account }) {
      const jar = new CookieJar();
      let current = new URL(url);
      for (let hop = 0; hop < MAX_HOPS; hop++) {
        const res = await fetch(current, { redirect: 'manual', headers: { cookie: jar.header(), [ACCOUNT_HEADER]: account } });
        jar.take(res);
        const location = res.headers.get('location');
        if (res.status < 300 || res.status > 399 || location === null) {
          const text = await res.text();
          throw new Error(`authorize: ${current.pathname} answered ${res.status}: ${text.slice(0, 500)}`);
        }
        await res.body?.cancel();
        const next = new URL(location, current);
        if (next.origin !== issuer) return next;
        current = next;
      }
      throw new Error(`authorize: more than ${MAX_HOPS} redirects`);
    },

    revokeAccount(account) {
      for (const grantId of grantsByAccount.get(account) ?? []) store.revokeGrant(grantId);
      grantsByAccount.delete(account);
      return Promise.resolve();
    },

    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeAllConnections();
      });
    },
  };
}
