/**
 * `bastion config check [--config F] [--json] [--probe]`: validates a config file
 * without starting anything. Secret references are resolved leniently: one that does not
 * resolve here is a warning, since the environment `serve` runs in may differ, except
 * key references (`agents.X.keys`, `admin.keys`): an unset one is an error, as in `serve`.
 *
 * It also prints each upstream's path guard (docs/tool-door.md, "Path arguments"):
 * its mode and, with `--probe` (which starts each upstream once to list its
 * tools, then stops it), the tool arguments no classification covers. Without
 * `--probe` the tools' schemas are not known, and the output says so.
 *
 * Exit codes: 0 valid; 1 invalid (schema, YAML, a key reference that does not
 * resolve or a resolved key that cannot be used); 2 bad usage; 3 config file not found; 70 internal error.
 */
import { resolve } from 'node:path';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedConfig, ResolvedUpstream } from '../../config/types.ts';
import { UpstreamConnection } from '../../mcp/upstream.ts';
import { PathGuard, pathGuardMode } from '../../policy/paths.ts';
import { PolicyEngine } from '../../policy/engine.ts';
import { LabelIndex } from '../../policy/labels.ts';
import { globRegExp } from '../../policy/tool-meta.ts';
import { parseFlags } from '../args.ts';
import { loadConfig } from '../../config/load.ts';
import { isBastionError, toBastionError } from '../../errors.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';

const USAGE = `Usage: bastion config check [--config FILE] [--json] [--probe]

Validates a Bastion config file: YAML syntax, the schema (unknown keys are
errors), globs, origins and policy files. Secret references that do not
resolve in this environment are reported as warnings, except agent and
admin keys (agents.X.keys, admin.keys): an unset one is an error. Prints each upstream's
path guard mode; with --probe, also the tool arguments that nothing classifies
(under pathGuard strict they are checked as paths, under named not at all).
Lists, per agent, the tools it may call that no label pattern labels (read
strictly: untrusted results, every side effect): abilities always, upstream
tools with --probe, which also lists label patterns that name no tool.

Options:
  -c, --config FILE  config file (default: $BASTION_CONFIG, else ./bastion.yaml)
      --json         print the result as JSON on stdout
      --probe        start each upstream once to list its tools (then stop it)
  -h, --help         show this help

Exit status: 0 valid, 1 invalid, 2 usage error, 3 config file not found.
`;

/**
 * The config file a command uses: `--config` when given, else `$BASTION_CONFIG`,
 * else `bastion.yaml`; relative paths resolve against `io.cwd`. Absolute result.
 */
export function resolveConfigPath(flag: string | undefined, io: CliIO): string {
  const fromEnv = io.env.BASTION_CONFIG;
  const chosen = flag ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'bastion.yaml');
  return resolve(io.cwd, chosen);
}

export const configCheck: CliCommand = async (argv, io) => {
  const parsed = parseFlags('config check', USAGE, argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' }, probe: { type: 'boolean' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const json = values.json === true;
  const file = resolveConfigPath(values.config, io);

  try {
    // Other references are warnings here (the variables may be set only where Bastion runs), but a key that would not resolve is an error, as in serve.
    const { config, warnings } = await loadConfig(file, { env: io.env, secrets: 'lenient', keys: 'strict' });
    // Compile what serve compiles, so a policy file that does not parse or validate fails here too.
    PolicyEngine.compile(config);
    const guard = PathGuard.compile(config.paths);
    const agents = config.agents.size;
    const upstreams = config.upstreams.size;
    const report = await pathGuardReport(guard, config, values.probe === true);
    const labels = labelReport(config, report);
    if (json) {
      io.stdout(`${JSON.stringify({ ok: true, file, agents, upstreams, warnings, pathGuard: report, labels })}\n`);
    } else {
      io.stdout(`ok: ${file} (${agents} ${agents === 1 ? 'agent' : 'agents'}, ${upstreams} ${upstreams === 1 ? 'upstream' : 'upstreams'})\n`);
      io.stdout(formatPathGuardReport(report, 'bastion config check --probe'));
      io.stdout(formatLabelReport(labels));
      for (const w of warnings) io.stderr(`warning: ${w}\n`);
    }
    return EXIT.OK;
  } catch (err) {
    const e = toBastionError(err);
    const exit =
      e.code === 'ERR_CONFIG_NOT_FOUND' ? EXIT.CONFIG : e.code === 'ERR_CONFIG_INVALID' || e.code === 'ERR_CONFIG_SECRET_REF' || e.code === 'ERR_POLICY_INVALID' ? EXIT.FAILED : EXIT.INTERNAL;
    if (json) {
      const issues = isBastionError(e) && Array.isArray(e.detail?.issues) ? e.detail.issues : undefined;
      io.stdout(`${JSON.stringify({ ok: false, code: e.code, ...(issues !== undefined ? { issues } : { message: e.message }) })}\n`);
    } else {
      io.stderr(`${e.message}\n`);
    }
    return exit;
  }
};

/** One upstream's path guard, as `config check` and `serve` print it. */
export interface PathGuardUpstreamReport {
  readonly upstream: string;
  readonly mode: 'strict' | 'named';
  readonly workspace?: string;
  /** Number of `argumentKinds` entries (pointer classifications). */
  readonly classified: number;
  /** Tool (as the upstream lists it) → unclassified argument pointers; only tools with some. Absent: tools not known. */
  readonly unclassified?: Readonly<Record<string, readonly string[]>>;
  /** Why the tools are not known (not probed, skipped, failed). */
  readonly toolsUnknown?: string;
  /** The tools' names as the upstream lists them, when probed. */
  readonly tools?: readonly string[];
}

/**
 * The path guard of every upstream; with `probe`, each upstream is started once
 * (stdio process or HTTP session), its tools listed, and stopped. Upstreams that
 * need an agent's context (vault placeholders in the environment, signed
 * requests) are not probed. Never throws for an upstream that fails: its entry says why.
 */
export async function pathGuardReport(guard: PathGuard, config: Pick<ResolvedConfig, 'upstreams'>, probe: boolean): Promise<PathGuardUpstreamReport[]> {
  return Promise.all(
    [...config.upstreams.values()].map(async (u) => {
      const base = {
        upstream: u.name,
        mode: pathGuardMode(u),
        ...(u.workspace !== undefined ? { workspace: u.workspace } : {}),
        classified: Object.values(u.argumentKinds ?? {}).reduce((n, pointers) => n + Object.keys(pointers).length, 0),
      };
      if (!probe) return { ...base, toolsUnknown: 'tool schemas are not known without starting the upstream' };
      const listed = await listTools(u);
      if (typeof listed === 'string') return { ...base, toolsUnknown: listed };
      const unclassified: Record<string, string[]> = {};
      for (const t of listed) {
        const pointers = guard.unclassifiedArguments(u, t.name, t.inputSchema);
        if (pointers.length > 0) unclassified[t.name] = pointers;
      }
      return { ...base, unclassified, tools: listed.map((t) => t.name) };
    }),
  );
}

/** Per agent, the tools it may call that no label pattern labels fully (read strictly), and label patterns that name no listed tool. */
export interface LabelReport {
  /** Agent → exposed names of its unlabelled tools (abilities always; upstream tools when probed). */
  readonly unlabelled: Readonly<Record<string, readonly string[]>>;
  /** Label patterns (config paths) that match no known tool; only when every upstream was listed. */
  readonly unused: readonly string[];
  /** True when some upstream's tools are not known (not probed or failed): its tools are not in the lists. */
  readonly partial: boolean;
}

/**
 * The labels check of `config check`: every exposed tool (abilities, and the
 * upstreams' tools listed by `--probe`) that an agent's allowlist reaches and
 * no pattern labels fully, so it is read strictly (docs/labels.md).
 */
export function labelReport(config: ResolvedConfig, report: readonly PathGuardUpstreamReport[]): LabelReport {
  const index = new LabelIndex(config.tools, config.agents.values());
  const names = [...config.abilities.keys()];
  for (const r of report) {
    const u = config.upstreams.get(r.upstream);
    for (const t of r.tools ?? []) names.push(u?.prefix === false ? t : `${r.upstream}__${t}`);
  }
  const unlabelled: Record<string, string[]> = {};
  for (const [name, agent] of config.agents) {
    const allowed = [...agent.tools, ...agent.approve].map((p) => globRegExp(p));
    const list = names.filter((n) => allowed.some((re) => re.test(n)) && !index.isLabelled(name, n));
    if (list.length > 0) unlabelled[name] = list;
  }
  const partial = report.some((r) => r.tools === undefined);
  return { unlabelled, unused: partial ? [] : index.unusedPatterns(names), partial };
}

/** The label report as text lines. */
export function formatLabelReport(r: LabelReport): string {
  let out = '';
  const agents = Object.entries(r.unlabelled);
  if (agents.length > 0 || r.partial) out += 'labels:\n';
  for (const [agent, tools] of agents) out += `  agent ${agent}: unlabelled (read strictly: untrusted results, every side effect): ${tools.join(', ')}\n`;
  if (r.partial) out += '  upstream tools not known (see the path guard above; bastion config check --probe lists them): their unlabelled tools are not listed\n';
  for (const p of r.unused) out += `  ${p} names no listed tool\n`;
  return out;
}

async function listTools(u: ResolvedUpstream): Promise<Tool[] | string> {
  if (Object.keys(u.placeholderEnv).length > 0) return 'not probed: its environment holds an agent\'s vault placeholders';
  if (u.signContext || u.token !== undefined) return 'not probed: it expects requests signed for an agent';
  let conn: UpstreamConnection;
  try {
    conn = await UpstreamConnection.connect(u, { sampling: false, elicitation: false }, { onListChanged: () => undefined, onResourceUpdated: () => undefined, onLog: () => undefined, onClose: () => undefined });
  } catch (err) {
    return `not known: the upstream did not start (${toBastionError(err, 'ERR_UPSTREAM_UNAVAILABLE').code})`;
  }
  try {
    return await conn.listTools();
  } catch (err) {
    return `not known: tools/list failed (${toBastionError(err, 'ERR_UPSTREAM_UNAVAILABLE').code})`;
  } finally {
    await conn.close();
  }
}

/** The report as text lines (`hint` names the command that lists unknown tools). */
export function formatPathGuardReport(report: readonly PathGuardUpstreamReport[], hint: string): string {
  if (report.length === 0) return '';
  let out = 'path guard:\n';
  for (const r of report) {
    const what = r.mode === 'strict' ? 'unclassified string arguments are checked as paths' : 'only arguments classified as paths (and file: URIs) are checked';
    out += `  upstream ${r.upstream}: ${r.mode}${r.workspace !== undefined ? ` (workspace ${r.workspace})` : ''}: ${what}; ${r.classified} argumentKinds\n`;
    if (r.unclassified === undefined) {
      out += `    tools: ${r.toolsUnknown ?? 'not known'}${r.toolsUnknown?.startsWith('tool schemas') === true ? ` (${hint} lists them)` : ''}\n`;
      continue;
    }
    const tools = Object.entries(r.unclassified);
    if (tools.length === 0) out += '    every string argument of its tools is classified\n';
    for (const [tool, pointers] of tools) out += `    unclassified in ${tool}: ${pointers.join(', ')}\n`;
  }
  return out;
}
