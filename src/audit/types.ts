/**
 * Shapes of audit records and checkpoints.
 *
 * A record's `hash` is the lowercase hex SHA-256 of the RFC 8785 canonical JSON
 * of the record without its `hash` field (so `prevHash` is inside what is hashed).
 * The first record's `prevHash` is 64 zeros. A checkpoint signs, with Ed25519,
 * the RFC 8785 canonical JSON of `{seq, hash, time, keyId}`.
 */
import type { Decision } from '../decision.ts';

/** What a door hands to the audit log: everything except chain fields. */
export interface AuditEvent {
  /** ISO 8601 time the request arrived. */
  readonly time: string;
  /** Which door: `model` (LLM API proxy), `tool` (MCP), `network` (egress proxy), `a2a` (agent-to-agent messages), `admin` (admin API and CLI), `system` (start, stop, config). */
  readonly door: 'model' | 'tool' | 'network' | 'a2a' | 'admin' | 'system';
  /** The principal: agent name, `admin`, or null when authentication failed. */
  readonly agent: string | null;
  /** The end user the agent acts for (`Bastion-User` or the request's user field), when known. */
  readonly user?: string | null;
  /** MCP session id, or the sandbox session of a network-door principal socket (src/egress/principal-socket.ts), when there was one. */
  readonly session?: string | null;
  /** JSON-RPC method (`tools/call`), or an event name (`http.request`, `approval.decide`, `serve.start`). */
  readonly method: string;
  /** Exposed tool/prompt name or resource URI, when the method has one. */
  readonly target?: string | null;
  readonly decision: Decision;
  /** SHA-256 hex of the canonical JSON of the arguments; never the values. */
  readonly argsDigest?: string | null;
  /** Arguments with credentials redacted, only when `audit.recordArguments: redacted`. */
  readonly args?: unknown;
  /** `ok`, `denied`, `held`, `error`, `timeout`; `client_closed`: the client went away before its answer was delivered (not a failure of Bastion or the upstream). */
  readonly outcome: 'ok' | 'denied' | 'held' | 'error' | 'timeout' | 'client_closed';
  /** Elapsed ms from arrival to the response. */
  readonly durationMs: number;
  /** Non-secret structured detail: error code, upstream, flags (hidden characters, redactions), approval id. */
  readonly detail?: Readonly<Record<string, unknown>>;
}

/** A stored record: the event plus its chain fields. */
export interface AuditRecord extends AuditEvent {
  /** 1-based, gapless. */
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

/** A signed checkpoint over the record at `seq`. */
export interface AuditCheckpoint {
  readonly seq: number;
  /** The hash of the record at `seq`. */
  readonly hash: string;
  readonly time: string;
  /** Id of the Ed25519 key that signed (a key in the store's key table). */
  readonly keyId: string;
  /** base64url Ed25519 signature over canonical JSON of `{seq, hash, time, keyId}`. */
  readonly signature: string;
}
