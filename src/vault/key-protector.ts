/**
 * Seals signing keys (the audit chain's Ed25519 key) under the vault's
 * key-encryption key, with the same envelope as secrets, bound to the key id by
 * the AAD (`secret=<"signing-key:" + id>`), so a sealed key copied onto another
 * row does not open.
 */
import type { KeyProtector } from '../audit/log.ts';
import { Secret } from '../util/secret.ts';
import { vaultDecryptError } from './errors.ts';
import { openSecret, sealSecret, type SealedSecret } from './envelope.ts';
import type { Kek } from './kek.ts';

/** A {@link KeyProtector} over `kek`. Opening throws `ERR_VAULT_DECRYPT` for anything that is not such a sealed key. */
export function kekKeyProtector(kek: Kek): KeyProtector {
  const ref = (keyId: string): { id: string; version: number } => ({ id: `signing-key:${keyId}`, version: 1 });
  return {
    seal: (privateKeyPem, keyId) => JSON.stringify(sealSecret(kek, ref(keyId), new Secret(privateKeyPem))),
    open: (stored, keyId) => {
      let sealed: SealedSecret;
      try {
        sealed = JSON.parse(stored) as SealedSecret;
      } catch {
        throw vaultDecryptError(ref(keyId));
      }
      return openSecret(kek, ref(keyId), sealed).reveal();
    },
  };
}
