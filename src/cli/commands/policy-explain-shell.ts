/**
 * `bastion policy explain --agent NAME --shell LINE`: the sandbox's command
 * policy for one shell line, as `sandbox__run` takes it (src/sandbox/policy.ts,
 * the door's own code): the line parsed, each command's program resolved and
 * decided (`sandbox/exec`, with the Cedar policies that determined it) and its
 * path arguments checked, in order, until the first refusal.
 *
 * The workspace is the agent's notional one under `sandbox.workspaces` (a
 * path into an existing workspace with a symlink out is not seen here).
 * Exit codes as for `policy explain`: 0 allow; 1 deny or approve; 2 usage; 3 config; 70 internal.
 */
import { join } from 'node:path';
import { loadConfig } from '../../config/load.ts';
import { PolicyEngine, type Explanation } from '../../policy/engine.ts';
import { PathGuard } from '../../policy/paths.ts';
import { decideRun } from '../../sandbox/policy.ts';
import { loadShellParser, parseShellLine } from '../../sandbox/shell.ts';
import { EXIT, type CliIO } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';
import { configFailure } from './policy-explain.ts';

/** Explains a shell line for an agent (see the module docs). */
export async function explainShell(values: { agent?: string | undefined; shell?: string | undefined; config?: string | undefined; json?: boolean | undefined }, io: CliIO): Promise<number> {
  const json = values.json === true;
  if (values.agent === undefined || values.agent === '') {
    io.stderr(`bastion policy explain: --agent is required\nRun 'bastion policy explain --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const agent = values.agent;
  let engine: PolicyEngine;
  let guard: PathGuard;
  let workspace: string;
  try {
    const { config } = await loadConfig(resolveConfigPath(values.config, io), { env: io.env, secrets: 'lenient' });
    engine = PolicyEngine.compile(config);
    guard = PathGuard.compile({ ...config.paths, allow: [`${config.sandbox.workspaces}/**`] });
    workspace = join(config.sandbox.workspaces, `${agent}-explain`);
    loadShellParser();
  } catch (err) {
    return configFailure(err, json, io);
  }
  const explained: Explanation[] = [];
  const verdict = await decideRun(
    { kind: 'shell', line: values.shell ?? '' },
    {
      agent,
      session: '',
      authorize: (req) => {
        const x = engine.explain(req);
        explained.push(x);
        return x;
      },
      parse: parseShellLine,
      checkHostPath: (p) => guard.check(p),
      workspace,
    },
  );
  const d = verdict.decision;
  const commands = verdict.commands.map((c, i) => ({
    index: c.index + 1,
    program: c.name,
    path: c.path,
    effect: c.decision.effect,
    reason: c.decision.reason,
    rule: c.decision.rule,
    ...(c.deniedPath !== undefined ? { deniedPath: c.deniedPath } : {}),
    ...(c.dynamic ? { dynamic: true } : {}),
    ...(c.within.length > 0 ? { within: c.within } : {}),
    policies: (explained[i]?.determining ?? []).map((p) => ({ id: p.id, source: p.source, text: p.text })),
  }));
  if (json) {
    io.stdout(`${JSON.stringify({ effect: d.effect, reason: d.reason, rule: d.rule, ...(verdict.parseError !== undefined ? { parse: verdict.parseError } : {}), commands })}\n`);
  } else {
    let out = `effect: ${d.effect}\nreason: ${d.reason}\nrule:   ${d.rule}\n`;
    if (verdict.parseError !== undefined) out += `\nshell:  ${verdict.parseError.code}: ${verdict.parseError.reason}\n`;
    for (const c of commands) {
      out += `\ncommand ${c.index}: ${c.program} → ${c.path === '' ? '(not found in the sandbox)' : c.path}${c.within !== undefined ? ` [${c.within.join(' > ')}]` : ''}${c.dynamic === true ? ' (arguments known only when it runs)' : ''}\n`;
      out += `  ${c.effect} ${c.reason} (${c.rule})${c.deniedPath !== undefined ? `: ${c.deniedPath}` : ''}\n`;
      for (const p of c.policies) out += `  policy ${p.id} (${p.source}):\n${p.text.replace(/^/gm, '      ')}\n`;
    }
    io.stdout(out);
  }
  return d.effect === 'allow' ? EXIT.OK : EXIT.FAILED;
}
