/**
 * Builds the network door from a gateway's parts: the local CA and its leaf
 * issuer, and the proxy over the gateway's guard, vault and pasted secrets.
 * `bastion serve` calls it; tests do too (with the test servers' CA).
 */
import type { AbilityRunner } from '../abilities/runner.ts';
import { BastionError } from '../errors.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { AuditStep } from '../door/audit-step.ts';
import type { KeyIndex } from '../door/authenticate.ts';
import type { UserVerifier } from '../door/user.ts';
import type { CaStore } from './ca-store.ts';
import type { Kek } from '../vault/kek.ts';
import type { PastedSecrets } from '../vault/pasted.ts';
import type { Vault } from '../vault/vault.ts';
import { loadOrCreateLocalCa } from './ca-store.ts';
import { dlpScan } from './dlp.ts';
import type { EgressGuard } from './guard.ts';
import { LeafIssuer } from './local-ca.ts';
import { EgressProxy, type EgressAlert, type EgressProxyDeps } from './proxy.ts';

/** The assembled door. */
export interface NetworkDoor {
  readonly kek: Kek;
  readonly vault: Vault;
  /** End users' pasted secrets (`<<SECRET_…>>`), shared with the model and tool doors. */
  readonly pasted: PastedSecrets;
  readonly issuer: LeafIssuer;
  readonly guard: EgressGuard;
  readonly proxy: EgressProxy;
  /** The gateway's ability runner (the same guard and vault). */
  readonly abilities: AbilityRunner;
}


/**
 * What the network door is built from (the composition root, `Gateway`, passes
 * its parts): the config, the egress guard, the vault, pasted secrets and the
 * ability runner (undefined without a KEK: the door refuses to open), agent
 * authentication, the end-user step, the CA store and the audit step.
 */
export interface NetworkDoorDeps {
  readonly config: ResolvedConfig;
  readonly guard: EgressGuard;
  readonly vault: Vault | undefined;
  readonly pasted: PastedSecrets | undefined;
  readonly abilities: AbilityRunner | undefined;
  readonly agentKeys: KeyIndex;
  readonly users: UserVerifier;
  readonly store: CaStore;
  /** The audit step; its write gate (`writable`, absent: open) is checked before a destination is contacted. */
  readonly auditStep: Pick<AuditStep, 'batched' | 'batchedBounded'> & { readonly writable?: boolean };
  /** End users' OAuth tokens for `<<OAUTH_name>>` (config `oauth.providers`); absent: refused. */
  readonly deps?: { readonly userOAuth?: EgressProxyDeps['userOAuth'] };
  /** Isolated agents (src/incidents/isolation.ts): an agent's open tunnels close when it is isolated. */
  readonly isolations?: { onChange(fn: (change: { readonly agent: string; readonly isolated: boolean }) => void): () => void };
}

/** Options of {@link openNetworkDoor}. */
export interface NetworkDoorOptions {
  /** The KEK the gateway was opened with: it seals the local CA's key. */
  readonly kek: Kek;
  /** Extra CA certificates (PEM) trusted for destinations (give the gateway the same, for abilities). */
  readonly upstreamCa?: readonly string[];
  readonly onAlert?: (alert: EgressAlert) => void;
}

/**
 * Builds the network door from the parts the composition root (Gateway.open)
 * opened: loads or creates the local CA, and builds the proxy (not yet
 * listening) over the gateway's egress guard, vault and pasted secrets.
 * @throws BastionError `ERR_VAULT_KEY` (the gateway was opened without a KEK), `ERR_STORE`, `ERR_CA`.
 */
export async function openNetworkDoor(gateway: NetworkDoorDeps, opts: NetworkDoorOptions): Promise<NetworkDoor> {
  const { vault, pasted, abilities, guard } = gateway;
  if (vault === undefined || pasted === undefined || abilities === undefined) throw new BastionError('ERR_VAULT_KEY', 'the network door needs the vault: open the gateway with the KEK');
  const issuer = await LeafIssuer.open(await loadOrCreateLocalCa(gateway.store, opts.kek));
  const proxy = new EgressProxy({
    // Read per request: a config reload (src/server/reload.ts) swaps the gateway's config, guard, keys and users.
    get config() {
      return gateway.config;
    },
    get guard() {
      return gateway.guard;
    },
    get agentKeys() {
      return gateway.agentKeys;
    },
    // Recorded after the response: batched, so many records share one commit.
    record: (event) => gateway.auditStep.batched(event),
    // A refusal's record, before its answer: batched with backpressure.
    recordBounded: (event) => gateway.auditStep.batchedBounded(event),
    auditWritable: () => gateway.auditStep.writable !== false,
    vault,
    pasted,
    get users() {
      return gateway.users;
    },
    ...(gateway.deps?.userOAuth ? { userOAuth: gateway.deps.userOAuth } : {}),
    issuer,
    dlp: dlpScan,
    ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}),
    ...(opts.onAlert ? { onAlert: opts.onAlert } : {}),
  });
  // Its requests are refused at authentication; the tunnels it opened before are closed here.
  gateway.isolations?.onChange(({ agent, isolated }) => {
    if (isolated) proxy.closeAgent(agent);
  });
  return { kek: opts.kek, vault, pasted, issuer, guard, proxy, abilities };
}
