/**
 * The HTTP listener: MCP Streamable HTTP at `/mcp`, the model door at `/v1/chat/completions`,
 * `/v1/messages` and `/v1/models`, the admin API at `/api`,
 * the network door's base-URL mode at `/egress/<host>/<path>`, `/healthz`, `/readyz` and `/metrics`
 * (docs/observability.md). Checks run in this order, cheapest and least trusting first:
 *
 *   Host allowlist (DNS rebinding) → Origin allowlist → agent key → body size
 *   (counted as streamed, so chunked bodies too) → JSON parse → JSON-RPC shape
 *   (no batches) → session ownership → the session's MCP transport.
 *
 * Every rejection here is answered with a fixed JSON-RPC error body and an HTTP
 * status, and is audited; the process never throws on input.
 */
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { listenOn } from './listen.ts';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, isJSONRPCNotification, isJSONRPCRequest, isJSONRPCResponse, isJSONRPCError } from '@modelcontextprotocol/sdk/types.js';
import { BastionError } from '../errors.ts';
import { auditEventOf, newRequestContext } from '../door/context.ts';
import { refusal } from '../door/refusal.ts';
import type { Reason } from '../door/reasons.ts';
import type { GatewaySession } from '../mcp/session.ts';
import { randomToken } from '../util/crypto.ts';
import type { EgressProxy } from '../egress/proxy.ts';
import { ModelDoor } from '../model/door.ts';
import type { A2aDoor } from '../a2a/door.ts';
import { handleAdminApi } from './admin-api.ts';
import { closeConsole, handleConsole } from '../console/server.ts';
import { headerOne, readBody } from '../door/body.ts';
import { allow, deny } from '../decision.ts';
import { StatelessSessions, type StatelessIdentity } from '../mcp/stateless.ts';
import { challenge, protectedResourceMetadata, protectedResourceMetadataUrl } from '../door/oauth-resource.ts';
import { authenticateAgentOrToken } from '../door/authenticate.ts';
import type { UserIdentity } from '../door/user.ts';
import {
  approvalInputRequired,
  classify,
  clientCapabilitiesOf,
  discoverResult,
  CONVERSATION_META_KEY,
  MODERN_METHODS,
  MODERN_REVISION,
  MODERN_RPC,
  modernResult,
  toLegacyRequest,
  type ModernRoute,
  type WireRejection,
} from '../mcp/revision/wire.ts';
import type { Gateway } from './gateway.ts';
import { publicReport } from '../observe/health.ts';
import { metricsAccess } from '../observe/observer.ts';
import { runInRequestScope } from '../observe/scope.ts';
import { AgentConcurrency, AgentRateLimiter, admitSession, type SessionView } from './agent-limits.ts';

interface HttpSession {
  readonly agent: string;
  readonly session: GatewaySession;
  readonly transport: StreamableHTTPServerTransport;
}


/** Where the identity keys' JWKS (RFC 7517) is published. */
export const JWKS_PATH = '/.well-known/jwks.json';
/** `Cache-Control: max-age` of the JWKS, in seconds: well under any rotation grace. */
const JWKS_MAX_AGE_S = 60;

export interface RunningServer {
  readonly url: URL;
  readonly server: HttpServer;
  /** Open MCP sessions. */
  sessionCount(): number;
  /** The open legacy MCP sessions: id, agent, last activity (ms since the epoch), and whether a request is in flight. */
  sessionSnapshot(): readonly SessionView[];
  close(): Promise<void>;
}

/**
 * Starts the HTTP listener for a gateway.
 * @param listen override of `server.listen` (tests pass port 0)
 */
export async function startHttpServer(gateway: Gateway, listen?: { host: string; port: number }, opts: { egress?: EgressProxy; model?: ModelDoor; a2a?: A2aDoor } = {}): Promise<RunningServer> {
  const cfg = gateway.config.server;
  const sessions = new Map<string, HttpSession>();
  // Per-agent limits (config server.sessions; src/server/agent-limits.ts): one agent cannot lock the others out.
  const rate = new AgentRateLimiter(cfg.sessions.requestsPerSecondPerAgent, cfg.sessions.burstPerAgent);
  const concurrency = new AgentConcurrency(cfg.sessions.maxConcurrentCallsPerAgent);
  /** Initializations admitted but not yet registered, per agent: counted (as busy) so a burst cannot overshoot the caps. */
  const opening = new Map<string, number>();
  const host = listen?.host ?? cfg.host;
  const port = listen?.port ?? cfg.port;

  /** One audit record for a request the listener refused or answered itself; durable (refusals are). */
  const audit = (req: IncomingMessage, started: number, agent: string | null, method: string, reason: Reason, status: number, detail: Record<string, unknown> = {}): Promise<boolean> => {
    const ctx = newRequestContext(method.startsWith('api.') ? 'admin' : 'tool', method, started);
    ctx.agent = agent;
    ctx.session = headerOne(req, 'mcp-session-id') ?? null;
    return gateway.auditStep.durable(auditEventOf(ctx, refusal(reason, 'http', 'tool').decision, 'denied', { status, ...detail }));
  };

  /**
   * Refuses a request: status, JSON-RPC code and error code from the kernel's
   * reason table, a fixed message naming the code, one durable audit record.
   */
  const reject = async (
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    agent: string | null,
    reason: Reason,
    message: string,
    headers: Record<string, string> = {},
    method = `http.${req.method ?? 'UNKNOWN'}`,
  ): Promise<void> => {
    const r = refusal(reason, 'http', 'tool');
    await audit(req, started, agent, method, reason, r.status);
    if (res.headersSent) return void res.end();
    res.writeHead(r.status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: r.rpc, message: `${message} (${r.code})` } }));
  };

  /** The sessions that serve 2026-07-28 requests, one per agent, end user and conversation (src/mcp/stateless.ts). */
  const stateless = new StatelessSessions(
    (id) => gateway.newSession(id.agent, id.user === null ? null : { id: id.user, verified: id.userVerified }, id.conversation, { stateless: true }),
    { max: cfg.maxSessions, idleMs: cfg.sessionIdleMs },
  );
  /** What Bastion itself serves to a 2026-07-28 client (its catalogue is per agent; these are the kinds it can carry). */
  // No listChanged or subscribe: a stateless client has no stream for them until subscriptions/listen is served.
  const MODERN_CAPABILITIES = Object.freeze({ tools: {}, resources: {}, prompts: {}, completions: {} });
  const cacheHint = { ttlMs: cfg.cacheTtlMs, cacheScope: 'private' as const };

  /** Sends a JSON-RPC answer of the modern path: as JSON, or as the last event of an SSE stream already open. */
  const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
    if (res.headersSent) {
      if (res.getHeader('content-type') === 'text/event-stream' && !res.writableEnded) res.write(`event: message\ndata: ${JSON.stringify(body)}\n\n`);
      return void res.end();
    }
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  /**
   * Refuses a request the wire checks refused (src/mcp/revision/wire.ts) with the
   * spec's status, code and data, and one durable record; a header that
   * disagrees with the body is recorded as a possible bypass.
   */
  const rejectWire = async (res: ServerResponse, started: number, agent: string, message: unknown, w: WireRejection): Promise<void> => {
    const reason: Reason = w.code === MODERN_RPC.HEADER_MISMATCH ? 'mcp.header_mismatch' : w.code === MODERN_RPC.UNSUPPORTED_VERSION ? 'mcp.unsupported_version' : 'mcp.envelope_invalid';
    const method = (message as { method?: unknown }).method;
    const ctx = newRequestContext('tool', typeof method === 'string' ? method.slice(0, 128) : 'http.POST', started);
    ctx.agent = agent;
    const detail: Record<string, unknown> = { status: w.httpStatus, cell: w.cell, ...(reason === 'mcp.header_mismatch' ? { possibleBypass: true } : {}) };
    await gateway.auditStep.durable(auditEventOf(ctx, deny(reason, w.cell), 'denied', detail));
    const id = (message as { id?: unknown }).id;
    sendJson(res, w.httpStatus, { jsonrpc: '2.0', id: typeof id === 'string' || typeof id === 'number' ? id : null, error: { code: w.code, message: w.message, ...(w.data === undefined ? {} : { data: w.data }) } });
  };

  /**
   * One 2026-07-28 request: authenticated and identified above, answered by the
   * pooled session of its agent, end user and conversation, translated back to
   * the modern wire (resultType, cache hints, `input_required` for a held call).
   * `server/discover` is answered here. Every request ends in one audit record
   * (the session writes it; discover and refusals here).
   */
  const serveModern = async (req: IncomingMessage, res: ServerResponse, started: number, id: StatelessIdentity, route: ModernRoute): Promise<void> => {
    const message = route.message;
    if (route.isRequest && !MODERN_METHODS.has(message.method)) {
      const ctx = newRequestContext('tool', message.method.slice(0, 128), started);
      ctx.agent = id.agent;
      await gateway.auditStep.durable(auditEventOf(ctx, deny('mcp.method_unknown', 'revision'), 'denied', { status: 404 }));
      return sendJson(res, 404, { jsonrpc: '2.0', id: (message as { id: unknown }).id, error: { code: -32601, message: 'Method not found' } });
    }
    if (route.isRequest && message.method === 'server/discover') {
      const ctx = newRequestContext('tool', 'server/discover', started);
      ctx.agent = id.agent;
      ctx.conversation = id.conversation;
      if (!(await gateway.auditStep.durable(auditEventOf(ctx, allow('mcp.request', 'protocol'), 'ok')))) {
        return sendJson(res, 500, { jsonrpc: '2.0', id: (message as { id: unknown }).id, error: { code: -32603, message: 'audit unavailable (ERR_AUDIT_WRITE)' } });
      }
      return sendJson(res, 200, { jsonrpc: '2.0', id: (message as { id: unknown }).id, result: discoverResult({ ...MODERN_CAPABILITIES }, cacheHint) });
    }
    const pooled = await stateless.sessionFor(id);
    if (!pooled) return reject(req, res, started, id.agent, 'session.limit', 'too many sessions', { 'retry-after': '5' }, message.method);
    const extra = { requestInfo: { headers: req.headers } };
    const legacy = toLegacyRequest(message);
    if (!route.isRequest) {
      pooled.transport.notify(legacy as never, extra);
      res.writeHead(202);
      return void res.end();
    }
    const gone = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) gone.abort();
    };
    res.once('close', onClose);
    // Notifications about this request (progress) go out first, on an SSE stream, when the client takes one.
    const sse = (headerOne(req, 'accept') ?? '').includes('text/event-stream');
    const onNotification = sse
      ? (n: unknown): void => {
          if (!res.headersSent) {
            res.setHeader('content-type', 'text/event-stream');
            res.setHeader('cache-control', 'no-cache');
            res.writeHead(200);
          }
          res.write(`event: message\ndata: ${JSON.stringify(n)}\n\n`);
        }
      : undefined;
    const { message: answer, localId } = await pooled.transport.request(legacy as never, extra, gone.signal, onNotification);
    res.off('close', onClose);
    const held = pooled.session.takeInputRequired(localId);
    if (answer === undefined) return void res.end();
    const a = answer as { id: unknown; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };
    if (a.error !== undefined) {
      const status = modernErrorStatus(a.error.code);
      return sendJson(res, status, { jsonrpc: '2.0', id: a.id, error: a.error });
    }
    const result = a.result ?? {};
    if (held?.kind === 'approval') {
      const url = `http://${(req.headers.host ?? '').toLowerCase()}/api/approvals/${encodeURIComponent(held.approvalId)}`;
      return sendJson(res, 200, { jsonrpc: '2.0', id: a.id, result: approvalInputRequired(held.requestState, held.approvalId, clientCapabilitiesOf(message), url) });
    }
    if (held?.kind === 'upstream') {
      return sendJson(res, 200, { jsonrpc: '2.0', id: a.id, result: modernResult(message.method, { resultType: 'input_required', inputRequests: held.inputRequests, requestState: held.requestState }, cacheHint) });
    }
    return sendJson(res, 200, { jsonrpc: '2.0', id: a.id, result: modernResult(message.method, result, cacheHint) });
  };

  /** MCP authorization (RFC 9728): where the resource metadata is served, and the document. */
  const rs = gateway.config.oauth.resourceServer;
  const metadataUrl = rs === undefined ? undefined : protectedResourceMetadataUrl(rs.resource);
  const metadataPath = metadataUrl === undefined ? undefined : new URL(metadataUrl).pathname;
  const metadataDoc =
    rs === undefined
      ? undefined
      : JSON.stringify(
          protectedResourceMetadata({
            resource: rs.resource,
            authorizationServers: rs.issuers.map((i) => i.issuer),
            ...(rs.scopesSupported !== undefined ? { scopesSupported: rs.scopesSupported } : {}),
            ...(rs.resourceName !== undefined ? { resourceName: rs.resourceName } : {}),
          }),
        );

  /**
   * The agent (and, from a token, the end user) of an `/mcp` request: an agent
   * key, or — with `oauth.resourceServer` — an OAuth access token verified for
   * issuer, audience, expiry and signature and mapped to an agent. Refusals carry
   * the RFC 6750 / RFC 9728 challenge pointing to the resource metadata.
   */
  const authenticateMcp = async (
    req: IncomingMessage,
  ): Promise<{ ok: true; agent: string; tokenUser: UserIdentity | null } | { ok: false; reason: Reason; message: string; headers: Record<string, string>; agent?: string }> => {
    const verifier = metadataUrl === undefined || rs === undefined ? undefined : gateway.accessTokens;
    const authn = await authenticateAgentOrToken(req.headers, gateway.agentKeys, verifier);
    if (authn.ok) return { ok: true, agent: authn.agent, tokenUser: authn.tokenUser === null ? null : { id: authn.tokenUser, verified: true } };
    // An isolated agent (src/incidents/isolation.ts): no challenge, its credentials are fine and refused.
    if (authn.reason === 'agent.isolated') return { ok: false, reason: 'agent.isolated', message: 'agent isolated', headers: {}, agent: authn.agent };
    // The refusal's challenge: Bastion's realm, or with MCP authorization the resource metadata (RFC 9728 §5.1).
    if (verifier === undefined || metadataUrl === undefined || rs === undefined) {
      return authn.reason === 'auth.missing'
        ? { ok: false, reason: 'auth.missing', message: 'authentication required', headers: { 'www-authenticate': 'Bearer realm="bastion"' } }
        : { ok: false, reason: 'auth.invalid', message: 'invalid key', headers: { 'www-authenticate': 'Bearer realm="bastion", error="invalid_token"' } };
    }
    if (authn.reason === 'auth.missing') return { ok: false, reason: 'auth.missing', message: 'authentication required', headers: { 'www-authenticate': challenge({ resourceMetadataUrl: metadataUrl }) } };
    if (authn.reason === 'auth.invalid') {
      return { ok: false, reason: 'auth.invalid', message: 'invalid credentials', headers: { 'www-authenticate': challenge({ resourceMetadataUrl: metadataUrl, reason: 'oauth.token_invalid' }) } };
    }
    return { ok: false, reason: authn.reason, message: 'access token refused', headers: { 'www-authenticate': challenge({ resourceMetadataUrl: metadataUrl, reason: authn.reason, scopes: rs.requiredScopes }) } };
  };

  /** Where providers send the user back after sign-in (config `oauth.callbackBase`). */
  const callbackPath = gateway.config.oauth.redirectUri === undefined ? undefined : new URL(gateway.config.oauth.redirectUri).pathname;

  /**
   * The OAuth callback (RFC 6749 §4.1.2): completes the pending authorization the
   * `state` names (single use, PKCE, RFC 9207 issuer check), seals the user's
   * tokens, and answers a fixed page: nothing from the query is echoed. One audit record.
   */
  const oauthCallback = async (req: IncomingMessage, res: ServerResponse, started: number): Promise<void> => {
    const ctx = newRequestContext('tool', 'oauth.callback', started);
    const page = (status: number, text: string): void => {
      res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-security-policy': "default-src 'none'", 'referrer-policy': 'no-referrer' });
      res.end(`<!doctype html><meta charset="utf-8"><title>Bastion</title><p>${text}</p>`);
    };
    const userOAuth = gateway.deps.userOAuth;
    const redirect = gateway.config.oauth.redirectUri;
    if (userOAuth === undefined || redirect === undefined) {
      await gateway.auditStep.durable(auditEventOf(ctx, deny('vault.unavailable', 'oauth'), 'denied', { status: 503 }));
      return page(503, 'Account connection is not available on this gateway.');
    }
    const done = await userOAuth.completeAuthorization(new URL(req.url ?? '/', redirect));
    if (done.ok) {
      ctx.agent = done.agent;
      ctx.user = { id: done.user, verified: false };
      ctx.target = done.provider;
      await gateway.auditStep.durable(auditEventOf(ctx, allow('oauth.connected', `oauth.providers.${done.provider}`), 'ok'));
      return page(200, 'Your account is connected. You can close this page and return to your agent.');
    }
    const r = refusal(done.reason, 'http', 'tool');
    await gateway.auditStep.durable(auditEventOf(ctx, r.decision, 'denied', { status: r.status }));
    return page(r.status >= 500 ? 502 : 400, `The account was not connected (${r.code}). Ask your agent for a new link.`);
  };

  // Filled once the port is bound: with port 0 the default allowlist must name the real port.
  const allowedHosts = new Set<string>();
  const allowedOrigins = new Set<string>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://bastion.invalid');

    // Probes before the Host allowlist: a load balancer or Kubernetes sends the pod's IP as Host. They reveal
    // only "ok" and check names with short codes, and send no CORS headers, so a rebinding page cannot read them.
    if (url.pathname === '/healthz' && req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end('{"status":"ok"}');
    }
    if (url.pathname === '/readyz' && req.method === 'GET') {
      // No key (load balancers probe it): short codes only (docs/observability.md).
      const report = publicReport(await gateway.readiness.report());
      res.writeHead(report.ready ? 200 : 503, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      return void res.end(JSON.stringify(report));
    }

    // Then the Host allowlist: a DNS-rebinding page reaches us with its own host name.
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    if (!allowedHosts.has(hostHeader)) {
      return reject(req, res, started, null, 'host.not_allowed', 'host not allowed');
    }
    const origin = headerOne(req, 'origin');
    if (origin !== undefined && !allowedOrigins.has(origin.toLowerCase())) {
      return reject(req, res, started, null, 'origin.not_allowed', 'origin not allowed');
    }

    if (url.pathname === '/metrics' && req.method === 'GET') {
      const access = metricsAccess(gateway.config.observability.metrics, (server.address() as AddressInfo).address, req.headers, gateway.adminKeys);
      if (access === 'auth.missing' || access === 'auth.invalid') {
        return reject(req, res, started, null, access, 'an admin key is required', { 'www-authenticate': 'Bearer realm="bastion"' }, 'api.metrics');
      }
      if (access === 'serve') {
        const { contentType, body } = await gateway.observer.metrics.scrape();
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        return void res.end(body);
      }
    }
    if (url.pathname === JWKS_PATH && (req.method === 'GET' || req.method === 'HEAD')) {
      // Public keys only: tool servers and peers fetch them to verify Bastion's signatures.
      let body: string;
      try {
        body = JSON.stringify(await gateway.identity.jwks());
      } catch {
        res.writeHead(503, { 'content-type': 'application/json' });
        return void res.end('{"error":"ERR_STORE"}');
      }
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': `public, max-age=${JWKS_MAX_AGE_S}` });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (metadataPath !== undefined && url.pathname === metadataPath && (req.method === 'GET' || req.method === 'HEAD')) {
      // RFC 9728 §3: public, so an MCP client can find where to get a token.
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' });
      return void res.end(req.method === 'HEAD' ? undefined : metadataDoc);
    }
    if (callbackPath !== undefined && url.pathname === callbackPath && req.method === 'GET') {
      return oauthCallback(req, res, started);
    }
    if (url.pathname === '/api' || url.pathname.startsWith('/api/')) {
      return handleAdminApi(gateway, req, res, url, started, cfg.maxBodyBytes);
    }
    if (url.pathname === '/console' || url.pathname.startsWith('/console/')) {
      // The operator's console (src/console/, docs/console.md): its own sessions, CSRF tokens, CSP and audit records.
      return handleConsole(gateway, req, res, url, started);
    }
    if (url.pathname.startsWith('/egress/') && opts.egress) {
      // The network door's base-URL mode; it authenticates and audits on its own.
      return opts.egress.handleBaseUrl(req, res);
    }
    if (opts.a2a && url.pathname.startsWith('/a2a/')) {
      // Agent-to-agent messages: the door authenticates (agent key or peer token) and audits on its own.
      return opts.a2a.handle(req, res, url);
    }
    if (opts.model && ModelDoor.serves(url.pathname)) {
      // The model door authenticates, answers in the provider's error shape and audits on its own.
      return opts.model.handle(req, res, url);
    }
    if (url.pathname !== '/mcp') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":"not found"}');
    }

    // Agent authentication: the kernel's one rule (Bearer or Basic agent key), or an OAuth access token.
    const authn = await authenticateMcp(req);
    if (!authn.ok) return reject(req, res, started, authn.agent ?? null, authn.reason, authn.message, authn.headers);
    const agent = authn.agent;
    // The agent's request rate (token bucket), before any work on its behalf.
    const wait = rate.take(agent, Date.now());
    if (wait > 0) return reject(req, res, started, agent, 'ratelimit.exceeded', 'too many requests', { 'retry-after': String(wait) });

    // The end user the agent acts for, fixed for the session at initialize: asserted, or proven by a token
    // (a user token, or the OAuth access token's user claim, which an asserted id must then match).
    const claims = gateway.users.claimsOf(req.headers);
    const identified =
      claims === 'invalid'
        ? ({ ok: false, reason: 'user.invalid' } as const)
        : authn.tokenUser !== null
          ? claims.header !== undefined && claims.header !== authn.tokenUser.id
            ? ({ ok: false, reason: 'user.ambiguous' } as const)
            : ({ ok: true, user: authn.tokenUser } as const)
          : await gateway.users.identify(claims);
    if (!identified.ok) {
      const why: Record<typeof identified.reason, string> = {
        'user.invalid': 'Bastion-User must be 1-256 characters without control characters',
        'user.ambiguous': 'Bastion-User and the user token name different users',
        'user.unverified': 'this gateway needs a user token for every named user',
        'user.token_invalid': 'the user token is not valid',
        'user.jwks_unavailable': 'the user token cannot be verified now',
      };
      return reject(req, res, started, agent, identified.reason, why[identified.reason]);
    }
    const userIdentity = identified.user;
    const user = userIdentity?.id ?? null;
    // The conversation, signed into the context of requests to remote tools; printable ASCII (an RFC 8941 string).
    const conversation = headerOne(req, 'bastion-conversation') ?? null;
    if (conversation !== null && !/^[\x20-\x7e]{1,256}$/.test(conversation)) {
      return reject(req, res, started, agent, 'conversation.invalid', 'Bastion-Conversation must be 1-256 printable ASCII characters');
    }
    const sessionId = headerOne(req, 'mcp-session-id');
    const existing = sessionId !== undefined ? sessions.get(sessionId) : undefined;
    // A session belongs to the agent (and end user) that opened it; another's id is as unknown as a made-up one.
    const foreignSession = sessionId !== undefined && (!existing || existing.agent !== agent || (user !== null && existing.session.user !== user));

    if (req.method === 'GET' || req.method === 'DELETE') {
      // 2026-07-28 has no session to stream on or to end (spec: basic/transports): 405, as for any other method.
      if (sessionId === undefined && headerOne(req, 'mcp-protocol-version') === MODERN_REVISION) {
        return reject(req, res, started, agent, 'http.method', 'method not allowed', { allow: 'POST' });
      }
      if (foreignSession) return reject(req, res, started, agent, 'session.unknown', 'session not found');
      if (!existing) return reject(req, res, started, agent, 'session.missing', 'mcp-session-id required');
      existing.session.lastActivity = Date.now();
      return existing.transport.handleRequest(req, res);
    }
    if (req.method !== 'POST') {
      return reject(req, res, started, agent, 'http.method', 'method not allowed', { allow: 'GET, POST, DELETE' });
    }

    // The agent's requests in flight: a slot held until the response is done or the client gone.
    const release = concurrency.acquire(agent);
    if (release === undefined) return reject(req, res, started, agent, 'ratelimit.concurrent', 'too many requests in flight', { 'retry-after': '1' });
    res.once('close', release);

    // Body, bounded as it streams.
    const body = await readBody(req, cfg.maxBodyBytes, cfg.bodyTimeoutMs);
    if (body === 'timeout') {
      res.setHeader('connection', 'close');
      return reject(req, res, started, agent, 'body.timeout', `request body not received within ${cfg.bodyTimeoutMs} ms`);
    }
    if (body === 'too_large') {
      res.setHeader('connection', 'close');
      return reject(req, res, started, agent, 'body.too_large', `request body over ${cfg.maxBodyBytes} bytes`);
    }
    if (body === 'aborted') return void (await audit(req, started, agent, 'http.POST', 'body.aborted', 400));
    let message: unknown;
    try {
      message = JSON.parse(body.toString('utf8'));
    } catch {
      return reject(req, res, started, agent, 'jsonrpc.parse', 'parse error: body is not JSON');
    }
    if (Array.isArray(message)) {
      return reject(req, res, started, agent, 'jsonrpc.batch', 'batch requests are not supported');
    }
    if (!isJSONRPCRequest(message) && !isJSONRPCNotification(message) && !isJSONRPCResponse(message) && !isJSONRPCError(message)) {
      return reject(req, res, started, agent, 'jsonrpc.invalid', 'invalid request: not a JSON-RPC 2.0 message');
    }
    const method = (message as { method?: unknown }).method;

    // The era is read from the body (the SDK's classifier); headers that disagree with it are refused first.
    const route = classify({
      httpMethod: 'POST',
      protocolVersionHeader: headerOne(req, 'mcp-protocol-version'),
      mcpMethodHeader: headerOne(req, 'mcp-method'),
      mcpNameHeader: headerOne(req, 'mcp-name'),
      body: message,
    });
    if (route.kind === 'reject') return rejectWire(res, started, agent, message, route);
    if (route.kind === 'modern') {
      // A stateless client may name its conversation in `_meta` instead of the header; both must then agree.
      const named = (route.message.params as { _meta?: Record<string, unknown> } | undefined)?._meta?.[CONVERSATION_META_KEY];
      if (named !== undefined && (typeof named !== 'string' || !/^[\x20-\x7e]{1,256}$/.test(named) || (conversation !== null && named !== conversation))) {
        return reject(req, res, started, agent, 'conversation.invalid', `${CONVERSATION_META_KEY} must be 1-256 printable ASCII characters, and equal Bastion-Conversation when both are sent`);
      }
      return serveModern(req, res, started, { agent, user, userVerified: userIdentity?.verified === true, conversation: conversation ?? (named as string | undefined) ?? null }, route);
    }

    if (foreignSession) return reject(req, res, started, agent, 'session.unknown', 'session not found', {}, typeof method === 'string' ? method : 'http.POST');
    if (existing) {
      return deliver(existing.session, existing.transport, req, res, message, started, agent, method);
    }
    if (!isInitializeRequest(message)) {
      return reject(req, res, started, agent, 'session.missing', 'mcp-session-id required', {}, typeof method === 'string' ? method : 'http.POST');
    }
    // Room for one more session (src/server/agent-limits.ts): the agent's own idle session makes room at its
    // cap, the busiest agent's at the global one; refused only when nothing there is idle.
    const admission = admitSession(sessionViews(), agent, { perAgent: cfg.sessions.maxPerAgent, global: cfg.maxSessions });
    if (!admission.admit) {
      const [reason, retry] = admission.scope === 'agent' ? (['session.agent_limit', '1'] as const) : (['session.limit', '5'] as const);
      return reject(req, res, started, agent, reason, 'too many sessions', { 'retry-after': retry }, 'initialize');
    }
    if (admission.evict !== undefined) evictSession(admission.evict.id, admission.evict.scope, agent);
    opening.set(agent, (opening.get(agent) ?? 0) + 1);
    try {
      return await openSession(req, res, started, agent, userIdentity, conversation, message, method);
    } finally {
      const left = (opening.get(agent) ?? 1) - 1;
      if (left <= 0) opening.delete(agent);
      else opening.set(agent, left);
    }
  };

  /** The open sessions as the admission rule sees them, initializations under way counted as busy. */
  const sessionViews = (): SessionView[] => {
    const out: SessionView[] = [];
    for (const [id, s] of sessions) out.push({ id, agent: s.agent, lastActivity: s.session.lastActivity, busy: s.session.busy });
    for (const [a, n] of opening) for (let i = 0; i < n; i++) out.push({ id: `opening:${a}:${i}`, agent: a, lastActivity: Number.MAX_SAFE_INTEGER, busy: true });
    return out;
  };

  /**
   * Closes a session to make room (`scope`: whose cap), with one record for its agent: the client's next
   * request with that id is answered 404 and it initializes again (MCP basic/transports, session management).
   */
  const evictSession = (id: string, scope: 'agent' | 'global', by: string): void => {
    const s = sessions.get(id);
    if (!s) return;
    sessions.delete(id);
    void s.transport.close().catch(() => undefined);
    void s.session.close();
    const ctx = newRequestContext('tool', 'session.evict', performance.now());
    ctx.agent = s.agent;
    ctx.session = id;
    gateway.auditStep.batched(auditEventOf(ctx, deny('session.evicted', scope === 'agent' ? 'server.sessions.maxPerAgent' : 'server.maxSessions'), 'denied', { scope, for: by, idleMs: Math.max(0, Date.now() - s.session.lastActivity) }));
  };

  /** A new legacy MCP session: its transport, registered under its id once the SDK has initialized it. */
  const openSession = async (
    req: IncomingMessage,
    res: ServerResponse,
    started: number,
    agent: string,
    userIdentity: UserIdentity | null,
    conversation: string | null,
    message: unknown,
    method: unknown,
  ): Promise<void> => {
    const session = gateway.newSession(agent, userIdentity, conversation);
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomToken(24),
      onsessioninitialized: (id) => {
        sessions.set(id, { agent, session, transport });
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
      retryInterval: 1000,
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await session.connect(transport);
    return deliver(session, transport, req, res, message, started, agent, method);
  };

  /**
   * Hands a parsed message to a session's transport. The SDK transport refuses some
   * messages itself (a second initialize, a wrong Accept or protocol-version header)
   * without passing them on; those are audited here, so every request still ends in a record.
   */
  const deliver = async (
    session: GatewaySession,
    transport: StreamableHTTPServerTransport,
    req: IncomingMessage,
    res: ServerResponse,
    message: unknown,
    started: number,
    agent: string,
    method: unknown,
  ): Promise<void> => {
    const before = session.delivered;
    // Busy from arrival until the transport delivers the message (then the session tracks the
    // request itself): the reaper must not close a session while the SDK transport is still
    // working on one of its requests, which on a starved machine can take longer than sessionIdleMs.
    const answered = session.beginHttpRequest();
    // A client that hangs up before its answer (the SSE stream of a POST) is recorded as gone, not as the
    // outcome of a call it never received (src/mcp/session.ts, clientGone).
    const id = isJSONRPCRequest(message) ? message.id : undefined;
    if (id !== undefined) {
      res.once('close', () => {
        if (!res.writableFinished) session.clientGone(id);
      });
    }
    try {
      await transport.handleRequest(req, res, message);
    } finally {
      answered();
    }
    if (session.delivered === before && res.statusCode >= 400) {
      await audit(req, started, agent, typeof method === 'string' ? method : 'http.POST', 'transport.rejected', res.statusCode);
    }
  };

  // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default, which let a
  // 30 s header timeout run to 60 s): check often enough that a timeout is enforced within a second of its value.
  const serverOpts = {
    headersTimeout: cfg.headersTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs, // Until the request is received; a response stream (SSE) is not limited.
    keepAliveTimeout: 5_000,
    connectionsCheckingInterval: connectionsCheckingIntervalMs(cfg.headersTimeoutMs),
  };
  /** Sockets with a request whose head was received and whose response is not done: that request records itself. */
  const inRequest = new WeakSet<Socket>();
  const server = createServer(serverOpts, (req, res) => {
    inRequest.add(req.socket);
    res.once('close', () => inRequest.delete(req.socket));
    runInRequestScope(() => handle(req, res)).catch(async (err: unknown) => {
      // Never crash on input: anything unexpected becomes a generic 500, audited.
      await audit(req, performance.now(), null, `http.${req.method ?? 'UNKNOWN'}`, 'internal', 500, {
        code: err instanceof BastionError ? err.code : 'ERR_INTERNAL',
      });
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32603, message: 'internal error' } }));
      } else res.end();
    });
  });
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const outcome = clientErrorOutcome(err.code, socket.bytesRead, inRequest.has(socket));
    if (outcome === undefined) return void socket.destroy();
    const r = refusal(outcome.reason, outcome.rule, 'tool');
    // One record per connection cut for its request head; no agent is known yet (nothing was authenticated).
    const ctx = newRequestContext('tool', 'http.request', performance.now());
    gateway.auditStep.batched(auditEventOf(ctx, r.decision, outcome.reason === 'request.header_timeout' ? 'timeout' : 'denied', { status: r.status, listener: 'main', parser: err.code ?? 'unknown', bytes: socket.bytesRead }));
    if (!socket.writable) return void socket.destroy();
    const body = JSON.stringify({ error: { code: r.code, reason: outcome.reason } });
    socket.end(`HTTP/1.1 ${r.status} ${STATUS_TEXT[r.status] ?? 'Error'}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    // A client that reads nothing back must not hold the socket either.
    setTimeout(() => socket.destroy(), 1_000).unref();
  });

  // An isolated agent keeps no session (src/incidents/isolation.ts): each of its legacy sessions is closed at once,
  // with one record; its next request is refused at authentication. Its pooled stateless sessions go too.
  const offIsolation = gateway.isolations.onChange(({ agent, isolated }) => {
    if (!isolated) return;
    for (const [id, s] of sessions) {
      if (s.agent !== agent) continue;
      sessions.delete(id);
      void s.transport.close().catch(() => undefined);
      void s.session.close();
      const ctx = newRequestContext('tool', 'session.close', performance.now());
      ctx.agent = agent;
      ctx.session = id;
      gateway.auditStep.batched(auditEventOf(ctx, deny('agent.isolated', 'incidents'), 'denied', { scope: 'isolation' }));
    }
    stateless.closeAgent(agent);
  });

  const reaper = setInterval(() => {
    const cutoff = Date.now() - cfg.sessionIdleMs;
    for (const [id, s] of sessions) {
      // A session with a request in flight (a long tool call, a call held for approval) is not idle.
      if (s.session.lastActivity < cutoff && !s.session.busy) {
        sessions.delete(id);
        void s.transport.close().catch(() => undefined);
        void s.session.close();
      }
    }
  }, Math.min(60_000, cfg.sessionIdleMs));
  reaper.unref();

  const addr = await listenOn(server, host, port);
  const shownHost = addr.shown;
  const raw = gateway.config.raw.server;
  for (const h of raw.allowedHosts === undefined ? defaultAllowedHosts(shownHost, addr.port) : cfg.allowedHosts) allowedHosts.add(h.toLowerCase());
  for (const o of raw.allowedOrigins === undefined ? [...allowedHosts].map((h) => `http://${h}`) : cfg.allowedOrigins) allowedOrigins.add(o.toLowerCase());
  return {
    url: new URL(`http://${shownHost}:${addr.port}/mcp`),
    server,
    sessionCount: () => sessions.size + stateless.size,
    sessionSnapshot: () => [...sessions].map(([id, s]) => ({ id, agent: s.agent, lastActivity: s.session.lastActivity, busy: s.session.busy })),
    close: async () => {
      clearInterval(reaper);
      offIsolation();
      closeConsole(gateway);
      await stateless.close();
      const all = [...sessions.values()];
      sessions.clear();
      await Promise.all(all.map(async (s) => {
        await s.transport.close().catch(() => undefined);
        await s.session.close();
      }));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Reason phrases of the statuses the listener answers on a raw socket. */
const STATUS_TEXT: Readonly<Record<number, string>> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' };

/**
 * How often Node checks header and request timeouts (its `connectionsCheckingInterval`), in ms, for a
 * header timeout of `headersTimeoutMs`: a quarter of it, between 100 ms and 1 s, so a timeout is
 * enforced within a second of its value (Node's default, 30 s, doubles a 30 s timeout).
 */
export function connectionsCheckingIntervalMs(headersTimeoutMs: number): number {
  return Math.max(100, Math.min(1_000, Math.floor(headersTimeoutMs / 4)));
}

/**
 * What the main listener records for a connection-level error Node reports (`clientError`), before any
 * request was handed to a door; undefined: nothing (the socket is closed silently).
 *
 * - The client went away (`ECONNRESET`, `EPIPE`, `ECONNABORTED`, `ETIMEDOUT`): no record. Reset of an idle
 *   keep-alive connection is how clients close; there was no request. A request in flight records itself.
 * - A header timeout on a connection that sent nothing at all (`bytesRead` 0): no record. It held a socket
 *   for `headersTimeoutMs` and is closed; it started no request (browsers and pools pre-connect).
 * - A request or header timeout while a request is in flight (its head was received): that request's
 *   handler sees the client cut off and records it.
 * - Otherwise: `request.header_timeout` (a head begun and not finished in time: slowloris),
 *   `request.header_too_large`, or `request.malformed` (the parser refused the bytes).
 * @param code the error's `code` (`ERR_HTTP_REQUEST_TIMEOUT`, `HPE_*`, errno names)
 * @param bytesRead bytes received on the connection so far
 * @param requestInFlight true when a request of the connection was handed to the handler and is not done
 */
export function clientErrorOutcome(code: string | undefined, bytesRead: number, requestInFlight: boolean): { reason: 'request.header_timeout' | 'request.header_too_large' | 'request.malformed'; rule: string } | undefined {
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT') return undefined;
  if (requestInFlight) return undefined;
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'HPE_HEADERS_TIMEOUT') return bytesRead === 0 ? undefined : { reason: 'request.header_timeout', rule: 'server.headersTimeoutMs' };
  if (code === 'HPE_HEADER_OVERFLOW') return { reason: 'request.header_too_large', rule: 'http' };
  return { reason: 'request.malformed', rule: 'http' };
}

/**
 * The HTTP status of a JSON-RPC error on the 2026-07-28 path (spec basic/transports):
 * 404 for an unknown method; 400 for a request the server could not take as sent
 * (parse, invalid request, header mismatch, missing capability, unsupported
 * version); 200 otherwise (the error is the request's answer).
 */
export function modernErrorStatus(code: number): number {
  if (code === -32601) return 404;
  if (code === -32700 || code === -32600 || code === MODERN_RPC.HEADER_MISMATCH || code === MODERN_RPC.MISSING_CAPABILITY || code === MODERN_RPC.UNSUPPORTED_VERSION) return 400;
  return 200;
}

/** The Host values accepted when `server.allowedHosts` is not configured: the bound address and the loopback names, with the bound port. */
export function defaultAllowedHosts(host: string, port: number): string[] {
  const names = new Set([host.toLowerCase(), 'localhost', '127.0.0.1', '[::1]']);
  return [...names].map((n) => `${n}:${port}`);
}
