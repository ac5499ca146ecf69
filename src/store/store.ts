/**
 * The `Store` contract: everything Bastion persists. One contract, several
 * implementations (SQLite now, PostgreSQL later) that must pass the same
 * contract tests (test/store/contract.ts). Methods are async so a networked
 * store fits the same shape.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or
 * database failure, with the driver error as `cause`.
 */
import type { AuditCheckpoint, AuditEvent, AuditRecord } from '../audit/types.ts';

/** An approval request held in the queue. Times are epoch ms. */
export interface ApprovalRecord {
  readonly id: string;
  readonly agent: string;
  /** The end user the call was for (null: none named). The approval is bound to it. */
  readonly user: string | null;
  /** Exposed tool name. */
  readonly tool: string;
  /** SHA-256 hex of the canonical JSON of the arguments: the approval is bound to it. */
  readonly argsDigest: string;
  /** Arguments with credentials redacted, shown to the admin who decides. */
  readonly argsPreview: string;
  readonly status: 'pending' | 'approved' | 'denied' | 'expired' | 'used';
  readonly createdAt: number;
  /** Pending: the wait deadline. Approved: until when it may be claimed. */
  readonly expiresAt: number;
  readonly decidedAt: number | null;
  readonly decidedBy: string | null;
  readonly reason: string | null;
}

/** A signing key kept in the store. */
export interface StoredKey {
  readonly id: string;
  /**
   * What the key signs: `audit` (checkpoints) or `identity` (RFC 9421 request
   * signatures, per-call JWTs, agent-to-agent JWS; published at /.well-known/jwks.json).
   */
  readonly purpose: 'audit' | 'identity';
  readonly alg: 'Ed25519';
  readonly publicKeyPem: string;
  /** PKCS#8 PEM. Encrypted by the vault's key-encryption key once the vault exists (issue 3). */
  readonly privateKeyPem: string;
  readonly createdAt: number;
}

/**
 * A vault secret's metadata as stored: never its value. Times are epoch ms.
 * `version` is the newest version (1 after add, +1 per rotation).
 */
export interface StoredSecret {
  /** Random id (a UUID), fixed for the secret's life; a name added again after revocation gets a new one. */
  readonly id: string;
  /** Unique among live (non-revoked) secrets. */
  readonly name: string;
  /** Host patterns the value may be sent to, normalized (lower case), as given at add. */
  readonly hosts: readonly string[];
  /** HTTP header the value is sent in, or null. */
  readonly header: string | null;
  /** Template of the header value with one `{}` for the secret (`Bearer {}`), or null. */
  readonly format: string | null;
  readonly version: number;
  readonly createdAt: number;
  /** Time of the latest rotation, or null. */
  readonly rotatedAt: number | null;
  /** Time of revocation, or null while live. */
  readonly revokedAt: number | null;
  /** Time the value was last sent (coalesced; see Vault.markUsed), or null. */
  readonly lastUsedAt: number | null;
}

/** One sealed version of a secret. Times are epoch ms. */
export interface StoredSecretVersion {
  readonly secretId: string;
  /** From 1. */
  readonly version: number;
  /** JSON of the version's `SealedSecret` (src/vault/envelope.ts); opaque to the store. */
  readonly sealed: string;
  readonly createdAt: number;
  /** Null while current; set when superseded (end of the rotation grace) or revoked (the revocation time). Valid while `expiresAt > now`. */
  readonly expiresAt: number | null;
}

/** What {@link Store.createSecret} stores: a secret's metadata and its version 1. */
export interface NewSecret {
  readonly id: string;
  readonly name: string;
  readonly hosts: readonly string[];
  readonly header: string | null;
  readonly format: string | null;
  /** Epoch ms; also the version's `createdAt`. */
  readonly createdAt: number;
  /** JSON of version 1's `SealedSecret`. */
  readonly sealed: string;
}

/**
 * A credential an end user pasted into a model conversation, vaulted as that
 * user's personal secret (src/vault/pasted.ts). Never its value. Times epoch ms.
 */
export interface StoredPastedSecret {
  /** Random id (UUID). */
  readonly id: string;
  /** The 12 characters of `<<SECRET_xxxxxxxxxxxx>>`, derived from `id`; unique. */
  readonly token: string;
  /** The agent and end user it belongs to: only requests for this pair may use it. */
  readonly agent: string;
  readonly user: string;
  /** Keyed digest of agent, user and value: the same value pasted again maps to the same row. */
  readonly fingerprint: string;
  /** The detector rule that found it (`github-pat`, ...). */
  readonly rule: string;
  /** Hosts it may be sent to (from the rule; empty: nowhere until an admin binds it). */
  readonly hosts: readonly string[];
  /** JSON of its `SealedSecret`; opaque to the store. */
  readonly sealed: string;
  readonly createdAt: number;
  readonly lastUsedAt: number | null;
}

/** One ban (an offence and the ban it earned). Times are epoch ms. */
export interface BanRecord {
  readonly id: number;
  readonly agent: string;
  readonly user: string;
  /** When the offence happened; the ban runs from here to `until`. */
  readonly at: number;
  readonly until: number;
  /** 1 for a first offence within the forget window, 2 for the second, ... */
  readonly level: number;
  /** Rule that triggered it (e.g. `extraction.reveal-system-prompt`) and a short reason. */
  readonly rule: string;
  readonly reason: string;
  readonly liftedAt: number | null;
  readonly liftedBy: string | null;
}

/**
 * An agent-to-agent peer: another Bastion (or A2A gateway) registered by an
 * admin with `bastion peers add`. Never a clear token. Times are epoch ms.
 */
export interface StoredPeer {
  /** Local name of the peer (`[A-Za-z0-9_.-]{1,64}`), as `a2a.agents.*.peers` / `receiveFrom` name it. */
  readonly name: string;
  /** The peer's inbound endpoint (`https://peer.example/a2a/inbound`). */
  readonly url: string;
  /** The peer's sender id (its `identity.issuer`): the `sender` its signed messages must carry. */
  readonly sender: string;
  /** Where the peer's JWKS is fetched from, or null when its keys are pinned. */
  readonly jwksUrl: string | null;
  /** Pinned public keys: the JSON of a JWKS (RFC 7517 §5) of Ed25519 keys with `kid`s, or null when fetched from `jwksUrl`. */
  readonly publicJwks: string | null;
  /** SHA-256 hex of the bearer token the peer presents to us (unique). */
  readonly inboundTokenDigest: string;
  /** The bearer token we present to the peer, sealed with the vault KEK (JSON of a `SealedSecret`), or null: not set yet. */
  readonly outboundTokenSealed: string | null;
  readonly createdAt: number;
}

export interface Store {
  /**
   * Appends events to the audit chain without a checkpoint; durable when the
   * returned promise resolves. Returns the stored records. Adapters implement it
   * as `appendAuditEvents(this, events)` (../audit/append.ts): the audit module
   * chains, the adapter only stores rows through {@link appendAuditRecords}.
   */
  appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]>;
  /**
   * Stores chained records and checkpoints in one durable transaction, only if
   * `records[0]` extends the stored tip (`seq` = tip + 1, `prevHash` = tip's hash;
   * seq 1 and 64 zeros on an empty chain). Never computes a hash.
   * @throws BastionError `ERR_AUDIT_CONFLICT` when the tip moved, `ERR_STORE`; TypeError when records are not consecutive.
   */
  appendAuditRecords(records: readonly AuditRecord[], checkpoints: readonly AuditCheckpoint[]): Promise<void>;
  /** Records with `seq >= fromSeq`, ascending, at most `limit`. */
  readAudit(fromSeq: number, limit: number): Promise<AuditRecord[]>;
  /** The newest record, or undefined when the chain is empty. */
  lastAudit(): Promise<AuditRecord | undefined>;
  appendCheckpoint(checkpoint: AuditCheckpoint): Promise<void>;
  /** All checkpoints, ascending by seq. */
  listCheckpoints(): Promise<AuditCheckpoint[]>;

  /** The current key for a purpose, or undefined. */
  getKey(purpose: StoredKey['purpose']): Promise<StoredKey | undefined>;
  /** Every key ever held for a purpose (verification needs retired ones too). */
  listKeys(purpose: StoredKey['purpose']): Promise<StoredKey[]>;
  /** Stores a key and makes it current for its purpose. */
  putKey(key: StoredKey): Promise<void>;

  /** SHA-256 hex digests of keys generated for an agent (the demo-key flow). */
  agentKeyDigests(agent: string): Promise<string[]>;
  addAgentKeyDigest(agent: string, digest: string, createdAt: number): Promise<void>;

  createApproval(approval: ApprovalRecord): Promise<void>;
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /** Approvals, newest first, optionally only those with a status. */
  listApprovals(filter?: { status?: ApprovalRecord['status']; limit?: number }): Promise<ApprovalRecord[]>;
  /** A pending approval for exactly this agent, end user, tool and digest whose deadline is after `now`, if any. */
  findPendingApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /**
   * Decides a pending approval. Returns false (and changes nothing) when it is
   * not pending or its deadline passed. On approve, `expiresAt` becomes `claimUntil`.
   */
  decideApproval(id: string, decision: { status: 'approved' | 'denied'; by: string; reason: string | null; at: number; claimUntil: number }): Promise<boolean>;
  /** Marks an approved approval `used`; true only for the one caller that consumed it (single use). */
  consumeApproval(id: string, now: number): Promise<boolean>;
  /**
   * Consumes an approved, unexpired approval for exactly this agent, end user, tool and digest
   * (the client gave up before the decision and called again). Returns it, or undefined.
   */
  claimApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /** Marks a pending approval `expired`; false when it was no longer pending. */
  expireApproval(id: string, now: number): Promise<boolean>;

  /**
   * The vault generation: an integer that only grows, bumped in the same
   * transaction as every change to a secret or its versions (create, rotate,
   * revoke; not {@link touchSecret}). A reader in any process compares it to
   * the value it last saw to notice changes cheaply. 0 on a fresh store.
   */
  vaultGeneration(): Promise<number>;
  /**
   * Creates a secret with version 1 (`expiresAt` null) and bumps the generation, in one transaction.
   * @throws BastionError `ERR_VAULT_SECRET_EXISTS` when a live (non-revoked) secret has the name;
   *   `ERR_STORE` when the id is taken or on a driver failure
   */
  createSecret(secret: NewSecret): Promise<void>;
  /**
   * Adds version `version.version` to the live secret `secretId`, which must be
   * exactly its newest version + 1, sets every older version's `expiresAt` to
   * `graceUntil` (an earlier expiry is kept), sets `rotatedAt` to
   * `version.createdAt` and bumps the generation, in one transaction. Returns
   * false, changing nothing, when the secret is unknown or revoked or the
   * version is not the next one (a concurrent rotation won).
   */
  rotateSecret(secretId: string, version: { readonly version: number; readonly sealed: string; readonly createdAt: number }, graceUntil: number): Promise<boolean>;
  /**
   * Revokes a live secret at `at` (epoch ms): `revokedAt = at`, every version's
   * `expiresAt` set to `at` (an earlier expiry is kept), generation bumped, in
   * one transaction. Its name is free again. False when unknown or already revoked.
   */
  revokeSecret(secretId: string, at: number): Promise<boolean>;
  /** The live secret with this name, or undefined. */
  getSecretByName(name: string): Promise<StoredSecret | undefined>;
  /** Every live secret, ascending by name. */
  listSecrets(): Promise<StoredSecret[]>;
  /**
   * The versions of live secrets still valid at `now` (epoch ms): `expiresAt`
   * null or later than `now`. Ascending by secret id, then version.
   */
  listValidSecretVersions(now: number): Promise<StoredSecretVersion[]>;
  /** Sets `lastUsedAt` to `at` unless it is later already. No generation bump; an unknown id is ignored. */
  touchSecret(secretId: string, at: number): Promise<void>;
  /** A vault item (sealed installation material: the placeholder root key, the local CA), or undefined. */
  getVaultItem(name: string): Promise<string | undefined>;
  /**
   * Stores `value` under `name` unless an item has the name already, then
   * returns the stored value: `value` when this call created it, the existing one
   * otherwise. Race-safe across processes: every caller gets the same value.
   */
  putVaultItemIfAbsent(name: string, value: string): Promise<string>;

  /**
   * Stores a pasted secret unless one with the same (agent, user, fingerprint)
   * exists, and returns the stored row (the existing one in that case), race-safe.
   * @throws BastionError `ERR_STORE` (also when `token` is taken by another secret)
   */
  putPastedSecret(secret: StoredPastedSecret): Promise<StoredPastedSecret>;
  /** The pasted secret with this token, or undefined. */
  getPastedSecretByToken(token: string): Promise<StoredPastedSecret | undefined>;
  /** Pasted secrets, newest first, optionally of one user (and agent). */
  listPastedSecrets(filter?: { agent?: string; user?: string; limit?: number }): Promise<StoredPastedSecret[]>;
  /** Sets `lastUsedAt` unless later already. */
  touchPastedSecret(id: string, at: number): Promise<void>;
  /** Replaces a pasted secret's hosts (an admin binding it). False when unknown. */
  setPastedSecretHosts(id: string, hosts: readonly string[]): Promise<boolean>;

  /**
   * Records an offence and the ban it earns, in one transaction: the level is
   * 1 + the offences of this agent and user since `at − forgetAfterMs` that were
   * not lifted, and the ban lasts `durationsMs[level − 1]` (the last entry repeats).
   */
  addBan(offence: { agent: string; user: string; at: number; rule: string; reason: string }, durationsMs: readonly number[], forgetAfterMs: number): Promise<BanRecord>;
  /** The ban in force for this agent and user at `now` (the latest-ending one), or undefined. */
  activeBan(agent: string, user: string, now: number): Promise<BanRecord | undefined>;
  /** Bans newest first; `activeAt` keeps only those in force then. */
  listBans(filter?: { activeAt?: number; user?: string; limit?: number }): Promise<BanRecord[]>;
  /** Lifts the bans of `user` in force at `at` (of one agent when given). Returns how many. */
  liftBans(user: string, opts: { agent?: string; at: number; by: string }): Promise<number>;

  /**
   * Registers a peer. Returns false (changing nothing) when a peer has the name
   * or the inbound token digest already.
   */
  addPeer(peer: StoredPeer): Promise<boolean>;
  /** The peer with this name, or undefined. */
  getPeer(name: string): Promise<StoredPeer | undefined>;
  /** The peer whose inbound token has this SHA-256 hex digest, or undefined. */
  getPeerByInboundDigest(digest: string): Promise<StoredPeer | undefined>;
  /** Every peer, ascending by name. */
  listPeers(): Promise<StoredPeer[]>;
  /** Replaces a peer's sealed outbound token. False when the peer is unknown. */
  setPeerOutboundToken(name: string, sealed: string): Promise<boolean>;
  /** Removes a peer. False when unknown. */
  removePeer(name: string): Promise<boolean>;

  close(): Promise<void>;
}
