/**
 * The isolation port: which agents an admin isolated (incident response,
 * ./isolation.ts), with the history of every isolation and restore. The
 * gateway reads it on every instance; `bastion incident` (src/cli/commands/incident.ts)
 * writes it directly, so a running gateway and the CLI meet here. Implemented by
 * every store adapter; contract: test/store/contracts/isolations.ts.
 *
 * Errors: every method throws `BastionError('ERR_STORE')` on an I/O or driver
 * failure (driver error as `cause`), `TypeError` / `RangeError` on malformed input.
 */

/** One isolation of an agent. Times are epoch ms; `restoredAt` is null while it is in force. */
export interface StoredIsolation {
  /** Random id of this isolation. */
  readonly id: string;
  readonly agent: string;
  /** Why the agent was isolated (free text from the admin; never a secret). */
  readonly reason: string;
  /** Who isolated it (`admin`, `cli:<user>`, `anomaly:<rule>`). */
  readonly by: string;
  readonly at: number;
  readonly restoredAt: number | null;
  readonly restoredBy: string | null;
  readonly restoreReason: string | null;
}

/** A row of `isolations` (both SQL adapters). */
export interface IsolationRow {
  id: string;
  agent: string;
  reason: string;
  isolated_by: string;
  at: number;
  restored_at: number | null;
  restored_by: string | null;
  restore_reason: string | null;
}

/** The record of a row. */
export function isolationFromRow(r: IsolationRow): StoredIsolation {
  return { id: r.id, agent: r.agent, reason: r.reason, by: r.isolated_by, at: r.at, restoredAt: r.restored_at, restoredBy: r.restored_by, restoreReason: r.restore_reason };
}

/** A secret marked for emergency rotation (`bastion incident rotate`). It is due while the secret was not rotated since `at`. */
export interface StoredRotationMark {
  /** The secret's name. */
  readonly secret: string;
  /** The agent whose incident marked it. */
  readonly agent: string;
  readonly reason: string;
  readonly by: string;
  readonly at: number;
}

/** A row of `secret_rotation_marks`. */
export interface RotationMarkRow {
  secret_name: string;
  agent: string;
  reason: string;
  marked_by: string;
  marked_at: number;
}

/** The record of a row. */
export function rotationMarkFromRow(r: RotationMarkRow): StoredRotationMark {
  return { secret: r.secret_name, agent: r.agent, reason: r.reason, by: r.marked_by, at: r.marked_at };
}

/** Isolations (at most one in force per agent) and emergency rotation marks. */
export interface IsolationStore {
  /**
   * Isolates `rec.agent` unless it is isolated already, atomically (of racing
   * isolations exactly one is stored). Returns the isolation in force afterwards
   * and whether it is the one given (`created`).
   */
  isolateAgent(rec: { id: string; agent: string; reason: string; by: string; at: number }): Promise<{ readonly record: StoredIsolation; readonly created: boolean }>;
  /** Ends the isolation in force of `agent`, recording who, when and why; returns it, or undefined when the agent was not isolated. */
  restoreAgent(agent: string, opts: { at: number; by: string; reason: string }): Promise<StoredIsolation | undefined>;
  /** Isolations newest first (at most `limit`, default 1000): only `agent`'s when given; only those in force with `current`. */
  listIsolations(filter?: { agent?: string; current?: boolean; limit?: number }): Promise<StoredIsolation[]>;
  /** Marks secret `mark.secret` for emergency rotation (replacing an earlier mark of it). */
  markSecretForRotation(mark: StoredRotationMark): Promise<void>;
  /** Every rotation mark, ascending by secret name. */
  listRotationMarks(): Promise<StoredRotationMark[]>;
  /**
   * Ends the rotation grace of secret `secretId` at `at`: its superseded versions
   * still valid after `at` expire at `at` (the current version is untouched).
   * Returns how many versions were cut short; when any, the vault generation
   * moves (as a rotation moves it), so every instance's vault cache re-reads.
   */
  endSecretGrace(secretId: string, at: number): Promise<number>;
}
