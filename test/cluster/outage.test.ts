/**
 * Redis goes away and comes back, on a private redis-server (own port; the
 * machine's Redis, which other tests use, is never touched): rate limits,
 * replay nonces and approval wake-ups fail closed with their stable codes,
 * readiness says `redis` is down with the socket's error code (never the URL),
 * one admin alert and one audit record for the outage; when Redis returns, the
 * clients reconnect by themselves and everything works again, no restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { ApprovalQueue } from '../../src/approvals/queue.ts';
import type { AuditEvent } from '../../src/audit/types.ts';
import { attachCluster, type ClusterRuntime } from '../../src/cluster/cluster.ts';
import { RedisBus } from '../../src/cluster/redis-bus.ts';
import { isBastionError } from '../../src/errors.ts';
import { ModelRateLimiter } from '../../src/model/rate-limit.ts';
import { Readiness } from '../../src/observe/health.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { openNonceStore, type NonceStore } from '../../src/store/nonces.ts';
import type { Store } from '../../src/store/store.ts';
import { Secret } from '../../src/util/secret.ts';
import { tempDir } from '../helpers/gateway.ts';
import { freePort, PrivateRedis, randomPrefix, until } from './helpers.ts';
import { join } from 'node:path';

describe('Redis outage and recovery', { timeout: 45_000 }, () => {
  let redis: PrivateRedis;
  let bus: RedisBus;
  let cluster: ClusterRuntime;
  let limiter: ModelRateLimiter;
  let nonces: NonceStore;
  let store: Store;
  let queue: ApprovalQueue;
  const readiness = new Readiness();
  const alerts: AdminAlert[] = [];
  const audit: AuditEvent[] = [];
  const prefix = randomPrefix();

  before(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    bus = await RedisBus.open({ url: redis.url, keyPrefix: prefix, timeoutMs: 500 });
    cluster = await attachCluster(
      { config: { file: '' }, bus, readiness, auditStep: { batched: (e) => void audit.push(e) } },
      { listen: '127.0.0.1:1', alerts: { notify: (a) => void alerts.push(a) }, heartbeatMs: 200, ttlMs: 2_000 },
    );
    limiter = await ModelRateLimiter.create({ perUser: { requests: { points: 1000, windowS: 60 } } }, { redisUrl: redis.url, keyPrefix: `${prefix}rl:` });
    nonces = await openNonceStore({ kind: 'redis', storePath: '', namespace: 'mcp', redis: { url: new Secret(redis.url), keyPrefix: prefix } }, { redisTimeoutMs: 500 });
    store = await openSqliteStore(join(tempDir(), 'bastion.db'));
    queue = new ApprovalQueue(store, { timeoutMs: 60_000, reuseTtlMs: 60_000, pollMs: 600_000, bus });
  });
  after(async () => {
    await cluster?.close();
    await bus?.close();
    await limiter?.close();
    await nonces?.close();
    await store?.close();
    await redis?.kill();
  });

  test('while Redis is up: ready, no alert, requests pass', async () => {
    const r = await readiness.report();
    assert.deepEqual(r.checks.redis, { ok: true });
    assert.equal(alerts.length, 0);
    assert.deepEqual(await limiter.admit('demo', 'alice'), { ok: true });
    assert.equal(await nonces.remember('n1', 60_000), true);
    await bus.publish('broadcast', { kind: 'ping' });
  });

  test('Redis killed: fail closed with stable codes, readiness not ok with the error code, one alert, one audit record', async () => {
    await redis.kill();
    await until(async () => (await readiness.report()).checks.redis?.detail === 'ECONNREFUSED', 'readiness to report ECONNREFUSED');
    const report = await readiness.report();
    assert.equal(report.ready, false);
    assert.equal(report.checks.redis?.ok, false);
    assert.doesNotMatch(JSON.stringify(report), /127\.0\.0\.1|redis:\/\//, 'no URL in readiness');

    await assert.rejects(bus.publish('broadcast', { kind: 'x' }), (err) => isBastionError(err, 'ERR_STORE') && (err.detail as { code?: string }).code === 'ECONNREFUSED');
    assert.deepEqual(await limiter.admit('demo', 'alice'), { ok: false, limit: 'store.error', retryAfterMs: 1_000 });
    await assert.rejects(nonces.remember('n2', 60_000));

    // An approval decided while Redis is down: recorded, and the caller is told the instances were not (ERR_STORE, notified false).
    const now = Date.now();
    await store.createApproval({ id: 'ap-outage', agent: 'demo', user: null, tool: 't', argsDigest: 'd'.repeat(64), argsPreview: '{}', status: 'pending', createdAt: now, expiresAt: now + 60_000, decidedAt: null, decidedBy: null, reason: null });
    await assert.rejects(queue.decide('ap-outage', 'approved', 'admin-api', null), (err) => isBastionError(err, 'ERR_STORE') && (err.detail as { notified?: boolean }).notified === false);
    assert.equal((await store.getApproval('ap-outage'))?.status, 'approved', 'the decision stands');

    // Several reconnect attempts later: still one alert and one record for this outage.
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(alerts.map((a) => [a.kind, a.severity]), [['redis.unavailable', 'critical']]);
    assert.doesNotMatch(JSON.stringify(alerts), /127\.0\.0\.1|redis:\/\//, 'no URL in the alert');
    const down = audit.filter((e) => e.method === 'redis.unavailable');
    assert.equal(down.length, 1);
    assert.deepEqual([down[0]?.door, down[0]?.decision.reason, down[0]?.outcome], ['system', 'store.error', 'error']);
    assert.equal(cluster.outage, true);
  });

  test('Redis back on the same port: the clients reconnect, readiness ok, requests pass, recovery audited, no new alert', async () => {
    await redis.start();
    await until(async () => (await readiness.report()).checks.redis?.ok === true, 'readiness to recover');
    assert.equal(cluster.outage, false);
    assert.deepEqual(audit.filter((e) => e.method.startsWith('redis.')).map((e) => e.method), ['redis.unavailable', 'redis.recovered']);
    assert.equal(alerts.length, 1);
    await until(async () => (await limiter.admit('demo', 'alice')).ok, 'the rate limiter to reconnect');
    await until(() => nonces.remember(`n3-${Date.now()}`, 60_000).then(() => true, () => false), 'the nonce store to reconnect');
    const heard: unknown[] = [];
    const off = bus.subscribe('broadcast', (m) => heard.push(m));
    await bus.publish('broadcast', { kind: 'back' });
    await until(() => heard.length > 0, 'the subscriber to be subscribed again');
    off();
    assert.deepEqual(heard, [{ kind: 'back' }]);
    // The heartbeat is written again too.
    await until(() => cluster.heartbeat?.beat() ?? false, 'a heartbeat');
  });
});
