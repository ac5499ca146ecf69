/**
 * The model door: an OpenAI- and Anthropic-compatible proxy between an agent and
 * its model provider (ARCHITECTURE.md, "The three doors"). The agent changes
 * only its base URL and uses its Bastion key as the API key; the provider key
 * stays in the vault.
 *
 * Each request passes the stages of src/model/stages.ts, cheapest and least
 * trusting first; `#serve` composes them and any stage may end the request
 * with a Refused, which `#refuse` renders in the provider's error shape (status
 * and code from the kernel's table, src/door/reasons.ts) with one audit record:
 *
 *   authenticate → route → readRequest (bounded body, JSON, shape) →
 *   identifyUser → checkBan → admitRate → textsOf → screenPrompt (extraction
 *   by a non-admin: ban + alert) → vaultPasted (`<<SECRET_…>>`) → filterTools
 *   (scope, isolateUsers, Cedar) → addNotes (hardening, placeholders) →
 *   releaseKey → #forward → #stream | #answer (answer filter: credentials and
 *   vaulted values redacted, tool calls to tools the agent may not use removed;
 *   prompt-leak check, answerLeaked) → #supervise (non-streamed) → #record.
 *
 * Fail closed: a detector, store, vault or supervisor error refuses the request
 * (503/502 in the provider's error shape); nothing is forwarded unchecked.
 * Audit records are written after the response (lazy batches), like the network
 * door's: the hot path does not wait for the fsync.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request, type Dispatcher } from 'undici';
import type { AlertNotifier, AdminAlert } from '../alerts/notifier.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedAgent, ResolvedModelDoor, ResolvedModelUpstream } from '../config/types.ts';
import { allow, deny, type Decision } from '../decision.ts';
import { PromptLeakTracker, ruleBasedDetector, type PromptAttackDetector } from '../detect/prompt-attacks.ts';
import { BastionError, isBastionError } from '../errors.ts';
import { ToolMetaIndex } from '../policy/tool-meta.ts';
import type { ResolvedConfig } from '../config/types.ts';
import type { AuditStep } from '../door/audit-step.ts';
import type { KeyIndex } from '../door/authenticate.ts';
import type { UserVerifier } from '../door/user.ts';
import type { PolicyEngine } from '../policy/engine.ts';
import type { BanStore } from './ban-store.ts';
import { dropBody, headerOne, readBody } from '../door/body.ts';
import type { PastedSecrets } from '../vault/pasted.ts';
import { conversationKey, type ProvenanceTracker } from '../provenance/tracker.ts';
import { newReading, readText } from '../provenance/values.ts';
import type { Vault } from '../vault/vault.ts';
import { ModelRateLimiter } from './rate-limit.ts';
import { filterResponse, StreamFilter, type ResponseReport } from './response.ts';
import { redactText } from './redact-text.ts';
import {
  isRefused,
  isTimeout,
  refused,
  releaseSecret,
  upstreamFailed,
  type Alerter,
  type BanDeps,
  type KeyDeps,
  type ModelTurn,
  type Refused,
  type Who,
} from './stages.ts';
import * as modelStages from './stages.ts';
import { timedStages, timeStage } from '../observe/scope.ts';
import { askSupervisor, correctionNote, type SupervisorVerdict } from './supervisor.ts';
import { addSystemText, errorBody, errorEvent, type ModelRequest, type ProviderKind, type TextSlot } from './wire.ts';

/** Largest non-streamed provider answer read, in bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Anthropic API version sent when the agent names none. */
const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

export { ANONYMOUS_USER, EARLIER_VALUES_MAX, PLACEHOLDER_NOTE, PROMPT_LEAK_RULE } from './stages.ts';

// The stages, each timed in the request scope (a span and a `bastion_stage_duration_seconds` sample).
const { authenticate, route, readRequest, identifyUser, checkBan, admitRate, textsOf, screenPrompt, vaultPasted, filterTools, addNotes, releaseKey, answerLeaked } = timedStages(modelStages, [
  'authenticate',
  'route',
  'readRequest',
  'identifyUser',
  'checkBan',
  'admitRate',
  'textsOf',
  'screenPrompt',
  'vaultPasted',
  'filterTools',
  'addNotes',
  'releaseKey',
  'answerLeaked',
]);

/** The model door's dependencies. */
export interface ModelDoorOptions {
  /** The vault: provider and supervisor keys (named secrets). Without it only keyless providers work. */
  readonly vault?: Vault;
  /** Personal secrets of end users. Without it, a request holding a credential is refused (fail closed). */
  readonly pasted?: PastedSecrets;
  readonly alerts?: Pick<AlertNotifier, 'notify'>;
  /** Prompt-attack detectors, run in order (default: the rule-based one). */
  readonly detectors?: readonly PromptAttackDetector[];
  /** Dispatcher for provider and supervisor requests (tests inject one). */
  readonly dispatcher?: Dispatcher;
  readonly now?: () => number;
}

/** The answer filter's inputs: values to redact, tools the agent may call, and the prompt-leak observer. */
interface AnswerFilter {
  values: string[];
  allowTool: (name: string) => boolean;
  observe?: ((channel: string, text: string) => void) | undefined;
}

/**
 * What the model door is built from (the composition root, `Gateway`, passes
 * its parts): the config, agent authentication, the end-user step, the ban
 * store, the tool door's policy (to filter the tools offered) and the audit step.
 */
export interface ModelDoorDeps {
  readonly config: ResolvedConfig;
  readonly agentKeys: KeyIndex;
  readonly users: UserVerifier;
  readonly store: BanStore;
  /** The policy; and the per-conversation provenance tracker, which learns what the end user said (src/provenance/). */
  readonly deps: { readonly policy: Pick<PolicyEngine, 'authorize'>; readonly provenance?: Pick<ProvenanceTracker, 'record'> };
  /** The audit step; its write gate (`writable`, absent: open) is checked before the provider is asked. */
  readonly auditStep: Pick<AuditStep, 'batched' | 'batchedBounded'> & { readonly writable?: boolean };
  /** The gateway's metrics: a failed Redis call of the rate limiter is counted (`bastion_errors_total{component="redis"}`). */
  readonly observer?: { readonly metrics: { countError(component: 'redis', code: string): void } };
}

/** The model door. One per gateway; `handle` serves `/v1/chat/completions`, `/v1/messages` and `/v1/models`. */
export class ModelDoor {
  readonly #gateway: ModelDoorDeps;
  readonly #opts: ModelDoorOptions;
  readonly #limiter: ModelRateLimiter;
  readonly #detectors: readonly PromptAttackDetector[];
  #toolMeta: ToolMetaIndex;
  /** The config `#toolMeta` and `#keepTool` were built for: a reload swaps the gateway's, and they are rebuilt. */
  #toolMetaFor: ResolvedConfig;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  readonly #now: () => number;
  readonly #keepTool = new Map<string, boolean>();
  readonly #alerter: Alerter = (kind, severity, agent, user, summary, detail) => this.#alert(kind, severity, agent, user, summary, detail);

  private constructor(gateway: ModelDoorDeps, opts: ModelDoorOptions, limiter: ModelRateLimiter) {
    this.#gateway = gateway;
    this.#opts = opts;
    this.#limiter = limiter;
    this.#detectors = opts.detectors ?? [ruleBasedDetector];
    this.#toolMeta = new ToolMetaIndex(gateway.config.tools);
    this.#toolMetaFor = gateway.config;
    this.#ownDispatcher = opts.dispatcher === undefined;
    this.#dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 256 });
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Opens the door: the rate limiter (Redis when `redis` is configured, else memory).
   * @throws BastionError `ERR_CONFIG_INVALID` (a bad Redis URL)
   */
  static async open(gateway: ModelDoorDeps, opts: ModelDoorOptions = {}): Promise<ModelDoor> {
    const cfg = gateway.config;
    const metrics = gateway.observer?.metrics;
    const onStoreError = metrics === undefined ? {} : { onStoreError: (code: string) => metrics.countError('redis', code) };
    const limiter = await ModelRateLimiter.create(cfg.modelDoor.rateLimits, cfg.redis ? { redisUrl: cfg.redis.url.reveal(), keyPrefix: `${cfg.redis.keyPrefix}rl:`, ...onStoreError } : {});
    return new ModelDoor(gateway, opts, limiter);
  }

  /** True for the paths this door serves. */
  static serves(pathname: string): boolean {
    return pathname === '/v1/chat/completions' || pathname === '/v1/messages' || pathname === '/v1/models';
  }

  async close(): Promise<void> {
    await this.#limiter.close();
    if (this.#ownDispatcher) await this.#dispatcher.close();
  }

  /** Serves one request; never throws (anything unexpected is a provider-shaped 500, audited). */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const kind: ProviderKind = url.pathname === '/v1/messages' || req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
    const turn: ModelTurn = { started: performance.now(), time: new Date().toISOString(), method: methodOf(url.pathname), kind, agent: null, user: null, model: null, detail: {}, signal: abortOnClose(res) };
    try {
      await this.#serve(req, res, url, turn);
    } catch (err) {
      turn.detail.code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
      await this.#refuse(res, turn, refused('internal', 'model-door', 'internal error', { outcome: 'error' }));
    }
  }

  /** The stages, in order (src/model/stages.ts); the first refusal ends the request. */
  async #serve(req: IncomingMessage, res: ServerResponse, url: URL, turn: ModelTurn): Promise<void> {
    const cfg = this.#gateway.config;
    const md = cfg.modelDoor;
    const agent = authenticate(turn, req.headers, { keys: this.#gateway.agentKeys, agents: cfg.agents });
    if (isRefused(agent)) return this.#refuse(res, turn, agent);
    if (url.pathname === '/v1/models' && agent.model !== undefined) turn.user = headerOne(req, 'bastion-user') ?? null;
    const to = route(turn, agent, url.pathname, req.method);
    if (isRefused(to)) return this.#refuse(res, turn, to);
    if (to.endpoint === 'models') return this.#models(req, res, turn, agent, to.model);
    const limits = { maxBodyBytes: md.maxBodyBytes, bodyTimeoutMs: cfg.server.bodyTimeoutMs };
    const body = await readRequest(turn, () => readBody(req, limits.maxBodyBytes, limits.bodyTimeoutMs), limits);
    if (isRefused(body)) return this.#refuse(res, turn, body);
    const who = await identifyUser(turn, agent, req.headers, body, { users: this.#gateway.users, requireUser: md.requireUser, admins: md.admins });
    if (isRefused(who)) return this.#refuse(res, turn, who);
    const limited = (await checkBan(turn, who, { bans: this.#gateway.store, now: this.#now })) ?? (await admitRate(turn, who, { limiter: this.#limiter }));
    if (limited !== undefined) return this.#refuse(res, turn, limited);
    const slots = textsOf(turn, body);
    if (isRefused(slots)) return this.#refuse(res, turn, slots);
    const attack = await screenPrompt(turn, who, body, slots, { ...this.#banDeps(), detectors: this.#detectors });
    if (attack !== undefined) return this.#refuse(res, turn, attack);
    const values = await vaultPasted(turn, who, slots, { pasted: this.#opts.pasted, vaultNew: md.vaultPastedSecrets });
    if (isRefused(values)) return this.#refuse(res, turn, values);
    const traced = this.#traceUser(req, turn, who, slots);
    if (traced !== undefined) return this.#refuse(res, turn, traced);
    filterTools(turn, body, (name) => this.#mayUse(agent, name));
    addNotes(turn, who, body, slots, md.hardening);
    const key = await releaseKey(turn, agent, to.model, this.#keyDeps());
    if (isRefused(key)) return this.#refuse(res, turn, key);
    const gate = this.#auditGate();
    if (gate !== undefined) return this.#refuse(res, turn, gate);
    return this.#forward(req, res, turn, who, to.model, body, slots, values, key.key);
  }

  /**
   * Provenance: with `Bastion-Conversation` (the same name the agent sends to the
   * tool door), what the end user wrote — user-authored texts only, after pasted
   * secrets became placeholders; never tool results or system text — is recorded
   * for the conversation with origin `user`, so a tool call's argument the user
   * named is known as theirs. Refuses a malformed name (`conversation.invalid`).
   */
  #traceUser(req: IncomingMessage, turn: ModelTurn, who: Who, slots: readonly TextSlot[]): Refused | undefined {
    const named = headerOne(req, 'bastion-conversation');
    if (named === undefined) return undefined;
    if (!/^[\x20-\x7e]{1,256}$/.test(named)) return refused('conversation.invalid', 'Bastion-Conversation', 'Bastion-Conversation must be 1-256 printable ASCII characters');
    turn.detail.conversation = named;
    const tracker = this.#gateway.deps.provenance;
    if (tracker === undefined) return undefined;
    const said = newReading();
    for (const slot of slots) if (slot.author === 'user') readText(slot.get(), said, 20_000);
    tracker.record(conversationKey(who.agent.name, who.named?.id ?? null, named), 'user', said);
    return undefined;
  }

  /**
   * The audit write gate, right before the provider is asked: while the audit
   * log's last commit failed, refused as `audit.write_failed` (503,
   * `ERR_AUDIT_WRITE`). This door's records are batched after the answer, so
   * without the gate it would never learn that they are failing.
   */
  #auditGate(): Refused | undefined {
    if (this.#gateway.auditStep.writable !== false) return undefined;
    return refused('audit.write_failed', 'audit', 'the audit log cannot record this request');
  }

  /** Forwards the (edited) request and hands the answer to the stream or whole-answer path. */
  async #forward(req: IncomingMessage, res: ServerResponse, turn: ModelTurn, who: Who, model: ResolvedModelUpstream, body: ModelRequest, slots: readonly TextSlot[], values: string[], providerKey: string | undefined): Promise<void> {
    if (providerKey !== undefined) values.push(providerKey);
    // The answer is compared with the agent's system and developer texts (not Bastion's notes) for a leak.
    const leak = who.isAdmin ? undefined : promptLeakTracker(slots, this.#gateway.config.modelDoor.promptLeak);
    const filter: AnswerFilter = { values, allowTool: (name) => this.#mayUse(who.agent, name), observe: leak === undefined ? undefined : (channel, text) => leak.push(channel, text) };
    const upstream = await timeStage('forward', () => this.#send(req, turn.signal, turn.kind, model, providerKey, body)).catch((err: unknown) => err as Error);
    // The agent hung up while the provider was asked (the request was aborted with it): not a provider failure.
    if (upstream instanceof Error && turn.signal.aborted) return this.#clientClosed(turn, who.agent);
    if (upstream instanceof Error) return this.#refuse(res, turn, upstreamFailed(turn, upstream, 'upstream.unreachable', { timeout: 'the provider did not answer in time', other: 'the provider is unreachable' }));
    turn.detail.upstreamStatus = upstream.statusCode;
    turn.detail.ttfbMs = round(performance.now() - turn.started);
    if (upstream.statusCode >= 400) return this.#passError(res, turn, upstream, values);
    if (body.stream === true && String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream')) return this.#stream(res, turn, who, upstream, filter, leak);
    return this.#answer(req, res, turn, who, model, providerKey, body, upstream, filter, leak);
  }

  /** A whole answer: read (bounded), filtered, checked for a prompt leak, supervised, charged, sent, audited. */
  async #answer(
    req: IncomingMessage,
    res: ServerResponse,
    turn: ModelTurn,
    who: Who,
    model: ResolvedModelUpstream,
    providerKey: string | undefined,
    body: ModelRequest,
    upstream: Dispatcher.ResponseData,
    filter: AnswerFilter,
    leak: PromptLeakTracker | undefined,
  ): Promise<void> {
    const agent = who.agent;
    let answer: { body: unknown; report: ResponseReport };
    try {
      answer = filterResponse(turn.kind, JSON.parse(await readLimited(upstream.body, MAX_RESPONSE_BYTES)), filter);
    } catch (err) {
      if (turn.signal.aborted) return this.#clientClosed(turn, agent);
      return this.#refuse(res, turn, upstreamFailed(turn, err, 'upstream.invalid', { timeout: 'the provider stopped answering', other: 'the provider\'s answer could not be read' }));
    }
    this.#noteReport(turn, answer.report, agent.name, who.user);
    if (leak !== undefined && answerLeaks(leak, answer.body)) {
      const refusedLeak = await answerLeaked(turn, who, this.#banDeps());
      if (refusedLeak !== undefined) return this.#refuse(res, turn, refusedLeak);
    }
    if (agent.supervisor !== undefined) {
      const supervised = await this.#supervise(req, turn, agent, model, providerKey, body, answer, filter);
      if (supervised instanceof Error) {
        turn.detail.code = isBastionError(supervised) ? supervised.code : 'ERR_MODEL_UPSTREAM';
        return this.#refuse(res, turn, refused('supervisor.error', `agents.${agent.name}.supervisor`, 'the supervisor could not check the answer'));
      }
      answer = supervised;
    }
    this.#charge(agent.name, who.user, answer.report);
    if (res.destroyed) return this.#clientClosed(turn, agent);
    const out = JSON.stringify(answer.body);
    await this.#recordBounded(turn, allow('model.forwarded', `agents.${agent.name}.model`), 'ok', 200);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(out)) });
    res.end(out);
  }

  /** The dependencies of the stages that ban: the ban store, the door's config, alerts, the clock. */
  #banDeps(): BanDeps {
    return { bans: this.#gateway.store, config: this.#gateway.config.modelDoor, alert: this.#alerter, now: this.#now };
  }

  /** The dependencies of releasing a named secret: the vault and the secrets' config. */
  #keyDeps(): KeyDeps {
    return { vault: this.#opts.vault, secrets: this.#gateway.config.secrets };
  }

  /** May `agent` use tool `name`? Scope and isolateUsers first, then the tool door's Cedar decision. Memoized per agent and name. */
  #mayUse(agent: ResolvedAgent, name: string): boolean {
    if (this.#toolMetaFor !== this.#gateway.config) {
      this.#toolMetaFor = this.#gateway.config;
      this.#toolMeta = new ToolMetaIndex(this.#toolMetaFor.tools);
      this.#keepTool.clear();
    }
    const k = `${agent.name}\u0000${name}`;
    let ok = this.#keepTool.get(k);
    if (ok === undefined) {
      const sep = name.indexOf('__');
      const upstream = sep > 0 && this.#gateway.config.upstreams.has(name.slice(0, sep)) ? name.slice(0, sep) : '';
      ok =
        this.#toolMeta.hiddenReason(agent, name) === undefined &&
        this.#gateway.deps.policy.authorize({ agent: agent.name, action: 'tools/call', resource: { kind: 'tool', id: name, upstream }, args: {}, listing: true }).effect !== 'deny';
      if (this.#keepTool.size > 100_000) this.#keepTool.clear();
      this.#keepTool.set(k, ok);
    }
    return ok;
  }

  /** Sends the (edited) request to the provider. Rejects on connection failure or timeout. */
  #send(req: IncomingMessage, signal: AbortSignal, kind: ProviderKind, model: ResolvedModelUpstream, key: string | undefined, body: ModelRequest): Promise<Dispatcher.ResponseData> {
    const base = model.baseUrl.href.replace(/\/+$/, '');
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: body.stream === true ? 'text/event-stream' : 'application/json' };
    if (kind === 'openai') {
      if (key !== undefined) headers.authorization = `Bearer ${key}`;
    } else {
      if (key !== undefined) headers['x-api-key'] = key;
      headers['anthropic-version'] = headerOne(req, 'anthropic-version') ?? DEFAULT_ANTHROPIC_VERSION;
      const beta = headerOne(req, 'anthropic-beta');
      if (beta !== undefined) headers['anthropic-beta'] = beta;
    }
    const url = kind === 'openai' ? `${base}/chat/completions` : `${base}/v1/messages`;
    const text = JSON.stringify(body);
    const send = (): Promise<Dispatcher.ResponseData> =>
      request(url, { method: 'POST', headers, body: text, dispatcher: this.#dispatcher, headersTimeout: model.timeoutMs, bodyTimeout: model.timeoutMs, signal });
    // A kept-alive connection the provider closed as the request went out (its idle timeout racing
    // ours) fails with a reset before any answer: retried once, as the providers' own SDKs do.
    return send().catch((err: unknown) => {
      if (signal.aborted || !isDroppedConnection(err)) throw err;
      return send();
    });
  }

  /** `GET /v1/models`, passed through (credentials in the answer redacted). */
  async #models(req: IncomingMessage, res: ServerResponse, turn: ModelTurn, agent: ResolvedAgent, model: ResolvedModelUpstream): Promise<void> {
    const kind = model.provider;
    const released = await releaseKey(turn, agent, model, this.#keyDeps());
    if (isRefused(released)) return this.#refuse(res, turn, released);
    const gate = this.#auditGate();
    if (gate !== undefined) return this.#refuse(res, turn, gate);
    const key = released.key;
    const base = model.baseUrl.href.replace(/\/+$/, '');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (kind === 'openai' && key !== undefined) headers.authorization = `Bearer ${key}`;
    if (kind === 'anthropic') {
      if (key !== undefined) headers['x-api-key'] = key;
      headers['anthropic-version'] = headerOne(req, 'anthropic-version') ?? DEFAULT_ANTHROPIC_VERSION;
    }
    let upstream: Dispatcher.ResponseData;
    let text: string;
    try {
      upstream = await request(kind === 'openai' ? `${base}/models` : `${base}/v1/models`, {
        method: 'GET',
        headers,
        dispatcher: this.#dispatcher,
        headersTimeout: model.timeoutMs,
        bodyTimeout: model.timeoutMs,
        signal: turn.signal,
      });
      text = await readLimited(upstream.body, MAX_RESPONSE_BYTES);
    } catch (err) {
      return this.#refuse(res, turn, upstreamFailed(turn, err, 'upstream.unreachable', { timeout: 'the provider did not answer in time', other: 'the provider is unreachable' }));
    }
    const out = redactText(text, key !== undefined ? { values: [key] } : {}).text;
    turn.detail.upstreamStatus = upstream.statusCode;
    await this.#recordBounded(turn, upstream.statusCode < 400 ? allow('model.forwarded', `agents.${agent.name}.model`) : deny('upstream.error', 'provider'), upstream.statusCode < 400 ? 'ok' : 'error', upstream.statusCode);
    res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
    res.end(out);
  }

  /** Streams the provider's SSE answer through the response filter, then ends it: whole, cut by a prompt leak, or failed. */
  async #stream(res: ServerResponse, turn: ModelTurn, who: Who, upstream: Dispatcher.ResponseData, filter: AnswerFilter, leak: PromptLeakTracker | undefined): Promise<void> {
    const kind = turn.kind;
    const agent = who.agent;
    const sf = new StreamFilter(kind, filter);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const { cut, failure } = await this.#pump(res, turn, who, upstream, sf, leak);
    if (cut !== undefined) {
      this.#noteReport(turn, sf.report, agent.name, who.user);
      this.#charge(agent.name, who.user, sf.report);
      const r = cut.refusal;
      res.end(errorEvent(kind, r.status, r.code, cut.message));
      return this.#record(turn, r.decision, 'denied', 200, { code: r.code });
    }
    if (sf.firstContentAt !== null) turn.detail.firstTokenMs = round(sf.firstContentAt - turn.started);
    this.#noteReport(turn, sf.report, agent.name, who.user);
    this.#charge(agent.name, who.user, sf.report);
    if (res.destroyed) {
      dropBody(upstream.body);
      return this.#clientClosed(turn, agent);
    }
    if (failure !== undefined) {
      const r = failure.refusal;
      res.end(errorEvent(kind, r.status, r.code, failure.message));
      return this.#record(turn, r.decision, failure.outcome ?? 'error', 200, { code: r.code });
    }
    res.end();
    if (agent.supervisor !== undefined) turn.detail.supervisor = { skipped: 'stream' };
    this.#record(turn, allow('model.forwarded', `agents.${agent.name}.model`), 'ok', 200);
  }

  /**
   * Pushes the provider's events through `sf` to the client, with backpressure.
   * A leak of the system prompt: under `ban` the answer is cut (what completed
   * the leak is not sent; the words before it, under the threshold, were:
   * `cut`); under `flag` it goes on, alerted once. A stream that ends early or
   * cannot be read is a `failure` (upstream.cut, .invalid, .timeout).
   */
  async #pump(res: ServerResponse, turn: ModelTurn, who: Who, upstream: Dispatcher.ResponseData, sf: StreamFilter, leak: PromptLeakTracker | undefined): Promise<{ cut?: Refused; failure?: Refused }> {
    const write = async (text: string): Promise<void> => {
      if (text.length === 0 || res.destroyed) return;
      if (!res.write(text)) await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    };
    let cut: Refused | undefined;
    let leakSeen = false;
    const leakCuts = async (): Promise<boolean> => {
      if (leak === undefined || leakSeen || !leak.leaked) return false;
      leakSeen = true;
      cut = await answerLeaked(turn, who, this.#banDeps());
      return cut !== undefined;
    };
    try {
      for await (const chunk of upstream.body) {
        const out = sf.push(chunk as Buffer);
        if (await leakCuts()) break;
        await write(out);
        if (res.destroyed) break;
      }
      if (cut === undefined && !res.destroyed) {
        const out = sf.end();
        leak?.end();
        if (!(await leakCuts())) await write(out);
      }
      if (cut !== undefined) {
        dropBody(upstream.body);
        return { cut };
      }
      if (!sf.report.complete && !res.destroyed) return { failure: refused('upstream.cut', 'provider', 'the provider\'s stream ended early', { outcome: 'error' }) };
      return {};
    } catch (err) {
      dropBody(upstream.body);
      const reason = isTimeout(err) ? 'upstream.timeout' : isBastionError(err, 'ERR_MODEL_UPSTREAM') ? 'upstream.invalid' : 'upstream.cut';
      return { failure: refused(reason, 'provider', 'the provider\'s stream ended early', { outcome: reason === 'upstream.timeout' ? 'timeout' : 'error' }) };
    }
  }

  /**
   * Asks the supervisor about a whole answer. `flag`: alert on a hallucination
   * verdict and return the answer. `correct`: re-run once with a corrective note
   * and return the corrected answer. Resolves to an Error on failure (fail closed).
   */
  async #supervise(
    req: IncomingMessage,
    turn: ModelTurn,
    agent: ResolvedAgent,
    model: ResolvedModelUpstream,
    providerKey: string | undefined,
    body: ModelRequest,
    answer: { body: unknown; report: ResponseReport },
    filter: AnswerFilter,
  ): Promise<{ body: unknown; report: ResponseReport } | Error> {
    const kind = turn.kind;
    const sup = agent.supervisor as NonNullable<ResolvedAgent['supervisor']>;
    try {
      const key = await releaseSecret(this.#keyDeps(), sup.secret, sup.baseUrl, agent.name, 'authorization');
      const input = supervisorInput(kind, body, answer.report);
      const verdict: SupervisorVerdict = await askSupervisor(sup, key, input, this.#dispatcher);
      const record: Record<string, unknown> = { mode: sup.mode, verdict: verdict.verdict, reason: verdict.reason.slice(0, 500) };
      turn.detail.supervisor = record;
      if (verdict.verdict === 'ok') return answer;
      if (sup.mode === 'flag') {
        this.#alert('model.supervisor_flag', 'warning', agent.name, turn.user, `the supervisor flagged an answer to user ${turn.user ?? '?'} as a hallucination`, { reason: verdict.reason.slice(0, 500) });
        return answer;
      }
      // correct: one re-run with the reviewer's note.
      addSystemText(kind, body, correctionNote(verdict, input.answer));
      const upstream = await this.#send(req, turn.signal, kind, model, providerKey, body);
      const text = await readLimited(upstream.body, MAX_RESPONSE_BYTES);
      if (upstream.statusCode >= 400) throw new BastionError('ERR_MODEL_UPSTREAM', `the corrective re-run answered ${upstream.statusCode}`);
      const corrected = filterResponse(kind, JSON.parse(text), filter);
      record.corrected = true;
      this.#noteReport(turn, corrected.report, agent.name, turn.user);
      this.#charge(agent.name, turn.user as string, answer.report);
      return corrected;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  /** Adds what the response filter saw to the audit detail; alerts on removed tool calls. */
  #noteReport(turn: ModelTurn, report: ResponseReport, agent: string, user: string | null): void {
    if (report.usage) turn.detail.tokens = { input: report.usage.input, output: report.usage.output };
    if (report.redactions > 0) turn.detail.redactions = { count: report.redactions, rules: report.rules };
    if (report.removedTools.length > 0) {
      turn.detail.removedToolCalls = report.removedTools;
      this.#alert('model.tool_call_removed', 'warning', agent, user, `the model called tools the agent may not use: ${report.removedTools.join(', ')}`, { tools: report.removedTools });
    }
    if (report.toolCalls.length > 0) turn.detail.toolCalls = report.toolCalls;
  }

  /** Charges the answer's tokens to the user's and agent's budgets; a lost charge is audited (the budget may run over). */
  #charge(agent: string, user: string, report: ResponseReport): void {
    const n = report.usage ? report.usage.input + report.usage.output : 0;
    if (n <= 0) return;
    this.#limiter.chargeTokens(agent, user, n).catch((err: unknown) => {
      this.#gateway.auditStep.batched({ time: new Date().toISOString(), door: 'model', agent, user, method: 'ratelimit.charge', decision: deny('ratelimit.charge_failed', 'redis'), outcome: 'error', durationMs: 0, detail: { tokens: n, code: isBastionError(err) ? err.code : 'ERR_INTERNAL' } });
    });
  }

  /** The provider answered with an error: pass its status and (redacted) body when it is JSON, else a Bastion error. */
  async #passError(res: ServerResponse, turn: ModelTurn, upstream: Dispatcher.ResponseData, values: readonly string[]): Promise<void> {
    let text = '';
    try {
      text = await readLimited(upstream.body, 1024 * 1024);
    } catch {
      text = '';
    }
    let json = false;
    try {
      JSON.parse(text);
      json = true;
    } catch {
      json = false;
    }
    const status = upstream.statusCode;
    turn.detail.code = 'ERR_MODEL_UPSTREAM';
    if (!json) return this.#refuse(res, turn, refused('upstream.error', 'provider', `the provider answered ${status}`, { outcome: 'error', ...(status < 500 ? { status } : {}) }));
    const out = redactText(text, { values }).text;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const retry = upstream.headers['retry-after'];
    if (typeof retry === 'string') headers['retry-after'] = retry;
    await this.#recordBounded(turn, deny('upstream.error', 'provider'), 'error', status);
    res.writeHead(status, headers);
    res.end(out);
  }

  /**
   * Renders a refusal in the provider's error shape (a JSON error body, or an
   * error event when a stream has begun) and records it: status and code come
   * from the kernel's table (src/door/reasons.ts), the message from the stage.
   */
  async #refuse(res: ServerResponse, turn: ModelTurn, r: Refused): Promise<void> {
    const status = r.status ?? r.refusal.status;
    const code = r.refusal.code;
    if (r.silent === true) return this.#record(turn, r.refusal.decision, r.outcome ?? 'denied', status);
    turn.detail.code ??= code;
    if (res.headersSent) {
      if (!res.writableEnded) res.end(errorEvent(turn.kind, status, code, r.message));
      return this.#record(turn, r.refusal.decision, r.outcome ?? 'denied', status);
    }
    // The answer waits for the record while the audit backlog is past its bound.
    await this.#recordBounded(turn, r.refusal.decision, r.outcome ?? 'denied', status);
    if (res.headersSent) return;
    if (r.closeConnection === true) res.setHeader('connection', 'close');
    const out = JSON.stringify(errorBody(turn.kind, status, code, r.message));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(out)), ...r.headers });
    res.end(out);
  }

  /**
   * The record of a request whose agent hung up before its answer was delivered: the request was
   * forwarded (allowed), and the outcome is `client_closed` with status 499 (the client closed the
   * request), not a provider error.
   */
  #clientClosed(turn: ModelTurn, agent: ResolvedAgent): void {
    this.#record(turn, allow('model.forwarded', `agents.${agent.name}.model`), 'client_closed', 499);
  }

  /** The request's one audit record; batched: written after the response, a failed write counted and alerted by the audit step. */
  #record(turn: ModelTurn, decision: Decision, outcome: AuditEvent['outcome'], status: number, extra: Record<string, unknown> = {}): void {
    this.#gateway.auditStep.batched(this.#event(turn, decision, outcome, status, extra));
  }

  /**
   * The request's one audit record, written before its answer: batched, but past the audit
   * backlog's bound the answer waits until the record is durable (`AuditStep.batchedBounded`).
   */
  #recordBounded(turn: ModelTurn, decision: Decision, outcome: AuditEvent['outcome'], status: number, extra: Record<string, unknown> = {}): Promise<void> {
    return this.#gateway.auditStep.batchedBounded(this.#event(turn, decision, outcome, status, extra));
  }

  #event(turn: ModelTurn, decision: Decision, outcome: AuditEvent['outcome'], status: number, extra: Record<string, unknown>): AuditEvent {
    return {
      time: turn.time,
      door: 'model',
      agent: turn.agent,
      user: turn.user,
      method: turn.method,
      target: turn.model,
      decision,
      outcome,
      durationMs: round(performance.now() - turn.started),
      detail: { status, ...turn.detail, ...extra },
    };
  }

  #alert(kind: string, severity: AdminAlert['severity'], agent: string, user: string | null, summary: string, detail: Record<string, unknown>): void {
    const alert: AdminAlert = { kind, severity, time: new Date().toISOString(), agent, user, summary, detail };
    this.#opts.alerts?.notify(alert);
    this.#gateway.auditStep.batched({ time: alert.time, door: 'model', agent, user, method: 'alert', target: kind, decision: deny(kind, 'alerts'), outcome: 'ok', durationMs: 0, detail: { severity, summary, ...detail } });
  }
}

/** What the supervisor sees: the forwarded conversation (texts), tool results, and the answer with its tool calls. */
function supervisorInput(kind: ProviderKind, body: ModelRequest, report: ResponseReport): { conversation: { role: string; content: string }[]; toolResults: string[]; answer: string } {
  const conversation: { role: string; content: string }[] = [];
  const toolResults: string[] = [];
  if (kind === 'anthropic') {
    const system = body.system;
    if (typeof system === 'string') conversation.push({ role: 'system', content: system });
    else if (Array.isArray(system)) conversation.push({ role: 'system', content: system.map((b: { text?: string }) => b.text ?? '').join('\n') });
  }
  for (const m of body.messages) {
    const role = String(m.role);
    const c = m.content;
    if (typeof c === 'string') {
      if (role === 'tool' || role === 'function') toolResults.push(c);
      conversation.push({ role, content: c });
    } else if (Array.isArray(c)) {
      const texts: string[] = [];
      for (const part of c as Record<string, unknown>[]) {
        if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
        else if (part.type === 'tool_result') {
          const r = typeof part.content === 'string' ? part.content : JSON.stringify(part.content ?? '');
          toolResults.push(r);
        } else if (part.type === 'tool_use') texts.push(`[tool call ${String(part.name)}(${JSON.stringify(part.input ?? {})})]`);
      }
      if (role === 'tool') toolResults.push(texts.join('\n'));
      conversation.push({ role, content: texts.join('\n') });
    }
  }
  const calls = report.toolCalls.length > 0 ? `\n[tool calls: ${report.toolCalls.join(', ')}]` : '';
  return { conversation, toolResults, answer: report.text + calls };
}

/**
 * The leak tracker of a request: the agent's own system and developer texts
 * (OpenAI `system`/`developer` messages, Anthropic `system`) as the reference.
 * Undefined when the check is off or the prompt is too short to shingle.
 */
function promptLeakTracker(slots: readonly TextSlot[], cfg: ResolvedModelDoor['promptLeak']): PromptLeakTracker | undefined {
  if (!cfg.enabled) return undefined;
  const tracker = new PromptLeakTracker(
    slots.filter((s) => s.author === 'system').map((s) => s.get()),
    cfg,
  );
  return tracker.active ? tracker : undefined;
}

/** Pushes every string of a whole (filtered) answer to the tracker, each its own channel; whether it leaks. */
function answerLeaks(leak: PromptLeakTracker, body: unknown): boolean {
  let n = 0;
  const walk = (v: unknown, depth: number): void => {
    if (typeof v === 'string') {
      const ch = String(n++);
      leak.push(ch, v);
      leak.end(ch);
    } else if (depth < 64 && typeof v === 'object' && v !== null) for (const x of Array.isArray(v) ? v : Object.values(v)) walk(x, depth + 1);
  };
  walk(body, 0);
  return leak.leaked;
}

function methodOf(pathname: string): string {
  if (pathname === '/v1/messages') return 'model.messages';
  if (pathname === '/v1/models') return 'model.models';
  return 'model.chat';
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A signal aborted when the response closes before it was finished (the agent went away). */
function abortOnClose(res: ServerResponse): AbortSignal {
  const ac = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** Reads a body as UTF-8, refusing more than `max` bytes. */
/** A connection reset or closed under a request before its answer began (ECONNRESET, EPIPE, undici's `other side closed`). */
function isDroppedConnection(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'UND_ERR_SOCKET';
}

async function readLimited(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      dropBody(body);
      throw new BastionError('ERR_MODEL_UPSTREAM', `provider answer over ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
