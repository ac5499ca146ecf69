/**
 * `bastion egress check URL`: the network door's decision on a URL, without
 * connecting: the SSRF guard (as written, then every resolved address) and,
 * with `--agent`, the agent's egress policy, in the order the proxy applies them.
 *
 * Exit codes: 0 allow; 1 deny; 2 bad usage; 3 the config cannot be loaded or
 * compiled; 70 internal error.
 */
import { existsSync } from 'node:fs';
import { loadConfig } from '../../config/load.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { EgressGuard } from '../../egress/guard.ts';
import { parseEgressTarget } from '../../net/target.ts';
import { toTargetUrl } from '../../egress/ssrf-classify.ts';
import { toBastionError } from '../../errors.ts';
import { PolicyEngine } from '../../policy/engine.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { resolveConfigPath } from './config-check.ts';

const USAGE = `Usage: bastion egress check URL|HOST|IP [--agent NAME] [--method METHOD] [--connect] [--config FILE] [--json]

Prints the network door's decision on URL and the reason, without connecting.
Names are resolved (egress.staticHosts first, else DNS) and every address is
classified, as the proxy does. Without --agent only the SSRF guard decides
(no allowlist, no unsafeAllowPrivate); with it, the agent's network policy too.

Options:
  -a, --agent NAME      decide for this agent (its network allowlist and unsafeAllowPrivate)
  -m, --method METHOD   request method (default GET)
      --connect         decide a CONNECT tunnel (network/connect) instead of a request
  -c, --config FILE     config file (default: $BASTION_CONFIG, else ./bastion.yaml;
                        optional without --agent)
      --json            print the result as JSON on stdout
  -h, --help            show this help

Exit status: 0 allow; 1 deny; 2 usage error; 3 config could not be loaded; 70 internal error.
`;

/** The config used without one: no agents, no static hosts, no DNS cache. */
function bareConfig(): Pick<ResolvedConfig, 'agents' | 'egress' | 'policies'> {
  return {
    agents: new Map(),
    policies: [],
    egress: {
      intercept: 'auto',
      maxBodyBytes: 0,
      maxHeaderBytes: 0,
      headersTimeoutMs: 0,
      bodyTimeoutMs: 0,
      idleTimeoutMs: 0,
      connectTimeoutMs: 0,
      upstreamTimeoutMs: 0,
      dnsCacheMs: 0,
      staticHosts: {},
    },
  };
}

export const egressCheck: CliCommand = async (argv, io) => {
  const parsed = parseFlags(
    'egress check',
    USAGE,
    argv,
    {
      agent: { type: 'string', short: 'a' },
      method: { type: 'string', short: 'm' },
      connect: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      json: { type: 'boolean' },
    },
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const v = parsed.values as { agent?: string; method?: string; connect?: boolean; config?: string; json?: boolean };
  const json = v.json === true;
  if (parsed.positionals.length !== 1) {
    io.stderr(`bastion egress check: give exactly one URL\nRun 'bastion egress check --help' for usage.\n`);
    return EXIT.USAGE;
  }
  const input = parsed.positionals[0] as string;
  const method = (v.method ?? 'GET').toUpperCase();
  if (!/^[A-Z]{1,16}$/.test(method)) {
    io.stderr(`bastion egress check: --method must be an HTTP method name\n`);
    return EXIT.USAGE;
  }

  let config: Pick<ResolvedConfig, 'agents' | 'egress' | 'policies'> = bareConfig();
  const path = resolveConfigPath(v.config, io);
  if (v.agent !== undefined || v.config !== undefined || existsSync(path)) {
    try {
      config = (await loadConfig(path, { env: io.env, secrets: 'lenient' })).config;
    } catch (err) {
      const e = toBastionError(err);
      if (json) io.stdout(`${JSON.stringify({ ok: false, code: e.code, message: e.message })}\n`);
      else io.stderr(`bastion egress check: ${e.message}\n`);
      return EXIT.CONFIG;
    }
    if (v.agent !== undefined && !config.agents.has(v.agent)) {
      io.stderr(`bastion egress check: no agent ${JSON.stringify(v.agent)} in the config\n`);
      return EXIT.USAGE;
    }
  }

  let engine: PolicyEngine;
  try {
    engine = PolicyEngine.compile(config);
  } catch (err) {
    io.stderr(`bastion egress check: ${toBastionError(err).message}\n`);
    return EXIT.CONFIG;
  }
  const guard = new EgressGuard(config, engine);
  const target = parseEgressTarget(toTargetUrl(input), method);
  const verdict = target
    ? await guard.check(v.agent, v.connect === true ? 'network/connect' : 'network/request', target)
    : { decision: { effect: 'deny' as const, reason: 'ssrf.url.invalid', rule: 'url' }, policies: [], intercept: false, addresses: [], exception: false };
  const out = {
    url: input,
    effect: verdict.decision.effect,
    reason: verdict.decision.reason,
    rule: verdict.decision.rule,
    ...(target ? { host: target.host, port: target.port } : {}),
    addresses: verdict.addresses,
    ...(verdict.address !== undefined ? { address: verdict.address } : {}),
    ...(verdict.decision.effect === 'allow' && v.connect === true ? { intercept: verdict.intercept } : {}),
    ...(verdict.exception ? { unsafeAllowPrivate: true } : {}),
    policies: verdict.policies,
  };
  if (json) io.stdout(`${JSON.stringify(out)}\n`);
  else {
    let text = `decision: ${out.effect}\nreason:   ${out.reason}\nrule:     ${out.rule}\n`;
    if (target) text += `target:   ${target.scheme}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}\n`;
    if (out.addresses.length > 0) text += `addresses: ${out.addresses.join(', ')}\n`;
    if (verdict.exception) text += 'note:     allowed by unsafeAllowPrivate (audited on every use)\n';
    io.stdout(text);
  }
  return verdict.decision.effect === 'allow' ? EXIT.OK : EXIT.FAILED;
};
