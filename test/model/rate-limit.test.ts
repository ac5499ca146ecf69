import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { isBastionError } from '../../src/errors.ts';
import { ModelRateLimiter, type RateDecision } from '../../src/model/rate-limit.ts';
import { ensureRedis } from '../helpers/redis.ts';
import { freePort } from '../helpers/mcp.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
/** Unique per test run so parallel runs never share counters. */
const RUN_PREFIX = `bastion-test:rl:${process.pid}:${Date.now()}`;
let prefixCount = 0;
const freshPrefix = (): string => `${RUN_PREFIX}:${prefixCount++}`;

function refused(d: RateDecision): { limit: string; retryAfterMs: number } {
  assert.equal(d.ok, false, 'expected a refusal');
  if (d.ok) throw new Error('unreachable');
  return { limit: d.limit, retryAfterMs: d.retryAfterMs };
}

describe('ModelRateLimiter: options', () => {
  test('a limit that is not a positive integer is ERR_CONFIG_INVALID naming the path', async () => {
    const cases: [unknown, string][] = [
      [{ perUser: { requests: { points: 0, windowS: 60 } } }, 'rateLimit.perUser.requests.points'],
      [{ perAgent: { tokens: { points: 10, windowS: 1.5 } } }, 'rateLimit.perAgent.tokens.windowS'],
      [{ perAgent: { requests: { points: -1, windowS: 60 } } }, 'rateLimit.perAgent.requests.points'],
      [{ perUser: { tokens: { points: '5', windowS: 60 } } }, 'rateLimit.perUser.tokens.points'],
    ];
    for (const [limits, path] of cases) {
      await assert.rejects(ModelRateLimiter.create(limits as never), (err) => {
        assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'));
        assert.equal(err.detail?.path, path);
        return true;
      });
    }
    await assert.rejects(ModelRateLimiter.create({}, { redisTimeoutMs: 0 }), (err) => isBastionError(err, 'ERR_CONFIG_INVALID'));
    await assert.rejects(ModelRateLimiter.create({}, { keyPrefix: '' }), (err) => isBastionError(err, 'ERR_CONFIG_INVALID'));
  });

  test('a redisUrl that is not redis:/rediss: is ERR_CONFIG_INVALID and its password is not echoed', async () => {
    for (const url of ['http://:hunter2-secret@127.0.0.1:6379', 'not a url hunter2-secret']) {
      await assert.rejects(ModelRateLimiter.create({}, { redisUrl: url }), (err) => {
        assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'));
        assert.ok(!err.message.includes('hunter2'));
        assert.ok(!JSON.stringify(err.detail).includes('hunter2'));
        return true;
      });
    }
  });

  test('bad names and token counts are caller bugs: TypeError / RangeError', async () => {
    const rl = await ModelRateLimiter.create({ perUser: { tokens: { points: 10, windowS: 60 } } });
    await assert.rejects(rl.admit('', 'u'), RangeError);
    await assert.rejects(rl.admit('a', 'x'.repeat(1025)), RangeError);
    await assert.rejects(rl.admit(42 as never, 'u'), TypeError);
    for (const t of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) await assert.rejects(rl.chargeTokens('a', 'u', t), RangeError);
    await rl.chargeTokens('a', 'u', 0);
    assert.deepEqual(await rl.admit('a', 'u'), { ok: true });
    await rl.close();
  });
});

describe('ModelRateLimiter: memory', () => {
  test('no limits configured: every request is admitted', async () => {
    const rl = await ModelRateLimiter.create({});
    for (let i = 0; i < 100; i++) assert.deepEqual(await rl.admit('a', 'u'), { ok: true });
    await rl.chargeTokens('a', 'u', 1_000_000);
    assert.deepEqual(await rl.admit('a', 'u'), { ok: true });
    await rl.close();
  });

  test('per-user requests: the third in a window is refused with a Retry-After inside the window', async () => {
    const rl = await ModelRateLimiter.create({ perUser: { requests: { points: 2, windowS: 10 } } });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true });
    const r = refused(await rl.admit('agent', 'alice'));
    assert.equal(r.limit, 'user.requests');
    assert.ok(r.retryAfterMs > 9_000 && r.retryAfterMs <= 10_000, `retryAfterMs ${r.retryAfterMs}`);
    assert.ok(Number.isInteger(r.retryAfterMs));
    // Another user of the same agent, and the same user id under another agent, have their own counters.
    assert.deepEqual(await rl.admit('agent', 'bob'), { ok: true });
    assert.deepEqual(await rl.admit('other-agent', 'alice'), { ok: true });
    await rl.close();
  });

  test('per-agent requests: counted across users; refused with agent.requests', async () => {
    const rl = await ModelRateLimiter.create({ perAgent: { requests: { points: 3, windowS: 30 } } });
    for (const u of ['u1', 'u2', 'u3']) assert.deepEqual(await rl.admit('agent', u), { ok: true });
    const r = refused(await rl.admit('agent', 'u4'));
    assert.equal(r.limit, 'agent.requests');
    assert.ok(r.retryAfterMs > 29_000 && r.retryAfterMs <= 30_000, `retryAfterMs ${r.retryAfterMs}`);
    assert.deepEqual(await rl.admit('agent-2', 'u4'), { ok: true });
    await rl.close();
  });

  test('requests refused by the user limit do not spend the agent budget', async () => {
    const rl = await ModelRateLimiter.create({
      perUser: { requests: { points: 1, windowS: 60 } },
      perAgent: { requests: { points: 2, windowS: 60 } },
    });
    assert.deepEqual(await rl.admit('agent', 'noisy'), { ok: true });
    for (let i = 0; i < 5; i++) assert.equal(refused(await rl.admit('agent', 'noisy')).limit, 'user.requests');
    assert.deepEqual(await rl.admit('agent', 'quiet'), { ok: true });
    assert.equal(refused(await rl.admit('agent', 'third')).limit, 'agent.requests');
    await rl.close();
  });

  test('a request refused by the agent limit gives the user point back', async () => {
    const rl = await ModelRateLimiter.create({
      perUser: { requests: { points: 2, windowS: 60 } },
      perAgent: { requests: { points: 1, windowS: 1 } },
    });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // user 1, agent 1
    assert.equal(refused(await rl.admit('agent', 'alice')).limit, 'agent.requests'); // user 2 → given back to 1
    await sleep(1_100); // the agent window ends; the user window (60 s) does not
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // user 2: would be 3 (refused) without the give-back
    await sleep(1_100);
    assert.equal(refused(await rl.admit('agent', 'alice')).limit, 'user.requests');
    await rl.close();
  });

  test('names are encoded: "a:b"+"c" and "a"+"b:c" (and "a%3Ab") never share a counter', async () => {
    const rl = await ModelRateLimiter.create({
      perUser: { requests: { points: 1, windowS: 60 } },
      perAgent: { requests: { points: 1, windowS: 60 } },
    });
    assert.deepEqual(await rl.admit('a:b', 'c'), { ok: true });
    assert.deepEqual(await rl.admit('a', 'b:c'), { ok: true });
    assert.deepEqual(await rl.admit('a%3Ab', 'c'), { ok: true });
    assert.deepEqual(await rl.admit('a%253Ab', 'c'), { ok: true });
    assert.equal(refused(await rl.admit('a:b', 'other')).limit, 'agent.requests');
    await rl.close();
  });

  test('token budget: an overdraw is charged, then admit is refused until the window ends', async () => {
    const rl = await ModelRateLimiter.create({ perUser: { tokens: { points: 100, windowS: 1 } } });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true });
    await rl.chargeTokens('agent', 'alice', 99);
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // 99 < 100: not exhausted
    await rl.chargeTokens('agent', 'alice', 150); // 249: overdrawn, never refused
    const r = refused(await rl.admit('agent', 'alice'));
    assert.equal(r.limit, 'user.tokens');
    assert.ok(r.retryAfterMs > 0 && r.retryAfterMs <= 1_000, `retryAfterMs ${r.retryAfterMs}`);
    assert.deepEqual(await rl.admit('agent', 'bob'), { ok: true });
    await sleep(r.retryAfterMs + 50);
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true });
    await rl.close();
  });

  test('a budget used exactly up is exhausted; the agent budget is shared by its users', async () => {
    const rl = await ModelRateLimiter.create({ perAgent: { tokens: { points: 100, windowS: 60 } } });
    await rl.chargeTokens('agent', 'alice', 60);
    assert.deepEqual(await rl.admit('agent', 'bob'), { ok: true });
    await rl.chargeTokens('agent', 'bob', 40);
    const r = refused(await rl.admit('agent', 'carol'));
    assert.equal(r.limit, 'agent.tokens');
    assert.ok(r.retryAfterMs > 59_000 && r.retryAfterMs <= 60_000, `retryAfterMs ${r.retryAfterMs}`);
    assert.deepEqual(await rl.admit('agent-2', 'carol'), { ok: true });
    await rl.close();
  });

  test('a token refusal spends no request point', async () => {
    const rl = await ModelRateLimiter.create({
      perUser: { requests: { points: 2, windowS: 60 }, tokens: { points: 10, windowS: 1 } },
    });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // request 1 of 2
    await rl.chargeTokens('agent', 'alice', 50);
    for (let i = 0; i < 3; i++) assert.equal(refused(await rl.admit('agent', 'alice')).limit, 'user.tokens');
    await sleep(1_100); // token window ends
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // request 2 of 2
    assert.equal(refused(await rl.admit('agent', 'alice')).limit, 'user.requests');
    await rl.close();
  });

  test('after close, admit fails closed and chargeTokens is ERR_STORE', async () => {
    const rl = await ModelRateLimiter.create({ perUser: { tokens: { points: 10, windowS: 60 } } });
    await rl.close();
    await rl.close();
    assert.equal(refused(await rl.admit('a', 'u')).limit, 'store.error');
    await assert.rejects(rl.chargeTokens('a', 'u', 1), (err) => isBastionError(err, 'ERR_STORE'));
  });
});

describe('ModelRateLimiter: Redis', () => {
  before(ensureRedis);
  after(async () => {
    const c = new Redis(REDIS_URL);
    c.on('error', () => undefined);
    const keys = await c.keys(`${RUN_PREFIX}:*`);
    if (keys.length > 0) await c.del(...keys);
    c.disconnect();
  });

  test('two limiters on one Redis share the request and token counters', async (t) => {
    const keyPrefix = freshPrefix();
    const limits = { perUser: { requests: { points: 3, windowS: 60 }, tokens: { points: 100, windowS: 60 } } };
    const a = await ModelRateLimiter.create(limits, { redisUrl: REDIS_URL, keyPrefix });
    const b = await ModelRateLimiter.create(limits, { redisUrl: REDIS_URL, keyPrefix });
    t.after(() => Promise.all([a.close(), b.close()]));
    assert.deepEqual(await a.admit('agent', 'alice'), { ok: true });
    assert.deepEqual(await b.admit('agent', 'alice'), { ok: true });
    assert.deepEqual(await a.admit('agent', 'alice'), { ok: true });
    const r = refused(await b.admit('agent', 'alice'));
    assert.equal(r.limit, 'user.requests');
    assert.ok(r.retryAfterMs > 55_000 && r.retryAfterMs <= 60_000, `retryAfterMs ${r.retryAfterMs}`);

    assert.deepEqual(await b.admit('agent', 'bob'), { ok: true });
    await a.chargeTokens('agent', 'bob', 250);
    const tok = refused(await b.admit('agent', 'bob'));
    assert.equal(tok.limit, 'user.tokens');
    assert.ok(tok.retryAfterMs > 55_000 && tok.retryAfterMs <= 60_000, `retryAfterMs ${tok.retryAfterMs}`);

    // Another key prefix is another set of counters.
    const c = await ModelRateLimiter.create(limits, { redisUrl: REDIS_URL, keyPrefix: freshPrefix() });
    t.after(() => c.close());
    assert.deepEqual(await c.admit('agent', 'alice'), { ok: true });
  });

  test('the agent-limit give-back and the encoded keys hold in Redis too', async (t) => {
    const keyPrefix = freshPrefix();
    const rl = await ModelRateLimiter.create(
      { perUser: { requests: { points: 2, windowS: 60 } }, perAgent: { requests: { points: 1, windowS: 1 } } },
      { redisUrl: REDIS_URL, keyPrefix },
    );
    t.after(() => rl.close());
    assert.deepEqual(await rl.admit('a:b', 'c'), { ok: true });
    assert.deepEqual(await rl.admit('a', 'b:c'), { ok: true });
    assert.equal(refused(await rl.admit('a', 'b:c')).limit, 'agent.requests');
    await sleep(1_100);
    assert.deepEqual(await rl.admit('a', 'b:c'), { ok: true });

    const probe = new Redis(REDIS_URL);
    const keys = (await probe.keys(`${keyPrefix}:*`)).sort();
    probe.disconnect();
    assert.ok(keys.includes(`${keyPrefix}:user.requests:a%3Ab:c`), keys.join(','));
    assert.ok(keys.includes(`${keyPrefix}:user.requests:a:b%3Ac`), keys.join(','));
  });

  test('Redis unreachable (closed port): create resolves, admit answers store.error within redisTimeoutMs', async (t) => {
    const port = await freePort();
    const t0 = performance.now();
    const rl = await ModelRateLimiter.create(
      { perUser: { requests: { points: 5, windowS: 60 }, tokens: { points: 5, windowS: 60 } } },
      { redisUrl: `redis://:hunter2-secret@127.0.0.1:${port}`, keyPrefix: freshPrefix(), redisTimeoutMs: 300 },
    );
    t.after(() => rl.close());
    assert.ok(performance.now() - t0 < 1_000, 'create waited too long');
    for (let i = 0; i < 3; i++) {
      const t1 = performance.now();
      assert.deepEqual(await rl.admit('agent', 'alice'), { ok: false, limit: 'store.error', retryAfterMs: 1_000 });
      assert.ok(performance.now() - t1 < 600, 'admit was not bounded by redisTimeoutMs');
    }
    await assert.rejects(rl.chargeTokens('agent', 'alice', 10), (err) => {
      assert.ok(isBastionError(err, 'ERR_STORE'));
      assert.ok(!err.message.includes('hunter2') && !JSON.stringify(err.detail).includes('hunter2'));
      return true;
    });
  });

  test('a Redis that stops answering: admit fails closed after redisTimeoutMs', async (t) => {
    // A TCP proxy to the real Redis that, once stalled, swallows everything the client sends.
    let stalled = false;
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = connect(6379, '127.0.0.1');
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.on('data', (buf) => {
        if (!stalled) upstream.write(buf);
      });
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const { port } = proxy.address() as AddressInfo;
    const rl = await ModelRateLimiter.create(
      { perUser: { requests: { points: 5, windowS: 60 } } },
      { redisUrl: `redis://127.0.0.1:${port}`, keyPrefix: freshPrefix(), redisTimeoutMs: 250 },
    );
    t.after(async () => {
      await rl.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    });
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: true }); // through the proxy while it forwards
    stalled = true;
    const t0 = performance.now();
    assert.deepEqual(await rl.admit('agent', 'alice'), { ok: false, limit: 'store.error', retryAfterMs: 1_000 });
    const took = performance.now() - t0;
    assert.ok(took >= 200 && took < 1_000, `took ${took} ms`);
  });

  test('close() lets the process exit while Redis is unreachable', async () => {
    const port = await freePort();
    const script = `
      import { ModelRateLimiter } from './src/model/rate-limit.ts';
      const rl = await ModelRateLimiter.create({ perAgent: { requests: { points: 1, windowS: 60 } } },
        { redisUrl: 'redis://127.0.0.1:${port}', redisTimeoutMs: 200 });
      const d = await rl.admit('a', 'u');
      await rl.close();
      process.stdout.write(JSON.stringify(d));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: new URL('../..', import.meta.url), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const t0 = performance.now();
    const code = await new Promise<number | null>((resolve) => {
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.on('exit', (c) => {
        clearTimeout(killer);
        resolve(c);
      });
    });
    assert.equal(code, 0, 'the process hung or failed');
    assert.ok(performance.now() - t0 < 5_000);
    assert.deepEqual(JSON.parse(out), { ok: false, limit: 'store.error', retryAfterMs: 1_000 });
  });
});
