/**
 * The local Redis (127.0.0.1:6379) for tests that need it: started when it does
 * not answer, never skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/** Whether the Redis at `url` answers PING (one connection attempt, no retries; never throws). */
export async function redisAnswers(url: string = REDIS_URL): Promise<boolean> {
  const c = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => undefined);
  try {
    await c.connect();
    return (await c.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}

/** Resolves once Redis answers PING, starting `redis-server` first when it does not. */
export async function ensureRedis(): Promise<void> {
  if (await redisAnswers()) return;
  const r = spawnSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', '6379', '--save', '', '--appendonly', 'no']);
  assert.equal(r.status, 0, 'redis-server failed to start');
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers()) return;
    await sleep(100);
  }
  assert.fail('redis did not come up');
}
