/**
 * Two gateways in one process sharing one Redis (random key prefix) and one
 * SQLite store file: broadcast reaches both, an approval decided on A (queue,
 * admin path, or the CLI) releases the call held on B through the bus, a pin
 * change reaches B's listeners. The queues under test poll every 10 minutes, so
 * a release can only come from a bus message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ApprovalQueue } from '../../src/approvals/queue.ts';
import { main } from '../../src/cli/main.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import type { ClusterMessage } from '../../src/cluster/bus.ts';
import { RedisBus } from '../../src/cluster/redis-bus.ts';
import { PinGate } from '../../src/mcp/pins.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { tempDir } from '../helpers/gateway.ts';
import { ensureRedis, REDIS_URL } from '../helpers/redis.ts';
import { randomPrefix, until, writeConfig } from './helpers.ts';

const NEVER_MS = 600_000;

describe('cluster: two gateways, one Redis, one store', { timeout: 30_000 }, () => {
  let dir: string;
  let file: string;
  let prefix: string;
  let env: Record<string, string>;
  let a: Gateway;
  let b: Gateway;

  before(async () => {
    await ensureRedis();
    dir = tempDir();
    prefix = randomPrefix();
    const written = await writeConfig(dir, { redisUrl: REDIS_URL, prefix });
    file = written.file;
    env = written.env;
    const busA = await RedisBus.open({ url: REDIS_URL, keyPrefix: prefix });
    const busB = await RedisBus.open({ url: REDIS_URL, keyPrefix: prefix });
    ({ gateway: a } = await Gateway.open(written.config, { bus: busA }));
    ({ gateway: b } = await Gateway.open(written.config, { bus: busB }));
  });
  after(async () => {
    await a?.close();
    await b?.close();
  });

  const cli = async (argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const io: CliIO = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, cwd: dir };
    const code = await main([...argv, '--config', file], io);
    return { code, stdout, stderr };
  };

  test('the gateways use the Redis bus, each with its own instance id', () => {
    assert.ok(a.bus instanceof RedisBus && b.bus instanceof RedisBus);
    assert.notEqual(a.bus.instanceId, b.bus.instanceId);
    assert.deepEqual([a.bus.health().ok, b.bus.health().ok], [true, true]);
  });

  test('broadcast: a message from A reaches both, with the sender id; another prefix hears nothing', async () => {
    const other = await RedisBus.open({ url: REDIS_URL, keyPrefix: randomPrefix() });
    const got: [string, ClusterMessage, string][] = [];
    const offA = a.bus.subscribe('broadcast', (m, from) => got.push(['a', m, from]));
    const offB = b.bus.subscribe('broadcast', (m, from) => got.push(['b', m, from]));
    const offOther = other.subscribe('broadcast', (m, from) => got.push(['other', m, from]));
    try {
      await a.bus.publish('broadcast', { kind: 'test', n: 1 });
      await until(() => got.length >= 2, 'broadcast on both');
      // A marker through `other` proves it is subscribed, and still heard nothing from A.
      await other.publish('broadcast', { kind: 'marker' });
      await until(() => got.some((g) => g[0] === 'other'), 'marker');
      assert.deepEqual(got.filter((g) => g[1].kind === 'test').map((g) => g[0]).sort(), ['a', 'b']);
      for (const g of got.filter((x) => x[1].kind === 'test')) assert.equal(g[2], a.bus.instanceId);
      assert.deepEqual(got.filter((g) => g[0] === 'other').map((g) => g[1].kind), ['marker']);
    } finally {
      offA();
      offB();
      offOther();
      await other.close();
    }
  });

  test('foreign or malformed payloads on a bus channel are dropped', async () => {
    const raw = new Redis(REDIS_URL);
    const got: ClusterMessage[] = [];
    const off = b.bus.subscribe('broadcast', (m) => got.push(m));
    try {
      const channel = (b.bus as RedisBus).channelName('broadcast');
      for (const payload of ['not json', '[]', '{"v":2,"from":"x","message":{}}', '{"v":1,"message":{}}', '{"v":1,"from":"x","message":[1]}', '{"v":1,"from":"x","message":"s"}']) {
        await raw.publish(channel, payload);
      }
      await raw.publish(channel, JSON.stringify({ v: 1, from: 'x', message: { kind: 'last' } }));
      await until(() => got.length > 0, 'the valid message');
      assert.deepEqual(got, [{ kind: 'last' }]);
    } finally {
      off();
      raw.disconnect();
    }
  });

  const hold = (q: ApprovalQueue, tool: string) => {
    let id = '';
    const outcome = q.hold({ agent: 'demo', user: null, tool, argsDigest: 'd'.repeat(64), argsPreview: '{}', onCreated: (x) => void (id = x) });
    return { outcome, id: () => id };
  };

  test('an approval decided on A releases the call held on B (B polls every 10 minutes: only the bus can wake it)', async () => {
    const queueB = new ApprovalQueue(b.store, { timeoutMs: NEVER_MS, reuseTtlMs: 60_000, pollMs: NEVER_MS, bus: b.bus });
    const held = hold(queueB, 'demo__one');
    await until(() => held.id() !== '', 'the approval to be created');
    await a.deps.approvals.decide(held.id(), 'approved', 'admin-api', null);
    const out = await held.outcome;
    assert.equal(out.status, 'approved');
    assert.equal((await b.store.getApproval(held.id()))?.status, 'used');
  });

  test('a denial decided on A releases B too, as a denial', async () => {
    const queueB = new ApprovalQueue(b.store, { timeoutMs: NEVER_MS, reuseTtlMs: 60_000, pollMs: NEVER_MS, bus: b.bus });
    const held = hold(queueB, 'demo__two');
    await until(() => held.id() !== '', 'the approval to be created');
    await a.deps.approvals.decide(held.id(), 'denied', 'admin-api', 'no');
    assert.equal((await held.outcome).status, 'denied');
  });

  test('bastion approvals approve (another process, redis configured) publishes: the call held on B is released', async () => {
    const queueB = new ApprovalQueue(b.store, { timeoutMs: NEVER_MS, reuseTtlMs: 60_000, pollMs: NEVER_MS, bus: b.bus });
    const held = hold(queueB, 'demo__three');
    await until(() => held.id() !== '', 'the approval to be created');
    const r = await cli(['approvals', 'approve', held.id()]);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.equal((await held.outcome).status, 'approved');
  });

  test('a message for another approval id does not release the call; the store, not the message, decides', async () => {
    const queueB = new ApprovalQueue(b.store, { timeoutMs: NEVER_MS, reuseTtlMs: 60_000, pollMs: NEVER_MS, bus: b.bus });
    const held = hold(queueB, 'demo__four');
    await until(() => held.id() !== '', 'the approval to be created');
    let settled = false;
    void held.outcome.then(() => (settled = true));
    // A forged "approved" for this very id wakes the call, which re-reads the store: still pending, so it waits on.
    await a.bus.publish('approvals', { id: held.id(), status: 'approved' });
    await a.bus.publish('approvals', { id: 'someone-else', status: 'approved' });
    const marker: string[] = [];
    const off = b.bus.subscribe('broadcast', (m) => marker.push(String(m.kind)));
    await a.bus.publish('broadcast', { kind: 'after' });
    await until(() => marker.length > 0, 'a later message on B');
    off();
    await new Promise((r) => setImmediate(r));
    assert.equal(settled, false, 'still held');
    assert.equal((await b.store.getApproval(held.id()))?.status, 'pending');
    await a.deps.approvals.decide(held.id(), 'denied', 'admin-api', null);
    assert.equal((await held.outcome).status, 'denied');
  });

  test('pins: a change published on A reaches the PinGate listeners on B (and bastion tools approve publishes)', async () => {
    const gateB = new PinGate({ store: b.store, config: { mode: 'first-use', scanDescriptions: false }, audit: () => Promise.resolve(), bus: b.bus });
    const heard: string[] = [];
    const off = gateB.onChange((agent) => heard.push(agent));
    try {
      await b.store.putPendingPin({ agent: 'demo', tool: 'rug__read', kind: 'unapproved', hash: 'a'.repeat(64), shape: 'b'.repeat(64), definition: '{"name":"rug__read"}', detail: '{}', detectedAt: Date.now() });
      const r = await cli(['tools', 'approve', '--agent', 'demo', '--tool', 'rug__read', '--hash', 'a'.repeat(64)]);
      assert.equal(r.code, EXIT.OK, r.stderr);
      assert.equal(r.stderr, '');
      await until(() => heard.length > 0, 'the pins message on B');
      assert.deepEqual(heard, ['demo']);
      assert.equal((await b.store.listPins('demo')).find((p) => p.tool === 'rug__read')?.hash, 'a'.repeat(64));
    } finally {
      off();
    }
  });
});
