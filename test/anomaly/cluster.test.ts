/**
 * Several instances sharing a real Redis: window counts are cluster-wide and a
 * firing alerts once across instances; learned pairs are shared; a Redis
 * outage makes an engine count locally, alert once and never crash.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { AnomalyEngine } from '../../src/anomaly/engine.ts';
import { openAnomalyEngine } from '../../src/anomaly/open.ts';
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { failFastRedis } from '../../src/util/redis.ts';
import { Secret } from '../../src/util/secret.ts';
import { freePort, PrivateRedis, randomPrefix } from '../cluster/helpers.ts';
import { ensureRedis, REDIS_URL } from '../helpers/redis.ts';
import { rec, rule } from './helpers.ts';

const clients: Redis[] = [];
async function client(url = REDIS_URL): Promise<Redis> {
  const c = failFastRedis(url, 1_000);
  await c.connect();
  clients.push(c);
  return c;
}
after(() => {
  for (const c of clients) c.disconnect(false);
});

/** Two engines ("instances") over the same rules and the same Redis prefix, alerts collected in one list. */
async function twoInstances(rules: Parameters<typeof rule>[], prefix = randomPrefix()): Promise<{ a: AnomalyEngine; b: AnomalyEngine; alerts: (AdminAlert & { by: string })[] }> {
  const alerts: (AdminAlert & { by: string })[] = [];
  const compiled = new Map(rules.map(([name, body]) => [name, rule(name, body)]));
  const make = async (by: string) => new AnomalyEngine({ rules: compiled, notify: (al) => alerts.push({ ...al, by }), redis: { client: await client(), keyPrefix: prefix } });
  return { a: await make('a'), b: await make('b'), alerts };
}

describe('anomaly rules across instances (real Redis)', () => {
  before(async () => {
    await ensureRedis();
  });

  test('a burst split over two instances is counted once and alerts once', async () => {
    const { a, b, alerts } = await twoInstances([['burst', { kind: 'burst', max: 5, windowS: 60 }]]);
    const records = Array.from({ length: 10 }, (_, i) => rec(i));
    // Each instance commits (and so sees) its own records; alternate, as a load balancer would.
    for (const [i, r] of records.entries()) {
      (i % 2 === 0 ? a : b).observe(r);
      await Promise.all([a.idle(), b.idle()]);
    }
    assert.equal(alerts.length, 1, JSON.stringify(alerts.map((x) => x.by)));
    assert.equal(alerts[0]!.kind, 'anomaly.burst');
    assert.deepEqual(alerts[0]!.detail.records, records.slice(0, 6).map((r) => r.seq));
    assert.equal(a.stats.counterKeys + b.stats.counterKeys, 0, 'counted in Redis, not in memory');
  });

  test('five records on each of two instances: neither alone is over six, together they are', async () => {
    const { a, b, alerts } = await twoInstances([['burst', { kind: 'burst', max: 6, windowS: 60 }]]);
    for (let i = 0; i < 5; i++) {
      a.observe(rec(i));
      b.observe(rec(i));
    }
    await Promise.all([a.idle(), b.idle()]);
    assert.equal(alerts.length, 1);
  });

  test('both instances past the threshold at once still alert once (SET NX)', async () => {
    const { a, b, alerts } = await twoInstances([['denials', { kind: 'denialSpike', max: 2, windowS: 60 }]]);
    const d = (s: number) => rec(s, { decision: { effect: 'deny', reason: 'policy.forbid', rule: 'p' }, outcome: 'denied' });
    for (let i = 0; i < 3; i++) a.observe(d(i));
    for (let i = 0; i < 3; i++) b.observe(d(i));
    await Promise.all([a.idle(), b.idle()]);
    assert.equal(alerts.length, 1);
  });

  test('learned pairs are shared: a secret-host pair learned on one instance is not new on the other', async () => {
    const { a, b, alerts } = await twoInstances([['secrets', { kind: 'newSecretHost', learningS: 0 }]]);
    const net = (s: number, target: string) => rec(s, { door: 'network', method: 'GET', target, session: null, detail: { secrets: ['gh'] } });
    a.observe(net(0, 'api.github.com:443'));
    await a.idle();
    b.observe(net(1, 'api.github.com:443'));
    await b.idle();
    assert.equal(alerts.length, 1, 'the first use (learningS 0) alerts once');
    b.observe(net(2, 'evil.example:443'));
    await b.idle();
    a.observe(net(3, 'evil.example:443'));
    await a.idle();
    assert.deepEqual(alerts.map((x) => [x.by, x.detail.target]), [['a', 'api.github.com:443'], ['b', 'evil.example:443']]);
  });

  test('openAnomalyEngine connects its own client from the config and closes it', async () => {
    const alerts: AdminAlert[] = [];
    const prefix = randomPrefix();
    const opened = openAnomalyEngine(
      { anomalies: new Map([['burst', rule('burst', { kind: 'burst', max: 1, windowS: 60 })]]), redis: { url: new Secret(REDIS_URL), keyPrefix: prefix } },
      { notify: (a) => alerts.push(a) },
    );
    const log = { fns: [] as ((r: ReturnType<typeof rec>) => void)[], subscribe(fn: (r: ReturnType<typeof rec>) => void) { this.fns.push(fn); return () => undefined; } };
    opened.attach(log);
    // The client connects in the background (a local Redis answers within milliseconds).
    const probe = await client();
    await new Promise((r) => setTimeout(r, 300));
    for (const fn of log.fns) fn(rec(0));
    for (const fn of log.fns) fn(rec(1));
    await opened.engine.idle();
    assert.equal(opened.engine.stats.degraded, false);
    assert.equal((await probe.keys(`${prefix}anomaly:win:*`)).length, 1, 'counted in Redis');
    await opened.close();
    assert.ok(alerts.some((a) => a.kind === 'anomaly.burst'));
  });
});

describe('a Redis outage', () => {
  test('counts locally, alerts once, never throws; back to Redis afterwards', async () => {
    const redis = new PrivateRedis(await freePort());
    await redis.start();
    try {
      const alerts: AdminAlert[] = [];
      const errors: unknown[] = [];
      let now = Date.now();
      const engine = new AnomalyEngine({
        rules: new Map([['burst', rule('burst', { kind: 'burst', max: 3, windowS: 600 })]]),
        notify: (a) => alerts.push(a),
        onError: (e) => errors.push(e),
        redis: { client: await client(redis.url), keyPrefix: randomPrefix() },
        now: () => now,
      });
      const feed = async (n: number, agent: string) => {
        for (let i = 0; i < n; i++) engine.observe(rec(i, { agent }));
        await engine.idle();
      };
      await feed(2, 'x');
      assert.equal(engine.stats.counterKeys, 0, 'in Redis');
      await redis.kill();
      await feed(2, 'x');
      assert.equal(engine.stats.degraded, true);
      await feed(10, 'y');
      await feed(10, 'z');
      assert.deepEqual(alerts.filter((a) => a.kind === 'anomaly.redis_unavailable').length, 1, 'one outage alert');
      assert.ok(engine.stats.counterKeys >= 1, 'counted locally');
      assert.deepEqual(alerts.filter((a) => a.kind === 'anomaly.burst').map((a) => a.agent), ['y', 'z'], 'rules still fire during the outage');
      assert.deepEqual(errors, []);
      // Redis back: after the retry pause, counts go to Redis again and a later outage alerts again.
      await redis.start();
      now += 10_000;
      const probe = clients.at(-1)!;
      for (let i = 0; i < 100 && probe.status !== 'ready'; i++) await new Promise((r) => setTimeout(r, 50));
      await feed(1, 'w');
      assert.equal(engine.stats.degraded, false);
    } finally {
      await redis.kill();
    }
  });
});
