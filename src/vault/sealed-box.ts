/**
 * The stored form of one AES-256-GCM box (NIST SP 800-38D; an RFC 5116
 * AEAD_AES_256_GCM ciphertext with its nonce and tag kept apart): IV, tag and
 * ciphertext as unpadded base64url (RFC 4648 §5).
 *
 * Decoding is strict: only canonical base64url is accepted (the encoding of the
 * decoded bytes must give back the same text), so every stored box has exactly
 * one text form and a flipped character can never decode to the same bytes.
 */
import type { AeadBox } from '../util/crypto.ts';

/** An AES-256-GCM box as JSON: `iv` 12 bytes, `tag` 16 bytes, `ciphertext` any length, each unpadded base64url. */
export interface SealedBox {
  readonly iv: string;
  readonly tag: string;
  readonly ciphertext: string;
}

const BOX_KEYS = ['ciphertext', 'iv', 'tag'] as const;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Encodes a box for storage. */
export function encodeBox(box: AeadBox): SealedBox {
  return { iv: box.iv.toString('base64url'), tag: box.tag.toString('base64url'), ciphertext: box.ciphertext.toString('base64url') };
}

/** Canonical unpadded base64url to bytes; undefined for anything else. */
export function decodeBase64url(text: unknown): Buffer | undefined {
  if (typeof text !== 'string' || !BASE64URL.test(text)) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

/**
 * A stored box back to bytes; undefined unless `value` is an object with exactly
 * the keys `iv`, `tag`, `ciphertext`, each canonical base64url, with a 12-byte
 * IV and a 16-byte tag.
 */
export function decodeBox(value: unknown): AeadBox | undefined {
  if (!hasExactKeys(value, BOX_KEYS)) return undefined;
  const iv = decodeBase64url(value.iv);
  const tag = decodeBase64url(value.tag);
  const ciphertext = decodeBase64url(value.ciphertext);
  if (iv?.length !== IV_BYTES || tag?.length !== TAG_BYTES || ciphertext === undefined) return undefined;
  return { iv, tag, ciphertext };
}

/** True when `value` is a plain object whose own keys are exactly `keys` (any order). */
export function hasExactKeys<K extends string>(value: unknown, keys: readonly K[]): value is Record<K, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(value, k));
}
