/**
 * The `requestState` of a held MCP tool call (MCP revision 2026-07-28): when a
 * call waits for human approval, Bastion answers `{resultType: 'input_required',
 * inputRequests, requestState}` and the client retries the same call with that
 * opaque string once the approval is granted. The state is sealed by Bastion and
 * opened only by Bastion, so the client holds it without being able to read,
 * forge, stretch or move it:
 *
 * - AEAD: a JWE in compact serialization (RFC 7516 §7.1), `alg: dir`
 *   (RFC 7518 §4.5) with `enc: A256GCM` (RFC 7518 §5.3). The protected header,
 *   `kid` included, is the additional authenticated data.
 * - Key: per key id, 32 bytes from HKDF-SHA256 (RFC 5869) of the configured
 *   secret under a fixed salt and the info `bastion/mcp-request-state/v1`, so a
 *   secret shared with other uses never serves as this key directly.
 * - Claims: agent, end user, tool, argument digest, approval id, expiry and a
 *   single-use nonce; every binding field must match the retried call, and the
 *   nonce is remembered in the {@link NonceStore} so the call runs once.
 *
 * Refusals are values with a closed set of reasons ({@link RequestStateRefusal});
 * what a client sees of them is for the caller to decide, and none carries
 * the state's content or key material.
 */
import { CompactEncrypt, compactDecrypt, decodeProtectedHeader } from 'jose';
import type { NonceStore } from '../store/nonces.ts';
import { BastionError } from '../errors.ts';
import { constantTimeEqual, randomToken, webCrypto } from '../util/crypto.ts';

/** What the state is bound to; every field must match on open. */
export interface StateBinding {
  /** The authenticated agent's id. */
  readonly agent: string;
  /** The end user the agent acts for, or null when none. */
  readonly user: string | null;
  /** The tool's name as the agent calls it. */
  readonly tool: string;
  /** SHA-256 of the call's arguments, 64 lowercase hex characters. */
  readonly argsDigest: string;
}

/** The sealed claims: the binding plus the approval, nonce and expiry. */
export interface RequestStateClaims extends StateBinding {
  /** Format version. */
  readonly v: 1;
  /** The approval this state stands for; `''` for a continuation that needed none. */
  readonly approvalId: string;
  /**
   * Null: the call waits for an approval. A string: the call reached its upstream,
   * which asked the client for input; this is the upstream's own `requestState`
   * (`''` when it sent none), handed back to it byte-exact on the retry, never to
   * another agent, user or call.
   */
  readonly upstream: string | null;
  /** 16 random bytes, base64url (22 characters); accepted once. */
  readonly nonce: string;
  /** Expiry, epoch ms. */
  readonly exp: number;
}

/**
 * Why a state was refused:
 * - `state.malformed`: not a string, empty, longer than `maxLength`, not a
 *   well-formed JWE compact serialization, or claims of the wrong shape;
 * - `state.forged`: unknown or missing key id, another `alg`/`enc`, or the AEAD
 *   check failed (tampered, or sealed under a key no longer in the ring);
 * - `state.expired`: the expiry has passed;
 * - `state.rebound`: sealed for another agent, user, tool or arguments;
 * - `state.replayed`: its nonce was already used;
 * - `state.store_error`: the nonce store could not answer (fail closed).
 */
export type RequestStateRefusal = 'state.malformed' | 'state.forged' | 'state.expired' | 'state.rebound' | 'state.replayed' | 'state.store_error';

/** A sealing key: an id (the JWE `kid`) and its secret key material. */
export interface RequestStateKey {
  /** Key id, 1-128 characters, unique in the ring. */
  readonly kid: string;
  /** At least 32 bytes of key material; the AEAD key is derived from it. */
  readonly secret: Uint8Array;
}

/** Options of {@link RequestStateSealer}. */
export interface RequestStateSealerOptions {
  /** The key ring, current key first (it seals); older keys still open. Read on every seal and open, so rotation needs no restart. */
  readonly keys: () => Promise<readonly RequestStateKey[]>;
  /** Where used nonces are remembered (src/store/nonces.ts). */
  readonly nonces: NonceStore;
  /** Lifetime of a sealed state, in ms. */
  readonly ttlMs: number;
  /** Clock, epoch ms (default `Date.now`). */
  readonly now?: () => number;
  /** Longest state accepted or produced, in characters (default 4096). */
  readonly maxLength?: number;
}

/** The result of {@link RequestStateSealer.open}. */
export type OpenResult = { readonly ok: true; readonly claims: RequestStateClaims } | { readonly ok: false; readonly reason: RequestStateRefusal };

const ALG = 'dir';
const ENC = 'A256GCM';
/** HKDF salt (RFC 5869 §3.1: a fixed, non-secret salt is allowed). */
const HKDF_SALT = new TextEncoder().encode('bastion/hkdf-salt/v1');
/** HKDF info (RFC 5869 §3.2): domain separation from other uses of the secret. */
const HKDF_INFO = new TextEncoder().encode('bastion/mcp-request-state/v1');
const NONCE_KEY_PREFIX = 'mcp-state:';
/** Slack on top of the remaining lifetime for which a nonce is remembered, in ms. */
const NONCE_SLACK_MS = 1000;
const DEFAULT_MAX_LENGTH = 4096;
const MIN_SECRET_BYTES = 32;
const MAX_KID_LENGTH = 128;
const CLAIM_KEYS = ['agent', 'approvalId', 'argsDigest', 'exp', 'nonce', 'tool', 'upstream', 'user', 'v'] as const;
const SHA256_HEX = /^[0-9a-f]{64}$/;
const NONCE_FORMAT = /^[A-Za-z0-9_-]{22}$/;
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Seals and opens the `requestState` of held MCP tool calls. See the module
 * comment for the format (RFC 7516 JWE, RFC 7518 §4.5 `dir` + §5.3 `A256GCM`,
 * RFC 5869 HKDF key derivation).
 */
export class RequestStateSealer {
  readonly #keys: () => Promise<readonly RequestStateKey[]>;
  readonly #nonces: NonceStore;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #maxLength: number;

  /**
   * @throws RangeError when `ttlMs` or `maxLength` is not a positive safe integer.
   * @throws TypeError when `keys` is not a function or `nonces` has no `remember`.
   */
  constructor(opts: RequestStateSealerOptions) {
    if (typeof opts.keys !== 'function') throw new TypeError('RequestStateSealer: keys must be a function');
    if (typeof opts.nonces?.remember !== 'function') throw new TypeError('RequestStateSealer: nonces must be a NonceStore');
    if (!isPositiveInt(opts.ttlMs)) throw new RangeError('RequestStateSealer: ttlMs must be a positive safe integer (ms)');
    const maxLength = opts.maxLength ?? DEFAULT_MAX_LENGTH;
    if (!isPositiveInt(maxLength)) throw new RangeError('RequestStateSealer: maxLength must be a positive safe integer (characters)');
    this.#keys = opts.keys;
    this.#nonces = opts.nonces;
    this.#ttlMs = opts.ttlMs;
    this.#now = opts.now ?? Date.now;
    this.#maxLength = maxLength;
  }

  /**
   * Seals a state for the call `binding` under approval `approvalId`, with a
   * fresh nonce, expiring `ttlMs` from now, under the ring's first key.
   * @returns a JWE compact serialization (RFC 7516 §7.1), at most `maxLength` characters.
   * @throws TypeError when `binding` or `approvalId` has the wrong shape
   *   (argsDigest must be 64 lowercase hex characters).
   * @throws BastionError `ERR_CONFIG_INVALID` when the key ring is empty or invalid
   *   (a secret under 32 bytes, a bad or duplicate kid).
   * @throws RangeError when the sealed state would exceed `maxLength`.
   * Rejects with whatever `keys()` rejects with.
   */
  async seal(binding: StateBinding, approvalId: string, upstream: string | null = null): Promise<string> {
    assertBinding(binding, 'seal');
    if (typeof approvalId !== 'string' || (approvalId.length === 0 && upstream === null)) throw new TypeError('seal: approvalId must be a non-empty string (or empty with an upstream state)');
    if (upstream !== null && typeof upstream !== 'string') throw new TypeError('seal: upstream must be a string or null');
    const ring = checkRing(await this.#keys());
    const current = ring[0] as RequestStateKey;
    const claims: RequestStateClaims = {
      v: 1,
      agent: binding.agent,
      user: binding.user,
      tool: binding.tool,
      argsDigest: binding.argsDigest,
      approvalId,
      upstream,
      nonce: randomToken(16),
      exp: this.#now() + this.#ttlMs,
    };
    const state = await new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: ALG, enc: ENC, kid: current.kid })
      .encrypt(await deriveKey(current.secret));
    if (state.length > this.#maxLength) throw new RangeError('seal: sealed state exceeds maxLength');
    return state;
  }

  /**
   * Opens `state` (untrusted, from the client) for the retried call `binding`.
   * Checks, in order: type and length (`state.malformed`) → JWE syntax
   * (`state.malformed`) → key id, algorithms and AEAD tag (`state.forged`) →
   * claims shape (`state.malformed`) → expiry (`state.expired`) → all four
   * binding fields (`state.rebound`) → the nonce's first use, remembered for
   * the remaining lifetime + 1 s (`state.replayed`; `state.store_error` when
   * the store rejects). A state is accepted at most once.
   * Never throws or rejects for any `state`.
   * @throws TypeError when `binding` has the wrong shape (a caller's bug).
   * @throws BastionError `ERR_CONFIG_INVALID` when the key ring is empty or invalid.
   * Rejects with whatever `keys()` rejects with.
   */
  async open(state: unknown, binding: StateBinding): Promise<OpenResult> {
    assertBinding(binding, 'open');
    const ring = checkRing(await this.#keys());
    if (typeof state !== 'string' || state.length === 0 || state.length > this.#maxLength) return refuse('state.malformed');
    const parts = state.split('.');
    // Each segment must be canonical base64url: a decoder ignores the spare low
    // bits of a final partial group, so a non-canonical spelling of the IV, tag
    // or ciphertext would otherwise decrypt and make the same state accepted
    // under two spellings.
    if (parts.length !== 5 || !parts.every(isCanonicalBase64url)) return refuse('state.malformed');
    let header: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(state);
    } catch {
      return refuse('state.malformed');
    }
    if (header.alg !== ALG || header.enc !== ENC || typeof header.kid !== 'string') return refuse('state.forged');
    const kid = header.kid;
    const key = ring.find((k) => k.kid === kid);
    if (key === undefined) return refuse('state.forged');
    let plaintext: Uint8Array;
    try {
      ({ plaintext } = await compactDecrypt(state, await deriveKey(key.secret), {
        keyManagementAlgorithms: [ALG],
        contentEncryptionAlgorithms: [ENC],
      }));
    } catch {
      return refuse('state.forged');
    }
    const claims = parseClaims(plaintext);
    if (claims === undefined) return refuse('state.malformed');
    const now = this.#now();
    if (now >= claims.exp) return refuse('state.expired');
    if (claims.agent !== binding.agent || claims.user !== binding.user || claims.tool !== binding.tool || !constantTimeEqual(claims.argsDigest, binding.argsDigest)) {
      return refuse('state.rebound');
    }
    let first: boolean;
    try {
      first = await this.#nonces.remember(NONCE_KEY_PREFIX + claims.nonce, claims.exp - now + NONCE_SLACK_MS);
    } catch {
      return refuse('state.store_error');
    }
    if (first !== true) return refuse('state.replayed');
    return { ok: true, claims };
  }
}

function refuse(reason: RequestStateRefusal): OpenResult {
  return { ok: false, reason };
}

function isPositiveInt(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0;
}

function isCanonicalBase64url(segment: string): boolean {
  return BASE64URL.test(segment) && Buffer.from(segment, 'base64url').toString('base64url') === segment;
}

/** The AEAD key for one secret: HKDF-SHA256 (RFC 5869) → 32 bytes, the A256GCM key (RFC 7518 §5.3). */
async function deriveKey(secret: Uint8Array): Promise<Uint8Array> {
  const ikm = await webCrypto.subtle.importKey('raw', new Uint8Array(secret), 'HKDF', false, ['deriveBits']);
  const bits = await webCrypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info: HKDF_INFO }, ikm, 256);
  return new Uint8Array(bits);
}

function checkRing(ring: readonly RequestStateKey[]): readonly RequestStateKey[] {
  if (!Array.isArray(ring) || ring.length === 0) throw new BastionError('ERR_CONFIG_INVALID', 'request state: key ring is empty');
  const seen = new Set<string>();
  for (const [i, key] of ring.entries()) {
    const k = key as Partial<RequestStateKey> | null;
    if (typeof k?.kid !== 'string' || k.kid.length === 0 || k.kid.length > MAX_KID_LENGTH) {
      throw new BastionError('ERR_CONFIG_INVALID', `request state: keys[${i}].kid must be a string of 1-${MAX_KID_LENGTH} characters`, { detail: { index: i } });
    }
    if (!(k.secret instanceof Uint8Array) || k.secret.length < MIN_SECRET_BYTES) {
      throw new BastionError('ERR_CONFIG_INVALID', `request state: keys[${i}].secret must be at least ${MIN_SECRET_BYTES} bytes`, { detail: { index: i, kid: k.kid } });
    }
    if (seen.has(k.kid)) throw new BastionError('ERR_CONFIG_INVALID', `request state: keys[${i}].kid is a duplicate`, { detail: { index: i, kid: k.kid } });
    seen.add(k.kid);
  }
  return ring;
}

function assertBinding(binding: StateBinding, where: string): void {
  const b = binding as Partial<StateBinding> | null;
  if (typeof b !== 'object' || b === null) throw new TypeError(`${where}: binding must be an object`);
  if (typeof b.agent !== 'string' || b.agent.length === 0) throw new TypeError(`${where}: binding.agent must be a non-empty string`);
  if (b.user !== null && typeof b.user !== 'string') throw new TypeError(`${where}: binding.user must be a string or null`);
  if (typeof b.tool !== 'string' || b.tool.length === 0) throw new TypeError(`${where}: binding.tool must be a non-empty string`);
  if (typeof b.argsDigest !== 'string' || !SHA256_HEX.test(b.argsDigest)) throw new TypeError(`${where}: binding.argsDigest must be 64 lowercase hex characters`);
}

/** The claims, or undefined unless `plaintext` is a JSON object with exactly the claim keys, each of its type. */
function parseClaims(plaintext: Uint8Array): RequestStateClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plaintext));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value).sort();
  if (keys.length !== CLAIM_KEYS.length || keys.some((k, i) => k !== CLAIM_KEYS[i])) return undefined;
  const c = value as Record<string, unknown>;
  if (c.v !== 1) return undefined;
  if (typeof c.agent !== 'string' || c.agent.length === 0) return undefined;
  if (c.user !== null && typeof c.user !== 'string') return undefined;
  if (typeof c.tool !== 'string' || c.tool.length === 0) return undefined;
  if (typeof c.argsDigest !== 'string' || !SHA256_HEX.test(c.argsDigest)) return undefined;
  if (c.upstream !== null && typeof c.upstream !== 'string') return undefined;
  if (typeof c.approvalId !== 'string' || (c.approvalId.length === 0 && c.upstream === null)) return undefined;
  if (typeof c.nonce !== 'string' || !NONCE_FORMAT.test(c.nonce)) return undefined;
  if (!isPositiveInt(c.exp)) return undefined;
  return {
    v: 1,
    agent: c.agent,
    user: c.user,
    tool: c.tool,
    argsDigest: c.argsDigest,
    approvalId: c.approvalId,
    upstream: c.upstream,
    nonce: c.nonce,
    exp: c.exp,
  };
}
