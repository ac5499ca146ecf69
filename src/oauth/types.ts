/**
 * Types and ports of Bastion's per-user OAuth client (issue 12, "personal
 * secrets"): Bastion obtains, keeps and refreshes an access token for each end
 * user at each configured provider, and uses a user's token only for that
 * user's calls.
 *
 * Outcomes are values: every operation answers `{ ok: true, ... }` or
 * `{ ok: false, reason }` with a reason from the closed union
 * {@link OAuthReason}. No token, code, code verifier or client secret is ever
 * placed in a reason or in an error message.
 */

/**
 * The closed set of refusal reasons. Stable strings: callers and tests branch on them.
 *
 * - `oauth.provider_unknown`: no provider of that name is configured.
 * - `oauth.discovery_failed`: the authorization server metadata (RFC 8414 / OIDC Discovery) could not be fetched or is invalid.
 * - `oauth.client_id_metadata_unsupported`: the client ID is a metadata document URL but the server does not advertise `client_id_metadata_document_supported`.
 * - `oauth.pkce_unsupported`: the server's metadata does not list `S256` in `code_challenge_methods_supported` (RFC 8414 §2; OAuth 2.1 and MCP require PKCE).
 * - `oauth.pending_limit`: too many authorizations are pending; try later.
 * - `oauth.state_unknown`: the callback's `state` is missing, unknown, or was already used (take-once).
 * - `oauth.state_expired`: the pending authorization outlived its TTL.
 * - `oauth.state_user_mismatch`: the state was issued to another user than the one completing it.
 * - `oauth.issuer_mismatch`: the callback's `iss` is absent where required or names another server (RFC 9207 mix-up defence).
 * - `oauth.authorization_denied`: the authorization server answered with an error (RFC 6749 §4.1.2.1), e.g. `access_denied`.
 * - `oauth.callback_invalid`: the callback is malformed otherwise (no `code`, implicit-flow parameters, JARM).
 * - `oauth.code_exchange_failed`: the token endpoint refused the code (wrong PKCE verifier, code used twice, code of another client) or was unreachable.
 * - `oauth.consent_required`: no usable token is stored for this user and provider; start an authorization.
 * - `oauth.refresh_failed`: the token is about to expire and the server could not be reached to refresh it; the stored set is kept, retry later.
 * - `oauth.token_unreadable`: the stored token set does not open for this user and provider (moved, tampered, or sealed under another key).
 * - `oauth.store_error`: a store or the sealer failed.
 * - `oauth.revocation_failed`: the revocation endpoint refused or could not be reached (RFC 7009); local tokens are deleted anyway.
 * - `oauth.revocation_unsupported`: the server advertises no revocation endpoint; local tokens are deleted anyway.
 * - `oauth.challenge_invalid`: a `WWW-Authenticate` header has no Bearer challenge with a usable `resource_metadata` URL (RFC 9728 §5.1).
 * - `oauth.resource_metadata_failed`: the protected resource metadata could not be fetched or is not valid JSON metadata (RFC 9728 §3.2).
 * - `oauth.resource_mismatch`: the metadata's `resource` is not the URL that was requested (RFC 9728 §3.3, §7.3).
 * - `oauth.authorization_server_missing`: the metadata names no usable authorization server (RFC 9728 §2 `authorization_servers`).
 */
export type OAuthReason =
  | 'oauth.provider_unknown'
  | 'oauth.discovery_failed'
  | 'oauth.client_id_metadata_unsupported'
  | 'oauth.pkce_unsupported'
  | 'oauth.pending_limit'
  | 'oauth.state_unknown'
  | 'oauth.state_expired'
  | 'oauth.state_user_mismatch'
  | 'oauth.issuer_mismatch'
  | 'oauth.authorization_denied'
  | 'oauth.callback_invalid'
  | 'oauth.code_exchange_failed'
  | 'oauth.consent_required'
  | 'oauth.refresh_failed'
  | 'oauth.token_unreadable'
  | 'oauth.store_error'
  | 'oauth.revocation_failed'
  | 'oauth.revocation_unsupported'
  | 'oauth.challenge_invalid'
  | 'oauth.resource_metadata_failed'
  | 'oauth.resource_mismatch'
  | 'oauth.authorization_server_missing';

/** Every {@link OAuthReason}, for tables and exhaustiveness tests. */
export const OAUTH_REASONS: readonly OAuthReason[] = Object.freeze([
  'oauth.provider_unknown',
  'oauth.discovery_failed',
  'oauth.client_id_metadata_unsupported',
  'oauth.pkce_unsupported',
  'oauth.pending_limit',
  'oauth.state_unknown',
  'oauth.state_expired',
  'oauth.state_user_mismatch',
  'oauth.issuer_mismatch',
  'oauth.authorization_denied',
  'oauth.callback_invalid',
  'oauth.code_exchange_failed',
  'oauth.consent_required',
  'oauth.refresh_failed',
  'oauth.token_unreadable',
  'oauth.store_error',
  'oauth.revocation_failed',
  'oauth.revocation_unsupported',
  'oauth.challenge_invalid',
  'oauth.resource_metadata_failed',
  'oauth.resource_mismatch',
  'oauth.authorization_server_missing',
] as const);

/** A refusal: a reason from the closed union, never secret material. */
export interface OAuthRefusal {
  readonly ok: false;
  readonly reason: OAuthReason;
}

/** A secret held by reference: `Secret` from `src/util/secret.ts` fits. */
export interface SecretLike {
  reveal(): string;
}

/** How Bastion authenticates to the token and revocation endpoints (RFC 6749 §2.3, RFC 8414 §2 `token_endpoint_auth_methods_supported`). */
export type OAuthClientAuth = 'none' | 'client_secret_basic' | 'client_secret_post';

/**
 * One OAuth provider for which Bastion acts as the client on behalf of each end user.
 *
 * `clientId` is either an identifier pre-registered at the server or an https
 * URL of a client ID metadata document (draft-ietf-oauth-client-id-metadata-document;
 * MCP authorization, "Client ID Metadata Documents"), in which case `clientAuth`
 * must be `none`.
 */
export interface OAuthProviderConfig {
  /** The provider's name in Bastion's config: `[a-z0-9][a-z0-9_.-]{0,63}`. */
  readonly name: string;
  /** The authorization server's issuer identifier (RFC 8414 §2): https, no query or fragment. */
  readonly issuer: string;
  readonly clientId: string;
  /** Required for `client_secret_basic` and `client_secret_post`, refused for `none`. */
  readonly clientSecret?: SecretLike;
  readonly clientAuth: OAuthClientAuth;
  /** Scopes requested at authorization (RFC 6749 §3.3); may be empty. */
  readonly scopes: readonly string[];
  /** RFC 8707 resource indicator sent on authorization, code exchange and refresh: an absolute URI without fragment. */
  readonly resource?: string;
  /** Bastion's callback URL, registered at the server (RFC 6749 §3.1.2). */
  readonly redirectUri: string;
}

/** One authorization in flight, between `startAuthorization` and the callback. */
export interface PendingAuthorization {
  readonly state: string;
  readonly provider: string;
  readonly user: string;
  readonly agent: string;
  /** The PKCE code verifier (RFC 7636 §4.1). Secret: store it like a token. */
  readonly codeVerifier: string;
  /** Unix epoch ms. */
  readonly createdAt: number;
  /** Unix epoch ms; after this the state is refused. */
  readonly expiresAt: number;
}

/**
 * Port: where pending authorizations wait for their callback.
 *
 * `take` must be atomic: a state is returned at most once, ever (a second
 * `take` of the same state answers undefined), so a callback cannot be replayed.
 */
export interface PendingAuthorizationStore {
  /** Stores `pending` under `pending.state`. Answers false when the store is full (the caller refuses with `oauth.pending_limit`). Throws on storage failure. */
  put(pending: PendingAuthorization): Promise<boolean>;
  /** Removes and returns the entry for `state`, expired or not; undefined when unknown or already taken. Throws on storage failure. */
  take(state: string): Promise<PendingAuthorization | undefined>;
}

/**
 * Port: the sealed token set of each (user, provider). Holds only strings
 * produced by {@link TokenSealer.seal}; never sees a token in clear.
 */
export interface UserTokenStore {
  get(user: string, provider: string): Promise<string | undefined>;
  put(user: string, provider: string, sealed: string): Promise<void>;
  /** Deleting an absent entry is not an error. */
  delete(user: string, provider: string): Promise<void>;
}

/**
 * Port: authenticated encryption of token sets. `open` must reject (throw)
 * unless `aad` is the one given to `seal`: the caller binds the user and the
 * provider into `aad`, so a sealed set moved to another user does not open.
 */
export interface TokenSealer {
  seal(plaintext: string, aad: string): Promise<string>;
  open(sealed: string, aad: string): Promise<string>;
}

/** Answer of {@link UserOAuth.startAuthorization}: the link to show the user. */
export interface AuthorizationStart {
  readonly ok: true;
  /** The authorization endpoint URL with every request parameter (RFC 6749 §4.1.1, RFC 7636 §4.3). Not secret, but single-use. */
  readonly url: URL;
  readonly state: string;
  /** Unix epoch ms after which the callback is refused. */
  readonly expiresAt: number;
}

/** Answer of {@link UserOAuth.completeAuthorization}. */
export type AuthorizationCompletion = { readonly ok: true; readonly user: string; readonly provider: string; readonly agent: string } | OAuthRefusal;

/** Answer of {@link UserOAuth.accessToken}: the token is for an `Authorization: Bearer` header of this user's call only. */
export type AccessTokenResult = { readonly ok: true; readonly token: string; readonly expiresAt: number | null } | OAuthRefusal;

/** Answer of {@link UserOAuth.revoke}: local tokens are always deleted; `provider` reports the RFC 7009 outcome. */
export type RevocationResult =
  | { readonly ok: true; readonly hadTokens: boolean; readonly provider: 'revoked' | 'not_attempted' | OAuthReason }
  | OAuthRefusal;

/** Answer of {@link discoverFromChallenge}. */
export type ChallengeDiscovery =
  | {
      readonly ok: true;
      /** The protected resource's identifier, as confirmed by its metadata. */
      readonly resource: string;
      /** The first authorization server listed (RFC 9728 §2 `authorization_servers`): the issuer to configure. */
      readonly issuer: string;
      readonly authorizationServers: readonly string[];
      /** Scopes from the challenge's `scope` parameter, else the metadata's `scopes_supported`, else empty. */
      readonly scopes: readonly string[];
      /** Where the metadata was read. */
      readonly metadataUrl: string;
    }
  | OAuthRefusal;

/** A fetch function: `globalThis.fetch` by default; inject one that goes through Bastion's egress guard. */
export type FetchLike = (url: string, init: RequestInit) => Promise<Response>;
