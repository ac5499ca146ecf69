/**
 * The local certificate authority that lets the network door intercept TLS for
 * hosts with a bound secret: a CA created once per install, and short-lived
 * leaf certificates issued on the fly for each intercepted host.
 *
 * Pure: nothing here reads or writes a file. The store keeps the
 * {@link LocalCaMaterial} (the key as a {@link Secret}); the proxy asks a
 * {@link LeafIssuer} for a `tls.SecureContext` per SNI name.
 *
 * Profile (RFC 5280, and the CA/Browser Forum Baseline Requirements where a
 * client enforces them on a user-installed root):
 * - every key is ECDSA P-256, every signature ecdsa-with-SHA256 (RFC 5758 §3.2);
 * - serials are 128 random bits, positive (RFC 5280 §4.1.2.2, BR §7.1);
 * - notBefore is one hour back, to absorb clock skew between Bastion and its clients;
 * - the CA: basicConstraints cA, pathLen 0, critical (§4.2.1.9); keyUsage
 *   keyCertSign + cRLSign, critical (§4.2.1.3); subjectKeyIdentifier (§4.2.1.2);
 * - a leaf: subjectAltName with the one dNSName or iPAddress (§4.2.1.6, which
 *   clients match, RFC 6125 / RFC 9525), CN the same host, basicConstraints cA
 *   false, keyUsage digitalSignature (critical), extKeyUsage serverAuth
 *   (§4.2.1.12), authorityKeyIdentifier = the CA's subjectKeyIdentifier
 *   (§4.2.1.1), at most 397 days long (Apple's and Chrome's limit for TLS server
 *   certificates).
 * The profile passes `openssl verify -x509_strict`, which Python 3.13's default
 * context enables.
 */
// @peculiar/x509 resolves its algorithm providers through tsyringe, which needs
// the Reflect metadata API at import time: this import must stay first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import ipaddr from 'ipaddr.js';
import { isIP } from 'node:net';
import { createSecureContext, type SecureContext } from 'node:tls';
import { BastionError } from '../errors.ts';
import { randomKeyBytes, webCrypto, type WebCryptoKey } from '../util/crypto.ts';
import { Secret } from '../util/secret.ts';

x509.cryptoProvider.set(webCrypto);

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const EC_KEY = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const EC_SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Validity of a new CA, in days (about ten years). */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;
/** Validity of a leaf certificate, in days. */
export const DEFAULT_LEAF_VALIDITY_DAYS = 7;
/** Longest leaf validity accepted, in days: the 398-day ceiling of Apple and Chrome, less the hour of backdating. */
export const MAX_LEAF_VALIDITY_DAYS = 397;
/** How many hosts' leaf contexts a {@link LeafIssuer} keeps (least recently used evicted first). */
export const DEFAULT_LEAF_CACHE_SIZE = 1024;
/** A cached leaf this close to its notAfter is issued anew, in ms. */
export const LEAF_RENEW_BEFORE_MS = DAY_MS;
/** How far back notBefore is set, to absorb client clock skew, in ms. */
export const BACKDATE_MS = HOUR_MS;

/** A CA certificate and its private key, as the store keeps them. */
export interface LocalCaMaterial {
  /** The self-signed CA certificate, PEM (`-----BEGIN CERTIFICATE-----`). Public: clients install it as a trust anchor. */
  readonly certPem: string;
  /** The CA's ECDSA P-256 private key, PKCS#8 PEM (RFC 5208, RFC 5915), redacted when printed. */
  readonly keyPem: Secret;
}

/** Options of {@link createLocalCa}. */
export interface CreateLocalCaOptions {
  /** The CA's subject CN, 1-64 characters (RFC 5280 ub-common-name); default `Bastion local CA <8 hex>`, random per install. */
  readonly commonName?: string;
  /** The creation time, ms since the epoch; default `Date.now()`. */
  readonly now?: number;
  /** Validity from `now`, in whole days, 1-36500; default {@link DEFAULT_CA_VALIDITY_DAYS}. */
  readonly validityDays?: number;
}

/**
 * Creates a new local CA: a fresh ECDSA P-256 key and a self-signed CA
 * certificate for it (profile in the module docs). Its CN carries a random id,
 * so the roots of two installs are told apart in a trust store.
 *
 * Throws `TypeError`/`RangeError` on a bad option (the option's name in the
 * message).
 */
export async function createLocalCa(opts: CreateLocalCaOptions = {}): Promise<LocalCaMaterial> {
  const now = opts.now ?? Date.now();
  assertTime(now, 'createLocalCa: now');
  const validityDays = opts.validityDays ?? DEFAULT_CA_VALIDITY_DAYS;
  assertIntegerIn(validityDays, 1, 36_500, 'createLocalCa: validityDays');
  const commonName = opts.commonName ?? `Bastion local CA ${randomKeyBytes(16).toString('hex').slice(0, 8)}`;
  if (typeof commonName !== 'string' || commonName.length < 1 || commonName.length > 64 || hasControlChar(commonName)) {
    throw new RangeError('createLocalCa: commonName must be 1-64 characters without control characters');
  }

  const keys = (await webCrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPairLike;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ CN: [commonName] }, { O: ['Bastion'] }],
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityDays * DAY_MS),
    keys,
    signingAlgorithm: EC_SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webCrypto),
    ],
  });
  const pkcs8 = await webCrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: new Secret(x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')) };
}

/** Options of {@link LeafIssuer.open}. */
export interface LeafIssuerOptions {
  /** How many hosts' contexts to keep, 1-1,000,000; default {@link DEFAULT_LEAF_CACHE_SIZE}. */
  readonly cacheSize?: number;
  /** Leaf validity from issuance, in whole days, 2-{@link MAX_LEAF_VALIDITY_DAYS}; default {@link DEFAULT_LEAF_VALIDITY_DAYS}. */
  readonly leafValidityDays?: number;
  /** The clock, ms since the epoch; default `Date.now`. */
  readonly now?: () => number;
}

/** One issued leaf certificate. */
export interface LeafMaterial {
  /** The leaf certificate, PEM. */
  readonly certPem: string;
  /** The chain a server sends: the leaf, then the CA certificate, PEM. */
  readonly chainPem: string;
  /** The leaf's ECDSA P-256 private key, PKCS#8 PEM. */
  readonly keyPem: Secret;
  /** The leaf's notAfter, ms since the epoch. */
  readonly notAfterMs: number;
}

interface CacheEntry {
  readonly notAfterMs: number;
  readonly context: Promise<SecureContext>;
}

interface CryptoKeyPairLike {
  readonly publicKey: WebCryptoKey;
  readonly privateKey: WebCryptoKey;
}

/**
 * Issues leaf certificates under a local CA and keeps their TLS contexts in an
 * LRU cache keyed by normalized host. Create with {@link LeafIssuer.open}.
 */
export class LeafIssuer {
  readonly #caCert: x509.X509Certificate;
  readonly #caCertPem: string;
  readonly #caKey: WebCryptoKey;
  readonly #caKeyId: string;
  readonly #caNotAfterMs: number;
  readonly #cacheSize: number;
  readonly #leafValidityMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();

  private constructor(
    caCert: x509.X509Certificate,
    caKey: WebCryptoKey,
    caKeyId: string,
    cacheSize: number,
    leafValidityDays: number,
    now: () => number,
  ) {
    this.#caCert = caCert;
    this.#caCertPem = caCert.toString('pem');
    this.#caKey = caKey;
    this.#caKeyId = caKeyId;
    this.#caNotAfterMs = caCert.notAfter.getTime();
    this.#cacheSize = cacheSize;
    this.#leafValidityMs = leafValidityDays * DAY_MS;
    this.#now = now;
  }

  /**
   * Opens an issuer over `material`. Checks that the certificate is one PEM
   * X.509 certificate of a CA (basicConstraints cA true; keyUsage, when present,
   * with keyCertSign: RFC 5280 §4.2.1.3, §4.2.1.9), inside its validity period,
   * with an ECDSA P-256 key, and that `keyPem` is the PKCS#8 private half of
   * that key (proven by signing and verifying a challenge).
   *
   * Throws `BastionError('ERR_CA')` when any check fails (the message never
   * holds key material), `TypeError`/`RangeError` on a malformed argument or
   * option.
   */
  static async open(material: LocalCaMaterial, opts: LeafIssuerOptions = {}): Promise<LeafIssuer> {
    if (typeof material !== 'object' || material === null || typeof material.certPem !== 'string' || !(material.keyPem instanceof Secret)) {
      throw new TypeError('LeafIssuer.open: material must be { certPem: string, keyPem: Secret }');
    }
    const cacheSize = opts.cacheSize ?? DEFAULT_LEAF_CACHE_SIZE;
    assertIntegerIn(cacheSize, 1, 1_000_000, 'LeafIssuer.open: cacheSize');
    const leafValidityDays = opts.leafValidityDays ?? DEFAULT_LEAF_VALIDITY_DAYS;
    // At least two days, or every cached leaf would already be inside its renewal window.
    assertIntegerIn(leafValidityDays, 2, MAX_LEAF_VALIDITY_DAYS, 'LeafIssuer.open: leafValidityDays');
    const now = opts.now ?? Date.now;
    if (typeof now !== 'function') throw new TypeError('LeafIssuer.open: now must be a function');

    const caCert = parseCaCertificate(material.certPem);
    const nowMs = now();
    assertTime(nowMs, 'LeafIssuer.open: now()');
    if (nowMs < caCert.notBefore.getTime() || nowMs >= caCert.notAfter.getTime()) {
      throw new BastionError('ERR_CA', 'CA certificate is outside its validity period', {
        detail: { notBefore: caCert.notBefore.toISOString(), notAfter: caCert.notAfter.toISOString() },
      });
    }
    let caPublicKey: WebCryptoKey;
    try {
      caPublicKey = (await caCert.publicKey.export(EC_KEY, ['verify'], webCrypto)) as WebCryptoKey;
    } catch (err) {
      throw new BastionError('ERR_CA', 'CA certificate key is not ECDSA P-256', { cause: err });
    }
    const caKey = await importCaKey(material.keyPem);
    const challenge = randomKeyBytes(32);
    const signature = await webCrypto.subtle.sign(EC_SIGN, caKey, challenge);
    if (!(await webCrypto.subtle.verify(EC_SIGN, caPublicKey, signature, challenge))) {
      throw new BastionError('ERR_CA', 'CA certificate and private key do not match');
    }
    const ski = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
    const caKeyId = ski?.keyId ?? (await x509.SubjectKeyIdentifierExtension.create(caCert.publicKey, false, webCrypto)).keyId;
    return new LeafIssuer(caCert, caKey, caKeyId, cacheSize, leafValidityDays, now);
  }

  /** The CA certificate, PEM: what clients must trust. */
  get caCertPem(): string {
    return this.#caCertPem;
  }

  /**
   * A TLS server context for `host` (an SNI name or IP literal): the leaf and
   * CA certificates as the chain, and the leaf key. Cached per normalized host
   * (LRU, `cacheSize` hosts); a cached leaf within {@link LEAF_RENEW_BEFORE_MS}
   * of its notAfter is issued anew. Concurrent calls for one host share one
   * issuance; a failed issuance is not cached.
   *
   * Throws `TypeError` when `host` is not a DNS name or IP literal (see
   * {@link normalizeLeafHost}); rejects with `BastionError('ERR_CA')` when the
   * CA has expired or issuance fails.
   */
  secureContext(host: string): Promise<SecureContext> {
    const target = normalizeLeafHost(host);
    const nowMs = this.#now();
    const hit = this.#cache.get(target.host);
    if (hit !== undefined) {
      this.#cache.delete(target.host);
      // Re-issuing helps only when the new leaf would outlive the cached one (not when both end at the CA's notAfter).
      const renew = hit.notAfterMs - nowMs <= LEAF_RENEW_BEFORE_MS && this.#leafNotAfter(nowMs) > hit.notAfterMs;
      if (!renew && nowMs < hit.notAfterMs) {
        this.#cache.set(target.host, hit);
        return hit.context;
      }
    }
    const context = this.#issue(target, nowMs).then((leaf) => {
      try {
        return createSecureContext({ cert: leaf.chainPem, key: leaf.keyPem.reveal() });
      } catch (err) {
        throw new BastionError('ERR_CA', 'TLS context creation failed', { cause: err, detail: { host: target.host } });
      }
    });
    const entry: CacheEntry = { notAfterMs: this.#leafNotAfter(nowMs), context };
    this.#cache.set(target.host, entry);
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#cacheSize) break;
      this.#cache.delete(oldest);
    }
    context.catch(() => {
      if (this.#cache.get(target.host) === entry) this.#cache.delete(target.host);
    });
    return context;
  }

  /**
   * Issues one leaf certificate for `host`, uncached (profile in the module
   * docs). {@link secureContext} is what a server uses; this is for callers
   * that need the certificate itself.
   *
   * Throws `TypeError` on a bad host; rejects with `BastionError('ERR_CA')`
   * when the CA has expired or issuance fails.
   */
  issueLeaf(host: string): Promise<LeafMaterial> {
    return this.#issue(normalizeLeafHost(host), this.#now());
  }

  #leafNotAfter(nowMs: number): number {
    return Math.min(nowMs + this.#leafValidityMs, this.#caNotAfterMs);
  }

  async #issue(target: LeafHost, nowMs: number): Promise<LeafMaterial> {
    const notAfterMs = this.#leafNotAfter(nowMs);
    if (nowMs >= this.#caNotAfterMs) throw new BastionError('ERR_CA', 'CA certificate has expired');
    try {
      const keys = (await webCrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify'])) as CryptoKeyPairLike;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: randomSerialHex(),
        subject: [{ CN: [target.host] }],
        issuer: this.#caCert.subjectName,
        notBefore: new Date(nowMs - BACKDATE_MS),
        notAfter: new Date(notAfterMs),
        publicKey: keys.publicKey,
        signingKey: this.#caKey,
        signingAlgorithm: EC_SIGN,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension([{ type: target.kind, value: target.sanValue }], false),
          new x509.AuthorityKeyIdentifierExtension(this.#caKeyId, false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webCrypto),
        ],
      });
      const pkcs8 = await webCrypto.subtle.exportKey('pkcs8', keys.privateKey);
      const certPem = cert.toString('pem');
      return {
        certPem,
        chainPem: `${certPem}\n${this.#caCertPem}\n`,
        keyPem: new Secret(x509.PemConverter.encode(pkcs8, 'PRIVATE KEY')),
        notAfterMs,
      };
    } catch (err) {
      throw new BastionError('ERR_CA', 'leaf certificate issuance failed', { cause: err, detail: { host: target.host } });
    }
  }
}

/** A host a leaf can be issued for, normalized. */
export interface LeafHost {
  /** `dns` for a name, `ip` for an IP literal (the SAN's GeneralName choice). */
  readonly kind: 'dns' | 'ip';
  /** The normalized host: a lower-case name without trailing dot, or an IP in canonical text (RFC 5952 for IPv6). */
  readonly host: string;
  /** The SAN value handed to the encoder (IPv6 fully expanded, which it parses without ambiguity). */
  readonly sanValue: string;
}

/**
 * Normalizes a host for a leaf: an IPv4 literal in four-part decimal, an IPv6
 * literal (brackets optional, no zone id), or a DNS name of LDH labels (RFC 1123
 * §2.1, 1-63 characters each, 253 in all, one trailing dot removed, the last
 * label not all digits so that it cannot pass for an IPv4 address). Names must
 * be ASCII (A-labels for IDNs); wildcards are not issued.
 *
 * Throws `TypeError` on anything else.
 */
export function normalizeLeafHost(host: string): LeafHost {
  if (typeof host !== 'string' || host.length === 0 || host.length > 255) {
    throw new TypeError('leaf host must be a DNS name or IP literal');
  }
  let text = host;
  if (text.startsWith('[') && text.endsWith(']')) {
    text = text.slice(1, -1);
    if (isIP(text) !== 6) throw new TypeError('leaf host in brackets must be an IPv6 literal');
  }
  const family = text.includes('%') ? 0 : isIP(text);
  if (family === 4) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text)) throw new TypeError('leaf host IPv4 literal must be four-part decimal');
    const canonical = ipaddr.IPv4.parse(text).toString();
    return { kind: 'ip', host: canonical, sanValue: canonical };
  }
  if (family === 6) {
    const addr = ipaddr.IPv6.parse(text);
    return { kind: 'ip', host: addr.toRFC5952String(), sanValue: addr.toNormalizedString() };
  }
  let name = text.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0 || name.length > 253) throw new TypeError('leaf host must be a DNS name or IP literal');
  const labels = name.split('.');
  for (const label of labels) {
    if (!LDH_LABEL.test(label)) throw new TypeError('leaf host must be a DNS name of letters, digits and hyphens');
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] as string)) {
    throw new TypeError('leaf host name must not end in an all-numeric label');
  }
  return { kind: 'dns', host: name, sanValue: name };
}

// One label, checked after the whole name is bounded to 253 characters: linear.
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

function parseCaCertificate(pem: string): x509.X509Certificate {
  let cert: x509.X509Certificate;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(pem);
    if (blocks.length !== 1 || blocks[0]?.type !== 'CERTIFICATE') {
      throw new BastionError('ERR_CA', 'CA certificate must be exactly one PEM CERTIFICATE block');
    }
    cert = new x509.X509Certificate(blocks[0].rawData);
  } catch (err) {
    if (err instanceof BastionError) throw err;
    throw new BastionError('ERR_CA', 'CA certificate is not a valid PEM X.509 certificate', { cause: err });
  }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc?.ca !== true) throw new BastionError('ERR_CA', 'certificate is not a CA: basicConstraints cA is not true');
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku !== null && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) {
    throw new BastionError('ERR_CA', 'CA certificate keyUsage lacks keyCertSign');
  }
  return cert;
}

async function importCaKey(keyPem: Secret): Promise<WebCryptoKey> {
  // No `cause` on these errors: a parser's message could quote the input.
  let der: ArrayBuffer;
  try {
    const blocks = x509.PemConverter.decodeWithHeaders(keyPem.reveal());
    if (blocks.length !== 1 || blocks[0]?.type !== 'PRIVATE KEY') throw new Error('not one PKCS#8 block');
    der = blocks[0].rawData;
  } catch {
    throw new BastionError('ERR_CA', 'CA private key must be exactly one PEM PRIVATE KEY (PKCS#8) block');
  }
  try {
    return await webCrypto.subtle.importKey('pkcs8', der, EC_KEY, false, ['sign']);
  } catch {
    throw new BastionError('ERR_CA', 'CA private key is not a PKCS#8 ECDSA P-256 key');
  }
}

/** 16 random bytes as hex: a positive 128-bit serial (the encoder prepends 0x00 when the top bit is set). */
function randomSerialHex(): string {
  return randomKeyBytes(16).toString('hex');
}

function assertIntegerIn(value: number, min: number, max: number, label: string): void {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${label} must be an integer`);
  if (value < min || value > max) throw new RangeError(`${label} must be ${min}-${max}`);
}

function assertTime(value: number, label: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new TypeError(`${label} must be ms since the epoch`);
}

function hasControlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
