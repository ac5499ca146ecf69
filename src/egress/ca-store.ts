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
import { openSecret, sealSecret, type SealedSecret } from '../vault/envelope.ts';
import type { Kek } from '../vault/kek.ts';
import { createLocalCa, type LocalCaMaterial } from './local-ca.ts';

/**
 * The CA port: the one vault item this module keeps ({@link LOCAL_CA_ITEM}),
 * written once. The same items as the vault's (`VaultItemStore`,
 * src/vault/store.ts). Implemented by every store adapter; contract:
 * test/store/contracts/ca.ts. Every method throws `BastionError('ERR_STORE')`
 * on an I/O or driver failure.
 */
export interface CaStore {
  /** The item called `name` (a sealed JSON string), or undefined. */
  getVaultItem(name: string): Promise<string | undefined>;
  /**
   * Stores `value` under `name` unless an item has the name already, then
   * returns the stored value, race-safe across processes: every caller gets the
   * same value (so two processes creating a CA at once end up with one).
   */
  putVaultItemIfAbsent(name: string, value: string): Promise<string>;
}

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
export async function localCaCertificate(store: CaStore, kek: Kek): Promise<string> {
  const existing = await store.getVaultItem(LOCAL_CA_ITEM);
  return parse(existing ?? (await create(store, kek))).certPem;
}

/**
 * The CA's certificate and private key, creating the CA when there is none.
 * @throws BastionError `ERR_STORE`, `ERR_CA` (malformed item), `ERR_VAULT_DECRYPT` (another KEK sealed it).
 */
export async function loadOrCreateLocalCa(store: CaStore, kek: Kek): Promise<LocalCaMaterial> {
  const text = (await store.getVaultItem(LOCAL_CA_ITEM)) ?? (await create(store, kek));
  const stored = parse(text);
  return { certPem: stored.certPem, keyPem: openSecret(kek, CA_REF, stored.key) };
}

async function create(store: CaStore, kek: Kek): Promise<string> {
  const ca = await createLocalCa();
  const item: StoredCa = { format: 1, certPem: ca.certPem, key: sealSecret(kek, CA_REF, ca.keyPem) };
  return store.putVaultItemIfAbsent(LOCAL_CA_ITEM, JSON.stringify(item));
}
