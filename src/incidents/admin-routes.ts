/**
 * The incident routes of the admin API (src/server/admin-api.ts dispatches
 * `/api/incidents…` here after authenticating the admin):
 *
 *   GET  /api/incidents                      → { isolated: string[], isolations: IsolationRecord[], rotationMarks }
 *   POST /api/incidents/:agent/isolate {reason} → { record, created, deniedApprovals, notified }
 *   POST /api/incidents/:agent/restore {reason} → IsolationRecord
 *   POST /api/incidents/:agent/rotate {reason}  → { agent, secrets: RotationStep[] } (emergency rotation, ./rotate.ts)
 *   GET  /api/incidents/:agent/snapshot      → the forensic bundle (./snapshot.ts), `x-bastion-sha256` its digest
 *
 * Errors: 400 `ERR_CLI_USAGE` (body, reason), 404 `ERR_AGENT_UNKNOWN`, 409
 * `ERR_AGENT_NOT_ISOLATED`, 415 (a POST that is not `application/json`: CSRF).
 * The caller writes the one audit record from what {@link handleIncidentApi} returns.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allow, deny, type Decision } from '../decision.ts';
import { headerOne, readBody } from '../door/body.ts';
import { isBastionError } from '../errors.ts';
import type { Gateway } from '../server/gateway.ts';
import { assertReason, MAX_ISOLATION_REASON_CHARS } from './isolation.ts';
import { startEmergencyRotation } from './rotate.ts';
import { serializeSnapshot, takeSnapshot } from './snapshot.ts';

/** What the admin API records for an incident route. */
export interface IncidentApiOutcome {
  readonly status: number;
  readonly decision: Decision;
  readonly outcome: 'ok' | 'denied' | 'error';
  readonly target: string | null;
  readonly detail: Record<string, unknown>;
}

/** The admin API's method name of a request to `pathname` (the agent replaced by `:agent`). */
export function incidentRouteName(pathname: string): string {
  return pathname.replace(/^\/api\/incidents\/[^/]+/, '/api/incidents/:agent');
}

/**
 * Serves one `/api/incidents…` request of admin `admin` (the principal the
 * admin key names), writing the response. Throws only what the store throws unexpectedly.
 */
export async function handleIncidentApi(gateway: Gateway, req: IncomingMessage, res: ServerResponse, url: URL, opts: { readonly admin: string; readonly maxBodyBytes: number }): Promise<IncidentApiOutcome> {
  const detail: Record<string, unknown> = {};
  let target: string | null = null;
  const answer = (status: number, body: unknown, decision: Decision, outcome: IncidentApiOutcome['outcome']): IncidentApiOutcome => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
    return { status, decision, outcome, target, detail };
  };
  const bad = (status: number, error: string): IncidentApiOutcome => answer(status, { error, code: 'ERR_CLI_USAGE' }, deny('admin.bad_request', 'api'), 'denied');
  const parts = url.pathname.split('/').filter(Boolean); // ['api', 'incidents', agent?, verb?]
  const by = opts.admin === 'admin' ? 'admin-api' : `admin-api:${opts.admin}`;
  const isolations = gateway.isolations;

  if (parts.length === 2 && req.method === 'GET') {
    const [list, marks] = await Promise.all([isolations.list({ limit: 1000 }), gateway.store.listRotationMarks()]);
    return answer(200, { isolated: isolations.isolatedAgents(), isolations: list, rotationMarks: marks }, allow('admin.read', 'api'), 'ok');
  }
  if (parts.length !== 4) return answer(404, { error: 'not found' }, deny('admin.unknown_route', 'api'), 'denied');
  let agent: string;
  try {
    agent = decodeURIComponent(parts[2] as string);
  } catch {
    return bad(400, 'the agent in the path is not valid percent-encoding');
  }
  target = agent.slice(0, 128);
  detail.forAgent = target;
  const verb = parts[3];

  if (verb === 'snapshot' && req.method === 'GET') {
    try {
      const bundle = await takeSnapshot(gateway.store, gateway.config, agent, by);
      const { text, sha256 } = serializeSnapshot(bundle);
      detail.sha256 = sha256;
      detail.records = bundle.audit.records.length;
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'x-bastion-sha256': sha256, 'content-disposition': `attachment; filename="incident-${encodeURIComponent(agent)}.json"` });
      res.end(text);
      return { status: 200, decision: allow('incident.snapshot', 'incidents'), outcome: 'ok', target, detail };
    } catch (err) {
      if (isBastionError(err, 'ERR_AGENT_UNKNOWN')) return answer(404, { error: `no agent ${JSON.stringify(target)}`, code: 'ERR_AGENT_UNKNOWN' }, deny('admin.bad_request', 'api'), 'denied');
      throw err;
    }
  }
  if ((verb === 'isolate' || verb === 'restore' || verb === 'rotate') && req.method === 'POST') {
    if (!(headerOne(req, 'content-type') ?? '').toLowerCase().startsWith('application/json')) {
      return answer(415, { error: 'content-type must be application/json' }, deny('admin.csrf', 'api'), 'denied');
    }
    const body = await readBody(req, Math.min(opts.maxBodyBytes, 16 * 1024), gateway.config.server.bodyTimeoutMs);
    if (typeof body === 'string') return bad(body === 'too_large' ? 413 : body === 'timeout' ? 408 : 400, 'bad body');
    let reason: string;
    try {
      const parsed = body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as unknown);
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('not an object');
      const r = (parsed as { reason?: unknown }).reason ?? '';
      assertReason(r);
      reason = r;
    } catch {
      return bad(400, `body must be a JSON object like {"reason": "..."} (reason: a string of at most ${MAX_ISOLATION_REASON_CHARS} characters)`);
    }
    detail.reason = reason;
    try {
      if (verb === 'rotate') {
        const steps = await startEmergencyRotation(gateway.store, gateway.config, agent, {
          by,
          reason,
          audit: (e) => gateway.auditStep.durable(e),
          // One notice per secret marked (the notifier's `rotate` action; values never).
          alert: (_kind, _severity, a, _summary, d) => gateway.notifications.incident({ agent: a, action: 'rotate', reason, by, detail: d }),
        });
        detail.secrets = steps.filter((x) => x.marked).map((x) => x.secret);
        return answer(200, { agent, secrets: steps }, allow('incident.rotate', 'incidents'), 'ok');
      }
      if (verb === 'isolate') {
        const o = await isolations.isolateDetailed(agent, reason, by);
        Object.assign(detail, { created: o.created, deniedApprovals: o.deniedApprovals, notified: o.notified });
        return answer(200, o, allow('incident.isolate', 'incidents'), 'ok');
      }
      const rec = await isolations.restore(agent, reason, by);
      return answer(200, rec, allow('incident.restore', 'incidents'), 'ok');
    } catch (err) {
      if (isBastionError(err, 'ERR_AGENT_UNKNOWN')) return answer(404, { error: `no agent ${JSON.stringify(target)}`, code: 'ERR_AGENT_UNKNOWN' }, deny('admin.bad_request', 'api'), 'denied');
      if (isBastionError(err, 'ERR_AGENT_NOT_ISOLATED')) return answer(409, { error: `agent ${JSON.stringify(target)} is not isolated`, code: 'ERR_AGENT_NOT_ISOLATED' }, deny('admin.bad_request', 'api'), 'denied');
      throw err;
    }
  }
  return answer(404, { error: 'not found' }, deny('admin.unknown_route', 'api'), 'denied');
}
