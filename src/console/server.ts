/**
 * The operator's console at `/console` on the main listener (docs/console.md):
 * static pages (src/console/static/) and JSON endpoints under `/console/api/`.
 * The listener has already checked Host and Origin (src/server/http.ts).
 *
 *   GET  /console/                      the app (sign-in form until signed in)
 *   POST /console/api/sign-in {key}     admin key → session cookie + CSRF token
 *   GET  /console/api/session           who is signed in, and the CSRF token
 *   POST /console/api/sign-out
 *   GET  /console/api/events            server-sent events (./events.ts)
 *   ...  the pages' endpoints (./api.ts)
 *
 * Every `/console/api/` request ends in one audit record on the `admin` door,
 * with the admin as `admin:<id>` (null before sign-in) and `detail.admin`;
 * reads are batched, changes and refusals durable. Every state-changing
 * request needs the session cookie, the session's token in `X-CSRF-Token`
 * (else 403 `ERR_CONSOLE_CSRF`) and a JSON body. Static files are not audited.
 * The console is on only when `admin.keys` is configured (else 404).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { allow, deny, type Decision } from '../decision.ts';
import { isBastionError } from '../errors.ts';
import { headerOne, readBody } from '../door/body.ts';
import { reasonEntry, type Reason } from '../door/reasons.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { Gateway } from '../server/gateway.ts';
import { MAX_KEY_CHARS } from '../door/authenticate.ts';
import * as api from './api.ts';
import { ChainStatus } from './chain-status.ts';
import { ConsoleEvents } from './events.ts';
import { CONSOLE_HEADERS, cameOverHttps, clearedSessionCookie, sessionCookie, sessionIdOf } from './headers.ts';
import { ConsoleSessions, csrfMatches, type ConsoleSession } from './sessions.ts';
import { consoleAssets } from './static.ts';

/** Failed sign-ins allowed per client address per {@link SIGN_IN_WINDOW_MS}; more are refused 429 until the window ends. */
const SIGN_IN_FAILURES = 10;
const SIGN_IN_WINDOW_MS = 60_000;

/** The console's per-gateway state: sessions, failed sign-ins, the chain verifier's position, the event streams. */
interface ConsoleState {
  readonly sessions: ConsoleSessions;
  /** Failed sign-ins by client address: count and window start (epoch ms). At most 10 000 addresses are tracked. */
  readonly failures: Map<string, { count: number; since: number }>;
  readonly chain: ChainStatus;
  readonly events: ConsoleEvents;
}

const states = new WeakMap<Gateway, ConsoleState>();

function stateOf(gateway: Gateway): ConsoleState {
  let s = states.get(gateway);
  if (s === undefined) {
    const c = gateway.config.raw.server.console;
    s = {
      sessions: new ConsoleSessions({ ttlMs: c.sessionTtlMs, idleMs: c.sessionIdleMs }),
      failures: new Map(),
      chain: new ChainStatus(gateway.store, { checkpointEvery: gateway.config.audit.checkpointEvery, witnessFile: gateway.config.audit.witness?.file }),
      events: new ConsoleEvents(gateway),
    };
    states.set(gateway, s);
  }
  return s;
}

/** Ends the console's event streams of `gateway` (call before closing the listener). */
export function closeConsole(gateway: Gateway): void {
  states.get(gateway)?.events.close();
}

type Handler = (r: api.ApiRequest) => Promise<api.ApiAnswer>;

interface Route {
  readonly method: 'GET' | 'POST';
  /** Segments after `/console/api/`; `:x` is a parameter (1-256 characters, no `/`). */
  readonly path: readonly string[];
  readonly handler: Handler;
}

const route = (method: Route['method'], path: string, handler: Handler): Route => ({ method, path: path.split('/'), handler });

/** The pages' endpoints. */
const ROUTES: readonly Route[] = [
  route('GET', 'approvals', api.listApprovals),
  route('POST', 'approvals/:id/approve', (r) => api.decideApproval(r, 'approved')),
  route('POST', 'approvals/:id/deny', (r) => api.decideApproval(r, 'denied')),
  route('GET', 'audit', api.auditList),
  route('GET', 'audit/chain', api.chainStatus),
  route('GET', 'audit/:seq', api.auditRecord),
  route('GET', 'agents', api.listAgents),
  route('GET', 'agents/:name', api.agentDetail),
  route('GET', 'agents/:name/explain', api.explainCall),
  route('GET', 'secrets', api.listSecrets),
  route('POST', 'secrets', api.addSecret),
  route('POST', 'secrets/:name/rotate', api.rotateSecret),
  route('POST', 'secrets/:name/revoke', api.revokeSecret),
  route('GET', 'bans', api.listBans),
  route('POST', 'bans/lift', api.liftBan),
  route('GET', 'alerts', api.listAlerts),
  route('POST', 'alerts/:seq/ack', api.ackAlert),
  route('GET', 'incidents', api.listIncidents),
  route('POST', 'incidents/:agent/isolate', (r) => api.incidentAction(r, 'isolate')),
  route('POST', 'incidents/:agent/restore', (r) => api.incidentAction(r, 'restore')),
  route('POST', 'incidents/:agent/snapshot', (r) => api.incidentAction(r, 'snapshot')),
];

/** The route and its parameters for `segments`, or undefined; `methodMismatch` when only another method matches. */
function match(method: string, segments: readonly string[]): { route: Route; params: string[] } | 'method' | undefined {
  let other = false;
  for (const r of ROUTES) {
    if (r.path.length !== segments.length) continue;
    const params: string[] = [];
    let hit = true;
    for (let i = 0; i < r.path.length; i++) {
      const p = r.path[i]!;
      const s = segments[i]!;
      if (p.startsWith(':')) {
        if (s.length === 0 || s.length > 256) hit = false;
        else params.push(s);
      } else if (p !== s) hit = false;
      if (!hit) break;
    }
    if (!hit) continue;
    if (r.method === method) return { route: r, params };
    other = true;
  }
  return other ? 'method' : undefined;
}

/** Largest JSON body a console request may send, bytes (a secret value is at most 64 KiB). */
const MAX_CONSOLE_BODY = 96 * 1024;

/**
 * Serves a request under `/console` (the path is `/console` or starts with `/console/`).
 * Never throws: an unexpected failure is a generic 500, audited.
 */
export async function handleConsole(gateway: Gateway, req: IncomingMessage, res: ServerResponse, url: URL, started: number): Promise<void> {
  const path = url.pathname;
  if (!path.startsWith('/console/api/') && path !== '/console/api') return serveStatic(gateway, req, res, path);
  return serveApi(gateway, req, res, url, started);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

function serveStatic(gateway: Gateway, req: IncomingMessage, res: ServerResponse, path: string): void {
  if (gateway.config.adminKeys.length === 0) return sendJson(res, 404, { error: 'console disabled (no admin.keys configured)', code: 'ERR_CONSOLE_NOT_FOUND' });
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed', code: 'ERR_CONSOLE_NOT_FOUND' }, { allow: 'GET, HEAD' });
  if (path === '/console') {
    res.writeHead(302, { ...CONSOLE_HEADERS, location: '/console/' });
    return void res.end();
  }
  const name = path === '/console/' ? 'index.html' : path.slice('/console/'.length);
  const asset = consoleAssets().get(name);
  if (asset === undefined) return sendJson(res, 404, { error: 'not found', code: 'ERR_CONSOLE_NOT_FOUND' });
  res.writeHead(200, { ...CONSOLE_HEADERS, 'content-type': asset.contentType, 'content-length': String(asset.body.length) });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
}

/** The answer of a refusal by reason, with its stable code from the reason table. */
function refusalAnswer(reason: Reason, message: string, rule: string): api.ApiAnswer {
  const row = reasonEntry(reason);
  return { status: row.status, body: { error: `${message} (${row.code})`, code: row.code }, decision: deny(reason, rule), outcome: 'denied' };
}

async function serveApi(gateway: Gateway, req: IncomingMessage, res: ServerResponse, url: URL, started: number): Promise<void> {
  const state = stateOf(gateway);
  const segments = url.pathname.slice('/console/api/'.length).split('/');
  const verb = req.method ?? 'UNKNOWN';
  let recordMethod = `console.${verb} ${url.pathname.slice(0, 256)}`;
  let session: ConsoleSession | undefined;
  let answer: api.ApiAnswer | undefined;
  let durable = verb !== 'GET';
  const extraHeaders: Record<string, string> = {};
  const secure = cameOverHttps(req);
  try {
    if (gateway.config.adminKeys.length === 0) {
      answer = { ...refusalAnswer('admin.disabled', 'console disabled: no admin.keys configured', 'admin.keys'), status: 404 };
      return;
    }
    const one = segments.length === 1 ? segments[0] : undefined;
    if (one === 'sign-in') {
      recordMethod = 'console.sign-in';
      durable = true;
      if (verb !== 'POST') {
        answer = { ...refusalAnswer('http.method', 'method not allowed', 'console'), status: 405 };
        return;
      }
      const r = await signIn(gateway, state, req, secure, extraHeaders);
      answer = r.answer;
      session = r.session;
      return;
    }
    const sid = sessionIdOf(req);
    session = one === 'events' ? state.sessions.peek(sid) : state.sessions.get(sid);
    if (session !== undefined && !gateway.config.adminKeyIds.includes(session.admin)) {
      // The admin's key left the config (reload): the session ends with it.
      state.sessions.delete(sid);
      session = undefined;
    }
    if (session === undefined) {
      durable = true;
      if (sid !== undefined) extraHeaders['set-cookie'] = clearedSessionCookie(secure);
      answer = refusalAnswer('console.session', 'sign in first: no session, or it expired', 'console.session');
      return;
    }
    const s = session;
    if (one === 'session' && verb === 'GET') {
      answer = { status: 200, body: { admin: s.admin, csrf: s.csrf, expiresAt: s.createdAt + gateway.config.raw.server.console.sessionTtlMs }, decision: allow('console.read', 'console.session'), outcome: 'ok' };
      return;
    }
    if (one === 'events' && verb === 'GET') {
      recordMethod = 'console.events';
      const opened = state.events.open(res, { ...CONSOLE_HEADERS }, () => state.sessions.peek(sid));
      answer = opened
        ? { status: 200, body: undefined, decision: allow('console.read', 'console.events'), outcome: 'ok' }
        : { ...refusalAnswer('ratelimit.concurrent', 'too many open event streams', 'console.events'), status: 429 };
      return;
    }
    // Every change: the session's CSRF token in the header, then a JSON body.
    if (verb !== 'GET' && verb !== 'HEAD') {
      if (!csrfMatches(s, headerOne(req, 'x-csrf-token'))) {
        answer = refusalAnswer('console.csrf', 'missing or wrong X-CSRF-Token', 'console.csrf');
        return;
      }
    }
    if (one === 'sign-out' && verb === 'POST') {
      recordMethod = 'console.sign-out';
      state.sessions.delete(sid);
      extraHeaders['set-cookie'] = clearedSessionCookie(secure);
      answer = { status: 200, body: { signedOut: true }, decision: allow('console.sign_out', 'console.session'), outcome: 'ok' };
      return;
    }
    const m = match(verb, segments);
    if (m === undefined || m === 'method') {
      answer = m === 'method' ? { ...refusalAnswer('http.method', 'method not allowed', 'console'), status: 405 } : refusalAnswer('console.not_found', 'no such console endpoint', 'console');
      return;
    }
    recordMethod = `console.${verb} /console/api/${m.route.path.join('/')}`;
    let body: Record<string, unknown> = {};
    if (verb === 'POST') {
      const parsed = await jsonBody(gateway, req);
      if (typeof parsed === 'string') {
        answer = parsed === 'type' ? { ...refusalAnswer('admin.csrf', 'content-type must be application/json', 'console'), status: 415 } : { ...refusalAnswer('admin.bad_request', parsed, 'console') };
        return;
      }
      body = parsed;
    }
    answer = await m.route.handler({ gateway, admin: s.admin, query: url.searchParams, body, params: m.params, chain: state.chain, refresh: () => state.events.refresh() });
    if (answer.method !== undefined) recordMethod = answer.method;
  } catch (err) {
    answer = {
      status: isBastionError(err, 'ERR_STORE') ? 503 : 500,
      body: { error: 'internal error', code: isBastionError(err) ? err.code : 'ERR_INTERNAL' },
      decision: deny(isBastionError(err, 'ERR_STORE') ? 'store.error' : 'internal', 'console'),
      outcome: 'error',
      detail: { code: isBastionError(err) ? err.code : 'ERR_INTERNAL' },
    };
  } finally {
    const a: api.ApiAnswer = answer ?? { status: 500, body: { error: 'internal error', code: 'ERR_INTERNAL' }, decision: deny('internal', 'console'), outcome: 'error' };
    const event: AuditEvent = {
      time: new Date(Date.now() - (performance.now() - started)).toISOString(),
      door: 'admin',
      agent: session === undefined ? null : `admin:${session.admin}`,
      method: recordMethod,
      target: a.target ?? null,
      decision: a.decision,
      outcome: a.outcome,
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { status: a.status, ...(session === undefined ? {} : { admin: session.admin }), ...(a.decision.effect === 'deny' ? { code: (a.body as { code?: string } | undefined)?.code } : {}), ...a.detail },
    };
    // Changes and refusals are on the chain before the answer (a page that reloads sees them); reads are batched.
    if (durable || a.decision.effect === 'deny') {
      const written = await gateway.auditStep.durable(event);
      if (!written && a.body !== undefined) {
        // The change happened but its record did not: say so instead of a plain success.
        sendJson(res, 503, { error: 'audit unavailable (ERR_AUDIT_WRITE)', code: 'ERR_AUDIT_WRITE' }, extraHeaders);
      }
    } else gateway.auditStep.batched(event);
    if (a.body !== undefined) sendJson(res, a.status, a.body, extraHeaders);
  }
}

/** Sign-in: `{key}` (JSON) checked against `admin.keys`; a new session and its cookie on success. */
async function signIn(gateway: Gateway, state: ConsoleState, req: IncomingMessage, secure: boolean, headers: Record<string, string>): Promise<{ answer: api.ApiAnswer; session?: ConsoleSession }> {
  const parsed = await jsonBody(gateway, req);
  if (parsed === 'type') return { answer: { ...refusalAnswer('admin.csrf', 'content-type must be application/json', 'console'), status: 415 } };
  if (typeof parsed === 'string') return { answer: refusalAnswer('admin.bad_request', parsed, 'console') };
  const key = parsed.key;
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_CHARS) return { answer: refusalAnswer('admin.bad_request', 'key must be a string (the admin key)', 'console') };
  // Guessing is slowed per client address (admin keys are long and random; this bounds a script's attempts).
  const from = req.socket.remoteAddress ?? 'unknown';
  const now = Date.now();
  const seen = state.failures.get(from);
  if (seen !== undefined && now - seen.since >= SIGN_IN_WINDOW_MS) state.failures.delete(from);
  const failed = state.failures.get(from);
  if (failed !== undefined && failed.count >= SIGN_IN_FAILURES) {
    headers['retry-after'] = String(Math.ceil((failed.since + SIGN_IN_WINDOW_MS - now) / 1000));
    return { answer: { ...refusalAnswer('ratelimit.exceeded', 'too many failed sign-ins; try again later', 'console.sign-in'), detail: { failures: failed.count } } };
  }
  const admin = gateway.adminKeys.lookup(key);
  if (admin === undefined) {
    if (failed !== undefined) failed.count++;
    else {
      if (state.failures.size >= 10_000) state.failures.clear();
      state.failures.set(from, { count: 1, since: now });
    }
    return { answer: refusalAnswer('auth.invalid', 'wrong admin key', 'admin.keys') };
  }
  const { id, session } = state.sessions.create(admin);
  const ttl = gateway.config.raw.server.console.sessionTtlMs;
  headers['set-cookie'] = sessionCookie(id, ttl / 1000, secure);
  const decision: Decision = allow('console.sign_in', 'admin.keys');
  return { answer: { status: 200, body: { admin, csrf: session.csrf, expiresAt: session.createdAt + ttl }, decision, outcome: 'ok', detail: { secureCookie: secure } }, session };
}

/** A JSON object body (empty: `{}`), `'type'` when the content type is not JSON, or a message. */
async function jsonBody(gateway: Gateway, req: IncomingMessage): Promise<Record<string, unknown> | 'type' | string> {
  // A cross-site form cannot send application/json without a preflight, which is never answered.
  if (!(headerOne(req, 'content-type') ?? '').toLowerCase().startsWith('application/json')) return 'type';
  const body = await readBody(req, Math.min(MAX_CONSOLE_BODY, gateway.config.server.maxBodyBytes), gateway.config.server.bodyTimeoutMs);
  if (body === 'too_large') return `body over ${MAX_CONSOLE_BODY} bytes`;
  if (typeof body === 'string') return 'body not received';
  if (body.length === 0) return {};
  try {
    const v = JSON.parse(body.toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'body must be a JSON object';
    return v as Record<string, unknown>;
  } catch {
    return 'body is not JSON';
  }
}
