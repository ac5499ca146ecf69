/**
 * `bastion serve [--config F]`: loads the config strictly, opens the gateway,
 * shows generated agent keys once and each upstream's path guard mode (tool
 * schemas are not known yet: upstreams start with the first session), serves HTTP until SIGINT/SIGTERM, then
 * closes sessions and writes the final audit checkpoint.
 */
import { loadConfig, type LoadOptions } from '../../config/load.ts';
import { isBastionError } from '../../errors.ts';
import { openNetworkDoor, type NetworkDoor } from '../../egress/door.ts';
import { loadVaultKey } from '../../vault/kek.ts';
import type { Kek } from '../../vault/kek.ts';
import { Gateway } from '../../server/gateway.ts';
import { startHttpServer } from '../../server/http.ts';
import { AlertNotifier } from '../../alerts/notifier.ts';
import { ModelDoor } from '../../model/door.ts';
import { A2aDoor } from '../../a2a/door.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { formatPathGuardReport, pathGuardReport, resolveConfigPath } from './config-check.ts';

const HELP = `Usage: bastion serve [--config FILE] [--listen HOST:PORT] [--egress-listen HOST:PORT|off]

Runs the gateway: the model door (OpenAI /v1/chat/completions, Anthropic
/v1/messages, /v1/models), MCP (Streamable HTTP) at /mcp, admin API at /api,
the network door's base-URL mode at /egress/<host>/<path>, and the egress
proxy on server.egress (default 127.0.0.1:8791).
  --config FILE   config file (default: $BASTION_CONFIG or ./bastion.yaml)
  --listen HOST:PORT
                  the HTTP listener, instead of server.listen (also $BASTION_LISTEN;
                  the flag wins)
  --egress-listen HOST:PORT|off
                  the egress proxy, instead of server.egress (also
                  $BASTION_EGRESS_LISTEN; off turns it off)

Exit codes: 0 stopped cleanly, 2 usage, 3 config invalid, 4 store error, 70 internal.`;

/**
 * The listen addresses given outside the file: `--listen` (else `$BASTION_LISTEN`) for the HTTP
 * listener, `--egress-listen` (else `$BASTION_EGRESS_LISTEN`; `off` for none) for the egress proxy.
 * An empty variable counts as unset. Checked by the config loader (`ERR_CONFIG_INVALID`, exit 3).
 */
function listenOverrides(flag: unknown, egressFlag: unknown, env: Readonly<Record<string, string | undefined>>): LoadOptions['listen'] {
  const pick = (value: unknown, variable: string, name: string): { value: string; source: string } | undefined => {
    if (typeof value === 'string') return { value, source: name };
    const v = env[variable];
    return v !== undefined && v !== '' ? { value: v, source: variable } : undefined;
  };
  const main = pick(flag, 'BASTION_LISTEN', '--listen');
  const egress = pick(egressFlag, 'BASTION_EGRESS_LISTEN', '--egress-listen');
  if (main === undefined && egress === undefined) return undefined;
  return {
    ...(main !== undefined ? { main } : {}),
    ...(egress !== undefined ? { egress: { value: egress.value === 'off' ? false : egress.value, source: egress.source } } : {}),
  };
}

export const serve: CliCommand = async (argv, io) => {
  const parsed = parseFlags('serve', HELP, argv, { config: { type: 'string', short: 'c' }, listen: { type: 'string' }, 'egress-listen': { type: 'string' } }, io);
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const file = resolveConfigPath(values.config, io);
  const listen = listenOverrides(values.listen, values['egress-listen'], io.env);
  let opened: Awaited<ReturnType<typeof Gateway.open>>;
  // The notifier needs the opened gateway (it audits its own failures); audit failures before it exists only reach stderr.
  const auditAlerts: { target?: AlertNotifier; notify(a: Parameters<AlertNotifier['notify']>[0]): void } = {
    notify(a) {
      this.target?.notify(a);
    },
  };
  let kek: Kek;
  let config;
  try {
    ({ config } = await loadConfig(file, { env: io.env, secrets: 'strict', ...(listen !== undefined ? { listen } : {}) }));
    kek = await loadVaultKey(config, io.env);
    opened = await Gateway.open(config, {
      kek,
      // Pinned tool definitions that change are alerted through the same notifier (set up below).
      alerts: auditAlerts,
      // A failed audit write is never silent: a line on stderr and an admin alert (the audit step sends at most one a minute).
      onAuditFailure: (f) => {
        io.stderr(`bastion: audit write failed (${f.code}) for ${f.door} ${f.method}; ${f.count} failed so far${f.durability === 'durable' ? ', requests are refused' : ''}\n`);
        auditAlerts.notify({ kind: 'audit.write_failed', severity: 'critical', time: new Date().toISOString(), agent: '', user: null, summary: `audit writes are failing (${f.count} so far)`, detail: { code: f.code, door: f.door, method: f.method, durability: f.durability } });
      },
    });
  } catch (err) {
    io.stderr(`bastion serve: ${isBastionError(err) ? err.message : 'internal error'}\n`);
    if (isBastionError(err) && err.code === 'ERR_STORE') return EXIT.STORE;
    if (isBastionError(err)) return EXIT.CONFIG;
    return EXIT.INTERNAL;
  }
  const { gateway, generated } = opened;
  const alerts = (auditAlerts.target = new AlertNotifier({
    minSeverity: config.alerts.minSeverity,
    ...(config.alerts.webhook ? { webhook: config.alerts.webhook } : {}),
    ...(config.alerts.email ? { smtp: config.alerts.email } : {}),
    onError: (e) => {
      io.stderr(`bastion: ${e.message}\n`);
      gateway.auditStep.batched({ time: new Date().toISOString(), door: 'system', agent: null, method: 'alert.failed', decision: { effect: 'deny', reason: 'alert.delivery', rule: 'alerts' }, outcome: 'error', durationMs: 0, detail: { ...e.detail } });
    },
  }));
  let door: NetworkDoor;
  let model: ModelDoor;
  let a2a: A2aDoor | undefined;
  try {
    door = await openNetworkDoor(gateway, {
      kek,
      onAlert: (a) => {
        io.stderr(`bastion: ALERT ${a.kind}: agent ${a.agent} to ${a.host}: ${a.reason}${a.secrets.length > 0 ? ` (secret ${a.secrets.join(', ')})` : ''}\n`);
        alerts.notify({ kind: `network.${a.kind}`, severity: 'critical', time: new Date().toISOString(), agent: a.agent, user: null, summary: `agent ${a.agent} tried to send a credential to ${a.host}: ${a.reason}`, detail: { host: a.host, reason: a.reason, secrets: a.secrets } });
      },
    });
    model = await ModelDoor.open(gateway, {
      vault: door.vault,
      pasted: door.pasted,
      alerts: {
        notify: (a) => {
          io.stderr(`bastion: ALERT ${a.kind}: ${a.summary}\n`);
          alerts.notify(a);
        },
      },
    });
    if (config.a2a) a2a = await A2aDoor.open(gateway, { kek });
  } catch (err) {
    await gateway.close();
    io.stderr(`bastion serve: ${isBastionError(err) ? err.message : 'internal error'}\n`);
    if (isBastionError(err) && err.code === 'ERR_STORE') return EXIT.STORE;
    return isBastionError(err) ? EXIT.CONFIG : EXIT.INTERNAL;
  }
  let running;
  try {
    running = await startHttpServer(gateway, undefined, { egress: door.proxy, model, ...(a2a ? { a2a } : {}) });
  } catch (err) {
    await gateway.close();
    io.stderr(`bastion serve: cannot listen on ${config.server.host}:${config.server.port}: ${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
    return EXIT.CONFIG;
  }
  const egress = config.server.egress;
  if (egress !== undefined) {
    try {
      await door.proxy.start(egress.host, egress.port);
    } catch (err) {
      await running.close();
      await gateway.close();
      io.stderr(`bastion serve: cannot listen on ${egress.host}:${egress.port} (server.egress): ${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
      return EXIT.CONFIG;
    }
  }
  await gateway.record({
    time: new Date().toISOString(),
    door: 'system',
    agent: null,
    method: 'serve.start',
    decision: { effect: 'allow', reason: 'system', rule: 'serve' },
    outcome: 'ok',
    durationMs: 0,
    detail: { config: config.file, listen: running.url.host, ...(egress !== undefined ? { egress: door.proxy.url.host } : {}), agents: [...config.agents.keys()], upstreams: [...config.upstreams.keys()] },
  });
  io.stdout(`Bastion is serving MCP at ${running.url.href}\n`);
  io.stdout(formatPathGuardReport(await pathGuardReport(gateway.deps.paths, config, false), 'bastion config check --probe'));
  io.stdout(`Bastion model door at ${new URL('/v1', running.url).href} (OpenAI base URL; Anthropic: ${new URL('/', running.url).href})\n`);
  if (a2a) io.stdout(`Bastion agent-to-agent messages at ${new URL('/a2a/send', running.url).href} (agents) and ${new URL('/a2a/inbound', running.url).href} (peers)\n`);
  if (egress !== undefined) io.stdout(`Bastion egress proxy listening on ${door.proxy.url.host} (HTTPS_PROXY=http://${door.proxy.url.host}; trust the CA from 'bastion ca export')\n`);
  for (const g of generated) {
    io.stdout(
      `\nAgent "${g.agent}" had no key configured, so one was generated. It is shown now and never again:\n\n` +
        `    ${g.key}\n\n` +
        `Connect an MCP client (Streamable HTTP) to ${running.url.href} with the header\n` +
        `    Authorization: Bearer <the key above>\n` +
        `Only a SHA-256 digest of the key is stored. To use your own key instead, set the variable its config names.\n`,
    );
  }
  for (const agent of config.agents.values()) {
    if (agent.keys.length === 0 && agent.unresolvedKeyRefs.length > 0 && !generated.some((g) => g.agent === agent.name)) {
      io.stdout(`Agent "${agent.name}": using the key generated on first start (${agent.unresolvedKeyRefs.join(', ')} is unset).\n`);
    }
  }
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  io.stdout('Bastion is stopping…\n');
  if (egress !== undefined) await door.proxy.close();
  await running.close();
  await model.close();
  await a2a?.close();
  await alerts.close();
  await gateway.record({
    time: new Date().toISOString(),
    door: 'system',
    agent: null,
    method: 'serve.stop',
    decision: { effect: 'allow', reason: 'system', rule: 'serve' },
    outcome: 'ok',
    durationMs: 0,
  });
  await gateway.close();
  return EXIT.OK;
};
