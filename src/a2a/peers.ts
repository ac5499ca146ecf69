/**
 * Registering agent-to-agent peers (`bastion peers add`), and their tokens.
 *
 * Two bearer tokens per pair of instances, one each way:
 * - the **inbound** token is generated here when a peer is added, shown once to
 *   the admin (who hands it to the peer's admin) and stored only as its SHA-256
 *   digest; the peer presents it on `POST /a2a/inbound`;
 * - the **outbound** token is the one the peer generated for us: we present it
 *   on the peer's inbound endpoint. It is stored sealed with the vault's KEK
 *   (AES-256-GCM envelope), bound by its AAD to the peer's name.
 *
 * The tokens only say which registered peer is calling; what a message says is
 * proved by its signature (./jws.ts) against the peer's keys registered here:
 * a JWKS URL, or pinned public keys.
 */
import { calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import type { PeerStore, StoredPeer } from './peer-store.ts';
import { randomToken, sha256Hex } from '../util/crypto.ts';
import { Secret } from '../util/secret.ts';
import { vaultDecryptError } from '../vault/errors.ts';
import { openSecret, sealSecret, type SealedSecret } from '../vault/envelope.ts';
import type { Kek } from '../vault/kek.ts';
import { PEER_NAME } from './message.ts';

/** Prefix of generated inbound tokens (so secret scanners can recognize them). */
export const PEER_TOKEN_PREFIX = 'bst_a2a_';
/** Most pinned keys per peer. */
const MAX_PINNED_KEYS = 8;
/** Longest outbound token accepted, in characters. */
export const MAX_PEER_TOKEN_LENGTH = 512;

/** What `bastion peers add` is given. */
export interface NewPeer {
  readonly name: string;
  /** The peer's inbound endpoint. */
  readonly url: string;
  /** The peer's sender id (its `identity.issuer`). */
  readonly sender: string;
  /** Exactly one of `jwksUrl` and `publicKeys`. */
  readonly jwksUrl?: string;
  /** A public JWK, or a JWKS `{keys: [...]}`, of Ed25519 keys. */
  readonly publicKeys?: unknown;
  /** The token we present to the peer (its inbound token for us); absent: set later with `bastion peers token`. */
  readonly outboundToken?: Secret;
}

/** A peer as `bastion peers list` shows it: never a token. */
export interface PeerInfo {
  readonly name: string;
  readonly url: string;
  readonly sender: string;
  readonly keys: { readonly jwksUrl: string } | { readonly pinned: readonly string[] };
  readonly outboundToken: boolean;
  readonly createdAt: string;
}

/** The SHA-256 hex digest under which an inbound token is stored and looked up. */
export function peerTokenDigest(token: string): string {
  return sha256Hex(token);
}

/** @throws RangeError naming the field when `name` is not a peer name. */
export function assertPeerName(name: string): void {
  if (!PEER_NAME.test(name)) throw new RangeError('peer NAME must be 1-64 of A-Z a-z 0-9 _ . -');
}

/**
 * An http(s) URL without credentials or fragment (the peer's endpoint or JWKS).
 * @throws RangeError naming `field`.
 */
export function parsePeerUrl(text: string, field: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`${field} must be an absolute http(s) URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`${field} must be an http(s) URL`);
  if (url.username !== '' || url.password !== '') throw new RangeError(`${field} must not hold credentials`);
  if (url.hash !== '') throw new RangeError(`${field} must not have a fragment`);
  return url;
}

/**
 * Pinned keys as a JWKS of Ed25519 public keys, each with a `kid` (its RFC 7638
 * thumbprint when the JWK has none). Private keys are refused.
 * @throws RangeError naming what is wrong.
 */
export async function pinnedKeys(input: unknown): Promise<{ keys: JWK[] }> {
  const list: unknown[] =
    typeof input === 'object' && input !== null && Array.isArray((input as { keys?: unknown }).keys) ? ((input as { keys: unknown[] }).keys) : [input];
  if (list.length === 0 || list.length > MAX_PINNED_KEYS) throw new RangeError(`--key must hold 1 to ${MAX_PINNED_KEYS} keys`);
  const keys: JWK[] = [];
  for (const [i, k] of list.entries()) {
    const at = list.length === 1 ? '--key' : `--key keys[${i}]`;
    if (typeof k !== 'object' || k === null || Array.isArray(k)) throw new RangeError(`${at} must be a JWK object`);
    const jwk = k as Record<string, unknown>;
    if ('d' in jwk) throw new RangeError(`${at} is a private key: pin the peer's public key only`);
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(jwk.x)) {
      throw new RangeError(`${at} must be an Ed25519 public JWK (kty OKP, crv Ed25519, x)`);
    }
    if (jwk.alg !== undefined && jwk.alg !== 'EdDSA' && jwk.alg !== 'Ed25519') throw new RangeError(`${at} alg must be EdDSA`);
    if (jwk.use !== undefined && jwk.use !== 'sig') throw new RangeError(`${at} use must be sig`);
    if (jwk.kid !== undefined && (typeof jwk.kid !== 'string' || jwk.kid.length === 0 || jwk.kid.length > 256)) throw new RangeError(`${at} kid must be a string of 1-256 characters`);
    const pub: JWK = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
    try {
      await importJWK(pub, 'EdDSA');
    } catch {
      throw new RangeError(`${at} is not a valid Ed25519 public key`);
    }
    const kid = typeof jwk.kid === 'string' ? jwk.kid : await calculateJwkThumbprint(pub, 'sha256');
    if (keys.some((o) => o.kid === kid)) throw new RangeError(`${at} kid ${JSON.stringify(kid)} appears twice`);
    keys.push({ ...pub, kid, alg: 'EdDSA', use: 'sig' });
  }
  return { keys };
}

/** Seals the outbound token for peer `name` (AAD bound to the name). */
export function sealPeerToken(kek: Kek, name: string, token: Secret): string {
  return JSON.stringify(sealSecret(kek, tokenRef(name), token));
}

/** Opens a peer's sealed outbound token. @throws BastionError `ERR_VAULT_DECRYPT`. */
export function openPeerToken(kek: Kek, name: string, sealed: string): Secret {
  let parsed: SealedSecret;
  try {
    parsed = JSON.parse(sealed) as SealedSecret;
  } catch {
    throw vaultDecryptError(tokenRef(name));
  }
  return openSecret(kek, tokenRef(name), parsed);
}

function tokenRef(name: string): { id: string; version: number } {
  return { id: `a2a-peer-outbound:${name}`, version: 1 };
}

/** @throws RangeError when an outbound token is empty, too long, or holds whitespace or control characters. */
export function assertPeerToken(token: Secret, field: string): void {
  const t = token.reveal();
  if (t.length === 0 || t.length > MAX_PEER_TOKEN_LENGTH || !/^[!-~]+$/.test(t)) {
    throw new RangeError(`${field} must be 1-${MAX_PEER_TOKEN_LENGTH} printable ASCII characters without spaces`);
  }
}

/**
 * Registers a peer and returns it with the freshly generated inbound token
 * (shown once; only its digest is stored), or `exists` when a peer has the
 * name already. `kek` is needed only with an outbound token.
 * @throws RangeError for a bad field (named in the message); BastionError `ERR_STORE`.
 */
export async function registerPeer(store: PeerStore, kek: Kek | undefined, input: NewPeer, now: number = Date.now()): Promise<{ peer: StoredPeer; inboundToken: Secret } | 'exists'> {
  assertPeerName(input.name);
  const url = parsePeerUrl(input.url, '--url');
  if (typeof input.sender !== 'string' || input.sender.length === 0 || input.sender.length > 512) throw new RangeError('--sender must be 1-512 characters');
  if ((input.jwksUrl === undefined) === (input.publicKeys === undefined)) throw new RangeError('exactly one of --jwks and --key is required');
  const jwksUrl = input.jwksUrl !== undefined ? parsePeerUrl(input.jwksUrl, '--jwks').href : null;
  const publicJwks = input.publicKeys !== undefined ? JSON.stringify(await pinnedKeys(input.publicKeys)) : null;
  let outboundTokenSealed: string | null = null;
  if (input.outboundToken !== undefined) {
    assertPeerToken(input.outboundToken, 'the outbound token');
    if (kek === undefined) throw new TypeError('registerPeer: an outbound token needs the vault key');
    outboundTokenSealed = sealPeerToken(kek, input.name, input.outboundToken);
  }
  const inboundToken = new Secret(PEER_TOKEN_PREFIX + randomToken(32));
  const peer: StoredPeer = {
    name: input.name,
    url: url.href,
    sender: input.sender,
    jwksUrl,
    publicJwks,
    inboundTokenDigest: peerTokenDigest(inboundToken.reveal()),
    outboundTokenSealed,
    createdAt: now,
  };
  // A digest collision of two fresh 256-bit tokens is not a case to handle: a false here is the name.
  if (!(await store.addPeer(peer))) return 'exists';
  return { peer, inboundToken };
}

/** The listing form of a stored peer. */
export function peerInfo(p: StoredPeer): PeerInfo {
  const pinned = p.publicJwks !== null ? ((JSON.parse(p.publicJwks) as { keys: JWK[] }).keys.map((k) => k.kid ?? '?')) : [];
  return {
    name: p.name,
    url: p.url,
    sender: p.sender,
    keys: p.jwksUrl !== null ? { jwksUrl: p.jwksUrl } : { pinned },
    outboundToken: p.outboundTokenSealed !== null,
    createdAt: new Date(p.createdAt).toISOString(),
  };
}
