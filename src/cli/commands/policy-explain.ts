/**
 * `bastion policy explain`: compiles the config's policies and path guard and
 * shows the decision for one call as the tool door would take it: Cedar first,
 * then (unless Cedar denied) the path guard over the arguments or the resource
 * URI, with the reason, the deciding rule, the text of the Cedar policies that
 * determined it, and the path guard's answer. The path guard here is the door's
 * own code ({@link PathGuard.checkArguments}, {@link PathGuard.checkResource});
 * only the tool's input schema is missing (the upstream is not started), so
 * schema hints are not applied — the answer says so.
 *
 * Exit codes: 0 allow; 1 deny or approve; 2 bad usage; 3 the config (or one of
 * its policy files) cannot be loaded or compiled; 70 internal error.
 */
import { parseFlags } from '../args.ts';
import { loadConfig } from '../../config/load.ts';
import { toBastionError } from '../../errors.ts';
import { PolicyEngine, type PolicyRequest } from '../../policy/engine.ts';
import { isFileUrl, PathGuard, pathGuardMode, type PathVerdict } from '../../policy/paths.ts';
import type { Decision } from '../../decision.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { LabelIndex } from '../../policy/labels.ts';
import { callFacts, policyFacts } from '../../provenance/facts.ts';
import { ProvenanceTracker } from '../../provenance/tracker.ts';
import { newReading, readText } from '../../provenance/values.ts';
import { resolveConfigPath } from './config-check.ts';
import { explainShell } from './policy-explain-shell.ts';

const USAGE = `Usage: bastion policy explain --agent NAME (--tool NAME | --resource URI | --prompt NAME | --shell LINE)
                              [--args JSON] [--upstream NAME] [--listing] [--config FILE] [--json]
                              [--user-said TEXT]... [--untrusted TOOL=TEXT]... [--trusted TOOL=TEXT]...
                              [--flagged RULE]...

Shows the policy decision for one call (tools/call, resources/read or
prompts/get) as the tool door takes it: the Cedar decision, then the path
guard (paths.allow/deny, the upstream's pathGuard and argumentKinds) over the
arguments or the resource's file: URI. Prints the deciding reason and rule,
the Cedar policies behind it and the path guard's answer. The tool's input
schema is not known here (upstreams are not started), so schema hints
(x-bastion-kind, formats, enum) are not applied.

Options:
  -a, --agent NAME      the calling agent (principal)
  -t, --tool NAME       a tool's exposed name, e.g. files__read_text_file
      --resource URI    a resource URI
      --prompt NAME     a prompt's exposed name
      --shell LINE      a shell line as sandbox__run would take it: parsed, then each
                        command decided (sandbox/exec) with its path arguments checked
      --args JSON       the call's arguments, a JSON object (context.args)
      --upstream NAME   the upstream (default: the name's prefix before "__")
      --listing         ask whether the item may be listed (context.listing)
      --user-said TEXT  the conversation so far: the end user said TEXT (model door)
      --untrusted TOOL=TEXT
                        the conversation read TEXT from TOOL as third-party content
                        (taints it); TEXT may be JSON, read as a tool result is
      --trusted TOOL=TEXT
                        the conversation read TEXT from a trusted tool
      --flagged RULE    a result in the conversation was flagged by detector RULE
  -c, --config FILE     config file (default: $BASTION_CONFIG, else ./bastion.yaml)
      --json            print the result as JSON on stdout
  -h, --help            show this help

context.argsDigest and context.session are empty strings here. For tools/call
the answer shows the tool's labels, the conversation's taint and where each
argument's value came from (provenance: user, config, untrusted, trusted,
model), computed by the door's own code from the conversation the flags
describe (the tool's MCP annotations and input schema are not known here).

Exit status: 0 allow; 1 deny or approve (a call that needs approval is not
allowed without one); 2 usage error (including --args that is not a JSON
object); 3 config or policy files could not be loaded or compiled; 70 internal error.
`;

interface Flags {
  agent?: string | undefined;
  tool?: string | undefined;
  resource?: string | undefined;
  prompt?: string | undefined;
  args?: string | undefined;
  upstream?: string | undefined;
  listing?: boolean | undefined;
  config?: string | undefined;
  json?: boolean | undefined;
  help?: boolean | undefined;
  'user-said'?: string[] | undefined;
  untrusted?: string[] | undefined;
  trusted?: string[] | undefined;
  flagged?: string[] | undefined;
  shell?: string | undefined;
}

/** Builds the request from the flags, or returns a usage message. */
function requestOf(values: Flags): PolicyRequest | string {
  if (values.agent === undefined || values.agent === '') return '--agent is required';
  const targets = [values.tool, values.resource, values.prompt].filter((v) => v !== undefined);
  if (targets.length !== 1) return 'give exactly one of --tool, --resource or --prompt';
  let args: unknown;
  if (values.args !== undefined) {
    try {
      args = JSON.parse(values.args);
    } catch {
      return '--args is not valid JSON';
    }
    if (typeof args !== 'object' || args === null || Array.isArray(args)) return '--args must be a JSON object';
  }
  const id = targets[0] as string;
  const prefix = id.includes('__') ? id.slice(0, id.indexOf('__')) : '';
  const upstream = values.upstream ?? (values.resource === undefined ? prefix : '');
  const [action, kind] =
    values.tool !== undefined ? (['tools/call', 'tool'] as const) : values.resource !== undefined ? (['resources/read', 'resource'] as const) : (['prompts/get', 'prompt'] as const);
  return { agent: values.agent, action, resource: { kind, id, upstream }, ...(args === undefined ? {} : { args }), listing: values.listing === true };
}

/** The conversation key `policy explain` records its simulated conversation under. */
const EXPLAINED = 'policy-explain';

/** A tracker holding the conversation the flags describe, or a usage message. */
function conversationOf(values: Flags, config: ResolvedConfig): ProvenanceTracker | string {
  const tracker = new ProvenanceTracker({ ...config.provenance });
  for (const text of values['user-said'] ?? []) {
    const r = newReading();
    readText(text, r);
    tracker.record(EXPLAINED, 'user', r);
  }
  for (const [flag, origin] of [['untrusted', 'untrusted'], ['trusted', 'trusted']] as const) {
    for (const item of values[flag] ?? []) {
      const eq = item.indexOf('=');
      if (eq <= 0) return `--${flag} takes TOOL=TEXT`;
      const r = newReading();
      readText(item.slice(eq + 1), r);
      tracker.record(EXPLAINED, origin, r, item.slice(0, eq));
    }
  }
  if ((values.flagged ?? []).length > 0) tracker.flag(EXPLAINED, values.flagged ?? []);
  return tracker;
}

function indent(text: string): string {
  return text.replace(/^/gm, '    ');
}

export const policyExplain: CliCommand = async (argv, io) => {
  const parsed = parseFlags('policy explain', USAGE, argv, {
        agent: { type: 'string', short: 'a' },
        tool: { type: 'string', short: 't' },
        resource: { type: 'string' },
        prompt: { type: 'string' },
        args: { type: 'string' },
        upstream: { type: 'string' },
        listing: { type: 'boolean' },
        config: { type: 'string', short: 'c' },
        json: { type: 'boolean' },
        'user-said': { type: 'string', multiple: true },
        untrusted: { type: 'string', multiple: true },
        trusted: { type: 'string', multiple: true },
        flagged: { type: 'string', multiple: true },
        shell: { type: 'string' },
      }, io);
  if (typeof parsed === 'number') return parsed;
  const values: Flags = parsed.values;
  if (values.shell !== undefined) {
    if (values.tool !== undefined || values.resource !== undefined || values.prompt !== undefined) {
      io.stderr(`bastion policy explain: give exactly one of --tool, --resource, --prompt or --shell\nRun 'bastion policy explain --help' for usage.\n`);
      return EXIT.USAGE;
    }
    return explainShell(values, io);
  }
  const req = requestOf(values);
  if (typeof req === 'string') {
    io.stderr(`bastion policy explain: ${req}\nRun 'bastion policy explain --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const json = values.json === true;

  let engine: PolicyEngine;
  let guard: PathGuard;
  let config: ResolvedConfig;
  try {
    ({ config } = await loadConfig(resolveConfigPath(values.config, io), { env: io.env, secrets: 'lenient' }));
    engine = PolicyEngine.compile(config);
    guard = PathGuard.compile(config.paths);
  } catch (err) {
    return configFailure(err, json, io);
  }

  const conversation = conversationOf(values, config);
  if (typeof conversation === 'string') {
    io.stderr(`bastion policy explain: ${conversation}\nRun 'bastion policy explain --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const agent = config.agents.get(req.agent);
  const facts =
    req.action === 'tools/call' && agent !== undefined
      ? callFacts(conversation, {
          agent,
          label: new LabelIndex(config.tools, config.agents.values()).labelOf(req.agent, req.resource.id),
          inputSchema: undefined,
          args: (req.args ?? {}) as Record<string, unknown>,
          conversation: EXPLAINED,
        })
      : undefined;
  const x = engine.explain(facts === undefined ? req : { ...req, facts: policyFacts(facts) });
  const provenance =
    facts === undefined
      ? undefined
      : {
          labels: { source: facts.label.source, effects: facts.label.effects, rule: facts.label.rule },
          conversation: { tainted: facts.taint.tainted, flagged: facts.taint.flagged, sources: facts.taint.sources, flaggedBy: facts.taint.flaggedBy },
          arguments: facts.leaves.map((l) => ({ pointer: l.pointer, from: l.from, seen: l.seen })),
          argsFrom: facts.argsFrom,
          hosts: facts.hosts,
          emailDomains: facts.emailDomains,
        };
  const paths = await pathVerdict(guard, config, req);
  // The door's order: a Cedar denial ends the call; otherwise a path denial does.
  const final: Decision = x.effect !== 'deny' && paths.decision.effect === 'deny' ? paths.decision : x;
  const cedar = { effect: x.effect, reason: x.reason, rule: x.rule };
  const pathsOut = {
    effect: paths.decision.effect,
    reason: paths.decision.reason,
    rule: paths.decision.rule,
    mode: paths.mode,
    checked: paths.checked,
    ...(paths.argument !== undefined ? { argument: paths.argument.pointer, argumentKind: paths.argument.kind, ...(paths.argument.key === true ? { argumentIsKey: true } : {}) } : {}),
    schemaKnown: false,
  };
  if (json) {
    io.stdout(
      `${JSON.stringify({
        effect: final.effect,
        reason: final.reason,
        rule: final.rule,
        cedar,
        paths: pathsOut,
        ...(provenance !== undefined ? { provenance } : {}),
        policies: x.determining.map((p) => ({ id: p.id, source: p.source, text: p.text })),
        errors: x.errors,
      })}\n`,
    );
  } else {
    let out = `effect: ${final.effect}\nreason: ${final.reason}\nrule:   ${final.rule}\n`;
    out += `\ncedar:  ${cedar.effect} ${cedar.reason} (${cedar.rule})\n`;
    const where = paths.argument === undefined ? '' : `, ${paths.argument.key === true ? 'a key of ' : ''}${paths.argument.pointer === '' ? '/' : paths.argument.pointer} (${paths.argument.kind})`;
    out += `paths:  ${pathsOut.effect} ${pathsOut.reason} (${pathsOut.rule}${where}); pathGuard ${paths.mode}, ${paths.checked} checked; tool schema not known here, schema hints not applied\n`;
    if (provenance !== undefined) {
      const c = provenance.conversation;
      out += `\nlabels: source ${provenance.labels.source}, effects ${provenance.labels.effects.join(', ')} (${provenance.labels.rule})\n`;
      out += `taint:  ${c.tainted ? `tainted by ${c.sources.join(', ') || 'an untrusted source'}` : 'untainted'}${c.flagged ? `; flagged by ${c.flaggedBy.join(', ')}` : ''}\n`;
      out += `provenance:${provenance.arguments.length === 0 ? ' (no argument traced)' : ''}\n`;
      for (const a of provenance.arguments) out += `  ${a.pointer}  ${a.from}${a.seen.length > 1 || a.seen[0] !== a.from ? ` (seen: ${a.seen.join(', ')})` : ''}\n`;
    }
    for (const p of x.determining) out += `\npolicy ${p.id} (${p.source}):\n${indent(p.text)}\n`;
    if (x.errors.length > 0) out += `\nerrors:\n${x.errors.map((e) => `  ${e.policy === '' ? '-' : e.policy}: ${e.message}`).join('\n')}\n`;
    io.stdout(out);
  }
  return final.effect === 'allow' ? EXIT.OK : EXIT.FAILED;
};

/**
 * Reports a config (or policy file) that could not be loaded or compiled: its message (config
 * problems only; anything else is an internal error, unnamed) on stderr, or as JSON. Returns the exit code.
 */
export function configFailure(err: unknown, json: boolean, io: CliIO): number {
  const e = toBastionError(err);
  const configProblem = e.code === 'ERR_CONFIG_NOT_FOUND' || e.code === 'ERR_CONFIG_INVALID' || e.code === 'ERR_CONFIG_SECRET_REF' || e.code === 'ERR_POLICY_INVALID';
  if (json) io.stdout(`${JSON.stringify({ ok: false, code: e.code, message: configProblem ? e.message : 'internal error' })}\n`);
  else io.stderr(`bastion policy explain: ${configProblem ? e.message : 'internal error'}\n`);
  return configProblem ? EXIT.CONFIG : EXIT.INTERNAL;
}

/**
 * The path guard's answer for the request, with the door's own functions: a
 * tool call's arguments (the tool's name as its upstream lists it, no input
 * schema) or a resource URI; prompts are not path-checked.
 */
async function pathVerdict(guard: PathGuard, config: ResolvedConfig, req: PolicyRequest): Promise<PathVerdict & { mode: string }> {
  const upstream = config.upstreams.get(req.resource.upstream);
  const mode = pathGuardMode(upstream);
  if (req.action === 'resources/read') return { decision: await guard.checkResource(upstream, req.resource.id), checked: isFileUrl(req.resource.id) ? 1 : 0, mode };
  if (req.action !== 'tools/call') return { decision: { effect: 'allow', reason: 'path.none', rule: 'paths' }, checked: 0, mode };
  const prefix = `${req.resource.upstream}__`;
  const tool = upstream?.prefix !== false && req.resource.id.startsWith(prefix) ? req.resource.id.slice(prefix.length) : req.resource.id;
  return { ...(await guard.checkArguments(upstream, tool, undefined, req.args ?? {})), mode };
}
