/**
 * The model door's stages (ARCHITECTURE.md, "The door kernel"): each a small
 * function of the request's {@link ModelTurn} and a narrow dependency object,
 * returning what it adds to the request or a {@link Refused} (a kernel
 * {@link Refusal} from the closed table in src/door/reasons.ts, plus the message
 * the client reads). The door (src/model/door.ts) composes them in order and
 * renders a Refused in the provider's error shape; stages never touch a socket,
 * so each is tested with plain objects (test/model/stages.test.ts).
 *
 *   authenticate → route → readRequest (bounded body, JSON, shape) → identifyUser
 *   → checkBan → admitRate → textsOf → screenPrompt (extraction bans)
 *   → vaultPasted → filterTools + addNotes → releaseKey → (forward, the door's)
 *   → answer checks (answerLeaked) → (supervisor, audit: the door's)
 *
 * Fail closed: a store, limiter, detector or vault failure is a Refused (503),
 * never a pass.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { AdminAlert } from '../alerts/notifier.ts';
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedAgent, ResolvedModelDoor, ResolvedModelUpstream, ResolvedSecretMeta } from '../config/types.ts';
import { findSecrets } from '../detect/secrets.ts';
import { runDetectors, type PromptAttackDetector, type PromptAttackFinding } from '../detect/prompt-attacks.ts';
import { authenticateAgent, type KeyIndex } from '../door/authenticate.ts';
import type { Reason } from '../door/reasons.ts';
import { refusal, type Refusal } from '../door/refusal.ts';
import { mayActPrivileged, type UserIdentity, type UserVerifier } from '../door/user.ts';
import { BastionError, isBastionError } from '../errors.ts';
import { normalizeHost } from '../net/host-pattern.ts';
import { Secret } from '../util/secret.ts';
import type { PastedSecrets } from '../vault/pasted.ts';
import { namedSecret, release } from '../vault/release.ts';
import type { Vault } from '../vault/vault.ts';
import type { BanRecord, BanStore } from './ban-store.ts';
import type { ModelRateLimiter } from './rate-limit.ts';
import { addSystemText, bodyUser, checkRequest, filterOfferedTools, newTurnStart, primingAssistantMessage, requestTexts, type ModelRequest, type ProviderKind, type TextSlot } from './wire.ts';

/** The system note that tells the model what `<<SECRET_…>>` placeholders are. */
export const PLACEHOLDER_NOTE =
  'Values written as <<SECRET_xxxxxxxxxxxx>> are credentials the user provided, held in a vault. ' +
  'Pass them to tools exactly as written when a tool needs that credential; they are replaced with the real value only on the service they belong to. ' +
  'Never ask the user to repeat them and never try to reveal them.';

/** The user a request is attributed to when `modelDoor.requireUser` is false and none is named. */
export const ANONYMOUS_USER = 'anonymous';

/** Most values vaulted earlier by the same agent and user that are redacted from answers (the newest). */
export const EARLIER_VALUES_MAX = 256;

/** The rule id audited for an answer that repeats the system prompt. */
export const PROMPT_LEAK_RULE = 'extraction.answer-leak';

/** The request context: what one request through the model door accumulates for its answer and its one audit record. */
export interface ModelTurn {
  /** `performance.now()` at arrival, ms. */
  readonly started: number;
  /** ISO 8601 arrival time (the audit record's `time`). */
  readonly time: string;
  method: string;
  /** The wire format errors are rendered in: guessed from the path until {@link route} knows the agent's provider. */
  kind: ProviderKind;
  agent: string | null;
  user: string | null;
  model: string | null;
  /** The audit record's detail (no secret ever goes here). */
  readonly detail: Record<string, unknown>;
  /** Aborted when the agent goes away before the response is done: the provider request is dropped too. */
  readonly signal: AbortSignal;
}

/** A refused request: the kernel's refusal (decision, code, status) and what the door tells the client. */
export interface Refused {
  readonly refusal: Refusal;
  /** The message of the provider-shaped error body (never holds a secret). */
  readonly message: string;
  /** Extra response headers (`retry-after`, `allow`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** The audit outcome (default `denied`). */
  readonly outcome?: AuditEvent['outcome'];
  /** The provider's own status, passed through instead of the table's (a provider error that is not JSON). */
  readonly status?: number;
  /** Close the connection after answering (a body that was not read whole). */
  readonly closeConnection?: boolean;
  /** The client went away: nothing is answered, the request is only recorded. */
  readonly silent?: boolean;
}

/** The {@link Refused} for `reason` (a row of the closed table) decided by `rule`, as the model door answers it. */
export function refused(reason: Reason, rule: string, message: string, extra: Omit<Refused, 'refusal' | 'message'> = {}): Refused {
  return { refusal: refusal(reason, rule, 'model'), message, ...extra };
}

/** True when a stage refused. */
export function isRefused(x: unknown): x is Refused {
  return typeof x === 'object' && x !== null && 'refusal' in x && 'message' in x;
}

/** An admin alert, raised by the door (notifier + audit record). */
export type Alerter = (kind: string, severity: AdminAlert['severity'], agent: string, user: string | null, summary: string, detail: Record<string, unknown>) => void;

/** The end user a request is for, as the stages after {@link identifyUser} see it. */
export interface Who {
  readonly agent: ResolvedAgent;
  /** The user id, {@link ANONYMOUS_USER} when none is named. */
  readonly user: string;
  /** The identity as asserted or proven, null when none is named. */
  readonly named: UserIdentity | null;
  /** A model-door admin (no bans, no hardening note); needs a proven user when user tokens are configured. */
  readonly isAdmin: boolean;
}

// ── 1. Authenticate ─────────────────────────────────────────────────────────

/**
 * The agent, by its Bastion key: OpenAI SDKs send it as a Bearer token,
 * Anthropic SDKs as `x-api-key` (the kernel's {@link authenticateAgent}).
 * Refused: `auth.missing`, `auth.invalid` (401), `agent.isolated` (403).
 */
export function authenticate(turn: ModelTurn, headers: IncomingHttpHeaders, deps: { readonly keys: KeyIndex; readonly agents: ReadonlyMap<string, ResolvedAgent> }): ResolvedAgent | Refused {
  const authn = authenticateAgent(headers, deps.keys, ['authorization', 'x-api-key']);
  if (!authn.ok && authn.reason === 'agent.isolated') {
    turn.agent = authn.agent;
    return refused('agent.isolated', 'incidents', 'agent isolated');
  }
  if (!authn.ok) return refused(authn.reason, 'http', authn.reason === 'auth.missing' ? 'authentication required: send your Bastion agent key as the API key' : 'invalid key');
  const agent = deps.agents.get(authn.agent);
  if (agent === undefined) return refused('auth.invalid', 'agents', 'invalid key');
  turn.agent = agent.name;
  return agent;
}

// ── 2. Route ────────────────────────────────────────────────────────────────

/** Where a request goes: the agent's provider, its wire format, and which endpoint. */
export interface Route {
  readonly endpoint: 'models' | 'generate';
  readonly model: ResolvedModelUpstream;
  readonly kind: ProviderKind;
}

/**
 * The agent's provider decides the wire format: `/v1/chat/completions` for
 * OpenAI, `/v1/messages` for Anthropic (POST), `/v1/models` for either (GET).
 * Sets `turn.kind`. Refused: `model.not_configured` (404),
 * `model.wrong_provider` (400), `http.method` (405, with `allow`).
 */
export function route(turn: ModelTurn, agent: ResolvedAgent, pathname: string, method: string | undefined): Route | Refused {
  const model = agent.model;
  if (model === undefined) return refused('model.not_configured', `agents.${agent.name}.model`, `agent ${agent.name} has no model provider (agents.${agent.name}.model)`);
  const kind = model.provider;
  turn.kind = kind;
  if (pathname === '/v1/models') {
    if (method !== 'GET') return refused('http.method', 'http', 'method not allowed', { headers: { allow: 'GET' } });
    return { endpoint: 'models', model, kind };
  }
  if ((pathname === '/v1/messages') !== (kind === 'anthropic')) {
    return refused('model.wrong_provider', `agents.${agent.name}.model.provider`, `agent ${agent.name} speaks the ${kind} API: use ${kind === 'openai' ? '/v1/chat/completions' : '/v1/messages'}`);
  }
  if (method !== 'POST') return refused('http.method', 'http', 'method not allowed', { headers: { allow: 'POST' } });
  return { endpoint: 'generate', model, kind };
}

// ── 3. Body, JSON and shape ─────────────────────────────────────────────────

/** What the kernel's bounded reader (src/door/body.ts `readBody`) returns. */
export type BodyRead = Buffer | 'too_large' | 'timeout' | 'aborted';

/**
 * Reads the body with `read` (bounded: `maxBodyBytes` bytes, `bodyTimeoutMs`
 * ms) and parses it ({@link parseRequest}). Refused: `body.too_large` (413),
 * `body.timeout` (408), both closing the connection; `body.aborted` (silent:
 * the client is gone); and {@link parseRequest}'s.
 */
export async function readRequest(turn: ModelTurn, read: () => Promise<BodyRead>, limits: { readonly maxBodyBytes: number; readonly bodyTimeoutMs: number }): Promise<ModelRequest | Refused> {
  const raw = await read();
  if (raw === 'too_large') return refused('body.too_large', 'modelDoor.maxBodyBytes', `request body over ${limits.maxBodyBytes} bytes`, { closeConnection: true });
  if (raw === 'timeout') return refused('body.timeout', 'server.bodyTimeoutMs', `request body not received within ${limits.bodyTimeoutMs} ms`, { closeConnection: true });
  if (raw === 'aborted') return refused('body.aborted', 'http', 'client went away', { silent: true, outcome: 'error' });
  return parseRequest(turn, raw);
}

/**
 * JSON, then the provider's request shape (`turn.kind`). Sets `turn.model` and
 * `detail.stream`. Refused: `request.json`, `request.shape` (400).
 */
export function parseRequest(turn: ModelTurn, raw: Buffer): ModelRequest | Refused {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch {
    return refused('request.json', 'http', 'request body is not JSON');
  }
  const checked = checkRequest(turn.kind, parsed);
  if (!checked.ok) return refused('request.shape', turn.kind, `not a ${apiName(turn.kind)} request: ${checked.message}`);
  turn.model = checked.body.model;
  turn.detail.stream = checked.body.stream === true;
  return checked.body;
}

// ── 4. End user ─────────────────────────────────────────────────────────────

const USER_MESSAGES: Record<'user.invalid' | 'user.ambiguous' | 'user.unverified' | 'user.token_invalid' | 'user.jwks_unavailable', string> = {
  'user.invalid': 'the user id must be 1-256 characters without control characters',
  'user.ambiguous': 'Bastion-User, the request\'s user field and the user token name different users',
  'user.unverified': 'this gateway needs a user token for every named user',
  'user.token_invalid': 'the user token is not valid',
  'user.jwks_unavailable': 'the user token cannot be verified now',
};

/**
 * The end user (the kernel's one step, src/door/user.ts): asserted by
 * `Bastion-User` or the request's `user` field, or proven by a token. Admin
 * privilege needs the proven form when user tokens are configured. Sets
 * `turn.user`. Refused: the verifier's reasons (400/401/503), `user.missing`
 * (400) when `requireUser` and none is named.
 */
export async function identifyUser(
  turn: ModelTurn,
  agent: ResolvedAgent,
  headers: IncomingHttpHeaders,
  body: ModelRequest,
  deps: { readonly users: Pick<UserVerifier, 'claimsOf' | 'identify' | 'enabled'>; readonly requireUser: boolean; readonly admins: readonly string[] },
): Promise<Who | Refused> {
  const claims = deps.users.claimsOf(headers, bodyUser(turn.kind, body));
  const identified = claims === 'invalid' ? ({ ok: false, reason: 'user.invalid' } as const) : await deps.users.identify(claims);
  if (!identified.ok) return refused(identified.reason, 'users', USER_MESSAGES[identified.reason]);
  const named = identified.user;
  if (named === null && deps.requireUser) return refused('user.missing', 'modelDoor.requireUser', 'name the end user in the Bastion-User header or the request\'s user field');
  const user = named?.id ?? ANONYMOUS_USER;
  turn.user = user;
  if (named?.verified === true) turn.detail.userVerified = true;
  const isAdmin = deps.admins.includes(user) && mayActPrivileged(named, deps.users);
  if (isAdmin) turn.detail.admin = true;
  return { agent, user, named, isAdmin };
}

// ── 5. Bans and rate limits ─────────────────────────────────────────────────

/**
 * A ban in force refuses (admins are exempt). Refused: `user.banned` (403,
 * `retry-after`), `store.error` (503) when the ban store fails (fail closed).
 */
export async function checkBan(turn: ModelTurn, who: Who, deps: { readonly bans: Pick<BanStore, 'activeBan'>; readonly now: () => number }): Promise<Refused | undefined> {
  if (who.isAdmin) return undefined;
  let ban: BanRecord | undefined;
  try {
    ban = await deps.bans.activeBan(who.agent.name, who.user, deps.now());
  } catch {
    return refused('store.error', 'bans', 'ban store unavailable');
  }
  if (ban === undefined) return undefined;
  noteBan(turn, ban);
  return refused('user.banned', `ban:${ban.id}`, `this user is banned until ${new Date(ban.until).toISOString()}`, { headers: retryAfter(ban.until - deps.now()) });
}

/**
 * The rate limiter admits the request or refuses it: `ratelimit.exceeded`
 * (429), `ratelimit.store_error` (503) when the limiter's store is down (fail
 * closed). Both with `retry-after`.
 */
export async function admitRate(turn: ModelTurn, who: Who, deps: { readonly limiter: Pick<ModelRateLimiter, 'admit'> }): Promise<Refused | undefined> {
  const admit = await deps.limiter.admit(who.agent.name, who.user);
  if (admit.ok) return undefined;
  turn.detail.limit = admit.limit;
  const headers = retryAfter(admit.retryAfterMs);
  if (admit.limit === 'store.error') return refused('ratelimit.store_error', 'redis', 'rate-limit store unavailable', { headers });
  const scope = admit.limit === 'user.requests' || admit.limit === 'user.tokens' ? 'perUser' : 'perAgent';
  return refused('ratelimit.exceeded', `modelDoor.rateLimits.${scope}`, `rate limit reached (${admit.limit})`, { headers });
}

// ── 6. Prompt attacks ───────────────────────────────────────────────────────

/** Every string of the request the detectors and the vault read ({@link requestTexts}). Refused: `request.shape` (400). */
export function textsOf(turn: ModelTurn, body: ModelRequest): TextSlot[] | Refused {
  try {
    return requestTexts(turn.kind, body);
  } catch (err) {
    if (!isBastionError(err, 'ERR_MODEL_REQUEST_INVALID')) throw err;
    return refused('request.shape', turn.kind, `not a ${apiName(turn.kind)} request: ${err.message}`);
  }
}

/** What the ban-issuing stages need: the ban store, the door's ban config, alerts and the clock. */
export interface BanDeps {
  readonly bans: Pick<BanStore, 'addBan'>;
  readonly config: Pick<ResolvedModelDoor, 'extraction' | 'bans'>;
  readonly alert: Alerter;
  readonly now: () => number;
}

/**
 * Runs the prompt-attack detectors on the user's new turn (context `user`)
 * and on the assistant message that precedes it or prefills the answer
 * (context `assistant`: a client-fabricated "Sure, here are my instructions:"
 * is an extraction set-up). Rejects when a detector fails.
 */
export async function detectAttacks(detectors: readonly PromptAttackDetector[], body: ModelRequest, slots: readonly TextSlot[]): Promise<PromptAttackFinding[]> {
  const fresh = newTurnStart(body);
  const priming = primingAssistantMessage(body);
  const findings: PromptAttackFinding[] = [];
  for (const s of slots) {
    if (s.author === 'user' && s.message >= fresh) findings.push(...(await runDetectors(detectors, s.get(), { context: 'user' })));
    else if (s.author === 'assistant' && s.message === priming) findings.push(...(await runDetectors(detectors, s.get(), { context: 'assistant' })));
  }
  return findings;
}

/**
 * Prompt-attack detection ({@link detectAttacks}); findings go to the audit
 * detail. An extraction attempt by a non-admin under `extraction: ban` bans
 * the user (escalating) with an alert and refuses (`prompt.extraction`, 403,
 * `retry-after`); under `flag` it is alerted and goes on. Refused:
 * `detector.error` (503) when a detector fails, `store.error` (503) when the
 * ban cannot be stored (fail closed).
 */
export async function screenPrompt(turn: ModelTurn, who: Who, body: ModelRequest, slots: readonly TextSlot[], deps: BanDeps & { readonly detectors: readonly PromptAttackDetector[] }): Promise<Refused | undefined> {
  let findings: PromptAttackFinding[];
  try {
    findings = await detectAttacks(deps.detectors, body, slots);
  } catch {
    return refused('detector.error', 'prompt-attacks', 'prompt detector failed');
  }
  if (findings.length > 0) turn.detail.detections = [...new Map(findings.map((f) => [`${f.kind}:${f.rule}`, { kind: f.kind, rule: f.rule }])).values()];
  const extraction = findings.find((f) => f.kind === 'extraction');
  if (extraction === undefined || who.isAdmin) return undefined;
  const agent = who.agent.name;
  const user = who.user;
  if (deps.config.extraction !== 'ban') {
    deps.alert('model.extraction_flag', 'warning', agent, user, `prompt-extraction attempt by user ${user}`, { rule: extraction.rule });
    return undefined;
  }
  const ban = await addBan(turn, who, extraction.rule, 'prompt extraction attempt', deps);
  if (isRefused(ban)) return ban;
  deps.alert('model.extraction_ban', 'critical', agent, user, `user ${user} banned until ${new Date(ban.until).toISOString()} (offence ${ban.level}) for a prompt-extraction attempt`, { rule: extraction.rule, banId: ban.id, level: ban.level });
  return refused('prompt.extraction', extraction.rule, 'this request tried to extract the assistant\'s instructions; the user is banned for a while', { headers: retryAfter(ban.until - deps.now()) });
}

/**
 * An answer to the user repeats the system prompt (the door's
 * PromptLeakTracker said so): handled like an extraction attempt. `ban`: the
 * user is banned (escalating), an alert goes out, and the answer is refused
 * (`prompt.extraction`, rule {@link PROMPT_LEAK_RULE}, 403; withheld, or a
 * stream cut). `flag`: an alert, and undefined (the answer goes on). A ban
 * store failure refuses (`store.error`, 503).
 */
export async function answerLeaked(turn: ModelTurn, who: Pick<Who, 'agent' | 'user'>, deps: BanDeps): Promise<Refused | undefined> {
  turn.detail.promptLeak = true;
  const agent = who.agent.name;
  const user = who.user;
  if (deps.config.extraction !== 'ban') {
    deps.alert('model.prompt_leak_flag', 'warning', agent, user, `an answer to user ${user} repeated the system prompt`, { rule: PROMPT_LEAK_RULE });
    return undefined;
  }
  const ban = await addBan(turn, who, PROMPT_LEAK_RULE, 'answer repeated the system prompt', deps);
  if (isRefused(ban)) return ban;
  deps.alert('model.prompt_leak_ban', 'critical', agent, user, `user ${user} banned until ${new Date(ban.until).toISOString()} (offence ${ban.level}): an answer repeated the system prompt`, { rule: PROMPT_LEAK_RULE, banId: ban.id, level: ban.level });
  return refused('prompt.extraction', PROMPT_LEAK_RULE, 'the answer repeated the assistant\'s instructions and was withheld; the user is banned for a while', { headers: retryAfter(ban.until - deps.now()) });
}

async function addBan(turn: ModelTurn, who: Pick<Who, 'agent' | 'user'>, rule: string, reason: string, deps: BanDeps): Promise<BanRecord | Refused> {
  let ban: BanRecord;
  try {
    ban = await deps.bans.addBan({ agent: who.agent.name, user: who.user, at: deps.now(), rule, reason }, deps.config.bans.durationsMs, deps.config.bans.forgetAfterMs);
  } catch {
    return refused('store.error', 'bans', 'ban store unavailable');
  }
  noteBan(turn, ban);
  return ban;
}

// ── 7. Pasted credentials ───────────────────────────────────────────────────

/**
 * Pasted credentials become personal secrets of this user, placeholders in the
 * text ({@link vaultCredentials}). Returns the values the answer filter must
 * redact. Refused: `vault.unavailable` (no vault open), `vault.error` (the
 * store failed), both 503.
 */
export async function vaultPasted(turn: ModelTurn, who: Who, slots: readonly TextSlot[], deps: { readonly pasted: Pick<PastedSecrets, 'known' | 'vault'> | undefined; readonly vaultNew: boolean }): Promise<string[] | Refused> {
  const values: string[] = [];
  let vaulted: { rule: string; token: string; created: boolean }[];
  try {
    vaulted = await vaultCredentials(slots, who.agent.name, who.user, deps, values);
  } catch (err) {
    return refused(isBastionError(err, 'ERR_VAULT_KEY') ? 'vault.unavailable' : 'vault.error', 'vault', 'the vault could not store a pasted credential');
  }
  if (vaulted.length > 0) turn.detail.vaulted = vaulted;
  return values;
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
export async function vaultCredentials(
  slots: readonly TextSlot[],
  agent: string,
  user: string,
  deps: { readonly pasted: Pick<PastedSecrets, 'known' | 'vault'> | undefined; readonly vaultNew: boolean },
  values: string[],
): Promise<{ rule: string; token: string; created: boolean }[]> {
  const { pasted, vaultNew } = deps;
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

// ── 8. Tools and notes ──────────────────────────────────────────────────────

/** Removes the offered tools the agent may not use (`mayUse`: scope, isolateUsers, Cedar); the removed names go to the audit detail. */
export function filterTools(turn: ModelTurn, body: ModelRequest, mayUse: (name: string) => boolean): void {
  const removed = filterOfferedTools(turn.kind, body, mayUse);
  if (removed.length > 0) turn.detail.removedTools = removed;
}

/**
 * Notes for the model: the hardening text for non-admins, the placeholder
 * explanation when a `<<SECRET_…>>` is present. A streamed OpenAI request asks
 * for the usage chunk (token accounting needs it).
 */
export function addNotes(turn: ModelTurn, who: Who, body: ModelRequest, slots: readonly TextSlot[], hardening: ResolvedModelDoor['hardening']): void {
  const notes: string[] = [];
  if (!who.isAdmin && hardening.enabled) notes.push(hardening.text);
  if (slots.some((s) => s.get().includes('<<SECRET_'))) notes.push(PLACEHOLDER_NOTE);
  if (notes.length > 0) addSystemText(turn.kind, body, notes.join('\n\n'));
  if (body.stream === true && turn.kind === 'openai' && (body.stream_options as { include_usage?: unknown } | undefined)?.include_usage !== true) {
    body.stream_options = { ...(body.stream_options as object | undefined), include_usage: true };
  }
}

// ── 9. The provider key ─────────────────────────────────────────────────────

/** What releasing a named secret needs: the vault and the secrets' config. */
export interface KeyDeps {
  readonly vault: Pick<Vault, 'current' | 'markUsed'> | undefined;
  readonly secrets: ReadonlyMap<string, ResolvedSecretMeta>;
}

/**
 * The value of vault secret `name` for a request by `agent` to `url` in
 * `header`, as the release rule lets it go (src/vault/release.ts: hosts and
 * ports, https or loopback http, the secret's declared header).
 * Undefined when `name` is undefined (keyless provider).
 * @throws BastionError `ERR_VAULT_KEY` (no vault), `ERR_VAULT_SECRET_UNKNOWN`, `ERR_EGRESS_PLACEHOLDER` (not released to this destination)
 */
export async function releaseSecret(deps: KeyDeps, name: string | undefined, url: URL, agent: string, header: 'authorization' | 'x-api-key'): Promise<string | undefined> {
  if (name === undefined) return undefined;
  const vault = deps.vault;
  if (vault === undefined) throw new BastionError('ERR_VAULT_KEY', 'no vault is open');
  const resolved = await vault.current(name);
  if (resolved === undefined) throw new BastionError('ERR_VAULT_SECRET_UNKNOWN', `secret ${name} is not in the vault`);
  const d = release({
    secret: namedSecret(resolved.secret, resolved.value, deps.secrets.get(name)),
    agent,
    granted: true,
    user: null,
    destination: { scheme: url.protocol.slice(0, -1), host: url.hostname, port: Number(url.port) || (url.protocol === 'https:' ? 443 : 80), location: `header:${header}` },
  });
  if (d.effect !== 'allow') throw new BastionError('ERR_EGRESS_PLACEHOLDER', `secret ${name} may not be sent to ${normalizeHost(url.hostname)} (${d.reason})`);
  vault.markUsed(resolved.secret.id);
  return d.value.reveal();
}

/**
 * The provider key of the agent's model, released to the provider URL in the
 * header its wire format uses ({@link releaseSecret}). Refused:
 * `provider.key` (503, `ERR_MODEL_NOT_CONFIGURED`) when the vault, the secret
 * or the release rule says no; the error code goes to the audit detail.
 */
export async function releaseKey(turn: ModelTurn, agent: ResolvedAgent, model: ResolvedModelUpstream, deps: KeyDeps): Promise<{ readonly key: string | undefined } | Refused> {
  try {
    return { key: await releaseSecret(deps, model.secret, model.baseUrl, agent.name, model.provider === 'anthropic' ? 'x-api-key' : 'authorization') };
  } catch (err) {
    turn.detail.code = isBastionError(err) ? err.code : 'ERR_INTERNAL';
    return refused('provider.key', `agents.${agent.name}.model.secret`, 'the provider key is unavailable');
  }
}

// ── 10. Upstream failures ───────────────────────────────────────────────────

/** True for a timeout of undici (headers, body), an AbortSignal.timeout, or Bastion's own. */
export function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || (err instanceof Error && err.name === 'TimeoutError') || isBastionError(err, 'ERR_MODEL_UPSTREAM_TIMEOUT');
}

/**
 * The provider could not be reached or stopped answering: `upstream.timeout`
 * (504, `ERR_MODEL_UPSTREAM_TIMEOUT`) or `otherwise` (502, `ERR_MODEL_UPSTREAM`).
 * The error code goes to the audit detail.
 */
export function upstreamFailed(turn: ModelTurn, err: unknown, otherwise: 'upstream.unreachable' | 'upstream.invalid', message: { timeout: string; other: string }): Refused {
  const timeout = isTimeout(err);
  const r = refused(timeout ? 'upstream.timeout' : otherwise, 'provider', timeout ? message.timeout : message.other, { outcome: timeout ? 'timeout' : 'error' });
  turn.detail.code = otherwise === 'upstream.invalid' && !timeout && isBastionError(err) ? err.code : r.refusal.code;
  // The transport's own error code (ECONNRESET, UND_ERR_SOCKET, ECONNREFUSED): what an operator needs to tell a dead provider from a dropped connection.
  const cause = (err as { code?: unknown } | null)?.code;
  if (typeof cause === 'string' && /^[A-Z][A-Z0-9_]{1,47}$/.test(cause) && cause !== turn.detail.code) turn.detail.cause = cause;
  return r;
}

// ── helpers ─────────────────────────────────────────────────────────────────

function apiName(kind: ProviderKind): string {
  return kind === 'openai' ? 'Chat Completions' : 'Messages';
}

function noteBan(turn: ModelTurn, ban: BanRecord): void {
  turn.detail.ban = { id: ban.id, until: new Date(ban.until).toISOString(), level: ban.level };
}

/** `retry-after` in whole seconds (RFC 9110 §10.2.3), at least 1. */
function retryAfter(ms: number): Record<string, string> {
  return { 'retry-after': String(Math.max(1, Math.ceil(ms / 1000))) };
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
