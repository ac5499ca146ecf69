/**
 * Audit backpressure on the batched doors (issue 14): the model door and the
 * egress proxy write a request's record before its answer with
 * `AuditStep.batchedBounded`, so behind a stalled audit commit a client's next
 * request waits instead of piling records up. Deterministic: the store's
 * commits are held by a gate, and the assertions are on the backlog count.
 * Before, both doors used `batched()` and the backlog grew with every request.
 */
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { AuditLog, type AuditLogStore } from '../../src/audit/log.ts';
import { AuditStep } from '../../src/door/audit-step.ts';
import { EgressProxy } from '../../src/egress/proxy.ts';
import { ModelDoor } from '../../src/model/door.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { heldAppends } from '../helpers/audit-store.ts';
import { tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

const BOUND = 8;
const CLIENTS = 4;
const CALLS = 25;
const KEY = 'backpressure-key-0123456789abcdef';

/** An in-memory audit store whose commits wait for `release()`. */
async function gatedLog(): Promise<{ log: AuditLog; step: AuditStep; release: () => void; close: () => Promise<void> }> {
  const inner = await openSqliteStore(':memory:');
  const { store, release } = heldAppends<AuditLogStore>(inner);
  const log = await AuditLog.open(store, { checkpointEvery: 1000, maxPendingRecords: BOUND });
  return {
    log,
    step: new AuditStep(log),
    release,
    close: async () => {
      await log.close();
      await inner.close();
    },
  };
}

/** Event-loop turns until `done()` holds (at most `max`); a deterministic wait, not a timed one. */
async function turnsUntil(done: () => boolean, max = 50_000): Promise<void> {
  for (let i = 0; i < max && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
}

/** One request on a fresh connection; resolves with the status. */
function send(port: number, path: string, method: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * CLIENTS clients, each sending CALLS refused requests one after another, behind a stalled commit:
 * the backlog stops at the bound plus one record per waiting client; after the release all are stored.
 */
async function assertBackpressure(gated: Awaited<ReturnType<typeof gatedLog>>, once: () => Promise<number>, refusedStatus: number): Promise<void> {
  let done = 0;
  const statuses = new Set<number>();
  const clients = Array.from({ length: CLIENTS }, async () => {
    for (let i = 0; i < CALLS; i++) {
      statuses.add(await once());
      done++;
    }
  });
  const over = (): boolean => gated.log.backlog > BOUND + CLIENTS || done === CLIENTS * CALLS;
  try {
    await turnsUntil(() => gated.log.backlog >= BOUND + CLIENTS || over());
    // Many more turns: with backpressure nothing more gets in while the commit is stalled.
    await turnsUntil(over, 2_000);
    assert.equal(gated.log.backlog, BOUND + CLIENTS, 'the backlog stops at the bound plus one record per waiting client');
    assert.ok(done <= BOUND, `${done} requests were answered behind the stalled commit`);
  } finally {
    gated.release();
    await Promise.all(clients);
  }
  await turnsUntil(() => gated.log.backlog === 0);
  assert.equal(gated.log.backlog, 0);
  assert.deepEqual([...statuses], [refusedStatus]);
  assert.equal(gated.step.failures.batched, 0);
}

let gateway: Gateway;
before(async () => {
  const dir = tempDir();
  const { config } = await writeAndLoadConfig(
    dir,
    `version: 1
store: { sqlite: ./bastion.db }
agents:
  support:
    keys: [env:KEY]
    model: { provider: openai, baseUrl: "http://127.0.0.1:9/v1" }
    network: ["api.example.com"]
`,
    { KEY },
  );
  ({ gateway } = await Gateway.open(config));
});
after(() => gateway.close());

describe('model door', () => {
  let gated: Awaited<ReturnType<typeof gatedLog>>;
  let door: ModelDoor;
  let server: Server;
  let port: number;
  before(async () => {
    gated = await gatedLog();
    door = await ModelDoor.open({ config: gateway.config, agentKeys: gateway.agentKeys, users: gateway.users, store: gateway.store, deps: gateway.deps, auditStep: gated.step });
    server = createServer((req, res) => void door.handle(req, res, new URL(req.url ?? '/', 'http://bastion.invalid')));
    port = await listenLoopback(server);
  });
  after(async () => {
    await closeServer(server);
    await door.close();
    await gated.close();
  });

  test('requests past the audit bound wait for durability instead of growing the backlog', async () => {
    const body = JSON.stringify({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] });
    await assertBackpressure(gated, () => send(port, '/v1/chat/completions', 'POST', { 'content-type': 'application/json', authorization: 'Bearer wrong-key-0123456789abcdef' }, body), 401);
  });
});

describe('egress proxy', () => {
  let gated: Awaited<ReturnType<typeof gatedLog>>;
  let proxy: EgressProxy;
  let port: number;
  before(async () => {
    gated = await gatedLog();
    proxy = new EgressProxy({
      config: gateway.config,
      guard: gateway.guard,
      agentKeys: gateway.agentKeys,
      record: (event) => gated.step.batched(event),
      recordBounded: (event) => gated.step.batchedBounded(event),
      dlp: () => [],
    });
    port = Number((await proxy.start('127.0.0.1', 0)).port);
  });
  after(async () => {
    await proxy.close();
    await gated.close();
  });

  test('refusals past the audit bound wait for durability instead of growing the backlog', async () => {
    // No Proxy-Authorization: 407, refused before anything else.
    await assertBackpressure(gated, () => send(port, 'http://api.example.com/', 'GET'), 407);
  });
});
