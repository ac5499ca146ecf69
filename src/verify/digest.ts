/**
 * RFC 9530 Content-Digest: the SHA-256 of the message content, as a Structured
 * Fields Dictionary `sha-256=:<base64>:`.
 */
import { parseDictionary, serializeDictionary } from 'structured-headers';
import { VerifyError } from './errors.ts';

/** Algorithm key accepted in Content-Digest (RFC 9530 §5, "sha-256"); others are ignored. */
const ALG = 'sha-256';

async function sha256(body: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>));
}

/**
 * RFC 9530 §2 Content-Digest value for `body` (the exact content bytes, after any
 * content coding): `sha-256=:<base64 of SHA-256>:`.
 */
export async function contentDigest(body: Uint8Array): Promise<string> {
  return serializeDictionary(new Map([[ALG, [await sha256(body), new Map()]]]));
}

/** Compares two byte arrays in time that depends only on their lengths. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Checks a received Content-Digest field value against `body` (RFC 9530 §2).
 * Only `sha-256` is checked; a value without a `sha-256` member cannot be
 * checked and is refused like a mismatch.
 * @throws VerifyError `malformed` (not a Dictionary, or `sha-256` not a Byte Sequence),
 *   `digest_mismatch` (no `sha-256` member, or it differs from the body's).
 */
export async function checkContentDigest(value: string, body: Uint8Array): Promise<void> {
  let dict;
  try {
    dict = parseDictionary(value);
  } catch (err) {
    throw new VerifyError('malformed', 'content-digest: not a structured dictionary', { cause: err });
  }
  const member = dict.get(ALG);
  if (member === undefined) throw new VerifyError('digest_mismatch', 'content-digest: no sha-256 digest');
  const bare = member[0];
  if (!(bare instanceof ArrayBuffer)) throw new VerifyError('malformed', 'content-digest: sha-256 is not a byte sequence');
  if (!equalBytes(new Uint8Array(bare), await sha256(body))) throw new VerifyError('digest_mismatch', 'content-digest: does not match the body');
}
