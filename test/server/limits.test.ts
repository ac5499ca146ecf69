/**
 * Per-agent limits of the tool door (Bastion issue 14, "one agent can lock every
 * agent out"): the admission rule (src/server/agent-limits.ts) as properties, and
 * end to end over real sockets — agent A opening many sessions (raw Streamable
 * HTTP initialize requests, never ended) no longer keeps agent B out; the global
 * cap closes the busiest agent's idle session first; concurrency and rate caps
 * refuse only the agent over them, with 429 and Retry-After, audited.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { AuditRecord } from '../../src/audit/types.ts';
import { AgentConcurrency, AgentRateLimiter, admitSession, type SessionView } from '../../src/server/agent-limits.ts';
import { OTHER_KEY, TEST_KEY, connect, startGateway, tempDir, twoAgentsYaml, type TestGateway } from '../helpers/gateway.ts';

const INITIALIZE = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });

/** One raw initialize (what an SDK client that closes without DELETE leaves behind): status, session id, headers, body. */
async function initialize(url: URL, key: string): Promise<{ status: number; session: string | null; retryAfter: string | null; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: INITIALIZE,
  });
  return { status: res.status, session: res.headers.get('mcp-session-id'), retryAfter: res.headers.get('retry-after'), text: await res.text() };
}

async function records(gw: TestGateway): Promise<AuditRecord[]> {
  await gw.gateway.audit.flush();
  return gw.gateway.store.readAudit(1, 100_000);
}

describe('the admission rule (properties)', () => {
  const view = fc.record({ agent: fc.constantFrom('a', 'b', 'c', 'd'), lastActivity: fc.nat(1000), busy: fc.boolean() });
  const world = fc.record({
    open: fc.array(view, { maxLength: 30 }).map((xs) => xs.map((x, i): SessionView => ({ ...x, id: `s${i}` }))),
    agent: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
    perAgent: fc.integer({ min: 1, max: 10 }),
    global: fc.integer({ min: 1, max: 30 }),
  }).filter((w) => {
    // The listener never lets the table grow past its caps.
    const counts = new Map<string, number>();
    for (const s of w.open) counts.set(s.agent, (counts.get(s.agent) ?? 0) + 1);
    return w.open.length <= w.global && [...counts.values()].every((n) => n <= w.perAgent);
  });

  test('after an admission (and its eviction) both caps hold, and a busy session is never evicted', () => {
    fc.assert(
      fc.property(world, ({ open, agent, perAgent, global }) => {
        const a = admitSession(open, agent, { perAgent, global });
        if (!a.admit) return;
        const after = open.filter((s) => s.id !== a.evict?.id).concat({ id: 'new', agent, lastActivity: 2000, busy: false });
        assert.ok(after.length <= global);
        assert.ok(after.filter((s) => s.agent === agent).length <= perAgent);
        if (a.evict) {
          const victim = open.find((s) => s.id === a.evict?.id);
          assert.ok(victim && !victim.busy, 'only an idle session is evicted');
          assert.equal(victim.agent, a.evict.agent);
        }
      }),
    );
  });

  test('an agent at its own cap only ever loses its own session; the others are untouched', () => {
    fc.assert(
      fc.property(world, ({ open, agent, perAgent, global }) => {
        const mine = open.filter((s) => s.agent === agent);
        if (mine.length < perAgent) return;
        const a = admitSession(open, agent, { perAgent, global });
        if (a.admit) assert.equal(a.evict?.agent, agent);
        else {
          assert.equal(a.scope, 'agent');
          assert.ok(mine.every((s) => s.busy), 'refused only when all of its sessions are busy');
        }
      }),
    );
  });

  test('at the global cap the victim is the least recently used idle session of an agent holding the most; refused only when nothing is idle', () => {
    fc.assert(
      fc.property(world, ({ open, agent, perAgent, global }) => {
        if (open.filter((s) => s.agent === agent).length >= perAgent || open.length < global) return;
        const a = admitSession(open, agent, { perAgent, global });
        const idle = open.filter((s) => !s.busy);
        if (!a.admit) {
          assert.equal(a.scope, 'global');
          assert.equal(idle.length, 0);
          return;
        }
        assert.equal(a.evict?.scope, 'global');
        const count = (x: string): number => open.filter((s) => s.agent === x).length;
        const most = Math.max(...idle.map((s) => count(s.agent)));
        const victim = open.find((s) => s.id === a.evict?.id) as SessionView;
        assert.equal(count(victim.agent), most);
        assert.ok(idle.filter((s) => s.agent === victim.agent).every((s) => s.lastActivity >= victim.lastActivity));
      }),
    );
  });

  test('below both caps a session is admitted without evicting anything', () => {
    assert.deepEqual(admitSession([{ id: 'x', agent: 'a', lastActivity: 1, busy: false }], 'b', { perAgent: 1, global: 2 }), { admit: true });
  });
});

describe('rate and concurrency', () => {
  test('the token bucket lets `burst` through at once, then one per 1/rate seconds, and says when to retry', () => {
    const r = new AgentRateLimiter(2, 3);
    assert.deepEqual([r.take('a', 0), r.take('a', 0), r.take('a', 0)], [0, 0, 0]);
    assert.equal(r.take('a', 0), 1, 'Retry-After in whole seconds, at least 1');
    assert.equal(r.take('b', 0), 0, 'another agent has its own bucket');
    assert.equal(r.take('a', 500), 0, 'half a second refills one token at 2/s');
    assert.ok(r.take('a', 500) >= 1);
    assert.throws(() => new AgentRateLimiter(0, 1), RangeError);
    assert.throws(() => new AgentRateLimiter(1, 0), RangeError);
  });

  test('concurrency slots are per agent and released once', () => {
    const c = new AgentConcurrency(2);
    const r1 = c.acquire('a');
    const r2 = c.acquire('a');
    assert.ok(r1 && r2);
    assert.equal(c.acquire('a'), undefined);
    assert.ok(c.acquire('b'), 'another agent is not affected');
    r1();
    r1();
    assert.equal(c.inflight('a'), 1, 'a second release is a no-op');
    assert.ok(c.acquire('a'));
    assert.throws(() => new AgentConcurrency(0), RangeError);
  });
});

describe('one agent cannot lock the others out (per-agent session cap)', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), twoAgentsYaml('  maxSessions: 6\n  sessions: { maxPerAgent: 3 }'), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  });
  after(async () => gw?.close());

  test('agent A opens 18 sessions and never ends one; agent B still initializes and calls a tool', async () => {
    const seen: number[] = [];
    const ids: string[] = [];
    // In bursts of 6 at once, as a client that opens sessions in a loop would.
    for (let i = 0; i < 3; i++) {
      const batch = await Promise.all(Array.from({ length: 6 }, () => initialize(gw.url, TEST_KEY)));
      for (const r of batch) {
        seen.push(r.status);
        if (r.status === 200 && r.session) ids.push(r.session);
        else {
          // Only A is refused, for its own cap: 429 with Retry-After, never the global 503.
          assert.equal(r.status, 429, r.text);
          assert.match(r.text, /ERR_SESSION_LIMIT/);
          assert.equal(r.retryAfter, '1');
        }
      }
    }
    assert.ok(seen.filter((s) => s === 200).length > 3, 'A keeps getting sessions: its own idle ones make room');
    assert.ok(gw.running.sessionSnapshot().filter((s) => s.agent === 'a').length <= 3, 'A never holds more than its cap');

    const b = await connect(gw.url, OTHER_KEY);
    try {
      const out = await b.callTool({ name: 'bad__echo', arguments: { text: 'still here' } });
      assert.match(JSON.stringify(out.content), /still here/);
    } finally {
      await b.close();
    }

    const recs = await records(gw);
    const evicted = recs.filter((r) => r.decision.reason === 'session.evicted');
    assert.ok(evicted.length > 0, 'evictions are audited');
    assert.ok(evicted.every((r) => r.agent === 'a' && r.detail?.scope === 'agent'), 'only A lost sessions, to its own cap');
    assert.equal(recs.filter((r) => r.decision.reason === 'session.limit').length, 0, 'nobody met the global limit');
    // A's oldest session was closed to make room: its id is now unknown.
    const old = await fetch(gw.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': ids[0] as string },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }),
    });
    assert.equal(old.status, 404);
  });
});

describe('the global cap closes the busiest agent\'s idle session first', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), twoAgentsYaml('  maxSessions: 4\n  sessions: { maxPerAgent: 4 }'), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  });
  after(async () => gw?.close());

  test('A holds all four sessions; B\'s initialize closes A\'s least recently used one', async () => {
    const a: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await initialize(gw.url, TEST_KEY);
      assert.equal(r.status, 200, r.text);
      a.push(r.session as string);
    }
    const b = await initialize(gw.url, OTHER_KEY);
    assert.equal(b.status, 200, b.text);
    const snapshot = gw.running.sessionSnapshot();
    assert.equal(snapshot.length, 4);
    assert.ok(!snapshot.some((s) => s.id === a[0]), 'A\'s least recently used session was closed');
    const rec = (await records(gw)).find((r) => r.decision.reason === 'session.evicted');
    assert.equal(rec?.agent, 'a');
    assert.equal(rec?.session, a[0]);
    assert.equal(rec?.detail?.scope, 'global');
    assert.equal(rec?.detail?.for, 'b');
  });
});

describe('concurrency and rate per agent', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), twoAgentsYaml('  sessions: { maxConcurrentCallsPerAgent: 1, requestsPerSecondPerAgent: 1000, burstPerAgent: 1000 }'), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  });
  after(async () => gw?.close());

  test('with one call of A in flight, A\'s next request is refused 429 with Retry-After; B is served', async () => {
    const a = await connect(gw.url, TEST_KEY);
    const ac = new AbortController();
    const long = a.callTool({ name: 'bad__hang', arguments: {} }, undefined, { signal: ac.signal }).catch(() => 'aborted');
    try {
      for (let i = 0; i < 500 && !gw.running.sessionSnapshot().some((s) => s.busy); i++) await new Promise((r) => setTimeout(r, 10));
      const r = await initialize(gw.url, TEST_KEY);
      assert.equal(r.status, 429, r.text);
      assert.match(r.text, /ERR_RATE_LIMITED/);
      assert.equal(r.retryAfter, '1');
      await gw.gateway.audit.flush();
      assert.equal((await gw.gateway.store.lastAudit())?.decision.reason, 'ratelimit.concurrent');
      const b = await connect(gw.url, OTHER_KEY);
      try {
        await b.callTool({ name: 'bad__echo', arguments: { text: 'b' } });
      } finally {
        await b.close();
      }
    } finally {
      ac.abort();
      await long;
      await a.close();
    }
  });
});

describe('request rate per agent', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), twoAgentsYaml('  sessions: { requestsPerSecondPerAgent: 0.001, burstPerAgent: 2 }'), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  });
  after(async () => gw?.close());

  test('past its burst, A is refused 429 ratelimit.exceeded with Retry-After; B is not', async () => {
    assert.equal((await initialize(gw.url, TEST_KEY)).status, 200);
    assert.equal((await initialize(gw.url, TEST_KEY)).status, 200);
    const third = await initialize(gw.url, TEST_KEY);
    assert.equal(third.status, 429, third.text);
    assert.match(third.text, /ERR_RATE_LIMITED/);
    assert.ok(Number(third.retryAfter) >= 1);
    assert.equal((await gw.gateway.store.lastAudit())?.decision.reason, 'ratelimit.exceeded');
    assert.equal((await initialize(gw.url, OTHER_KEY)).status, 200);
  });
});
