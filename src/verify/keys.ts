/**
 * Verification keys: pinned public JWKs, or a JWKS fetched from the signer
 * (Bastion's `/.well-known/jwks.json`) with jose's cached remote key set.
 * Only OKP / Ed25519 keys (RFC 8037) are ever returned.
 */
import { createLocalJWKSet, createRemoteJWKSet, errors, type CryptoKey, type JWK } from 'jose';
import { VerifyError } from './errors.ts';

/** Where verification keys come from. At least one of `jwksUrl` and `keys`; pinned keys are tried first. */
export interface KeySourceOptions {
  /** JWKS URL (RFC 7517 §5), fetched with jose's `createRemoteJWKSet`: cached, refetched once on an unknown `kid` after the cooldown. */
  readonly jwksUrl?: string | URL;
  /** Pinned public JWKs: OKP / Ed25519 with `kid`, no private part. */
  readonly keys?: readonly JWK[] | { readonly keys: readonly JWK[] };
  /** How long a fetched JWKS is used before it is fetched again, in ms (default 600 000). */
  readonly jwksCacheMaxAgeMs?: number;
  /** Least time between two fetches caused by an unknown `kid`, in ms (default 30 000). */
  readonly jwksCooldownMs?: number;
  /** Timeout of one JWKS fetch, in ms (default 5000). */
  readonly jwksTimeoutMs?: number;
}

/** Returns the Ed25519 public key with id `kid`; rejects with VerifyError `unknown_key` or `jwks_unavailable`. */
export type KeyResolver = (kid: string) => Promise<CryptoKey>;

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

/** Remote key sets shared by every verifier with the same URL and cache settings, so a fresh options object does not refetch. */
const remoteSets = new Map<string, RemoteSet>();
const MAX_REMOTE_SETS = 64;

function duration(name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0) throw new TypeError(`verify: ${name} must be a non-negative integer (ms)`);
  return v;
}

function remoteSet(opts: KeySourceOptions, url: URL): RemoteSet {
  const cacheMaxAge = duration('jwksCacheMaxAgeMs', opts.jwksCacheMaxAgeMs);
  const cooldownDuration = duration('jwksCooldownMs', opts.jwksCooldownMs);
  const timeoutDuration = duration('jwksTimeoutMs', opts.jwksTimeoutMs);
  const cacheKey = JSON.stringify([url.href, cacheMaxAge, cooldownDuration, timeoutDuration]);
  let set = remoteSets.get(cacheKey);
  if (set === undefined) {
    set = createRemoteJWKSet(url, {
      ...(cacheMaxAge !== undefined ? { cacheMaxAge } : {}),
      ...(cooldownDuration !== undefined ? { cooldownDuration } : {}),
      ...(timeoutDuration !== undefined ? { timeoutDuration } : {}),
    });
    if (remoteSets.size >= MAX_REMOTE_SETS) remoteSets.delete(remoteSets.keys().next().value!);
    remoteSets.set(cacheKey, set);
  }
  return set;
}

/**
 * Checks a pinned JWK and returns its `kid` and public members only.
 * @throws TypeError naming the key's index when it is not a public OKP/Ed25519 signing key with a `kid`.
 */
function pinnedKey(jwk: JWK, i: number): { kid: string; x: string } {
  const where = `verify: keys[${i}]`;
  if (typeof jwk !== 'object' || jwk === null) throw new TypeError(`${where} is not a JWK`);
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new TypeError(`${where} is not an OKP Ed25519 key`);
  if (jwk.d !== undefined) throw new TypeError(`${where} holds a private key`);
  if (typeof jwk.kid !== 'string' || jwk.kid.length === 0) throw new TypeError(`${where} has no kid`);
  if (typeof jwk.x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(jwk.x)) throw new TypeError(`${where} has a bad x`);
  if (jwk.use !== undefined && jwk.use !== 'sig') throw new TypeError(`${where} is not a signing key`);
  if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') throw new TypeError(`${where} has alg other than EdDSA`);
  return { kid: jwk.kid, x: jwk.x };
}

function isEd25519(key: CryptoKey): boolean {
  return key.type === 'public' && key.algorithm.name === 'Ed25519';
}

async function fromRemote(set: RemoteSet, kid: string): Promise<CryptoKey> {
  let key: CryptoKey;
  try {
    try {
      key = await set({ alg: 'EdDSA', kid });
    } catch (err) {
      // A JWKS may mark Ed25519 keys with the fully specified JWS alg "Ed25519" (RFC 9864). Look in the
      // set just fetched rather than asking the remote set again, which could fetch a second time.
      const snapshot = set.jwks();
      if (!(err instanceof errors.JWKSNoMatchingKey) || snapshot === undefined) throw err;
      key = await createLocalJWKSet(snapshot)({ alg: 'Ed25519', kid });
    }
  } catch (err) {
    if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) {
      throw new VerifyError('unknown_key', 'keyid: no such key', { cause: err });
    }
    throw new VerifyError('jwks_unavailable', 'jwks: could not be fetched', { cause: err });
  }
  if (!isEd25519(key)) throw new VerifyError('unknown_key', 'keyid: not an Ed25519 key');
  return key;
}

/**
 * Compiles a key source once: checks pinned keys (TypeError on a bad one) and
 * returns a resolver from `kid` to an Ed25519 public CryptoKey.
 * @throws TypeError when neither `jwksUrl` nor `keys` is given, or either is invalid.
 */
export function compileKeySource(opts: KeySourceOptions): KeyResolver {
  const pinned = new Map<string, Promise<CryptoKey>>();
  if (opts.keys !== undefined) {
    const list = Array.isArray(opts.keys) ? (opts.keys as readonly JWK[]) : (opts.keys as { keys: readonly JWK[] }).keys;
    if (!Array.isArray(list)) throw new TypeError('verify: keys must be an array of JWKs or a JWKS');
    list.forEach((jwk, i) => {
      const { kid, x } = pinnedKey(jwk, i);
      if (pinned.has(kid)) throw new TypeError(`verify: keys[${i}] repeats a kid`);
      pinned.set(kid, globalThis.crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x }, { name: 'Ed25519' }, false, ['verify']));
    });
    // An import failure (bad point) surfaces when the key is used; keep it from being an unhandled rejection now.
    for (const p of pinned.values()) p.catch(() => undefined);
  }
  let set: RemoteSet | undefined;
  if (opts.jwksUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(opts.jwksUrl);
    } catch (err) {
      throw new TypeError('verify: jwksUrl is not a URL', { cause: err });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TypeError('verify: jwksUrl must be http(s)');
    set = remoteSet(opts, url);
  }
  if (pinned.size === 0 && set === undefined) throw new TypeError('verify: give jwksUrl or keys');
  return async (kid: string): Promise<CryptoKey> => {
    const p = pinned.get(kid);
    if (p !== undefined) {
      try {
        return await p;
      } catch (err) {
        throw new VerifyError('unknown_key', 'keyid: pinned key unusable', { cause: err });
      }
    }
    if (set === undefined) throw new VerifyError('unknown_key', 'keyid: no such key');
    return fromRemote(set, kid);
  };
}
