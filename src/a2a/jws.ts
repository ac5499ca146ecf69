/**
 * Signing and verifying agent-to-agent envelopes: a JWS (RFC 7515) in compact
 * serialization with a detached payload (Appendix F), EdDSA with Ed25519
 * (RFC 8037), over the RFC 8785 canonical JSON of the {@link A2aEnvelope}.
 * The protected header is exactly `{alg: "EdDSA", kid, typ: "bastion-a2a+jws"}`.
 *
 * The payload is not carried inside the JWS: the receiver rebuilds it from the
 * message and the envelope fields that travel beside it, so a changed message,
 * nonce, timestamp, sender or recipient makes the signature fail.
 */
import { base64url, CompactSign, createLocalJWKSet, createRemoteJWKSet, flattenedVerify, type CryptoKey, type JSONWebKeySet } from 'jose';
import { A2A_JWS_TYP, envelopePayload, type A2aEnvelope } from './message.ts';

/** How a peer's verification keys are found: a JWKS fetched from its URL, or pinned keys. */
export type PeerKeys = ReturnType<typeof createRemoteJWKSet> | ReturnType<typeof createLocalJWKSet>;

/** Why a JWS did not verify. `jwks_unavailable`: the peer's JWKS could not be fetched (not the sender's fault, or not provably). */
export type JwsFailure = 'malformed' | 'header' | 'signature' | 'jwks_unavailable';

/** The result of {@link verifyEnvelope}: the key id that verified, or why nothing did. */
export type JwsResult = { readonly ok: true; readonly kid: string } | { readonly ok: false; readonly why: JwsFailure; readonly kid: string | null };

/** Lifetimes of a fetched JWKS (jose's remote set), in ms. */
export const REMOTE_JWKS = Object.freeze({ timeoutMs: 5_000, cooldownMs: 30_000, cacheMaxAgeMs: 600_000 });

/** Signs `envelope` with an Ed25519 key; returns the detached compact JWS `header..signature`. */
export async function signEnvelope(envelope: A2aEnvelope, key: { readonly kid: string; readonly cryptoKey: CryptoKey }): Promise<string> {
  const jws = await new CompactSign(envelopePayload(envelope)).setProtectedHeader({ alg: 'EdDSA', kid: key.kid, typ: A2A_JWS_TYP }).sign(key.cryptoKey);
  const [header, , signature] = jws.split('.');
  return `${header}..${signature}`;
}

/** Keys of a peer: its pinned JWKS, or its JWKS URL (fetched and cached by jose, no redirects followed). */
export function peerKeys(source: { readonly jwksUrl: string | null; readonly publicJwks: string | null }): PeerKeys {
  if (source.publicJwks !== null) return createLocalJWKSet(JSON.parse(source.publicJwks) as JSONWebKeySet);
  if (source.jwksUrl === null) throw new TypeError('peerKeys: neither jwksUrl nor publicJwks');
  return createRemoteJWKSet(new URL(source.jwksUrl), {
    timeoutDuration: REMOTE_JWKS.timeoutMs,
    cooldownDuration: REMOTE_JWKS.cooldownMs,
    cacheMaxAge: REMOTE_JWKS.cacheMaxAgeMs,
  });
}

/**
 * Verifies a detached JWS over `envelope` with the peer's keys. The header must
 * be exactly `alg: EdDSA`, a `kid` and our `typ` (no `crit`, no embedded key);
 * the key is the peer's key with that `kid` (an unknown `kid` is a signature failure).
 * Never throws.
 */
export async function verifyEnvelope(jws: string, envelope: A2aEnvelope, keys: PeerKeys): Promise<JwsResult> {
  const parts = jws.split('.');
  if (parts.length !== 3 || parts[1] !== '') return { ok: false, why: 'malformed', kid: null };
  const [header = '', , signature = ''] = parts;
  let protectedHeader: unknown;
  try {
    protectedHeader = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(base64url.decode(header)));
  } catch {
    return { ok: false, why: 'malformed', kid: null };
  }
  if (typeof protectedHeader !== 'object' || protectedHeader === null || Array.isArray(protectedHeader)) return { ok: false, why: 'malformed', kid: null };
  const h = protectedHeader as Record<string, unknown>;
  const kid = typeof h.kid === 'string' && h.kid.length > 0 && h.kid.length <= 256 ? h.kid : null;
  const names = Object.keys(h).sort().join(',');
  if (names !== 'alg,kid,typ' || h.alg !== 'EdDSA' || h.typ !== A2A_JWS_TYP || kid === null) return { ok: false, why: 'header', kid };
  let payload: string;
  try {
    payload = base64url.encode(envelopePayload(envelope));
  } catch {
    return { ok: false, why: 'malformed', kid };
  }
  try {
    await flattenedVerify({ protected: header, payload, signature }, keys, { algorithms: ['EdDSA'] });
    return { ok: true, kid };
  } catch (err) {
    return { ok: false, why: joseFailure(err), kid };
  }
}

/** Maps a jose error to a failure: anything about the key set's availability is `jwks_unavailable`, the rest `signature`. */
function joseFailure(err: unknown): JwsFailure {
  const code = typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : '';
  switch (code) {
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JWS_INVALID':
    case 'ERR_JWK_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'signature';
    default:
      // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a non-200 answer (ERR_JOSE_GENERIC), a fetch TypeError.
      return 'jwks_unavailable';
  }
}
