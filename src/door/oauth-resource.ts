/**
 * The tool door as an OAuth 2.1 resource server (MCP authorization, issue 12).
 *
 * Three parts:
 * - {@link protectedResourceMetadata} and {@link protectedResourceMetadataUrl}: the RFC 9728
 *   document that tells an MCP client which authorization servers issue tokens for `/mcp`;
 * - {@link challenge}: the `WWW-Authenticate: Bearer` value of a refusal (RFC 6750 §3, RFC 9728 §5.1);
 * - {@link AccessTokenVerifier}: an access token in, an agent (and user) or a closed reason out.
 *
 * A JWT access token (RFC 9068) is verified locally against its issuer's JWKS: the unverified
 * `iss` only selects which configured issuer's keys and rules apply, then `jose` checks the
 * signature (asymmetric algorithms only), `iss` exactly (a token from an unconfigured issuer, or
 * one that names issuer A but is signed by B's keys, is refused: the mix-up defence of RFC 9207's
 * spirit on the resource side), `aud` = this resource (RFC 8707 §2), `typ` = `at+jwt`
 * (RFC 9068 §4), `exp`/`nbf` with {@link CLOCK_TOLERANCE_S} of skew. An issuer configured with
 * introspection is asked instead (RFC 7662, via `oauth4webapi`); an opaque token goes to the one
 * issuer that has introspection, or is refused when none or several do (sending a token to an
 * authorization server that did not issue it would leak it).
 *
 * Every failure is a reason from {@link OAUTH_RESOURCE_REASONS}; nothing throws out of
 * `verify`, and no reason or message carries the token or its claims.
 */
import ipaddr from 'ipaddr.js';
import {
  createRemoteJWKSet,
  decodeJwt,
  errors as joseErrors,
  jwtVerify,
  type JWSHeaderParameters,
  type FlattenedJWSInput,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import {
  allowInsecureRequests,
  ClientSecretBasic,
  discoveryRequest,
  introspectionRequest,
  processDiscoveryResponse,
  processIntrospectionResponse,
  type IntrospectionResponse,
} from 'oauth4webapi';
import {
  bearerAuthChallengeResponse,
  getOAuthProtectedResourceMetadataUrl,
  OAuthError,
  OAuthErrorCode,
  resourceUrlFromServerUrl,
  type OAuthProtectedResourceMetadata,
} from '@modelcontextprotocol/server';
import { Secret } from '../util/secret.ts';

/** Every reason {@link AccessTokenVerifier.verify} refuses a token for. */
export const OAUTH_RESOURCE_REASONS = [
  /** Malformed, too long, bad signature, wrong `typ`, not yet valid (`nbf`), or inactive at introspection. */
  'oauth.token_invalid',
  /** `exp` has passed (beyond the clock tolerance). */
  'oauth.token_expired',
  /** `aud` does not name this resource (RFC 8707): a token for another resource server. */
  'oauth.audience',
  /** No `iss`, or an issuer that is not configured, or introspection reporting another issuer. */
  'oauth.issuer',
  /** A required scope is missing (RFC 6750 §3.1 `insufficient_scope`). */
  'oauth.scope',
  /** The agent claim is missing or maps to no agent. */
  'oauth.unmapped',
  /** The issuer's JWKS (or its metadata, to find the JWKS) could not be fetched or was not a JWKS. */
  'oauth.jwks_unavailable',
  /** The introspection endpoint failed: network, timeout, HTTP error, or a response that is not RFC 7662. */
  'oauth.introspection_failed',
] as const;

/** A reason {@link AccessTokenVerifier.verify} refuses a token for. */
export type OAuthResourceReason = (typeof OAUTH_RESOURCE_REASONS)[number];

/**
 * The HTTP status each reason is suggested to answer with: 401 with an `invalid_token` challenge
 * (RFC 6750 §3.1), 403 with `insufficient_scope`, 503 when the authorization server could not
 * be reached (the token may be fine: telling the client it is invalid would make it discard it).
 */
export const OAUTH_REASON_STATUS: Readonly<Record<OAuthResourceReason, 401 | 403 | 503>> = Object.freeze({
  'oauth.token_invalid': 401,
  'oauth.token_expired': 401,
  'oauth.audience': 401,
  'oauth.issuer': 401,
  'oauth.scope': 403,
  'oauth.unmapped': 401,
  'oauth.jwks_unavailable': 503,
  'oauth.introspection_failed': 503,
});

/** Longest access token accepted, in characters (a JWT with a few KiB of claims; larger is abuse). */
export const MAX_TOKEN_CHARS = 8192;
/** Allowed clock skew for `exp` and `nbf`, in seconds. */
export const CLOCK_TOLERANCE_S = 30;
/** Time allowed for fetching a JWKS or authorization server metadata, in milliseconds. */
export const JWKS_TIMEOUT_MS = 5000;
/** Time allowed for one introspection request, in milliseconds. */
export const INTROSPECTION_TIMEOUT_MS = 5000;
/** Shortest time between two JWKS refetches for an unknown `kid`, in milliseconds. */
export const JWKS_COOLDOWN_MS = 30_000;
/** Longest time a fetched JWKS is used before it is fetched again, in milliseconds. */
export const JWKS_MAX_AGE_MS = 600_000;

/** Signature algorithms accepted: asymmetric only (no `none`, no HMAC: the resource server holds no shared key). */
export const ACCESS_TOKEN_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

// RFC 6750 §2.1 b64token.
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
// RFC 6749 §3.3 scope-token.
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

// --- protected resource metadata (RFC 9728) -----------------------------------------------------

/** What the metadata document says. */
export interface ProtectedResourceConfig {
  /** This resource's identifier: the URL of the MCP endpoint, e.g. `https://bastion.example/mcp`. */
  readonly resource: string;
  /** Issuer identifiers of the authorization servers that issue tokens for it (RFC 8414 §2). */
  readonly authorizationServers: readonly string[];
  /** Scopes a client should request (RFC 9728 §2 `scopes_supported`). */
  readonly scopesSupported?: readonly string[];
  /** Human-readable name (RFC 9728 §2 `resource_name`). */
  readonly resourceName?: string;
  /** Documentation URL (RFC 9728 §2 `resource_documentation`). */
  readonly resourceDocumentation?: string;
}

/**
 * The RFC 9728 §2 protected resource metadata document: `resource`, `authorization_servers`,
 * `scopes_supported` (when given), `bearer_methods_supported: ["header"]` (RFC 6750 §2.1 only:
 * no query or body tokens), `resource_name` (when given), `resource_documentation` (when given).
 * @throws TypeError when `resource` is not an absolute http(s) URL without a fragment (RFC 8707 §2),
 *   or an authorization server is not a valid issuer identifier (https, or http on a loopback
 *   address; no query or fragment: RFC 8414 §2).
 */
export function protectedResourceMetadata(cfg: ProtectedResourceConfig): OAuthProtectedResourceMetadata {
  const resource = resourceIdentifier(cfg.resource, 'resource');
  if (cfg.authorizationServers.length === 0) throw new TypeError('authorizationServers must name at least one issuer');
  const servers = cfg.authorizationServers.map((s, i) => issuerIdentifier(s, `authorizationServers[${i}]`));
  const doc: OAuthProtectedResourceMetadata = { resource, authorization_servers: servers, bearer_methods_supported: ['header'] };
  if (cfg.scopesSupported !== undefined) doc.scopes_supported = cfg.scopesSupported.map((s, i) => scopeToken(s, `scopesSupported[${i}]`));
  if (cfg.resourceName !== undefined) doc.resource_name = cfg.resourceName;
  if (cfg.resourceDocumentation !== undefined) doc.resource_documentation = httpUrl(cfg.resourceDocumentation, 'resourceDocumentation').href;
  return doc;
}

/**
 * The URL the metadata document of `resource` is served at (RFC 9728 §3.1): the well-known
 * prefix `/.well-known/oauth-protected-resource` inserted before the resource's path, e.g.
 * `https://h.example/mcp` → `https://h.example/.well-known/oauth-protected-resource/mcp`.
 * Its `pathname` is the route to serve the document on.
 * @throws TypeError when `resource` is not an absolute http(s) URL without a fragment.
 */
export function protectedResourceMetadataUrl(resource: string): string {
  return getOAuthProtectedResourceMetadataUrl(new URL(resourceIdentifier(resource, 'resource')));
}

// --- challenges (RFC 6750 §3, RFC 9728 §5.1) ----------------------------------------------------

const DESCRIPTIONS: Readonly<Record<OAuthResourceReason, string>> = {
  'oauth.token_invalid': 'The access token is invalid',
  'oauth.token_expired': 'The access token expired',
  'oauth.audience': 'The access token was not issued for this resource',
  'oauth.issuer': 'The access token was not issued by an accepted authorization server',
  'oauth.scope': 'The access token lacks a required scope',
  'oauth.unmapped': 'The access token names no known agent',
  'oauth.jwks_unavailable': 'The access token could not be verified',
  'oauth.introspection_failed': 'The access token could not be verified',
};

/**
 * The `WWW-Authenticate` value for a request refused at the tool door.
 * - no `reason` (no credential presented): `Bearer resource_metadata="<url>"` (RFC 6750 §3.1: no
 *   error code when the request carried no authentication; RFC 9728 §5.1);
 * - `oauth.scope`: `error="insufficient_scope"` with `scope` = `scopes` (RFC 6750 §3.1);
 * - any other reason: `error="invalid_token"`, with `scope` when `scopes` is given.
 *
 * The description is a fixed text per reason: nothing of the token is ever echoed.
 * @throws TypeError when `resourceMetadataUrl` is not an absolute http(s) URL.
 */
export function challenge(o: { readonly resourceMetadataUrl: string; readonly reason?: OAuthResourceReason; readonly scopes?: readonly string[] }): string {
  const metadataUrl = httpUrl(o.resourceMetadataUrl, 'resourceMetadataUrl').href;
  const scopes = (o.scopes ?? []).map((s, i) => scopeToken(s, `scopes[${i}]`));
  if (o.reason === undefined) {
    // The WHATWG serializer percent-encodes `"` and turns `\` into `/`, so the URL is a valid quoted-string.
    return `Bearer resource_metadata="${metadataUrl}"`;
  }
  const code = o.reason === 'oauth.scope' ? OAuthErrorCode.InsufficientScope : OAuthErrorCode.InvalidToken;
  const res = bearerAuthChallengeResponse(new OAuthError(code, DESCRIPTIONS[o.reason]), { requiredScopes: scopes, resourceMetadataUrl: metadataUrl });
  const value = res.headers.get('www-authenticate');
  if (value === null) throw new Error('the MCP SDK produced no challenge');
  return value;
}

// --- the verifier -------------------------------------------------------------------------------

/** One authorization server whose tokens are accepted. */
export interface TrustedIssuerConfig {
  /** Issuer identifier, compared exactly with `iss` (RFC 8414 §2; RFC 9068 §4). */
  readonly issuer: string;
  /** JWKS URL. Default: `jwks_uri` from the issuer's metadata (RFC 8414 §3, then OpenID Discovery). */
  readonly jwksUri?: string;
  /** Expected `aud`. Default: the verifier's `resource`. */
  readonly audience?: string;
  /** Expected JWT `typ` header. Default `at+jwt` (RFC 9068 §4); `null` accepts any (issuers that still send `JWT`). */
  readonly jwtType?: string | null;
  /** Introspect this issuer's tokens (RFC 7662) instead of verifying them locally. Client authentication: client_secret_basic. */
  readonly introspection?: { readonly endpoint: string; readonly clientId: string; readonly clientSecret: string | Secret };
}

/** The verifier's configuration. Validated and compiled once by the constructor. */
export interface AccessTokenVerifierConfig {
  /** This resource's identifier (RFC 8707 §2), the default expected audience. */
  readonly resource: string;
  /** The accepted issuers; at least one. */
  readonly issuers: readonly TrustedIssuerConfig[];
  /** Scopes every token must carry (RFC 6749 §3.3 scope-tokens). */
  readonly requiredScopes?: readonly string[];
  /** The claim (or introspection member) naming the agent, e.g. `client_id` (RFC 9068 §2.2) or `azp`. */
  readonly agentClaim: string;
  /** Agent names by the agent claim's value. */
  readonly agents: Readonly<Record<string, string>>;
  /** The claim naming the end user. Default `sub`. */
  readonly userClaim?: string;
  /** Overrides of the limits (ms, characters, seconds); defaults are the exported constants. */
  readonly limits?: { readonly maxTokenChars?: number; readonly jwksTimeoutMs?: number; readonly introspectionTimeoutMs?: number; readonly clockToleranceS?: number };
}

/** The outcome of {@link AccessTokenVerifier.verify}. `expiresAt` is in seconds since the epoch. */
export type AccessTokenVerification =
  | { readonly ok: true; readonly agent: string; readonly user: string | null; readonly issuer: string; readonly scopes: readonly string[]; readonly expiresAt: number }
  | { readonly ok: false; readonly reason: OAuthResourceReason };

type KeyGetter = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

interface CompiledIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly jwtType: string | undefined;
  readonly insecure: boolean;
  readonly jwksUri: URL | undefined;
  readonly introspection: { readonly endpoint: URL; readonly clientId: string; readonly clientSecret: Secret } | undefined;
}

/** A key lookup failed because the JWKS (or the metadata naming it) could not be had, not because of the token. */
class JwksUnavailable extends Error {}

const refuse = (reason: OAuthResourceReason): AccessTokenVerification => ({ ok: false, reason });

/**
 * Verifies bearer access tokens presented at the tool door. Construct once per config; `verify`
 * is safe to call concurrently. JWKS are fetched lazily and cached per issuer (refetched after
 * {@link JWKS_MAX_AGE_MS}, or for an unknown `kid` at most every {@link JWKS_COOLDOWN_MS}).
 */
export class AccessTokenVerifier {
  readonly #resource: string;
  readonly #issuers = new Map<string, CompiledIssuer>();
  readonly #opaqueIssuer: CompiledIssuer | undefined;
  readonly #requiredScopes: readonly string[];
  readonly #agentClaim: string;
  readonly #agents: ReadonlyMap<string, string>;
  readonly #userClaim: string;
  readonly #maxTokenChars: number;
  readonly #jwksTimeoutMs: number;
  readonly #introspectionTimeoutMs: number;
  readonly #clockToleranceS: number;
  readonly #keys = new Map<string, Promise<KeyGetter>>();

  /**
   * Validates and compiles `cfg`.
   * @throws TypeError naming the offending field (e.g. `issuers[1].issuer`) for a URL that is not
   *   absolute http(s) (http only on a loopback address), a duplicate issuer, an empty agent map
   *   key or name, an invalid scope-token, or a limit that is not a positive integer.
   */
  constructor(cfg: AccessTokenVerifierConfig) {
    this.#resource = resourceIdentifier(cfg.resource, 'resource');
    if (cfg.issuers.length === 0) throw new TypeError('issuers must name at least one authorization server');
    cfg.issuers.forEach((c, i) => {
      const at = `issuers[${i}]`;
      const issuer = issuerIdentifier(c.issuer, `${at}.issuer`);
      if (this.#issuers.has(issuer)) throw new TypeError(`${at}.issuer repeats ${issuer}`);
      const jwksUri = c.jwksUri === undefined ? undefined : httpUrl(c.jwksUri, `${at}.jwksUri`);
      if (c.audience !== undefined && (typeof c.audience !== 'string' || c.audience === '')) throw new TypeError(`${at}.audience must be a non-empty string`);
      if (c.jwtType !== undefined && c.jwtType !== null && (typeof c.jwtType !== 'string' || c.jwtType === '')) throw new TypeError(`${at}.jwtType must be a non-empty string or null`);
      let introspection: CompiledIssuer['introspection'];
      if (c.introspection !== undefined) {
        const endpoint = httpUrl(c.introspection.endpoint, `${at}.introspection.endpoint`);
        if (typeof c.introspection.clientId !== 'string' || c.introspection.clientId === '') throw new TypeError(`${at}.introspection.clientId must be a non-empty string`);
        const secret = c.introspection.clientSecret instanceof Secret ? c.introspection.clientSecret : new Secret(c.introspection.clientSecret);
        if (secret.reveal() === '') throw new TypeError(`${at}.introspection.clientSecret must not be empty`);
        introspection = { endpoint, clientId: c.introspection.clientId, clientSecret: secret };
      }
      const insecure = [new URL(issuer), jwksUri, introspection?.endpoint].some((u) => u !== undefined && u.protocol === 'http:');
      this.#issuers.set(issuer, {
        issuer,
        audience: c.audience ?? this.#resource,
        jwtType: c.jwtType === null ? undefined : (c.jwtType ?? 'at+jwt'),
        insecure,
        jwksUri,
        introspection,
      });
    });
    const introspecting = [...this.#issuers.values()].filter((i) => i.introspection !== undefined);
    this.#opaqueIssuer = introspecting.length === 1 ? introspecting[0] : undefined;
    this.#requiredScopes = Object.freeze((cfg.requiredScopes ?? []).map((s, i) => scopeToken(s, `requiredScopes[${i}]`)));
    this.#agentClaim = claimName(cfg.agentClaim, 'agentClaim');
    this.#userClaim = claimName(cfg.userClaim ?? 'sub', 'userClaim');
    const agents = new Map<string, string>();
    for (const [value, agent] of Object.entries(cfg.agents)) {
      if (value === '' || typeof agent !== 'string' || agent === '') throw new TypeError(`agents maps ${JSON.stringify(value)} to no agent name`);
      agents.set(value, agent);
    }
    this.#agents = agents;
    const l = cfg.limits ?? {};
    this.#maxTokenChars = positiveInt(l.maxTokenChars ?? MAX_TOKEN_CHARS, 'limits.maxTokenChars');
    this.#jwksTimeoutMs = positiveInt(l.jwksTimeoutMs ?? JWKS_TIMEOUT_MS, 'limits.jwksTimeoutMs');
    this.#introspectionTimeoutMs = positiveInt(l.introspectionTimeoutMs ?? INTROSPECTION_TIMEOUT_MS, 'limits.introspectionTimeoutMs');
    this.#clockToleranceS = nonNegativeInt(l.clockToleranceS ?? CLOCK_TOLERANCE_S, 'limits.clockToleranceS');
  }

  /** The resource identifier tokens must be issued for (normalized). */
  get resource(): string {
    return this.#resource;
  }

  /**
   * Verifies `token` (the credential of an `Authorization: Bearer` header, RFC 6750 §2.1).
   * Never throws: an unexpected error refuses with `oauth.token_invalid` (fail closed).
   */
  async verify(token: string): Promise<AccessTokenVerification> {
    try {
      return await this.#verify(token);
    } catch {
      return refuse('oauth.token_invalid');
    }
  }

  async #verify(token: string): Promise<AccessTokenVerification> {
    if (typeof token !== 'string' || token.length === 0 || token.length > this.#maxTokenChars || !B64TOKEN.test(token)) return refuse('oauth.token_invalid');
    if (token.split('.').length !== 3) {
      // Not a JWS compact serialization: only introspection can say what it is.
      return this.#opaqueIssuer === undefined ? refuse('oauth.token_invalid') : this.#introspect(this.#opaqueIssuer, token);
    }
    let unverified: JWTPayload;
    try {
      unverified = decodeJwt(token);
    } catch {
      return refuse('oauth.token_invalid');
    }
    const issuer = typeof unverified.iss === 'string' ? this.#issuers.get(unverified.iss) : undefined;
    if (issuer === undefined) return refuse('oauth.issuer');
    return issuer.introspection !== undefined ? this.#introspect(issuer, token) : this.#verifyJwt(issuer, token);
  }

  async #verifyJwt(issuer: CompiledIssuer, token: string): Promise<AccessTokenVerification> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, (h, t) => this.#key(issuer, h, t), {
        issuer: issuer.issuer,
        audience: issuer.audience,
        algorithms: [...ACCESS_TOKEN_ALGORITHMS],
        clockTolerance: this.#clockToleranceS,
        requiredClaims: ['exp'],
        ...(issuer.jwtType === undefined ? {} : { typ: issuer.jwtType }),
      }));
    } catch (err) {
      return refuse(jwtFailure(err));
    }
    return this.#grant(issuer.issuer, payload, payload.exp as number);
  }

  async #key(issuer: CompiledIssuer, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    let getter = this.#keys.get(issuer.issuer);
    if (getter === undefined) {
      getter = this.#jwks(issuer);
      this.#keys.set(issuer.issuer, getter);
      // A failed discovery is retried by the next request, not cached.
      const pending = getter;
      void pending.catch(() => {
        if (this.#keys.get(issuer.issuer) === pending) this.#keys.delete(issuer.issuer);
      });
    }
    let keys: KeyGetter;
    try {
      keys = await getter;
    } catch {
      throw new JwksUnavailable();
    }
    try {
      return await keys(header, token);
    } catch (err) {
      // The token's fault: no key for its kid/alg, or an algorithm the key cannot do.
      if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys || err instanceof joseErrors.JOSENotSupported) throw err;
      throw new JwksUnavailable();
    }
  }

  async #jwks(issuer: CompiledIssuer): Promise<KeyGetter> {
    const uri = issuer.jwksUri ?? (await this.#discoverJwksUri(issuer));
    return createRemoteJWKSet(uri, { timeoutDuration: this.#jwksTimeoutMs, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_MAX_AGE_MS });
  }

  /** `jwks_uri` from RFC 8414 metadata, else from OpenID Connect Discovery 1.0 §4; the document's `issuer` must match (RFC 8414 §3.3). */
  async #discoverJwksUri(issuer: CompiledIssuer): Promise<URL> {
    const id = new URL(issuer.issuer);
    for (const algorithm of ['oauth2', 'oidc'] as const) {
      try {
        const res = await discoveryRequest(id, { algorithm, signal: AbortSignal.timeout(this.#jwksTimeoutMs), [allowInsecureRequests]: issuer.insecure });
        const as = await processDiscoveryResponse(id, res);
        if (typeof as.jwks_uri === 'string') return httpUrl(as.jwks_uri, 'jwks_uri');
      } catch {
        // Try the next well-known location.
      }
    }
    throw new JwksUnavailable();
  }

  async #introspect(issuer: CompiledIssuer, token: string): Promise<AccessTokenVerification> {
    const intro = issuer.introspection;
    if (intro === undefined) return refuse('oauth.token_invalid');
    const as = { issuer: issuer.issuer, introspection_endpoint: intro.endpoint.href };
    const client = { client_id: intro.clientId };
    let body: IntrospectionResponse;
    try {
      const res = await introspectionRequest(as, client, ClientSecretBasic(intro.clientSecret.reveal()), token, {
        signal: AbortSignal.timeout(this.#introspectionTimeoutMs),
        [allowInsecureRequests]: issuer.insecure,
      });
      body = await processIntrospectionResponse(as, client, res);
    } catch {
      return refuse('oauth.introspection_failed');
    }
    if (body.active !== true) return refuse('oauth.token_invalid');
    if (body.iss !== undefined && body.iss !== issuer.issuer) return refuse('oauth.issuer');
    const aud = typeof body.aud === 'string' ? [body.aud] : Array.isArray(body.aud) ? body.aud : [];
    // RFC 7662 makes `aud` optional; without it the token could be for any resource, so it is refused.
    if (!aud.includes(issuer.audience)) return refuse('oauth.audience');
    const now = Math.floor(Date.now() / 1000);
    if (typeof body.exp !== 'number' || !Number.isFinite(body.exp)) return refuse('oauth.token_invalid');
    if (body.exp <= now - this.#clockToleranceS) return refuse('oauth.token_expired');
    if (body.nbf !== undefined && (typeof body.nbf !== 'number' || body.nbf > now + this.#clockToleranceS)) return refuse('oauth.token_invalid');
    return this.#grant(issuer.issuer, body, body.exp);
  }

  /** The agent, user and scopes of verified claims (a JWT payload or an active introspection response). */
  #grant(issuer: string, claims: Readonly<Record<string, unknown>>, expiresAt: number): AccessTokenVerification {
    const agentValue = claims[this.#agentClaim];
    const agent = typeof agentValue === 'string' ? this.#agents.get(agentValue) : undefined;
    if (agent === undefined) return refuse('oauth.unmapped');
    const scopes = scopesOf(claims);
    if (!this.#requiredScopes.every((s) => scopes.includes(s))) return refuse('oauth.scope');
    const userValue = claims[this.#userClaim];
    // RFC 9068 §2.2: with no resource owner (client_credentials) `sub` names the client, not a user.
    const user = typeof userValue === 'string' && userValue !== '' && userValue !== agentValue && userValue !== claims.client_id ? userValue : null;
    return { ok: true, agent, user, issuer, scopes, expiresAt };
  }
}

/** Scopes of verified claims: `scope` (RFC 9068 §2.2.3, RFC 7662 §2.2, space-separated), else `scp` as an array of strings. */
function scopesOf(claims: Readonly<Record<string, unknown>>): readonly string[] {
  if (typeof claims.scope === 'string') return Object.freeze(claims.scope.split(' ').filter((s) => s !== ''));
  if (Array.isArray(claims.scp) && claims.scp.every((s) => typeof s === 'string')) return Object.freeze([...(claims.scp as string[])]);
  return Object.freeze([]);
}

/** The reason for a `jwtVerify` failure. Unknown errors are the token's fault (fail closed). */
function jwtFailure(err: unknown): OAuthResourceReason {
  if (err instanceof JwksUnavailable) return 'oauth.jwks_unavailable';
  if (err instanceof joseErrors.JWTExpired) return 'oauth.token_expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'aud') return 'oauth.audience';
    if (err.claim === 'iss') return 'oauth.issuer';
  }
  return 'oauth.token_invalid';
}

// --- config checks ------------------------------------------------------------------------------

function httpUrl(value: string, at: string): URL {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new TypeError(`${at} must be an absolute URL`);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && isLoopbackHost(u.hostname))) throw new TypeError(`${at} must be an https URL (http only on a loopback address)`);
  if (u.username !== '' || u.password !== '') throw new TypeError(`${at} must not carry credentials`);
  return u;
}

/** Whether a WHATWG-normalized hostname is `localhost` or a loopback IP literal (RFC 6890: 127.0.0.0/8, ::1). */
function isLoopbackHost(hostname: string): boolean {
  if (hostname === 'localhost') return true;
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  return ipaddr.isValid(host) && ipaddr.parse(host).range() === 'loopback';
}

/** A resource indicator (RFC 8707 §2): absolute, no fragment; returned as the MCP SDK normalizes it. */
function resourceIdentifier(value: string, at: string): string {
  const u = httpUrl(value, at);
  if (u.hash !== '' || value.includes('#')) throw new TypeError(`${at} must not have a fragment (RFC 8707 §2)`);
  return resourceUrlFromServerUrl(u).href;
}

/** An issuer identifier (RFC 8414 §2): https (or loopback http), no query, no fragment. Kept as written: `iss` is compared exactly. */
function issuerIdentifier(value: string, at: string): string {
  const u = httpUrl(value, at);
  if (u.search !== '' || u.hash !== '' || value.includes('?') || value.includes('#')) throw new TypeError(`${at} must not have a query or fragment (RFC 8414 §2)`);
  return value;
}

function scopeToken(value: string, at: string): string {
  if (typeof value !== 'string' || !SCOPE_TOKEN.test(value)) throw new TypeError(`${at} must be a scope-token (RFC 6749 §3.3)`);
  return value;
}

function claimName(value: string, at: string): string {
  if (typeof value !== 'string' || value === '') throw new TypeError(`${at} must be a non-empty claim name`);
  return value;
}

function positiveInt(value: number, at: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new TypeError(`${at} must be a positive integer`);
  return value;
}

function nonNegativeInt(value: number, at: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${at} must be a non-negative integer`);
  return value;
}
