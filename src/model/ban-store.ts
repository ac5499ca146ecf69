/**
 * The ban port: offences (a prompt-extraction attempt, an answer that repeated
 * the system prompt) and the escalating bans they earn, for the model door
 * (./door.ts) and the `bastion bans` CLI. Implemented by every store adapter;
 * contract: test/store/contracts/bans.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`). Times are epoch ms.
 */

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

/** An offence to record with {@link BanStore.addBan}. */
export interface Offence {
  readonly agent: string;
  readonly user: string;
  /** Epoch ms. */
  readonly at: number;
  readonly rule: string;
  readonly reason: string;
}

/** Bans per (agent, end user). */
export interface BanStore {
  /**
   * Records an offence and the ban it earns, in one transaction: the level is
   * 1 + the offences of this agent and user since `at − forgetAfterMs` that were
   * not lifted, and the ban lasts `durationsMs[level − 1]` ms (the last entry repeats).
   * @throws RangeError when `durationsMs` is empty or `at` is not a time; BastionError `ERR_STORE`.
   */
  addBan(offence: Offence, durationsMs: readonly number[], forgetAfterMs: number): Promise<BanRecord>;
  /** The ban in force for this agent and user at `now` (the latest-ending one; a ban ends at `until`), or undefined. */
  activeBan(agent: string, user: string, now: number): Promise<BanRecord | undefined>;
  /** Bans newest first, at most `limit` (default 1000); `activeAt` keeps only those in force then, `user` only that user's. */
  listBans(filter?: { activeAt?: number; user?: string; limit?: number }): Promise<BanRecord[]>;
  /**
   * Lifts the bans of `user` in force at `at` (of one agent when given), recording `by`.
   * Lifted offences no longer count toward escalation. Returns how many were lifted.
   */
  liftBans(user: string, opts: { agent?: string; at: number; by: string }): Promise<number>;
}
