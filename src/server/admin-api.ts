/**
 * The admin HTTP API under `/api` (the console will use it; scripts can too).
 *
 *   GET  /api/approvals[?status=pending]      → { approvals: ApprovalRecord[] }
 *   GET  /api/approvals/:id                   → ApprovalRecord
 *   POST /api/approvals/:id/approve {reason?} → ApprovalRecord
 *   POST /api/approvals/:id/deny    {reason?} → ApprovalRecord
 *
 * Authentication: `Authorization: Bearer <admin key>` (config `admin.keys`);
 * with no admin key configured the API answers 404. POSTs must be
 * `application/json` (a cross-site form cannot send that without a preflight,
 * which we do not answer) — CSRF protection on top of the Host/Origin checks.
 * Every call is audited on the admin door.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allow, deny, type Decision } from '../decision.ts';
import { isBastionError } from '../errors.ts';
import type { ApprovalRecord } from '../approvals/store.ts';
import type { Gateway } from './gateway.ts';
import { headerOne, readBody } from '../door/body.ts';
import { authenticateAgent } from '../door/authenticate.ts';
import { handleIncidentApi, incidentRouteName } from '../incidents/admin-routes.ts';

const STATUSES = new Set<ApprovalRecord['status']>(['pending', 'approved', 'denied', 'expired', 'used']);
const MAX_REASON = 500;

export async function handleAdminApi(gateway: Gateway, req: IncomingMessage, res: ServerResponse, url: URL, started: number, maxBodyBytes: number): Promise<void> {
  let decision: Decision = deny('admin.unknown_route', 'api');
  let outcome: 'ok' | 'denied' | 'error' = 'denied';
  let status = 404;
  let target: string | null = null;
  const detail: Record<string, unknown> = {};
  const send = (code: number, body: unknown): void => {
    status = code;
    res.writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };
  try {
    if (gateway.config.adminKeys.length === 0) {
      decision = deny('admin.disabled', 'admin.keys');
      return send(404, { error: 'admin API disabled (no admin.keys configured)' });
    }
    const authn = authenticateAgent(req.headers, gateway.adminKeys, ['authorization']);
    if (!authn.ok) {
      decision = deny(authn.reason, 'admin.keys');
      res.setHeader('www-authenticate', 'Bearer realm="bastion-admin"');
      return send(401, { error: 'admin authentication required (ERR_AUTH_REQUIRED)' });
    }
    if (authn.agent !== 'admin') detail.admin = authn.agent;
    const parts = url.pathname.split('/').filter(Boolean); // ['api', 'approvals', id?, verb?]
    // Incident response (src/incidents/admin-routes.ts): isolate, restore, list, snapshot.
    if (parts[1] === 'incidents') {
      const o = await handleIncidentApi(gateway, req, res, url, { admin: authn.agent, maxBodyBytes });
      ({ decision, outcome, status, target } = o);
      Object.assign(detail, o.detail);
      return;
    }
    if (parts[1] !== 'approvals' || parts.length > 4) return send(404, { error: 'not found' });
    const queue = gateway.deps.approvals;
    if (req.method === 'GET' && parts.length === 2) {
      const s = url.searchParams.get('status');
      if (s !== null && !STATUSES.has(s as ApprovalRecord['status'])) {
        decision = deny('admin.bad_request', 'api');
        return send(400, { error: 'status must be one of pending, approved, denied, expired, used' });
      }
      decision = allow('admin.read', 'api');
      outcome = 'ok';
      return send(200, { approvals: await queue.list(s === null ? {} : { status: s as ApprovalRecord['status'] }) });
    }
    const id = parts[2] ?? '';
    target = id;
    if (req.method === 'GET' && parts.length === 3) {
      const rec = await gateway.store.getApproval(id);
      decision = allow('admin.read', 'api');
      outcome = rec ? 'ok' : 'error';
      return rec ? send(200, rec) : send(404, { error: 'no such approval (ERR_APPROVAL_UNKNOWN)' });
    }
    if (req.method === 'POST' && parts.length === 4 && (parts[3] === 'approve' || parts[3] === 'deny')) {
      if (!(headerOne(req, 'content-type') ?? '').toLowerCase().startsWith('application/json')) {
        decision = deny('admin.csrf', 'api');
        return send(415, { error: 'content-type must be application/json' });
      }
      const body = await readBody(req, Math.min(maxBodyBytes, 16 * 1024), gateway.config.server.bodyTimeoutMs);
      if (typeof body === 'string') {
        decision = deny('admin.bad_request', 'api');
        return send(body === 'too_large' ? 413 : body === 'timeout' ? 408 : 400, { error: 'bad body' });
      }
      let reason: string | null = null;
      try {
        const parsed = body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as unknown);
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not an object');
        const r = (parsed as { reason?: unknown }).reason;
        if (r !== undefined && typeof r !== 'string') throw new TypeError('reason');
        reason = r === undefined ? null : r.slice(0, MAX_REASON);
      } catch {
        decision = deny('admin.bad_request', 'api');
        return send(400, { error: 'body must be a JSON object like {"reason": "..."}' });
      }
      const verdict = parts[3] === 'approve' ? 'approved' : 'denied';
      const o = await decideApprovalAsAdmin(gateway, id, verdict, authn.agent === 'admin' ? 'admin-api' : `admin-api:${authn.agent}`, reason);
      decision = o.decision;
      outcome = o.outcome;
      Object.assign(detail, o.detail);
      return send(o.status, o.body);
    }
    return send(404, { error: 'not found' });
  } catch (err) {
    outcome = 'error';
    detail.code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
    if (!res.headersSent) send(500, { error: 'internal error' });
  } finally {
    await gateway.auditStep.durable({
        time: new Date(Date.now() - (performance.now() - started)).toISOString(),
        door: 'admin',
        agent: 'admin',
        method: `api.${req.method ?? 'UNKNOWN'} ${incidentRouteName(url.pathname).replace(/\/approvals\/[^/]+/, '/approvals/:id')}`,
        target,
        decision,
        outcome,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        detail: { status, ...detail },
      });
  }
}

/** What {@link decideApprovalAsAdmin} answers: the HTTP status and body, and the audit record's decision, outcome and detail. */
export interface AdminVerdict {
  readonly status: number;
  readonly body: unknown;
  readonly decision: Decision;
  readonly outcome: 'ok' | 'error';
  readonly detail: Record<string, unknown>;
}

/**
 * An admin's decision on approval `id` through the gateway's queue (single use,
 * the queue's binding rules; a decision wakes the held call here and, over the
 * cluster bus, elsewhere), mapped to an HTTP answer: 200 with the record, 404
 * unknown, 409 no longer pending, 503 recorded but the other instances were not
 * told. Shared by the admin API and the console (src/console/). `by` is recorded
 * as the decider. Throws only what the store throws unexpectedly.
 */
export async function decideApprovalAsAdmin(gateway: Gateway, id: string, verdict: 'approved' | 'denied', by: string, reason: string | null): Promise<AdminVerdict> {
  try {
    const rec = await gateway.deps.approvals.decide(id, verdict, by, reason);
    return { status: 200, body: rec, decision: allow(`approval.${verdict}`, 'api'), outcome: 'ok', detail: { approval: verdict } };
  } catch (err) {
    if (isBastionError(err, 'ERR_APPROVAL_UNKNOWN')) {
      const st = (err.detail as { status?: string } | undefined)?.status;
      return st === undefined
        ? { status: 404, body: { error: 'no such approval (ERR_APPROVAL_UNKNOWN)', code: 'ERR_APPROVAL_UNKNOWN' }, decision: deny('approval.not_pending', 'api'), outcome: 'error', detail: {} }
        : { status: 409, body: { error: `approval is ${st}, not pending`, code: 'ERR_APPROVAL_UNKNOWN' }, decision: deny('approval.not_pending', 'api'), outcome: 'error', detail: {} };
    }
    if (isBastionError(err, 'ERR_STORE') && (err.detail as { notified?: unknown } | undefined)?.notified === false) {
      // Recorded, but the other instances were not told (Redis down): they see it at their next poll.
      return {
        status: 503,
        body: { error: 'decision recorded; the other instances could not be told (ERR_STORE)', code: 'ERR_STORE' },
        decision: deny('store.error', 'api'),
        outcome: 'error',
        detail: { approval: verdict, notified: false },
      };
    }
    throw err;
  }
}
