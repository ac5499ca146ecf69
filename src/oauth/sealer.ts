/**
 * The {@link TokenSealer} of a running gateway: AES-256-GCM (NIST SP 800-38D,
 * via src/util/crypto.ts) under a 32-byte key the vault derives for this one
 * purpose (`vault.derivedKey('oauth/tokens')`), the caller's AAD authenticated,
 * stored as the vault's canonical base64url box (src/vault/sealed-box.ts) in JSON.
 * A box sealed for another user or provider (another AAD), under another key, or
 * altered in any byte does not open.
 */
import { aesGcmDecrypt, aesGcmEncrypt } from '../util/crypto.ts';
import { decodeBox, encodeBox } from '../vault/sealed-box.ts';
import type { TokenSealer } from './types.ts';

/**
 * A sealer over `key` (32 bytes).
 * @throws RangeError when `key` is not 32 bytes.
 */
export function aeadTokenSealer(key: Uint8Array): TokenSealer {
  if (key.length !== 32) throw new RangeError('aeadTokenSealer: key must be 32 bytes');
  return {
    seal(plaintext, aad) {
      return Promise.resolve(JSON.stringify(encodeBox(aesGcmEncrypt(key, Buffer.from(plaintext, 'utf8'), Buffer.from(aad, 'utf8')))));
    },
    open(sealed, aad) {
      let box;
      try {
        box = decodeBox(JSON.parse(sealed));
      } catch {
        box = undefined;
      }
      const clear = box === undefined ? undefined : aesGcmDecrypt(key, box, Buffer.from(aad, 'utf8'));
      return clear === undefined ? Promise.reject(new Error('sealed value does not open')) : Promise.resolve(clear.toString('utf8'));
    },
  };
}
