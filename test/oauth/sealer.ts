/**
 * A real AEAD sealer for the OAuth tests: AES-256-GCM from src/util/crypto.ts with
 * the vault's box encoding, the AAD authenticated. Production injects the vault's.
 */
import { aesGcmDecrypt, aesGcmEncrypt, randomKeyBytes } from '../../src/util/crypto.ts';
import { decodeBox, encodeBox } from '../../src/vault/sealed-box.ts';
import type { TokenSealer } from '../../src/oauth/index.ts';

export function testSealer(): TokenSealer {
  const key = randomKeyBytes(32);
  return {
    seal(plaintext, aad) {
      return Promise.resolve(JSON.stringify(encodeBox(aesGcmEncrypt(key, Buffer.from(plaintext, 'utf8'), Buffer.from(aad, 'utf8')))));
    },
    open(sealed, aad) {
      const box = decodeBox(JSON.parse(sealed));
      const clear = box === undefined ? undefined : aesGcmDecrypt(key, box, Buffer.from(aad, 'utf8'));
      return clear === undefined ? Promise.reject(new Error('sealed token set does not open')) : Promise.resolve(clear.toString('utf8'));
    },
  };
}
