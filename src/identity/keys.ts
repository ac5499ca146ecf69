/**
 * Bastion's identity keys: Ed25519 key pairs in the store (purpose `identity`),
 * private keys sealed by the vault's key-encryption key. The current key signs
 * requests to tools (RFC 9421), per-call JWTs and agent-to-agent JWS; the public
 * keys still inside their rotation grace are published as a JWKS (RFC 7517) at
 * `/.well-known/jwks.json`.
 *
 * Key ids are RFC 7638 JWK thumbprints (base64url SHA-256), so a verifier can
 * recompute a `kid` from the key it names. A key's retirement time is the
 * creation time of the key that replaced it; it stays published for
 * `rotationGraceMs` after that and is then dropped from the JWKS, so verifiers
 * that fetch the JWKS stop accepting it.
 */
import { calculateJwkThumbprint, exportJWK, importPKCS8, importSPKI, type JWK } from 'jose';
import { SEALED_KEY_PREFIX, type KeyProtector } from '../audit/log.ts';
import { BastionError } from '../errors.ts';
import { ed25519Signer, generateEd25519 } from '../util/crypto.ts';
import type { KeyStore, StoredKey } from './key-store.ts';

/** A public JWK as published: OKP / Ed25519 (RFC 8037) with `kid`, `alg: EdDSA`, `use: sig`. */
export interface PublicJwk extends JWK {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly use: 'sig';
}

/** One identity key as `bastion keys list` shows it. Times are epoch ms. */
export interface IdentityKeyInfo {
  readonly kid: string;
  readonly createdAt: number;
  /** When a newer key replaced it; null for the current key. */
  readonly retiredAt: number | null;
  /** `current` signs; `grace` still verifies (in the JWKS); `expired` is no longer published. */
  readonly status: 'current' | 'grace' | 'expired';
  /** End of the grace period (epoch ms), or null for the current key. */
  readonly graceUntil: number | null;
}

/** The current signing key, opened. */
export interface SigningKey {
  readonly kid: string;
  /** PKCS#8 PEM: never log or return it. */
  readonly privateKeyPem: string;
  /** The same key for jose (non-extractable). */
  readonly cryptoKey: Awaited<ReturnType<typeof importPKCS8>>;
  /** Raw Ed25519 signature (64 bytes) of `data` with this key. */
  readonly signBytes: (data: Uint8Array) => Uint8Array;
}

/** Options of {@link IdentityKeys.open}. */
export interface IdentityKeysOptions {
  /** Seals new private keys and opens sealed ones (the vault's KEK). Without it a sealed key cannot be used. */
  readonly protector?: KeyProtector;
  /** How long a replaced key stays published, in ms. */
  readonly rotationGraceMs: number;
  /** How long the current key and JWKS are cached before re-reading the store (another process may rotate), in ms. Default 5000. */
  readonly refreshMs?: number;
  /** Clock, epoch ms. */
  readonly now?: () => number;
}

/** The RFC 7638 thumbprint of an Ed25519 public key in SPKI PEM: the key's `kid`. */
export async function ed25519Kid(publicKeyPem: string): Promise<string> {
  const jwk = await exportJWK(await importSPKI(publicKeyPem, 'EdDSA', { extractable: true }));
  return calculateJwkThumbprint(jwk, 'sha256');
}

/** Public JWK of an SPKI PEM Ed25519 key, with its thumbprint `kid`. */
export async function publicJwkOf(publicKeyPem: string): Promise<PublicJwk> {
  const jwk = await exportJWK(await importSPKI(publicKeyPem, 'EdDSA', { extractable: true }));
  if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new BastionError('ERR_SIGNING', 'identity: stored key is not Ed25519');
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, kid, alg: 'EdDSA', use: 'sig' };
}

/**
 * The identity key ring over a store. Create with {@link IdentityKeys.open}, which
 * makes the first key when the store has none.
 */
export class IdentityKeys {
  readonly #store: KeyStore;
  readonly #opts: IdentityKeysOptions;
  readonly #now: () => number;
  #signing: { key: SigningKey; storedId: string; at: number } | undefined;
  #jwks: { value: { keys: PublicJwk[] }; at: number } | undefined;
  #derivation: { value: { kid: string; secret: Uint8Array }[]; at: number } | undefined;

  private constructor(store: KeyStore, opts: IdentityKeysOptions) {
    this.#store = store;
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Opens the key ring, creating the first key when there is none.
   * @throws BastionError `ERR_STORE`; `ERR_VAULT_KEY` when the key is sealed and no protector is given;
   *   `ERR_VAULT_DECRYPT` when the protector cannot open it.
   */
  static async open(store: KeyStore, opts: IdentityKeysOptions): Promise<IdentityKeys> {
    const ring = new IdentityKeys(store, opts);
    if ((await store.getKey('identity')) === undefined) await ring.rotate();
    await ring.signingKey();
    return ring;
  }

  /**
   * The key ring without creating or opening a key: for listing, publishing
   * and rotating (which seals the new key with `protector`, required then).
   */
  static view(store: KeyStore, opts: IdentityKeysOptions): IdentityKeys {
    return new IdentityKeys(store, opts);
  }

  /**
   * Makes a new current key; the previous one enters its grace period.
   * Returns the new key's info.
   * @throws BastionError `ERR_STORE`.
   */
  async rotate(): Promise<IdentityKeyInfo> {
    const pair = generateEd25519();
    const jwk = await publicJwkOf(pair.publicKeyPem);
    const createdAt = Math.max(this.#now(), ...(await this.#store.listKeys('identity')).map((k) => k.createdAt + 1));
    const stored: StoredKey = {
      id: jwk.kid,
      purpose: 'identity',
      alg: 'Ed25519',
      publicKeyPem: pair.publicKeyPem,
      privateKeyPem: this.#opts.protector ? SEALED_KEY_PREFIX + this.#opts.protector.seal(pair.privateKeyPem, jwk.kid) : pair.privateKeyPem,
      createdAt,
    };
    await this.#store.putKey(stored);
    this.#signing = undefined;
    this.#jwks = undefined;
    return { kid: jwk.kid, createdAt, retiredAt: null, status: 'current', graceUntil: null };
  }

  /** Every identity key with its status, oldest first. @throws BastionError `ERR_STORE`. */
  async list(): Promise<IdentityKeyInfo[]> {
    const keys = await this.#store.listKeys('identity');
    const current = await this.#store.getKey('identity');
    const now = this.#now();
    return keys.map((k, i) => {
      const isCurrent = k.id === current?.id;
      const next = keys.slice(i + 1).find((n) => n.createdAt >= k.createdAt);
      const retiredAt = isCurrent ? null : (next?.createdAt ?? k.createdAt);
      const graceUntil = retiredAt === null ? null : retiredAt + this.#opts.rotationGraceMs;
      const status = isCurrent ? 'current' : (graceUntil as number) > now ? 'grace' : 'expired';
      return { kid: k.id, createdAt: k.createdAt, retiredAt, status, graceUntil };
    });
  }

  /**
   * The JWKS (RFC 7517 §5): the current key and those in their grace period.
   * Cached for `refreshMs`. @throws BastionError `ERR_STORE`.
   */
  async jwks(): Promise<{ keys: PublicJwk[] }> {
    const now = this.#now();
    if (this.#jwks && now - this.#jwks.at < (this.#opts.refreshMs ?? 5000)) return this.#jwks.value;
    const infos = await this.list();
    const stored = new Map((await this.#store.listKeys('identity')).map((k) => [k.id, k]));
    const keys: PublicJwk[] = [];
    // Newest first: verifiers that try keys in order find the likely one first.
    for (const info of infos.filter((k) => k.status !== 'expired').reverse()) {
      const k = stored.get(info.kid);
      if (k) keys.push(await publicJwkOf(k.publicKeyPem));
    }
    this.#jwks = { value: { keys }, at: now };
    return this.#jwks.value;
  }

  /**
   * Key material for symmetric keys derived from the identity key ring (the
   * sealed `requestState` of MCP 2026-07-28 held calls, src/mcp/request-state.ts,
   * derives its AEAD keys from it with HKDF-SHA256 under its own `info`, RFC 5869
   * §3.2): the PKCS#8 PEM bytes of each key not yet expired, current first,
   * with its kid. Every instance on the same store derives the same keys; a key
   * past its grace period no longer opens what was sealed under it.
   * @throws BastionError `ERR_STORE`, `ERR_VAULT_KEY`, `ERR_VAULT_DECRYPT`.
   */
  async derivationSecrets(): Promise<{ kid: string; secret: Uint8Array }[]> {
    const now = this.#now();
    if (this.#derivation && now - this.#derivation.at < (this.#opts.refreshMs ?? 5000)) return this.#derivation.value;
    const infos = await this.list();
    const stored = new Map((await this.#store.listKeys('identity')).map((k) => [k.id, k]));
    const out: { kid: string; secret: Uint8Array }[] = [];
    for (const info of infos.filter((k) => k.status !== 'expired').reverse()) {
      const k = stored.get(info.kid);
      if (!k) continue;
      let pem = k.privateKeyPem;
      if (pem.startsWith(SEALED_KEY_PREFIX)) {
        if (!this.#opts.protector) throw new BastionError('ERR_VAULT_KEY', 'identity: the key is sealed and no vault key is loaded');
        pem = this.#opts.protector.open(pem.slice(SEALED_KEY_PREFIX.length), k.id);
      }
      out.push({ kid: k.id, secret: new TextEncoder().encode(pem) });
    }
    this.#derivation = { value: out, at: now };
    return out;
  }

  /**
   * The current signing key, opened; re-read from the store every `refreshMs`
   * so a rotation by another process is picked up.
   * @throws BastionError `ERR_SIGNING` (no key), `ERR_VAULT_KEY`, `ERR_VAULT_DECRYPT`, `ERR_STORE`.
   */
  async signingKey(): Promise<SigningKey> {
    const now = this.#now();
    const cached = this.#signing;
    if (cached && now - cached.at < (this.#opts.refreshMs ?? 5000)) return cached.key;
    const stored = await this.#store.getKey('identity');
    if (stored === undefined) throw new BastionError('ERR_SIGNING', 'identity: no signing key in the store');
    if (cached && cached.storedId === stored.id) {
      this.#signing = { ...cached, at: now };
      return cached.key;
    }
    let pem = stored.privateKeyPem;
    if (pem.startsWith(SEALED_KEY_PREFIX)) {
      if (!this.#opts.protector) throw new BastionError('ERR_VAULT_KEY', 'identity: the signing key is sealed and no vault key is loaded');
      pem = this.#opts.protector.open(pem.slice(SEALED_KEY_PREFIX.length), stored.id);
    }
    const key: SigningKey = { kid: stored.id, privateKeyPem: pem, cryptoKey: await importPKCS8(pem, 'EdDSA'), signBytes: ed25519Signer(pem) };
    this.#signing = { key, storedId: stored.id, at: now };
    this.#jwks = undefined;
    return key;
  }

}
