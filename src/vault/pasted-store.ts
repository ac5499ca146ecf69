/**
 * The pasted-secret port: credentials end users pasted into a model
 * conversation, vaulted as that user's personal secrets (./pasted.ts), listed
 * and bound by `bastion secret pasted`. Never a clear value. Implemented by
 * every store adapter; contract: test/store/contracts/pasted-secrets.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`). Times are epoch ms.
 */

/**
 * A credential an end user pasted into a model conversation, vaulted as that
 * user's personal secret (./pasted.ts). Never its value. Times epoch ms.
 */
export interface StoredPastedSecret {
  /** Random id (UUID). */
  readonly id: string;
  /** The 12 characters of `<<SECRET_xxxxxxxxxxxx>>`, derived from `id`; unique. */
  readonly token: string;
  /** The agent and end user it belongs to: only requests for this pair may use it. */
  readonly agent: string;
  readonly user: string;
  /** Keyed digest of agent, user and value: the same value pasted again maps to the same row. */
  readonly fingerprint: string;
  /** The detector rule that found it (`github-pat`, ...). */
  readonly rule: string;
  /** Hosts it may be sent to (from the rule; empty: nowhere until an admin binds it). */
  readonly hosts: readonly string[];
  /** JSON of its `SealedSecret`; opaque to the store. */
  readonly sealed: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

/** Pasted secrets, one row per (agent, user, fingerprint). */
export interface PastedSecretStore {
  /**
   * Stores a pasted secret unless one with the same (agent, user, fingerprint)
   * exists, and returns the stored row (the existing one in that case), race-safe.
   * @throws BastionError `ERR_STORE` (also when `token` is taken by another secret: never a silent overwrite)
   */
  putPastedSecret(secret: StoredPastedSecret): Promise<StoredPastedSecret>;
  /** The pasted secret with this token, or undefined. */
  getPastedSecretByToken(token: string): Promise<StoredPastedSecret | undefined>;
  /** Pasted secrets, newest first, optionally of one user (and agent); at most `limit` (default 1000). */
  listPastedSecrets(filter?: { agent?: string; user?: string; limit?: number }): Promise<StoredPastedSecret[]>;
  /** Sets `lastUsedAt` to `at` unless later already; an unknown id is ignored. */
  touchPastedSecret(id: string, at: number): Promise<void>;
  /** Replaces a pasted secret's hosts (an admin binding it). False when unknown. */
  setPastedSecretHosts(id: string, hosts: readonly string[]): Promise<boolean>;
}
