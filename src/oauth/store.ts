/**
 * The store side of per-user OAuth (issue 12): {@link OAuthStore}, the port a
 * `Store` implementation provides (flat method names, so it composes into
 * `Store` beside the other ports; contract test/store/contracts/oauth.ts), and
 * the adapters that present it as the OAuth client's own ports
 * ({@link PendingAuthorizationStore}, {@link UserTokenStore} in ./types.ts).
 *
 * Nothing here holds a secret in clear: token sets arrive sealed by the caller,
 * and the PKCE code verifier (RFC 7636 §4.1) is sealed by
 * {@link pendingAuthorizationsOn} before it reaches the store.
 *
 * Errors: every {@link OAuthStore} method throws `BastionError('ERR_STORE')` on
 * an I/O or database failure; `TypeError`/`RangeError` on malformed input.
 */
import { BastionError } from '../errors.ts';
import type { PendingAuthorization, PendingAuthorizationStore, TokenSealer, UserTokenStore } from './types.ts';

/** A pending authorization as stored: the code verifier only sealed (see {@link pendingVerifierAad}). */
export interface StoredPendingAuthorization {
  readonly state: string;
  readonly provider: string;
  readonly user: string;
  readonly agent: string;
  /** The code verifier, sealed by a {@link TokenSealer} under {@link pendingVerifierAad} of this record. */
  readonly sealedCodeVerifier: string;
  /** Unix epoch ms. */
  readonly createdAt: number;
  /** Unix epoch ms; a row with `expiresAt <= now` is pruned by the next put. */
  readonly expiresAt: number;
}

/** Metadata of one stored token set, for listing (the CLI): never the sealed value. */
export interface UserTokenSetInfo {
  readonly user: string;
  readonly provider: string;
  /** Unix epoch ms of the last put. */
  readonly updatedAt: number;
}

/** Port: the persistence of pending authorizations and sealed per-user token sets. */
export interface OAuthStore {
  /**
   * Stores `pending` under its `state`, after deleting every pending row with
   * `expiresAt <= limits.now`. Answers false, storing nothing, when
   * `limits.maxPending` rows (unexpired) are already held or the state exists.
   * Throws `RangeError` unless `maxPending` is an integer 1-1_000_000 and the
   * times are integers (epoch ms).
   */
  putPendingAuthorization(pending: StoredPendingAuthorization, limits: { readonly maxPending: number; readonly now: number }): Promise<boolean>;
  /**
   * Removes and returns the row of `state` in one atomic step, expired or not
   * (the caller checks expiry): of any number of concurrent takes, on any
   * connection, exactly one gets it. Undefined when unknown or already taken.
   */
  takePendingAuthorization(state: string): Promise<StoredPendingAuthorization | undefined>;
  /** The sealed token set of (`user`, `provider`), or undefined. */
  getUserTokenSet(user: string, provider: string): Promise<string | undefined>;
  /** Stores (or replaces) the sealed token set of (`user`, `provider`), stamped `updatedAt = now` (epoch ms). */
  putUserTokenSet(user: string, provider: string, sealed: string, now: number): Promise<void>;
  /** Deletes the set of (`user`, `provider`); true when one was stored. */
  deleteUserTokenSet(user: string, provider: string): Promise<boolean>;
  /** Metadata of the stored sets, filtered by user and/or provider, ordered by user then provider; at most `limit` (default 1000). */
  listUserTokenSets(filter?: { readonly user?: string; readonly provider?: string; readonly limit?: number }): Promise<UserTokenSetInfo[]>;
}

/**
 * The additional authenticated data of a pending authorization's sealed code
 * verifier: every other field of the row, as a JSON array (no two records
 * encode alike), so a sealed verifier copied to another state, user, provider
 * or agent, or given another expiry, does not open.
 */
export function pendingVerifierAad(p: Omit<StoredPendingAuthorization, 'sealedCodeVerifier'>): string {
  return JSON.stringify(['bastion/oauth-pending-verifier/v1', p.state, p.provider, p.user, p.agent, p.createdAt, p.expiresAt]);
}

/** Options of {@link pendingAuthorizationsOn}. */
export interface PendingAuthorizationsOptions {
  /** Unexpired pending authorizations held at most (integer 1-1_000_000); beyond it `put` answers false (`oauth.pending_limit`). */
  readonly maxPending: number;
  /** Seals the code verifier before it is stored, opens it on take. */
  readonly sealer: TokenSealer;
  /** Clock for pruning, Unix epoch ms. Default `Date.now`. */
  readonly now?: () => number;
}

/** Throws `RangeError` unless `n` is an integer 1-1_000_000. */
export function assertMaxPending(name: string, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new RangeError(`${name} must be an integer 1-1000000`);
}

/**
 * The OAuth client's {@link PendingAuthorizationStore} over an {@link OAuthStore}.
 * `put` seals the code verifier (AAD {@link pendingVerifierAad}) and prunes
 * expired rows; `take` is the store's atomic take, then opens the verifier.
 *
 * Throws `RangeError` on a bad `maxPending`. Its methods throw
 * `BastionError('ERR_STORE')` on a store failure, and `take` throws
 * `BastionError('ERR_VAULT_DECRYPT')` when the taken row's verifier does not
 * open (moved to another state, tampered with, sealed under another key); the
 * row is gone either way, so the state stays single-use.
 */
export function pendingAuthorizationsOn(store: OAuthStore, opts: PendingAuthorizationsOptions): PendingAuthorizationStore {
  assertMaxPending('pendingAuthorizationsOn: maxPending', opts.maxPending);
  const { maxPending, sealer } = opts;
  const now = opts.now ?? Date.now;
  return {
    async put(p: PendingAuthorization): Promise<boolean> {
      // Copied field by field: nothing but these columns reaches the store.
      const row = { state: p.state, provider: p.provider, user: p.user, agent: p.agent, createdAt: p.createdAt, expiresAt: p.expiresAt };
      const sealedCodeVerifier = await sealer.seal(p.codeVerifier, pendingVerifierAad(row));
      if (typeof sealedCodeVerifier !== 'string') throw new TypeError('pendingAuthorizationsOn: the sealer must answer a string');
      return store.putPendingAuthorization({ ...row, sealedCodeVerifier }, { maxPending, now: now() });
    },
    async take(state: string): Promise<PendingAuthorization | undefined> {
      const row = await store.takePendingAuthorization(state);
      if (row === undefined) return undefined;
      const { sealedCodeVerifier, ...meta } = row;
      let codeVerifier: string;
      try {
        codeVerifier = await sealer.open(sealedCodeVerifier, pendingVerifierAad(meta));
      } catch (err) {
        throw new BastionError('ERR_VAULT_DECRYPT', 'oauth: pending authorization does not open', { cause: err, detail: { provider: row.provider } });
      }
      return { state: row.state, provider: row.provider, user: row.user, agent: row.agent, codeVerifier, createdAt: row.createdAt, expiresAt: row.expiresAt };
    },
  };
}

/** Options of {@link userTokensOn}. */
export interface UserTokensOptions {
  /** Clock stamping `updatedAt`, Unix epoch ms. Default `Date.now`. */
  readonly now?: () => number;
}

/**
 * The OAuth client's {@link UserTokenStore} over an {@link OAuthStore}: sealed
 * strings in and out, unchanged. Methods throw `BastionError('ERR_STORE')` on a store failure.
 */
export function userTokensOn(store: OAuthStore, opts: UserTokensOptions = {}): UserTokenStore {
  const now = opts.now ?? Date.now;
  return {
    get: (user, provider) => store.getUserTokenSet(user, provider),
    put: (user, provider, sealed) => store.putUserTokenSet(user, provider, sealed, now()),
    async delete(user, provider) {
      await store.deleteUserTokenSet(user, provider);
    },
  };
}
