/**
 * Issue 11, class 7 (agent-to-agent side): replays do not come back after a
 * restart. Inbound nonces are kept, by default, in a table of the embedded
 * SQLite store: a message accepted by an instance is a replay (409) for the
 * same instance started again on the same store, and for a second instance
 * running on the same store file; two instances racing on one message deliver
 * it once. The nonce port (src/store/nonces.ts) is contract-tested on each
 * implementation: SQLite, Redis and memory.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { registerPeer } from '../../src/a2a/peers.ts';
import { BastionError } from '../../src/errors.ts';
import { openNonceStore, type NonceStoreConfig } from '../../src/store/nonces.ts';
import { Secret } from '../../src/util/secret.ts';
import { ensureRedis } from '../helpers/redis.ts';
import { tempDir } from '../helpers/gateway.ts';
import { a2aRecords, craftedPeer, craftInbound, post, startDeliver, startInstance, type CraftedPeer, type DeliverEndpoint, type Instance, type InstanceSpec } from './helpers.ts';

const ISSUER = 'https://b.bastion.test';
const REDIS = 'redis://127.0.0.1:6379';

let inbox: DeliverEndpoint;
let peer: CraftedPeer;
const running: Instance[] = [];

before(async () => {
  inbox = await startDeliver('bob');
  peer = await craftedPeer('https://outsider.test');
});

after(async () => {
  for (const inst of running) await inst.close().catch(() => undefined);
  await inbox?.close();
});

function spec(extra: Partial<InstanceSpec> = {}): InstanceSpec {
  return { issuer: ISSUER, maxAgeS: 60, agents: { bob: { key: 'bob-agent-key-0123456789abcdef', receiveFrom: ['outsider'], deliver: inbox.url } }, ...extra };
}

async function start(extra: Partial<InstanceSpec> = {}): Promise<Instance> {
  const inst = await startInstance(spec(extra));
  running.push(inst);
  return inst;
}

async function stop(inst: Instance): Promise<void> {
  running.splice(running.indexOf(inst), 1);
  await inst.close();
}

/** Registers the crafted peer on the instance's store; returns the token it presents. */
async function register(inst: Instance): Promise<string> {
  const added = await registerPeer(inst.gateway.store, inst.kek, { name: 'outsider', url: 'http://127.0.0.1:9/a2a/inbound', sender: peer.sender, publicKeys: peer.publicJwk });
  if (added === 'exists') throw new Error('exists');
  return added.inboundToken.reveal();
}

describe('inbound nonces survive a restart (default: the SQLite store)', () => {
  test('a message accepted before a restart is refused after it: 409 ERR_A2A_REPLAY, not delivered again', async () => {
    const first = await start();
    assert.equal(first.gateway.config.a2a?.nonceStore, 'store', 'the default without redis');
    const token = await register(first);
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    const accepted = await post(`${first.base}/a2a/inbound`, body, token);
    assert.equal(accepted.status, 200, JSON.stringify(accepted.json));
    await stop(first);

    const delivered = inbox.received.length;
    const again = await start({ dir: first.dir });
    // Before issue 11 nonces lived in memory, and the restarted instance delivered this a second time.
    const replay = await post(`${again.base}/a2a/inbound`, body, token);
    assert.equal(replay.status, 409, JSON.stringify(replay.json));
    assert.equal(replay.json.error.code, 'ERR_A2A_REPLAY');
    assert.equal(((await a2aRecords(again)).at(-1) as any).decision.reason, 'a2a.replay');
    assert.equal(inbox.received.length, delivered);
    // A fresh message still goes through.
    assert.equal((await post(`${again.base}/a2a/inbound`, await craftInbound(peer, { recipient: ISSUER, to: 'bob' }), token)).status, 200);
  });

  test('two instances on one store file: a message accepted by one is a replay at the other, and racing on one message, exactly one delivers', async () => {
    const one = await start();
    const token = await register(one);
    const two = await start({ dir: one.dir });
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    assert.equal((await post(`${one.base}/a2a/inbound`, body, token)).status, 200);
    assert.equal((await post(`${two.base}/a2a/inbound`, body, token)).status, 409);
    for (let i = 0; i < 5; i++) {
      const raced = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
      const results = await Promise.all([post(`${one.base}/a2a/inbound`, raced, token), post(`${two.base}/a2a/inbound`, raced, token)]);
      assert.deepEqual(results.map((r) => r.status).sort(), [200, 409]);
    }
  });

  test('the nonce row lives in the store file for 2 × maxAgeS; memory, when chosen, does not survive a restart', async () => {
    const inst = await start();
    const token = await register(inst);
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    const before = Date.now();
    assert.equal((await post(`${inst.base}/a2a/inbound`, body, token)).status, 200);
    const db = new DatabaseSync(inst.dbFile, { readOnly: true });
    try {
      const nonce = (body as any).params.metadata.bastion.nonce as string;
      const row = db.prepare('SELECT until FROM a2a_nonces WHERE key = ?').get(`${encodeURIComponent(peer.sender)}:${nonce}`) as { until: number } | undefined;
      assert.ok(row, 'nonce row in the store file');
      assert.ok(row.until >= before + 120_000 && row.until <= Date.now() + 120_000, `until ${row.until}`);
    } finally {
      db.close();
    }
    await stop(inst);

    // The explicit opt-out keeps the old behaviour, documented as for tests only.
    const mem = await start({ nonceStore: 'memory' });
    const memToken = await register(mem);
    const msg = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    assert.equal((await post(`${mem.base}/a2a/inbound`, msg, memToken)).status, 200);
    await stop(mem);
    const memAgain = await start({ dir: mem.dir, nonceStore: 'memory' });
    assert.equal((await post(`${memAgain.base}/a2a/inbound`, msg, memToken)).status, 200);
  });
});

describe('the nonce port: one contract, three implementations', () => {
  const prefix = `bastion-nonce-port-${process.pid}-${Date.now()}:`;
  after(async () => {
    const client = new Redis(REDIS, { lazyConnect: true });
    await client.connect().catch(() => undefined);
    const keys = await client.keys(`${prefix}*`).catch(() => []);
    if (keys.length > 0) await client.del(...keys);
    client.disconnect();
  });

  const kinds: NonceStoreConfig['kind'][] = ['store', 'redis', 'memory'];
  for (const kind of kinds) {
    test(`${kind}: first use true, repeat false, after the ttl true again; after close it rejects`, async () => {
      if (kind === 'redis') await ensureRedis();
      const config: NonceStoreConfig = { kind, storePath: join(tempDir(), 'bastion.db'), namespace: 'a2a', redis: { url: new Secret(REDIS), keyPrefix: prefix } };
      const store = await openNonceStore(config, { redisTimeoutMs: 2000 });
      try {
        const key = `${kind}:${Math.random().toString(36).slice(2)}`;
        assert.equal(await store.remember(key, 300), true);
        assert.equal(await store.remember(key, 300), false);
        assert.equal(await store.remember(`${key}:other`, 300), true);
        await new Promise((r) => setTimeout(r, 400));
        assert.equal(await store.remember(key, 300), true, 'expired nonce counts as new');
      } finally {
        await store.close();
      }
      await assert.rejects(store.remember('after-close', 1000));
    });
  }

  test('store: a store file that cannot be opened is ERR_STORE; redis without a redis setting is ERR_CONFIG_INVALID', async () => {
    await assert.rejects(
      openNonceStore({ kind: 'store', storePath: join(tempDir(), 'no-such-dir', 'bastion.db'), namespace: 'a2a' }, { redisTimeoutMs: 100 }),
      (e) => e instanceof BastionError && e.code === 'ERR_STORE',
    );
    await assert.rejects(openNonceStore({ kind: 'redis', storePath: 'x', namespace: 'a2a' }, { redisTimeoutMs: 100 }), (e) => e instanceof BastionError && e.code === 'ERR_CONFIG_INVALID');
  });
});
