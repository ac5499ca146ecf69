/**
 * `bastion incident isolate|restore|snapshot|rotate|list`: incident response
 * from the command line (src/incidents/, docs/incidents.md). Works on the store
 * directly, as `bastion approvals` does: no running server or admin key needed
 * (whoever can write the store is an administrator already). With `redis`
 * configured, isolate and restore are published on the cluster bus so every
 * instance reacts at once; without it, the instances poll the store (within
 * 500 ms). Each action is appended to the audit chain on the admin door.
 */
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { publishDecision } from '../../approvals/queue.ts';
import { openClusterBus } from '../../cluster/cluster.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { allow } from '../../decision.ts';
import { isBastionError } from '../../errors.ts';
import { containAgent, isolationMessage, isolationRecord, MAX_ISOLATION_REASON_CHARS, type IncidentAlert } from '../../incidents/isolation.ts';
import { startEmergencyRotation } from '../../incidents/rotate.ts';
import { serializeSnapshot, takeSnapshot } from '../../incidents/snapshot.ts';
import type { ApprovalRecord } from '../../approvals/store.ts';
import type { Store } from '../../store/store.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage:
  bastion incident isolate AGENT [--reason TEXT] [--json] [--config FILE]
  bastion incident restore AGENT [--reason TEXT] [--json] [--config FILE]
  bastion incident snapshot AGENT [--out FILE] [--config FILE]
  bastion incident rotate AGENT [--reason TEXT] [--json] [--config FILE]
  bastion incident list [AGENT] [--json] [--config FILE]

isolate   refuse every later request of the agent in every door (ERR_AGENT_ISOLATED),
          close its sessions and tunnels, deny its pending approvals; idempotent
restore   lift the isolation
snapshot  write the forensic bundle (its audit slice with the chain proof, config with
          key digests, pins, approvals, bans, isolations, secret names) to --out
          (default incident-AGENT-TIME.json) and its SHA-256 to FILE.sha256
rotate    mark every secret the agent may use for emergency rotation and end the grace
          of their old versions (rotate each with 'bastion secret rotate NAME')
list      isolations, current and past, newest first

With redis configured, isolate and restore reach every instance at once (cluster bus);
otherwise the instances see them within 500 ms (store poll).
Exit codes: 0 ok, 2 usage, 3 config or unknown agent, 4 store (or Redis: the action is
recorded, the instances see it at their next poll), 5 restore of an agent not isolated.`;

/** Options of {@link incidentCommand}. */
export interface IncidentCommandOptions {
  /**
   * Raises the admin alerts of `rotate` (one per secret; see `IncidentAlert` in
   * src/incidents/isolation.ts). Default: one line per alert on stderr (the CLI
   * has no delivery channel of its own; each step is in the audit chain).
   */
  readonly alert?: (io: CliIO) => IncidentAlert;
  readonly now?: () => number;
}

function whoAmI(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli';
  }
}

/** Publishes on the cluster bus when `redis` is configured; the error code when that failed. */
async function tellInstances(config: ResolvedConfig, send: (bus: Awaited<ReturnType<typeof openClusterBus>>) => Promise<void>): Promise<string | undefined> {
  if (config.redis === undefined) return undefined;
  try {
    const bus = await openClusterBus(config);
    try {
      await send(bus);
      return undefined;
    } finally {
      await bus.close();
    }
  } catch (err) {
    const code = isBastionError(err) ? (err.detail as { code?: unknown } | undefined)?.code : undefined;
    return typeof code === 'string' ? code : 'ERR_STORE';
  }
}

/** The `bastion incident` command, with injectable alerting (tests). */
export function incidentCommand(opts: IncidentCommandOptions = {}): CliCommand {
  return async (argv, io) => {
    const [verb, ...rest] = argv;
    if (verb === undefined) {
      io.stderr(`${HELP}\n`);
      return EXIT.USAGE;
    }
    if (verb === '--help' || verb === '-h') {
      io.stdout(`${HELP}\n`);
      return EXIT.OK;
    }
    if (!['isolate', 'restore', 'snapshot', 'rotate', 'list'].includes(verb)) {
      io.stderr(`bastion incident: unknown subcommand "${verb}"\n${HELP}\n`);
      return EXIT.USAGE;
    }
    const parsed = parseFlags(
      `incident ${verb}`,
      HELP,
      rest,
      { config: { type: 'string', short: 'c' }, reason: { type: 'string' }, out: { type: 'string', short: 'o' }, json: { type: 'boolean' } },
      io,
      1,
    );
    if (typeof parsed === 'number') return parsed;
    const { values, positionals } = parsed;
    const agent = positionals[0];
    if (verb !== 'list' && agent === undefined) {
      io.stderr(`bastion incident ${verb}: the AGENT is required\n`);
      return EXIT.USAGE;
    }
    if (values.reason !== undefined && values.reason.length > MAX_ISOLATION_REASON_CHARS) {
      io.stderr(`bastion incident ${verb}: --reason is limited to ${MAX_ISOLATION_REASON_CHARS} characters\n`);
      return EXIT.USAGE;
    }
    if (values.out !== undefined && verb !== 'snapshot') {
      io.stderr(`bastion incident ${verb}: --out is only for snapshot\n`);
      return EXIT.USAGE;
    }
    const opened = await openConfiguredStore(`incident ${verb}`, values.config, io);
    if (typeof opened === 'number') return opened;
    const { store, config } = opened;
    try {
      if (agent !== undefined && !config.agents.has(agent) && !(verb === 'restore' || verb === 'list')) {
        io.stderr(`bastion incident ${verb}: no agent "${agent}" in ${config.file}\n`);
        return EXIT.CONFIG;
      }
      const now = (opts.now ?? Date.now)();
      const by = whoAmI();
      const reason = values.reason ?? '';
      switch (verb) {
        case 'isolate':
          return await isolate(io, store, config, agent as string, reason, by, now, values.json === true);
        case 'restore':
          return await restore(io, store, config, agent as string, reason, by, now, values.json === true);
        case 'snapshot':
          return await snapshot(io, store, config, agent as string, by, now, values.out);
        case 'rotate': {
          const alert = opts.alert?.(io) ?? ((kind, severity, a, summary) => io.stderr(`alert ${severity} ${kind} ${a}: ${summary}\n`));
          const steps = await startEmergencyRotation(store, config, agent as string, { by, reason, now, alert });
          if (values.json === true) io.stdout(`${JSON.stringify({ agent, secrets: steps })}\n`);
          else if (steps.length === 0) io.stdout(`agent ${agent} may use no vault secret: nothing to rotate\n`);
          else {
            for (const s of steps) {
              io.stdout(s.live ? `marked ${s.secret} for rotation${s.graceEnded > 0 ? ` (grace of ${s.graceEnded} old version(s) ended)` : ''}\n` : `skipped ${s.secret} (not in the vault)\n`);
            }
            io.stdout(`rotate each now: bastion secret rotate NAME\n`);
          }
          return EXIT.OK;
        }
        default: {
          const list = (await store.listIsolations(agent === undefined ? {} : { agent })).map(isolationRecord);
          if (values.json === true) io.stdout(`${JSON.stringify({ isolations: list })}\n`);
          else if (list.length === 0) io.stdout('no isolations\n');
          else for (const r of list) io.stdout(`${r.agent}  ${r.restoredAt === undefined ? 'isolated' : 'restored'}  ${r.at}  ${r.by}  ${r.reason}${r.restoredAt === undefined ? '' : `  (restored ${r.restoredAt} by ${r.restoredBy ?? '?'}: ${r.restoreReason ?? ''})`}\n`);
          return EXIT.OK;
        }
      }
    } catch (err) {
      io.stderr(`bastion incident ${verb}: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return isBastionError(err, 'ERR_AGENT_UNKNOWN') ? EXIT.CONFIG : EXIT.STORE;
    } finally {
      await store.close();
    }
  };
}

async function audit(store: Store, method: string, agent: string, started: number, detail: Record<string, unknown>): Promise<void> {
  await store.appendAudit([
    {
      time: new Date().toISOString(),
      door: 'admin',
      agent: 'admin',
      method,
      target: agent,
      decision: allow(method, 'cli'),
      outcome: 'ok',
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { forAgent: agent, ...detail },
    },
  ]);
}

async function isolate(io: CliIO, store: Store, config: ResolvedConfig, agent: string, reason: string, by: string, now: number, json: boolean): Promise<number> {
  const started = performance.now();
  const done = await containAgent(store, { agent, reason, by, now, reuseTtlMs: config.approvals.reuseTtlMs });
  const unnotified = await tellInstances(config, async (bus) => {
    await bus.publish('broadcast', isolationMessage('incident.isolate', agent));
    for (const a of done.deniedApprovals) await publishDecision(bus, a);
  });
  await audit(store, 'incident.isolate', agent, started, {
    by,
    reason,
    created: done.created,
    deniedApprovals: done.deniedApprovals.map((a: ApprovalRecord) => a.id),
    ...(unnotified !== undefined ? { notified: false, code: unnotified } : {}),
  });
  const record = isolationRecord(done.record);
  if (json) io.stdout(`${JSON.stringify({ record, created: done.created, deniedApprovals: done.deniedApprovals.map((a) => a.id), notified: unnotified === undefined })}\n`);
  else io.stdout(`${done.created ? 'isolated' : 'already isolated'} ${agent} (since ${record.at} by ${record.by})${done.deniedApprovals.length > 0 ? `; denied ${done.deniedApprovals.length} pending approval(s)` : ''}\n`);
  if (unnotified !== undefined) {
    io.stderr(`bastion incident isolate: ERR_STORE: the isolation is recorded, but the running instances could not be told (Redis unreachable: ${unnotified}); they see it at their next poll\n`);
    return EXIT.STORE;
  }
  return EXIT.OK;
}

async function restore(io: CliIO, store: Store, config: ResolvedConfig, agent: string, reason: string, by: string, now: number, json: boolean): Promise<number> {
  const started = performance.now();
  const restored = await store.restoreAgent(agent, { at: now, by, reason });
  if (restored === undefined) {
    if (!config.agents.has(agent)) {
      io.stderr(`bastion incident restore: no agent "${agent}" in ${config.file}\n`);
      return EXIT.CONFIG;
    }
    io.stderr(`bastion incident restore: agent "${agent}" is not isolated (ERR_AGENT_NOT_ISOLATED)\n`);
    return EXIT.NOT_FOUND;
  }
  const unnotified = await tellInstances(config, (bus) => bus.publish('broadcast', isolationMessage('incident.restore', agent)));
  await audit(store, 'incident.restore', agent, started, { by, reason, ...(unnotified !== undefined ? { notified: false, code: unnotified } : {}) });
  const record = isolationRecord(restored);
  if (json) io.stdout(`${JSON.stringify(record)}\n`);
  else io.stdout(`restored ${agent} (isolated ${record.at} by ${record.by})\n`);
  if (unnotified !== undefined) {
    io.stderr(`bastion incident restore: ERR_STORE: the restore is recorded, but the running instances could not be told (Redis unreachable: ${unnotified}); they see it at their next poll\n`);
    return EXIT.STORE;
  }
  return EXIT.OK;
}

async function snapshot(io: CliIO, store: Store, config: ResolvedConfig, agent: string, by: string, now: number, out: string | undefined): Promise<number> {
  const started = performance.now();
  const bundle = await takeSnapshot(store, config, agent, by, now);
  const { text, sha256 } = serializeSnapshot(bundle);
  const file = resolve(io.cwd, out ?? `incident-${agent.replace(/[^A-Za-z0-9._-]/g, '_')}-${new Date(now).toISOString().replace(/[:.]/g, '-')}.json`);
  try {
    // Owner-only: the bundle names secrets, users and hosts.
    writeFileSync(file, text, { mode: 0o600 });
    writeFileSync(`${file}.sha256`, `${sha256}  ${basename(file)}\n`, { mode: 0o600 });
  } catch (err) {
    io.stderr(`bastion incident snapshot: cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}\n`);
    return EXIT.FAILED;
  }
  await audit(store, 'incident.snapshot', agent, started, { by, sha256, records: bundle.audit.records.length });
  io.stdout(`${sha256}  ${file}\n`);
  return EXIT.OK;
}

/** `bastion incident …` (see HELP). */
export const incident: CliCommand = incidentCommand();
