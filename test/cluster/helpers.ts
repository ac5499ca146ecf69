/**
 * Helpers of the cluster tests: a config on disk sharing one SQLite store and
 * one Redis key prefix, and a private `redis-server` (own port, no
 * persistence) that a test may kill and restart without touching the
 * machine's Redis, which other test files use.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { randomToken } from '../../src/util/crypto.ts';
import { redisAnswers } from '../helpers/redis.ts';

export const TEST_KEY = 'bst_test_cluster_key_0123456789abcdef';

/** A fresh key prefix, so parallel test files never share keys or channels. */
export function randomPrefix(): string {
  return `test:${randomToken(16).slice(0, 16)}:`;
}

/** Writes `dir/bastion.yaml` (one store file, Redis at `redisUrl` under `prefix` when given) and loads it. */
export async function writeConfig(dir: string, opts: { redisUrl?: string; prefix?: string; listen?: string } = {}): Promise<{ file: string; config: ResolvedConfig; env: Record<string, string> }> {
  const file = join(dir, 'bastion.yaml');
  const yaml = [
    'version: 1',
    'server:',
    `  listen: ${opts.listen ?? '127.0.0.1:0'}`,
    'store:',
    '  sqlite: ./bastion.db',
    'agents:',
    '  demo:',
    '    keys: [env:T_CLUSTER_KEY]',
    ...(opts.redisUrl !== undefined ? ['redis:', `  url: ${JSON.stringify(opts.redisUrl)}`, `  keyPrefix: ${JSON.stringify(opts.prefix ?? randomPrefix())}`] : []),
    '',
  ].join('\n');
  writeFileSync(file, yaml);
  const env = { T_CLUSTER_KEY: TEST_KEY };
  const { config } = await loadConfig(file, { env: { ...process.env, ...env }, secrets: 'strict' });
  return { file, config, env };
}

/** A free TCP port on 127.0.0.1 (free when asked; redis-server takes it right after). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const port = (srv.address() as { port: number }).port;
  srv.close();
  await once(srv, 'close');
  return port;
}

/** A private redis-server on 127.0.0.1:`port`, started and stopped by the test. */
export class PrivateRedis {
  readonly port: number;
  #child: ChildProcess | undefined;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts it and resolves once it answers PING (bounded: 5 s). */
  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    this.#child = child;
    for (let i = 0; i < 100; i++) {
      if (await redisAnswers(this.url)) return;
      assert.equal(child.exitCode, null, 'redis-server exited at start');
      await sleep(50);
    }
    assert.fail('private redis-server did not come up');
  }

  /** Kills it (SIGKILL: an outage, not a shutdown) and waits for the process to end. */
  async kill(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

/** Polls `cond` every 20 ms until it holds (bounded by `ms`); fails the test otherwise. Not a timing assertion: the bound is generous. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}
