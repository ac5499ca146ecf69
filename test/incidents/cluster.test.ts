/**
 * Isolation across instances: two real `bastion serve` processes sharing one
 * PostgreSQL schema (freshSchema) and a private Redis. An isolation through
 * instance A's admin API (and then through the CLI, another process) must
 * refuse the agent's requests on instance B within a second; the figure is
 * printed (`isolate→refusal on another instance: N ms`).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshSchema } from '../helpers/postgres.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';
import { tempDir } from '../helpers/gateway.ts';
import { freePort, PrivateRedis, randomPrefix } from '../cluster/helpers.ts';

const KEY = 'incident-cluster-key-0123456789abcdef';
const ADMIN = 'incident-cluster-admin-0123456789abcdef';
const MASTER = Buffer.alloc(32, 5).toString('base64');

describe('isolation across two serve processes (PostgreSQL + Redis)', { timeout: 120_000 }, () => {
  let redis: PrivateRedis;
  let schema: Awaited<ReturnType<typeof freshSchema>>;
  let file: string;
  let env: Record<string, string>;
  let a: Started | undefined;
  let b: Started | undefined;
  let urlA: URL;
  let urlB: URL;

  before(async () => {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    schema = await freshSchema('inc');
    const dir = tempDir();
    file = join(dir, 'bastion.yaml');
    writeFileSync(
      file,
      `version: 1
server: { listen: 127.0.0.1:0, egress: false }
store: { postgres: env:INC_PG_URL }
redis: { url: ${JSON.stringify(redis.url)}, keyPrefix: ${JSON.stringify(randomPrefix())} }
admin: { keys: [env:INC_ADMIN] }
agents:
  demo:
    keys: [env:INC_KEY]
`,
    );
    env = { INC_PG_URL: schema.url, INC_KEY: KEY, INC_ADMIN: ADMIN, BASTION_MASTER_KEY: MASTER };
    const ready = /serving MCP at (http:\/\/\S+)/;
    a = await startProcess([CLI, 'serve', '--config', file], env, ready);
    b = await startProcess([CLI, 'serve', '--config', file], env, ready);
    urlA = new URL(a.match[1] as string);
    urlB = new URL(b.match[1] as string);
  });
  after(async () => {
    await stopAll([a?.child, b?.child]);
    await redis?.kill();
    await schema?.drop();
  });

  const modelOn = async (url: URL): Promise<{ status: number; text: string }> => {
    const res = await fetch(new URL('/v1/chat/completions', url), { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{}' });
    return { status: res.status, text: await res.text() };
  };
  const admin = (url: URL, path: string, body: unknown): Promise<Response> =>
    fetch(new URL(path, url), { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  /** Polls B until the agent is refused (or served again); the ms since `t0`. */
  const untilOnB = async (status: number, t0: number): Promise<{ ms: number; last: { status: number; text: string } }> => {
    let last = await modelOn(urlB);
    while (last.status !== status && performance.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 5));
      last = await modelOn(urlB);
    }
    return { ms: Math.round(performance.now() - t0), last };
  };

  test('isolate through A\'s admin API → ERR_AGENT_ISOLATED on B in < 1 s; restore → served on B', async () => {
    assert.equal((await modelOn(urlB)).status, 404, 'served before (no model configured: past authentication)');
    const t0 = performance.now();
    const res = await admin(urlA, '/api/incidents/demo/isolate', { reason: 'cluster test' });
    assert.equal(res.status, 200);
    const { ms, last } = await untilOnB(403, t0);
    console.log(`isolate→refusal on another instance: ${ms} ms (admin API on A, PostgreSQL + Redis)`);
    assert.equal(last.status, 403);
    assert.match(last.text, /ERR_AGENT_ISOLATED/);
    assert.ok(ms < 1000, `${ms} ms`);
    const t1 = performance.now();
    assert.equal((await admin(urlA, '/api/incidents/demo/restore', { reason: 'done' })).status, 200);
    const back = await untilOnB(404, t1);
    assert.equal(back.last.status, 404);
    assert.ok(back.ms < 1000, `${back.ms} ms`);
  });

  test('isolate through the CLI (another process, publishing on Redis) → refused on B in < 1 s after it returns', async () => {
    const t0 = performance.now();
    const r = await runCli(['incident', 'isolate', 'demo', '--reason', 'cli', '--config', file], { env });
    const cliMs = Math.round(performance.now() - t0);
    assert.equal(r.code, 0, r.stderr);
    const t1 = performance.now();
    const { ms, last } = await untilOnB(403, t1);
    console.log(`isolate→refusal on another instance: ${ms} ms after the CLI returned (the CLI process took ${cliMs} ms, start-up included)`);
    assert.equal(last.status, 403);
    assert.ok(ms < 1000, `${ms} ms`);
    const restored = await runCli(['incident', 'restore', 'demo', '--config', file], { env });
    assert.equal(restored.code, 0, restored.stderr);
  });
});
