/**
 * The request context every door builds as it parses its wire format, and the
 * one shape its audit record is made from. A door's own context (the model
 * door's turn, the tool door's call, the proxy's forward) extends it with what
 * only that door knows.
 */
import type { AuditEvent } from '../audit/types.ts';
import type { Decision } from '../decision.ts';
import type { UserIdentity } from './user.ts';

/** What every door knows about a request. Times: `started` from `performance.now()` (ms). */
export interface RequestContext {
  readonly door: AuditEvent['door'];
  /** `performance.now()` at arrival, in ms. */
  readonly started: number;
  /** The method or event name recorded (`tools/call`, `chat.completions`, `CONNECT`, `a2a.send`). */
  method: string;
  /** The authenticated agent; null until authentication succeeds. */
  agent: string | null;
  /** The end user, asserted or proven; null when none is named. */
  user: UserIdentity | null;
  /** The conversation (`Bastion-Conversation`), when named. */
  conversation: string | null;
  /** The MCP session id (tool door, 2025 revisions), when there is one. */
  session: string | null;
  /** What the request is for: a tool name, a model, `host:port`, a peer. */
  target: string | null;
  /** Non-secret facts for the audit record. */
  readonly detail: Record<string, unknown>;
}

/** A fresh context for a request that arrived at `started` (`performance.now()`, ms). */
export function newRequestContext(door: AuditEvent['door'], method: string, started: number = performance.now()): RequestContext {
  return { door, started, method, agent: null, user: null, conversation: null, session: null, target: null, detail: {} };
}

/**
 * The audit event for a request: the context's fields, the decision and the
 * outcome, the arrival time as ISO 8601 and the elapsed time in ms (three
 * decimals). `detail` is merged over the context's detail.
 */
export function auditEventOf(ctx: RequestContext, decision: Decision, outcome: AuditEvent['outcome'], detail: Record<string, unknown> = {}, now: number = performance.now()): AuditEvent {
  return {
    time: new Date(Date.now() - (now - ctx.started)).toISOString(),
    door: ctx.door,
    agent: ctx.agent,
    ...(ctx.user !== null ? { user: ctx.user.id } : {}),
    ...(ctx.session !== null ? { session: ctx.session } : {}),
    method: ctx.method,
    target: ctx.target,
    decision: { effect: decision.effect, reason: decision.reason, rule: decision.rule },
    outcome,
    durationMs: Math.round((now - ctx.started) * 1000) / 1000,
    detail: { ...ctx.detail, ...(ctx.user?.verified === true ? { userVerified: true } : {}), ...(ctx.conversation !== null ? { conversation: ctx.conversation } : {}), ...detail },
  };
}
