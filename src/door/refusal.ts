/**
 * The refusal value every door renders in its own wire format: the decision
 * (recorded), the error code (answered), the HTTP status and the JSON-RPC error
 * code, all read from the closed table in reasons.ts.
 */
import type { Decision } from '../decision.ts';
import type { BastionErrorCode } from '../errors.ts';
import { codeOf, reasonEntry, RPC, statusOf, type DoorName, type Reason } from './reasons.ts';

/** A refused request: `{decision, code, status}` plus the JSON-RPC code for the tool door. */
export interface Refusal {
  readonly decision: Decision;
  readonly code: BastionErrorCode;
  /** HTTP status the door answers with. */
  readonly status: number;
  /** JSON-RPC 2.0 error code (tool door). */
  readonly rpc: number;
}

/**
 * The refusal of `reason` (a row of the table) decided by `rule` (a config path,
 * policy id or named check), as `door` answers it.
 */
export function refusal(reason: Reason, rule: string, door: DoorName): Refusal {
  return refusalOf({ effect: 'deny', reason, rule }, door);
}

/**
 * The refusal for a deny decision made elsewhere (the policy engine, the egress
 * guard, the release rule). A reason missing from the table is answered as
 * `internal` (500) and keeps its own reason in the record, so a gap in the
 * table fails closed and shows in the audit log.
 */
export function refusalOf(decision: Decision, door: DoorName): Refusal {
  const row = reasonEntry(decision.reason);
  return { decision, code: codeOf(decision.reason, door), status: statusOf(decision.reason, door), rpc: row.rpc ?? RPC.DENIED };
}
