/**
 * One downstream MCP session through the tool door: an SDK `Server` speaking to
 * the agent, upstream connections made on first need, and the pipeline every
 * request goes through.
 *
 * tools/call is a composition of the stages in call-stages.ts (each passes the
 * call on or ends it in a refusal from the kernel's table): catalogue lookup →
 * Cedar decision (deny / approve / allow) and tool metadata → argument schema
 * (ajv, JSON Schema 2020-12) → path guard → approval hold → pasted secrets
 * through the release rule → upstream call with timeout (an ability:
 * src/abilities/runner.ts instead, and no path guard) → result screening
 * (credential redaction, hidden-character flag, size cap) → one audit record.
 *
 * Auditing happens at the transport boundary: every JSON-RPC request the agent
 * sends is recorded exactly once, when its response goes out, whatever handled
 * it (including initialize and ping, answered inside the SDK). Handlers enrich
 * the record through {@link RequestAudit}. The response is held until the record
 * is durable; if the audit write fails, the agent gets an error instead (fail closed).
 *
 * An unknown tool, a hidden tool and a forbidden tool are refused with the same
 * tool error, so an agent cannot probe for tools it may not see.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  GetPromptResultSchema,
  isJSONRPCErrorResponse,
  isJSONRPCNotification,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  ReadResourceResultSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type JSONRPCMessage,
  type RequestId,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { canonicalJson } from '../audit/canonical.ts';
import type { AuditLog } from '../audit/log.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { ApprovalQueue } from '../approvals/queue.ts';
import type { ResolvedConfig, ResolvedAgent, ResolvedUpstream } from '../config/types.ts';
import { allow, deny, type Decision } from '../decision.ts';
import { BastionError, toBastionError } from '../errors.ts';
import { pathAuditDetail, type PathGuard } from '../policy/paths.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import { randomToken, sha256Hex } from '../util/crypto.ts';
import { buildCatalogue, resourceOwner, type Catalogue, type Entry, type UpstreamListing } from './catalogue.ts';
import { UpstreamConnection } from './upstream.ts';
import type { PinGate } from './pins.ts';
import { ArgumentValidator } from './validate.ts';
import { redactionForms } from '../redact/values.ts';
import { NO_VALUES, setOfForms, type RedactionSet } from '../redact/engine.ts';
import type { ToolMetaIndex } from '../policy/tool-meta.ts';
import type { OutboundSigner, SignatureAudit } from '../identity/signer.ts';
import { ABILITIES_UPSTREAM, abilityTools } from '../abilities/catalogue.ts';
import { SANDBOX_TOOLS, SANDBOX_UPSTREAM } from '../sandbox/tools.ts';
import { decideCommands, isSandboxCall, runSandboxTool, type SandboxStageDeps } from '../sandbox/stages.ts';
import type { SandboxService } from '../sandbox/service.ts';
import type { AbilityRunner } from '../abilities/runner.ts';
import { upstreamRequestSigner, withCallScope } from '../identity/upstream-signing.ts';
import type { UpstreamRequestSigner } from './http-upstream-transport.ts';
import type { PastedSecrets } from '../vault/pasted.ts';
import type { UserOAuth } from '../oauth/index.ts';
import { release, userTokenSecret } from '../vault/release.ts';
import type { UserIdentity } from '../door/user.ts';
import { AuditStep } from '../door/audit-step.ts';
import { refusalOf } from '../door/refusal.ts';
import { CLIENT_CAPS_META_KEY, INPUT_RESPONSES_META_KEY, MODERN_RPC, paramHeaderDeclarations, paramHeaderMismatch, REQUEST_STATE_META_KEY } from './revision/wire.ts';
import { CLIENT_CAPABILITIES_META_KEY, INPUT_REQUIRED_META_KEY } from './revision/upstream.ts';
import {
  STATE_TEXT,
  checkAuditGate,
  isInputRequired,
  isRefused,
  noteArguments,
  observeContent,
  observeResult,
  renderRefusal,
  screenResult,
  textsOf,
  screenToolResult,
  toolError,
  TOO_LARGE,
  type AbilityDeps,
  type ApprovalStateBinding,
  type DecidedCall,
  type DecideDeps,
  type DeferDeps,
  type HoldDeps,
  type PathDeps,
  type ReleaseDeps,
  type ReleasedCall,
  type RequestAudit,
  type ResolvedCall,
  type ResolveDeps,
  type ToolCall,
  type ValidateDeps,
} from './call-stages.ts';
import * as callStages from './call-stages.ts';
import { timedStages, timeStage } from '../observe/scope.ts';
import type { LabelIndex } from '../policy/labels.ts';
import { callFacts, type CallFacts } from '../provenance/facts.ts';
import { conversationKey, type ProvenanceTracker } from '../provenance/tracker.ts';

export type { RequestAudit } from './call-stages.ts';

// The tools/call stages, each timed in the request scope (a span and a `bastion_stage_duration_seconds` sample).
const { resolveTool, decide, validateArguments, guardPaths, spendBudget, holdForApproval, deferApproval, releasePasted, runAbility } = timedStages(callStages, [
  'resolveTool',
  'decide',
  'validateArguments',
  'guardPaths',
  'spendBudget',
  'holdForApproval',
  'deferApproval',
  'releasePasted',
  'runAbility',
]);

/** What a gateway session needs from the running gateway. */
export interface GatewayDeps {
  readonly config: ResolvedConfig;
  readonly policy: PolicyEngine;
  readonly paths: PathGuard;
  readonly audit: AuditLog;
  /**
   * The kernel's audit step over `audit` (src/door/audit-step.ts): the session's
   * records go through it, so a failed write is counted
   * (`bastion_audit_write_failures_total`) and alerted like every door's, and its
   * write gate is checked before anything reaches an upstream. Default: a step of
   * the session's own over `audit` (counted there, reported to no one).
   */
  readonly auditStep?: Pick<AuditStep, 'durable' | 'writable'>;
  readonly approvals: ApprovalQueue;
  readonly validator: ArgumentValidator;
  /**
   * The agent's placeholder for a vault secret (for `vault:NAME` in a stdio
   * upstream's environment). Rejects when no vault is open or the secret is unknown.
   */
  readonly placeholder?: (agent: string, secret: string) => Promise<string>;
  /** End users' pasted secrets (`<<SECRET_…>>` in tool arguments); absent without a vault, and then they fail closed. */
  readonly pasted?: PastedSecrets;
  /** Tool scope / cross-user metadata (config `tools`). */
  readonly toolMeta?: ToolMetaIndex;
  /** Signs requests to abilities and to HTTP upstreams with `signContext` or `token`. Without it those requests fail closed. */
  readonly signer?: OutboundSigner;
  /** Runs ability calls (with the vault). Without it ability calls fail closed. */
  readonly abilities?: AbilityRunner;
  /** Each end user's OAuth tokens for upstreams with `oauth` (config `oauth.providers`); without it those upstreams fail closed. */
  readonly userOAuth?: UserOAuth;
  /** Seals and opens the `requestState` of held calls for stateless (2026-07-28) clients; without it their held calls fail closed. */
  readonly requestStates?: DeferDeps['states'];
  /** Tool labels (src/policy/labels.ts); with `provenance`, calls are decided on labels, taint and provenance. */
  readonly labels?: LabelIndex;
  /** Per-conversation taint and provenance (src/provenance/tracker.ts); absent: nothing is traced. */
  readonly provenance?: ProvenanceTracker;
  /** Pinned tool definitions (src/mcp/pins.ts): every catalogue passes through it. */
  readonly pins: PinGate;
  /** The sandbox (src/sandbox/service.ts), when `sandbox.enabled`: its tools are listed and run; absent, they are not listed. */
  readonly sandbox?: SandboxService;
}

/** How a session meets its client: a legacy MCP session, or the pool behind stateless (2026-07-28) requests. */
export interface SessionOptions {
  /** Stateless: held calls answer `input_required` instead of waiting; `Mcp-Param-*` headers are checked. */
  readonly stateless?: boolean;
}

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** JSON-RPC error code Bastion uses when it refuses a protocol request (not a tool call). */
export const JSONRPC_DENIED = -32003;

const REQUEST_ALLOWED: Decision = allow('mcp.request', 'protocol');

/** What a stateless request is answered with instead of its result ({@link GatewaySession.takeInputRequired}). */
export type InputRequiredAnswer =
  | { readonly kind: 'approval'; readonly approvalId: string; readonly requestState: string }
  | { readonly kind: 'upstream'; readonly inputRequests: Record<string, unknown>; readonly requestState: string };

/** The tool Bastion lists, and answers itself, for a per-user OAuth upstream: its name is reserved there. */
export const CONNECT_TOOL = 'connect_account';

/** The connect tool of a provider, as listed while the end user has not connected. */
function connectTool(provider: string): Tool {
  return {
    name: CONNECT_TOOL,
    description: `Connect the user's ${provider} account. Returns a link the user must open; the other tools of this server appear once connected.`,
    inputSchema: { type: 'object', properties: {}, additionalProperties: false },
  };
}

/** An upstream's `input_required` result, as the 1.x client must accept it beside the method's own result. */
const INPUT_REQUIRED_RESULT = z.looseObject({ resultType: z.literal('input_required'), inputRequests: z.record(z.string(), z.unknown()).optional(), requestState: z.string().optional() });

/** Longest upstream `requestState` Bastion carries inside its own, in characters. */
const MAX_UPSTREAM_STATE_CHARS = 16 * 1024;

/**
 * The params of a stateless client's call as sent upstream: the client's own
 * capabilities (so the upstream asks only for input the client can give), the
 * pass-through marker, and on a continuation the client's input responses and
 * the upstream's state from Bastion's sealed one.
 */
function upstreamParams(call: ReleasedCall, modern: { readonly meta: Record<string, unknown> | undefined; readonly continuation: string | null }): Record<string, unknown> & { name: string } {
  return { name: call.entry.original, arguments: call.callArgs, ...passThroughParams(modern) };
}

/** The pass-through part of {@link upstreamParams}: marker and capabilities in `_meta`, the client's input responses, the upstream's state. */
function passThroughParams(modern: { readonly meta: Record<string, unknown> | undefined; readonly continuation: string | null }): Record<string, unknown> {
  const caps = modern.meta?.[CLIENT_CAPS_META_KEY];
  const responses = modern.meta?.[INPUT_RESPONSES_META_KEY];
  return {
    _meta: {
      [INPUT_REQUIRED_META_KEY]: 'return',
      [CLIENT_CAPABILITIES_META_KEY]: caps !== null && typeof caps === 'object' && !Array.isArray(caps) ? caps : {},
    },
    // The client's answers go to the upstream whenever it gives them (the upstream validates them); the
    // upstream's own state only from a sealed continuation of this very call.
    ...(responses !== null && typeof responses === 'object' && !Array.isArray(responses) ? { inputResponses: responses } : {}),
    ...(modern.continuation !== null && modern.continuation !== '' ? { requestState: modern.continuation } : {}),
  };
}

/** SHA-256 hex over the RFC 8785 canonical JSON of tool arguments (`{}` when absent). */
export function digestArguments(args: unknown): string {
  return sha256Hex(canonicalJson(args ?? {}));
}

export class GatewaySession {
  readonly agent: ResolvedAgent;
  /** The end user the session acts for (`Bastion-User` or a user token at initialize), or null. */
  readonly user: string | null;
  /** True when the end user was proven by a token (config `users.token`), not only asserted. */
  readonly userVerified: boolean;
  /** The conversation the session belongs to (`Bastion-Conversation` at initialize), or null. */
  readonly conversation: string | null;
  readonly server: Server;
  readonly #deps: GatewayDeps;
  /** Where every record of this session is written, and the audit write gate ({@link GatewayDeps.auditStep}). */
  readonly #audit: Pick<AuditStep, 'durable' | 'writable'>;
  /** The narrow dependencies of each tools/call stage (src/mcp/call-stages.ts). */
  readonly #stages: {
    readonly resolve: ResolveDeps;
    readonly decide: DecideDeps;
    readonly validate: ValidateDeps;
    readonly paths: PathDeps;
    readonly recordArguments: string;
    readonly hold: HoldDeps;
    readonly release: ReleaseDeps;
    readonly ability: AbilityDeps;
  };
  readonly #upstreams = new Map<string, Promise<UpstreamConnection>>();
  readonly #listings = new Map<string, UpstreamListing>();
  #catalogue: Promise<Catalogue> | undefined;
  #visibleTools: { tools: Tool[]; detail: Record<string, unknown> } | undefined;
  readonly #pending = new Map<RequestId, RequestAudit>();
  /** Downstream request ids in flight per upstream, to route upstream notifications to the right stream. */
  readonly #inflight = new Map<string, Set<RequestId>>();
  #transport: Transport | undefined;
  #closed = false;
  lastActivity = Date.now();
  /** Messages the transport has delivered to this session (the HTTP layer uses it to find transport-level rejections). */
  delivered = 0;

  /** True for the sessions that serve stateless (2026-07-28) requests (src/mcp/stateless.ts). */
  readonly stateless: boolean;

  constructor(deps: GatewayDeps, agent: ResolvedAgent, user: UserIdentity | string | null = null, conversation: string | null = null, opts: SessionOptions = {}) {
    this.#deps = deps;
    this.#audit = deps.auditStep ?? new AuditStep(deps.audit);
    this.stateless = opts.stateless === true;
    this.agent = agent;
    this.user = typeof user === 'string' ? user : (user?.id ?? null);
    this.userVerified = typeof user === 'object' && user !== null && user.verified;
    this.conversation = conversation;
    const { config, toolMeta } = deps;
    this.#stages = {
      resolve: {
        catalogue: (record) => this.#getCatalogue(record),
        cached: () => this.#catalogue !== undefined,
        upstreams: config.upstreams,
        abilities: config.abilities,
        mayCall: (name, upstream) => deps.policy.authorize({ agent: agent.name, action: 'tools/call', resource: { kind: 'tool', id: name, upstream }, args: {}, listing: true }).effect !== 'deny',
      },
      decide: {
        authorize: (req) => deps.policy.authorize(req),
        ...(toolMeta === undefined ? {} : { hiddenReason: (agent, tool) => toolMeta.hiddenReason(agent, tool) }),
        ...(deps.provenance !== undefined && deps.labels !== undefined && this.#traced() ? { facts: (call: ResolvedCall) => this.#facts(call, deps.provenance as ProvenanceTracker, deps.labels as LabelIndex) } : {}),
      },
      validate: deps.validator,
      paths: deps.paths,
      recordArguments: config.audit.recordArguments,
      hold: deps.approvals,
      release: { pasted: deps.pasted, usersToken: config.users.token !== undefined },
      ability: { runner: deps.abilities, output: config.output },
    };
    this.server = new Server(
      { name: 'bastion', version: '0.1.0' },
      {
        capabilities: {
          tools: { listChanged: true },
          resources: { subscribe: true, listChanged: true },
          prompts: { listChanged: true },
          logging: {},
          completions: {},
        },
      },
    );
    this.#registerHandlers();
    // An admin approved a withheld definition (on any instance): the client learns its tool list changed.
    if (!this.stateless) this.#offPins = deps.pins.onChange((agent) => agent === this.agent.name && this.#onPinsChanged());
  }

  #offPins: (() => void) | undefined;

  #onPinsChanged(): void {
    if (this.#closed) return;
    this.#catalogue = undefined;
    this.#visibleTools = undefined;
    try {
      void this.server.sendToolListChanged().catch(() => undefined);
    } catch {
      // Not connected yet: nothing to tell.
    }
  }

  /**
   * POSTs that have arrived but whose message the transport has not yet delivered
   * (oldest first). From delivery on, `#pending` tracks a request until its answer.
   */
  readonly #arriving: { settled: boolean }[] = [];

  /**
   * True while a request is between arrival and answer: arrived at the HTTP layer
   * but not yet handed over by the transport, or delivered and awaiting its
   * response (a running or held call). Such a session is not idle.
   */
  get busy(): boolean {
    return this.#pending.size > 0 || this.#arriving.length > 0;
  }

  /**
   * The HTTP layer calls this when a POST for this session arrives; it must call the
   * returned function once the transport has answered. The arrival counts as busy until
   * its message is delivered or the transport answers without delivering it (a rejection).
   */
  beginHttpRequest(): () => void {
    const token = { settled: false };
    this.#arriving.push(token);
    this.lastActivity = Date.now();
    return () => {
      this.#settleArrival(token);
      this.lastActivity = Date.now();
    };
  }

  #settleArrival(token?: { settled: boolean }): void {
    const t = token ?? this.#arriving.find((x) => !x.settled);
    if (!t || t.settled) return;
    t.settled = true;
    const i = this.#arriving.indexOf(t);
    if (i >= 0) this.#arriving.splice(i, 1);
  }

  get sessionId(): string | undefined {
    return this.#transport?.sessionId;
  }

  /** Requests whose client went away before their answer (see {@link clientGone}). */
  readonly #gone = new Set<RequestId>();

  /**
   * The transport layer calls this when the client of request `id` hung up before
   * its answer was delivered (an SSE stream closed, an HTTP client gone). The
   * request's record then says `client_closed`, with the outcome its answer would
   * have had in `detail.answer`: a disconnect is not an upstream or Bastion error.
   * A request already answered is left alone.
   */
  clientGone(id: RequestId): void {
    if (this.#pending.has(id)) this.#gone.add(id);
  }

  /** `event` as recorded: `client_closed` when the client of request `id` went away first. */
  #closedBy(id: RequestId, event: AuditEvent): AuditEvent {
    if (!this.#gone.delete(id)) return event;
    return { ...event, outcome: 'client_closed', detail: { ...event.detail, answer: event.outcome } };
  }

  /** Connects the session to its downstream transport, wrapping it so every request is audited once. */
  async connect(transport: Transport): Promise<void> {
    this.#transport = transport;
    await this.server.connect(transport);
    const onmessage = transport.onmessage;
    transport.onmessage = (message, extra) => {
      this.lastActivity = Date.now();
      this.delivered++;
      this.#settleArrival();
      if (isJSONRPCNotification(message)) {
        // Notifications get no response; their record is written as they arrive.
        void this.#audit
          .durable({
            time: new Date().toISOString(),
            door: 'tool',
            agent: this.agent.name,
            session: this.sessionId ?? null,
            method: message.method,
            target: null,
            decision: allow('mcp.notification', 'protocol'),
            outcome: 'ok',
            durationMs: 0,
          });
      } else if (isJSONRPCRequest(message)) {
        this.#pending.set(message.id, {
          started: performance.now(),
          time: new Date().toISOString(),
          method: message.method,
          target: null,
          decision: REQUEST_ALLOWED,
          argsDigest: null,
          args: undefined,
          outcome: null,
          detail: {},
        });
      }
      onmessage?.(message, extra);
    };
    const send = transport.send.bind(transport);
    transport.send = async (message: JSONRPCMessage, options) => {
      if ((isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && message.id !== undefined && this.#pending.has(message.id)) {
        const ctx = this.#pending.get(message.id) as RequestAudit;
        this.#pending.delete(message.id);
        // Through the audit step: a failed write is counted and alerted (and has closed the write gate).
        if (!(await this.#audit.durable(this.#closedBy(message.id, this.#event(ctx, message))))) {
          message = { jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InternalError, message: 'audit unavailable (ERR_AUDIT_WRITE)' } };
        }
      }
      return send(message, options);
    };
    const onclose = transport.onclose;
    transport.onclose = () => {
      onclose?.();
      void this.close();
    };
  }

  /** Closes upstream connections and records any request left without a response. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#offPins?.();
    for (const [id, ctx] of this.#pending) {
      ctx.outcome = 'error';
      ctx.detail.code = 'ERR_SESSION_UNKNOWN';
      ctx.detail.note = 'session closed before the response';
      await this.#audit.durable(this.#closedBy(id, this.#event(ctx, undefined)));
    }
    this.#gone.clear();
    this.#pending.clear();
    const conns = [...this.#upstreams.values()];
    this.#upstreams.clear();
    await Promise.all(conns.map((p) => p.then((c) => c.close()).catch(() => undefined)));
    await this.server.close().catch(() => undefined);
    // A legacy session's workspace ends with it (a stateless one's, keyed by conversation, when idle).
    if (!this.stateless && this.sessionId !== undefined) await this.#deps.sandbox?.endSession(this.agent.name, this.sessionId);
  }

  #event(ctx: RequestAudit, response: JSONRPCMessage | undefined): AuditEvent {
    let outcome = ctx.outcome;
    if (outcome === null) {
      if (response && isJSONRPCErrorResponse(response)) {
        outcome = ctx.decision.effect === 'deny' ? 'denied' : 'error';
        if (ctx.detail.code === undefined) ctx.detail.jsonrpcError = response.error.code;
      } else if (response && isJSONRPCResultResponse(response) && (response.result as { isError?: unknown }).isError === true) {
        outcome = ctx.decision.effect === 'deny' ? 'denied' : 'error';
      } else outcome = 'ok';
    }
    const event: AuditEvent = {
      time: ctx.time,
      door: 'tool',
      agent: this.agent.name,
      ...(this.user !== null ? { user: this.user } : {}),
      session: this.sessionId ?? null,
      method: ctx.method,
      target: ctx.target,
      decision: ctx.decision,
      argsDigest: ctx.argsDigest,
      outcome,
      durationMs: Math.round((performance.now() - ctx.started) * 1000) / 1000,
      // A stateless request has no session id: its conversation is what ties it to the others.
      detail: this.stateless && this.conversation !== null ? { ...ctx.detail, conversation: this.conversation } : ctx.detail,
      ...(ctx.args !== undefined ? { args: ctx.args } : {}),
    };
    return event;
  }

  #ctx(extra: Extra): RequestAudit {
    const ctx = this.#pending.get(extra.requestId);
    if (ctx) return ctx;
    // Not from the wrapped transport (cannot happen in practice); audit as its own record.
    return { started: performance.now(), time: new Date().toISOString(), method: 'unknown', target: null, decision: REQUEST_ALLOWED, argsDigest: null, args: undefined, outcome: null, detail: {} };
  }

  // ---------------------------------------------------------------- upstreams

  #upstream(name: string): Promise<UpstreamConnection> {
    const existing = this.#upstreams.get(name);
    if (existing) return existing;
    // A request still running when its session closed (ended, reaped, evicted) must not start an upstream
    // (a process, for stdio) that nothing would ever close.
    if (this.#closed) return Promise.reject(new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${name}: the session is closed`));
    const config = this.#deps.config.upstreams.get(name);
    if (!config) return Promise.reject(new BastionError('ERR_UPSTREAM_UNAVAILABLE', `no upstream ${name}`));
    const caps = this.server.getClientCapabilities() ?? {};
    let sign: UpstreamRequestSigner | undefined;
    if (config.signContext || config.token !== undefined) {
      // Fail closed: an upstream that expects signed requests is not reached unsigned.
      if (this.#deps.signer === undefined) return Promise.reject(new BastionError('ERR_SIGNING', `upstream ${name}: no signer`));
      sign = upstreamRequestSigner(this.#deps.signer, config, { agent: this.agent.name, user: this.user, conversation: this.conversation ?? this.sessionId ?? null });
    }
    if (config.oauth !== undefined) {
      // Per-user OAuth: every request carries this session's end user's token, asked for per request (refreshed
      // before expiry); no user, no token or no OAuth client stops the request (fail closed).
      const userOAuth = this.#deps.userOAuth;
      const user = this.user;
      const provider = config.oauth;
      if (userOAuth === undefined) return Promise.reject(new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${name}: per-user OAuth needs the vault`));
      if (user === null) return Promise.reject(new BastionError('ERR_USER_REQUIRED', `upstream ${name}: per-user OAuth needs an end user`));
      const inner = sign;
      const agent = this.agent.name;
      sign = async (req, message) => {
        const t = await userOAuth.accessToken({ user, provider });
        if (!t.ok) throw new BastionError(t.reason === 'oauth.consent_required' ? 'ERR_OAUTH_CONSENT' : 'ERR_UPSTREAM_UNAVAILABLE', `upstream ${name}: ${t.reason}`, { detail: { reason: t.reason } });
        // The one release rule decides (src/vault/release.ts): this user's token, the upstream's hosts, https, Authorization only.
        const url = new URL(req.url);
        const released = release({
          secret: userTokenSecret(provider, user, config.secretHosts, t.token),
          agent,
          granted: config.oauth === provider,
          user,
          destination: { scheme: url.protocol.slice(0, -1), host: url.hostname, port: Number(url.port || (url.protocol === 'https:' ? 443 : 80)), location: 'header:authorization', whole: true },
        });
        if (released.effect !== 'allow') throw new BastionError('ERR_PLACEHOLDER_DENIED', `upstream ${name}: the user's token is not released (${released.reason})`, { detail: { reason: released.reason } });
        const signed = inner === undefined ? {} : await inner(req, message);
        return { ...signed, authorization: released.value.reveal() };
      };
    }
    const p = this.#placeholderEnv(config).then((extraEnv) => UpstreamConnection.connect(config, { sampling: caps.sampling !== undefined, elicitation: caps.elicitation !== undefined }, {
      onListChanged: (kind) => this.#onListChanged(name, kind),
      onResourceUpdated: (uri) => {
        void this.server.sendResourceUpdated({ uri }).catch(() => undefined);
      },
      onLog: (params) => {
        void this.server.notification({ method: 'notifications/message', params }, this.#related(name)).catch(() => undefined);
      },
      onSampling: (req, signal) =>
        this.#forwardToClient(name, 'sampling/createMessage', () => this.server.createMessage(req.params, { signal, ...this.#related(name) })),
      onElicitation: (req, signal) =>
        this.#forwardToClient(name, 'elicitation/create', () => this.server.elicitInput(req.params as never, { signal, ...this.#related(name) })),
      onClose: () => {
        if (this.#upstreams.get(name) === p) this.#upstreams.delete(name);
      },
    }, extraEnv, sign, { revision: config.revision }));
    this.#upstreams.set(name, p);
    p.catch(() => {
      if (this.#upstreams.get(name) === p) this.#upstreams.delete(name);
    });
    return p;
  }

  /**
   * The `vault:NAME` variables of a stdio upstream, as this agent's placeholders.
   * An ungranted secret, or no vault, fails the upstream closed (it is not started).
   */
  async #placeholderEnv(config: ResolvedUpstream): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    for (const [variable, secret] of Object.entries(config.placeholderEnv ?? {})) {
      if (!this.agent.secrets.includes(secret)) {
        throw new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${config.name}: agent ${this.agent.name} is not granted secret ${secret} (env ${variable})`);
      }
      if (!this.#deps.placeholder) throw new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${config.name}: no vault is open for env ${variable}`);
      out[variable] = await this.#deps.placeholder(this.agent.name, secret).catch((err: unknown) => {
        throw new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${config.name}: no placeholder for secret ${secret} (env ${variable})`, { cause: err });
      });
    }
    return out;
  }

  /** Routes an upstream's notification to the stream of the one downstream request in flight to it, if exactly one. */
  #related(upstream: string): { relatedRequestId?: RequestId } {
    const ids = this.#inflight.get(upstream);
    if (ids && ids.size === 1) return { relatedRequestId: [...ids][0] as RequestId };
    return {};
  }

  /** A server-to-client request from an upstream (sampling, elicitation): forwarded and audited as its own record. */
  async #forwardToClient<T>(upstream: string, method: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const time = new Date().toISOString();
    let outcome: AuditEvent['outcome'] = 'ok';
    try {
      return await fn();
    } catch (err) {
      outcome = 'error';
      throw err;
    } finally {
      await this.#audit.durable({
        time,
        door: 'tool',
        agent: this.agent.name,
        session: this.sessionId ?? null,
        method,
        target: upstream,
        decision: allow('mcp.server_request', `upstreams.${upstream}`),
        outcome,
        durationMs: Math.round((performance.now() - started) * 1000) / 1000,
        detail: { direction: 'upstream-to-client' },
      });
    }
  }

  #onListChanged(upstream: string, kind: 'tools' | 'resources' | 'prompts'): void {
    this.#listings.delete(upstream);
    this.#catalogue = undefined;
    this.#visibleTools = undefined;
    // Pinning: rebuild now, so a changed definition is detected (audited, alerted) even if the agent never lists again.
    if (kind === 'tools' && this.#deps.pins.active && !this.#closed) void this.#getCatalogue().catch(() => undefined);
    const send =
      kind === 'tools' ? this.server.sendToolListChanged() : kind === 'resources' ? this.server.sendResourceListChanged() : this.server.sendPromptListChanged();
    void send.catch(() => undefined);
  }

  /** The session's catalogue, built from every upstream (those that fail are left out until next time). */
  #getCatalogue(ctx?: RequestAudit): Promise<Catalogue> {
    if (this.#catalogue) return this.#catalogue;
    const p = (async () => {
      const failures: Record<string, string> = {};
      const consent: UpstreamListing[] = [];
      await Promise.all(
        [...this.#deps.config.upstreams.values()].map(async (u) => {
          if (this.#listings.has(u.name)) return;
          if (u.oauth !== undefined && !(await this.#connected(u.oauth))) {
            // Not connected yet: the upstream cannot be listed without the user's token; its one tool
            // gives the user the link to connect (and the catalogue is rebuilt on the next request).
            failures[u.name] = 'ERR_OAUTH_CONSENT';
            consent.push({ upstream: u.name, prefix: u.prefix, tools: [connectTool(u.oauth)], resources: [], templates: [], prompts: [], servesResources: false });
            return;
          }
          try {
            const conn = await this.#upstream(u.name);
            const [tools, resources, templates, prompts] = await Promise.all([
              conn.listTools(),
              conn.listResources(),
              conn.listResourceTemplates(),
              conn.listPrompts(),
            ]);
            // A per-user OAuth upstream always lists the connect tool (to connect again, or check); its name is reserved there.
            const listed = u.oauth === undefined ? tools : [...tools.filter((t) => t.name !== CONNECT_TOOL), connectTool(u.oauth)];
            this.#listings.set(u.name, { upstream: u.name, prefix: u.prefix, tools: listed, resources, templates, prompts, servesResources: conn.capabilities?.resources !== undefined });
          } catch (err) {
            failures[u.name] = toBastionError(err, 'ERR_UPSTREAM_UNAVAILABLE').code;
          }
        }),
      );
      const order = [...this.#deps.config.upstreams.keys()];
      const listings = order.flatMap((n) => (this.#listings.has(n) ? [this.#listings.get(n) as UpstreamListing] : consent.filter((c) => c.upstream === n)));
      // Abilities join as one listing without a prefix: no connection, and a name an upstream also offers is a collision.
      const abilities = this.#deps.config.abilities;
      if (abilities.size > 0) {
        listings.push({ upstream: ABILITIES_UPSTREAM, prefix: false, tools: abilityTools(abilities), resources: [], templates: [], prompts: [], servesResources: false });
      }
      if (this.#deps.sandbox !== undefined && this.#deps.config.sandbox.enabled && !this.#deps.config.upstreams.has(SANDBOX_UPSTREAM)) {
        listings.push({ upstream: SANDBOX_UPSTREAM, prefix: true, tools: SANDBOX_TOOLS, resources: [], templates: [], prompts: [], servesResources: false });
      }
      // Pinned definitions: tools whose definition changed (or is unapproved, flagged, renamed) are withheld; Bastion's own tools are not pinned.
      const upstreams = this.#deps.config.upstreams;
      const pinned = await this.#deps.pins.admit(buildCatalogue(listings), { agent: this.agent.name, user: this.user, session: this.sessionId ?? null }, (e) =>
        e.upstream === ABILITIES_UPSTREAM || (e.upstream === SANDBOX_UPSTREAM && !upstreams.has(SANDBOX_UPSTREAM)) || (e.original === CONNECT_TOOL && upstreams.get(e.upstream)?.oauth !== undefined));
      if (ctx && pinned.withheld.length > 0) ctx.detail.pinWithheld = pinned.withheld;
      if (Object.keys(failures).length > 0 || pinned.withheld.length > 0) {
        if (ctx && Object.keys(failures).length > 0) ctx.detail.upstreamFailures = failures;
        // Do not cache a partial catalogue: the next request retries the failed upstreams (and sees an approval of a withheld tool).
        this.#catalogue = undefined;
      }
      return pinned.catalogue;
    })();
    this.#catalogue = p;
    p.catch(() => {
      if (this.#catalogue === p) this.#catalogue = undefined;
    });
    return p;
  }

  // ---------------------------------------------------------------- handlers

  /**
   * The SDK sends no response to a request the client cancelled, so the
   * transport-level audit would never see it: record it here instead.
   */
  #auditIfCancelled(extra: Extra): void {
    if (!extra.signal.aborted) return;
    const ctx = this.#pending.get(extra.requestId);
    if (!ctx) return;
    this.#pending.delete(extra.requestId);
    ctx.detail.cancelled = true;
    if (ctx.outcome === null) ctx.outcome = 'error';
    void this.#audit.durable(this.#closedBy(extra.requestId, this.#event(ctx, undefined)));
  }

  #registerHandlers(): void {
    const server = this.server;
    // Every handler is wrapped so a cancelled request still ends in one audit record.
    const s = {
      setRequestHandler: ((schema: Parameters<Server['setRequestHandler']>[0], fn: (req: never, extra: Extra) => Promise<unknown>) => {
        server.setRequestHandler(schema, (async (req: never, extra: Extra) => {
          try {
            return await fn(req, extra);
          } finally {
            this.#auditIfCancelled(extra);
          }
        }) as never);
      }) as Server['setRequestHandler'],
    };
    s.setRequestHandler(ListToolsRequestSchema, async (_req, extra) => ({ tools: await this.#listTools(this.#ctx(extra)) }));
    s.setRequestHandler(CallToolRequestSchema, (req, extra) => this.#callTool(req.params, extra));
    s.setRequestHandler(ListPromptsRequestSchema, async (_req, extra) => {
      const ctx = this.#ctx(extra);
      const cat = await this.#getCatalogue(ctx);
      return { prompts: [...cat.prompts.values()].filter((e) => this.#may('prompts/get', 'prompt', e, true)).map((e) => e.item) };
    });
    s.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      const ctx = this.#ctx(extra);
      ctx.target = req.params.name;
      ctx.argsDigest = digestArguments(req.params.arguments);
      const cat = await this.#getCatalogue(ctx);
      const entry = cat.prompts.get(req.params.name);
      if (!entry) return this.#refuseRequest(ctx, deny('prompt.unknown', 'catalogue'), 'prompt');
      const d = this.#authorize('prompts/get', 'prompt', entry.exposed, entry.upstream, req.params.arguments, ctx.argsDigest, false);
      ctx.decision = d;
      if (d.effect !== 'allow') return this.#refuseRequest(ctx, d, 'prompt');
      const pv = await this.#deps.paths.checkPromptArguments(this.#deps.config.upstreams.get(entry.upstream), { ...entry.item, name: entry.original }, req.params.arguments);
      if (pv.decision.effect !== 'allow') {
        Object.assign(ctx.detail, pathAuditDetail(pv));
        return this.#refuseRequest(ctx, pv.decision, 'prompt');
      }
      this.#checkAuditGate(ctx, 'prompt');
      const conn = await this.#upstream(entry.upstream);
      if (this.stateless) {
        const binding = { agent: this.agent.name, user: this.user, tool: `prompt:${entry.exposed}`, argsDigest: ctx.argsDigest };
        return this.#passThrough('prompts/get', conn, { name: entry.original, ...(req.params.arguments === undefined ? {} : { arguments: req.params.arguments }) }, req.params._meta, binding, ctx, extra);
      }
      const result = await conn.request('prompts/get', (o) => conn.client.getPrompt({ ...req.params, name: entry.original }, o), extra.signal);
      return this.#observedProtocol(this.#sanitizeOrThrow(result, ctx), ctx, `prompt:${entry.exposed}`);
    });
    s.setRequestHandler(ListResourcesRequestSchema, async (_req, extra) => {
      const cat = await this.#getCatalogue(this.#ctx(extra));
      return { resources: [...cat.resources.values()].filter((e) => this.#may('resources/read', 'resource', e, true)).map((e) => e.item) };
    });
    s.setRequestHandler(ListResourceTemplatesRequestSchema, async (_req, extra) => {
      const cat = await this.#getCatalogue(this.#ctx(extra));
      return { resourceTemplates: cat.templates.filter((e) => this.#may('resources/read', 'resource', e, true)).map((e) => e.item) };
    });
    s.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
      const { ctx, conn } = await this.#routeResource(req.params.uri, extra);
      if (this.stateless) {
        const binding = { agent: this.agent.name, user: this.user, tool: `resource:${req.params.uri}`, argsDigest: digestArguments({ uri: req.params.uri }) };
        return this.#passThrough('resources/read', conn, { uri: req.params.uri }, req.params._meta, binding, ctx, extra);
      }
      const result = await conn.request('resources/read', (o) => conn.client.readResource(req.params, o), extra.signal);
      return this.#observedProtocol(this.#sanitizeOrThrow(result, ctx), ctx, `resource:${conn.config.name}`);
    });
    s.setRequestHandler(SubscribeRequestSchema, async (req, extra) => {
      const { conn } = await this.#routeResource(req.params.uri, extra);
      return conn.request('resources/subscribe', (o) => conn.client.subscribeResource(req.params, o), extra.signal);
    });
    s.setRequestHandler(UnsubscribeRequestSchema, async (req, extra) => {
      const { conn } = await this.#routeResource(req.params.uri, extra);
      return conn.request('resources/unsubscribe', (o) => conn.client.unsubscribeResource(req.params, o), extra.signal);
    });
    s.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
      const ctx = this.#ctx(extra);
      const cat = await this.#getCatalogue(ctx);
      const ref = req.params.ref;
      if (ref.type === 'ref/prompt') {
        ctx.target = ref.name;
        const entry = cat.prompts.get(ref.name);
        if (!entry || !this.#may('prompts/get', 'prompt', entry, true)) return this.#refuseRequest(ctx, deny('prompt.unknown_or_forbidden', 'catalogue'), 'prompt');
        this.#checkAuditGate(ctx, 'prompt');
        const conn = await this.#upstream(entry.upstream);
        return conn.request('completion/complete', (o) => conn.client.complete({ ...req.params, ref: { ...ref, name: entry.original } }, o), extra.signal);
      }
      const uri = ref.uri;
      ctx.target = uri;
      const owner = cat.templates.find((t) => t.exposed === uri)?.upstream ?? resourceOwner(cat, uri);
      if (!owner) return this.#refuseRequest(ctx, deny('resource.unknown', 'catalogue'), 'resource');
      const d = this.#authorize('resources/read', 'resource', uri, owner, undefined, undefined, true);
      ctx.decision = d;
      if (d.effect !== 'allow') return this.#refuseRequest(ctx, d, 'resource');
      // Completing a file: template lists names under the path typed so far: the path guard decides it.
      const pd = await this.#deps.paths.checkCompletion(this.#deps.config.upstreams.get(owner), uri, req.params.argument, req.params.context?.arguments);
      if (pd.effect !== 'allow') return this.#refuseRequest(ctx, pd, 'resource');
      this.#checkAuditGate(ctx, 'resource');
      const conn = await this.#upstream(owner);
      const result = await conn.request('completion/complete', (o) => conn.client.complete(req.params, o), extra.signal);
      const values = await this.#deps.paths.allowedCompletions(this.#deps.config.upstreams.get(owner), uri, req.params.argument.name, result.completion.values, req.params.context?.arguments);
      return values.length === result.completion.values.length ? result : { ...result, completion: { ...result.completion, values } };
    });
    s.setRequestHandler(SetLevelRequestSchema, async (req, extra) => {
      const ctx = this.#ctx(extra);
      await this.#getCatalogue(ctx);
      const conns = await Promise.all([...this.#upstreams.values()].map((p) => p.catch(() => undefined)));
      const logging = conns.filter((c): c is UpstreamConnection => c !== undefined && c.capabilities?.logging !== undefined);
      await Promise.all(logging.map((c) => c.request('logging/setLevel', (o) => c.client.setLoggingLevel(req.params.level, o)).catch(() => undefined)));
      return {};
    });
  }

  #authorize(
    action: 'tools/call' | 'resources/read' | 'prompts/get',
    kind: 'tool' | 'resource' | 'prompt',
    id: string,
    upstream: string,
    args: unknown,
    argsDigest: string | undefined,
    listing: boolean,
  ): Decision {
    return this.#deps.policy.authorize({
      agent: this.agent.name,
      action,
      resource: { kind, id, upstream },
      ...(args === undefined ? {} : { args }),
      ...(argsDigest === undefined ? {} : { argsDigest }),
      session: this.sessionId ?? '',
      listing,
    });
  }

  /**
   * Refuses a protocol request (prompts, resources, completion) as a JSON-RPC
   * error `<what> not available (CODE)`, code and JSON-RPC error from the
   * kernel's table (src/door/reasons.ts). An `approve` decision is refused as
   * `policy.approval_unsupported`: only tool calls can be held for approval.
   * @throws McpError always.
   */
  #refuseRequest(ctx: RequestAudit, decision: Decision, what: 'prompt' | 'resource'): never {
    const d = decision.effect === 'approve' ? deny('policy.approval_unsupported', decision.rule) : decision;
    ctx.decision = d;
    const r = refusalOf(d, 'tool');
    throw new McpError(r.rpc, `${what} not available (${r.code})`);
  }

  /**
   * The audit write gate before a protocol request (prompt, resource, completion)
   * reaches an upstream: while the audit log cannot write, refused as
   * `audit.write_failed` (`ERR_AUDIT_WRITE`), the upstream never contacted.
   * @throws McpError while the gate is closed.
   */
  #checkAuditGate(ctx: RequestAudit, what: 'prompt' | 'resource'): void {
    if (!this.#audit.writable) this.#refuseRequest(ctx, deny('audit.write_failed', 'audit'), what);
  }

  /** Listing check: may the agent see this entry at all (allow or approve with no arguments known)? */
  #may(action: 'tools/call' | 'resources/read' | 'prompts/get', kind: 'tool' | 'resource' | 'prompt', e: Entry<unknown>, listing: boolean): boolean {
    if (kind === 'tool' && this.#deps.toolMeta?.hiddenReason(this.agent, e.exposed) !== undefined) return false;
    return this.#authorize(action, kind, e.exposed, e.upstream, {}, undefined, listing).effect !== 'deny';
  }

  async #listTools(ctx: RequestAudit): Promise<Tool[]> {
    const cat = await this.#getCatalogue(ctx);
    if (this.#visibleTools && this.#catalogue) {
      Object.assign(ctx.detail, this.#visibleTools.detail);
      return this.#visibleTools.tools;
    }
    const visible: Tool[] = [];
    const flagged: string[] = [];
    for (const e of cat.tools.values()) {
      if (!this.#may('tools/call', 'tool', e, true)) continue;
      if (!this.#deps.validator.compiles(e.item.inputSchema)) {
        flagged.push(`${e.exposed}:schema_uncompilable`);
        continue;
      }
      if (e.hidden.length > 0) flagged.push(`${e.exposed}:hidden_characters`);
      visible.push(e.item);
    }
    // Flags travel with the cached list, so every tools/list record carries them.
    const detail: Record<string, unknown> = { visible: visible.length };
    if (flagged.length > 0) detail.flags = flagged;
    if (cat.problems.length > 0) detail.catalogueProblems = cat.problems;
    Object.assign(ctx.detail, detail);
    if (this.#catalogue) this.#visibleTools = { tools: visible, detail };
    return visible;
  }

  async #routeResource(uri: string, extra: Extra): Promise<{ ctx: RequestAudit; conn: UpstreamConnection }> {
    const ctx = this.#ctx(extra);
    ctx.target = uri;
    const cat = await this.#getCatalogue(ctx);
    const owner = resourceOwner(cat, uri);
    if (!owner) return this.#refuseRequest(ctx, deny('resource.unknown', 'catalogue'), 'resource');
    const d = this.#authorize('resources/read', 'resource', uri, owner, undefined, undefined, false);
    ctx.decision = d;
    if (d.effect !== 'allow') return this.#refuseRequest(ctx, d, 'resource');
    // A file: URI is a path: the path guard decides it too.
    const pd = await this.#deps.paths.checkResource(this.#deps.config.upstreams.get(owner), uri);
    if (pd.effect !== 'allow') return this.#refuseRequest(ctx, pd, 'resource');
    this.#checkAuditGate(ctx, 'resource');
    return { ctx, conn: await this.#upstream(owner) };
  }

  /** The screen stage ({@link screenResult}) for protocol results (resources, prompts): too large is a JSON-RPC error. */
  #sanitizeOrThrow<T>(result: T, ctx: RequestAudit): T {
    const out = screenResult(result, ctx, this.#deps.config.output);
    if (out === TOO_LARGE) throw new McpError(ErrorCode.InternalError, 'result too large (ERR_RESULT_TOO_LARGE)');
    return out as T;
  }

  /**
   * tools/call: a composition of the stages in src/mcp/call-stages.ts. Each
   * returns the call or a refusal; a refusal is recorded and answered as a tool
   * error with the kernel's code. The record is written when the response goes out.
   */
  async #callTool(params: { name: string; arguments?: Record<string, unknown> | undefined; _meta?: { progressToken?: string | number | undefined; [key: string]: unknown } | undefined }, extra: Extra): Promise<CallToolResult> {
    const call = this.#startCall(params, extra);
    const st = this.#stages;
    const resolved = await resolveTool(call, st.resolve);
    if (isRefused(resolved)) return renderRefusal(call, resolved);
    const decided = decide(resolved, st.decide);
    if (isRefused(decided)) return renderRefusal(call, decided);
    // Stateless clients mirror some arguments in Mcp-Param-* headers: checked once the tool is known and
    // visible (an invisible tool is refused above exactly like an unknown one), before anything else runs.
    let state: { readonly approvalId: string; readonly upstream: string | null } | undefined;
    if (this.stateless) {
      this.#checkParamHeaders(decided.entry.item.inputSchema, call, extra);
      state = await this.#openState(params._meta?.[REQUEST_STATE_META_KEY], { agent: call.agent.name, user: call.user, tool: call.name, argsDigest: call.argsDigest }, call.record);
    }
    const valid = validateArguments(decided, st.validate);
    if (isRefused(valid)) return renderRefusal(call, valid);
    const guarded = isSandboxCall(valid) ? await decideCommands(valid, this.#sandboxDeps()) : await guardPaths(valid, st.paths);
    if (isRefused(guarded)) return renderRefusal(call, guarded);
    const tracker = this.#deps.provenance;
    const budgeted = tracker === undefined || this.agent.limits.length === 0 ? guarded : spendBudget(guarded, { tracker, limits: this.agent.limits, conversation: this.#conversationKey() });
    if (isRefused(budgeted)) return renderRefusal(call, budgeted);
    const noted = noteArguments(budgeted, st.recordArguments);
    let held: Awaited<ReturnType<typeof deferApproval>>;
    if (!this.stateless) held = await holdForApproval(noted, st.hold);
    else if (state?.upstream != null) {
      // A continuation: the call already passed its approval (if it needed one) when it first reached
      // the upstream; policy was decided again above, and the state is bound to this very call.
      held = noted.decision.effect === 'approve' ? { ...noted, decision: { effect: 'approve', reason: 'approval.continued', rule: noted.decision.rule } } : noted;
      call.record.decision = held.decision;
      call.record.detail.continuation = true;
    } else held = await deferApproval(noted, this.#deferDeps(), state?.approvalId);
    if (isInputRequired(held)) {
      call.record.outcome = 'held';
      // The stateless door (src/server/http.ts) takes this and answers the wire's input_required result instead.
      this.#inputRequired.set(extra.requestId, { kind: 'approval', ...held.inputRequired });
      return { content: [] };
    }
    if (isRefused(held)) return renderRefusal(call, held);
    // Right before anything is released or executed (after any approval wait): no action without its record.
    const gated = checkAuditGate(held, this.#audit);
    if (isRefused(gated)) return renderRefusal(call, gated);
    const released = await releasePasted(gated, st.release);
    if (isRefused(released)) return renderRefusal(call, released);
    if (released.isAbility) return this.#observed(released, await runAbility(released, st.ability));
    if (isSandboxCall(released)) return this.#observed(released, await timeStage('sandbox', () => runSandboxTool(released, this.#sandboxDeps())));
    const oauthProvider = released.upstream?.oauth;
    if (oauthProvider !== undefined && released.entry.original === CONNECT_TOOL) return this.#connectAccount(released, oauthProvider, params._meta, extra);
    const approvalId = typeof call.record.detail.approvalId === 'string' ? call.record.detail.approvalId : (state?.approvalId ?? '');
    const modern = this.stateless ? { meta: params._meta, continuation: state?.upstream ?? null, approvalId } : undefined;
    return this.#observed(released, await timeStage('forward', () => this.#forwardCall(released, params._meta?.progressToken, extra, modern)));
  }

  /** The sandbox stages' deps: the workspace is this MCP session's, else the named conversation's (stateless), else the call's own. */
  #sandboxDeps(): SandboxStageDeps {
    return { service: this.#deps.sandbox, output: this.#deps.config.output, session: this.sessionId ?? this.conversation ?? null };
  }

  /**
   * The key of this session's conversation for taint and provenance: the named
   * conversation, else the MCP session; a stateless request that names none
   * shares one per agent and end user (more taint, never less).
   */
  #conversationKey(): string {
    return conversationKey(this.agent.name, this.user, this.conversation ?? this.sessionId ?? '*');
  }

  /** The decide stage's facts: the tool's labels (tightened by its annotations), the conversation's taint, each argument's provenance. */
  #facts(call: ResolvedCall, tracker: ProvenanceTracker, labels: LabelIndex): CallFacts {
    return callFacts(tracker, {
      agent: this.agent,
      label: labels.labelOf(this.agent.name, call.entry.exposed, call.entry.item.annotations),
      inputSchema: call.entry.item.inputSchema,
      args: call.args,
      conversation: this.#conversationKey(),
    });
  }

  /**
   * Whether this agent's calls are traced (labels, taint, provenance): when some policy it is
   * decided by reads them, or it has per-conversation limits. Otherwise results still pass the
   * injection detector (audited), but no value is recorded.
   */
  #traced(): boolean {
    return this.agent.guards.length > 0 || this.agent.limits.length > 0 || this.#deps.policy.usesProvenance(this.agent.name);
  }

  /**
   * The observe stage for a resource or prompt going to the agent: content an upstream wrote, read
   * as untrusted (labels name tools, not resources), detector findings flag the conversation.
   */
  #observedProtocol<T>(result: T, ctx: RequestAudit, origin: string): T {
    const tracker = this.#deps.provenance;
    if (tracker !== undefined) observeContent(ctx, { texts: textsOf(result), source: 'untrusted', origin }, { tracker, conversation: this.#conversationKey(), record: this.#traced() });
    return result;
  }

  /** The observe stage ({@link observeResult}) on a result going to the agent (a held `input_required` is not one). */
  #observed(call: DecidedCall, result: CallToolResult): CallToolResult {
    const tracker = this.#deps.provenance;
    if (tracker !== undefined) observeResult(call, result, { tracker, conversation: this.#conversationKey(), record: this.#traced() });
    return result;
  }

  /** Input the client must give before a stateless call goes on, by request id, until the door takes it ({@link takeInputRequired}). */
  readonly #inputRequired = new Map<RequestId, InputRequiredAnswer>();

  /**
   * What the answer to request `id` (the id the session saw) is instead of its
   * result, when it is `input_required`: a held call's approval, or the
   * upstream's own input requests; removed as it is read.
   */
  takeInputRequired(id: RequestId): InputRequiredAnswer | undefined {
    const v = this.#inputRequired.get(id);
    this.#inputRequired.delete(id);
    return v;
  }

  /**
   * Opens the `requestState` a stateless client sent back (sealed by Bastion,
   * bound to this agent, end user, tool and arguments, single use), or
   * undefined when it sent none.
   * @throws McpError -32602 with the refusal's code: a forged, replayed, expired or
   *   re-bound state is an invalid request, recorded with its reason.
   */
  async #openState(raw: unknown, binding: ApprovalStateBinding, record: RequestAudit): Promise<{ approvalId: string; upstream: string | null } | undefined> {
    if (raw === undefined) return undefined;
    const states = this.#deferDeps().states;
    const opened = await states.open(raw, binding);
    if (opened.ok) return opened.claims;
    const reason = opened.reason in STATE_TEXT ? opened.reason : 'state.malformed';
    const d = deny(reason, 'requestState');
    record.decision = d;
    record.detail.requestState = reason;
    const r = refusalOf(d, 'tool');
    throw new McpError(r.rpc, `${STATE_TEXT[reason] ?? 'requestState refused'} (${r.code})`);
  }

  /**
   * The upstream asked the stateless client for input (MCP 2026-07-28 multi
   * round-trip): its input requests are screened like any result and passed on;
   * its own `requestState` is sealed inside Bastion's, bound to this agent, end
   * user, tool and arguments and single use, so it goes back to the upstream
   * only with this very call.
   */
  async #upstreamInputRequired(call: ReleasedCall, result: Record<string, unknown>, approvalId: string, known: RedactionSet, extra: Extra): Promise<CallToolResult> {
    const { requestState, ...rest } = result;
    const screened = screenResult({ inputRequests: rest.inputRequests }, call.record, this.#deps.config.output, known);
    if (screened === TOO_LARGE) return toolError('ERR_RESULT_TOO_LARGE', 'Bastion withheld the result: it is larger than allowed', call.ref);
    const upstream = typeof requestState === 'string' ? requestState : '';
    if (upstream.length > MAX_UPSTREAM_STATE_CHARS) {
      call.record.detail.code = 'ERR_UPSTREAM_PROTOCOL';
      call.record.outcome = 'error';
      return toolError('ERR_UPSTREAM_PROTOCOL', 'The tool answered with a state too large to carry', call.ref);
    }
    let sealed: string;
    try {
      sealed = await this.#deferDeps().states.seal({ agent: call.agent.name, user: call.user, tool: call.name, argsDigest: call.argsDigest }, approvalId, upstream);
    } catch {
      return renderRefusal(call, { refused: refusalOf(deny('state.store_error', 'requestState'), 'tool'), text: STATE_TEXT['state.store_error'] as string });
    }
    call.record.outcome = 'held';
    call.record.detail.inputRequired = 'upstream';
    const inputRequests = (screened as { inputRequests?: unknown }).inputRequests;
    this.#inputRequired.set(extra.requestId, { kind: 'upstream', inputRequests: inputRequests !== null && typeof inputRequests === 'object' ? (inputRequests as Record<string, unknown>) : {}, requestState: sealed });
    return { content: [] };
  }

  /**
   * prompts/get and resources/read for a stateless client, which may be asked
   * for input by the upstream (MCP 2026-07-28 multi round-trip; approvals do
   * not apply to them): the client's capabilities and input responses go
   * upstream, an `input_required` comes back with the upstream's state sealed in
   * Bastion's (bound to agent, end user, prompt or resource and arguments).
   * @throws McpError for a refused state (-32602) and the upstream's protocol errors.
   */
  async #passThrough(
    method: 'prompts/get' | 'resources/read',
    conn: UpstreamConnection,
    params: Record<string, unknown>,
    meta: Record<string, unknown> | undefined,
    binding: ApprovalStateBinding,
    ctx: RequestAudit,
    extra: Extra,
  ): Promise<Record<string, unknown>> {
    const state = await this.#openState(meta?.[REQUEST_STATE_META_KEY], binding, ctx);
    const wire = { ...params, ...passThroughParams({ meta, continuation: state?.upstream ?? null }) };
    const schema = z.union([INPUT_REQUIRED_RESULT, method === 'prompts/get' ? GetPromptResultSchema : ReadResourceResultSchema]);
    const result = (await conn.request(method, (o) => conn.client.request({ method, params: wire } as never, schema, o), extra.signal)) as Record<string, unknown>;
    if (result.resultType !== 'input_required') return this.#observedProtocol(this.#sanitizeOrThrow(result, ctx), ctx, binding.tool.startsWith('prompt:') ? binding.tool : `resource:${conn.config.name}`);
    const { requestState, inputRequests } = result;
    const screened = this.#sanitizeOrThrow({ inputRequests }, ctx);
    const upstream = typeof requestState === 'string' ? requestState : '';
    if (upstream.length > MAX_UPSTREAM_STATE_CHARS) throw new McpError(ErrorCode.InternalError, 'upstream state too large (ERR_UPSTREAM_PROTOCOL)');
    const sealed = await this.#deferDeps().states.seal(binding, '', upstream);
    ctx.outcome = 'held';
    ctx.detail.inputRequired = 'upstream';
    const asked = (screened as { inputRequests?: unknown }).inputRequests;
    this.#inputRequired.set(extra.requestId, { kind: 'upstream', inputRequests: asked !== null && typeof asked === 'object' ? (asked as Record<string, unknown>) : {}, requestState: sealed });
    return {};
  }

  /** True when this session's end user has a usable token at `provider` (refreshing it if due). */
  async #connected(provider: string): Promise<boolean> {
    if (this.user === null || this.#deps.userOAuth === undefined) return false;
    const t = await this.#deps.userOAuth.accessToken({ user: this.user, provider });
    return t.ok;
  }

  /**
   * The reserved tool `connect_account` of a per-user OAuth upstream: a link for
   * the end user to connect their account at the provider (authorization code
   * with PKCE; completed at Bastion's `/oauth/callback`). A 2026-07-28 client that
   * declared URL elicitation gets it as an `input_required` URL elicitation; a
   * 2025 client that declared it is asked with `elicitation/create`; any other
   * client gets the link in the result, for the agent to show the user. Once the
   * account is connected, the call answers so and the upstream's tools appear.
   */
  async #connectAccount(call: ReleasedCall, provider: string, meta: Record<string, unknown> | undefined, extra: Extra): Promise<CallToolResult> {
    const record = call.record;
    const userOAuth = this.#deps.userOAuth;
    if (this.user === null) return renderRefusal(call, { refused: refusalOf(deny('user.missing', 'oauth'), 'tool'), text: 'Connecting an account needs an end user (Bastion-User or a user token)' });
    if (userOAuth === undefined) return renderRefusal(call, { refused: refusalOf(deny('vault.unavailable', 'oauth'), 'tool'), text: 'Per-user accounts are not available on this gateway' });
    if (await this.#connected(provider)) {
      record.detail.oauth = 'connected';
      this.#catalogue = undefined;
      this.#visibleTools = undefined;
      void this.server.sendToolListChanged().catch(() => undefined);
      return { content: [{ type: 'text', text: `Your ${provider} account is connected: the ${call.entry.upstream} tools act as you now. List the tools again to see them.` }] };
    }
    const started = await userOAuth.startAuthorization({ provider, user: this.user, agent: this.agent.name });
    if (!started.ok) return renderRefusal(call, { refused: refusalOf(deny(started.reason, `oauth.providers.${provider}`), 'tool'), text: `Bastion could not start the sign-in at ${provider}` });
    record.outcome = 'held';
    record.detail.oauth = 'consent_link';
    const url = started.url.href;
    const message = `Open this link to connect your ${provider} account; then call ${call.entry.exposed} again.`;
    const caps = this.stateless ? (meta?.[CLIENT_CAPS_META_KEY] as { elicitation?: Record<string, unknown> } | undefined) : this.server.getClientCapabilities();
    const urlMode = caps?.elicitation !== undefined && caps.elicitation !== null && typeof caps.elicitation === 'object' && Object.hasOwn(caps.elicitation, 'url');
    if (this.stateless && urlMode) {
      const sealed = await this.#deferDeps().states.seal({ agent: call.agent.name, user: call.user, tool: call.name, argsDigest: call.argsDigest }, '', '').catch(() => undefined);
      if (sealed !== undefined) {
        this.#inputRequired.set(extra.requestId, { kind: 'upstream', inputRequests: { 'bastion/connect': { method: 'elicitation/create', params: { mode: 'url', message, url } } }, requestState: sealed });
        return { content: [] };
      }
    }
    if (!this.stateless && urlMode) {
      await this.server.elicitInput({ mode: 'url', message, url, elicitationId: started.state } as never, { signal: extra.signal }).catch(() => undefined);
    }
    return { content: [{ type: 'text', text: `${message}\n${url}` }], _meta: { 'bastion/consentUrl': url } };
  }

  /** The approval stage's dependencies for stateless clients; without a sealer, every held call is refused (fail closed). */
  #deferDeps(): DeferDeps {
    const approvals = this.#deps.approvals;
    const states = this.#deps.requestStates ?? {
      seal: () => Promise.reject(new BastionError('ERR_REQUEST_STATE', 'no request-state key')),
      open: () => Promise.resolve({ ok: false as const, reason: 'state.store_error' }),
    };
    return { check: (req, id) => approvals.check(req, id), states };
  }

  /**
   * SEP-2243: the arguments a tool's schema declares `x-mcp-header` on must be
   * mirrored, equal, in `Mcp-Param-{Name}` headers. A mismatch is refused with
   * the spec's -32020 and recorded as a possible bypass (an intermediary may
   * have routed on the header); a tool whose declarations are invalid is refused.
   * @throws McpError -32020 (HeaderMismatch) or the refusal of `mcp.param_headers_invalid`.
   */
  #checkParamHeaders(inputSchema: unknown, call: ToolCall, extra: Extra): void {
    const declarations = paramHeaderDeclarations(inputSchema);
    if (declarations === 'invalid') {
      const d = deny('mcp.param_headers_invalid', 'x-mcp-header');
      call.record.decision = d;
      const r = refusalOf(d, 'tool');
      throw new McpError(r.rpc, `tool not available (${r.code})`);
    }
    if (declarations.length === 0) return;
    const headers = extra.requestInfo?.headers ?? {};
    const mismatch = paramHeaderMismatch(declarations, call.args, (name) => {
      const v = headers[name];
      return Array.isArray(v) ? v.join(', ') : v;
    });
    if (mismatch === undefined) return;
    call.record.decision = deny('mcp.header_mismatch', mismatch.cell);
    call.record.detail.possibleBypass = true;
    call.record.detail.mismatch = mismatch.data;
    throw new McpError(MODERN_RPC.HEADER_MISMATCH, mismatch.message, mismatch.data);
  }

  /** The call as the stages see it: identity from the session, digest of the canonical arguments, a fresh ref. */
  #startCall(params: { name: string; arguments?: Record<string, unknown> | undefined; _meta?: { progressToken?: string | number | undefined } | undefined }, extra: Extra): ToolCall {
    const record = this.#ctx(extra);
    const ref = randomToken(16).slice(0, 12);
    record.detail.ref = ref;
    record.target = params.name;
    const args = params.arguments ?? {};
    // One canonical form serves the digest and the placeholder scan.
    const canonicalArgs = canonicalJson(args);
    const argsDigest = sha256Hex(canonicalArgs);
    record.argsDigest = argsDigest;
    const progressToken = params._meta?.progressToken;
    return {
      agent: this.agent,
      user: this.user,
      userVerified: this.userVerified,
      session: this.sessionId ?? '',
      conversation: this.conversation ?? this.sessionId ?? null,
      name: params.name,
      args,
      canonicalArgs,
      argsDigest,
      ref,
      record,
      signal: extra.signal,
      ...(progressToken === undefined
        ? {}
        : {
            onApprovalWait: (waited: number, id: string) => {
              void extra
                .sendNotification({ method: 'notifications/progress', params: { progressToken, progress: waited, message: `waiting for approval ${id}` } })
                .catch(() => undefined);
            },
          }),
    };
  }

  /**
   * Execute at the upstream (with timeout, progress and, for signing upstreams,
   * the call's scope), then screen the result of the values swapped in. An
   * upstream's JSON-RPC error passes as its code only; anything else is a fixed
   * tool error (ERR_UPSTREAM_UNAVAILABLE / ERR_UPSTREAM_TIMEOUT / ERR_SIGNING).
   */
  async #forwardCall(
    call: ReleasedCall,
    progressToken: string | number | undefined,
    extra: Extra,
    modern?: { readonly meta: Record<string, unknown> | undefined; readonly continuation: string | null; readonly approvalId: string },
  ): Promise<CallToolResult> {
    const record = call.record;
    const name = call.entry.upstream;
    let ids = this.#inflight.get(name);
    if (!ids) this.#inflight.set(name, (ids = new Set()));
    ids.add(extra.requestId);
    try {
      const conn = await this.#upstream(name);
      // A stateless client answers an upstream's input requests itself: the upstream's input_required comes
      // back to it (src/mcp/revision/upstream.ts passes it through), with the client's own capabilities.
      const params = modern === undefined ? { name: call.entry.original, arguments: call.callArgs } : upstreamParams(call, modern);
      const send = () => conn.request(
        'tools/call',
        (o) =>
          conn.client.callTool(params, CallToolResultSchema, {
            ...o,
            ...(progressToken === undefined
              ? {}
              : {
                  resetTimeoutOnProgress: true,
                  maxTotalTimeout: conn.config.timeoutMs * 10,
                  onprogress: (p) => {
                    void extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } }).catch(() => undefined);
                  },
                }),
          }),
        extra.signal,
      );
      // Upstreams that sign learn which call (audit ref, tool) each request belongs to; others skip the scope.
      const signs = conn.config.signContext || conn.config.token !== undefined;
      const result = signs
        ? await withCallScope({ requestId: call.ref, tool: call.entry.exposed, onSigned: (a: SignatureAudit) => Object.assign(record.detail, a) }, send)
        : await send();
      // The swapped values: every form, in every string, and split across fields (src/redact/).
      const known = call.swapped.length > 0 ? setOfForms(redactionForms(call.swapped)) : NO_VALUES;
      if (modern !== undefined && (result as { resultType?: unknown }).resultType === 'input_required') {
        return await this.#upstreamInputRequired(call, result as Record<string, unknown>, modern.approvalId, known, extra);
      }
      return screenToolResult(call, result, this.#deps.config.output, known);
    } catch (err) {
      if (err instanceof McpError) {
        // The upstream refused with a JSON-RPC error: pass its code, not its text; a missing client
        // capability (-32021) keeps the capabilities it names, which the client needs to act on it.
        record.detail.upstreamError = err.code;
        record.outcome = 'error';
        const required = (err.data as { requiredCapabilities?: unknown } | undefined)?.requiredCapabilities;
        if (err.code === MODERN_RPC.MISSING_CAPABILITY && required !== null && typeof required === 'object' && !Array.isArray(required)) {
          throw new McpError(err.code, 'missing required client capability', { requiredCapabilities: required });
        }
        throw new McpError(err.code, 'upstream error');
      }
      const e = toBastionError(err, 'ERR_UPSTREAM_UNAVAILABLE');
      record.detail.code = e.code;
      record.outcome = e.code === 'ERR_UPSTREAM_TIMEOUT' ? 'timeout' : 'error';
      if (e.code === 'ERR_OAUTH_CONSENT') {
        // The user's token is gone (revoked, refresh refused): list the connect tool again.
        this.#listings.delete(name);
        this.#catalogue = undefined;
        this.#visibleTools = undefined;
        return toolError(e.code, `The user's account must be connected again: call ${call.entry.upstream}__${CONNECT_TOOL}`, call.ref);
      }
      return toolError(e.code, e.code === 'ERR_UPSTREAM_TIMEOUT' ? 'The tool did not answer in time' : 'The tool is unavailable', call.ref);
    } finally {
      ids.delete(extra.requestId);
    }
  }
}
