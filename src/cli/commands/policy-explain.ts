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
import { EXIT, type CliCommand } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const USAGE = `Usage: bastion policy explain --agent NAME (--tool NAME | --resource URI | --prompt NAME)
                              [--args JSON] [--upstream NAME] [--listing] [--config FILE] [--json]

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
      --args JSON       the call's arguments, a JSON object (context.args)
      --upstream NAME   the upstream (default: the name's prefix before "__")
      --listing         ask whether the item may be listed (context.listing)
  -c, --config FILE     config file (default: $BASTION_CONFIG, else ./bastion.yaml)
      --json            print the result as JSON on stdout
  -h, --help            show this help

context.argsDigest and context.session are empty strings here.

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
      }, io);
  if (typeof parsed === 'number') return parsed;
  const values: Flags = parsed.values;
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
    const e = toBastionError(err);
    const configProblem = e.code === 'ERR_CONFIG_NOT_FOUND' || e.code === 'ERR_CONFIG_INVALID' || e.code === 'ERR_CONFIG_SECRET_REF' || e.code === 'ERR_POLICY_INVALID';
    if (json) io.stdout(`${JSON.stringify({ ok: false, code: e.code, message: configProblem ? e.message : 'internal error' })}\n`);
    else io.stderr(`bastion policy explain: ${configProblem ? e.message : 'internal error'}\n`);
    return configProblem ? EXIT.CONFIG : EXIT.INTERNAL;
  }

  const x = engine.explain(req);
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
        policies: x.determining.map((p) => ({ id: p.id, source: p.source, text: p.text })),
        errors: x.errors,
      })}\n`,
    );
  } else {
    let out = `effect: ${final.effect}\nreason: ${final.reason}\nrule:   ${final.rule}\n`;
    out += `\ncedar:  ${cedar.effect} ${cedar.reason} (${cedar.rule})\n`;
    const where = paths.argument === undefined ? '' : `, ${paths.argument.key === true ? 'a key of ' : ''}${paths.argument.pointer === '' ? '/' : paths.argument.pointer} (${paths.argument.kind})`;
    out += `paths:  ${pathsOut.effect} ${pathsOut.reason} (${pathsOut.rule}${where}); pathGuard ${paths.mode}, ${paths.checked} checked; tool schema not known here, schema hints not applied\n`;
    for (const p of x.determining) out += `\npolicy ${p.id} (${p.source}):\n${indent(p.text)}\n`;
    if (x.errors.length > 0) out += `\nerrors:\n${x.errors.map((e) => `  ${e.policy === '' ? '-' : e.policy}: ${e.message}`).join('\n')}\n`;
    io.stdout(out);
  }
  return final.effect === 'allow' ? EXIT.OK : EXIT.FAILED;
};

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
