/**
 * The agent-to-agent door's decisions as stage functions (src/a2a/door.ts
 * composes them with the I/O: body reads, the peer registry, signing, the
 * nonce store and the HTTP calls). Each takes plain values and returns a value
 * or a {@link Refusal}; none does I/O, so each is tested alone
 * (test/a2a/stages.test.ts).
 */
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedA2aAgent } from '../config/types.ts';
import type { Decision } from '../decision.ts';
import type { BastionErrorCode } from '../errors.ts';
import { refusal } from '../door/refusal.ts';
import type { Reason } from '../door/reasons.ts';

/** A refusal: status, code, fixed message, decision, and non-secret facts for the audit record. */
export interface Refusal {
  readonly status: number;
  readonly code: BastionErrorCode;
  readonly message: string;
  readonly decision: Decision;
  readonly outcome?: AuditEvent['outcome'];
  readonly headers?: Record<string, string>;
  readonly extra?: Record<string, unknown>;
  /** Non-secret facts for the audit record's detail. */
  readonly detail?: Record<string, unknown>;
}

/** Whether a stage's answer is a refusal. */
export function isRefusal(v: unknown): v is Refusal {
  return typeof v === 'object' && v !== null && 'decision' in v && 'status' in v && 'code' in v;
}

/** A refusal of `reason`: status and error code from the kernel's table (src/door/reasons.ts), the door's own message and extras. */
export function refuseWith(reason: Reason, rule: string, message: string, more: Pick<Refusal, 'outcome' | 'headers' | 'extra' | 'detail'> = {}): Refusal {
  const r = refusal(reason, rule, 'a2a');
  return { status: r.status, code: r.code, message, decision: r.decision, ...more };
}

/** `a2a.invalid` (400) with `message` naming the field. */
export function invalid(message: string, rule: string): Refusal {
  return refuseWith('a2a.invalid', rule, message);
}

/** Send, stage 1: `a2a.agents.<agent>.peers` lists the peer, else `a2a.not_allowed`. */
export function mayContact(agents: ReadonlyMap<string, ResolvedA2aAgent>, agent: string, peer: string): Refusal | undefined {
  if (agents.get(agent)?.peers.includes(peer) ?? false) return undefined;
  return refuseWith('a2a.not_allowed', `a2a.agents.${agent}.peers`, `agent may not send to peer ${peer}`);
}

/** The claims of a verified envelope that the door checks against the peer's registration and this instance. */
export interface EnvelopeClaims {
  readonly sender: string;
  readonly recipient: string;
  /** Issued at, epoch seconds. */
  readonly iat: number;
}

/**
 * Inbound, after the signature: the envelope's `sender` is the peer's
 * registered sender id (`a2a.sender_mismatch`), its `recipient` is this
 * instance's `identity.issuer` (`a2a.wrong_recipient`), and `iat` is within
 * ±`maxAgeS` of `nowMs` (`a2a.stale`, with the skew in seconds in `detail`).
 */
export function checkClaims(
  claims: EnvelopeClaims,
  peer: { readonly name: string; readonly sender: string },
  here: { readonly issuer: string; readonly maxAgeS: number; readonly nowMs: number },
): Refusal | undefined {
  if (claims.sender !== peer.sender) return refuseWith('a2a.sender_mismatch', `peers.${peer.name}`, 'sender does not match the peer');
  if (claims.recipient !== here.issuer) return refuseWith('a2a.wrong_recipient', 'identity.issuer', 'params.metadata.bastion.recipient: not this instance');
  const skewS = Math.floor(here.nowMs / 1000) - claims.iat;
  if (Math.abs(skewS) > here.maxAgeS) {
    return refuseWith('a2a.stale', 'a2a.maxAgeS', `message timestamp is more than ${here.maxAgeS} s from now`, { detail: { skewS } });
  }
  return undefined;
}

/**
 * Inbound: the local agent a message from `peer` is for. `to` names it (it
 * must receive from the peer), or, without `to`, the one agent that receives
 * from the peer (none: `a2a.not_receiving`; several: `a2a.invalid`, `to` is required).
 */
export function receivingAgent(agents: ReadonlyMap<string, ResolvedA2aAgent>, to: string | null, peer: string): string | Refusal {
  const notReceiving = refuseWith('a2a.not_receiving', to === null ? 'a2a.agents' : `a2a.agents.${to}.receiveFrom`, 'no agent here receives messages from this peer');
  if (to !== null) return (agents.get(to)?.receiveFrom.includes(peer) ?? false) ? to : notReceiving;
  const receiving = [...agents].filter(([, a]) => a.receiveFrom.includes(peer)).map(([name]) => name);
  if (receiving.length === 1) return receiving[0] as string;
  if (receiving.length === 0) return notReceiving;
  return invalid('params.metadata.bastion.to: required (several agents here receive from this peer)', 'a2a.agents');
}

/** Inbound: where `agent` receives messages (`a2a.agents.<agent>.deliver`), else `a2a.no_deliver`. */
export function deliverUrl(agents: ReadonlyMap<string, ResolvedA2aAgent>, agent: string): URL | Refusal {
  return agents.get(agent)?.deliver ?? refuseWith('a2a.no_deliver', `a2a.agents.${agent}.deliver`, 'the agent does not receive messages');
}

/** What an HTTP call returned: a status and the parsed JSON (undefined when not JSON), or a short, non-secret network error name. */
export type PostAnswer = { readonly status: number; readonly json: unknown } | { readonly error: string };

/**
 * Send, last stage: the peer's answer. A JSON-RPC response with `result` and
 * status 200 is the message's result; anything else is `a2a.peer_refused`
 * (with the peer's `ERR_…` code when it gave a well-formed one) or, for a
 * network failure, `a2a.peer_unreachable`.
 */
export function peerResult(answer: PostAnswer, peer: string): { readonly result: unknown; readonly status: number } | Refusal {
  if ('error' in answer) {
    return refuseWith('a2a.peer_unreachable', `peers.${peer}`, `peer ${peer} could not be reached`, { outcome: 'error', detail: { error: answer.error } });
  }
  const reply = answer.json as { result?: unknown; error?: { code?: unknown } } | undefined;
  if (answer.status === 200 && typeof reply === 'object' && reply !== null && 'result' in reply) return { result: reply.result, status: answer.status };
  const peerCode = typeof reply?.error?.code === 'string' && /^ERR_[A-Z0-9_]{1,64}$/.test(reply.error.code) ? reply.error.code : null;
  return refuseWith('a2a.peer_refused', `peers.${peer}`, `peer ${peer} refused the message${peerCode !== null ? ` (${peerCode})` : ''}`, {
    outcome: 'error',
    extra: { peer: { status: answer.status, code: peerCode } },
    detail: { peerStatus: answer.status, peerCode },
  });
}

/**
 * Inbound, last stage: the local agent's answer. A 2xx JSON answer is the
 * result (a JSON-RPC response's `result`, else the JSON itself); a network
 * failure, another status, no JSON, or a JSON-RPC error without result is
 * `a2a.delivery`.
 */
export function deliveryResult(answer: PostAnswer, agent: string): { readonly result: unknown } | Refusal {
  const reply = 'json' in answer ? (answer.json as { result?: unknown; error?: unknown } | undefined) : undefined;
  if ('error' in answer || answer.status < 200 || answer.status > 299 || reply === undefined || (typeof reply === 'object' && reply !== null && 'error' in reply && !('result' in reply))) {
    return refuseWith('a2a.delivery', `a2a.agents.${agent}.deliver`, 'the message could not be delivered to the agent', {
      outcome: 'error',
      detail: { delivery: 'error' in answer ? answer.error : { status: answer.status } },
    });
  }
  // An agent answering as an A2A server gives a JSON-RPC response: its result is the answer; any other JSON is the answer itself.
  const result = typeof reply === 'object' && reply !== null && 'result' in reply && (reply as { jsonrpc?: unknown }).jsonrpc === '2.0' ? reply.result : reply;
  return { result };
}
