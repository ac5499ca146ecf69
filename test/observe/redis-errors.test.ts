/**
 * `bastion_errors_total{component="redis"}` (issue 14): the Redis users count
 * every failed command with its short code. With a Redis URL on a closed port:
 * a model-door request whose rate limit cannot be checked (over real sockets,
 * read back from `/metrics`), a failed cluster-bus publish (and the outage
 * `attachCluster` sees), and a failed nonce lookup. Before, the counter only
 * ever saw the store.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { attachCluster, type ClusterRuntime } from '../../src/cluster/cluster.ts';
import { RedisBus } from '../../src/cluster/redis-bus.ts';
import { loadConfig } from '../../src/config/load.ts';
import { ModelDoor } from '../../src/model/door.ts';
import { Readiness } from '../../src/observe/health.ts';
import { GatewayMetrics } from '../../src/observe/metrics.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { openNonceStore } from '../../src/store/nonces.ts';
import { Secret } from '../../src/util/secret.ts';
import { tempDir } from '../helpers/gateway.ts';
import { freePort } from '../helpers/mcp.ts';

const KEY = 'redis-errors-key-0123456789abcdef';

/** The sum of `bastion_errors_total{component="redis"}` over its codes, from the text exposition. */
function redisErrors(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    const m = /^bastion_errors_total\{(.*)\} (\S+)$/.exec(line);
    if (m !== null && /(^|,)component="redis"(,|$)/.test(m[1]!)) n += Number(m[2]);
  }
  return n;
}

let closedUrl: string;
before(async () => {
  closedUrl = `redis://127.0.0.1:${await freePort()}`;
});

test('model door: a rate limit that cannot reach Redis is refused 503 ERR_STORE and counted on /metrics', async () => {
  const dir = tempDir();
  const file = join(dir, 'bastion.yaml');
  writeFileSync(
    file,
    `version: 1
store: { sqlite: ./bastion.db }
redis: { url: "${closedUrl}", keyPrefix: "t:" }
modelDoor:
  rateLimits:
    perUser: { requests: { points: 10, windowS: 30 } }
agents:
  support:
    keys: [env:KEY]
    model: { provider: openai, baseUrl: "http://127.0.0.1:9/v1" }
`,
  );
  const { config } = await loadConfig(file, { env: { ...process.env, KEY }, secrets: 'strict' });
  const { gateway } = await Gateway.open(config, { observe: { defaultMetrics: false } });
  let model: ModelDoor | undefined;
  let running: RunningServer | undefined;
  try {
    model = await ModelDoor.open(gateway);
    running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 }, { model });
    const metrics = (): Promise<string> => fetch(new URL('/metrics', running!.url)).then((r) => r.text());
    assert.equal(redisErrors(await metrics()), 0);
    const res = await fetch(new URL('/v1/chat/completions', running.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}`, 'bastion-user': 'alice' },
      body: JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_STORE');
    assert.ok(redisErrors(await metrics()) >= 1, 'the failed rate-limit check is counted');
  } finally {
    await running?.close();
    await model?.close();
    await gateway.close();
  }
});

test('cluster bus: the outage and every failed publish are counted', async () => {
  const metrics = new GatewayMetrics(() => false, {}, { defaultMetrics: false });
  const bus = await RedisBus.open({ url: closedUrl, keyPrefix: 't:', timeoutMs: 200 });
  let cluster: ClusterRuntime | undefined;
  try {
    cluster = await attachCluster({ config: { file: '' }, bus, readiness: new Readiness(), auditStep: { batched: () => undefined }, observer: { metrics } }, { listen: '127.0.0.1:1', heartbeatMs: 60_000 });
    assert.equal(cluster.outage, true);
    const atOutage = redisErrors((await metrics.scrape()).body);
    assert.equal(atOutage, 1, 'the outage is counted once');
    await assert.rejects(bus.publish('approvals', { id: 'a1' }), { code: 'ERR_STORE' });
    await assert.rejects(bus.publish('approvals', { id: 'a2' }), { code: 'ERR_STORE' });
    assert.equal(redisErrors((await metrics.scrape()).body), atOutage + 2);
  } finally {
    await cluster?.close();
    await bus.close();
  }
});

test('nonce store (redis): a failed lookup rejects and is counted with its code', async () => {
  const codes: string[] = [];
  const nonces = await openNonceStore({ kind: 'redis', namespace: 'mcp', redis: { url: new Secret(closedUrl), keyPrefix: 't:' } }, { redisTimeoutMs: 200, onRedisError: (code) => codes.push(code) });
  try {
    await assert.rejects(nonces.remember('n1', 60_000));
    assert.equal(codes.length, 1);
    assert.match(codes[0]!, /^[A-Za-z0-9_]{1,32}$/);
  } finally {
    await nonces.close();
  }
});

