/**
 * The `Store`: everything Bastion persists, as the composition of small ports,
 * each owned by the module that consumes it and tested by its own contract
 * (test/store/contracts/<port>.ts), so an implementation (SQLite now,
 * PostgreSQL later) is written and checked port by port:
 *
 * | port | owner | contract |
 * |---|---|---|
 * | {@link AuditStore} | src/audit/store.ts | audit.ts |
 * | {@link AuditPrunePort} | src/audit/retention-store.ts | audit-retention.ts |
 * | {@link KeyStore} | src/identity/key-store.ts | keys.ts |
 * | {@link AgentKeyStore} | src/server/agent-key-store.ts | agent-keys.ts |
 * | {@link ApprovalStore} | src/approvals/store.ts | approvals.ts |
 * | {@link VaultStore} | src/vault/store.ts | vault.ts |
 * | {@link PastedSecretStore} | src/vault/pasted-store.ts | pasted-secrets.ts |
 * | {@link CaStore} | src/egress/ca-store.ts | ca.ts |
 * | {@link BanStore} | src/model/ban-store.ts | bans.ts |
 * | {@link PeerStore} | src/a2a/peer-store.ts | peers.ts |
 * | {@link OAuthStore} | src/oauth/store.ts | oauth.ts |
 * | {@link PinStore} | src/mcp/pin-store.ts | pins.ts |
 * | {@link IsolationStore} | src/incidents/isolation-store.ts | isolations.ts |
 *
 * Agent-to-agent replay nonces are a separate port with their own
 * implementations (./nonces.ts). Consumers take the narrowest port they use;
 * only the gateway (src/server/gateway.ts) and the CLI hold a whole `Store`
 * (the model and A2A doors still reach bans and peers through `gateway.store`
 * until the composition root hands each door its ports). Methods are async so
 * a networked store fits the same shape.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or
 * database failure, with the driver error as `cause`.
 */
import type { AgentKeyStore } from '../server/agent-key-store.ts';
import type { ApprovalStore } from '../approvals/store.ts';
import type { AuditStore } from '../audit/store.ts';
import type { AuditPrunePort } from '../audit/retention-store.ts';
import type { BanStore } from '../model/ban-store.ts';
import type { CaStore } from '../egress/ca-store.ts';
import type { KeyStore } from '../identity/key-store.ts';
import type { PastedSecretStore } from '../vault/pasted-store.ts';
import type { PeerStore } from '../a2a/peer-store.ts';
import type { OAuthStore } from '../oauth/store.ts';
import type { PinStore } from '../mcp/pin-store.ts';
import type { VaultStore } from '../vault/store.ts';
import type { IsolationStore } from '../incidents/isolation-store.ts';

// Record types live with their ports; re-exported so older imports keep compiling.
export type { AgentKeyStore } from '../server/agent-key-store.ts';
export type { ApprovalDecision, ApprovalRecord, ApprovalStore } from '../approvals/store.ts';
export type { AuditStore } from '../audit/store.ts';
export type { BanRecord, BanStore, Offence } from '../model/ban-store.ts';
export type { CaStore } from '../egress/ca-store.ts';
export type { KeyStore, StoredKey } from '../identity/key-store.ts';
export type { PastedSecretStore, StoredPastedSecret } from '../vault/pasted-store.ts';
export type { PeerStore, StoredPeer } from '../a2a/peer-store.ts';
export type { PendingPinKind, PinStore, StoredPendingPin, StoredPin } from '../mcp/pin-store.ts';
export type { OAuthStore, StoredPendingAuthorization, UserTokenSetInfo } from '../oauth/store.ts';
export type { IsolationStore, StoredIsolation } from '../incidents/isolation-store.ts';
export type { NewSecret, StoredSecret, StoredSecretVersion, VaultItemStore, VaultStore } from '../vault/store.ts';

/** Every port, on one connection. */
export interface Store extends AuditStore, AuditPrunePort, KeyStore, AgentKeyStore, ApprovalStore, VaultStore, PastedSecretStore, CaStore, BanStore, PeerStore, OAuthStore, PinStore, IsolationStore {
  /** Releases the connection (and the audit writer thread); idempotent. Afterwards every method throws `ERR_STORE`. */
  close(): Promise<void>;
}
