/**
 * `bastion approvals list | approve ID | deny ID`: the approval queue from the
 * command line. Works on the store directly, so it needs no running server and
 * no admin key (whoever can write the store is an administrator already); the
 * waiting call notices the decision within `approvalPollMs`, or at once when
 * `redis` is configured: the decision is then published on the cluster bus
 * (src/cluster/bus.ts), and a failed publish exits 4 (`ERR_STORE`) with the
 * decision recorded. Every decision is appended to the audit chain on the admin door.
 */
import { userInfo } from 'node:os';
import { decideApproval, publishDecision } from '../../approvals/queue.ts';
import { openClusterBus } from '../../cluster/cluster.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { allow } from '../../decision.ts';
import { isBastionError } from '../../errors.ts';
import type { ApprovalRecord } from '../../approvals/store.ts';
import type { Store } from '../../store/store.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand, type CliIO } from '../io.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage:
  bastion approvals list [--status pending|approved|denied|expired|used|all] [--json] [--config FILE]
  bastion approvals approve ID [--reason TEXT] [--json] [--config FILE]
  bastion approvals deny ID [--reason TEXT] [--json] [--config FILE]

list shows pending approvals by default: id, age, agent, tool, arguments (credentials redacted).
With redis configured, approve and deny also tell the running instances at once
(cluster bus); when Redis is unreachable the decision is still recorded, the
instances see it within their poll interval, and the exit code is 4.
Exit codes: 0 ok, 2 usage, 3 config, 4 store (or Redis), 5 no such approval or not pending.`;

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'used', 'all'] as const;

async function openStore(configFlag: string | undefined, io: CliIO): Promise<{ store: Store; reuseTtlMs: number; config: ResolvedConfig } | number> {
  const opened = await openConfiguredStore('approvals', configFlag, io);
  return typeof opened === 'number' ? opened : { store: opened.store, reuseTtlMs: opened.config.approvals.reuseTtlMs, config: opened.config };
}

/** Publishes the decision when `redis` is configured; the error code when that failed (the decision stands). */
async function notifyInstances(config: ResolvedConfig, rec: ApprovalRecord): Promise<string | undefined> {
  if (config.redis === undefined) return undefined;
  const bus = await openClusterBus(config);
  try {
    await publishDecision(bus, rec);
    return undefined;
  } catch (err) {
    const code = isBastionError(err) ? (err.detail as { code?: unknown } | undefined)?.code : undefined;
    return typeof code === 'string' ? code : 'ERR_STORE';
  } finally {
    await bus.close();
  }
}

function line(a: ApprovalRecord, now: number): string {
  const age = Math.round((now - a.createdAt) / 1000);
  return `${a.id}  ${a.status.padEnd(8)}  ${String(age).padStart(5)}s  ${a.agent}  ${a.tool}  ${a.argsPreview}`;
}

export const approvals: CliCommand = async (argv, io) => {
  const [verb, ...rest] = argv;
  if (verb === undefined) {
    io.stderr(`${HELP}\n`);
    return EXIT.USAGE;
  }
  const parsed = parseFlags(
    `approvals ${verb}`,
    HELP,
    verb === '--help' || verb === '-h' ? ['--help'] : rest,
    { config: { type: 'string', short: 'c' }, status: { type: 'string' }, reason: { type: 'string' }, json: { type: 'boolean' } },
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (verb === 'list') {
    const status = values.status ?? 'pending';
    if (!(STATUSES as readonly string[]).includes(status) || positionals.length > 0) {
      io.stderr(`bastion approvals list: --status must be one of ${STATUSES.join(', ')}\n`);
      return EXIT.USAGE;
    }
    const opened = await openStore(values.config, io);
    if (typeof opened === 'number') return opened;
    try {
      const list = await opened.store.listApprovals(status === 'all' ? {} : { status: status as ApprovalRecord['status'] });
      if (values.json) io.stdout(`${JSON.stringify({ approvals: list })}\n`);
      else if (list.length === 0) io.stdout(`no ${status === 'all' ? '' : `${status} `}approvals\n`);
      else for (const a of list) io.stdout(`${line(a, Date.now())}\n`);
      return EXIT.OK;
    } catch (err) {
      io.stderr(`bastion approvals: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await opened.store.close();
    }
  }
  if (verb === 'approve' || verb === 'deny') {
    const id = positionals[0];
    if (id === undefined || positionals.length > 1) {
      io.stderr(`bastion approvals ${verb}: exactly one approval ID is required\n`);
      return EXIT.USAGE;
    }
    if (values.reason !== undefined && values.reason.length > 500) {
      io.stderr(`bastion approvals ${verb}: --reason is limited to 500 characters\n`);
      return EXIT.USAGE;
    }
    const opened = await openStore(values.config, io);
    if (typeof opened === 'number') return opened;
    const { store } = opened;
    const status = verb === 'approve' ? 'approved' : 'denied';
    let by = 'cli';
    try {
      by = `cli:${userInfo().username}`;
    } catch {
      // no passwd entry: keep "cli"
    }
    const started = performance.now();
    try {
      const rec = await decideApproval(store, id, status, by, values.reason ?? null, opened.reuseTtlMs, Date.now());
      const unnotified = await notifyInstances(opened.config, rec).catch(() => 'ERR_STORE');
      await store.appendAudit([
        {
          time: new Date().toISOString(),
          door: 'admin',
          agent: 'admin',
          method: `approval.${verb}`,
          target: rec.tool,
          decision: allow(`approval.${status}`, 'cli'),
          outcome: 'ok',
          durationMs: Math.round((performance.now() - started) * 1000) / 1000,
          detail: { approvalId: id, by, forAgent: rec.agent, ...(unnotified !== undefined ? { notified: false, code: unnotified } : {}) },
        },
      ]);
      if (values.json) io.stdout(`${JSON.stringify(rec)}\n`);
      else io.stdout(`${status} ${id} (${rec.agent} → ${rec.tool})\n`);
      if (unnotified !== undefined) {
        io.stderr(`bastion approvals ${verb}: ERR_STORE: the decision is recorded, but the running instances could not be told (Redis unreachable: ${unnotified}); they see it within their poll interval\n`);
        return EXIT.STORE;
      }
      return EXIT.OK;
    } catch (err) {
      if (isBastionError(err, 'ERR_APPROVAL_UNKNOWN')) {
        io.stderr(`bastion approvals ${verb}: ${err.message}\n`);
        return EXIT.NOT_FOUND;
      }
      io.stderr(`bastion approvals ${verb}: ${isBastionError(err) ? err.message : 'store error'}\n`);
      return EXIT.STORE;
    } finally {
      await store.close();
    }
  }
  io.stderr(`bastion approvals: unknown subcommand "${verb}"\n${HELP}\n`);
  return EXIT.USAGE;
};
