/**
 * The one module that touches `node:crypto`. Everything cryptographic in
 * Bastion goes through these small, typed functions, so the set of primitives in
 * use is visible in one file. No primitive is implemented here: these are thin
 * wrappers over OpenSSL via node:crypto.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  randomUUID,
  sign,
  timingSafeEqual,
  verify,
  webcrypto,
} from 'node:crypto';

/** Lowercase hex SHA-256 of a UTF-8 string or bytes (FIPS 180-4). */
/** SHA-256 (FIPS 180-4) of `data`: 32 bytes. */
export function sha256Bytes(data: string | Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `n` bytes from the CSPRNG, base64url-encoded (no padding). */
export function randomToken(n = 32): string {
  if (!Number.isInteger(n) || n < 16 || n > 1024) throw new RangeError('randomToken: n must be an integer 16-1024');
  return randomBytes(n).toString('base64url');
}

/** A random RFC 9562 version 4 UUID. */
export function randomId(): string {
  return randomUUID();
}

/** Constant-time equality of two strings (compared as UTF-8 bytes); unequal lengths return false without a timing oracle on content. */
export function constantTimeEqual(a: string, b: string): boolean {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  if (ab.length !== bb.length) {
    timingSafeEqual(ab, ab);
    return false;
  }
  return timingSafeEqual(ab, bb);
}

/** An Ed25519 key pair as PEM (PKCS#8 private, SPKI public) — RFC 8032, RFC 8410. */
export interface Ed25519KeyPair {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** Generates a fresh Ed25519 key pair. */
export function generateEd25519(): Ed25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Ed25519 signature (RFC 8032 §5.1.6) of `message` (UTF-8), base64url. Throws `TypeError` on a non-Ed25519 key. */
export function signEd25519(privateKeyPem: string, message: string): string {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('signEd25519: key is not Ed25519');
  return sign(null, Buffer.from(message, 'utf8'), key).toString('base64url');
}

/**
 * A signing function over one parsed Ed25519 private key (the PEM is parsed
 * once): raw 64-byte signatures (RFC 8032 §5.1.6) of `data`.
 * @throws TypeError when the key is not Ed25519.
 */
export function ed25519Signer(privateKeyPem: string): (data: Uint8Array) => Uint8Array {
  const key = createPrivateKey(privateKeyPem);
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('ed25519Signer: key is not Ed25519');
  return (data) => new Uint8Array(sign(null, data, key));
}

/** Verifies an Ed25519 base64url signature; false (never a throw) on any malformed input. */
export function verifyEd25519(publicKeyPem: string, message: string, signature: string): boolean {
  try {
    const key = createPublicKey(publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') return false;
    return verify(null, Buffer.from(message, 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/** Public key PEM of a private key PEM. */
export function publicKeyOf(privateKeyPem: string): string {
  return createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'pem' }).toString();
}

/** RFC 7638 JWK thumbprint-like key id: base64url SHA-256 of the SPKI DER, first 16 chars. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url').slice(0, 16);
}

/** `n` random bytes from the CSPRNG. */
export function randomKeyBytes(n: number): Buffer {
  if (!Number.isInteger(n) || n < 16 || n > 1024) throw new RangeError('randomKeyBytes: n must be an integer 16-1024');
  return randomBytes(n);
}

/** HMAC-SHA256 (RFC 2104, FIPS 198-1) of `data` under `key`: 32 bytes. */
export function hmacSha256(key: Uint8Array, data: string | Uint8Array): Buffer {
  if (key.length < 32) throw new RangeError('hmacSha256: key must be at least 32 bytes');
  return createHmac('sha256', key).update(data).digest();
}

/** An AES-256-GCM ciphertext: 12-byte IV, 16-byte tag, ciphertext (NIST SP 800-38D). */
export interface AeadBox {
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

/**
 * AES-256-GCM encryption with a fresh random 96-bit IV. `aad` is authenticated
 * but not encrypted (bind the ciphertext to its context: secret id, version).
 * Throws `RangeError` unless `key` is 32 bytes.
 */
export function aesGcmEncrypt(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): AeadBox {
  if (key.length !== 32) throw new RangeError('aesGcmEncrypt: key must be 32 bytes');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/**
 * AES-256-GCM decryption. Returns undefined (never throws) when the key, IV, tag,
 * ciphertext or `aad` do not match: a forged or tampered box is indistinguishable
 * from a wrong key, by design.
 */
export function aesGcmDecrypt(key: Uint8Array, box: AeadBox, aad: Uint8Array): Buffer | undefined {
  try {
    if (key.length !== 32 || box.iv.length !== 12 || box.tag.length !== 16) return undefined;
    const decipher = createDecipheriv('aes-256-gcm', key, box.iv, { authTagLength: 16 });
    decipher.setAAD(aad);
    decipher.setAuthTag(box.tag);
    return Buffer.concat([decipher.update(box.ciphertext), decipher.final()]);
  } catch {
    return undefined;
  }
}

/**
 * The W3C Web Cryptography API over OpenSSL (node's `webcrypto`, the same object
 * as `globalThis.crypto`), for libraries that take a crypto provider:
 * `@peculiar/x509` generates keys, signs and hashes through it. Asynchronous,
 * so signing runs off the event loop.
 */
export const webCrypto: webcrypto.Crypto = webcrypto;

/** A Web Crypto key handle (W3C Web Cryptography API §13); non-extractable keys never expose their bytes. */
export type WebCryptoKey = webcrypto.CryptoKey;
