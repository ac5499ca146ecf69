/**
 * The stages of a `tools/call` through the tool door, each a function of a
 * typed call and the narrow dependencies it uses, returning the next call (with
 * what the stage learned) or a {@link Refused} (a kernel {@link Refusal} whose
 * code comes from the closed table in src/door/reasons.ts, plus the text the
 * agent reads). `GatewaySession#callTool` (src/mcp/session.ts) composes them:
 *
 *   resolveTool → decide (labels, taint, provenance: src/provenance/) → validateArguments
 *   → guardPaths → spendBudget → noteArguments → holdForApproval → releasePasted
 *   → execute (upstream: the session; ability: {@link runAbility}) → {@link screenResult}
 *   → {@link observeResult} (taint, values, injection detector) → audit record
 *
 * Policy comes before the schema so that a forbidden tool answers exactly like
 * an unknown one (its schema errors would tell the agent that it exists). The
 * audit record is written by the session at the transport boundary when the
 * response goes out (durable before the response); the stages only fill in
 * {@link RequestAudit}.
 *
 * No stage touches a socket: test/mcp/call-stages.test.ts runs each with plain
 * objects as dependencies.
 */
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AuditEvent } from '../audit/types.ts';
import type { CheckOutcome, HoldOutcome, HoldRequest } from '../approvals/queue.ts';
import type { ResolvedAbility, ResolvedAgent, ResolvedUpstream } from '../config/types.ts';
import { deny, type Decision } from '../decision.ts';
import { redactDeep } from '../detect/secrets.ts';
import { refusalOf, type Refusal } from '../door/refusal.ts';
import type { BastionErrorCode } from '../errors.ts';
import type { AbilityRunner } from '../abilities/runner.ts';
import { ABILITIES_UPSTREAM } from '../abilities/catalogue.ts';
import { SANDBOX_UPSTREAM } from '../sandbox/tools.ts';
import { pathAuditDetail, pathRefusalText, type PathScope, type PathVerdict } from '../policy/paths.ts';
import type { PolicyFacts, PolicyRequest } from '../policy/engine.ts';
import { detectPromptAttacks } from '../detect/prompt-attacks.ts';
import { policyFacts, provenanceByArgument, type CallFacts } from '../provenance/facts.ts';
import type { ProvenanceTracker } from '../provenance/tracker.ts';
import { MAX_TEXT_CHARS, newReading, readJson, readText } from '../provenance/values.ts';
import { globRegExp } from '../policy/tool-meta.ts';
import { NO_VALUES, type RedactionSet } from '../redact/engine.ts';
import { findPastedTokens, PASTED_PLACEHOLDER_PATTERN, type PastedSecrets } from '../vault/pasted.ts';
import { pastedSecret, release } from '../vault/release.ts';
import type { Catalogue, Entry } from './catalogue.ts';
import { sanitizeResult, type SanitizeOptions } from './sanitize.ts';

/** The audit record being built for one request; handlers and stages fill it in. */
export interface RequestAudit {
  readonly started: number;
  readonly time: string;
  readonly method: string;
  target: string | null;
  decision: Decision;
  argsDigest: string | null;
  args: unknown;
  outcome: AuditEvent['outcome'] | null;
  detail: Record<string, unknown>;
}

/** One `tools/call` as it enters the stages: who, what, and the record being built. */
export interface ToolCall {
  readonly agent: Pick<ResolvedAgent, 'name' | 'scope' | 'isolateUsers'>;
  /** The session's end user (asserted or proven), or null. */
  readonly user: string | null;
  /** True when the end user was proven by a token (config `users.token`). */
  readonly userVerified: boolean;
  /** The MCP session id (`""` before one exists). */
  readonly session: string;
  /** The conversation the call belongs to (header, else the session id), or null. */
  readonly conversation: string | null;
  /** The tool name the agent called (the exposed name). */
  readonly name: string;
  readonly args: Record<string, unknown>;
  /** RFC 8785 canonical JSON of `args`: the digest's input and the placeholder scan's text. */
  readonly canonicalArgs: string;
  /** SHA-256 hex of `canonicalArgs`. */
  readonly argsDigest: string;
  /** Short reference shown to the agent and recorded (`detail.ref`). */
  readonly ref: string;
  readonly record: RequestAudit;
  /** Aborted when the agent cancels. */
  readonly signal: AbortSignal;
  /** Called while an approval is pending (ms waited, approval id), to send progress. */
  readonly onApprovalWait?: (waitedMs: number, approvalId: string) => void;
}

/** After {@link resolveTool}: the catalogue entry and, for an ability, its config. */
export interface ResolvedCall extends ToolCall {
  readonly entry: Entry<Tool>;
  /** The ability's config when the tool is an ability (it may be missing: then execution fails closed). */
  readonly ability: ResolvedAbility | undefined;
  readonly isAbility: boolean;
  /** The upstream's config (undefined for abilities). */
  readonly upstream: ResolvedUpstream | undefined;
}

/** After {@link decide}: the policy's allow or approve, and the facts it was decided on (when provenance is tracked). */
export interface DecidedCall extends ResolvedCall {
  readonly decision: Decision;
  readonly facts?: CallFacts;
}

/** After {@link noteArguments}: the redacted arguments, computed at most once, and the approval preview when provenance is traced. */
export interface NotedCall extends DecidedCall {
  readonly redacted: () => unknown;
  readonly preview?: () => string;
}

/** After {@link releasePasted}: the arguments to send and the clear values swapped into them. */
export interface ReleasedCall extends NotedCall {
  readonly callArgs: Record<string, unknown>;
  /** Clear values of pasted secrets swapped in: redacted from the result in every form. */
  readonly swapped: readonly string[];
}

/** A stage's refusal: the kernel's refusal value and the text the agent reads. */
export interface Refused {
  readonly refused: Refusal;
  readonly text: string;
  /** Recorded with outcome `timeout` (an approval that timed out or was cancelled). */
  readonly timeout?: boolean;
}

/** True when a stage refused. */
export function isRefused(x: object): x is Refused {
  return 'refused' in x;
}

/** The text an unknown, hidden or forbidden tool is refused with (the same for all three). */
export const DENIED_TEXT = 'Bastion refused this call: the tool is not available to this agent';

function refuse(decision: Decision, text: string, timeout = false): Refused {
  return { refused: refusalOf(decision, 'tool'), text, ...(timeout ? { timeout } : {}) };
}

/** A short, fixed tool error for the agent, `text (CODE, ref REF)`; the detail lives in the audit record. */
export function toolError(code: BastionErrorCode, text: string, ref: string): CallToolResult {
  return {
    content: [{ type: 'text', text: `${text} (${code}, ref ${ref})` }],
    isError: true,
    _meta: { 'bastion/error': { code, ref } },
  };
}

/** Records a refusal on the call's audit record (decision, code, outcome) and renders it as a tool error. */
export function renderRefusal(call: ToolCall, r: Refused): CallToolResult {
  call.record.decision = r.refused.decision;
  call.record.detail.code = r.refused.code;
  if (r.timeout === true) call.record.outcome = 'timeout';
  return toolError(r.refused.code, r.text, call.ref);
}

// ------------------------------------------------------------------ 1. resolve

/** What {@link resolveTool} needs: the session's catalogue and the configured upstreams and abilities. */
export interface ResolveDeps {
  /** The session's catalogue (a partial one, after an upstream failed, is not cached; the failures go to `record`). */
  catalogue(record: RequestAudit): Promise<Catalogue>;
  /** True when the catalogue is cached (complete): a miss is then final, else it is retried once. */
  cached(): boolean;
  readonly upstreams: ReadonlyMap<string, ResolvedUpstream>;
  readonly abilities: ReadonlyMap<string, ResolvedAbility>;
  /**
   * Would the policy let this agent call `name` of `upstream` (a listing decision)? With it, a
   * miss whose upstream failed to start is refused as `upstream.unreachable`
   * (ERR_UPSTREAM_UNAVAILABLE) instead of `tool.unknown`, for tools the agent may call only.
   */
  mayCall?(name: string, upstream: string): boolean;
}

/** Text of a call to a tool whose upstream could not be started or reached. */
export const UNAVAILABLE_TEXT = 'Bastion refused this call: the tool\'s upstream is unavailable';

/**
 * Finds the tool in the session's catalogue. An unknown (or hidden by a name
 * collision) tool is refused as `tool.unknown`, answered exactly like a
 * forbidden one. A miss in a partial catalogue is retried once.
 */
export async function resolveTool(call: ToolCall, deps: ResolveDeps): Promise<ResolvedCall | Refused> {
  let cat = await deps.catalogue(call.record);
  let entry = cat.tools.get(call.name);
  if (entry === undefined && !deps.cached()) {
    cat = await deps.catalogue(call.record);
    entry = cat.tools.get(call.name);
  }
  if (entry === undefined) {
    // The catalogue recorded which upstreams failed; a tool the agent may call there is unavailable, not unknown.
    const failures = call.record.detail.upstreamFailures as Record<string, string> | undefined;
    const sep = call.name.indexOf('__');
    const upstream = sep > 0 ? call.name.slice(0, sep) : '';
    const failed = failures !== undefined && Object.hasOwn(failures, upstream) && failures[upstream] !== 'ERR_OAUTH_CONSENT';
    if (failed && deps.upstreams.get(upstream)?.prefix === true && deps.mayCall?.(call.name, upstream) === true) {
      call.record.detail.upstream = upstream;
      return refuse(deny('upstream.unreachable', `upstreams.${upstream}`), UNAVAILABLE_TEXT);
    }
    return refuse(deny('tool.unknown', 'catalogue'), DENIED_TEXT);
  }
  call.record.detail.upstream = entry.upstream;
  const isAbility = entry.upstream === ABILITIES_UPSTREAM;
  return {
    ...call,
    entry,
    isAbility,
    ability: isAbility ? deps.abilities.get(entry.original) : undefined,
    upstream: isAbility ? undefined : deps.upstreams.get(entry.upstream),
  };
}

// ------------------------------------------------------------------ 2. decide

/** What {@link decide} needs: the Cedar policy and the tools' scope metadata. */
export interface DecideDeps {
  /** The policy engine's `authorize` (Cedar). A throw is a deny (`policy.error`). */
  authorize(req: PolicyRequest): Decision;
  /** The call's labels, taint and provenance (src/provenance/facts.ts); absent: none traced. A throw is a deny (`provenance.error`). */
  facts?(call: ResolvedCall): CallFacts;
  /** Why the tool is hidden from this agent (config `tools`: scope, cross-user), if it is. */
  hiddenReason?(agent: Pick<ResolvedAgent, 'scope' | 'isolateUsers'>, tool: string): 'tool.internal_scope' | 'tool.cross_user' | undefined;
}

/**
 * The policy decision (Cedar) for the call, then the tool metadata (scope,
 * cross-user). Allow and approve go on (the decision is recorded); a deny, an
 * evaluation error (fail closed) or a hidden tool is refused like an unknown tool.
 */
export function decide(call: ResolvedCall, deps: DecideDeps): DecidedCall | Refused {
  let decision: Decision;
  let facts: CallFacts | undefined;
  try {
    facts = deps.facts?.(call);
  } catch {
    call.record.decision = deny('provenance.error', 'provenance');
    return refuse(call.record.decision, DENIED_TEXT);
  }
  // The facts as Cedar reads them; their per-argument provenance also goes on the record (computed once).
  const policy = facts === undefined ? undefined : policyFacts(facts);
  if (facts !== undefined && policy !== undefined) noteFacts(call.record, facts, policy);
  try {
    decision = deps.authorize({
      agent: call.agent.name,
      action: 'tools/call',
      resource: { kind: 'tool', id: call.entry.exposed, upstream: call.entry.upstream },
      args: call.args,
      argsDigest: call.argsDigest,
      session: call.session,
      listing: false,
      ...(policy !== undefined ? { facts: policy } : {}),
    });
  } catch {
    decision = deny('policy.error', 'cedar');
  }
  call.record.decision = decision;
  const hidden = decision.effect === 'deny' ? undefined : deps.hiddenReason?.(call.agent, call.entry.exposed);
  if (hidden !== undefined) return refuse(deny(hidden, 'tools'), DENIED_TEXT);
  // A short form whose fallback is a tool error: the tool is visible, so the model may learn why.
  if (decision.reason === 'policy.guard') return refuse(decision, guardText(decision.rule, facts));
  if (decision.effect === 'deny') return refuse(decision, DENIED_TEXT);
  return { ...call, decision, ...(facts !== undefined ? { facts } : {}) };
}

/** Labels, taint and per-argument provenance on the audit record (argument names and origins, never values). */
function noteFacts(record: RequestAudit, f: CallFacts, policy: PolicyFacts): void {
  record.detail.labels = { source: f.label.source, effects: f.label.effects, rule: f.label.rule, ...(f.label.tightenedBy.length > 0 ? { tightenedBy: f.label.tightenedBy } : {}) };
  if (f.taint.tainted) record.detail.taint = { flagged: f.taint.flagged, sources: f.taint.sources, ...(f.taint.flaggedBy.length > 0 ? { flaggedBy: f.taint.flaggedBy } : {}) };
  if (f.leaves.length > 0) record.detail.provenance = policy.provenance;
}

/** What the model reads when a short form with fallback `error` holds: which arguments, from where (names only), and what to do. */
export function guardText(rule: string, f: CallFacts | undefined): string {
  const doubtful = (f?.leaves ?? []).filter((l) => l.from === 'untrusted' || l.from === 'model');
  const names = [...new Set(doubtful.map((l) => `${l.name} (${l.from === 'untrusted' ? 'from content a tool returned' : 'not from the user'})`))].slice(0, 8);
  const why = names.length > 0 ? `the values of ${names.join(', ')} were not given by the user` : 'the call is not allowed in this conversation as it stands';
  const sources = f !== undefined && f.taint.sources.length > 0 ? `; this conversation read third-party content from ${f.taint.sources.slice(0, 5).join(', ')}` : '';
  return `Bastion held this call (${rule}): ${why}${sources}. Ask the user to confirm these values in their own words, then call again.`;
}

// ------------------------------------------------------------------ budgets

/** Compiled `limits[].tool` patterns (config strings: bounded by the config), so a call does not compile them again. */
const LIMIT_PATTERNS = new Map<string, RegExp>();

function limitPattern(glob: string): RegExp {
  let re = LIMIT_PATTERNS.get(glob);
  if (re === undefined) LIMIT_PATTERNS.set(glob, (re = globRegExp(glob)));
  return re;
}

/** What {@link spendBudget} needs: the tracker and the agent's limits. */
export interface BudgetDeps {
  readonly tracker: Pick<ProvenanceTracker, 'spend'>;
  readonly limits: readonly { readonly id: string; readonly tool: string; readonly calls?: number; readonly bytes?: number; readonly fallback: 'deny' | 'approve' | 'error' }[];
  /** The conversation's key, or null when the call names none (then the agent and user form one). */
  readonly conversation: string;
}

/**
 * Per-conversation call and volume limits (`agents.X.limits`): spends one call
 * and the canonical arguments' bytes from every budget whose pattern matches
 * the tool. Over a budget: its fallback (`deny`, `error`: refused
 * `limit.conversation`; `approve`: held for an admin).
 */
export function spendBudget<C extends DecidedCall>(call: C, deps: BudgetDeps): C | Refused {
  const bytes = Buffer.byteLength(call.canonicalArgs);
  for (const limit of deps.limits) {
    if (!limitPattern(limit.tool).test(call.entry.exposed)) continue;
    if (deps.tracker.spend(deps.conversation, limit.id, bytes, limit)) continue;
    call.record.detail.limit = limit.id;
    if (limit.fallback === 'approve') {
      const decision: Decision = { effect: 'approve', reason: 'policy.approval', rule: limit.id };
      call.record.decision = decision;
      return { ...call, decision };
    }
    const what = [limit.calls !== undefined ? `${limit.calls} calls` : '', limit.bytes !== undefined ? `${limit.bytes} bytes of arguments` : ''].filter(Boolean).join(' or ');
    return refuse(deny('limit.conversation', limit.id), `Bastion refused this call: this conversation has used its budget of ${what} for ${limit.tool} (${limit.id})`);
  }
  return call;
}

// ------------------------------------------------------------------ observe results

/** What {@link observeResult} needs: the tracker and the call's conversation key. */
export interface ObserveDeps {
  readonly tracker: Pick<ProvenanceTracker, 'record' | 'flag'>;
  readonly conversation: string;
  /** Most forms recorded from one result. */
  readonly maxForms?: number;
  /** False: run the detector only, record no value (no policy of the agent reads provenance). Default true. */
  readonly record?: boolean;
}

/** Most forms recorded from one result by default (a result reading past it flags the conversation: what was not recorded would pass as made up by the model). */
export const MAX_RESULT_FORMS = 10_000;

/**
 * Records what a tool result showed the agent (after redaction): its values as
 * `trusted` or `untrusted` by the tool's source label (an untrusted one taints
 * the conversation), and runs the injection detector (context `tool_output`)
 * over its texts; a finding, or hidden characters found by the screen stage,
 * flags the conversation (a stronger taint) and is recorded
 * (`detail.injection.rules`). Bastion's own refusals are not results.
 * Never throws into the call: a failure flags the conversation (fail closed).
 */
export function observeResult(call: DecidedCall, result: CallToolResult, deps: ObserveDeps): void {
  const meta = result._meta as Record<string, unknown> | undefined;
  if (meta !== undefined && meta['bastion/error'] !== undefined && call.record.detail.code !== 'ERR_ABILITY_REQUEST') return;
  const texts: string[] = [];
  for (const c of Array.isArray(result.content) ? result.content : []) {
    if (c !== null && typeof c === 'object' && (c as { type?: unknown }).type === 'text' && typeof (c as { text?: unknown }).text === 'string') texts.push((c as { text: string }).text);
    else if (c !== null && typeof c === 'object' && (c as { type?: unknown }).type === 'resource') {
      const r = (c as { resource?: { text?: unknown } }).resource;
      if (r !== undefined && typeof r.text === 'string') texts.push(r.text);
    }
  }
  observeContent(call.record, { texts, structured: result.structuredContent, source: call.facts?.label.source ?? 'untrusted', origin: call.entry.exposed }, deps);
}

/** What an upstream returned to the agent, as {@link observeContent} reads it. */
export interface ObservedContent {
  /** Its texts (tool result text blocks, resource contents, prompt messages). */
  readonly texts: readonly string[];
  /** Structured content, if any. */
  readonly structured?: unknown;
  /** The source label it is recorded with. */
  readonly source: 'trusted' | 'untrusted';
  /** Where it came from (a tool's exposed name, `resource:<upstream>`, `prompt:<name>`): the taint's source. */
  readonly origin: string;
}

/**
 * The observe stage for any content an upstream returns to the agent (tool
 * results, resources, prompts): records its values and runs the injection
 * detector, as {@link observeResult} describes. Never throws.
 */
export function observeContent(record: RequestAudit, content: ObservedContent, deps: ObserveDeps): void {
  const { texts, structured, source, origin } = content;
  try {
    if (deps.record !== false) {
      const reading = newReading();
      const budget = deps.maxForms ?? MAX_RESULT_FORMS;
      for (const t of texts) readText(t, reading, budget);
      if (structured !== undefined) readJson(structured, reading, budget);
      deps.tracker.record(deps.conversation, source, reading, origin);
      // Fail closed: values past the budget (or past MAX_TEXT_CHARS) were not recorded, so an argument
      // taken from them would look made up by the model; the stronger taint lets policy hold those.
      if (reading.text.size + reading.labels.size + reading.fields.size + reading.handles.size >= budget || texts.some((t) => t.length > MAX_TEXT_CHARS)) {
        record.detail.provenanceTruncated = true;
        deps.tracker.flag(deps.conversation, ['provenance.truncated'], origin);
      }
    }
    const rules = new Set<string>();
    for (const t of texts) for (const f of detectPromptAttacks(t, { context: 'tool_output' })) rules.add(f.rule);
    if (structured !== undefined) for (const f of detectPromptAttacks(JSON.stringify(structured), { context: 'tool_output' })) rules.add(f.rule);
    if (Array.isArray(record.detail.hiddenCharacters) && record.detail.hiddenCharacters.length > 0) rules.add('hidden.characters');
    if (rules.size > 0) {
      record.detail.injection = { rules: [...rules] };
      deps.tracker.flag(deps.conversation, [...rules], origin);
    }
  } catch {
    record.detail.injection = { rules: ['provenance.error'] };
    deps.tracker.flag(deps.conversation, ['provenance.error'], origin);
  }
}

/** Every string under a `text` key of a protocol result (resource contents, prompt messages), at most `max`. */
export function textsOf(result: unknown, max = 1000): string[] {
  const out: string[] = [];
  const walk = (v: unknown, depth: number): void => {
    if (out.length >= max || depth > 16 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (k === 'text' && typeof x === 'string') out.push(x);
      else walk(x, depth + 1);
    }
  };
  walk(result, 0);
  return out;
}

// ------------------------------------------------------------------ 3. validate

/** What {@link validateArguments} needs: the ajv validator. */
export interface ValidateDeps {
  /** Error messages, or null when `args` match `schema`. */
  validate(schema: unknown, args: unknown): string[] | null;
}

/** The arguments against the tool's own input schema (`args.schema`, `ERR_ARGS_INVALID`). */
export function validateArguments<C extends DecidedCall>(call: C, deps: ValidateDeps): C | Refused {
  let invalid: string[] | null;
  try {
    invalid = deps.validate(call.entry.item.inputSchema, call.args);
  } catch {
    invalid = ["the tool's input schema cannot be compiled"];
  }
  if (invalid === null) return call;
  call.record.detail.schemaErrors = invalid;
  return refuse(deny('args.schema', 'inputSchema'), `Bastion refused this call: arguments do not match the tool's input schema: ${invalid.join('; ')}`);
}

// ------------------------------------------------------------------ 4. path guard

/** What {@link guardPaths} needs: the path guard's argument check. */
export interface PathDeps {
  checkArguments(scope: PathScope | undefined, tool: string, inputSchema: unknown, args: unknown): Promise<PathVerdict>;
}

/**
 * The path guard over the arguments (src/policy/paths.ts). Not for abilities:
 * their parameters fill a URL, never a file path. The record names the
 * argument (pointer, never the value).
 */
export async function guardPaths<C extends ResolvedCall>(call: C, deps: PathDeps): Promise<C | Refused> {
  // Abilities fill URLs; the sandbox's tools have their own path check per command (src/sandbox/stages.ts).
  if (call.isAbility || (call.entry.upstream === SANDBOX_UPSTREAM && call.upstream === undefined)) return call;
  const pv = await deps.checkArguments(call.upstream, call.entry.original, call.entry.item.inputSchema, call.args);
  if (pv.decision.effect === 'allow') return call;
  Object.assign(call.record.detail, pathAuditDetail(pv));
  return refuse(pv.decision, pathRefusalText(pv));
}

// ------------------------------------------------------------------ arguments for the record

/**
 * The arguments with credentials redacted, computed at most once: for the audit
 * record (config `audit.recordArguments: redacted`) and the approval preview.
 */
export function noteArguments(call: DecidedCall, recordArguments: string): NotedCall {
  let redactedArgs: unknown;
  const redacted = (): unknown => (redactedArgs ??= redactDeep(call.args).value);
  const facts = call.facts;
  if (recordArguments === 'redacted') call.record.args = redacted();
  return { ...call, redacted, ...(facts !== undefined ? { preview: () => approvalPreview(redacted(), facts) } : {}) };
}

/**
 * The approval preview of a call with traced arguments: the redacted arguments,
 * where each argument's values came from, and the conversation's taint, as one
 * JSON object (capped at 4096 characters).
 */
export function approvalPreview(redacted: unknown, f: CallFacts): string {
  return JSON.stringify({
    arguments: redacted,
    provenance: provenanceByArgument(f),
    conversation: { tainted: f.taint.tainted, flagged: f.taint.flagged, sources: f.taint.sources },
  }).slice(0, 4096);
}

// ------------------------------------------------------------------ 5. approval hold

/** What {@link holdForApproval} needs: the approval queue's hold. */
export interface HoldDeps {
  /** @throws on a store failure (`ERR_STORE`): the call is refused, fail closed. */
  hold(req: HoldRequest): Promise<HoldOutcome>;
}

/**
 * Holds an `approve` decision until an administrator decides (bound to agent,
 * end user, tool and argument digest). Denied, timed out and cancelled holds
 * refuse; a store failure refuses as `store.error` (fail closed). An allow
 * passes untouched.
 */
export async function holdForApproval(call: NotedCall, deps: HoldDeps): Promise<NotedCall | Refused> {
  if (call.decision.effect !== 'approve') return call;
  const record = call.record;
  // The policy that asked for the approval stays on the record, whatever the admin decides.
  record.detail.heldBy = call.decision.rule;
  let outcome: HoldOutcome;
  try {
    outcome = await deps.hold({
      agent: call.agent.name,
      user: call.user,
      tool: call.entry.exposed,
      argsDigest: call.argsDigest,
      argsPreview: call.preview?.() ?? JSON.stringify(call.redacted()).slice(0, 4096),
      signal: call.signal,
      onCreated: (id) => {
        record.detail.approvalId = id;
      },
      ...(call.onApprovalWait === undefined ? {} : { onProgress: call.onApprovalWait }),
    });
  } catch {
    return refuse(deny('store.error', 'approvals'), 'Bastion refused this call: the approval could not be recorded');
  }
  const id = outcome.approval.id;
  record.detail.approvalId = id;
  record.detail.approval = outcome.status;
  if (outcome.status === 'denied') {
    const why = outcome.approval.reason ? `: ${outcome.approval.reason.slice(0, 200)}` : '';
    return refuse(deny('approval.denied', `approval:${id}`), `An administrator denied this call${why}`);
  }
  if (outcome.status === 'timeout' || outcome.status === 'cancelled') {
    return refuse(
      deny(outcome.status === 'timeout' ? 'approval.timeout' : 'approval.cancelled', `approval:${id}`),
      `No administrator approved this call in time (approval ${id}); once it is approved, the same call will run`,
      true,
    );
  }
  const decision: Decision = { effect: 'approve', reason: outcome.status === 'claimed' ? 'approval.claimed' : 'approval.granted', rule: call.decision.rule };
  record.decision = decision;
  return { ...call, decision };
}

// ------------------------------------------------------------------ 5b. approval for clients that come back

/** What a sealed request state is bound to (src/mcp/request-state.ts). */
export interface ApprovalStateBinding {
  readonly agent: string;
  readonly user: string | null;
  readonly tool: string;
  readonly argsDigest: string;
}

/** What {@link deferApproval} needs: the queue's non-waiting check and the request-state sealer. */
export interface DeferDeps {
  /** @throws on a store failure (`ERR_STORE`): the call is refused, fail closed. */
  check(req: HoldRequest, approvalId?: string): Promise<CheckOutcome>;
  readonly states: {
    seal(binding: ApprovalStateBinding, approvalId: string, upstream?: string | null): Promise<string>;
    open(state: unknown, binding: ApprovalStateBinding): Promise<{ ok: true; claims: { readonly approvalId: string; readonly upstream: string | null } } | { ok: false; reason: string }>;
  };
}

/** The call waits for a human: answer `input_required` with this sealed state (MCP 2026-07-28 multi-round-trip requests). */
export interface InputRequired {
  readonly inputRequired: { readonly approvalId: string; readonly requestState: string };
}

/** True when {@link deferApproval} asks the client to come back. */
export function isInputRequired(x: object): x is InputRequired {
  return 'inputRequired' in x;
}

/** The text of each request-state refusal (src/mcp/request-state.ts reasons). */
export const STATE_TEXT: Readonly<Record<string, string>> = {
  'state.malformed': 'Bastion refused this call: requestState is malformed',
  'state.forged': 'Bastion refused this call: requestState was not issued by this gateway',
  'state.expired': 'Bastion refused this call: requestState has expired; call again without it',
  'state.rebound': 'Bastion refused this call: requestState was issued for another call',
  'state.replayed': 'Bastion refused this call: requestState was already used',
  'state.store_error': 'Bastion refused this call: requestState cannot be checked now',
};

/**
 * The approval stage for stateless (MCP 2026-07-28) clients: never waits. With
 * no `approvalId` (the call came without a sealed state), claims an earlier grant
 * or creates (or finds) the pending approval; with one (from a state the caller
 * opened: sealed, bound to agent, end user, tool and argument digest, expiring,
 * single use), reads that approval. Approved: the call goes on, once (the grant
 * is consumed). Pending: the client is asked to come back with a fresh sealed
 * state. Denied or expired: refused.
 */
export async function deferApproval(call: NotedCall, deps: DeferDeps, approvalId: string | undefined): Promise<NotedCall | Refused | InputRequired> {
  if (call.decision.effect !== 'approve') return call;
  const record = call.record;
  record.detail.heldBy = call.decision.rule;
  const binding: ApprovalStateBinding = { agent: call.agent.name, user: call.user, tool: call.entry.exposed, argsDigest: call.argsDigest };
  let outcome: CheckOutcome;
  try {
    outcome = await deps.check(
      {
        agent: binding.agent,
        user: binding.user,
        tool: binding.tool,
        argsDigest: binding.argsDigest,
        argsPreview: call.preview?.() ?? JSON.stringify(call.redacted()).slice(0, 4096),
        onCreated: (id) => {
          record.detail.approvalId = id;
        },
      },
      approvalId,
    );
  } catch {
    return refuse(deny('store.error', 'approvals'), 'Bastion refused this call: the approval could not be recorded');
  }
  const id = outcome.approval.id;
  record.detail.approvalId = id;
  record.detail.approval = outcome.status;
  if (outcome.status === 'pending') {
    let sealed: string;
    try {
      sealed = await deps.states.seal(binding, id);
    } catch {
      return refuse(deny('state.store_error', 'requestState'), STATE_TEXT['state.store_error'] as string);
    }
    return { inputRequired: { approvalId: id, requestState: sealed } };
  }
  if (outcome.status === 'denied') {
    const why = outcome.approval.reason ? `: ${outcome.approval.reason.slice(0, 200)}` : '';
    return refuse(deny('approval.denied', `approval:${id}`), `An administrator denied this call${why}`);
  }
  if (outcome.status === 'timeout' || outcome.status === 'cancelled') {
    return refuse(deny('approval.timeout', `approval:${id}`), `No administrator approved this call in time (approval ${id})`, true);
  }
  const decision: Decision = { effect: 'approve', reason: outcome.status === 'claimed' ? 'approval.claimed' : 'approval.granted', rule: call.decision.rule };
  record.decision = decision;
  return { ...call, decision };
}

// ------------------------------------------------------------------ 6. release pasted secrets

/** What {@link releasePasted} needs: the end users' pasted secrets and whether user tokens are configured. */
export interface ReleaseDeps {
  /** Absent without a vault: any placeholder then fails closed (`vault.unavailable`). */
  readonly pasted?: Pick<PastedSecrets, 'find' | 'markUsed'> | undefined;
  /** Config `users.token` is set: only a proven end user may use a pasted secret. */
  readonly usersToken: boolean;
}

/**
 * Swaps the `<<SECRET_…>>` placeholders in the arguments for their values, each
 * released by the release rule (src/vault/release.ts) for this agent and end
 * user, to every host the tool sends credentials to (an upstream's
 * `secretHosts`, an ability's host). Any placeholder that is unknown, another
 * user's, unbound or foreign to those hosts refuses the whole call; so does an
 * unverified user when `users.token` is configured, a missing vault or a vault
 * error.
 */
export async function releasePasted(call: NotedCall, deps: ReleaseDeps): Promise<ReleasedCall | Refused> {
  const tokens = findPastedTokens(call.canonicalArgs);
  if (tokens.length === 0) return { ...call, callArgs: call.args, swapped: [] };
  // The sandbox's tools send no credentials anywhere: a pasted secret's value never enters a sandbox.
  const [hosts, rule] = call.isAbility
    ? [call.ability === undefined ? [] : [call.ability.host], `abilities.${call.ability?.name ?? call.entry.original}.url`]
    : call.upstream === undefined && call.entry.upstream === SANDBOX_UPSTREAM
      ? [[], 'sandbox']
      : [call.upstream?.secretHosts ?? [], `upstreams.${call.entry.upstream}.secretHosts`];
  const detail = call.record.detail;
  const refusePasted = (d: Decision): Refused =>
    refuse(d, `Bastion refused this call: a <<SECRET_…>> placeholder in the arguments may not be used here (${d.reason})`);
  const pasted = deps.pasted;
  if (pasted === undefined) return refusePasted(deny('vault.unavailable', 'vault'));
  // A pasted secret belongs to an end user: with user tokens configured, only a proven user may use one.
  if (deps.usersToken && !call.userVerified) {
    detail.placeholders = tokens.map((token) => ({ token }));
    return refusePasted(deny('user.unverified', 'users.token'));
  }
  const byToken = new Map<string, string>();
  const used: { token: string; rule: string }[] = [];
  try {
    for (const token of tokens) {
      if (hosts.length === 0) {
        detail.placeholders = [{ token }];
        return refusePasted(deny('release.foreign_host', rule));
      }
      const found = await pasted.find(token);
      if (found === undefined) {
        detail.placeholders = [{ token }];
        return refusePasted(deny('placeholder.unknown', rule));
      }
      // The release rule, for every host the tool sends credentials to.
      for (const host of hosts) {
        const d = release({ secret: pastedSecret(found.secret, found.value), agent: call.agent.name, granted: false, user: call.user, destination: { scheme: 'https', host, port: 443, location: 'arguments' } });
        if (d.effect !== 'allow') {
          detail.placeholders = [{ token, rule: found.secret.rule }];
          return refusePasted(deny(d.reason, rule));
        }
        byToken.set(token, d.value.reveal());
      }
      if (!used.some((u) => u.token === token)) used.push({ token, rule: found.secret.rule });
      pasted.markUsed(found.secret.id);
    }
  } catch {
    return refusePasted(deny('vault.error', 'vault'));
  }
  detail.placeholders = used;
  const swap = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(PASTED_PLACEHOLDER_PATTERN, (m, t: string) => byToken.get(t) ?? m);
    if (Array.isArray(v)) return v.map(swap);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, swap(x)]));
    return v;
  };
  return { ...call, callArgs: swap(call.args) as Record<string, unknown>, swapped: [...byToken.values()] };
}

// ------------------------------------------------------------------ 8. screen + redact

/** Returned by {@link screenResult} instead of a result over `output.maxResultBytes`. */
export const TOO_LARGE: unique symbol = Symbol('too large');

/**
 * Redacts and flags a result on its way to the agent (src/mcp/sanitize.ts, the
 * redaction engine of src/redact/ for `known` values in every form and split
 * across fields): redactions and hidden characters go to the record. Returns
 * {@link TOO_LARGE} instead when it is over `output.maxResultBytes` (recorded as
 * `ERR_RESULT_TOO_LARGE`, outcome error).
 */
export function screenResult(result: unknown, record: RequestAudit, output: SanitizeOptions, known: RedactionSet = NO_VALUES): unknown {
  const out = sanitizeResult(result, output, known);
  if (out.redactions > 0) record.detail.redactions = { count: out.redactions, rules: out.rules };
  if (out.hidden.length > 0) record.detail.hiddenCharacters = out.hidden;
  if (out.tooLarge) {
    record.detail.code = 'ERR_RESULT_TOO_LARGE';
    record.detail.resultBytes = out.bytes;
    record.outcome = 'error';
    return TOO_LARGE;
  }
  return out.value;
}

/** {@link screenResult} for a tool result: too large becomes a fixed tool error. */
export function screenToolResult(call: ToolCall, result: unknown, output: SanitizeOptions, known: RedactionSet = NO_VALUES): CallToolResult {
  const out = screenResult(result, call.record, output, known);
  if (out === TOO_LARGE) return toolError('ERR_RESULT_TOO_LARGE', 'Bastion withheld the result: it is larger than allowed', call.ref);
  return out as CallToolResult;
}

// ------------------------------------------------------------------ 6b. audit gate

/** What {@link checkAuditGate} needs: the audit log's write gate (`AuditStep.writable`). */
export interface AuditGateDeps {
  readonly writable: boolean;
}

/** The text of a call refused because its audit record cannot be written. */
export const AUDIT_UNAVAILABLE_TEXT = 'Bastion refused this call: its audit record cannot be written';

/**
 * Checked right before execution (after any approval wait): while the audit
 * log's last commit failed, the call is refused as `audit.write_failed`
 * (`ERR_AUDIT_WRITE`) and the upstream or ability is never contacted: an action
 * that cannot be recorded does not happen. The refusal's own record goes the
 * usual way (and fails too while the store is down: counted and alerted).
 */
export function checkAuditGate<C extends ToolCall>(call: C, deps: AuditGateDeps): C | Refused {
  return deps.writable ? call : refuse(deny('audit.write_failed', 'audit'), AUDIT_UNAVAILABLE_TEXT);
}

// ------------------------------------------------------------------ 7. execute (ability)

/** What {@link runAbility} needs: the ability runner (absent: fail closed) and the result cap. */
export interface AbilityDeps {
  readonly runner?: Pick<AbilityRunner, 'run'> | undefined;
  readonly output: SanitizeOptions;
}

/**
 * Executes an ability through its runner (src/abilities/runner.ts, which asks
 * the release rule for its own secret and redacts its answer) and screens the
 * result. A missing ability or runner refuses (`ability.unavailable`); the
 * runner's refusals and failures keep their own codes.
 */
export async function runAbility(call: ReleasedCall, deps: AbilityDeps): Promise<CallToolResult> {
  const record = call.record;
  const ref = call.ref;
  if (call.ability === undefined || deps.runner === undefined) return renderRefusal(call, refuse(deny('ability.unavailable', 'abilities'), 'The tool is unavailable'));
  let out: Awaited<ReturnType<AbilityRunner['run']>>;
  try {
    out = await deps.runner.run({
      ability: call.ability,
      args: call.callArgs,
      context: { agent: call.agent.name, user: call.user, conversation: call.conversation, requestId: ref, tool: call.entry.exposed },
      redact: call.swapped,
      signal: call.signal,
    });
  } catch {
    // run() never throws by contract; should it, the call fails closed with a fixed text.
    record.detail.code = 'ERR_INTERNAL';
    record.outcome = 'error';
    return toolError('ERR_INTERNAL', 'The tool failed', ref);
  }
  Object.assign(record.detail, out.detail);
  if (out.kind === 'refused') {
    record.decision = out.decision;
    record.detail.code = out.code;
    return toolError(out.code, out.text, ref);
  }
  if (out.kind === 'failed') {
    record.detail.code = out.code;
    record.outcome = out.timeout ? 'timeout' : 'error';
    return toolError(out.code, out.text, ref);
  }
  let result = out.result;
  if (result.isError === true) {
    // The API refused: the model sees its status (and the capped answer), clients see the code.
    record.detail.code = 'ERR_ABILITY_REQUEST';
    result = { ...result, _meta: { ...result._meta, 'bastion/error': { code: 'ERR_ABILITY_REQUEST', ref } } };
  }
  return screenToolResult(call, result, deps.output);
}
