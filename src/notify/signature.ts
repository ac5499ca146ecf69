/**
 * The signature on webhook notifications: a JWS with detached content (RFC 7515 Appendix F) over the
 * exact request body, in the `Bastion-Signature` header as `<protected header>..<signature>`, signed
 * with the gateway's current identity key (EdDSA / Ed25519, RFC 8037). A receiver verifies it with the
 * public keys at `/.well-known/jwks.json`: put the base64url of the raw body between the two dots and
 * verify the compact JWS (docs/notifications.md shows it with jose).
 */
import { base64url, CompactSign, compactVerify, type CompactVerifyGetKey } from 'jose';
import { BastionError } from '../errors.ts';
import type { SigningKey } from '../identity/keys.ts';

/** The request header carrying the signature. */
export const SIGNATURE_HEADER = 'bastion-signature';

/** The JWS `typ` of a notification signature (RFC 7515 §4.1.9), so it cannot be mistaken for another of Bastion's JWS. */
export const NOTIFICATION_JWS_TYP = 'bastion-notification+jws';

/**
 * Signs `body` (the exact bytes sent) with `key`: returns the detached compact JWS
 * `<b64url protected header>..<b64url signature>`, header `{alg: 'EdDSA', kid, typ}`.
 */
export async function signDetached(body: Uint8Array, key: Pick<SigningKey, 'kid' | 'cryptoKey'>): Promise<string> {
  const jws = await new CompactSign(body).setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: NOTIFICATION_JWS_TYP }).sign(key.cryptoKey);
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
}

/** A key lookup as jose's `createRemoteJWKSet` / `createLocalJWKSet` return. */
export type JwksLookup = CompactVerifyGetKey;

/**
 * Verifies a `Bastion-Signature` value against the raw `body` with keys from `jwks` (e.g.
 * `createRemoteJWKSet(new URL('/.well-known/jwks.json', gateway))`). Resolves with the key id used.
 * @throws BastionError `ERR_SIGNING` when the value is not a detached compact JWS, its `typ` or `alg`
 *   is not Bastion's, or the signature does not verify over `body` (a changed body fails here).
 */
export async function verifyDetached(body: Uint8Array, signature: string, jwks: JwksLookup): Promise<{ kid: string }> {
  const parts = signature.split('.');
  if (parts.length !== 3 || parts[1] !== '' || parts[0] === '' || parts[2] === '') throw new BastionError('ERR_SIGNING', 'notification signature: not a detached JWS (header..signature)');
  try {
    const { protectedHeader } = await compactVerify(`${parts[0]}.${base64url.encode(body)}.${parts[2]}`, jwks, { algorithms: ['EdDSA'] });
    if (protectedHeader.typ !== NOTIFICATION_JWS_TYP) throw new Error('typ');
    return { kid: String(protectedHeader.kid) };
  } catch {
    throw new BastionError('ERR_SIGNING', 'notification signature does not verify');
  }
}
