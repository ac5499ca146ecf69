/**
 * Bastion's per-user OAuth client (issue 12, "personal secrets"). Named
 * re-exports only; everything else in this folder is internal.
 */
export { UserOAuth, type OAuthEvent, type UserOAuthOptions } from './user-oauth.ts';
export { discoverFromChallenge, type ChallengeDiscoveryOptions } from './discover.ts';
export { MemoryPendingAuthorizationStore, MemoryUserTokenStore, type MemoryPendingStoreOptions } from './memory-stores.ts';
export { tokenSetAad } from './token-set.ts';
export { aeadTokenSealer } from './sealer.ts';
export { pendingAuthorizationsOn, userTokensOn, pendingVerifierAad, type OAuthStore, type StoredPendingAuthorization, type UserTokenSetInfo } from './store.ts';
export {
  OAUTH_REASONS,
  type AccessTokenResult,
  type AuthorizationCompletion,
  type AuthorizationStart,
  type ChallengeDiscovery,
  type FetchLike,
  type OAuthClientAuth,
  type OAuthProviderConfig,
  type OAuthReason,
  type OAuthRefusal,
  type PendingAuthorization,
  type PendingAuthorizationStore,
  type RevocationResult,
  type SecretLike,
  type TokenSealer,
  type UserTokenStore,
} from './types.ts';
