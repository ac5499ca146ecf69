/**
 * The local CA, persisted: created on first use and kept in the store as a
 * vault item, its private key sealed under the key-encryption key (the same
 * envelope as secrets, bound to the item by its AAD), its certificate in clear
 * so `bastion ca export` can print it without the key.
 *
 * Creation is race-safe across processes: a new CA is offered with
 * `putVaultItemIfAbsent`, and whoever loses uses the one that was stored.
 */
import { BastionError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { openSecret, sealSecret, type SealedSecret } from '../vault/envelope.ts';
import type { Kek } from '../vault/kek.ts';
import { createLocalCa, type LocalCaMaterial } from './local-ca.ts';

/** The vault item holding the local CA. */
export const LOCAL_CA_ITEM = 'local-ca';
const CA_REF = { id: 'bastion/local-ca', version: 1 } as const;

interface StoredCa {
  readonly format: 1;
  readonly certPem: string;
  readonly key: SealedSecret;
}

function parse(text: string): StoredCa {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = v as Partial<StoredCa> | undefined;
  if (!o || o.format !== 1 || typeof o.certPem !== 'string' || typeof o.key !== 'object' || o.key === null) {
    throw new BastionError('ERR_CA', 'local CA: the stored item is malformed');
  }
  return o as StoredCa;
}

/**
 * The installation's CA certificate (PEM), creating the CA when there is none.
 * @throws BastionError `ERR_STORE`, `ERR_CA` (malformed item).
 */
export async function localCaCertificate(store: Store, kek: Kek): Promise<string> {
  const existing = await store.getVaultItem(LOCAL_CA_ITEM);
  return parse(existing ?? (await create(store, kek))).certPem;
}

/**
 * The CA's certificate and private key, creating the CA when there is none.
 * @throws BastionError `ERR_STORE`, `ERR_CA` (malformed item), `ERR_VAULT_DECRYPT` (another KEK sealed it).
 */
export async function loadOrCreateLocalCa(store: Store, kek: Kek): Promise<LocalCaMaterial> {
  const text = (await store.getVaultItem(LOCAL_CA_ITEM)) ?? (await create(store, kek));
  const stored = parse(text);
  return { certPem: stored.certPem, keyPem: openSecret(kek, CA_REF, stored.key) };
}

async function create(store: Store, kek: Kek): Promise<string> {
  const ca = await createLocalCa();
  const item: StoredCa = { format: 1, certPem: ca.certPem, key: sealSecret(kek, CA_REF, ca.keyPem) };
  return store.putVaultItemIfAbsent(LOCAL_CA_ITEM, JSON.stringify(item));
}
