/**
 * Config of the anomaly rules (`anomalies:` in bastion.yaml, docs/anomalies.md):
 * the zod schema of one rule per kind, the rules that are on by default, and
 * the resolved (compiled) form the engine (./engine.ts) runs.
 *
 * `anomalies` is a map of rule name → rule. The default rules
 * ({@link DEFAULT_ANOMALY_RULES}) apply unless a rule of the same name replaces
 * them; `enabled: false` turns a rule off. Every rule names its `kind`;
 * a rule that does not parse is a config error naming `anomalies.<name>.<field>`.
 */
import picomatch from 'picomatch';
import { z } from 'zod';
import type { AlertSeverity } from '../alerts/notifier.ts';

/** The rule kinds. */
export const ANOMALY_KINDS = ['burst', 'denialSpike', 'sensitivePath', 'newSecretHost', 'newToolCombination', 'outsideHours', 'pinChanges'] as const;
export type AnomalyKind = (typeof ANOMALY_KINDS)[number];

/** Rule names: used in alert kinds (`anomaly.<name>`) and Redis keys. */
export const ANOMALY_RULE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** Paths that are sensitive by default: credentials and keys of the usual tools, and the system's password files. */
export const DEFAULT_SENSITIVE_PATHS: readonly string[] = Object.freeze([
  '**/.ssh/**',
  '**/.gnupg/**',
  '**/.aws/**',
  '**/.azure/**',
  '**/.config/gcloud/**',
  '**/.kube/config',
  '**/.docker/config.json',
  '**/.netrc',
  '**/.git-credentials',
  '**/.npmrc',
  '**/.pypirc',
  '**/.env',
  '**/.env.*',
  '**/id_rsa*',
  '**/id_ed25519*',
  '**/*.pem',
  '**/*.key',
  '/etc/shadow',
  '/etc/gshadow',
  '/etc/sudoers',
  '/etc/sudoers.d/**',
]);

/** Decision reasons of the path guard that count as an attempt on a sensitive path by default (a `paths.deny` glob matched). */
export const DEFAULT_SENSITIVE_REASONS: readonly string[] = Object.freeze(['path.denied']);
/** Decision reasons of pin records that count as a pinned-definition change by default. */
export const DEFAULT_PIN_CHANGE_REASONS: readonly string[] = Object.freeze(['tool.pin_changed', 'tool.pin_renamed']);

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type DayName = (typeof DAY_NAMES)[number];

const Severity = z.enum(['info', 'warning', 'critical']);
const WindowS = z.number().int().positive().max(7 * 86400);
const Max = z.number().int().positive().max(100_000);
const LearnS = z.number().int().min(0).max(365 * 86400);
const ForgetS = z.number().int().positive().max(365 * 86400);
const Cap = (max: number): z.ZodNumber => z.number().int().positive().max(max);
const Clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour clock)');
const Reason = z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/, 'must be a decision reason such as path.denied');

/** A path glob of the rule: absolute or starting with `**`, compiled now so a bad one is a config error. */
const SensitiveGlob = z
  .string()
  .min(1)
  .max(1024)
  .superRefine((g, ctx) => {
    if (!g.startsWith('/') && !g.startsWith('**')) ctx.addIssue({ code: 'custom', message: 'a path glob must be absolute or start with **' });
    else {
      try {
        picomatch.makeRe(g, { dot: true, nocase: true });
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not a valid glob' });
      }
    }
  })
  .describe('A path glob (`**`, `*`, `?`, `{a,b}`, `[abc]`), absolute or starting with `**`, matched case-insensitively.');

const HostGlob = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9_.-]{1,253}$|^\[?[0-9A-Fa-f:.]{2,45}\]?$/, 'must be a host, *.domain or an IP address')
  .describe('A host or `*.domain` (any name below the domain).');

const alertField = (d: AlertSeverity) => Severity.default(d).describe('Severity of the alert a firing raises (`alerts.minSeverity` decides which are sent).');
const isolateField = z.boolean().default(false).describe('Also isolate the agent (`bastion incident isolate`) when the rule fires.');
const enabledField = z.boolean().default(true).describe('`false` turns the rule off (e.g. a default rule).');

const BurstRule = z
  .strictObject({
    kind: z.literal('burst'),
    max: Max.default(300).describe('Fires when an agent makes more than this many requests within `windowS`.'),
    windowS: WindowS.default(60).describe('The sliding window, in seconds.'),
    per: z.enum(['agent', 'tool']).default('agent').describe('`agent`: all of an agent\'s requests count together; `tool`: per agent and target (tool, host, model).'),
    maxKeys: Cap(1_000_000).default(10_000).describe('Most counters (agents, or agent and target pairs) held in memory; the least recently used is dropped beyond.'),
    alert: alertField('warning'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('Bursts of calls per agent (or per agent and tool).');

const DenialSpikeRule = z
  .strictObject({
    kind: z.literal('denialSpike'),
    max: Max.default(20).describe('Fires when an agent is refused more than this many times within `windowS`.'),
    windowS: WindowS.default(60).describe('The sliding window, in seconds.'),
    maxKeys: Cap(1_000_000).default(10_000).describe('Most agents whose denials are counted in memory; the least recently used is dropped beyond.'),
    alert: alertField('warning'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('Spikes of denials per agent.');

const SensitivePathRule = z
  .strictObject({
    kind: z.literal('sensitivePath'),
    paths: z.array(SensitiveGlob).max(512).default([...DEFAULT_SENSITIVE_PATHS]).describe('Globs of sensitive paths, matched against `file:` resource URIs and, with `audit.recordArguments: redacted`, against absolute paths and `file:` URLs in recorded arguments.'),
    reasons: z.array(Reason).max(64).default([...DEFAULT_SENSITIVE_REASONS]).describe('Decision reasons that count as an attempt on a sensitive path (default `path.denied`: a `paths.deny` glob matched).'),
    hosts: z.array(HostGlob).max(512).default([]).describe('Hosts whose use through the network door counts as sensitive (the network door records the host and port, never the URL path).'),
    cooldownS: WindowS.default(300).describe('After a firing, the rule is quiet for this agent this long (seconds).'),
    alert: alertField('critical'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('Access to sensitive paths (or hosts).');

const NewSecretHostRule = z
  .strictObject({
    kind: z.literal('newSecretHost'),
    learningS: LearnS.default(3600).describe('For this long after an agent is first seen (seconds), its secret-host pairs are learned without alerts.'),
    forgetS: ForgetS.default(30 * 86400).describe('A learned pair not seen again for this long is forgotten (seconds; the Redis key\'s lifetime).'),
    maxAgents: Cap(1_000_000).default(10_000).describe('Most agents whose pairs are held in memory (least recently active dropped beyond).'),
    maxPairsPerAgent: Cap(1_000_000).default(1_000).describe('Most secret-host pairs held per agent in memory (least recently used dropped beyond).'),
    alert: alertField('warning'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('A vault secret sent towards a host it was never sent to before by that agent.');

const NewToolCombinationRule = z
  .strictObject({
    kind: z.literal('newToolCombination'),
    learningS: LearnS.default(3600).describe('For this long after an agent is first seen (seconds), its tool pairs are learned without alerts.'),
    forgetS: ForgetS.default(30 * 86400).describe('A learned pair not seen again for this long is forgotten (seconds; the Redis key\'s lifetime).'),
    maxAgents: Cap(1_000_000).default(10_000).describe('Most agents whose pairs are held in memory.'),
    maxPairsPerAgent: Cap(1_000_000).default(10_000).describe('Most tool pairs held per agent in memory.'),
    maxSessions: Cap(1_000_000).default(10_000).describe('Most sessions whose tools are tracked (least recently active dropped beyond).'),
    maxToolsPerSession: Cap(1_000).default(64).describe('Most distinct tools remembered per session.'),
    alert: alertField('info'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('Two tools used in one MCP session that the agent never used together before.');

const OutsideHoursRule = z
  .strictObject({
    kind: z.literal('outsideHours'),
    timeZone: z
      .string()
      .min(1)
      .max(64)
      .refine((tz) => validTimeZone(tz), 'must be an IANA time zone such as Europe/Berlin')
      .describe('IANA time zone of the hours.'),
    days: z.array(z.enum(DAY_NAMES)).min(1).max(7).default(['mon', 'tue', 'wed', 'thu', 'fri']).describe('Working days.'),
    from: Clock.default('08:00').describe('Start of working hours (inclusive), local time.'),
    to: Clock.default('19:00').describe('End of working hours (exclusive), local time; earlier than `from` for a night shift (the day is the day the shift starts).'),
    cooldownS: WindowS.default(3600).describe('After a firing, the rule is quiet for this agent this long (seconds).'),
    alert: alertField('warning'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .refine((r) => r.from !== r.to, { message: 'from and to must differ', path: ['to'] })
  .describe('Activity outside the configured hours and days.');

const PinChangesRule = z
  .strictObject({
    kind: z.literal('pinChanges'),
    max: Max.default(3).describe('Fires when more than this many pinned-definition changes are recorded for an agent within `windowS`.'),
    windowS: WindowS.default(3600).describe('The sliding window, in seconds.'),
    reasons: z.array(Reason).min(1).max(16).default([...DEFAULT_PIN_CHANGE_REASONS]).describe('Decision reasons of `tools/pin` records that count.'),
    maxKeys: Cap(1_000_000).default(10_000).describe('Most agents counted in memory.'),
    alert: alertField('warning'),
    isolate: isolateField,
    enabled: enabledField,
  })
  .describe('Repeated changes of pinned tool definitions (rug pulls).');

/** One rule, by kind. */
export const AnomalyRuleSchema = z.discriminatedUnion('kind', [BurstRule, DenialSpikeRule, SensitivePathRule, NewSecretHostRule, NewToolCombinationRule, OutsideHoursRule, PinChangesRule]);

/** `anomalies:`: rule name → rule. */
export const AnomaliesSchema = z
  .record(z.string().regex(ANOMALY_RULE_NAME, 'rule names are 1-64 of A-Z a-z 0-9 _ -'), AnomalyRuleSchema)
  .default({})
  .describe('Anomaly rules over the audit stream (docs/anomalies.md), by name. The default rules (burst, denialSpike, sensitivePath, newSecretHost, newToolCombination, pinChanges) apply unless a rule of the same name replaces them (`enabled: false` turns one off).');

export type RawAnomalyRule = z.infer<typeof AnomalyRuleSchema>;
export type RawAnomalies = z.infer<typeof AnomaliesSchema>;

/** A rule as the engine runs it: its name, and its fields with defaults applied. */
export type AnomalyRule = RawAnomalyRule & { readonly name: string };
export type BurstAnomaly = Extract<AnomalyRule, { kind: 'burst' }>;
export type DenialSpikeAnomaly = Extract<AnomalyRule, { kind: 'denialSpike' }>;
export type SensitivePathAnomaly = Extract<AnomalyRule, { kind: 'sensitivePath' }>;
export type NewSecretHostAnomaly = Extract<AnomalyRule, { kind: 'newSecretHost' }>;
export type NewToolCombinationAnomaly = Extract<AnomalyRule, { kind: 'newToolCombination' }>;
export type OutsideHoursAnomaly = Extract<AnomalyRule, { kind: 'outsideHours' }>;
export type PinChangesAnomaly = Extract<AnomalyRule, { kind: 'pinChanges' }>;

/** The resolved `anomalies`: enabled rules by name, defaults included, in a stable order (defaults first). */
export type ResolvedAnomalies = ReadonlyMap<string, AnomalyRule>;

/** The rules on by default (name → rule with defaults). `outsideHours` is not one: working hours are a site's own. */
export const DEFAULT_ANOMALY_RULES: ReadonlyMap<string, AnomalyRule> = new Map(
  (['burst', 'denialSpike', 'sensitivePath', 'newSecretHost', 'newToolCombination', 'pinChanges'] as const).map((kind) => [kind, { ...AnomalyRuleSchema.parse({ kind }), name: kind }]),
);

/** The enabled rules: the defaults, replaced by the configured rules of the same name, then the other configured rules; rules with `enabled: false` left out. */
export function resolveAnomalies(raw: RawAnomalies): ResolvedAnomalies {
  const out = new Map<string, AnomalyRule>();
  for (const [name, rule] of DEFAULT_ANOMALY_RULES) {
    const given = Object.hasOwn(raw, name) ? raw[name] : undefined;
    const chosen = given === undefined ? rule : { ...given, name };
    if (chosen.enabled) out.set(name, chosen);
  }
  for (const [name, rule] of Object.entries(raw)) {
    if (!rule.enabled || DEFAULT_ANOMALY_RULES.has(name)) continue;
    out.set(name, { ...rule, name });
  }
  return out;
}

/** Whether `tz` is a time zone `Intl` knows (IANA names, `UTC`). */
export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
