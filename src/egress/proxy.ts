/**
 * The network door: an HTTP forward proxy (RFC 9110 §9.3.6 CONNECT and
 * absolute-form requests, RFC 9112 §3.2.2) on its own listener, plus the same
 * forwarding for the base-URL mode (`/egress/<host>/<path>` on the main listener).
 *
 * Per request, in this order (each refusal answered with a fixed status and a
 * reason code, and audited):
 *
 *   authenticate (Proxy-Authorization: Basic agent:key, or Bearer key; on a
 *     principal socket, the principal Bastion bound to it) → 407
 *   → the egress guard (SSRF as written, Cedar policy, resolution + every
 *     address classified) → 403
 *   → CONNECT: tunnel to the checked address, or intercept TLS (local CA) when
 *     the host has a secret the agent may use, a method/path rule, or
 *     `egress.intercept: all`
 *   → inspected requests (plain HTTP, intercepted, base-URL): body read under
 *     `egress.maxBodyBytes` / `bodyTimeoutMs` → placeholders checked (unknown,
 *     not granted, foreign host, or plain HTTP → 403 + alert) → outbound DLP
 *     (a detected credential headed for a host it does not belong to → 403 +
 *     alert) → placeholders swapped for the values → forwarded through a
 *     dispatcher pinned to the checked address → the response streamed back
 *     with every swapped value redacted. Each of these is a stage function of
 *     forward-stages.ts; `#forward` composes them.
 *
 * Every proxied request ends in one audit record (door `network`): agent,
 * method, host, port, resolved address, decision, secrets swapped (names),
 * bytes each way, status, duration. A CONNECT gets its own record; so does
 * each request inside an intercepted tunnel.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { rootCertificates, TLSSocket, type SecureContext } from 'node:tls';
import type { Readable, Transform } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { Decision } from '../decision.ts';
import { codeOf, statusOf, type Reason } from '../door/reasons.ts';
import { refusalOf } from '../door/refusal.ts';
import { dropBody, readBody } from '../door/body.ts';
import { authenticateAgent, authenticateTransport, type Authentication, type KeyIndex, type TransportAuthentication, type TransportPrincipal } from '../door/authenticate.ts';
import { listenUnixSocket, removeSocketFile, transportPrincipalOf, type PrincipalSocket, type SocketPrincipal } from './principal-socket.ts';
import { BastionError } from '../errors.ts';
import type { UserVerifier } from '../door/user.ts';
import type { Secret } from '../util/secret.ts';
import { SECRET_RULES, secretRuleHosts } from '../detect/secrets.ts';
import {
  askIdentity,
  connectMode,
  requestParts,
  RequestBody,
  responseHeaders,
  responseRedaction,
  type ReleaseDeps,
  type StageRefusal,
  type SwappedRequest,
  type DlpScan,
} from './forward-stages.ts';
import * as forwardStages from './forward-stages.ts';
import { runInRequestScope, timedStages, timeStage } from '../observe/scope.ts';
import { EgressGuard, type EgressTarget, type EgressVerdict } from './guard.ts';
import { parseEgressTarget } from '../net/target.ts';
import { hostMatchesAny, normalizeHost } from '../net/host-pattern.ts';
import { PinnedDispatcherPool } from '../net/pinned-connector.ts';
import { DEFAULTS } from '../defaults.ts';
import { isJsonMediaType, ResponseRedactor, type RedactionSet } from '../redact/index.ts';

// The forwarding stages, each timed in the request scope (a span and a `bastion_stage_duration_seconds` sample).
const { readForwardBody, releasePlaceholders, outboundDlp, swapReleased, responseDecoder } = timedStages(forwardStages, ['readForwardBody', 'releasePlaceholders', 'outboundDlp', 'swapReleased', 'responseDecoder']);

/** A vault secret as the proxy needs it (no value). */
export interface ProxySecretInfo {
  readonly id: string;
  readonly name: string;
  readonly hosts: readonly string[];
  readonly header?: string;
  readonly format?: string;
}

/** What the proxy needs from the vault (src/vault/vault.ts `Vault`). */
export interface PlaceholderResolver {
  /** One consistent reading of the vault for one request: one store read. Throws on store failure (the request is denied). */
  view(): Promise<PlaceholderView>;
  markUsed(secretId: string): void;
}

/** One generation of the vault (`VaultView`); its lookups throw on a decrypt failure (the request is denied). */
export interface PlaceholderView {
  /** The secret behind an agent's placeholder, or undefined (forged, another agent's, revoked, expired). */
  resolve(agent: string, placeholder: string): { readonly secret: ProxySecretInfo; readonly version: number; readonly value: Secret } | undefined;
  /** Every live value (all versions in grace) of every secret bound to `host`: redacted from its responses. */
  valuesForHost(host: string): readonly Secret[];
}

/** What the proxy needs from the pasted-secret store (src/vault/pasted.ts). */
export interface PastedResolver {
  /** The pasted secret behind a token and its value, or undefined (unknown). Whether it may be used is the release rule's. Throws on store failure. */
  find(token: string): Promise<{ readonly secret: { readonly id: string; readonly agent: string; readonly user: string; readonly hosts: readonly string[] }; readonly value: Secret } | undefined>;
  markUsed(id: string): void;
}

/** What the proxy needs from the local CA. */
export interface TlsIssuer {
  secureContext(host: string): Promise<SecureContext>;
}

/** One credential the DLP scan found in an outbound request. */
export interface DlpFinding {
  readonly rule: string;
  readonly start: number;
  readonly end: number;
  /** Hosts the credential may go to (bindable ones: src/vault/host-binding.ts); empty when unknown. */
  readonly hosts: readonly string[];
  /** The provider's hosts are all multi-tenant (anyone can register names there): the credential may go nowhere on its own. */
  readonly unbound?: boolean;
}

/** Dependencies of {@link EgressProxy}. */
export interface EgressProxyDeps {
  readonly config: ResolvedConfig;
  readonly guard: EgressGuard;
  /** The agents' keys: the kernel's authentication looks presented keys up here. */
  readonly agentKeys: KeyIndex;
  /** Writes the request's audit record (batched after the response: the kernel's audit step; a failure is counted and alerted there, never thrown). */
  readonly record: (event: AuditEvent) => void;
  /**
   * Writes the record of a refusal before its answer, with backpressure (`AuditStep.batchedBounded`:
   * past the audit backlog's bound the answer waits for durability). Never rejects. Default: `record`.
   */
  readonly recordBounded?: (event: AuditEvent) => Promise<void>;
  /**
   * The audit write gate (`AuditStep.writable`), read right before a destination is
   * contacted: while false, the request or tunnel is refused as `audit.write_failed`
   * (503, `ERR_AUDIT_WRITE`). Default: always open.
   */
  readonly auditWritable?: () => boolean;
  readonly vault?: PlaceholderResolver;
  /** End users' pasted secrets: `<<SECRET_…>>` in a request (with the `Bastion-User` header naming the owner). */
  readonly pasted?: PastedResolver;
  /** The kernel's end-user step: with `users.token`, a pasted secret is released only to its proven owner. */
  readonly users?: Pick<UserVerifier, 'enabled' | 'tokenHeader' | 'claimsOf' | 'identify'>;
  /** End users' OAuth tokens (`<<OAUTH_name>>`, agents with `oauth`); absent: such placeholders are refused. */
  readonly userOAuth?: {
    accessToken(req: { user: string; provider: string }): Promise<{ ok: true; token: string } | { ok: false; reason: string }>;
    startAuthorization(req: { provider: string; user: string; agent: string }): Promise<{ ok: true; url: URL } | { ok: false; reason: string }>;
  };
  readonly issuer?: TlsIssuer;
  /** Credential detector for outbound DLP. */
  readonly dlp: DlpScan;
  /** Extra CA certificates (PEM) trusted for destinations, besides Node's bundled roots. */
  readonly upstreamCa?: readonly string[];
  /** Called on an exfiltration attempt (a placeholder or credential headed elsewhere). */
  readonly onAlert?: (alert: EgressAlert) => void;
}

/** An alert raised by the proxy. Never holds a value or a placeholder. */
export interface EgressAlert {
  readonly kind: 'exfiltration';
  readonly agent: string;
  readonly host: string;
  readonly reason: string;
  readonly secrets: readonly string[];
}

/** How a request reached the proxy (for the audit record). */
type Mode = 'http' | 'tunnel' | 'intercept' | 'base-url';

interface TunnelMeta {
  readonly agent: string;
  /** The principal bound to the transport the CONNECT came on (a principal socket), if any. */
  readonly bound: TransportPrincipal | undefined;
  readonly host: string;
  readonly port: number;
  readonly address: string;
  readonly exception: boolean;
}

/** Hop-by-hop and proxy headers never forwarded (RFC 9110 §7.6.1), plus ones recomputed. */
/** Every host a detector rule names: where a pasted credential may be used. */
const PASTED_SECRET_HOSTS: readonly string[] = [...new Set(SECRET_RULES.flatMap((r) => secretRuleHosts(r)))];

const DROP_REQUEST = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect', 'bastion-key', 'bastion-user']);

/**
 * Every refusal reason the proxy itself decides (the guard's are its own: `ssrf.*`, `policy.*`,
 * `egress.error`; the release rule's are `release.*`). Each is a row of the kernel's table
 * (src/door/reasons.ts), which gives the status and code answered; test/egress/refusals.test.ts
 * pins them. Type-checked: {@link deny} takes only a {@link Reason}.
 */
export const PROXY_REFUSALS = [
  'auth.missing', 'auth.invalid', 'agent.isolated',
  'request.https_absolute_form', 'request.not_absolute_form', 'request.bad_base_url', 'request.bad_authority', 'request.misdirected',
  'request.not_origin_form', 'request.bad_target', 'request.upgrade_unsupported', 'request.aborted', 'request.header_too_large',
  'request.header_timeout', 'request.malformed',
  'body.too_large', 'body.timeout', 'body.encoded',
  'placeholder.unknown', 'dlp.credential', 'dlp.error', 'vault.unavailable',
  'egress.no_ca', 'ca.issue_failed', 'tls.handshake_failed', 'tunnel.idle',
  'upstream.connect_failed', 'upstream.reset', 'upstream.refused', 'upstream.tls', 'upstream.timeout', 'upstream.error', 'upstream.unknown_encoding',
] as const satisfies readonly Reason[];

/** A deny decision of the proxy: the reason is a row of the kernel's table (checked by the compiler). */
function deny(reason: Reason, rule: string): Decision {
  return { effect: 'deny', reason, rule };
}

/** The forward proxy. {@link EgressProxy.start} listens; {@link EgressProxy.handleBaseUrl} serves the base-URL mode. */
export class EgressProxy {
  readonly #deps: EgressProxyDeps;
  readonly #server: Server;
  /** Parses requests that arrive inside intercepted TLS tunnels. */
  readonly #inner: Server;
  readonly #tunnels = new WeakMap<Socket, TunnelMeta>();
  /** Pinned keep-alive dispatchers, one per host and checked address. */
  readonly #dispatchers: PinnedDispatcherPool;
  readonly #sockets = new Set<Socket>();
  /** Open CONNECT tunnels (plain and intercepted) by agent: closed at once when the agent is isolated. */
  readonly #agentTunnels = new Map<string, Set<Socket>>();
  /** Open principal sockets (attachPrincipalSocket): closed with the proxy. */
  readonly #principalSockets = new Set<PrincipalSocket>();
  readonly #serverOptions: Parameters<typeof createServer>[0];
  #closed = false;
  #url: URL | undefined;

  constructor(deps: EgressProxyDeps) {
    this.#deps = deps;
    const e = deps.config.egress;
    const ca = deps.upstreamCa && deps.upstreamCa.length > 0 ? [...rootCertificates, ...deps.upstreamCa] : undefined;
    this.#dispatchers = new PinnedDispatcherPool({ connectTimeoutMs: e.connectTimeoutMs, ...(ca ? { ca } : {}) });
    // Node checks header and request timeouts every connectionsCheckingInterval (30 s by default): check often enough to honour them.
    const opts = {
      maxHeaderSize: e.maxHeaderBytes,
      headersTimeout: e.headersTimeoutMs,
      requestTimeout: 0,
      keepAliveTimeout: 5_000,
      connectionsCheckingInterval: Math.max(100, Math.min(1_000, Math.floor(e.headersTimeoutMs / 4))),
    };
    this.#serverOptions = opts;
    this.#server = this.#proxyServer(undefined, this.#sockets);
    this.#inner = createServer(opts, (req, res) => void runInRequestScope(() => this.#onInterceptedRequest(req, res)));
    this.#inner.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket, 'intercept'));
    this.#inner.timeout = e.idleTimeoutMs;
  }

  /**
   * The proxy's HTTP server over `bound` (undefined: the TCP listener, which
   * authenticates each request's key); its connections are tracked in `sockets`.
   * Each request runs in its own request scope (src/observe/scope.ts), as on the main listener.
   */
  #proxyServer(bound: TransportPrincipal | undefined, sockets: Set<Socket>): Server {
    const server = createServer(this.#serverOptions, (req, res) => void runInRequestScope(() => this.#onRequest(req, res, bound)));
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => void runInRequestScope(() => this.#onConnect(req, socket, head, bound)));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.#onClientError(err, socket, 'http', bound));
    server.timeout = this.#deps.config.egress.idleTimeoutMs;
    server.on('connection', (s: Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    return server;
  }

  /**
   * Listens on the Unix socket `path` for the network door; every connection on
   * it is `principal` — the agent, in the sandbox session, for the end user —
   * without Proxy-Authorization (a presented one is ignored, never forwarded or
   * recorded). The binding is per socket, chosen here by Bastion: no request can
   * choose or change it, and the TCP listener never yields it. Requests are
   * authenticated by the kernel (`authenticateTransport`: an agent removed by a
   * reload is `auth.invalid`, an isolated one `agent.isolated`) and then go
   * through exactly what TCP requests do (guard, release, DLP, audit); each
   * record carries `session` (and `user`) and `detail.transport: 'socket'`.
   *
   * The socket is mode 0600 (owned by `principal.owner` when given); an
   * existing file at `path` is refused unless it is a stale socket. `close()`
   * ends its open connections and tunnels and removes the socket file.
   * @throws TypeError for a malformed principal or a relative path;
   *   BastionError `ERR_AGENT_UNKNOWN` (no such agent), `ERR_EGRESS_SOCKET` (the proxy is closed; see `listenUnixSocket`).
   */
  async attachPrincipalSocket(path: string, principal: SocketPrincipal): Promise<PrincipalSocket> {
    const bound = transportPrincipalOf(principal);
    if (this.#closed) throw new BastionError('ERR_EGRESS_SOCKET', 'the network door is closed');
    if (!this.#deps.config.agents.has(bound.agent)) throw new BastionError('ERR_AGENT_UNKNOWN', 'no such agent');
    const sockets = new Set<Socket>();
    const server = this.#proxyServer(bound, sockets);
    const file = await listenUnixSocket(server, path, principal.owner);
    let closing: Promise<void> | undefined;
    const handle: PrincipalSocket = {
      path,
      close: () =>
        (closing ??= (async () => {
          this.#principalSockets.delete(handle);
          // The name goes first: nothing new can reach the socket while its connections end.
          await removeSocketFile(file);
          const closed = new Promise<void>((resolve) => server.close(() => resolve()));
          // Tunnels left the HTTP server at CONNECT but are still its sockets: destroyed here too.
          for (const s of sockets) s.destroy();
          server.closeAllConnections();
          await closed;
        })()),
    };
    this.#principalSockets.add(handle);
    // The proxy closed while the socket was being made: it does not outlive it.
    if (this.#closed) {
      await handle.close();
      throw new BastionError('ERR_EGRESS_SOCKET', 'the network door is closed');
    }
    return handle;
  }

  /** The listening URL (`http://host:port`), once started. */
  get url(): URL {
    if (!this.#url) throw new Error('EgressProxy: not started');
    return this.#url;
  }

  /** Listens on `host:port` (port 0: any free port). Resolves when listening. */
  async start(host: string, port: number): Promise<URL> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    this.#url = new URL(`http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`);
    return this.#url;
  }

  /**
   * Closes every open CONNECT tunnel of `agent` (plain and intercepted): an
   * isolated agent keeps no connection (src/incidents/isolation.ts). Each
   * tunnel's record is written as it closes. Returns how many were closed.
   */
  closeAgent(agent: string): number {
    const open = this.#agentTunnels.get(agent);
    if (open === undefined) return 0;
    this.#agentTunnels.delete(agent);
    for (const s of open) s.destroy();
    return open.size;
  }

  /** Registers a tunnel's client socket under its agent until it closes. */
  #trackTunnel(agent: string, socket: Socket): void {
    let set = this.#agentTunnels.get(agent);
    if (set === undefined) this.#agentTunnels.set(agent, (set = new Set()));
    set.add(socket);
    socket.once('close', () => {
      set.delete(socket);
      if (set.size === 0 && this.#agentTunnels.get(agent) === set) this.#agentTunnels.delete(agent);
    });
  }

  /** Stops listening, closes open connections and tunnels and the upstream pools. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#principalSockets].map((p) => p.close()));
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const s of this.#sockets) s.destroy();
    this.#server.closeAllConnections();
    this.#inner.closeAllConnections();
    await closed;
    await this.#dispatchers.close();
  }

  // -------------------------------------------------------------------------
  // Entry points

  async #onRequest(req: IncomingMessage, res: ServerResponse, bound: TransportPrincipal | undefined): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const authn = this.#authenticate(req, bound);
    const target = (req.url ?? '').startsWith('http://') ? parseEgressTarget(req.url as string, method) : undefined;
    const base = { mode: 'http' as Mode, method, host: target?.host ?? null, port: target?.port ?? null, started, bound };
    if (!authn.ok) return this.#refuse(res, { ...base, agent: authn.agent ?? null }, deny(authn.reason, bound ? 'socket' : 'proxy-authorization'));
    const agent = authn.agent;
    if (target === undefined) {
      const reason = (req.url ?? '').startsWith('https://') ? 'request.https_absolute_form' : 'request.not_absolute_form';
      return this.#refuse(res, { ...base, agent }, deny(reason, 'http'));
    }
    const verdict = await this.#deps.guard.check(agent, 'network/request', target);
    if (verdict.decision.effect !== 'allow') return this.#refuse(res, { ...base, agent, verdict }, verdict.decision);
    const url = new URL(req.url as string);
    await this.#forward(req, res, { agent, target, url, verdict, mode: 'http', started, bound });
  }

  /**
   * The base-URL mode: `/egress/<host[:port]>/<path>` on the main listener is
   * forwarded to `https://<host[:port]>/<path>` under the same rules. The agent
   * key comes in `Proxy-Authorization`, `Bastion-Key`, or `Authorization:
   * Bearer` (then stripped, so the destination never sees it).
   */
  async handleBaseUrl(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const m = /^\/egress\/([^/?#]+)(\/[^#]*)?$/.exec(req.url ?? '');
    // The base-URL mode also takes the key as `Authorization: Bearer` (clients that only set an API key);
    // that header is then the agent's credential, stripped so the destination never sees it.
    const authn = authenticateAgent(req.headers, this.#deps.agentKeys, ['proxy-authorization', 'bastion-key', 'authorization']);
    if (authn.ok && authn.header === 'authorization') delete req.headers.authorization;
    const target = m ? parseEgressTarget(`https://${m[1]}${m[2] ?? '/'}`, method) : undefined;
    const base = { mode: 'base-url' as Mode, method, host: target?.host ?? null, port: target?.port ?? null, started };
    // The base-URL mode is no proxy (it is the main listener): 401, not 407 (RFC 9110 §15.5.2).
    if (!authn.ok) return this.#refuse(res, { ...base, agent: authn.agent ?? null }, deny(authn.reason, 'bastion-key'), authn.reason === 'agent.isolated' ? undefined : 401);
    const agent = authn.agent;
    if (!m || target === undefined) return this.#refuse(res, { ...base, agent }, deny('request.bad_base_url', 'http'));
    const verdict = await this.#deps.guard.check(agent, 'network/request', target);
    if (verdict.decision.effect !== 'allow') return this.#refuse(res, { ...base, agent, verdict }, verdict.decision);
    await this.#forward(req, res, { agent, target, url: new URL(`https://${m[1]}${m[2] ?? '/'}`), verdict, mode: 'base-url', started, bound: undefined });
  }

  async #onConnect(req: IncomingMessage, socket: Socket, head: Buffer, bound: TransportPrincipal | undefined): Promise<void> {
    const started = performance.now();
    socket.on('error', () => undefined);
    const authn = this.#authenticate(req, bound);
    const authority = /^(\[[0-9A-Fa-f:.]+\]|[^:/\s[\]]+):(\d{1,5})$/.exec(req.url ?? '');
    const target = authority ? parseEgressTarget(`https://${authority[1]}:${authority[2]}/`, 'CONNECT') : undefined;
    const connectTarget = target ? { ...target, method: 'CONNECT', path: '' } : undefined;
    const base = { mode: 'tunnel' as Mode, method: 'CONNECT', host: target?.host ?? null, port: target?.port ?? null, started, bound };
    const refuse = (fields: Partial<RecordFields>, decision: Decision): Promise<void> => this.#refuseSocket(socket, { ...base, agent: null, ...fields }, decision);
    if (!authn.ok) return refuse({ agent: authn.agent ?? null }, deny(authn.reason, bound ? 'socket' : 'proxy-authorization'));
    const agent = authn.agent;
    if (!connectTarget || Number(authority?.[2]) < 1 || Number(authority?.[2]) > 65535) return refuse({ agent }, deny('request.bad_authority', 'http'));
    const verdict = await this.#deps.guard.check(agent, 'network/connect', connectTarget);
    if (verdict.decision.effect !== 'allow' || verdict.address === undefined) return refuse({ agent, verdict }, verdict.decision);

    const how = await connectMode({ required: verdict.intercept || this.#deps.config.egress.intercept === 'all', hasSecret: () => this.#hasSecretFor(agent, connectTarget.host), hasIssuer: this.#deps.issuer !== undefined });
    if (!how.ok) return refuse({ agent, verdict }, how.refusal.decision);
    // A tunnel's bytes are never seen: the gate is checked before it opens (an intercepted request is checked again).
    if (how.value === 'tunnel' && this.#deps.auditWritable?.() === false) return refuse({ agent, verdict }, deny('audit.write_failed', 'audit'));
    this.#trackTunnel(agent, socket);
    if (how.value === 'intercept') {
      return this.#intercept(socket, head, { agent, bound, host: connectTarget.host, port: connectTarget.port, address: verdict.address, exception: verdict.exception }, verdict, started);
    }
    return this.#tunnel(socket, head, agent, connectTarget, verdict, started, bound);
  }

  // -------------------------------------------------------------------------
  // CONNECT: tunnel and interception

  #tunnel(client: Socket, head: Buffer, agent: string, target: EgressTarget, verdict: EgressVerdict, started: number, bound: TransportPrincipal | undefined): Promise<void> {
    const e = this.#deps.config.egress;
    return new Promise<void>((resolve) => {
      let up = 0;
      let down = 0;
      let connected = false;
      let ended = false;
      // noDelay: a tunnel relays whatever arrives at once; Nagle would hold each upload's tail for the peer's delayed ACK.
      const upstream = netConnect({ host: verdict.address, port: target.port, noDelay: true });
      client.setNoDelay(true);
      const connectTimer = setTimeout(() => upstream.destroy(new Error('connect timeout')), e.connectTimeoutMs);
      const finish = (outcome: AuditEvent['outcome'], reason?: Reason): void => {
        if (ended) return;
        ended = true;
        clearTimeout(connectTimer);
        client.destroy();
        upstream.destroy();
        const decision = reason === undefined ? verdict.decision : deny(reason, 'upstream');
        void this.#audit({ mode: 'tunnel', agent, method: 'CONNECT', host: target.host, port: target.port, started, verdict, bound }, decision, outcome, { status: connected ? 200 : 502, bytesOut: up, bytesIn: down }).then(resolve);
      };
      upstream.once('connect', () => {
        connected = true;
        clearTimeout(connectTimer);
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) {
          up += head.length;
          upstream.write(head);
        }
        client.on('data', (d: Buffer) => {
          up += d.length;
        });
        upstream.on('data', (d: Buffer) => {
          down += d.length;
        });
        client.pipe(upstream);
        upstream.pipe(client);
        client.setTimeout(e.idleTimeoutMs, () => finish('timeout', 'tunnel.idle'));
      });
      upstream.on('error', () => {
        if (!connected) {
          if (!client.destroyed) client.end(rawResponse('upstream.connect_failed'));
          finish('error', 'upstream.connect_failed');
        } else finish('error', 'upstream.reset');
      });
      upstream.on('close', () => finish('ok'));
      client.on('close', () => finish('ok'));
      client.on('error', () => finish('ok'));
    });
  }

  async #intercept(client: Socket, head: Buffer, meta: TunnelMeta, verdict: EgressVerdict, started: number): Promise<void> {
    let context: SecureContext;
    try {
      context = await (this.#deps.issuer as TlsIssuer).secureContext(meta.host);
    } catch {
      return this.#refuseSocket(client, { mode: 'intercept', agent: meta.agent, method: 'CONNECT', host: meta.host, port: meta.port, started, verdict, bound: meta.bound }, deny('ca.issue_failed', 'ca'));
    }
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) client.unshift(head);
    const tls = new TLSSocket(client, { isServer: true, secureContext: context, ALPNProtocols: ['http/1.1'] });
    this.#tunnels.set(tls, meta);
    let handshake = false;
    tls.once('secure', () => {
      handshake = true;
    });
    tls.on('error', () => tls.destroy());
    tls.once('close', () => {
      // One record for the tunnel itself; each request inside has its own.
      void this.#audit({ mode: 'intercept', agent: meta.agent, method: 'CONNECT', host: meta.host, port: meta.port, started, verdict, bound: meta.bound }, handshake ? verdict.decision : deny('tls.handshake_failed', 'ca'), handshake ? 'ok' : 'error', { status: 200 });
    });
    this.#inner.emit('connection', tls);
  }

  async #onInterceptedRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const meta = this.#tunnels.get(req.socket);
    const method = req.method ?? 'GET';
    if (meta === undefined) {
      res.destroy();
      return;
    }
    const base = { mode: 'intercept' as Mode, agent: meta.agent, method, host: meta.host, port: meta.port, started, bound: meta.bound };
    // A tunnel opened before its agent was isolated carries nothing more (src/incidents/isolation.ts).
    if (this.#deps.agentKeys.isIsolated(meta.agent)) return this.#refuse(res, base, deny('agent.isolated', 'incidents'), undefined, true);
    const hostPort = meta.port === 443 ? meta.host : `${meta.host}:${meta.port}`;
    const authority = meta.host.includes(':') ? (meta.port === 443 ? `[${meta.host}]` : `[${meta.host}]:${meta.port}`) : hostPort;
    const hostHeader = req.headers.host;
    // Requests inside a tunnel go to the CONNECT host only (RFC 9110 §7.4: 421 Misdirected Request).
    if (hostHeader !== undefined && normalizeHost(hostHeader.replace(/:443$/, '')) !== normalizeHost(hostPort) && normalizeHost(hostHeader) !== normalizeHost(authority)) {
      return this.#refuse(res, base, deny('request.misdirected', 'host'));
    }
    if (!(req.url ?? '').startsWith('/')) return this.#refuse(res, base, deny('request.not_origin_form', 'http'));
    const target = parseEgressTarget(`https://${authority}${req.url}`, method);
    if (target === undefined) return this.#refuse(res, base, deny('request.bad_target', 'http'));
    // The connection was checked at CONNECT; the request itself is decided here (methods, paths).
    const verdict = await this.#deps.guard.check(meta.agent, 'network/request', target);
    if (verdict.decision.effect !== 'allow') return this.#refuse(res, { ...base, verdict }, verdict.decision);
    // Dial the address checked at CONNECT time: the tunnel is bound to it.
    const pinned: EgressVerdict = { ...verdict, address: meta.address, exception: verdict.exception || meta.exception };
    await this.#forward(req, res, { agent: meta.agent, target, url: new URL(`https://${authority}${req.url}`), verdict: pinned, mode: 'intercept', started, bound: meta.bound });
  }

  // -------------------------------------------------------------------------
  // Inspected forwarding

  /**
   * Inspected forwarding, a composition of the stages in forward-stages.ts:
   * read the body → find and release placeholders → outbound DLP → swap →
   * connect to the pinned address → stream the response through the redactor →
   * audit. Each refusal is the kernel's (status and code from the table).
   */
  async #forward(req: IncomingMessage, res: ServerResponse, ctx: ForwardContext): Promise<void> {
    const { agent, target } = ctx;
    const base: RecordFields = { mode: ctx.mode, agent, method: target.method, host: target.host, port: target.port, started: ctx.started, verdict: ctx.verdict, bound: ctx.bound };
    const e = this.#deps.config.egress;
    if (req.headers.upgrade !== undefined) return this.#refuse(res, base, deny('request.upgrade_unsupported', 'http'));

    const body = await readForwardBody(req.headers, (max, ms) => readBody(req, max, ms), () => req.resume(), e);
    if (!body.ok) return this.#refuseStage(res, base, body);

    // The request as text, for the placeholder and DLP scans: latin1 keeps bytes 1:1 (the body's text is made only if a scan needs it).
    // The end user's token (users.token) is Bastion's, like Bastion-User: never forwarded.
    const tokenHeader = this.#deps.users?.tokenHeader;
    const headers = forwardHeaders(req.headers).filter(([k]) => k !== tokenHeader);
    const bodyText = new RequestBody(body.value);
    // On a principal socket the end user is the one Bastion bound to it: a Bastion-User header there names nobody.
    const user = ctx.bound !== undefined ? ctx.bound.user : typeof req.headers['bastion-user'] === 'string' ? req.headers['bastion-user'] : null;
    // One reading of the vault for the whole request: the placeholders released and the values redacted agree.
    let view: PlaceholderView | undefined;
    try {
      view = await this.#deps.vault?.view();
    } catch {
      return this.#refuse(res, base, deny('vault.unavailable', 'vault'));
    }
    const released = await releasePlaceholders(requestParts(headers, ctx.url, bodyText), { agent, user }, target, this.#releaseDeps(agent, req.headers, view));
    if (!released.ok) return this.#refuseStage(res, base, released, user);

    const dlp = outboundDlp([headers.map(([k, v]) => `${k}: ${v}`).join('\n'), ctx.url.pathname + ctx.url.search, bodyText], target.host, this.#deps.dlp);
    if (!dlp.ok) return this.#refuseStage(res, base, dlp);

    const out = swapReleased(headers, ctx.url, bodyText, released.value);
    const names = [
      ...new Set([...released.value.named.values()].map((s) => s.info.name)),
      ...[...released.value.pasted.keys()].map((t) => `pasted:${t}`),
      ...[...released.value.tokens.keys()].map((p) => `oauth:${p}`),
    ];
    for (const s of released.value.named.values()) this.#deps.vault?.markUsed(s.info.id);
    for (const p of released.value.pasted.values()) this.#deps.pasted?.markUsed(p.secret.id);
    const sent: RecordFields = { ...base, secrets: names, bytesOut: out.body.length };

    let live: readonly Secret[];
    try {
      live = view ? view.valuesForHost(target.host) : [];
    } catch {
      return this.#refuse(res, base, deny('vault.unavailable', 'vault'));
    }
    const redaction = responseRedaction(released.value, live);
    const redacting = redaction.forms.length > 0;
    if (this.#deps.auditWritable?.() === false) return this.#refuse(res, base, deny('audit.write_failed', 'audit'));
    const upstream = await timeStage('forward', () => this.#send(ctx, redacting ? { ...out, headers: askIdentity(out.headers) } : out));
    if (!upstream.ok) return this.#refuse(res, sent, upstream.decision);
    await this.#respond(res, ctx, sent, upstream.value, redacting ? redaction : undefined);
  }

  /** The release stage's dependencies for one request of `agent`: the vault, the pasted store, the grants, the end-user step. */
  #releaseDeps(agent: string, headers: IncomingHttpHeaders, view: PlaceholderView | undefined): ReleaseDeps {
    const grants = this.#deps.config.agents.get(agent)?.secrets ?? [];
    const pasted = this.#deps.pasted;
    const users = this.#deps.users;
    const isolated = (a: string): boolean => this.#deps.agentKeys.isIsolated(a);
    return {
      // A placeholder of an isolated agent is dead, whoever presents it (src/incidents/isolation.ts): unknown.
      resolve: async (ph) => {
        if (isolated(agent)) return undefined;
        const r = view?.resolve(agent, ph);
        return r && { info: r.secret, value: r.value };
      },
      ...(pasted ? { findPasted: async (token: string) => {
        const found = await pasted.find(token);
        return found === undefined || isolated(found.secret.agent) ? undefined : found;
      } } : {}),
      granted: (name) => grants.includes(name),
      secretConfig: (name) => this.#deps.config.secrets.get(name),
      ...(this.#deps.userOAuth
        ? {
            oauth: {
              token: (provider: string, user: string) => (this.#deps.userOAuth as NonNullable<EgressProxyDeps['userOAuth']>).accessToken({ user, provider }),
              granted: (provider: string) => (this.#deps.config.agents.get(agent)?.oauth ?? []).includes(provider),
              hosts: (provider: string) => this.#deps.config.oauth.providers.get(provider)?.hosts ?? [],
            },
          }
        : {}),
      // A pasted secret belongs to an end user: with user tokens configured, only a proven owner may use one.
      ...(users?.enabled === true
        ? {
            verifyOwner: async (): Promise<Decision | undefined> => {
              const claims = users.claimsOf(headers);
              const who = claims === 'invalid' ? undefined : await users.identify(claims);
              if (who === undefined || !who.ok) return deny(who?.reason ?? 'user.invalid', 'users.token');
              if (who.user === null || !who.user.verified) return deny('user.unverified', 'users.token');
              return undefined;
            },
          }
        : {}),
    };
  }

  /** Connects to the checked address (a dispatcher pinned to it) and sends the request; a failure is the upstream's reason. */
  async #send(ctx: ForwardContext, out: SwappedRequest): Promise<{ ok: true; value: Dispatcher.ResponseData } | { ok: false; decision: Decision }> {
    const { target } = ctx;
    const e = this.#deps.config.egress;
    const dispatcher = this.#dispatchers.get(target.host, ctx.verdict.address as string);
    const origin = `${target.scheme}://${target.host.includes(':') ? `[${target.host}]` : target.host}${(target.scheme === 'https' && target.port === 443) || (target.scheme === 'http' && target.port === 80) ? '' : `:${target.port}`}`;
    try {
      const value = await dispatcher.request({
        origin,
        path: out.path,
        method: target.method as Dispatcher.HttpMethod,
        headers: out.headers.flat(),
        body: out.body.length > 0 || !['GET', 'HEAD'].includes(target.method) ? out.body : null,
        headersTimeout: e.upstreamTimeoutMs,
        bodyTimeout: e.upstreamTimeoutMs,
      });
      return { ok: true, value };
    } catch (err) {
      return { ok: false, decision: deny(upstreamReason(err), 'upstream') };
    }
  }

  /** Streams the response back through the decoder and the redactor (when `redaction` is set), then writes the request's record. */
  async #respond(res: ServerResponse, ctx: ForwardContext, sent: RecordFields, upstream: Dispatcher.ResponseData, redaction: RedactionSet | undefined): Promise<void> {
    const decode = responseDecoder(upstream.headers['content-encoding'], redaction !== undefined);
    if (!decode.ok) {
      // Unread: destroying it may emit an error (the connection torn down), which must not go unheard.
      dropBody(upstream.body);
      return this.#refuseStage(res, sent, decode);
    }
    const headers = responseHeaders(upstream.headers, { redaction, decoded: decode.value !== undefined, ...(ctx.mode === 'base-url' ? { rebase: (l: string) => rebaseLocation(l, ctx.url) } : {}) });
    let bytesIn = 0;
    try {
      res.writeHead(upstream.statusCode, headers.flat());
      const stages: Transform[] = decode.value ? [decode.value] : [];
      const ct = upstream.headers['content-type'];
      const redactor = redaction ? new ResponseRedactor(redaction, { json: isJsonMediaType(Array.isArray(ct) ? ct[0] : ct), maxJsonBytes: DEFAULTS.egressRedactJsonBytes }) : undefined;
      if (redactor) stages.push(redactor);
      await pump(upstream.body, stages, res, (n) => {
        bytesIn += n;
      });
      const redactions = redactor?.redactions ?? 0;
      await this.#audit(sent, ctx.verdict.decision, 'ok', { status: upstream.statusCode, bytesIn, ...(redactions > 0 ? { redactions } : {}) });
    } catch (err) {
      if (err instanceof ClientClosed) {
        // The agent hung up mid-answer: the request was allowed and forwarded; the destination did nothing wrong.
        res.destroy();
        return this.#audit(sent, ctx.verdict.decision, 'client_closed', { status: upstream.statusCode, bytesIn });
      }
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
      await this.#audit(sent, deny(upstreamReason(err), 'upstream'), 'error', { status: upstream.statusCode, bytesIn });
    }
  }

  /** Answers a stage's refusal: an exfiltration attempt is alerted and flagged; an aborted request is only recorded. */
  async #refuseStage(res: ServerResponse, base: RecordFields, r: StageRefusal, user: string | null = null): Promise<void> {
    const fields: RecordFields = r.secrets.length > 0 || r.exfiltration ? { ...base, secrets: r.secrets, ...(r.exfiltration ? { alert: 'exfiltration' } : {}) } : base;
    if (r.aborted) return this.#audit(fields, r.refusal.decision, 'error', {});
    if (r.exfiltration) this.#deps.onAlert?.({ kind: 'exfiltration', agent: base.agent ?? '', host: base.host ?? '', reason: r.refusal.decision.reason, secrets: r.secrets });
    // The end user has not connected their account: the answer carries a sign-in link for the agent to show them.
    const provider = r.secrets[0]?.startsWith('oauth:') ? r.secrets[0].slice('oauth:'.length) : undefined;
    if (r.refusal.decision.reason === 'oauth.consent_required' && provider !== undefined && user !== null && this.#deps.userOAuth !== undefined) {
      const link = await this.#deps.userOAuth.startAuthorization({ provider, user, agent: base.agent ?? '' });
      if (link.ok) return this.#refuse(res, fields, r.refusal.decision, undefined, r.close === true, { link: link.url.href });
    }
    return this.#refuse(res, fields, r.refusal.decision, undefined, r.close === true);
  }

  // -------------------------------------------------------------------------
  // Helpers

  /**
   * The kernel's agent authentication: on a principal socket, the principal bound to it (no header is read);
   * otherwise Proxy-Authorization (Basic agent:key, or Bearer key), else Bastion-Key.
   */
  #authenticate(req: IncomingMessage, bound: TransportPrincipal | undefined): Authentication | TransportAuthentication {
    if (bound !== undefined) return authenticateTransport(bound, this.#deps.agentKeys, (agent) => this.#deps.config.agents.has(agent));
    return authenticateAgent(req.headers, this.#deps.agentKeys, ['proxy-authorization', 'bastion-key']);
  }

  /**
   * Whether a CONNECT to `host` is intercepted for a secret: a credential an end user could paste for it
   * (model-door agents), or any live vault secret bound to it, granted to this agent or not (every response
   * of a secret's host is redacted of its values). @throws on a store failure (the CONNECT is refused).
   */
  async #hasSecretFor(agent: string, host: string): Promise<boolean> {
    // Credentials end users paste to the model can only be used on their provider's hosts: intercept those for model-door agents.
    if (this.#deps.pasted && this.#deps.config.agents.get(agent)?.model !== undefined && hostMatchesAny(PASTED_SECRET_HOSTS, host)) return true;
    // A provider's hosts, where end users' tokens go: inspected for every agent, so a placeholder sent
    // there by an agent without the provider is seen (and refused) rather than tunnelled through.
    for (const provider of this.#deps.config.oauth.providers.values()) {
      if (hostMatchesAny(provider.hosts, host)) return true;
    }
    if (!this.#deps.vault) return false;
    for (const name of this.#deps.config.agents.get(agent)?.secrets ?? []) {
      const hosts = this.#deps.config.secrets.get(name)?.hosts;
      if (hosts !== undefined && hostMatchesAny(hosts, host)) return true;
    }
    return (await this.#deps.vault.view()).valuesForHost(host).length > 0;
  }

  /**
   * Answers a refusal with the kernel's table (status, code; a reason missing from it is 500), after
   * writing its audit record. `status` overrides the table only for the base-URL mode's 401.
   */
  async #refuse(res: ServerResponse, fields: RecordFields, decision: Decision, statusOverride?: 401, close = false, extra: { link?: string } = {}): Promise<void> {
    const refused = refusalOf(decision, 'network');
    const status = statusOverride ?? refused.status;
    const code = refused.code;
    await this.#audit(fields, decision, 'denied', { status }, true);
    if (res.headersSent || res.destroyed) return void res.destroy();
    const body = JSON.stringify({ error: { code, reason: decision.reason, ...extra } });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'bastion-reason': decision.reason, 'content-length': String(Buffer.byteLength(body)) };
    if (status === 407) headers['proxy-authenticate'] = 'Basic realm="bastion"';
    if (close) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  }

  async #refuseSocket(socket: Socket, fields: RecordFields, decision: Decision): Promise<void> {
    const status = statusOf(decision.reason, 'network');
    await this.#audit(fields, decision, 'denied', { status }, true);
    if (!socket.destroyed) socket.end(rawResponse(decision.reason));
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Socket, mode: Mode, bound?: TransportPrincipal): void {
    const code = err.code ?? '';
    // The client went away (an idle keep-alive connection reset or closed is how clients close): no request,
    // no record. A request in flight records itself (client_closed).
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED' || code === 'ETIMEDOUT') return void socket.destroy();
    const reason: Reason = code === 'HPE_HEADER_OVERFLOW' ? 'request.header_too_large' : code === 'HPE_HEADERS_TIMEOUT' || code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request.header_timeout' : 'request.malformed';
    const status = statusOf(reason, 'network');
    const meta = this.#tunnels.get(socket);
    const by = meta?.bound ?? bound;
    void this.#audit({ mode, agent: meta?.agent ?? by?.agent ?? null, method: 'unknown', host: meta?.host ?? null, port: meta?.port ?? null, started: performance.now(), bound: by }, deny(reason, 'http'), 'denied', { status, parser: code });
    if (socket.writable && code !== 'ECONNRESET') socket.end(rawResponse(reason));
    else socket.destroy();
  }

  /** Writes the request's record; `beforeAnswer`: the answer is not sent yet and waits for it (with backpressure). */
  async #audit(f: RecordFields, decision: Decision, outcome: AuditEvent['outcome'], extra: Record<string, unknown>, beforeAnswer = false): Promise<void> {
    const event: AuditEvent = {
      time: new Date(Date.now() - (performance.now() - f.started)).toISOString(),
      door: 'network',
      agent: f.agent,
      // A principal socket's session and end user (src/egress/principal-socket.ts).
      ...(f.bound !== undefined ? { session: f.bound.session, ...(f.bound.user !== null ? { user: f.bound.user } : {}) } : {}),
      method: f.method,
      target: f.host === null ? null : `${f.host.includes(':') ? `[${f.host}]` : f.host}:${f.port ?? ''}`,
      decision: { effect: decision.effect, reason: decision.reason, rule: decision.rule },
      outcome,
      durationMs: Math.round((performance.now() - f.started) * 1000) / 1000,
      detail: {
        mode: f.mode,
        ...(f.bound !== undefined ? { transport: 'socket' } : {}),
        ...(f.verdict?.address !== undefined ? { address: f.verdict.address } : {}),
        ...(f.verdict && f.verdict.policies.length > 0 ? { policies: f.verdict.policies } : {}),
        ...(f.verdict?.exception ? { unsafeAllowPrivate: true } : {}),
        ...(f.secrets && f.secrets.length > 0 ? { secrets: f.secrets } : {}),
        ...(f.alert ? { alert: f.alert } : {}),
        ...(f.bytesOut !== undefined ? { bytesOut: f.bytesOut } : {}),
        ...extra,
      },
    };
    // Batched; the kernel's audit step counts and alerts a failed write. Before an answer, past the
    // backlog's bound, the answer waits for durability; after a streamed answer there is nothing to hold.
    if (beforeAnswer && this.#deps.recordBounded !== undefined) return this.#deps.recordBounded(event);
    this.#deps.record(event);
  }
}

interface RecordFields {
  readonly mode: Mode;
  readonly agent: string | null;
  readonly method: string;
  readonly host: string | null;
  readonly port: number | null;
  readonly started: number;
  readonly verdict?: EgressVerdict;
  readonly secrets?: readonly string[];
  readonly alert?: string;
  readonly bytesOut?: number;
  /** The principal bound to the transport (a principal socket), if the request came on one. */
  readonly bound?: TransportPrincipal | undefined;
}

/** The request headers to forward, lower-case names, hop-by-hop and proxy headers removed. */
function forwardHeaders(h: IncomingHttpHeaders): [string, string][] {
  const connection = String(h.connection ?? '')
    .toLowerCase()
    .split(',')
    .map((s) => s.trim());
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || DROP_REQUEST.has(k) || connection.includes(k)) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
  }
  return out;
}

/** What {@link EgressProxy} forwards one inspected request with. */
interface ForwardContext {
  readonly agent: string;
  readonly target: EgressTarget;
  readonly url: URL;
  readonly verdict: EgressVerdict;
  readonly mode: Mode;
  readonly started: number;
  /** The principal bound to the transport the request came on (a principal socket), if any. */
  readonly bound: TransportPrincipal | undefined;
}

/**
 * Streams `src` through `stages` into `dst` with backpressure (`pipe`), counting
 * the bytes read from `src`. Resolves when `dst` has finished; rejects when any
 * stream errors or the client goes away first, after destroying the others.
 * (`stream.pipeline` does the same with an AbortController per call, which
 * showed up in profiles of the hot path.)
 */
function pump(src: Readable, stages: readonly Transform[], dst: ServerResponse, count: (bytes: number) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    if (dst.destroyed) {
      // The client left while the destination's headers were on their way: drop the body unread.
      dropBody(src);
      return reject(new ClientClosed());
    }
    let done = false;
    const fail = (err: unknown): void => {
      if (done) return;
      done = true;
      src.destroy();
      for (const s of stages) s.destroy();
      reject(err instanceof Error ? err : new Error('stream failed'));
    };
    src.on('data', (d: Buffer) => count(d.length));
    src.on('error', fail);
    for (const s of stages) s.on('error', fail);
    // Errors writing to the client, and a close before the end, are the client's going away.
    dst.on('error', () => fail(new ClientClosed()));
    dst.on('finish', () => {
      if (!done) {
        done = true;
        resolve();
      }
    });
    dst.on('close', () => {
      if (!done) fail(new ClientClosed());
    });
    let cur: Readable = src;
    for (const s of stages) cur = cur.pipe(s);
    cur.pipe(dst);
  });
}

/** The client closed the connection while its answer streamed: recorded `client_closed`, not a destination failure. */
class ClientClosed extends Error {
  constructor() {
    super('client closed the connection');
  }
}


/** A minimal HTTP/1.1 response for a raw socket (CONNECT refusals, parse errors), status and code from the kernel's table. */
function rawResponse(reason: string): string {
  const status = statusOf(reason, 'network');
  const code = codeOf(reason, 'network');
  const body = JSON.stringify({ error: { code, reason } });
  const text: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 407: 'Proxy Authentication Required', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };
  return (
    `HTTP/1.1 ${status} ${text[status] ?? 'Error'}\r\n` +
    (status === 407 ? 'Proxy-Authenticate: Basic realm="bastion"\r\n' : '') +
    `Content-Type: application/json\r\nBastion-Reason: ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** The refusal reason for an undici or socket error reaching the destination. */
function upstreamReason(err: unknown): Reason {
  const code = (err as { code?: string } | null)?.code ?? '';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'upstream.timeout';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'upstream.reset';
  if (code === 'ECONNREFUSED') return 'upstream.refused';
  if (/CERT|SSL|TLS|ERR_TLS/i.test(code)) return 'upstream.tls';
  return 'upstream.error';
}

/** A redirect in base-URL mode points back through Bastion, so the next hop is checked again. */
function rebaseLocation(location: string, current: URL): string {
  let next: URL;
  try {
    next = new URL(location, current);
  } catch {
    return location;
  }
  if (next.protocol !== 'https:') return location;
  return `/egress/${next.host}${next.pathname}${next.search}`;
}

