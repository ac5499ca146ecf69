/**
 * Envelope encryption of secret values, as pure functions (no I/O): each
 * secret version gets its own random 32-byte data key; the value is encrypted
 * with AES-256-GCM under the data key, and the data key is wrapped with
 * AES-256-GCM under the key-encryption key (see kek.ts and ARCHITECTURE.md,
 * "vault"). GCM per NIST SP 800-38D, used as the RFC 5116 AEAD_AES_256_GCM
 * construction with a random 96-bit nonce per encryption.
 *
 * Both ciphertexts are bound to the secret they belong to by their associated
 * data (AAD), so a sealed value copied onto another secret or another version
 * does not open. The AAD is the UTF-8 encoding of
 *
 *     bastion/v1|<part>|secret=<JSON id>|version=<n>
 *
 * where `<part>` is `key` for the wrapped data key and `value` for the value,
 * `<JSON id>` is `JSON.stringify(id)` (quoted and escaped, lone surrogates
 * escaped as `\uXXXX`, so no id can imitate a separator or another id) and `<n>`
 * is the version in decimal. `v1` follows {@link SEALED_SECRET_FORMAT}.
 */
import { aesGcmDecrypt, aesGcmEncrypt, randomKeyBytes } from '../util/crypto.ts';
import { Secret } from '../util/secret.ts';
import { vaultDecryptError } from './errors.ts';
import { KEY_BYTES, type Kek, type WrappedKey } from './kek.ts';
import { decodeBox, encodeBox, hasExactKeys, type SealedBox } from './sealed-box.ts';

/** The version of the {@link SealedSecret} layout and of the AAD encoding. */
export const SEALED_SECRET_FORMAT = 1;

/** Which secret version a sealed value belongs to: any non-empty id, and a version from 1. */
export interface SecretRef {
  readonly id: string;
  readonly version: number;
}

/**
 * What the store keeps for one secret version: a plain, JSON-serializable object
 * holding no clear value and no clear key. Binary fields are unpadded base64url.
 */
export interface SealedSecret {
  /** Layout version: {@link SEALED_SECRET_FORMAT}. */
  readonly format: typeof SEALED_SECRET_FORMAT;
  /** {@link Kek.id} of the KEK that wrapped the data key. */
  readonly kekId: string;
  /** The 32-byte data key, AES-256-GCM under the KEK. */
  readonly wrappedKey: WrappedKey;
  /** The value's UTF-8 bytes, AES-256-GCM under the data key. */
  readonly value: SealedBox;
}

const SEALED_KEYS = ['format', 'kekId', 'value', 'wrappedKey'] as const;

/**
 * Seals one secret version under `kek`. Throws `TypeError` on a malformed `ref`
 * (empty id, version not an integer from 1) or a value that is not well-formed
 * Unicode (a lone surrogate would not survive UTF-8 and come back changed).
 */
export function sealSecret(kek: Kek, ref: SecretRef, value: Secret): SealedSecret {
  assertRef(ref, 'sealSecret');
  if (!(value instanceof Secret)) throw new TypeError('sealSecret: value must be a Secret');
  const clear = value.reveal();
  if (!clear.isWellFormed()) throw new TypeError('sealSecret: value must be well-formed Unicode');
  const dataKey = randomKeyBytes(KEY_BYTES);
  const plaintext = Buffer.from(clear, 'utf8');
  try {
    const sealedValue = encodeBox(aesGcmEncrypt(dataKey, plaintext, aad(ref, 'value')));
    const wrappedKey = kek.wrap(dataKey, aadText(ref, 'key'));
    return { format: SEALED_SECRET_FORMAT, kekId: kek.id, wrappedKey, value: sealedValue };
  } finally {
    dataKey.fill(0);
    plaintext.fill(0);
  }
}

/**
 * Opens a sealed secret version with `kek`. Throws a `BastionError`
 * ({@link VAULT_DECRYPT_ERROR_CODE}, the
 * fixed message {@link VAULT_DECRYPT_MESSAGE}) when it cannot be opened for any
 * reason: not a {@link SealedSecret} of this format, sealed under another KEK,
 * sealed for another `ref`, or altered or truncated in any field. Which check
 * failed is not reported. Throws `TypeError` on a malformed `ref`.
 */
export function openSecret(kek: Kek, ref: SecretRef, sealed: SealedSecret): Secret {
  assertRef(ref, 'openSecret');
  const input: unknown = sealed;
  if (!hasExactKeys(input, SEALED_KEYS) || input.format !== SEALED_SECRET_FORMAT || input.kekId !== kek.id) {
    throw vaultDecryptError(ref);
  }
  const box = decodeBox(input.value);
  if (box === undefined) throw vaultDecryptError(ref);
  const dataKey = kek.unwrap(input.wrappedKey as WrappedKey, aadText(ref, 'key'));
  if (dataKey === undefined) throw vaultDecryptError(ref);
  let plaintext: Buffer | undefined;
  try {
    plaintext = aesGcmDecrypt(dataKey, box, aad(ref, 'value'));
  } finally {
    dataKey.fill(0);
  }
  if (plaintext === undefined) throw vaultDecryptError(ref);
  try {
    return new Secret(UTF8.decode(plaintext));
  } catch {
    // Authentic but not UTF-8: cannot come from sealSecret.
    throw vaultDecryptError(ref);
  } finally {
    plaintext.fill(0);
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function aadText(ref: SecretRef, part: 'key' | 'value'): string {
  return `bastion/v${SEALED_SECRET_FORMAT}|${part}|secret=${JSON.stringify(ref.id)}|version=${ref.version}`;
}

function aad(ref: SecretRef, part: 'key' | 'value'): Buffer {
  return Buffer.from(aadText(ref, part), 'utf8');
}

function assertRef(ref: SecretRef, label: string): void {
  if (typeof ref !== 'object' || ref === null) throw new TypeError(`${label}: ref must be an object`);
  if (typeof ref.id !== 'string' || ref.id === '') throw new TypeError(`${label}: ref.id must be a non-empty string`);
  if (!Number.isSafeInteger(ref.version) || ref.version < 1) throw new TypeError(`${label}: ref.version must be an integer from 1`);
}
