/**
 * The vault's two failure kinds, built in one place: `ERR_VAULT_KEY` (the
 * key-encryption key) and `ERR_VAULT_DECRYPT` (a sealed secret that cannot be opened).
 */
import { BastionError, type BastionErrorCode } from '../errors.ts';

/** Code of a key-encryption-key failure: a bad `BASTION_MASTER_KEY`, or a key file that is missing, unsafe or malformed. */
export const VAULT_KEY_ERROR_CODE: BastionErrorCode = 'ERR_VAULT_KEY';

/** Code of a sealed secret that cannot be opened (wrong KEK, tampered, truncated or from another secret). */
export const VAULT_DECRYPT_ERROR_CODE: BastionErrorCode = 'ERR_VAULT_DECRYPT';

/** The fixed message of every {@link vaultDecryptError}: it never says which part failed. */
export const VAULT_DECRYPT_MESSAGE = 'vault: sealed secret cannot be opened';

/**
 * A KEK failure. `message` names the source (the variable name or the key file
 * path) and never the key material; `detail` holds only non-secret fields.
 */
export function vaultKeyError(message: string, detail: Readonly<Record<string, unknown>> = {}, cause?: unknown): BastionError {
  return new BastionError(VAULT_KEY_ERROR_CODE, message, {
    detail: { ...detail },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A sealed secret that cannot be opened. Message and detail are the same
 * whatever failed (shape, KEK id, key unwrap, value decryption), so the error is
 * no oracle; `secret` and `version` are the caller's reference, not stored data.
 */
export function vaultDecryptError(ref: { readonly id: string; readonly version: number }): BastionError {
  return new BastionError(VAULT_DECRYPT_ERROR_CODE, VAULT_DECRYPT_MESSAGE, {
    detail: { secret: ref.id, version: ref.version },
  });
}
