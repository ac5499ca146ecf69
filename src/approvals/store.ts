/**
 * The approval port: what the approval queue (./queue.ts), the admin API and
 * the `bastion approvals` CLI need from a store. Implemented by every store
 * adapter (src/store/sqlite.ts today, PostgreSQL later); the contract every
 * implementation passes is test/store/contracts/approvals.ts.
 *
 * Decisions are compare-and-set: every state change (decide, consume, claim,
 * expire) succeeds for exactly one caller, also across processes sharing the
 * store, so an approval is single use.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`). Times are epoch ms.
 */

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

/** A decision written by {@link ApprovalStore.decideApproval}. Times epoch ms. */
export interface ApprovalDecision {
  readonly status: 'approved' | 'denied';
  /** Who decided (admin name). */
  readonly by: string;
  readonly reason: string | null;
  /** When; must be before the pending deadline. */
  readonly at: number;
  /** On approve: the new `expiresAt`, until when the grant may be claimed. */
  readonly claimUntil: number;
}

/** Approvals kept in the store. */
export interface ApprovalStore {
  /**
   * Stores a new approval.
   * @throws BastionError `ERR_STORE` when the id is taken or on a driver failure.
   */
  createApproval(approval: ApprovalRecord): Promise<void>;
  /** The approval with this id, or undefined. */
  getApproval(id: string): Promise<ApprovalRecord | undefined>;
  /**
   * Approvals, newest first, optionally only those with a status; at most `limit` (default: all).
   * @throws RangeError when `limit` is not a non-negative integer.
   */
  listApprovals(filter?: { status?: ApprovalRecord['status']; limit?: number }): Promise<ApprovalRecord[]>;
  /** A pending approval for exactly this agent, end user, tool and digest whose deadline is after `now`, if any (the oldest). */
  findPendingApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /**
   * Decides a pending approval. Returns false (and changes nothing) when it is
   * unknown, not pending or its deadline passed. On approve, `expiresAt` becomes
   * `claimUntil`; a denial keeps the deadline. Of concurrent decisions exactly one wins.
   */
  decideApproval(id: string, decision: ApprovalDecision): Promise<boolean>;
  /** Marks an approved, unexpired approval `used`; true only for the one caller that consumed it (single use). */
  consumeApproval(id: string, now: number): Promise<boolean>;
  /**
   * Consumes the oldest approved, unexpired approval for exactly this agent, end
   * user, tool and digest (the client gave up before the decision and called
   * again). Returns it (status `used`), or undefined. Concurrent claims never
   * consume one approval twice.
   */
  claimApproval(agent: string, user: string | null, tool: string, argsDigest: string, now: number): Promise<ApprovalRecord | undefined>;
  /** Marks a pending approval `expired` (decidedAt = `now`); false when it was no longer pending. */
  expireApproval(id: string, now: number): Promise<boolean>;
}
