/**
 * `bastion serve [--config F]`: loads the config strictly, opens the gateway,
 * shows generated agent keys once and each upstream's path guard mode (tool
 * schemas are not known yet), starts each upstream once in the background (failures on
 * stderr and in `/readyz`), serves HTTP until SIGINT/SIGTERM, reloads the config on SIGHUP
 * (src/server/reload.ts, docs/operating.md), then closes sessions and writes the final audit checkpoint.
 */
import { loadConfig, type LoadOptions } from '../../config/load.ts';
import { isBastionError } from '../../errors.ts';
import { openNetworkDoor, type NetworkDoor } from '../../egress/door.ts';
import { openSandbox } from '../../sandbox/open.ts';
import { loadVaultKey } from '../../vault/kek.ts';
import type { Kek } from '../../vault/kek.ts';
import { Gateway, keylessAgent } from '../../server/gateway.ts';
import { startHttpServer } from '../../server/http.ts';
import { startConsoleListener, type ConsoleListener } from '../../console/listener.ts';
import type { AdminAlert } from '../../alerts/notifier.ts';
import type { Notifier } from '../../notify/notifier.ts';
import { ModelDoor } from '../../model/door.ts';
import { A2aDoor } from '../../a2a/door.ts';
import type { ClusterBus } from '../../cluster/bus.ts';
import { attachCluster, openClusterBus } from '../../cluster/cluster.ts';
import { openAnomalyEngine } from '../../anomaly/open.ts';
import { ConfigReloader, configDigest, removePidFile, writePidFile } from '../../server/reload.ts';
import { UpstreamHealth } from '../../server/upstream-health.ts';
import { openServeObservability, type ServeObservability } from '../../observe/setup.ts';
import { startMetricsServer, type MetricsServer } from '../../observe/metrics-server.ts';
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

SIGHUP (or 'bastion reload') reloads the config; fields that need a restart are
refused by name and the running config stays (docs/operating.md).

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
  // The notifier is the opened gateway's (it audits its deliveries); audit failures before it exists only reach stderr.
  const auditAlerts: { target?: Notifier; notify(a: AdminAlert): void } = {
    notify(a) {
      this.target?.notify(a);
    },
  };
  let kek: Kek;
  let config;
  let bus: ClusterBus | undefined;
  let obs: ServeObservability | undefined;
  try {
    ({ config } = await loadConfig(file, { env: io.env, secrets: 'strict', ...(listen !== undefined ? { listen } : {}) }));
    kek = await loadVaultKey(config, io.env);
    // Structured logs (access lines) go to stderr; stdout keeps the start-up lines (docs/observability.md).
    obs = openServeObservability(config.observability, io.env, io.stderr, process.stderr.isTTY === true);
    for (const w of obs.warnings) io.stderr(`bastion: ${w}\n`);
    // With `redis`, the instances share a bus (approval wake-ups, pin changes); an unreachable Redis does not stop the start.
    bus = await openClusterBus(config);
    opened = await Gateway.open(config, {
      kek,
      observe: { logger: obs.logger, accessLog: obs.accessLog, defaultMetrics: true, ...(obs.telemetry ? { telemetry: obs.telemetry } : {}) },
      bus,
      // An agent with no keys listed gets one on first start, shown once below.
      generateKeys: true,
      // Open/close markers in the audit chain: the next start tells a crash from a clean stop (docs/audit.md "Crash recovery").
      auditMarkers: true,
      // Pinned tool definitions that change are alerted through the same notifier (set up below).
      alerts: auditAlerts,
      // A failed or dropped notification is a line on stderr (and an audit record, src/notify/open.ts).
      notify: { onFailure: (line) => io.stderr(`bastion: ${line}\n`) },
      // A failed audit write is never silent: a line on stderr and an admin alert (the audit step sends at most one a minute).
      onAuditFailure: (f) => {
        io.stderr(`bastion: audit write failed (${f.code}) for ${f.door} ${f.method}; ${f.count} failed so far${f.durability === 'durable' ? ', requests are refused' : ''}\n`);
        auditAlerts.notify({ kind: 'audit.write_failed', severity: 'critical', time: new Date().toISOString(), agent: '', user: null, summary: `audit writes are failing (${f.count} so far)`, detail: { code: f.code, door: f.door, method: f.method, durability: f.durability } });
      },
    });
  } catch (err) {
    await bus?.close();
    await obs?.telemetry?.shutdown();
    io.stderr(`bastion serve: ${isBastionError(err) ? err.message : 'internal error'}\n`);
    if (isBastionError(err) && err.code === 'ERR_STORE') return EXIT.STORE;
    if (isBastionError(err)) return EXIT.CONFIG;
    return EXIT.INTERNAL;
  }
  const { gateway, generated } = opened;
  // Each upstream that can start outside a session is started once now, in the background (bounded by its connectTimeoutMs):
  // a failure is a stderr line with the OS error, a failing readiness check upstream:NAME, and an audit record.
  const upstreamHealth = new UpstreamHealth(gateway, { log: (line) => io.stderr(line) });
  // Webhook (signed), Slack and mail notifications, built by the gateway from config `alerts` (src/notify/).
  const alerts = (auditAlerts.target = gateway.notifications);
  // audit.retention: prune at start and once a day (docs/audit.md "Retention and pruning").
  const retention = (await import('./audit-retention.ts')).startServeRetention(gateway, config.audit, (line) => io.stderr(line));
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
    // sandbox.enabled on a machine where bubblewrap cannot run: refused here, with the reason.
    await openSandbox(gateway, door);
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
  // Redis readiness, one alert per Redis outage, and this instance's heartbeat for `bastion status` (docs/cluster.md).
  const cluster = await attachCluster(gateway, {
    listen: running.url.host,
    alerts: {
      notify: (a) => {
        io.stderr(`bastion: ALERT ${a.kind}: ${a.summary}\n`);
        alerts.notify(a);
      },
    },
  });
  // Anomaly rules over this instance's committed records, counted across instances through Redis (docs/anomalies.md).
  const anomalies = openAnomalyEngine(config, {
    notify: (a) => {
      io.stderr(`bastion: ALERT ${a.kind}: ${a.summary}\n`);
      alerts.notify(a);
    },
    audit: (e) => gateway.auditStep.batched(e),
    isolate: (agent, reason, by) => gateway.isolations.isolate(agent, reason, by),
  });
  const stopAnomalies = anomalies.attach(gateway.audit);
  // The console on its own listener (server.console.listen; docs/console.md): a failure to bind is reported, not fatal.
  let consoleListener: ConsoleListener | undefined;
  const consoleListen = config.raw.server.console.listen;
  if (consoleListen !== undefined && config.adminKeys.length > 0) {
    const at = consoleListen.lastIndexOf(':');
    try {
      consoleListener = await startConsoleListener(gateway, consoleListen.slice(0, at).replace(/^\[|\]$/g, ''), Number(consoleListen.slice(at + 1)));
    } catch (err) {
      io.stderr(`bastion: cannot listen on ${consoleListen} (server.console.listen): ${(err as NodeJS.ErrnoException).code ?? 'error'}; the console is served on the main listener only\n`);
    }
  }
  // Metrics on their own listener (observability.metrics.listen): a failure to bind is reported, not fatal.
  let metricsServer: MetricsServer | undefined;
  const metricsListen = config.observability.metrics.enabled ? config.observability.metrics.listen : undefined;
  if (metricsListen !== undefined) {
    const at = metricsListen.lastIndexOf(':');
    try {
      metricsServer = await startMetricsServer(gateway.observer.metrics, metricsListen.slice(0, at).replace(/^\[|\]$/g, ''), Number(metricsListen.slice(at + 1)));
    } catch (err) {
      io.stderr(`bastion: cannot listen on ${metricsListen} (observability.metrics.listen): ${(err as NodeJS.ErrnoException).code ?? 'error'}; metrics are not served\n`);
    }
  }
  void upstreamHealth.sync(config);
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
        `Only a SHA-256 digest of the key is stored. To use your own key instead, list it in agents.${g.agent}.keys (e.g. env:MY_KEY).\n`,
    );
  }
  for (const agent of config.agents.values()) {
    if (keylessAgent(config, agent.name) && !generated.some((g) => g.agent === agent.name)) {
      io.stdout(`Agent "${agent.name}": no keys listed; using the key generated on first start.\n`);
    }
  }
  // SIGHUP (or `bastion reload`, or another instance's new generation on the bus) reloads the config (src/server/reload.ts).
  const reloader = ConfigReloader.create(
    {
      gateway,
      file,
      env: io.env,
      ...(listen !== undefined ? { listen } : {}),
      log: (line) => io.stderr(line),
      info: (line) => io.stdout(line),
      onGenerated: (keys) => {
        for (const g of keys) io.stdout(`\nAgent "${g.agent}" (added by the reload) had no key configured, so one was generated. It is shown now and never again:\n\n    ${g.key}\n\n`);
      },
      onCommitted: (next) => void upstreamHealth.sync(next),
    },
    await configDigest(file).catch(() => ''),
  );
  const onHangup = (): void => void reloader.reload('signal');
  process.on('SIGHUP', onHangup);
  const pidFile = await writePidFile(file, process.pid).catch((err: unknown) => {
    io.stderr(`bastion: cannot write the pid file for 'bastion reload' (${(err as NodeJS.ErrnoException).code ?? 'error'}); use 'bastion reload --pid ${process.pid}' or kill -HUP\n`);
    return undefined;
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  io.stdout('Bastion is stopping…\n');
  process.off('SIGHUP', onHangup);
  reloader.close();
  upstreamHealth.close();
  if (pidFile !== undefined) await removePidFile(file, process.pid);
  if (egress !== undefined) await door.proxy.close();
  await running.close();
  await model.close();
  await a2a?.close();
  stopAnomalies();
  await anomalies.close();
  await cluster.close();
  await metricsServer?.close();
  await consoleListener?.close();
  await alerts.close();
  await retention?.close();
  await gateway.record({
    time: new Date().toISOString(),
    door: 'system',
    agent: null,
    method: 'serve.stop',
    decision: { effect: 'allow', reason: 'system', rule: 'serve' },
    outcome: 'ok',
    durationMs: 0,
    // This instance's clean-stop marker in the audit chain (docs/audit.md "Crash recovery").
    detail: { instance: gateway.bus.instanceId },
  });
  await gateway.close();
  return EXIT.OK;
};
