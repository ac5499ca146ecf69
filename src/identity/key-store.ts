/**
 * The key port: the signing keys Bastion holds, for the identity key ring
 * (./keys.ts) and the audit log's checkpoint key (src/audit/log.ts). Implemented
 * by every store adapter; contract: test/store/contracts/keys.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`).
 */

/** A signing key kept in the store. */
export interface StoredKey {
  readonly id: string;
  /**
   * What the key signs: `audit` (checkpoints) or `identity` (RFC 9421 request
   * signatures, per-call JWTs, agent-to-agent JWS; published at /.well-known/jwks.json).
   */
  readonly purpose: 'audit' | 'identity';
  readonly alg: 'Ed25519';
  readonly publicKeyPem: string;
  /** PKCS#8 PEM, or its sealed form (src/vault/key-protector.ts) when a key-encryption key is configured; opaque to the store. */
  readonly privateKeyPem: string;
  /** Epoch ms. */
  readonly createdAt: number;
}

/** Signing keys, one current per purpose, retired ones kept. */
export interface KeyStore {
  /** The current key for a purpose, or undefined. */
  getKey(purpose: StoredKey['purpose']): Promise<StoredKey | undefined>;
  /** Every key ever held for a purpose (verification needs retired ones too), ascending by `createdAt`, then id. */
  listKeys(purpose: StoredKey['purpose']): Promise<StoredKey[]>;
  /** Stores a key (replacing one with its id) and makes it current for its purpose; the previous current key is retired, not removed. */
  putKey(key: StoredKey): Promise<void>;
}
