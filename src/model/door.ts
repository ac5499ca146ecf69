/**
 * The model door: an OpenAI- and Anthropic-compatible proxy between an agent and
 * its model provider (ARCHITECTURE.md, "The three doors"). The agent changes
 * only its base URL and uses its Bastion key as the API key; the provider key
 * stays in the vault.
 *
 * Each request passes these stages, cheapest and least trusting first; any
 * stage may end it with a provider-shaped error and one audit record:
 *
 *   authenticate the agent → route (the agent's provider) → body size and JSON
 *   → request shape → identify the end user → ban check → rate limit →
 *   prompt-attack detection on the user's new turn (extraction by a non-admin:
 *   ban + alert) → vault pasted credentials (`<<SECRET_…>>`) → filter the
 *   offered tools (scope, isolateUsers, Cedar) → hardening and placeholder notes
 *   → forward → filter the answer (credentials and vaulted values redacted,
 *   tool calls to tools the agent may not use removed; streamed responses
 *   rewritten event by event) → supervisor (non-streamed) → audit.
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
import { findSecrets } from '../detect/secrets.ts';
import { PromptLeakTracker, ruleBasedDetector, runDetectors, type PromptAttackDetector, type PromptAttackFinding } from '../detect/prompt-attacks.ts';
import { normalizeHost } from '../net/host-pattern.ts';
import { BastionError, isBastionError } from '../errors.ts';
import { ToolMetaIndex } from '../policy/tool-meta.ts';
import type { Gateway } from '../server/gateway.ts';
import { headerOne, readBody } from '../door/body.ts';
import { refusal } from '../door/refusal.ts';
import { authenticateAgent } from '../door/authenticate.ts';
import { mayActPrivileged } from '../door/user.ts';
import { Secret } from '../util/secret.ts';
import type { PastedSecrets } from '../vault/pasted.ts';
import { namedSecret, release } from '../vault/release.ts';
import type { Vault } from '../vault/vault.ts';
import { ModelRateLimiter } from './rate-limit.ts';
import { filterResponse, StreamFilter, type ResponseReport } from './response.ts';
import { redactText } from './redact-text.ts';
import { askSupervisor, correctionNote, type SupervisorVerdict } from './supervisor.ts';
import {
  addSystemText,
  bodyUser,
  checkRequest,
  errorBody,
  errorEvent,
  filterOfferedTools,
  newTurnStart,
  primingAssistantMessage,
  requestTexts,
  type ModelRequest,
  type ProviderKind,
  type TextSlot,
} from './wire.ts';

/** The system note that tells the model what `<<SECRET_…>>` placeholders are. */
export const PLACEHOLDER_NOTE =
  'Values written as <<SECRET_xxxxxxxxxxxx>> are credentials the user provided, held in a vault. ' +
  'Pass them to tools exactly as written when a tool needs that credential; they are replaced with the real value only on the service they belong to. ' +
  'Never ask the user to repeat them and never try to reveal them.';

/** The user a request is attributed to when `modelDoor.requireUser` is false and none is named. */
export const ANONYMOUS_USER = 'anonymous';

/** Most values vaulted earlier by the same agent and user that are redacted from answers (the newest). */
export const EARLIER_VALUES_MAX = 256;

/** Largest non-streamed provider answer read, in bytes. */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Anthropic API version sent when the agent names none. */
const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';


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

/** What one request accumulates for its audit record. */
interface Turn {
  readonly started: number;
  readonly time: string;
  method: string;
  agent: string | null;
  user: string | null;
  model: string | null;
  readonly detail: Record<string, unknown>;
  /** Aborted when the agent goes away before the response is done: the provider request is dropped too. */
  readonly signal: AbortSignal;
}

/** The model door. One per gateway; `handle` serves `/v1/chat/completions`, `/v1/messages` and `/v1/models`. */
export class ModelDoor {
  readonly #gateway: Gateway;
  readonly #opts: ModelDoorOptions;
  readonly #limiter: ModelRateLimiter;
  readonly #detectors: readonly PromptAttackDetector[];
  readonly #toolMeta: ToolMetaIndex;
  readonly #dispatcher: Dispatcher;
  readonly #ownDispatcher: boolean;
  readonly #now: () => number;
  readonly #keepTool = new Map<string, boolean>();

  private constructor(gateway: Gateway, opts: ModelDoorOptions, limiter: ModelRateLimiter) {
    this.#gateway = gateway;
    this.#opts = opts;
    this.#limiter = limiter;
    this.#detectors = opts.detectors ?? [ruleBasedDetector];
    this.#toolMeta = new ToolMetaIndex(gateway.config.tools);
    this.#ownDispatcher = opts.dispatcher === undefined;
    this.#dispatcher = opts.dispatcher ?? new Agent({ keepAliveTimeout: 30_000, connections: 256 });
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Opens the door: the rate limiter (Redis when `redis` is configured, else memory).
   * @throws BastionError `ERR_CONFIG_INVALID` (a bad Redis URL)
   */
  static async open(gateway: Gateway, opts: ModelDoorOptions = {}): Promise<ModelDoor> {
    const cfg = gateway.config;
    const limiter = await ModelRateLimiter.create(cfg.modelDoor.rateLimits, cfg.redis ? { redisUrl: cfg.redis.url.reveal(), keyPrefix: `${cfg.redis.keyPrefix}rl:` } : {});
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
    const started = performance.now();
    const turn: Turn = { started, time: new Date().toISOString(), method: methodOf(url.pathname), agent: null, user: null, model: null, detail: {}, signal: abortOnClose(res) };
    const kindHint: ProviderKind = url.pathname === '/v1/messages' || req.headers['anthropic-version'] !== undefined ? 'anthropic' : 'openai';
    try {
      await this.#serve(req, res, url, turn, kindHint);
    } catch (err) {
      turn.detail.code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
      this.#fail(res, turn, kindHint, 500, 'ERR_INTERNAL', 'internal error', deny('internal', 'model-door'), 'error');
    }
  }

  async #serve(req: IncomingMessage, res: ServerResponse, url: URL, turn: Turn, kindHint: ProviderKind): Promise<void> {
    const cfg = this.#gateway.config;
    // 1. The agent, by its Bastion key (OpenAI SDKs send it as a Bearer token, Anthropic SDKs as x-api-key).
    const authn = authenticateAgent(req.headers, this.#gateway.agentKeys, ['authorization', 'x-api-key']);
    if (!authn.ok) {
      const r = refusal(authn.reason, 'http', 'model');
      return this.#fail(res, turn, kindHint, r.status, r.code, authn.reason === 'auth.missing' ? 'authentication required: send your Bastion agent key as the API key' : 'invalid key', r.decision);
    }
    const agentName = authn.agent;
    turn.agent = agentName;
    const agent = cfg.agents.get(agentName) as ResolvedAgent;

    // 2. Route: the agent's provider decides the wire format.
    const model = agent.model;
    if (model === undefined) return this.#fail(res, turn, kindHint, 404, 'ERR_MODEL_NOT_CONFIGURED', `agent ${agentName} has no model provider (agents.${agentName}.model)`, deny('model.not_configured', `agents.${agentName}.model`));
    const kind = model.provider;
    if (url.pathname === '/v1/models') {
      turn.user = headerOne(req, 'bastion-user') ?? null;
      if (req.method !== 'GET') return this.#fail(res, turn, kind, 405, 'ERR_MODEL_REQUEST_INVALID', 'method not allowed', deny('http.method', 'http'), 'denied', { allow: 'GET' });
      return this.#models(req, res, turn, agent, model);
    }
    if ((url.pathname === '/v1/messages') !== (kind === 'anthropic')) {
      return this.#fail(res, turn, kind, 400, 'ERR_MODEL_NOT_CONFIGURED', `agent ${agentName} speaks the ${kind} API: use ${kind === 'openai' ? '/v1/chat/completions' : '/v1/messages'}`, deny('model.wrong_provider', `agents.${agentName}.model.provider`));
    }
    if (req.method !== 'POST') return this.#fail(res, turn, kind, 405, 'ERR_MODEL_REQUEST_INVALID', 'method not allowed', deny('http.method', 'http'), 'denied', { allow: 'POST' });

    // 3. Body, bounded as it streams, then JSON and the provider's shape.
    const md = cfg.modelDoor;
    const raw = await readBody(req, md.maxBodyBytes, cfg.server.bodyTimeoutMs);
    if (raw === 'too_large') {
      res.setHeader('connection', 'close');
      return this.#fail(res, turn, kind, 413, 'ERR_BODY_TOO_LARGE', `request body over ${md.maxBodyBytes} bytes`, deny('body.too_large', 'modelDoor.maxBodyBytes'));
    }
    if (raw === 'timeout') {
      res.setHeader('connection', 'close');
      return this.#fail(res, turn, kind, 408, 'ERR_BODY_TIMEOUT', `request body not received within ${cfg.server.bodyTimeoutMs} ms`, deny('body.timeout', 'server.bodyTimeoutMs'));
    }
    if (raw === 'aborted') return this.#record(turn, deny('body.aborted', 'http'), 'error', 400);
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      return this.#fail(res, turn, kind, 400, 'ERR_MODEL_REQUEST_INVALID', 'request body is not JSON', deny('request.json', 'http'));
    }
    const checked = checkRequest(kind, parsed);
    if (!checked.ok) return this.#fail(res, turn, kind, 400, 'ERR_MODEL_REQUEST_INVALID', `not a ${kind === 'openai' ? 'Chat Completions' : 'Messages'} request: ${checked.message}`, deny('request.shape', kind));
    const body = checked.body;
    turn.model = body.model;
    const stream = body.stream === true;
    turn.detail.stream = stream;

    // 4. The end user (the kernel's one step): asserted by Bastion-User or the request's user field, or proven by a token.
    const claims = this.#gateway.users.claimsOf(req.headers, bodyUser(kind, body));
    const identified = claims === 'invalid' ? ({ ok: false, reason: 'user.invalid' } as const) : await this.#gateway.users.identify(claims);
    if (!identified.ok) {
      const why: Record<typeof identified.reason, string> = {
        'user.invalid': 'the user id must be 1-256 characters without control characters',
        'user.ambiguous': 'Bastion-User, the request\'s user field and the user token name different users',
        'user.unverified': 'this gateway needs a user token for every named user',
        'user.token_invalid': 'the user token is not valid',
        'user.jwks_unavailable': 'the user token cannot be verified now',
      };
      const r = refusal(identified.reason, 'users', 'model');
      return this.#fail(res, turn, kind, r.status, r.code, why[identified.reason], r.decision);
    }
    const named = identified.user;
    if (named === null && md.requireUser) {
      return this.#fail(res, turn, kind, 400, 'ERR_USER_REQUIRED', 'name the end user in the Bastion-User header or the request\'s user field', deny('user.missing', 'modelDoor.requireUser'));
    }
    const user = named?.id ?? ANONYMOUS_USER;
    turn.user = user;
    if (named?.verified === true) turn.detail.userVerified = true;
    // Admin privilege (no bans, no hardening note) needs a proven user when user tokens are configured.
    const isAdmin = md.admins.includes(user) && mayActPrivileged(named, this.#gateway.users);
    if (isAdmin) turn.detail.admin = true;

    // 5. Bans (admins are exempt), then rate limits.
    if (!isAdmin) {
      let ban;
      try {
        ban = await this.#gateway.store.activeBan(agentName, user, this.#now());
      } catch {
        return this.#fail(res, turn, kind, 503, 'ERR_STORE', 'ban store unavailable', deny('store.error', 'bans'));
      }
      if (ban !== undefined) {
        turn.detail.ban = { id: ban.id, until: new Date(ban.until).toISOString(), level: ban.level };
        const retry = Math.max(1, Math.ceil((ban.until - this.#now()) / 1000));
        return this.#fail(res, turn, kind, 403, 'ERR_USER_BANNED', `this user is banned until ${new Date(ban.until).toISOString()}`, deny('user.banned', `ban:${ban.id}`), 'denied', { 'retry-after': String(retry) });
      }
    }
    const admit = await this.#limiter.admit(agentName, user);
    if (!admit.ok) {
      turn.detail.limit = admit.limit;
      const retry = String(Math.max(1, Math.ceil(admit.retryAfterMs / 1000)));
      if (admit.limit === 'store.error') return this.#fail(res, turn, kind, 503, 'ERR_STORE', 'rate-limit store unavailable', deny('ratelimit.store_error', 'redis'), 'denied', { 'retry-after': retry });
      return this.#fail(res, turn, kind, 429, 'ERR_RATE_LIMITED', `rate limit reached (${admit.limit})`, deny('ratelimit.exceeded', `modelDoor.rateLimits.${admit.limit === 'user.requests' || admit.limit === 'user.tokens' ? 'perUser' : 'perAgent'}`), 'denied', { 'retry-after': retry });
    }

    // 6. Prompt attacks in the user's new turn, and a fabricated assistant turn priming a disclosure.
    let slots: TextSlot[];
    try {
      slots = requestTexts(kind, body);
    } catch (err) {
      if (!isBastionError(err, 'ERR_MODEL_REQUEST_INVALID')) throw err;
      return this.#fail(res, turn, kind, 400, 'ERR_MODEL_REQUEST_INVALID', `not a ${kind === 'openai' ? 'Chat Completions' : 'Messages'} request: ${err.message}`, deny('request.shape', kind));
    }
    let findings: PromptAttackFinding[];
    try {
      findings = await this.#detectAttacks(body, slots);
    } catch {
      return this.#fail(res, turn, kind, 503, 'ERR_INTERNAL', 'prompt detector failed', deny('detector.error', 'prompt-attacks'));
    }
    if (findings.length > 0) turn.detail.detections = [...new Map(findings.map((f) => [`${f.kind}:${f.rule}`, { kind: f.kind, rule: f.rule }])).values()];
    const extraction = findings.find((f) => f.kind === 'extraction');
    if (extraction !== undefined && !isAdmin) {
      if (md.extraction === 'ban') {
        let ban;
        try {
          ban = await this.#gateway.store.addBan({ agent: agentName, user, at: this.#now(), rule: extraction.rule, reason: 'prompt extraction attempt' }, md.bans.durationsMs, md.bans.forgetAfterMs);
        } catch {
          return this.#fail(res, turn, kind, 503, 'ERR_STORE', 'ban store unavailable', deny('store.error', 'bans'));
        }
        turn.detail.ban = { id: ban.id, until: new Date(ban.until).toISOString(), level: ban.level };
        this.#alert('model.extraction_ban', 'critical', agentName, user, `user ${user} banned until ${new Date(ban.until).toISOString()} (offence ${ban.level}) for a prompt-extraction attempt`, {
          rule: extraction.rule,
          banId: ban.id,
          level: ban.level,
        });
        const retry = Math.max(1, Math.ceil((ban.until - this.#now()) / 1000));
        return this.#fail(res, turn, kind, 403, 'ERR_USER_BANNED', 'this request tried to extract the assistant\'s instructions; the user is banned for a while', deny('prompt.extraction', extraction.rule), 'denied', { 'retry-after': String(retry) });
      }
      this.#alert('model.extraction_flag', 'warning', agentName, user, `prompt-extraction attempt by user ${user}`, { rule: extraction.rule });
    }

    // 7. Pasted credentials → personal secrets of this user, placeholders in the text; with the values this user vaulted before.
    const values: string[] = [];
    const vaulted = await this.#vaultPasted(slots, agentName, user, md.vaultPastedSecrets, values).catch((err: unknown) => err as Error);
    if (vaulted instanceof Error) {
      const code = isBastionError(vaulted) && vaulted.code === 'ERR_VAULT_KEY' ? 'vault.unavailable' : 'vault.error';
      return this.#fail(res, turn, kind, 503, 'ERR_STORE', 'the vault could not store a pasted credential', deny(code, 'vault'));
    }
    if (vaulted.length > 0) turn.detail.vaulted = vaulted;

    // 8. Tools offered to the model.
    const removed = filterOfferedTools(kind, body, (name) => this.#mayUse(agent, name));
    if (removed.length > 0) turn.detail.removedTools = removed;

    // 9. Notes for the model: hardening for non-admins, the placeholder explanation when one is present.
    const notes: string[] = [];
    if (!isAdmin && md.hardening.enabled) notes.push(md.hardening.text);
    if (slots.some((s) => s.get().includes('<<SECRET_'))) notes.push(PLACEHOLDER_NOTE);
    if (notes.length > 0) addSystemText(kind, body, notes.join('\n\n'));
    if (stream && kind === 'openai' && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage !== true) {
      // Token accounting needs the usage chunk.
      body.stream_options = { ...(body.stream_options as object | undefined), include_usage: true };
    }

    // 10. Forward.
    let providerKey: string | undefined;
    try {
      providerKey = await this.#secretFor(model.secret, model.baseUrl, agent.name, kind === 'anthropic' ? 'x-api-key' : 'authorization');
    } catch (err) {
      turn.detail.code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
      return this.#fail(res, turn, kind, 502, 'ERR_MODEL_UPSTREAM', 'the provider key is unavailable', deny('provider.key', `agents.${agentName}.model.secret`));
    }
    if (providerKey !== undefined) values.push(providerKey);
    // The answer is compared with the agent's system and developer texts (not Bastion's notes) for a leak.
    const leak = isAdmin ? undefined : promptLeakTracker(slots, md.promptLeak);
    const filter = { values, allowTool: (name: string) => this.#mayUse(agent, name), observe: leak === undefined ? undefined : (channel: string, text: string) => leak.push(channel, text) };
    const upstream = await this.#send(req, turn.signal, kind, model, providerKey, body).catch((err: unknown) => err as Error);
    if (upstream instanceof Error) return this.#upstreamFailure(res, turn, kind, upstream);
    turn.detail.upstreamStatus = upstream.statusCode;
    turn.detail.ttfbMs = round(performance.now() - turn.started);
    if (upstream.statusCode >= 400) return this.#passError(res, turn, kind, upstream, values);

    if (stream && String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      return this.#stream(res, turn, kind, agent, upstream, filter, leak);
    }
    // 11. A whole answer.
    let answer: { body: unknown; report: ResponseReport };
    try {
      const text = await readLimited(upstream.body, MAX_RESPONSE_BYTES);
      answer = filterResponse(kind, JSON.parse(text), filter);
    } catch (err) {
      turn.detail.code = isBastionError(err) ? err.code : 'ERR_MODEL_UPSTREAM';
      const timeout = isTimeout(err);
      return this.#fail(res, turn, kind, timeout ? 504 : 502, timeout ? 'ERR_MODEL_UPSTREAM_TIMEOUT' : 'ERR_MODEL_UPSTREAM', timeout ? 'the provider stopped answering' : 'the provider\'s answer could not be read', deny(timeout ? 'upstream.timeout' : 'upstream.invalid', 'provider'), timeout ? 'timeout' : 'error');
    }
    this.#noteReport(turn, answer.report, agentName, user);
    if (leak !== undefined && answerLeaks(leak, answer.body)) {
      const refused = await this.#promptLeaked(turn, agentName, user);
      if (refused !== undefined) return this.#fail(res, turn, kind, refused.status, refused.code, refused.message, refused.decision, 'denied', refused.headers);
    }

    // 12. Supervisor.
    if (agent.supervisor !== undefined) {
      const supervised = await this.#supervise(req, turn, kind, agent, model, providerKey, body, answer, filter);
      if (supervised instanceof Error) {
        turn.detail.code = isBastionError(supervised) ? supervised.code : 'ERR_MODEL_UPSTREAM';
        return this.#fail(res, turn, kind, 502, 'ERR_MODEL_UPSTREAM', 'the supervisor could not check the answer', deny('supervisor.error', `agents.${agentName}.supervisor`));
      }
      answer = supervised;
    }
    this.#charge(agentName, user, answer.report);
    const out = JSON.stringify(answer.body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(out)) });
    res.end(out);
    this.#record(turn, allow('model.forwarded', `agents.${agentName}.model`), 'ok', 200);
  }

  /** May `agent` use tool `name`? Scope and isolateUsers first, then the tool door's Cedar decision. Memoized per agent and name. */
  #mayUse(agent: ResolvedAgent, name: string): boolean {
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

  /**
   * An answer to `user` repeats the system prompt ({@link PromptLeakTracker}):
   * handled like an extraction attempt. `extraction: ban`: the user is banned
   * (escalating), an admin alert goes out, and the refusal to send is returned
   * (the answer is withheld, or a stream is cut). `flag`: an alert, and
   * undefined (the answer goes on). A ban store failure refuses too (503).
   */
  async #promptLeaked(turn: Turn, agent: string, user: string): Promise<LeakRefusal | undefined> {
    const md = this.#gateway.config.modelDoor;
    turn.detail.promptLeak = true;
    if (md.extraction !== 'ban') {
      this.#alert('model.prompt_leak_flag', 'warning', agent, user, `an answer to user ${user} repeated the system prompt`, { rule: PROMPT_LEAK_RULE });
      return undefined;
    }
    let ban;
    try {
      ban = await this.#gateway.store.addBan({ agent, user, at: this.#now(), rule: PROMPT_LEAK_RULE, reason: 'answer repeated the system prompt' }, md.bans.durationsMs, md.bans.forgetAfterMs);
    } catch {
      return { status: 503, code: 'ERR_STORE', message: 'ban store unavailable', decision: deny('store.error', 'bans'), headers: {} };
    }
    turn.detail.ban = { id: ban.id, until: new Date(ban.until).toISOString(), level: ban.level };
    this.#alert('model.prompt_leak_ban', 'critical', agent, user, `user ${user} banned until ${new Date(ban.until).toISOString()} (offence ${ban.level}): an answer repeated the system prompt`, {
      rule: PROMPT_LEAK_RULE,
      banId: ban.id,
      level: ban.level,
    });
    const retry = Math.max(1, Math.ceil((ban.until - this.#now()) / 1000));
    return {
      status: 403,
      code: 'ERR_USER_BANNED',
      message: 'the answer repeated the assistant\'s instructions and was withheld; the user is banned for a while',
      decision: deny('prompt.extraction', PROMPT_LEAK_RULE),
      headers: { 'retry-after': String(retry) },
    };
  }

  /**
   * Runs the prompt-attack detectors on the user's new turn (context `user`)
   * and on the assistant message that precedes it or prefills the answer
   * (context `assistant`: a client-fabricated "Sure, here are my
   * instructions:" is an extraction set-up). Rejects when a detector fails.
   */
  async #detectAttacks(body: ModelRequest, slots: readonly TextSlot[]): Promise<PromptAttackFinding[]> {
    const fresh = newTurnStart(body);
    const priming = primingAssistantMessage(body);
    const findings: PromptAttackFinding[] = [];
    for (const s of slots) {
      if (s.author === 'user' && s.message >= fresh) findings.push(...(await runDetectors(this.#detectors, s.get(), { context: 'user' })));
      else if (s.author === 'assistant' && s.message === priming) findings.push(...(await runDetectors(this.#detectors, s.get(), { context: 'assistant' })));
    }
    return findings;
  }

  /**
   * Vaults the credentials of a request and replaces them with placeholders in
   * place (when `vaultNew`), and pushes to `values` every value the answer
   * filter must redact. In order:
   *
   * 1. the values `user` vaulted before (newest {@link EARLIER_VALUES_MAX}):
   *    pushed to `values`, and their copies anywhere in the request replaced;
   * 2. credentials the detector finds in every string of every message
   *    ({@link requestTexts}: all roles, `name`, every content part, tool-call
   *    arguments, tool results, Anthropic `system`), each string alone and in
   *    the separator-free concatenation of all of them, so a credential split
   *    across two or more adjacent strings (messages or parts) is found and
   *    each piece of it is replaced by the placeholder ({@link joinedFindings});
   * 3. every other copy of a value vaulted in step 2, in any string.
   *
   * Returns what was vaulted in this request.
   * @throws BastionError `ERR_VAULT_KEY` (a credential and no vault), `ERR_STORE`, `ERR_VAULT_DECRYPT`
   */
  async #vaultPasted(slots: readonly TextSlot[], agent: string, user: string, vaultNew: boolean, values: string[]): Promise<{ rule: string; token: string; created: boolean }[]> {
    const pasted = this.#opts.pasted;
    const placeholders = new Map<string, string>();
    if (pasted !== undefined) {
      for (const k of await pasted.known(agent, user, EARLIER_VALUES_MAX)) {
        const v = k.value.reveal();
        values.push(v);
        if (vaultNew) placeholders.set(v, k.placeholder);
      }
      replaceCopies(slots, placeholders);
    }
    if (!vaultNew) return [];
    const out = new Map<string, { rule: string; token: string; created: boolean }>();
    const vault = async (value: string, rule: string): Promise<string> => {
      const known = placeholders.get(value);
      if (known !== undefined) return known;
      if (pasted === undefined) throw new BastionError('ERR_VAULT_KEY', 'no vault is open');
      const v = await pasted.vault(agent, user, new Secret(value), rule);
      if (!out.has(v.secret.token)) out.set(v.secret.token, { rule, token: v.secret.token, created: v.created });
      values.push(value);
      placeholders.set(value, v.placeholder);
      return v.placeholder;
    };
    // Across strings first: a credential cut over adjacent fields, or whose keyword ends the previous one.
    const own = slots.map((s) => findSecrets(s.get()));
    const split = joinedFindings(slots, own);
    for (const f of split) f.placeholder = await vault(f.value, f.rule);
    const changed = replacePieces(slots, split);
    for (const [i, s] of slots.entries()) {
      const text = s.get();
      const found = changed.has(i) ? findSecrets(text) : (own[i] as readonly { start: number; end: number; rule: string }[]);
      if (found.length === 0) continue;
      let edited = '';
      let at = 0;
      for (const f of found) {
        if (f.start < at) continue;
        edited += text.slice(at, f.start) + (await vault(text.slice(f.start, f.end), f.rule));
        at = f.end;
      }
      s.set(edited + text.slice(at));
    }
    replaceCopies(slots, placeholders);
    return [...out.values()];
  }

  /**
   * The value of vault secret `name` for a request by `agent` to `url` in
   * `header`, as the release rule lets it go (src/vault/release.ts: hosts and
   * ports, https or loopback http, the secret's declared header).
   * Undefined when `name` is undefined (keyless provider).
   * @throws BastionError `ERR_VAULT_KEY` (no vault), `ERR_VAULT_SECRET_UNKNOWN`, `ERR_EGRESS_PLACEHOLDER` (foreign host)
   */
  async #secretFor(name: string | undefined, url: URL, agent: string, header: 'authorization' | 'x-api-key'): Promise<string | undefined> {
    if (name === undefined) return undefined;
    const vault = this.#opts.vault;
    if (vault === undefined) throw new BastionError('ERR_VAULT_KEY', 'no vault is open');
    const resolved = await vault.current(name);
    if (resolved === undefined) throw new BastionError('ERR_VAULT_SECRET_UNKNOWN', `secret ${name} is not in the vault`);
    // The release rule (src/vault/release.ts): the model's own secret, to the provider URL, in the header the wire format uses.
    const d = release({
      secret: namedSecret(resolved.secret, resolved.value, this.#gateway.config.secrets.get(name)),
      agent,
      granted: true,
      user: null,
      destination: { scheme: url.protocol.slice(0, -1), host: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80), location: `header:${header}` },
    });
    if (d.effect !== 'allow') throw new BastionError('ERR_EGRESS_PLACEHOLDER', `secret ${name} may not be sent to ${normalizeHost(url.hostname)} (${d.reason})`);
    vault.markUsed(resolved.secret.id);
    return d.value.reveal();
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
    return request(kind === 'openai' ? `${base}/chat/completions` : `${base}/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      dispatcher: this.#dispatcher,
      headersTimeout: model.timeoutMs,
      bodyTimeout: model.timeoutMs,
      signal,
    });
  }

  /** `GET /v1/models`, passed through (credentials in the answer redacted). */
  async #models(req: IncomingMessage, res: ServerResponse, turn: Turn, agent: ResolvedAgent, model: ResolvedModelUpstream): Promise<void> {
    const kind = model.provider;
    let key: string | undefined;
    try {
      key = await this.#secretFor(model.secret, model.baseUrl, agent.name, kind === 'anthropic' ? 'x-api-key' : 'authorization');
    } catch {
      return this.#fail(res, turn, kind, 502, 'ERR_MODEL_UPSTREAM', 'the provider key is unavailable', deny('provider.key', `agents.${agent.name}.model.secret`));
    }
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
      return this.#upstreamFailure(res, turn, kind, err as Error);
    }
    const out = redactText(text, key !== undefined ? { values: [key] } : {}).text;
    turn.detail.upstreamStatus = upstream.statusCode;
    res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
    res.end(out);
    this.#record(turn, upstream.statusCode < 400 ? allow('model.forwarded', `agents.${agent.name}.model`) : deny('upstream.error', 'provider'), upstream.statusCode < 400 ? 'ok' : 'error', upstream.statusCode);
  }

  /** Streams the provider's SSE answer through the response filter. */
  async #stream(
    res: ServerResponse,
    turn: Turn,
    kind: ProviderKind,
    agent: ResolvedAgent,
    upstream: Dispatcher.ResponseData,
    filter: { values: string[]; allowTool: (name: string) => boolean; observe?: (channel: string, text: string) => void },
    leak: PromptLeakTracker | undefined,
  ): Promise<void> {
    const sf = new StreamFilter(kind, filter);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    const write = async (text: string): Promise<void> => {
      if (text.length === 0 || res.destroyed) return;
      if (!res.write(text)) await new Promise<void>((resolve) => {
        res.once('drain', resolve);
        res.once('close', resolve);
      });
    };
    let failure: { code: 'ERR_MODEL_UPSTREAM' | 'ERR_MODEL_UPSTREAM_TIMEOUT'; reason: string } | undefined;
    let refused: LeakRefusal | undefined;
    try {
      // A leak of the system prompt: under `ban` the answer is cut (what completed the leak is not
      // sent; the words before it, under the threshold, were); under `flag` it goes on, alerted once.
      let leakSeen = false;
      const leakCuts = async (): Promise<boolean> => {
        if (leak === undefined || leakSeen || !leak.leaked) return false;
        leakSeen = true;
        refused = await this.#promptLeaked(turn, agent.name, turn.user as string);
        return refused !== undefined;
      };
      for await (const chunk of upstream.body) {
        const out = sf.push(chunk as Buffer);
        if (await leakCuts()) break;
        await write(out);
        if (res.destroyed) break;
      }
      if (refused === undefined && !res.destroyed) {
        const out = sf.end();
        leak?.end();
        if (!(await leakCuts())) await write(out);
      }
      if (refused !== undefined) {
        upstream.body.destroy();
        this.#noteReport(turn, sf.report, agent.name, turn.user);
        this.#charge(agent.name, turn.user as string, sf.report);
        res.end(errorEvent(kind, refused.status, refused.code, refused.message));
        return this.#record(turn, refused.decision, 'denied', 200, { code: refused.code });
      }
      if (!sf.report.complete && !res.destroyed) failure = { code: 'ERR_MODEL_UPSTREAM', reason: 'upstream.cut' };
    } catch (err) {
      failure = isTimeout(err)
        ? { code: 'ERR_MODEL_UPSTREAM_TIMEOUT', reason: 'upstream.timeout' }
        : isBastionError(err, 'ERR_MODEL_UPSTREAM')
          ? { code: 'ERR_MODEL_UPSTREAM', reason: 'upstream.invalid' }
          : { code: 'ERR_MODEL_UPSTREAM', reason: 'upstream.cut' };
      upstream.body.destroy();
    }
    if (sf.firstContentAt !== null) turn.detail.firstTokenMs = round(sf.firstContentAt - turn.started);
    this.#noteReport(turn, sf.report, agent.name, turn.user);
    this.#charge(agent.name, turn.user as string, sf.report);
    if (res.destroyed) {
      upstream.body.destroy();
      return this.#record(turn, allow('model.forwarded', `agents.${agent.name}.model`), 'error', 499, { code: 'client.closed' });
    }
    if (failure !== undefined) {
      res.end(errorEvent(kind, failure.code === 'ERR_MODEL_UPSTREAM_TIMEOUT' ? 504 : 502, failure.code, 'the provider\'s stream ended early'));
      return this.#record(turn, deny(failure.reason, 'provider'), failure.code === 'ERR_MODEL_UPSTREAM_TIMEOUT' ? 'timeout' : 'error', 200, { code: failure.code });
    }
    res.end();
    if (agent.supervisor !== undefined) turn.detail.supervisor = { skipped: 'stream' };
    this.#record(turn, allow('model.forwarded', `agents.${agent.name}.model`), 'ok', 200);
  }

  /**
   * Asks the supervisor about a whole answer. `flag`: alert on a hallucination
   * verdict and return the answer. `correct`: re-run once with a corrective note
   * and return the corrected answer. Resolves to an Error on failure (fail closed).
   */
  async #supervise(
    req: IncomingMessage,
    turn: Turn,
    kind: ProviderKind,
    agent: ResolvedAgent,
    model: ResolvedModelUpstream,
    providerKey: string | undefined,
    body: ModelRequest,
    answer: { body: unknown; report: ResponseReport },
    filter: { values: string[]; allowTool: (name: string) => boolean },
  ): Promise<{ body: unknown; report: ResponseReport } | Error> {
    const sup = agent.supervisor as NonNullable<ResolvedAgent['supervisor']>;
    try {
      const key = await this.#secretFor(sup.secret, sup.baseUrl, agent.name, 'authorization');
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
  #noteReport(turn: Turn, report: ResponseReport, agent: string, user: string | null): void {
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
  async #passError(res: ServerResponse, turn: Turn, kind: ProviderKind, upstream: Dispatcher.ResponseData, values: readonly string[]): Promise<void> {
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
    if (!json) return this.#fail(res, turn, kind, status >= 500 ? 502 : status, 'ERR_MODEL_UPSTREAM', `the provider answered ${status}`, deny('upstream.error', 'provider'), 'error');
    const out = redactText(text, { values }).text;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const retry = upstream.headers['retry-after'];
    if (typeof retry === 'string') headers['retry-after'] = retry;
    res.writeHead(status, headers);
    res.end(out);
    this.#record(turn, deny('upstream.error', 'provider'), 'error', status);
  }

  #upstreamFailure(res: ServerResponse, turn: Turn, kind: ProviderKind, err: Error): void {
    const timeout = isTimeout(err);
    turn.detail.code = timeout ? 'ERR_MODEL_UPSTREAM_TIMEOUT' : 'ERR_MODEL_UPSTREAM';
    return this.#fail(
      res,
      turn,
      kind,
      timeout ? 504 : 502,
      timeout ? 'ERR_MODEL_UPSTREAM_TIMEOUT' : 'ERR_MODEL_UPSTREAM',
      timeout ? 'the provider did not answer in time' : 'the provider is unreachable',
      deny(timeout ? 'upstream.timeout' : 'upstream.unreachable', 'provider'),
      timeout ? 'timeout' : 'error',
    );
  }

  /** Answers with a provider-shaped error and records the decision. */
  #fail(
    res: ServerResponse,
    turn: Turn,
    kind: ProviderKind,
    status: number,
    code: string,
    message: string,
    decision: Decision,
    outcome: AuditEvent['outcome'] = 'denied',
    headers: Record<string, string> = {},
  ): void {
    if (!res.headersSent) {
      const out = JSON.stringify(errorBody(kind, status, code, message));
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(out)), ...headers });
      res.end(out);
    } else if (!res.writableEnded) {
      res.end(errorEvent(kind, status, code, message));
    }
    turn.detail.code ??= code;
    this.#record(turn, decision, outcome, status);
  }

  #record(turn: Turn, decision: Decision, outcome: AuditEvent['outcome'], status: number, extra: Record<string, unknown> = {}): void {
    const event: AuditEvent = {
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
    // Batched: written after the response; a failed write is counted and alerted by the audit step.
    this.#gateway.auditStep.batched(event);
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

/** How an answer that leaked the system prompt is refused. */
interface LeakRefusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly decision: Decision;
  readonly headers: Record<string, string>;
}

/** The rule id audited for an answer that repeats the system prompt. */
export const PROMPT_LEAK_RULE = 'extraction.answer-leak';

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

/** A credential found in the concatenation of a request's strings, with the piece of it each string holds. */
interface JoinedFinding {
  readonly value: string;
  readonly rule: string;
  /** `[from, to)` in string `slot` of the slots list. */
  readonly pieces: readonly { readonly slot: number; readonly from: number; readonly to: number }[];
  placeholder: string;
}

/**
 * The credentials the detector finds in the separator-free concatenation of
 * every string of the request (document order) that it would not find in one
 * string alone: spans crossing a boundary between two or more strings, and
 * spans inside one string whose left context (`password =`) ends the string
 * before. Linear in the request's text (one more detector pass over it).
 *
 * Limits: only adjacent strings are joined, so a credential cut in two with
 * other text between the pieces, reordered, or encoded, is not found; joining
 * may also make a span out of two innocent pieces (then both are replaced:
 * over-vaulting, not a leak).
 */
function joinedFindings(slots: readonly TextSlot[], own: readonly (readonly { start: number; end: number }[])[]): JoinedFinding[] {
  if (slots.length < 2) return [];
  const texts = slots.map((s) => s.get());
  const offsets: number[] = [];
  let total = 0;
  for (const t of texts) {
    offsets.push(total);
    total += t.length;
  }
  const joined = texts.join('');
  const out: JoinedFinding[] = [];
  let slot = 0;
  for (const f of findSecrets(joined).sort((a, b) => a.start - b.start)) {
    while (slot + 1 < offsets.length && (offsets[slot + 1] as number) <= f.start) slot++;
    const pieces: { slot: number; from: number; to: number }[] = [];
    for (let k = slot; k < texts.length && (offsets[k] as number) < f.end; k++) {
      const base = offsets[k] as number;
      const len = (texts[k] as string).length;
      if (len === 0) continue;
      pieces.push({ slot: k, from: Math.max(0, f.start - base), to: Math.min(len, f.end - base) });
    }
    if (pieces.length === 0) continue;
    const single = pieces.length === 1 ? (pieces[0] as { slot: number; from: number; to: number }) : undefined;
    // Found in its own string too: left to the per-string pass.
    if (single !== undefined && (own[single.slot] ?? []).some((g) => g.start <= single.from && g.end >= single.to)) continue;
    out.push({ value: joined.slice(f.start, f.end), rule: f.rule, pieces, placeholder: '' });
  }
  return out;
}

/** Replaces each piece of each finding with the finding's placeholder (right to left per string, so offsets hold); returns the indexes of the strings changed. */
function replacePieces(slots: readonly TextSlot[], found: readonly JoinedFinding[]): Set<number> {
  const bySlot = new Map<number, { from: number; to: number; placeholder: string }[]>();
  for (const f of found) for (const p of f.pieces) bySlot.set(p.slot, [...(bySlot.get(p.slot) ?? []), { from: p.from, to: p.to, placeholder: f.placeholder }]);
  for (const [i, edits] of bySlot) {
    const s = slots[i] as TextSlot;
    let text = s.get();
    edits.sort((a, b) => b.from - a.from);
    let limit = text.length;
    for (const e of edits) {
      if (e.to > limit) continue;
      text = text.slice(0, e.from) + e.placeholder + text.slice(e.to);
      limit = e.from;
    }
    s.set(text);
  }
  return new Set(bySlot.keys());
}

/** Replaces every copy of each value with its placeholder, in every string. */
function replaceCopies(slots: readonly TextSlot[], placeholders: ReadonlyMap<string, string>): void {
  if (placeholders.size === 0) return;
  for (const s of slots) {
    let text = s.get();
    let changed = false;
    for (const [value, ph] of placeholders) {
      if (text.includes(value)) {
        text = text.split(value).join(ph);
        changed = true;
      }
    }
    if (changed) s.set(text);
  }
}

function methodOf(pathname: string): string {
  if (pathname === '/v1/messages') return 'model.messages';
  if (pathname === '/v1/models') return 'model.models';
  return 'model.chat';
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (err instanceof Error && err.name === 'TimeoutError') || isBastionError(err, 'ERR_MODEL_UPSTREAM_TIMEOUT');
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
async function readLimited(body: Dispatcher.ResponseData['body'], max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > max) {
      body.destroy();
      throw new BastionError('ERR_MODEL_UPSTREAM', `provider answer over ${max} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
