/**
 * The vault port: secrets' metadata and sealed versions, the vault generation,
 * and vault items (sealed installation material), for the vault (./vault.ts).
 * The store never sees a clear value: everything secret arrives sealed
 * (JSON of a `SealedSecret`, ./envelope.ts) and is opaque to it. Implemented
 * by every store adapter; contract: test/store/contracts/vault.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`). Times are epoch ms.
 */

/**
 * A vault secret's metadata as stored: never its value. Times are epoch ms.
 * `version` is the newest version (1 after add, +1 per rotation).
 */
export interface StoredSecret {
  /** Random id (a UUID), fixed for the secret's life; a name added again after revocation gets a new one. */
  readonly id: string;
  /** Unique among live (non-revoked) secrets. */
  readonly name: string;
  /** Host patterns the value may be sent to, normalized (lower case), as given at add. */
  readonly hosts: readonly string[];
  /** HTTP header the value is sent in, or null. */
  readonly header: string | null;
  /** Template of the header value with one `{}` for the secret (`Bearer {}`), or null. */
  readonly format: string | null;
  readonly version: number;
  readonly createdAt: number;
  /** Time of the latest rotation, or null. */
  readonly rotatedAt: number | null;
  /** Time of revocation, or null while live. */
  readonly revokedAt: number | null;
  /** Time the value was last sent (coalesced; see Vault.markUsed), or null. */
  readonly lastUsedAt: number | null;
}

/** One sealed version of a secret. Times are epoch ms. */
export interface StoredSecretVersion {
  readonly secretId: string;
  /** From 1. */
  readonly version: number;
  /** JSON of the version's `SealedSecret` (./envelope.ts); opaque to the store. */
  readonly sealed: string;
  readonly createdAt: number;
  /** Null while current; set when superseded (end of the rotation grace) or revoked (the revocation time). Valid while `expiresAt > now`. */
  readonly expiresAt: number | null;
}

/** What {@link VaultStore.createSecret} stores: a secret's metadata and its version 1. */
export interface NewSecret {
  readonly id: string;
  readonly name: string;
  readonly hosts: readonly string[];
  readonly header: string | null;
  readonly format: string | null;
  /** Epoch ms; also the version's `createdAt`. */
  readonly createdAt: number;
  /** JSON of version 1's `SealedSecret`. */
  readonly sealed: string;
}

/**
 * Named items written once (insert-if-absent) and read back: the vault keeps
 * its placeholder root key here, the network door its local CA
 * (src/egress/ca-store.ts). Values are opaque strings (sealed JSON).
 */
export interface VaultItemStore {
  /** The item called `name`, or undefined. */
  getVaultItem(name: string): Promise<string | undefined>;
  /**
   * Stores `value` under `name` unless an item has the name already, then
   * returns the stored value: `value` when this call created it, the existing one
   * otherwise. Race-safe across processes: every caller gets the same value.
   * Does not bump the vault generation.
   */
  putVaultItemIfAbsent(name: string, value: string): Promise<string>;
}

/** Secrets, their sealed versions and the vault generation. */
export interface VaultStore extends VaultItemStore {
  /**
   * The vault generation: an integer that only grows, bumped in the same
   * transaction as every change to a secret or its versions (create, rotate,
   * revoke; not {@link touchSecret}). A reader in any process compares it to
   * the value it last saw to notice changes cheaply. 0 on a fresh store.
   */
  vaultGeneration(): Promise<number>;
  /**
   * Creates a secret with version 1 (`expiresAt` null) and bumps the generation, in one transaction.
   * @throws BastionError `ERR_VAULT_SECRET_EXISTS` when a live (non-revoked) secret has the name
   *   (of concurrent creates of one name exactly one succeeds); `ERR_STORE` when the id is taken or on a driver failure
   */
  createSecret(secret: NewSecret): Promise<void>;
  /**
   * Adds version `version.version` to the live secret `secretId`, which must be
   * exactly its newest version + 1, sets every older version's `expiresAt` to
   * `graceUntil` (an earlier expiry is kept), sets `rotatedAt` to
   * `version.createdAt` and bumps the generation, in one transaction. Returns
   * false, changing nothing, when the secret is unknown or revoked or the
   * version is not the next one (a concurrent rotation won).
   */
  rotateSecret(secretId: string, version: { readonly version: number; readonly sealed: string; readonly createdAt: number }, graceUntil: number): Promise<boolean>;
  /**
   * Revokes a live secret at `at` (epoch ms): `revokedAt = at`, every version's
   * `expiresAt` set to `at` (an earlier expiry is kept), generation bumped, in
   * one transaction. Its name is free again. False when unknown or already revoked.
   */
  revokeSecret(secretId: string, at: number): Promise<boolean>;
  /** The live secret with this name, or undefined. */
  getSecretByName(name: string): Promise<StoredSecret | undefined>;
  /** Every live secret, ascending by name. */
  listSecrets(): Promise<StoredSecret[]>;
  /**
   * The versions of live secrets still valid at `now` (epoch ms): `expiresAt`
   * null or later than `now`. Ascending by secret id, then version.
   */
  listValidSecretVersions(now: number): Promise<StoredSecretVersion[]>;
  /** Sets `lastUsedAt` to `at` unless it is later already. No generation bump; an unknown id is ignored. */
  touchSecret(secretId: string, at: number): Promise<void>;
}
