/**
 * `bastion status [--config F] [--json]`: the deployment at a glance, read from
 * where it lives: the serving instances from the registry in Redis (config
 * `redis`; src/cluster/registry.ts) with each one's readiness and upstream
 * health, or without Redis a probe of `server.listen`'s `/readyz`; the pending
 * approvals and the audit chain's head (last record, last checkpoint) from the
 * store. Read only; nothing secret is printed (no URL of Redis, no keys).
 */
import { request } from 'node:http';
import type { ApprovalRecord } from '../../approvals/store.ts';
import type { AuditCheckpoint, AuditRecord } from '../../audit/types.ts';
import { listInstances, type InstanceInfo } from '../../cluster/registry.ts';
import type { ResolvedConfig } from '../../config/types.ts';
import { failFastRedis } from '../../util/redis.ts';
import { parseFlags } from '../args.ts';
import { EXIT, type CliCommand } from '../io.ts';
import { openConfiguredStore } from './config-store.ts';

const HELP = `Usage: bastion status [--config FILE] [--json]

The deployment at a glance:
  instances   with redis configured: every serving instance (from its heartbeat
              in Redis): id, host, pid, listen address, version, config digest,
              readiness, upstream health, last seen. Without redis: a probe of
              server.listen's /readyz.
  approvals   the pending approvals (from the store).
  audit       the chain head: last seq and hash, and the last checkpoint.
Exit codes: 0 ok, 2 usage, 3 config, 4 store or Redis unreachable.`;

/** Bound of the Redis connect and commands, and of the /readyz probe, in ms. */
const STATUS_TIMEOUT_MS = 2_000;
/** Pending approvals printed in text mode (all are counted). */
const SHOWN_APPROVALS = 20;

/** What `--json` prints. */
export interface StatusReport {
  readonly redis: { readonly configured: boolean; readonly ok?: boolean; readonly code?: string };
  readonly instances?: readonly InstanceInfo[];
  readonly probe?: { readonly url: string; readonly ok: boolean; readonly status?: number; readonly code?: string; readonly body?: unknown };
  readonly approvals: { readonly ok: boolean; readonly pending: number; readonly items: readonly Pick<ApprovalRecord, 'id' | 'agent' | 'user' | 'tool' | 'createdAt' | 'expiresAt'>[] };
  readonly audit: { readonly ok: boolean; readonly seq: number; readonly hash: string | null; readonly time: string | null; readonly checkpoint: Pick<AuditCheckpoint, 'seq' | 'hash' | 'time'> | null };
}

function codeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'error';
}

async function readInstances(config: ResolvedConfig): Promise<{ ok: true; instances: InstanceInfo[] } | { ok: false; code: string }> {
  const redis = config.redis;
  if (redis === undefined) return { ok: false, code: 'not_configured' };
  const client = failFastRedis(redis.url.reveal(), STATUS_TIMEOUT_MS);
  let lastCode: string | undefined;
  client.on('error', (err: unknown) => {
    lastCode = codeOf(err);
  });
  try {
    await client.connect();
    return { ok: true, instances: await listInstances(client, redis.keyPrefix) };
  } catch (err) {
    return { ok: false, code: lastCode ?? codeOf(err) };
  } finally {
    client.disconnect(false);
  }
}

/** GET /readyz on the configured listener (loopback for a wildcard address), bounded. */
function probe(config: ResolvedConfig): Promise<NonNullable<StatusReport['probe']>> {
  const { host, port, allowedHosts } = config.server;
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `http://${target.includes(':') ? `[${target}]` : target}:${port}/readyz`;
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: STATUS_TIMEOUT_MS, headers: { host: allowedHosts[0] ?? `${host}:${port}`, accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= 64 * 1024) chunks.push(c);
      });
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          body = undefined;
        }
        resolve({ url, ok: res.statusCode === 200, status: res.statusCode ?? 0, ...(body !== undefined ? { body } : {}) });
      });
      res.on('error', (err) => resolve({ url, ok: false, code: codeOf(err) }));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (err) => resolve({ url, ok: false, code: codeOf(err) }));
    req.end();
  });
}

/** Escapes control and format characters in text read from Redis (any client of it could have written an entry). */
function safe(value: unknown): string {
  return String(value).replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

function age(iso: string, now: number): string {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? `${Math.max(0, Math.round((now - t) / 1000))}s ago` : '?';
}

/** Names and codes only; upstream names come from the config, details from the instances (error codes). */
function render(r: StatusReport, now: number): string {
  const out: string[] = [];
  if (r.redis.configured) {
    out.push(r.redis.ok ? `redis: ok` : `redis: unreachable (${r.redis.code ?? 'error'})`);
    if (r.instances !== undefined) {
      out.push(`instances: ${r.instances.length}`);
      for (const i of r.instances) {
        out.push(`  ${safe(i.id)}  ${i.ready === true ? 'ready' : 'NOT READY'}  ${safe(i.host)} pid ${safe(i.pid)}  ${safe(i.listen)}  v${safe(i.version)}  config ${safe(String(i.configDigest ?? '').slice(0, 12)) || '-'}  started ${safe(i.started)}  seen ${age(String(i.lastSeen), now)}`);
        const ups = i.upstreams !== null && typeof i.upstreams === 'object' ? Object.entries(i.upstreams) : [];
        for (const [name, c] of ups) out.push(`      upstream ${safe(name)}: ${c?.ok === true ? 'ok' : `down${c?.detail !== undefined ? ` (${safe(c.detail)})` : ''}`}`);
      }
      const digests = new Set(r.instances.map((i) => i.configDigest));
      if (digests.size > 1) out.push(`  warning: the instances run ${digests.size} different configs`);
    }
  } else {
    out.push('redis: not configured (instances are not registered; probing server.listen)');
    const p = r.probe;
    if (p !== undefined) {
      if (p.status === undefined) out.push(`  ${p.url}: not answering (${p.code ?? 'error'})`);
      else {
        out.push(`  ${p.url}: ${p.status} ${p.ok ? 'ready' : 'NOT READY'}`);
        const checks = (p.body as { checks?: Record<string, { ok?: unknown; detail?: unknown }> } | undefined)?.checks;
        if (checks !== null && typeof checks === 'object') {
          for (const [name, c] of Object.entries(checks)) out.push(`      ${safe(name)}: ${c?.ok === true ? 'ok' : `down${typeof c?.detail === 'string' ? ` (${safe(c.detail)})` : ''}`}`);
        }
      }
    }
  }
  if (!r.approvals.ok) out.push('approvals: store error');
  else {
    out.push(`approvals: ${r.approvals.pending} pending`);
    for (const a of r.approvals.items.slice(0, SHOWN_APPROVALS)) {
      out.push(`  ${a.id}  ${String(Math.round((now - a.createdAt) / 1000)).padStart(5)}s  ${a.agent}${a.user !== null ? ` for ${a.user}` : ''}  ${a.tool}`);
    }
    if (r.approvals.pending > SHOWN_APPROVALS) out.push(`  … ${r.approvals.pending - SHOWN_APPROVALS} more (bastion approvals list)`);
  }
  if (!r.audit.ok) out.push('audit: store error');
  else {
    out.push(r.audit.seq === 0 ? 'audit: empty chain' : `audit: head seq ${r.audit.seq} hash ${r.audit.hash ?? ''} at ${r.audit.time ?? ''}`);
    const c = r.audit.checkpoint;
    out.push(c === null ? '  last checkpoint: none' : `  last checkpoint: seq ${c.seq} hash ${c.hash} at ${c.time}`);
  }
  return `${out.join('\n')}\n`;
}

export const status: CliCommand = async (argv, io) => {
  const parsed = parseFlags('status', HELP, argv, { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } }, io);
  if (typeof parsed === 'number') return parsed;
  const opened = await openConfiguredStore('status', parsed.values.config, io);
  if (typeof opened === 'number') return opened;
  const { config, store } = opened;
  try {
    const [instances, probed, approvals, head] = await Promise.all([
      config.redis !== undefined ? readInstances(config) : Promise.resolve(undefined),
      config.redis === undefined ? probe(config) : Promise.resolve(undefined),
      store.listApprovals({ status: 'pending' }).then(
        (list) => ({ ok: true, list }),
        () => ({ ok: false, list: [] as ApprovalRecord[] }),
      ),
      Promise.all([store.lastAudit(), store.listCheckpoints()]).then(
        ([last, checkpoints]) => ({ ok: true, last, checkpoint: checkpoints.at(-1) }),
        () => ({ ok: false, last: undefined as AuditRecord | undefined, checkpoint: undefined as AuditCheckpoint | undefined }),
      ),
    ]);
    const report: StatusReport = {
      redis: config.redis === undefined ? { configured: false } : instances?.ok === true ? { configured: true, ok: true } : { configured: true, ok: false, code: instances?.ok === false ? instances.code : 'error' },
      ...(instances?.ok === true ? { instances: instances.instances } : {}),
      ...(probed !== undefined ? { probe: probed } : {}),
      approvals: {
        ok: approvals.ok,
        pending: approvals.list.length,
        items: approvals.list.map((a) => ({ id: a.id, agent: a.agent, user: a.user, tool: a.tool, createdAt: a.createdAt, expiresAt: a.expiresAt })),
      },
      audit: {
        ok: head.ok,
        seq: head.last?.seq ?? 0,
        hash: head.last?.hash ?? null,
        time: head.last?.time ?? null,
        checkpoint: head.checkpoint === undefined ? null : { seq: head.checkpoint.seq, hash: head.checkpoint.hash, time: head.checkpoint.time },
      },
    };
    io.stdout(parsed.values.json === true ? `${JSON.stringify(report)}\n` : render(report, Date.now()));
    const failed = !approvals.ok || !head.ok || (config.redis !== undefined && instances?.ok !== true);
    return failed ? EXIT.STORE : EXIT.OK;
  } finally {
    await store.close();
  }
};
