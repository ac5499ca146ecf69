/**
 * The nonce cache in Redis: two receiving instances of one deployment (same
 * `identity.issuer`, separate stores) sharing one Redis accept a message once
 * between them; a Redis that does not answer refuses every message (fail closed).
 * Uses the Redis on 127.0.0.1:6379, started here when it is not running.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { registerPeer } from '../../src/a2a/peers.ts';
import { a2aRecords, craftedPeer, craftInbound, deadPort, post, startDeliver, startInstance, type CraftedPeer, type DeliverEndpoint, type Instance } from './helpers.ts';
import { ensureRedis } from '../helpers/redis.ts';

const ISSUER = 'https://b.bastion.test';
const REDIS = 'redis://127.0.0.1:6379';
const PREFIX = `bastion-a2a-test-${process.pid}-${Date.now()}:`;


let inbox: DeliverEndpoint;
let peer: CraftedPeer;
const instances: { inst: Instance; token: string }[] = [];

async function receiver(redisUrl: string, prefix: string): Promise<{ inst: Instance; token: string }> {
  const inst = await startInstance({
    issuer: ISSUER,
    maxAgeS: 30,
    redis: { url: redisUrl, keyPrefix: prefix },
    agents: { bob: { key: `bob-agent-key-${instances.length}-0123456789abcdef`, receiveFrom: ['outsider'], deliver: inbox.url } },
  });
  const added = await registerPeer(inst.gateway.store, inst.kek, { name: 'outsider', url: 'http://127.0.0.1:9/a2a/inbound', sender: peer.sender, publicKeys: peer.publicJwk });
  if (added === 'exists') throw new Error('exists');
  const r = { inst, token: added.inboundToken.reveal() };
  instances.push(r);
  return r;
}

before(async () => {
  await ensureRedis();
  inbox = await startDeliver('bob');
  peer = await craftedPeer('https://outsider.test');
});

after(async () => {
  for (const { inst } of instances) await inst.close();
  await inbox?.close();
  const client = new Redis(REDIS, { lazyConnect: true });
  await client.connect();
  const keys = await client.keys(`${PREFIX}*`);
  if (keys.length > 0) await client.del(...keys);
  client.disconnect();
});

test('a message accepted by one instance is a replay at the other (shared Redis)', async () => {
  const one = await receiver(REDIS, PREFIX);
  const two = await receiver(REDIS, PREFIX);
  const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
  const first = await post(`${one.inst.base}/a2a/inbound`, body, one.token);
  assert.equal(first.status, 200, JSON.stringify(first.json));
  const second = await post(`${two.inst.base}/a2a/inbound`, body, two.token);
  assert.equal(second.status, 409);
  assert.equal(second.json.error.code, 'ERR_A2A_REPLAY');
  assert.equal(((await a2aRecords(two.inst)).at(-1) as any).decision.reason, 'a2a.replay');

  // The nonce is kept for 2 × maxAgeS (60 s): more than maxAgeS is left even when this test ran slowly
  // on a loaded machine (seconds pass between the write and this read).
  const nonce = (body as any).params.metadata.bastion.nonce as string;
  const client = new Redis(REDIS, { lazyConnect: true });
  await client.connect();
  try {
    const ttl = await client.pttl(`${PREFIX}a2a:nonce:${encodeURIComponent(peer.sender)}:${nonce}`);
    assert.ok(ttl > 40_000 && ttl <= 60_000, `pttl ${ttl}`);
  } finally {
    client.disconnect();
  }

  // Racing: the same fresh message at both at once is delivered exactly once.
  const raced = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
  const results = await Promise.all([post(`${one.inst.base}/a2a/inbound`, raced, one.token), post(`${two.inst.base}/a2a/inbound`, raced, two.token)]);
  assert.deepEqual(results.map((r) => r.status).sort(), [200, 409]);
});

test('separate key prefixes (separate deployments) do not share nonces', async () => {
  const other = await receiver(REDIS, `${PREFIX}other:`);
  const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
  const one = instances[0]!;
  assert.equal((await post(`${one.inst.base}/a2a/inbound`, body, one.token)).status, 200);
  assert.equal((await post(`${other.inst.base}/a2a/inbound`, body, other.token)).status, 200);
});

test('Redis unavailable: every message is refused with 503 (fail closed), nothing is delivered', async () => {
  const port = await deadPort();
  const down = await receiver(`redis://127.0.0.1:${port}`, PREFIX);
  const delivered = inbox.received.length;
  const res = await post(`${down.inst.base}/a2a/inbound`, await craftInbound(peer, { recipient: ISSUER, to: 'bob' }), down.token);
  assert.equal(res.status, 503);
  assert.equal(res.json.error.code, 'ERR_A2A_REPLAY');
  const rec = (await a2aRecords(down.inst)).at(-1) as any;
  assert.equal(rec.decision.reason, 'a2a.nonce_store');
  assert.equal(rec.outcome, 'error');
  assert.equal(inbox.received.length, delivered);
});
