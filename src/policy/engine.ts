/**
 * The policy engine: the config's allow/deny/approve lists and hand-written
 * `.cedar` files compiled once into Cedar policy sets, and a pure, synchronous
 * `authorize()` over them (Cedar via `@cedar-policy/cedar-wasm`).
 *
 * ## What the config compiles to
 *
 * For agent `demo` (ids are config paths; patterns use `*` as Cedar's `like` wildcard):
 * - `tools[i]`     → `@id("agents.demo.tools[i]") permit(principal == Bastion::Agent::"demo",
 *                    action == Bastion::Action::"tools/call", resource is Bastion::Tool)
 *                    when { resource.name like "<pattern>" };`
 * - `deny[i]`      → the same as a `forbid`, id `agents.demo.deny[i]`;
 * - `approve[i]`   → the same `permit`, annotated `@approval("required")`, id `agents.demo.approve[i]`;
 * - `resources[i]` → a `permit` on `resources/read` for `resource is Bastion::Resource` when
 *                    `resource.uri like "<uri>"` (only `*` is a wildcard; `"` and `\` are escaped);
 * - `prompts[i]`   → a `permit` on `prompts/get` for `resource is Bastion::Prompt` when `resource.name like ...`.
 * - `sandbox.commands.allow|deny|approve[i]` → a `permit`, `forbid` or `@approval` `permit` on
 *                    `sandbox/exec` for `resource is Bastion::Command` when the resource's path is
 *                    one of the program's candidates and the form's further words are all among
 *                    `context.command.words` (deny and approve forms: or `context.command.dynamic`);
 *                    see {@link commandCondition}.
 *
 * Hand-written files are parsed and validated (strict mode) against
 * {@link CEDAR_SCHEMA}; validation *warnings* (impossible policy, bidi or
 * mixed-script strings) are errors too. A policy's id is its `@id` annotation,
 * else `<file basename>#<index in file>`. `@approval` may only be `"required"`
 * and only on a `permit`. Any problem, or a duplicate id, is
 * `ERR_POLICY_INVALID` naming file:line:col and the validator's message.
 *
 * ## Combining algorithm (in this order)
 *
 * 1. The agent is not in the config → deny `policy.unknown_agent`.
 * 2. The arguments cannot be represented in Cedar (too deep, too many values,
 *    a reserved key, a lone surrogate, a non-JSON value) → deny `policy.args_unrepresentable`.
 * 3. Cedar throws, answers `failure`, or reports an evaluation error in ANY
 *    policy → deny `policy.error` (rule: the first erroring policy). Cedar itself
 *    skips a policy whose evaluation errors; Bastion does not, so a `forbid`
 *    that errors denies instead of silently passing.
 * 4. Any satisfied `forbid` without `@fallback` (or with `@fallback("deny")`) → deny `policy.forbid` (rule: the first such id).
 * 5. No satisfied `permit` → deny `policy.no_permit`, rule `default-deny` (a `@fallback` forbid never grants).
 * 6. Any satisfied `forbid` annotated `@fallback("error")` → deny `policy.guard` (the tool door answers
 *    with a tool error that tells the model why, so it can ask the user).
 * 7. Any satisfied `forbid` annotated `@fallback("approve")`, or `permit` annotated `@approval` → approve
 *    `policy.approval` (rule: the first such id).
 * 8. Otherwise → allow `policy.permit` (rule: the first satisfied permit).
 *
 * `@fallback` is how the provenance short forms (`approveWhen`, `denyWhen`:
 * src/policy/guards.ts) compile; hand-written forbids may carry it too.
 *
 * "First" is policy-set order: the config's agents in order (tools, deny,
 * approve, resources, prompts), then the files in order, each in file order.
 * `PolicyDecision.policies` lists every policy that determined the outcome, in that order.
 *
 * ## Arguments in the context (`context.args`)
 *
 * JSON → Cedar: strings and booleans as they are; integers within ±(2^53−1) →
 * Long; every other number → String (`String(n)`: `1.5` → `"1.5"`, `1e21` →
 * `"1e+21"`) because cedar-wasm's number conversion is lossy beyond 2^53 and
 * Cedar has no decimals here; `null` → the attribute is omitted; arrays → Set
 * (order and duplicates are lost); objects → records. At most
 * {@link MAX_ARGS_DEPTH} levels and {@link MAX_ARGS_VALUES} values. A record key
 * `__entity`, `__extn` or `__expr` is refused rather than passed on, because
 * Cedar's JSON would read it as an entity reference or extension value.
 *
 * Requests are evaluated without the schema (see cedar-schema.ts for why), with
 * one entity in the store: the resource, carrying its attributes. The context
 * is passed only to policy sets in which some policy reads `context` (parsing
 * it is most of a call's cost); the arguments are checked either way.
 *
 * Parsed policy sets are cached inside cedar-wasm (`preparsePolicySet`), one
 * per agent, under a content-addressed id, so a request never re-parses policy
 * text; recompiling an identical config reuses the same cache entries.
 */
import { basename } from 'node:path';
import {
  checkParsePolicySet,
  policySetTextToParts,
  policyToJson,
  preparsePolicySet,
  statefulIsAuthorized,
  validate,
  type AuthorizationAnswer,
  type CedarValueJson,
  type DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
import type { ResolvedAgent, ResolvedConfig, ResolvedNetworkRule } from '../config/types.ts';
import { deny, type Decision } from '../decision.ts';
import { BastionError } from '../errors.ts';
import { sha256Hex } from '../util/crypto.ts';
import { CEDAR_SCHEMA } from './cedar-schema.ts';
import { guardCondition } from './guards.ts';
import { programCandidates, SAFE_BUILTINS } from '../sandbox/programs.ts';

/** Most nested objects/arrays in `args` passed to Cedar, the args object itself counting as one. */
export const MAX_ARGS_DEPTH = 16;
/** Most JSON values (scalars, arrays and objects together) in `args` passed to Cedar. */
export const MAX_ARGS_VALUES = 10_000;

export type PolicyAction = 'tools/call' | 'resources/read' | 'prompts/get' | 'network/connect' | 'network/request' | 'sandbox/exec';
export type PolicyResourceKind = 'tool' | 'resource' | 'prompt' | 'host' | 'command';

/**
 * One command of a sandbox run, for `sandbox/exec` (`context.command`; the resource's id is
 * the real path it runs, `""` when none). See the Cedar schema's `CommandFacts`.
 */
export interface CommandContext {
  /** argv[0] as written. */
  readonly name: string;
  readonly via: 'argv' | 'shell' | 'code';
  /** The whole shell line (or the argv joined by spaces, or the language's program). */
  readonly line: string;
  /** Every argument known before the command runs. */
  readonly words: readonly string[];
  readonly flags: readonly string[];
  readonly paths: readonly string[];
  /** Some argument is only known when it runs. */
  readonly dynamic: boolean;
  readonly within: readonly string[];
  /** `python`, `node`, `sh` for `sandbox__run_code`, else `""`. */
  readonly language: string;
}

const NO_COMMAND: Record<string, CedarValueJson> = Object.freeze({ via: '', line: '', words: [], flags: [], paths: [], dynamic: false, within: [], language: '' });

function commandContext(c: CommandContext): Record<string, CedarValueJson> {
  return { via: c.via, line: c.line, words: [...c.words], flags: [...c.flags], paths: [...c.paths], dynamic: c.dynamic, within: [...c.within], language: c.language };
}

/** The context of a network-door question: destination port, scheme, method (`CONNECT` for network/connect) and normalized path (`""` for network/connect). */
export interface EgressContext {
  readonly port: number;
  readonly scheme: 'http' | 'https';
  readonly method: string;
  readonly path: string;
}

/** One authorization question. */
export interface PolicyRequest {
  /** The authenticated agent's name (the principal). */
  readonly agent: string;
  readonly action: PolicyAction;
  /** `id` is the exposed tool/prompt name or the resource URI; `kind` must match `action`. */
  readonly resource: { readonly kind: PolicyResourceKind; readonly id: string; readonly upstream: string };
  /** The call's arguments (JSON). Absent: `{}`. */
  readonly args?: unknown;
  /** Digest of the canonical arguments, for policies that pin exact calls. Absent: `""`. */
  readonly argsDigest?: string;
  /** The MCP session id. Absent: `""`. */
  readonly session?: string;
  /** True when the question is "may this be listed" rather than "may this be used". */
  readonly listing?: boolean;
  /** Required for the network actions (resource kind `host`, id the normalized host, upstream `""`). */
  readonly egress?: EgressContext;
  /** Labels, taint and provenance of a tools/call (src/provenance/facts.ts). Absent: untainted, no provenance, strict labels. */
  readonly facts?: PolicyFacts;
  /** Required for `sandbox/exec` (resource kind `command`, id the real path or `""`, upstream `""`). */
  readonly command?: CommandContext;
}

/**
 * The provenance part of the context (`context.conversation`, `context.tool`,
 * `context.argsFrom`, `context.provenance`, `context.hosts`, `context.emails`,
 * `context.emailDomains`, `context.outside`; src/policy/cedar-schema.ts).
 */
export interface PolicyFacts {
  readonly conversation: { readonly tainted: boolean; readonly flagged: boolean; readonly sources: readonly string[]; readonly flaggedBy: readonly string[] };
  readonly tool: { readonly source: string; readonly effects: readonly string[] };
  readonly argsFrom: readonly string[];
  /** Top-level argument name → effective origins of its values. */
  readonly provenance: Readonly<Record<string, readonly string[]>>;
  readonly hosts: readonly string[];
  readonly emails: readonly string[];
  readonly emailDomains: readonly string[];
  readonly outside: readonly string[];
}

/** The facts assumed when a request carries none: an untainted conversation, a strictly labelled tool, no arguments traced. */
export const NO_FACTS: PolicyFacts = Object.freeze({
  conversation: Object.freeze({ tainted: false, flagged: false, sources: [], flaggedBy: [] }),
  tool: Object.freeze({ source: 'untrusted', effects: ['write', 'send', 'pay', 'share', 'delete', 'egress'] }),
  argsFrom: [],
  provenance: Object.freeze({}),
  hosts: [],
  emails: [],
  emailDomains: [],
  outside: [],
});

function factsContext(f: PolicyFacts): Record<string, CedarValueJson> {
  return {
    conversation: { tainted: f.conversation.tainted, flagged: f.conversation.flagged, sources: [...f.conversation.sources], flaggedBy: [...f.conversation.flaggedBy] },
    tool: { source: f.tool.source, effects: [...f.tool.effects] },
    argsFrom: [...f.argsFrom],
    provenance: Object.fromEntries(Object.entries(f.provenance).map(([k, v]) => [k, [...v]])),
    hosts: [...f.hosts],
    emails: [...f.emails],
    emailDomains: [...f.emailDomains],
    outside: [...f.outside],
  };
}

/**
 * A decision plus the ids of the policies that determined it (empty for default deny and pre-checks).
 * `intercept` is true on an allowed `network/connect` when every satisfied permit requires interception.
 */
export type PolicyDecision = Decision & { readonly policies: readonly string[]; readonly intercept?: boolean };

/** A policy as compiled: its id, where it came from and its Cedar text. */
export interface CompiledPolicy {
  readonly id: string;
  /** `config` for policies compiled from the agents section, else the file path. */
  readonly source: string;
  readonly effect: 'permit' | 'forbid';
  readonly approval: boolean;
  /** `@intercept("required")`: a network/connect permit that allows the connection only with TLS interception. */
  readonly intercept: boolean;
  /** `@fallback(...)` on a forbid: what a satisfied one does to a permitted call (see the combining algorithm). */
  readonly fallback?: 'deny' | 'approve' | 'error';
  readonly text: string;
}

/** {@link PolicyEngine.explain}'s answer: the decision, the determining policies' text and any errors. */
export type Explanation = PolicyDecision & {
  readonly determining: readonly CompiledPolicy[];
  readonly errors: readonly { readonly policy: string; readonly message: string }[];
};

const ACTION_KIND: Readonly<Record<PolicyAction, PolicyResourceKind>> = Object.freeze({
  'tools/call': 'tool',
  'resources/read': 'resource',
  'prompts/get': 'prompt',
  'network/connect': 'host',
  'network/request': 'host',
  'sandbox/exec': 'command',
});
const ENTITY_TYPE: Readonly<Record<PolicyResourceKind, string>> = Object.freeze({
  tool: 'Bastion::Tool',
  resource: 'Bastion::Resource',
  prompt: 'Bastion::Prompt',
  host: 'Bastion::Host',
  command: 'Bastion::Command',
});
const NAME_PATTERN = /^[A-Za-z0-9_.\-/*]+$/;
const RESERVED_KEYS = new Set(['__entity', '__extn', '__expr']);

/** A Cedar string literal for `s`: `"` and `\` escaped, control and format characters as `\u{..}`. */
export function cedarStringLiteral(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (cp < 0x20 || cp === 0x7f || /\p{Cf}/u.test(ch)) out += `\\u{${cp.toString(16)}}`;
    else out += ch;
  }
  return out + '"';
}

/**
 * A Cedar `like` pattern literal where `*` is the wildcard and every other
 * character is literal. Within `like`, `\*` would be a literal star; no input
 * can produce one because `\` itself is escaped.
 */
export function cedarLikePattern(glob: string): string {
  return cedarStringLiteral(glob);
}

class Unrepresentable extends Error {}
const OMIT = Symbol('omit');

/**
 * Converts JSON tool arguments to a Cedar record value (see the module docs for
 * the mapping). Returns `{ok: false, why}` when they cannot be represented.
 */
export function argsToCedar(args: unknown): { ok: true; value: Record<string, CedarValueJson> } | { ok: false; why: string } {
  if (args === undefined || args === null) return { ok: true, value: {} };
  if (!isPlainObject(args)) return { ok: false, why: 'arguments are not an object' };
  const budget = { values: 0 };
  try {
    return { ok: true, value: convertRecord(args, 1, budget) };
  } catch (err) {
    if (err instanceof Unrepresentable) return { ok: false, why: err.message };
    throw err;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function convertRecord(obj: Record<string, unknown>, depth: number, budget: { values: number }): Record<string, CedarValueJson> {
  if (depth > MAX_ARGS_DEPTH) throw new Unrepresentable(`arguments nest deeper than ${MAX_ARGS_DEPTH} levels`);
  count(budget);
  const out: Record<string, CedarValueJson> = {};
  for (const key of Object.keys(obj)) {
    if (RESERVED_KEYS.has(key)) throw new Unrepresentable(`argument key ${key} is reserved by Cedar`);
    if (!key.isWellFormed()) throw new Unrepresentable('an argument key holds a lone surrogate');
    const v = convertValue(obj[key], depth + 1, budget);
    // defineProperty: a key named __proto__ must stay an own data property.
    if (v !== OMIT) Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function convertValue(v: unknown, depth: number, budget: { values: number }): CedarValueJson | typeof OMIT {
  if (v === null || v === undefined) return OMIT;
  switch (typeof v) {
    case 'string':
      count(budget);
      if (!v.isWellFormed()) throw new Unrepresentable('an argument string holds a lone surrogate');
      return v;
    case 'boolean':
      count(budget);
      return v;
    case 'number':
      count(budget);
      return Number.isSafeInteger(v) ? v : String(v);
    case 'object': {
      if (Array.isArray(v)) {
        if (depth > MAX_ARGS_DEPTH) throw new Unrepresentable(`arguments nest deeper than ${MAX_ARGS_DEPTH} levels`);
        count(budget);
        const items: CedarValueJson[] = [];
        for (const item of v) {
          const c = convertValue(item, depth + 1, budget);
          if (c !== OMIT) items.push(c);
        }
        return items;
      }
      if (isPlainObject(v)) return convertRecord(v, depth, budget);
      throw new Unrepresentable('an argument is not a JSON value');
    }
    default:
      throw new Unrepresentable('an argument is not a JSON value');
  }
}

function count(budget: { values: number }): void {
  if (++budget.values > MAX_ARGS_VALUES) throw new Unrepresentable(`arguments hold more than ${MAX_ARGS_VALUES} values`);
}

/** One problem found compiling policies; `file` is a policy file path, or `config` for the agents section. */
export interface PolicyIssue {
  readonly file: string;
  /** 1-based line and column (in code points), when Cedar located the problem. */
  readonly line?: number;
  readonly col?: number;
  readonly message: string;
}

/** The issue at a UTF-16 index into `text`. */
function issueAt(file: string, text: string, index: number, message: string): PolicyIssue {
  const lines = text.slice(0, index).split('\n');
  return { file, line: lines.length, col: [...(lines.at(-1) ?? '')].length + 1, message };
}

/** Cedar reports UTF-8 byte offsets; converts one to a UTF-16 index into `text`. */
function byteToIndex(text: string, byteOffset: number): number {
  return Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8').length;
}

function describe(err: DetailedError, ids?: ReadonlyMap<string, string>): string {
  let msg = err.message.replace(/^for policy `([^`]+)`, /, (_m, id: string) => (ids?.has(id) ? `policy ${ids.get(id)}: ` : ''));
  if (/policy is impossible/.test(msg)) {
    msg += ' (an attribute of context.args that schema/bastion.cedarschema does not declare makes a policy impossible)';
  }
  return err.help ? `${msg} (${err.help})` : msg;
}

function fileIssues(file: { path: string; text: string }, errors: readonly DetailedError[], ids?: ReadonlyMap<string, string>): PolicyIssue[] {
  const out = new Map<string, PolicyIssue>();
  for (const e of errors) {
    const loc = e.sourceLocations?.[0];
    const issue = loc ? issueAt(file.path, file.text, byteToIndex(file.text, loc.start), describe(e, ids)) : { file: file.path, message: describe(e, ids) };
    out.set(formatIssue(issue), issue);
  }
  return [...out.values()];
}

function formatIssue(i: PolicyIssue): string {
  return i.line === undefined ? `${i.file}: ${i.message}` : `${i.file}:${i.line}:${i.col}: ${i.message}`;
}

/** `ERR_POLICY_INVALID` whose message lists every issue, one per line (`file:line:col: message`); `detail.issues` holds them structured. */
function invalid(issues: readonly PolicyIssue[]): BastionError {
  return new BastionError('ERR_POLICY_INVALID', issues.map(formatIssue).join('\n'), { detail: { issues } });
}

function generated(id: string, effect: 'permit' | 'forbid', agent: string, action: PolicyAction, condition: string, approval = false, intercept = false, fallback?: 'deny' | 'approve' | 'error'): CompiledPolicy {
  const text =
    `@id(${cedarStringLiteral(id)})\n` +
    (approval ? '@approval("required")\n' : '') +
    (intercept ? '@intercept("required")\n' : '') +
    (fallback !== undefined ? `@fallback(${cedarStringLiteral(fallback)})\n` : '') +
    `${effect} (\n` +
    `  principal == Bastion::Agent::${cedarStringLiteral(agent)},\n` +
    `  action == Bastion::Action::${cedarStringLiteral(action)},\n` +
    `  resource is ${ENTITY_TYPE[ACTION_KIND[action]]}\n` +
    `)\nwhen { ${condition} };`;
  return { id, source: 'config', effect, approval, intercept, ...(fallback !== undefined ? { fallback } : {}), text };
}

function compileAgent(name: string, agent: ResolvedAgent): CompiledPolicy[] {
  const out: CompiledPolicy[] = [];
  const base = `agents.${name}`;
  const names = (list: readonly string[], key: string, effect: 'permit' | 'forbid', action: PolicyAction, approval = false): void => {
    list.forEach((pattern, i) => {
      const id = `${base}.${key}[${i}]`;
      if (!NAME_PATTERN.test(pattern)) throw invalid([{ file: 'config', message: `${id}: bad pattern: a name pattern may hold letters, digits, _ - . / and *` }]);
      out.push(generated(id, effect, name, action, `resource.name like ${cedarLikePattern(pattern)}`, approval));
    });
  };
  names(agent.tools, 'tools', 'permit', 'tools/call');
  names(agent.deny, 'deny', 'forbid', 'tools/call');
  names(agent.approve, 'approve', 'permit', 'tools/call', true);
  agent.resources.forEach((uri, i) => {
    out.push(generated(`${base}.resources[${i}]`, 'permit', name, 'resources/read', `resource.uri like ${cedarLikePattern(uri)}`));
  });
  names(agent.prompts, 'prompts', 'permit', 'prompts/get');
  for (const rule of agent.network ?? []) out.push(...compileNetworkRule(name, rule));
  const commands = agent.sandbox?.commands;
  if (commands !== undefined) {
    const forms = (list: readonly string[], key: string, effect: 'permit' | 'forbid', approval: boolean): void => {
      list.forEach((form, i) => out.push(generated(`${base}.sandbox.commands.${key}[${i}]`, effect, name, 'sandbox/exec', commandCondition(form, effect === 'forbid' || approval), approval)));
    };
    // The builtins that change only the shell's own state (src/sandbox/programs.ts); deny forms still forbid them.
    out.push(generated(`${base}.sandbox.builtins`, 'permit', name, 'sandbox/exec', `[${SAFE_BUILTINS.map((b) => cedarStringLiteral(`builtin:${b}`)).join(', ')}].contains(resource.path)`));
    forms(commands.allow, 'allow', 'permit', false);
    forms(commands.deny, 'deny', 'forbid', false);
    forms(commands.approve, 'approve', 'permit', true);
  }
  for (const g of agent.guards ?? []) {
    for (const p of g.tool ?? []) {
      if (!NAME_PATTERN.test(p)) throw invalid([{ file: 'config', message: `${g.id}: bad pattern: a name pattern may hold letters, digits, _ - . / and *` }]);
    }
    out.push(generated(g.id, 'forbid', name, 'tools/call', guardCondition(g, cedarLikePattern), false, false, g.fallback));
  }
  return out;
}

/**
 * A command short form (`git`, `/usr/bin/git`, `git push --force`) → its Cedar
 * condition: the resource's path is one of the program's candidates
 * (src/sandbox/programs.ts), and every further word is among the command's
 * words. `widen` (deny and approve forms): a command with arguments only
 * known when it runs matches whatever its words (it could be `git push`).
 */
function commandCondition(form: string, widen: boolean): string {
  const [program = '', ...words] = form.split(' ');
  const paths = `[${programCandidates(program).map(cedarStringLiteral).join(', ')}].contains(resource.path)`;
  if (words.length === 0) return paths;
  const all = `context.command.words.containsAll([${words.map(cedarStringLiteral).join(', ')}])`;
  return `${paths} && (${widen ? `${all} || context.command.dynamic` : all})`;
}

/**
 * One egress allowlist entry → a `network/connect` permit (host and port) and a
 * `network/request` permit (host, port, and the methods and path prefixes when
 * given). An entry restricting methods or paths can only be enforced on
 * requests Bastion sees, so its connect permit is `@intercept("required")`.
 * Ids: `<rule id>/connect` and `<rule id>/request`.
 */
function compileNetworkRule(agent: string, rule: ResolvedNetworkRule): CompiledPolicy[] {
  const host = rule.host.startsWith('*.') ? `resource.name like ${cedarLikePattern(rule.host)}` : `resource.name == ${cedarStringLiteral(rule.host)}`;
  if (rule.host.startsWith('*.') && rule.host.slice(2).includes('*')) throw invalid([{ file: 'config', message: `${rule.id}: bad host pattern` }]);
  if (!rule.host.startsWith('*.') && rule.host.includes('*')) throw invalid([{ file: 'config', message: `${rule.id}: bad host pattern` }]);
  const ports = `[${rule.ports.join(', ')}].contains(context.port)`;
  const restricted = rule.methods !== undefined || rule.paths !== undefined;
  const request = [host, ports];
  if (rule.methods) request.push(`[${rule.methods.map(cedarStringLiteral).join(', ')}].contains(context.method)`);
  if (rule.paths) {
    // A prefix ending in "/" matches below it; one without matches itself and below "<prefix>/".
    const alts = rule.paths.map((p) =>
      p.endsWith('/') ? `context.path like ${cedarLikePattern(p + '*')}` : `context.path == ${cedarStringLiteral(p)} || context.path like ${cedarLikePattern(p + '/*')}`,
    );
    request.push(`(${alts.join(' || ')})`);
  }
  return [
    generated(`${rule.id}/connect`, 'permit', agent, 'network/connect', `${host} && ${ports}`, false, restricted),
    generated(`${rule.id}/request`, 'permit', agent, 'network/request', request.join(' && ')),
  ];
}

/** Parses, validates and splits one hand-written policy file into its policies, in file order. */
function compileFile(file: { path: string; text: string }): CompiledPolicy[] {
  const parsed = checkParsePolicySet({ staticPolicies: file.text });
  if (parsed.type === 'failure') throw invalid(fileIssues(file, parsed.errors));

  const parts = policySetTextToParts(file.text);
  if (parts.type === 'failure') throw invalid(fileIssues(file, parts.errors));
  if (parts.policy_templates.length > 0) throw invalid([{ file: file.path, message: 'policy templates (?principal, ?resource) are not supported' }]);

  // policySetTextToParts returns the policies sorted by their parse-order ids
  // ("policy0", "policy1", ... compared as strings); undo that sort.
  const n = parts.policies.length;
  const sortedIds = Array.from({ length: n }, (_, i) => `policy${i}`).sort();
  const texts: string[] = new Array<string>(n);
  sortedIds.forEach((pid, k) => {
    texts[Number(pid.slice('policy'.length))] = parts.policies[k] as string;
  });

  const ids = new Map<string, string>();
  const out: CompiledPolicy[] = [];
  const problems: PolicyIssue[] = [];
  let cursor = 0;
  texts.forEach((text, index) => {
    const at = file.text.indexOf(text, cursor);
    if (at >= 0) cursor = at + text.length;
    const issue = (message: string): PolicyIssue => (at >= 0 ? issueAt(file.path, file.text, at, message) : { file: file.path, message });
    const json = policyToJson(text);
    if (json.type === 'failure') {
      problems.push(...fileIssues({ path: file.path, text }, json.errors));
      return;
    }
    const annotations = json.json.annotations ?? {};
    const id = annotations.id ?? `${basename(file.path)}#${index}`;
    ids.set(`policy${index}`, id);
    const effect = json.json.effect;
    const approval = annotations.approval !== undefined;
    if (approval && annotations.approval !== 'required') problems.push(issue(`policy ${id}: @approval must be "required"`));
    if (approval && effect !== 'permit') problems.push(issue(`policy ${id}: @approval applies only to permit policies`));
    const intercept = annotations.intercept !== undefined;
    if (intercept && annotations.intercept !== 'required') problems.push(issue(`policy ${id}: @intercept must be "required"`));
    if (intercept && effect !== 'permit') problems.push(issue(`policy ${id}: @intercept applies only to permit policies`));
    const fallback = annotations.fallback;
    if (fallback !== undefined && fallback !== 'deny' && fallback !== 'approve' && fallback !== 'error') problems.push(issue(`policy ${id}: @fallback must be "deny", "approve" or "error"`));
    if (fallback !== undefined && effect !== 'forbid') problems.push(issue(`policy ${id}: @fallback applies only to forbid policies`));
    out.push({ id, source: file.path, effect, approval, intercept, ...(fallback === 'deny' || fallback === 'approve' || fallback === 'error' ? { fallback } : {}), text });
  });

  const validation = validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: file.text }, validationSettings: { mode: 'strict' } });
  if (validation.type === 'failure') throw invalid(fileIssues(file, validation.errors));
  problems.push(...fileIssues(file, [...validation.validationErrors, ...validation.validationWarnings].map((v) => v.error), ids));
  if (problems.length > 0) throw invalid(problems);
  return out;
}

/**
 * Checks that compiled-from-config policies validate: a failure is a bug in this
 * module. Warnings are not errors here: they concern string content (a URI in
 * mixed scripts), which the config may legitimately hold and `like` matches literally.
 */
function validateGenerated(policies: readonly CompiledPolicy[]): void {
  if (policies.length === 0) return;
  const record: Record<string, string> = {};
  for (const p of policies) record[p.id] = p.text;
  const v = validate({ schema: CEDAR_SCHEMA, policies: { staticPolicies: record }, validationSettings: { mode: 'strict' } });
  const errors = v.type === 'failure' ? v.errors.map((e) => e.message) : v.validationErrors.map((e) => `${e.policyId}: ${e.error.message}`);
  if (errors.length > 0) throw invalid(errors.map((message) => ({ file: 'config', message })));
}

/** A policy set prepared in cedar-wasm: its cache id and the order of its policies. */
interface PreparedSet {
  readonly cacheId: string;
  readonly policies: ReadonlyMap<string, CompiledPolicy>;
  /** Whether any policy in the set reads `context`; if none does, requests pass an empty context (it is the costliest part of a call). */
  readonly readsContext: boolean;
  /**
   * The same set without its `@fallback` forbids, when it has any: Cedar reports only the forbids
   * behind a deny, so whether some permit also holds is asked of this set.
   */
  readonly withoutFallbacks?: PreparedSet;
}

const readsContextMemo = new WeakMap<CompiledPolicy, boolean>();

/** Whether a policy's conditions mention the `context` variable (memoized: file policies join every agent's set). */
function readsContext(policy: CompiledPolicy): boolean {
  let reads = readsContextMemo.get(policy);
  if (reads === undefined) {
    const json = policyToJson(policy.text);
    // Unknown shape: assume it does, which only costs time.
    reads = json.type === 'failure' || JSON.stringify(json.json.conditions).includes('"Var":"context"');
    readsContextMemo.set(policy, reads);
  }
  return reads;
}

function prepare(policies: readonly CompiledPolicy[]): PreparedSet {
  const record: Record<string, string> = {};
  for (const p of policies) record[p.id] = p.text;
  const cacheId = `bastion-policies-${sha256Hex(JSON.stringify(record))}`;
  const answer = preparsePolicySet(cacheId, { staticPolicies: record });
  if (answer.type === 'failure') throw invalid(answer.errors.map((e) => ({ file: 'config', message: e.message })));
  const rest = policies.filter((p) => p.fallback === undefined);
  const withoutFallbacks = rest.length < policies.length ? prepare(rest) : undefined;
  return { cacheId, policies: new Map(policies.map((p) => [p.id, p])), readsContext: policies.some(readsContext), ...(withoutFallbacks ? { withoutFallbacks } : {}) };
}

/** A policy text reading the provenance part of the context (a conservative textual test: comments count too). */
const PROVENANCE_ATTRIBUTES = /\bcontext\s*\.\s*(?:conversation|tool|argsFrom|provenance|hosts|emails|emailDomains|outside)\b|\bcontext\s*\[/;

/** Most memoized decisions kept per engine; the oldest is dropped beyond this. */
const MAX_MEMO_ENTRIES = 10_000;

function decided(decision: Decision, policies: readonly string[] = []): PolicyDecision {
  return { effect: decision.effect, reason: decision.reason, rule: decision.rule, policies };
}

interface Evaluation {
  readonly decision: PolicyDecision;
  readonly errors: readonly { readonly policy: string; readonly message: string }[];
}

/** The compiled, immutable policy engine. See the module docs for the combining algorithm. */
export class PolicyEngine {
  /** Every policy, in policy-set order, as parseable Cedar text (ids of unannotated file policies as comments). */
  readonly policyText: string;
  readonly #all: readonly CompiledPolicy[];
  readonly #order: ReadonlyMap<string, number>;
  readonly #sets: ReadonlyMap<string, PreparedSet>;
  readonly #provenanceMemo = new Map<string, boolean>();
  /** Decisions of agents whose policies do not read `context`, by agent, action and resource. */
  readonly #memo = new Map<string, Evaluation>();

  private constructor(all: readonly CompiledPolicy[], sets: ReadonlyMap<string, PreparedSet>) {
    this.#all = all;
    this.#order = new Map(all.map((p, i) => [p.id, i]));
    this.#sets = sets;
    this.policyText = all
      .map((p) => (/^\s*@id\s*\(/m.test(p.text) ? p.text : `// id: ${p.id} (${p.source})\n${p.text}`))
      .join('\n\n')
      .concat(all.length > 0 ? '\n' : '');
  }

  /**
   * Compiles `config.agents` and `config.policies` (nothing else is read).
   * Throws `ERR_POLICY_INVALID` for a bad pattern, a file that does not parse or
   * validate, or a duplicate policy id.
   */
  static compile(config: Pick<ResolvedConfig, 'agents' | 'policies'>): PolicyEngine {
    const perAgent = new Map<string, CompiledPolicy[]>();
    for (const [name, agent] of config.agents) perAgent.set(name, compileAgent(name, agent));
    const fromFiles = config.policies.flatMap((f) => compileFile(f));
    const all = [...[...perAgent.values()].flat(), ...fromFiles];

    const seen = new Map<string, CompiledPolicy>();
    const dups: PolicyIssue[] = [];
    for (const p of all) {
      const prev = seen.get(p.id);
      if (prev) dups.push({ file: p.source, message: `duplicate policy id ${JSON.stringify(p.id)} (in ${prev.source} and ${p.source})` });
      else seen.set(p.id, p);
    }
    if (dups.length > 0) throw invalid(dups);
    validateGenerated([...perAgent.values()].flat());

    const sets = new Map<string, PreparedSet>();
    for (const [name, own] of perAgent) sets.set(name, prepare([...own, ...fromFiles]));
    return new PolicyEngine(all, sets);
  }

  /** The compiled policies, in policy-set order. */
  get policies(): readonly CompiledPolicy[] {
    return this.#all;
  }

  /**
   * Whether any policy `agent`'s requests are decided by reads the provenance part of the
   * context (`context.conversation`, `tool`, `argsFrom`, `provenance`, `hosts`, `emails`,
   * `emailDomains`, `outside`): when none does, the tool door need not trace values for it.
   * True for an unknown agent (fail closed: trace).
   */
  usesProvenance(agent: string): boolean {
    const set = this.#sets.get(agent);
    if (set === undefined) return true;
    let uses = this.#provenanceMemo.get(agent);
    if (uses === undefined) {
      uses = [...set.policies.values()].some((p) => PROVENANCE_ATTRIBUTES.test(p.text));
      this.#provenanceMemo.set(agent, uses);
    }
    return uses;
  }

  /** Decides one request. Never throws: every failure is a deny. */
  authorize(req: PolicyRequest): PolicyDecision {
    return this.#evaluate(req).decision;
  }

  /** Decides one request and returns the determining policies' text and any evaluation errors. */
  explain(req: PolicyRequest): Explanation {
    const { decision, errors } = this.#evaluate(req);
    const determining = decision.policies.map((id) => this.#all[this.#order.get(id) ?? -1]).filter((p): p is CompiledPolicy => p !== undefined);
    return { ...decision, determining, errors };
  }

  #evaluate(req: PolicyRequest): Evaluation {
    try {
      return this.#evaluateUnsafe(req);
    } catch (err) {
      return { decision: decided(deny('policy.error', 'cedar')), errors: [{ policy: '', message: err instanceof Error ? err.message : String(err) }] };
    }
  }

  #evaluateUnsafe(req: PolicyRequest): Evaluation {
    const r = req.resource as Partial<PolicyRequest['resource']> | undefined;
    if (
      typeof req.agent !== 'string' ||
      !Object.hasOwn(ACTION_KIND, req.action) ||
      !r ||
      r.kind !== ACTION_KIND[req.action] ||
      typeof r.id !== 'string' ||
      typeof r.upstream !== 'string' ||
      // Strings only: an object here would reach Cedar as an entity or extension escape (`__entity`).
      (req.argsDigest !== undefined && typeof req.argsDigest !== 'string') ||
      (req.session !== undefined && typeof req.session !== 'string')
    ) {
      return { decision: decided(deny('policy.invalid_request', 'request')), errors: [] };
    }
    const set = this.#sets.get(req.agent);
    if (!set) return { decision: decided(deny('policy.unknown_agent', 'agents')), errors: [] };
    if (r.kind === 'host') return this.#egress(req, set, r as PolicyRequest['resource']);
    if (r.kind === 'command') return this.#command(req, set, r as PolicyRequest['resource']);
    // Cedar cannot carry a lone surrogate: refused here as malformed, as the network door's host and path are.
    if (!r.id.isWellFormed() || !r.upstream.isWellFormed()) return { decision: decided(deny('policy.invalid_request', 'request')), errors: [] };

    const args = argsToCedar(req.args);
    if (!args.ok) return { decision: decided(deny('policy.args_unrepresentable', 'context.args')), errors: [{ policy: '', message: args.why }] };

    // An agent whose policies never read `context` gets the same answer for the same
    // (action, resource) whatever the arguments: memoize it (the policy set is immutable).
    if (!set.readsContext) {
      const key = `${req.agent}\u0000${req.action}\u0000${r.kind}\u0000${r.upstream}\u0000${r.id}`;
      const hit = this.#memo.get(key);
      if (hit) return hit;
      const evaluation = this.#decide(req, set, r as PolicyRequest['resource'], args.value);
      // Bounded: resource URIs are chosen by the agent.
      if (this.#memo.size >= MAX_MEMO_ENTRIES) this.#memo.delete(this.#memo.keys().next().value as string);
      this.#memo.set(key, evaluation);
      return evaluation;
    }
    return this.#decide(req, set, r as PolicyRequest['resource'], args.value);
  }

  /**
   * A network-door question. The context is the whole input besides the host, so
   * the answer is memoized on (agent, action, host, port, scheme, method, path).
   */
  #egress(req: PolicyRequest, set: PreparedSet, r: PolicyRequest['resource']): Evaluation {
    const e = req.egress;
    if (
      !e ||
      !Number.isInteger(e.port) ||
      e.port < 1 ||
      e.port > 65535 ||
      (e.scheme !== 'http' && e.scheme !== 'https') ||
      typeof e.method !== 'string' ||
      typeof e.path !== 'string' ||
      !r.id.isWellFormed() ||
      !e.path.isWellFormed()
    ) {
      return { decision: decided(deny('policy.invalid_request', 'request')), errors: [] };
    }
    const key = `${req.agent}\u0000${req.action}\u0000${r.id}\u0000${e.port}\u0000${e.scheme}\u0000${e.method}\u0000${e.path}`;
    const hit = this.#memo.get(key);
    if (hit) return hit;
    const context = { listing: false, upstream: '', args: {}, argsDigest: '', session: '', port: e.port, scheme: e.scheme, method: e.method, path: e.path, ...factsContext(NO_FACTS), command: NO_COMMAND };
    const evaluation = this.#decide(req, set, r, context);
    if (this.#memo.size >= MAX_MEMO_ENTRIES) this.#memo.delete(this.#memo.keys().next().value as string);
    this.#memo.set(key, evaluation);
    return evaluation;
  }

  /**
   * A sandbox question: one command of a run. Not memoized (the words are the agent's,
   * a run asks a handful). A missing or malformed command context is an invalid request.
   */
  #command(req: PolicyRequest, set: PreparedSet, r: PolicyRequest['resource']): Evaluation {
    const c = req.command;
    const strings = (xs: unknown): boolean => Array.isArray(xs) && xs.length <= MAX_ARGS_VALUES && xs.every((x) => typeof x === 'string' && x.isWellFormed());
    if (
      c === undefined ||
      typeof c.name !== 'string' ||
      !c.name.isWellFormed() ||
      !r.id.isWellFormed() ||
      (c.via !== 'argv' && c.via !== 'shell' && c.via !== 'code') ||
      typeof c.line !== 'string' ||
      !c.line.isWellFormed() ||
      typeof c.dynamic !== 'boolean' ||
      typeof c.language !== 'string' ||
      !strings(c.words) ||
      !strings(c.flags) ||
      !strings(c.paths) ||
      !strings(c.within)
    ) {
      return { decision: decided(deny('policy.invalid_request', 'request')), errors: [] };
    }
    const context = { listing: false, upstream: '', args: {}, argsDigest: '', session: req.session ?? '', port: 0, scheme: '', method: '', path: '', ...factsContext(NO_FACTS), command: commandContext(c) };
    return this.#decide(req, set, r, context);
  }

  /** One Cedar evaluation and the combining algorithm (see the module docs). `args` is the tool arguments, or the whole egress context for host resources. */
  #decide(req: PolicyRequest, set: PreparedSet, r: PolicyRequest['resource'], args: Record<string, CedarValueJson>): Evaluation {
    const attrs: Record<string, CedarValueJson> =
      r.kind === 'resource'
        ? { uri: r.id, upstream: r.upstream }
        : r.kind === 'host'
          ? { name: r.id }
          : r.kind === 'command'
            ? { name: req.command?.name ?? '', path: r.id }
            : { name: r.id, upstream: r.upstream };
    const uid = { type: ENTITY_TYPE[r.kind], id: r.id };
    const context: Record<string, CedarValueJson> =
      r.kind === 'host' || r.kind === 'command'
        ? args
        : set.readsContext
          ? { listing: req.listing === true, upstream: r.upstream, args, argsDigest: req.argsDigest ?? '', session: req.session ?? '', port: 0, scheme: '', method: '', path: '', ...factsContext(req.facts ?? NO_FACTS), command: NO_COMMAND }
          : {};
    const answer: AuthorizationAnswer = statefulIsAuthorized({
      principal: { type: 'Bastion::Agent', id: req.agent },
      action: { type: 'Bastion::Action', id: req.action },
      resource: uid,
      context,
      preparsedPolicySetId: set.cacheId,
      entities: [{ uid, attrs, parents: [] }],
    });
    if (answer.type === 'failure') {
      return { decision: decided(deny('policy.error', 'cedar')), errors: answer.errors.map((e) => ({ policy: '', message: e.message })) };
    }

    const byOrder = (ids: Iterable<string>): string[] => [...new Set(ids)].sort((a, b) => (this.#order.get(a) ?? Infinity) - (this.#order.get(b) ?? Infinity));
    const { reason, errors } = answer.response.diagnostics;
    const errorList = errors.map((e) => ({ policy: e.policyId, message: e.error.message }));
    if (errors.length > 0) {
      const ids = byOrder(errors.map((e) => e.policyId));
      return { decision: decided(deny('policy.error', ids[0] as string), ids), errors: errorList };
    }
    const satisfied = byOrder(reason);
    const metas = satisfied.map((id) => set.policies.get(id));
    if (metas.some((m) => m === undefined)) return { decision: decided(deny('policy.error', 'cedar')), errors: [{ policy: '', message: 'unknown policy id in Cedar diagnostics' }] };
    const forbids = satisfied.filter((id) => set.policies.get(id)?.effect === 'forbid');
    const fallbackOf = (id: string): string | undefined => set.policies.get(id)?.fallback;
    const hard = forbids.filter((id) => fallbackOf(id) === undefined || fallbackOf(id) === 'deny');
    if (hard.length > 0) return { decision: decided(deny('policy.forbid', hard[0] as string), hard), errors: [] };
    if (forbids.length > 0) {
      // Only @fallback forbids hold: they act on a call some permit allows, never grant one.
      const base = set.withoutFallbacks;
      if (base === undefined) return { decision: decided(deny('policy.error', 'cedar')), errors: [{ policy: '', message: 'fallback forbid outside a prepared set with fallbacks' }] };
      const inner = this.#decide(req, base, r, args);
      if (inner.decision.effect === 'deny') return inner;
      const told = forbids.filter((id) => fallbackOf(id) === 'error');
      if (told.length > 0) return { decision: decided(deny('policy.guard', told[0] as string), told), errors: [] };
      const held = [...forbids.filter((id) => fallbackOf(id) === 'approve'), ...(inner.decision.effect === 'approve' ? inner.decision.policies : [])];
      return { decision: decided({ effect: 'approve', reason: 'policy.approval', rule: held[0] as string }, held), errors: [] };
    }
    const approvals = satisfied.filter((id) => set.policies.get(id)?.approval === true);
    if (approvals.length > 0) return { decision: decided({ effect: 'approve', reason: 'policy.approval', rule: approvals[0] as string }, approvals), errors: [] };
    if (satisfied.length > 0) {
      const allow = decided({ effect: 'allow', reason: 'policy.permit', rule: satisfied[0] as string }, satisfied);
      // Tunnel without interception only when some satisfied permit does not require it.
      if (req.action === 'network/connect' && satisfied.every((id) => set.policies.get(id)?.intercept === true)) return { decision: { ...allow, intercept: true }, errors: [] };
      return { decision: allow, errors: [] };
    }
    return { decision: decided(deny('policy.no_permit', 'default-deny')), errors: [] };
  }
}
