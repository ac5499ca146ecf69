/**
 * Assembles the network door for a running gateway: the key-encryption key,
 * the vault, the local CA and its leaf issuer, the egress guard and the proxy.
 * `bastion serve` calls it; tests do too (with an injected resolver and the
 * test servers' CA).
 */
import type { Lookup } from './ssrf-classify.ts';
import { AbilityRunner } from '../abilities/runner.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { Gateway } from '../server/gateway.ts';
import { loadKek, MASTER_KEY_ENV, type Kek } from '../vault/kek.ts';
import { PastedSecrets } from '../vault/pasted.ts';
import { Vault } from '../vault/vault.ts';
import { loadOrCreateLocalCa } from './ca-store.ts';
import { dlpScan } from './dlp.ts';
import { EgressGuard } from './guard.ts';
import { LeafIssuer } from './local-ca.ts';
import { EgressProxy, type EgressAlert } from './proxy.ts';

/** The assembled door. */
export interface NetworkDoor {
  readonly kek: Kek;
  readonly vault: Vault;
  /** End users' pasted secrets (`<<SECRET_…>>`), shared with the model and tool doors. */
  readonly pasted: PastedSecrets;
  readonly issuer: LeafIssuer;
  readonly guard: EgressGuard;
  readonly proxy: EgressProxy;
  /** Runs ability calls through this door's guard, with this vault's bound secrets (attached to the gateway's sessions). */
  readonly abilities: AbilityRunner;
}

/**
 * The key-encryption key: `BASTION_MASTER_KEY` from `env` when set, else the key
 * file `vault.keyFile`, created (0600) on first run.
 * @throws BastionError `ERR_VAULT_KEY`.
 */
export function loadVaultKey(config: Pick<ResolvedConfig, 'vault'>, env: Readonly<Record<string, string | undefined>>): Promise<Kek> {
  return loadKek({ env: env[MASTER_KEY_ENV], keyFile: config.vault.keyFile }, { create: true });
}

/**
 * Loads the KEK (`BASTION_MASTER_KEY` from `env`, else `vault.keyFile`, created
 * on first run), opens the vault and the pasted-secret store and attaches both to the gateway's sessions,
 * with an ability runner over the system resolver (so `bastion stdio` runs abilities too;
 * {@link openNetworkDoor} replaces it with one over its own guard).
 * @throws BastionError `ERR_VAULT_KEY`, `ERR_VAULT_DECRYPT`, `ERR_STORE`.
 */
export async function openGatewayVault(gateway: Gateway, env: Readonly<Record<string, string | undefined>>, loaded?: Kek): Promise<{ kek: Kek; vault: Vault; pasted: PastedSecrets }> {
  const kek = loaded ?? (await loadVaultKey(gateway.config, env));
  const vault = await Vault.open(gateway.store, kek, { rotationGraceMs: gateway.config.vault.rotationGraceMs });
  const pasted = new PastedSecrets(gateway.store, vault);
  gateway.attachVault(vault, pasted);
  gateway.attachAbilities(new AbilityRunner({ config: gateway.config, guard: new EgressGuard(gateway.config, gateway.deps.policy), vault, signer: gateway.signer }));
  return { kek, vault, pasted };
}

/** Options of {@link openNetworkDoor}. */
export interface NetworkDoorOptions {
  /** The environment: `BASTION_MASTER_KEY` is read from it (else the key file of `vault.keyFile` is used, created on first run). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The KEK, when the caller loaded it already (for the audit key); else loaded from `env` / `vault.keyFile`. */
  readonly kek?: Kek;
  /** DNS resolver (default: the system's). */
  readonly lookup?: Lookup;
  /** Extra CA certificates (PEM) trusted for destinations. */
  readonly upstreamCa?: readonly string[];
  readonly onAlert?: (alert: EgressAlert) => void;
}

/**
 * Opens the vault (creating the KEK file and the placeholder root key on first
 * run), loads or creates the local CA, and builds the proxy (not yet listening)
 * and the ability runner, which it attaches to the gateway's sessions.
 * @throws BastionError `ERR_VAULT_KEY`, `ERR_VAULT_DECRYPT`, `ERR_STORE`, `ERR_CA`.
 */
export async function openNetworkDoor(gateway: Gateway, opts: NetworkDoorOptions): Promise<NetworkDoor> {
  const config = gateway.config;
  const { kek, vault, pasted } = await openGatewayVault(gateway, opts.env, opts.kek);
  const issuer = await LeafIssuer.open(await loadOrCreateLocalCa(gateway.store, kek));
  const guard = new EgressGuard(config, gateway.deps.policy, opts.lookup ? { lookup: opts.lookup } : {});
  const proxy = new EgressProxy({
    config,
    guard,
    agentKeys: gateway.agentKeys,
    // Recorded after the response: lazy, so many records share one commit.
    record: (event) => gateway.auditStep.batched(event),
    vault,
    pasted,
    issuer,
    dlp: dlpScan,
    ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}),
    ...(opts.onAlert ? { onAlert: opts.onAlert } : {}),
  });
  const abilities = new AbilityRunner({ config, guard, vault, signer: gateway.signer, ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}) });
  gateway.attachAbilities(abilities);
  return { kek, vault, pasted, issuer, guard, proxy, abilities };
}
