/**
 * Bastion as the OAuth client of each end user (RFC 6749 §4.1 authorization
 * code grant with PKCE, RFC 7636 S256; the OAuth 2.1 and MCP authorization
 * profile). Every protocol step goes through `oauth4webapi`: metadata
 * discovery (RFC 8414 / OIDC Discovery), PKCE and state generation,
 * authorization response validation with the RFC 9207 `iss` check, the code
 * exchange, refresh (RFC 6749 §6) and revocation (RFC 7009).
 *
 * A user's token is stored sealed under an AAD naming that user and provider,
 * and {@link UserOAuth.accessToken} answers only for the (user, provider) asked.
 */
import * as oauth from 'oauth4webapi';
import { boundedFetch } from './http.ts';
import { compileProviders, isClientIdMetadataUrl } from './provider-config.ts';
import { decodeTokenSet, encodeTokenSet, tokenSetAad, TOKEN_SET_VERSION, type TokenSet } from './token-set.ts';
import type {
  AccessTokenResult,
  AuthorizationCompletion,
  AuthorizationStart,
  FetchLike,
  OAuthProviderConfig,
  OAuthReason,
  OAuthRefusal,
  PendingAuthorizationStore,
  RevocationResult,
  TokenSealer,
  UserTokenStore,
} from './types.ts';

/** One audit-ready event. Holds names and codes only: never a token, code, verifier or secret. */
export interface OAuthEvent {
  readonly op: 'start' | 'complete' | 'access_token' | 'refresh' | 'revoke' | 'discovery';
  readonly provider: string;
  readonly user?: string;
  readonly outcome: 'ok' | OAuthReason;
  /** Why, when known: an RFC 6749 §5.2 error code from the server (`invalid_grant`) or an `oauth4webapi` error code. */
  readonly cause?: string;
}

/** Options of {@link UserOAuth}. Durations in ms. */
export interface UserOAuthOptions {
  readonly providers: readonly OAuthProviderConfig[];
  readonly pending: PendingAuthorizationStore;
  readonly tokens: UserTokenStore;
  readonly sealer: TokenSealer;
  /** Transport for every request; default `globalThis.fetch`. Inject Bastion's egress-guarded fetch in production. */
  readonly fetch?: FetchLike;
  /** Deadline of each HTTP exchange, headers and body. Default 10_000. */
  readonly timeoutMs?: number;
  /** Cap on each response body. Default 262_144. */
  readonly maxResponseBytes?: number;
  /** How long a started authorization may wait for its callback. Default 600_000 (10 min). */
  readonly stateTtlMs?: number;
  /** Refresh this long before `expires_at`. Default 60_000. */
  readonly refreshSkewMs?: number;
  /** How long discovered server metadata is reused. Default 3_600_000. */
  readonly metadataTtlMs?: number;
  /** Clock, Unix epoch ms. */
  readonly now?: () => number;
  /** Audit hook; must not throw. */
  readonly onEvent?: (event: OAuthEvent) => void;
  /** Admit http issuers and endpoints: loopback tests only, never in production. */
  readonly unsafeAllowHttp?: boolean;
}

interface Bound {
  readonly config: OAuthProviderConfig;
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
}

function intIn(name: string, value: number | undefined, dflt: number, min: number, max: number): number {
  const v = value ?? dflt;
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`UserOAuth: ${name} must be an integer ${min}-${max}`);
  return v;
}

/** URL equality after WHATWG parsing (`https://a` and `https://a/` are one issuer). */
const sameUrl = (a: string, b: string): boolean => URL.canParse(a) && URL.canParse(b) && new URL(a).href === new URL(b).href;

const refuse = (reason: OAuthReason): OAuthRefusal => ({ ok: false, reason });

/** The library's error code, or the server's RFC 6749 §5.2 `error`: both are fixed vocabularies, never secret. */
function causeOf(err: unknown): string {
  if (err instanceof oauth.ResponseBodyError || err instanceof oauth.AuthorizationResponseError) return err.error.slice(0, 64);
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code.slice(0, 64);
  if (err instanceof Error) return err.name.slice(0, 64);
  return 'unknown';
}

/** The per-user OAuth client. Construct once; safe to share across requests. */
export class UserOAuth {
  readonly #providers: ReadonlyMap<string, Bound>;
  readonly #pending: PendingAuthorizationStore;
  readonly #tokens: UserTokenStore;
  readonly #sealer: TokenSealer;
  readonly #fetch: FetchLike;
  readonly #stateTtlMs: number;
  readonly #skewMs: number;
  readonly #metadataTtlMs: number;
  readonly #now: () => number;
  readonly #onEvent: (event: OAuthEvent) => void;
  readonly #insecure: boolean;
  readonly #metadata = new Map<string, { readonly as: oauth.AuthorizationServer; readonly until: number }>();
  // Per (user, provider) chain: refresh, revoke and reads run one at a time, so a
  // rotated refresh token is never raced (RFC 9700 §4.14.2) and revoke cannot be undone by a refresh.
  readonly #chains = new Map<string, Promise<unknown>>();

  /**
   * @throws BastionError `ERR_CONFIG_INVALID` for a bad provider; `RangeError` for an out-of-range option.
   */
  constructor(opts: UserOAuthOptions) {
    this.#insecure = opts.unsafeAllowHttp === true;
    const compiled = compileProviders(opts.providers, this.#insecure);
    const bound = new Map<string, Bound>();
    for (const [name, config] of compiled) {
      const client: oauth.Client = { client_id: config.clientId, token_endpoint_auth_method: config.clientAuth };
      const secret = config.clientSecret;
      const auth =
        config.clientAuth === 'client_secret_basic' && secret
          ? oauth.ClientSecretBasic(secret.reveal())
          : config.clientAuth === 'client_secret_post' && secret
            ? oauth.ClientSecretPost(secret.reveal())
            : oauth.None();
      bound.set(name, { config, client, auth });
    }
    this.#providers = bound;
    this.#pending = opts.pending;
    this.#tokens = opts.tokens;
    this.#sealer = opts.sealer;
    this.#fetch = boundedFetch(
      opts.fetch ?? ((url, init) => fetch(url, init)),
      intIn('timeoutMs', opts.timeoutMs, 10_000, 1, 120_000),
      intIn('maxResponseBytes', opts.maxResponseBytes, 262_144, 1024, 16 * 1024 * 1024),
    );
    this.#stateTtlMs = intIn('stateTtlMs', opts.stateTtlMs, 600_000, 1_000, 3_600_000);
    this.#skewMs = intIn('refreshSkewMs', opts.refreshSkewMs, 60_000, 0, 3_600_000);
    this.#metadataTtlMs = intIn('metadataTtlMs', opts.metadataTtlMs, 3_600_000, 0, 86_400_000);
    this.#now = opts.now ?? Date.now;
    const hook = opts.onEvent;
    this.#onEvent = (e) => {
      try {
        hook?.(e);
      } catch {
        // An audit hook that throws must not change an OAuth outcome; the hook owns its failures.
      }
    };
  }

  /** Names of the configured providers. */
  get providerNames(): readonly string[] {
    return [...this.#providers.keys()];
  }

  /**
   * Starts an authorization for `user` (acting through `agent`) at `provider`:
   * a PKCE S256 verifier and a random state are generated, stored as pending
   * with the state TTL, and the authorization URL (RFC 6749 §4.1.1, RFC 7636
   * §4.3, RFC 8707 `resource`) is returned for the agent to show the user.
   *
   * Refuses with `oauth.provider_unknown`, `oauth.discovery_failed`,
   * `oauth.pkce_unsupported`, `oauth.client_id_metadata_unsupported`,
   * `oauth.pending_limit`, `oauth.store_error`.
   *
   * @throws TypeError when `user` is empty or `user`/`agent` are not strings (a caller bug, not a refusal).
   */
  async startAuthorization(req: { readonly provider: string; readonly user: string; readonly agent: string }): Promise<AuthorizationStart | OAuthRefusal> {
    const done = (outcome: 'ok' | OAuthReason, cause?: string): void => this.#onEvent({ op: 'start', provider: req.provider, user: req.user, outcome, ...(cause ? { cause } : {}) });
    const p = this.#providers.get(req.provider);
    if (!p) return done('oauth.provider_unknown'), refuse('oauth.provider_unknown');
    if (typeof req.user !== 'string' || req.user.length === 0 || typeof req.agent !== 'string') throw new TypeError('startAuthorization: user and agent must be strings, user non-empty');
    const as = await this.#discover(p);
    if (!as.ok) return done(as.reason), refuse(as.reason);
    const meta = as.as;
    if (!meta.code_challenge_methods_supported?.includes('S256')) return done('oauth.pkce_unsupported'), refuse('oauth.pkce_unsupported');
    if (isClientIdMetadataUrl(p.config.clientId) && meta['client_id_metadata_document_supported'] !== true) {
      return done('oauth.client_id_metadata_unsupported'), refuse('oauth.client_id_metadata_unsupported');
    }
    if (typeof meta.authorization_endpoint !== 'string' || !this.#urlAllowed(meta.authorization_endpoint)) return done('oauth.discovery_failed', 'authorization_endpoint'), refuse('oauth.discovery_failed');

    const codeVerifier = oauth.generateRandomCodeVerifier();
    const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier);
    const state = oauth.generateRandomState();
    const createdAt = this.#now();
    const expiresAt = createdAt + this.#stateTtlMs;

    const url = new URL(meta.authorization_endpoint);
    const q = url.searchParams;
    // set(), not append(): a parameter preset in the endpoint URL is replaced, never doubled (RFC 6749 §3.1).
    q.set('response_type', 'code');
    q.set('client_id', p.config.clientId);
    q.set('redirect_uri', p.config.redirectUri);
    if (p.config.scopes.length > 0) q.set('scope', p.config.scopes.join(' '));
    else q.delete('scope');
    q.set('state', state);
    q.set('code_challenge', codeChallenge);
    q.set('code_challenge_method', 'S256');
    if (p.config.resource !== undefined) q.set('resource', p.config.resource);

    let stored: boolean;
    try {
      stored = await this.#pending.put({ state, provider: req.provider, user: req.user, agent: req.agent, codeVerifier, createdAt, expiresAt });
    } catch (err) {
      return done('oauth.store_error', causeOf(err)), refuse('oauth.store_error');
    }
    if (!stored) return done('oauth.pending_limit'), refuse('oauth.pending_limit');
    done('ok');
    return { ok: true, url, state, expiresAt };
  }

  /**
   * Completes an authorization from the callback URL Bastion received
   * (RFC 6749 §4.1.2): takes the pending state (once), checks its TTL and, when
   * `expect.user` is given, that the state was issued to that user; validates
   * the response with the RFC 9207 `iss` check; exchanges the code with the
   * stored PKCE verifier; seals and stores the token set for that user.
   *
   * A state is consumed by any attempt that names it, failed ones included.
   * Refuses with `oauth.state_unknown`, `oauth.state_expired`,
   * `oauth.state_user_mismatch`, `oauth.provider_unknown`,
   * `oauth.discovery_failed`, `oauth.issuer_mismatch`,
   * `oauth.authorization_denied`, `oauth.callback_invalid`,
   * `oauth.code_exchange_failed`, `oauth.store_error`. Never throws.
   */
  async completeAuthorization(callbackUrl: URL, expect: { readonly user?: string } = {}): Promise<AuthorizationCompletion> {
    const state = callbackUrl.searchParams.getAll('state');
    const event = (provider: string, outcome: 'ok' | OAuthReason, user?: string, cause?: string): void =>
      this.#onEvent({ op: 'complete', provider, outcome, ...(user !== undefined ? { user } : {}), ...(cause ? { cause } : {}) });
    const only = state.length === 1 ? state[0] : undefined;
    if (only === undefined || only.length === 0 || only.length > 512) return event('', 'oauth.state_unknown'), refuse('oauth.state_unknown');
    let pending;
    try {
      pending = await this.#pending.take(only);
    } catch (err) {
      return event('', 'oauth.store_error', undefined, causeOf(err)), refuse('oauth.store_error');
    }
    if (!pending || pending.state !== only) return event('', 'oauth.state_unknown'), refuse('oauth.state_unknown');
    const fail = (reason: OAuthReason, cause?: string): OAuthRefusal => (event(pending.provider, reason, pending.user, cause), refuse(reason));
    if (pending.expiresAt <= this.#now()) return fail('oauth.state_expired');
    if (expect.user !== undefined && expect.user !== pending.user) return fail('oauth.state_user_mismatch');
    const p = this.#providers.get(pending.provider);
    if (!p) return fail('oauth.provider_unknown');
    const as = await this.#discover(p);
    if (!as.ok) return fail(as.reason);

    let params: URLSearchParams;
    try {
      params = oauth.validateAuthResponse(as.as, p.client, callbackUrl, pending.state);
    } catch (err) {
      if (err instanceof oauth.AuthorizationResponseError) return fail('oauth.authorization_denied', causeOf(err));
      // The library refused; name the refusal: an `iss` that is absent where the
      // server promises it, or that names another server, is a mix-up (RFC 9207 §2.4).
      const iss = callbackUrl.searchParams.get('iss');
      const issWrong = iss === null ? as.as.authorization_response_iss_parameter_supported === true : iss !== as.as.issuer;
      return fail(issWrong ? 'oauth.issuer_mismatch' : 'oauth.callback_invalid', causeOf(err));
    }

    let set: TokenSet;
    try {
      const res = await oauth.authorizationCodeGrantRequest(as.as, p.client, p.auth, params, p.config.redirectUri, pending.codeVerifier, this.#tokenOptions(p));
      const body = await oauth.processAuthorizationCodeResponse(as.as, p.client, res);
      const claims = oauth.getValidatedIdTokenClaims(body);
      set = this.#toSet(as.as.issuer, body, undefined, claims?.sub);
    } catch (err) {
      return fail('oauth.code_exchange_failed', causeOf(err));
    }
    const put = await this.#putSet(pending.user, pending.provider, set);
    if (!put) return fail('oauth.store_error');
    event(pending.provider, 'ok', pending.user);
    return { ok: true, user: pending.user, provider: pending.provider, agent: pending.agent };
  }

  /**
   * The access token of `user` at `provider`, for that user's call only.
   * Refreshes (RFC 6749 §6) when within the skew of expiry. When the server
   * refuses the refresh (an RFC 6749 §5.2 error such as `invalid_grant`: revoked,
   * expired, rotated), the stored set is deleted and the answer is
   * `oauth.consent_required`. When the server cannot be reached, the current
   * token is returned while it is still valid, else `oauth.refresh_failed`
   * (the set is kept for a retry).
   *
   * Refuses with `oauth.provider_unknown`, `oauth.consent_required`,
   * `oauth.refresh_failed`, `oauth.token_unreadable`, `oauth.store_error`. Never throws.
   */
  accessToken(req: { readonly user: string; readonly provider: string }, opts: { readonly forceRefresh?: boolean } = {}): Promise<AccessTokenResult> {
    const p = this.#providers.get(req.provider);
    if (!p) {
      this.#onEvent({ op: 'access_token', provider: req.provider, user: req.user, outcome: 'oauth.provider_unknown' });
      return Promise.resolve(refuse('oauth.provider_unknown'));
    }
    return this.#serial(req.user, req.provider, () => this.#accessToken(p, req.user, opts.forceRefresh === true));
  }

  /**
   * Revokes `user`'s tokens at `provider`: the refresh token and the access token
   * are sent to the revocation endpoint (RFC 7009 §2.1, best effort), then the
   * stored set is deleted whatever the server said. `provider` in the answer
   * reports the server's side: `revoked`, `not_attempted` (nothing stored),
   * or a reason (`oauth.revocation_failed`, `oauth.revocation_unsupported`,
   * `oauth.discovery_failed`, `oauth.token_unreadable`).
   *
   * Refuses with `oauth.provider_unknown`, or `oauth.store_error` when the local
   * delete failed (the tokens may still be stored). Never throws.
   */
  revoke(req: { readonly user: string; readonly provider: string }): Promise<RevocationResult> {
    const p = this.#providers.get(req.provider);
    if (!p) {
      this.#onEvent({ op: 'revoke', provider: req.provider, user: req.user, outcome: 'oauth.provider_unknown' });
      return Promise.resolve(refuse('oauth.provider_unknown'));
    }
    return this.#serial(req.user, req.provider, () => this.#revoke(p, req.user));
  }

  async #accessToken(p: Bound, user: string, force: boolean): Promise<AccessTokenResult> {
    const provider = p.config.name;
    const event = (op: 'access_token' | 'refresh', outcome: 'ok' | OAuthReason, cause?: string): void => this.#onEvent({ op, provider, user, outcome, ...(cause ? { cause } : {}) });
    const read = await this.#readSet(user, provider);
    if (!read.ok) return event('access_token', read.reason), refuse(read.reason);
    const set = read.set;
    if (set === undefined) return event('access_token', 'oauth.consent_required'), refuse('oauth.consent_required');
    if (!sameUrl(set.issuer, p.config.issuer)) return this.#dropForConsent(user, provider, 'access_token', 'issuer_changed');

    const now = this.#now();
    const fresh = set.expiresAt === null || set.expiresAt - this.#skewMs > now;
    if (fresh && !force) return event('access_token', 'ok'), { ok: true, token: set.accessToken, expiresAt: set.expiresAt };
    const stillValid = set.expiresAt === null || set.expiresAt > now;
    if (set.refreshToken === undefined) {
      if (stillValid && !force) return event('access_token', 'ok'), { ok: true, token: set.accessToken, expiresAt: set.expiresAt };
      return this.#dropForConsent(user, provider, 'refresh', 'no_refresh_token');
    }

    const as = await this.#discover(p);
    if (!as.ok) return this.#unreachable(set, stillValid && !force, event, as.reason);
    let next: TokenSet;
    try {
      const res = await oauth.refreshTokenGrantRequest(as.as, p.client, p.auth, set.refreshToken, this.#tokenOptions(p));
      const body = await oauth.processRefreshTokenResponse(as.as, p.client, res);
      next = this.#toSet(as.as.issuer, body, set);
    } catch (err) {
      // The server answered with an OAuth error (invalid_grant: revoked, expired or
      // rotated refresh token): the grant is gone, ask the user again.
      if (err instanceof oauth.ResponseBodyError) return this.#dropForConsent(user, provider, 'refresh', causeOf(err));
      return this.#unreachable(set, stillValid && !force, event, causeOf(err));
    }
    if (!(await this.#putSet(user, provider, next))) return event('refresh', 'oauth.store_error'), refuse('oauth.store_error');
    event('refresh', 'ok');
    return { ok: true, token: next.accessToken, expiresAt: next.expiresAt };
  }

  #unreachable(set: TokenSet, useCurrent: boolean, event: (op: 'access_token' | 'refresh', outcome: 'ok' | OAuthReason, cause?: string) => void, cause: string): AccessTokenResult {
    event('refresh', 'oauth.refresh_failed', cause);
    if (useCurrent) return { ok: true, token: set.accessToken, expiresAt: set.expiresAt };
    return refuse('oauth.refresh_failed');
  }

  async #dropForConsent(user: string, provider: string, op: 'access_token' | 'refresh', cause: string): Promise<AccessTokenResult> {
    try {
      await this.#tokens.delete(user, provider);
    } catch (err) {
      this.#onEvent({ op, provider, user, outcome: 'oauth.store_error', cause: causeOf(err) });
      return refuse('oauth.store_error');
    }
    this.#onEvent({ op, provider, user, outcome: 'oauth.consent_required', cause });
    return refuse('oauth.consent_required');
  }

  async #revoke(p: Bound, user: string): Promise<RevocationResult> {
    const provider = p.config.name;
    let remote: 'revoked' | 'not_attempted' | OAuthReason = 'not_attempted';
    let cause: string | undefined;
    const read = await this.#readSet(user, provider);
    const hadTokens = read.ok ? read.set !== undefined : read.reason === 'oauth.token_unreadable';
    if (!read.ok) remote = read.reason === 'oauth.token_unreadable' ? 'oauth.token_unreadable' : 'not_attempted';
    else if (read.set !== undefined) {
      const set = read.set;
      const as = await this.#discover(p);
      if (!as.ok) remote = as.reason;
      else if (typeof as.as.revocation_endpoint !== 'string') remote = 'oauth.revocation_unsupported';
      else {
        remote = 'revoked';
        // Refresh token first: at most servers revoking it ends the whole grant (RFC 7009 §2.1).
        const targets: [string, string][] = [];
        if (set.refreshToken !== undefined) targets.push([set.refreshToken, 'refresh_token']);
        targets.push([set.accessToken, 'access_token']);
        for (const [token, hint] of targets) {
          try {
            const res = await oauth.revocationRequest(as.as, p.client, p.auth, token, { ...this.#httpOptions(), additionalParameters: { token_type_hint: hint } });
            await oauth.processRevocationResponse(res);
          } catch (err) {
            // A self-contained (JWT) access token may be unrevocable (RFC 7009 §2.2.1
            // `unsupported_token_type`); it lapses at expiry, and the grant ended with the refresh token.
            const lapses = hint === 'access_token' && set.refreshToken !== undefined && err instanceof oauth.ResponseBodyError && err.error === 'unsupported_token_type';
            if (!lapses) {
              remote = 'oauth.revocation_failed';
              cause = causeOf(err);
            }
          }
        }
      }
    }
    try {
      await this.#tokens.delete(user, provider);
    } catch (err) {
      this.#onEvent({ op: 'revoke', provider, user, outcome: 'oauth.store_error', cause: causeOf(err) });
      return refuse('oauth.store_error');
    }
    this.#onEvent({ op: 'revoke', provider, user, outcome: remote === 'revoked' || remote === 'not_attempted' ? 'ok' : remote, ...(cause ? { cause } : {}) });
    return { ok: true, hadTokens, provider: remote };
  }

  async #readSet(user: string, provider: string): Promise<{ ok: true; set: TokenSet | undefined } | OAuthRefusal> {
    let sealed: string | undefined;
    try {
      sealed = await this.#tokens.get(user, provider);
    } catch {
      return refuse('oauth.store_error');
    }
    if (sealed === undefined) return { ok: true, set: undefined };
    let clear: string;
    try {
      clear = await this.#sealer.open(sealed, tokenSetAad(user, provider));
    } catch {
      return refuse('oauth.token_unreadable');
    }
    const set = decodeTokenSet(clear);
    return set === undefined ? refuse('oauth.token_unreadable') : { ok: true, set };
  }

  async #putSet(user: string, provider: string, set: TokenSet): Promise<boolean> {
    try {
      const sealed = await this.#sealer.seal(encodeTokenSet(set), tokenSetAad(user, provider));
      await this.#tokens.put(user, provider, sealed);
      return true;
    } catch {
      return false;
    }
  }

  /** A token endpoint response as a set; `previous` supplies what a refresh response may omit (RFC 6749 §6). Throws on a non-bearer token type. */
  #toSet(issuer: string, body: oauth.TokenEndpointResponse, previous?: TokenSet, sub?: string): TokenSet {
    // Bearer only: a DPoP-bound token (RFC 9449) would need proofs Bastion does not make.
    if (body.token_type.toLowerCase() !== 'bearer') throw new TypeError('unsupported token_type');
    const expiresIn = body.expires_in;
    const expiresAt = typeof expiresIn === 'number' && expiresIn > 0 ? this.#now() + Math.floor(expiresIn * 1000) : null;
    const refreshToken = body.refresh_token ?? previous?.refreshToken;
    const scope = body.scope ?? previous?.scope;
    const subject = sub ?? previous?.sub;
    return {
      v: TOKEN_SET_VERSION,
      issuer,
      accessToken: body.access_token,
      expiresAt,
      ...(refreshToken !== undefined ? { refreshToken } : {}),
      ...(scope !== undefined ? { scope } : {}),
      ...(subject !== undefined ? { sub: subject } : {}),
    };
  }

  #httpOptions(): { [oauth.customFetch]: FetchLike; [oauth.allowInsecureRequests]?: boolean } {
    return { [oauth.customFetch]: this.#fetch, ...(this.#insecure ? { [oauth.allowInsecureRequests]: true } : {}) };
  }

  #tokenOptions(p: Bound): oauth.TokenEndpointRequestOptions {
    return { ...this.#httpOptions(), ...(p.config.resource !== undefined ? { additionalParameters: { resource: p.config.resource } } : {}) };
  }

  #urlAllowed(text: string): boolean {
    if (!URL.canParse(text)) return false;
    const u = new URL(text);
    return u.protocol === 'https:' || (this.#insecure && u.protocol === 'http:');
  }

  /**
   * Server metadata for `p`: RFC 8414 `/.well-known/oauth-authorization-server`
   * first, then OpenID Connect Discovery, each checked by the library to name
   * exactly the configured issuer (RFC 8414 §3.3). Cached for the metadata TTL.
   */
  async #discover(p: Bound): Promise<{ ok: true; as: oauth.AuthorizationServer } | OAuthRefusal> {
    const name = p.config.name;
    const cached = this.#metadata.get(name);
    if (cached && cached.until > this.#now()) return { ok: true, as: cached.as };
    const issuer = new URL(p.config.issuer);
    let cause = 'unknown';
    for (const algorithm of ['oauth2', 'oidc'] as const) {
      try {
        const res = await oauth.discoveryRequest(issuer, { ...this.#httpOptions(), algorithm });
        const as = await oauth.processDiscoveryResponse(issuer, res);
        this.#metadata.set(name, { as, until: this.#now() + this.#metadataTtlMs });
        return { ok: true, as };
      } catch (err) {
        cause = causeOf(err);
      }
    }
    this.#onEvent({ op: 'discovery', provider: name, outcome: 'oauth.discovery_failed', cause });
    return refuse('oauth.discovery_failed');
  }

  /** Runs `fn` after every earlier call for the same (user, provider) settled. */
  #serial<T>(user: string, provider: string, fn: () => Promise<T>): Promise<T> {
    const key = JSON.stringify([user, provider]);
    const prev = this.#chains.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#chains.set(key, tail);
    void tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key);
    });
    return run;
  }
}
