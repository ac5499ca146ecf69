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
  /** What the key signs: `audit` (checkpoints). */
  readonly purpose: 'audit';
  readonly alg: 'Ed25519';
  readonly publicKeyPem: string;
  /** PKCS#8 PEM. Encrypted by the vault's key-encryption key once the vault exists (issue 3). */
  readonly privateKeyPem: string;
  readonly createdAt: number;
}

export interface Store {
  /**
   * Appends events to the audit chain in one transaction, computing `seq`,
   * `prevHash` and `hash` inside it (so writers in several processes cannot fork
   * the chain). Durable when the returned promise resolves. Returns the stored records.
   */
  appendAudit(events: readonly AuditEvent[]): Promise<AuditRecord[]>;
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
  /** A pending approval for exactly this agent, tool and digest whose deadline is after `now`, if any. */
  findPendingApproval(agent: string, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /**
   * Decides a pending approval. Returns false (and changes nothing) when it is
   * not pending or its deadline passed. On approve, `expiresAt` becomes `claimUntil`.
   */
  decideApproval(id: string, decision: { status: 'approved' | 'denied'; by: string; reason: string | null; at: number; claimUntil: number }): Promise<boolean>;
  /** Marks an approved approval `used`; true only for the one caller that consumed it (single use). */
  consumeApproval(id: string, now: number): Promise<boolean>;
  /**
   * Consumes an approved, unexpired approval for exactly this agent, tool and digest
   * (the client gave up before the decision and called again). Returns it, or undefined.
   */
  claimApproval(agent: string, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /** Marks a pending approval `expired`; false when it was no longer pending. */
  expireApproval(id: string, now: number): Promise<boolean>;

  close(): Promise<void>;
}
