/**
 * `bastion status`: the instances from their heartbeats in Redis, pending
 * approvals and the audit chain head from the store; without Redis a probe of
 * server.listen; an unreachable Redis is exit 4 with its error code, never its URL.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { main } from '../../src/cli/main.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import type { StatusReport } from '../../src/cli/commands/status.ts';
import { attachCluster, type ClusterRuntime } from '../../src/cluster/cluster.ts';
import { RedisBus } from '../../src/cluster/redis-bus.ts';
import { Readiness } from '../../src/observe/health.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/gateway.ts';
import { ensureRedis, REDIS_URL } from '../helpers/redis.ts';
import { freePort, randomPrefix, until, writeConfig } from './helpers.ts';

async function cli(argv: string[], env: Record<string, string>, cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, cwd };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

describe('bastion status', { timeout: 30_000 }, () => {
  let dir: string;
  let file: string;
  let env: Record<string, string>;
  let bus: RedisBus;
  let cluster: ClusterRuntime;

  before(async () => {
    await ensureRedis();
    dir = tempDir();
    const prefix = randomPrefix();
    const written = await writeConfig(dir, { redisUrl: REDIS_URL, prefix });
    ({ file, env } = written);
    const store = await openSqliteStore(written.config.storePath!);
    const now = Date.now();
    await store.createApproval({ id: 'ap-status', agent: 'demo', user: 'alice', tool: 'crm__delete', argsDigest: 'd'.repeat(64), argsPreview: '{}', status: 'pending', createdAt: now, expiresAt: now + 60_000, decidedAt: null, decidedBy: null, reason: null });
    await store.appendAudit([{ time: new Date().toISOString(), door: 'system', agent: null, method: 'test', decision: { effect: 'allow', reason: 'system', rule: 'test' }, outcome: 'ok', durationMs: 0 }]);
    await store.close();
    bus = await RedisBus.open({ url: REDIS_URL, keyPrefix: prefix });
    const readiness = new Readiness();
    readiness.register('upstream:crm', () => ({ ok: false, detail: 'spawn npx ENOENT' }));
    cluster = await attachCluster({ config: { file }, bus, readiness, auditStep: { batched: () => undefined } }, { listen: '127.0.0.1:8790', heartbeatMs: 200 });
    await until(() => cluster.heartbeat?.beat() ?? false, 'the first heartbeat');
  });
  after(async () => {
    await cluster?.close();
    await bus?.close();
  });

  test('--json: the instance with its upstream health, the pending approval, the chain head', async () => {
    const r = await cli(['status', '--config', file, '--json'], env, dir);
    assert.equal(r.code, EXIT.OK, r.stderr);
    const report = JSON.parse(r.stdout) as StatusReport;
    assert.deepEqual(report.redis, { configured: true, ok: true });
    assert.equal(report.instances?.length, 1);
    const i = report.instances?.[0];
    assert.deepEqual([i?.id, i?.listen, i?.pid, i?.ready], [bus.instanceId, '127.0.0.1:8790', process.pid, false]);
    assert.match(i?.configDigest ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual(i?.upstreams, { crm: { ok: false, detail: 'spawn npx ENOENT' } });
    assert.deepEqual([report.approvals.pending, report.approvals.items[0]?.id], [1, 'ap-status']);
    assert.equal(report.audit.seq, 1);
    assert.match(report.audit.hash ?? '', /^[0-9a-f]{64}$/);
    assert.equal(report.audit.checkpoint, null);
    assert.doesNotMatch(r.stdout, /redis:\/\//);
  });

  test('text: one line per instance and upstream, approvals, audit head', async () => {
    const r = await cli(['status', '--config', file], env, dir);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^redis: ok\ninstances: 1\n/);
    assert.match(r.stdout, new RegExp(`  ${bus.instanceId}  NOT READY  .* 127\\.0\\.0\\.1:8790 `));
    assert.match(r.stdout, /upstream crm: down \(spawn npx ENOENT\)/);
    assert.match(r.stdout, /approvals: 1 pending\n  ap-status .* demo for alice  crm__delete/);
    assert.match(r.stdout, /audit: head seq 1 hash [0-9a-f]{64}/);
    assert.match(r.stdout, /last checkpoint: none/);
  });

  test('a stopped instance leaves the registry', async () => {
    const other = await RedisBus.open({ url: REDIS_URL, keyPrefix: bus.keyPrefix });
    const c2 = await attachCluster({ config: { file }, bus: other, readiness: new Readiness(), auditStep: { batched: () => undefined } }, { listen: '127.0.0.1:8791' });
    await until(() => c2.heartbeat?.beat() ?? false, 'a heartbeat');
    const two = JSON.parse((await cli(['status', '--config', file, '--json'], env, dir)).stdout) as StatusReport;
    assert.equal(two.instances?.length, 2);
    await c2.close();
    await other.close();
    const one = JSON.parse((await cli(['status', '--config', file, '--json'], env, dir)).stdout) as StatusReport;
    assert.deepEqual(one.instances?.map((i) => i.id), [bus.instanceId]);
  });

  test('without redis: says so and probes server.listen', async () => {
    const d = tempDir();
    const port = await freePort();
    const w = await writeConfig(d, { listen: `127.0.0.1:${port}` });
    const r = await cli(['status', '--config', w.file], w.env, d);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^redis: not configured/);
    assert.match(r.stdout, new RegExp(`http://127\\.0\\.0\\.1:${port}/readyz: not answering \\(ECONNREFUSED\\)`));
    assert.match(r.stdout, /approvals: 0 pending/);
    assert.match(r.stdout, /audit: empty chain/);
  });

  test('redis unreachable: exit 4 with the error code, never the URL', async () => {
    const d = tempDir();
    const port = await freePort();
    const w = await writeConfig(d, { redisUrl: `redis://user:hunter2@127.0.0.1:${port}`, prefix: randomPrefix() });
    const r = await cli(['status', '--config', w.file], w.env, d);
    assert.equal(r.code, EXIT.STORE);
    assert.match(r.stdout, /^redis: unreachable \(ECONNREFUSED\)/);
    assert.doesNotMatch(r.stdout + r.stderr, /hunter2|redis:\/\//);
  });
});
