/**
 * Session bounds: `server.maxSessions` refuses new sessions with 503 and
 * Retry-After (audited) when no session is idle (an idle one would be closed
 * to make room: test/server/limits.test.ts), and an idle session is closed after
 * `server.sessionIdleMs` together with its upstream connections.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { OTHER_KEY, TEST_KEY, connect, startGateway, tempDir, twoAgentsYaml, type TestGateway } from '../helpers/gateway.ts';

describe('session bounds', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), twoAgentsYaml('  maxSessions: 1\n  sessionIdleMs: 1000'), { T_KEY: TEST_KEY, O_KEY: OTHER_KEY });
  });
  after(async () => gw?.close());

  test('beyond maxSessions, with no session idle, a new session is refused with 503 and Retry-After, and audited', async () => {
    const first = await connect(gw.url, TEST_KEY);
    // The only session is busy (a call in flight), so there is none to close to make room.
    const ac = new AbortController();
    const long = first.callTool({ name: 'bad__hang', arguments: {} }, undefined, { signal: ac.signal }).catch(() => 'aborted');
    try {
      for (let i = 0; i < 500 && !gw.running.sessionSnapshot().some((x) => x.busy); i++) await new Promise((r) => setTimeout(r, 10));
      const res = await fetch(gw.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${OTHER_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
      });
      assert.equal(res.status, 503);
      assert.equal(res.headers.get('retry-after'), '5');
      assert.match(await res.text(), /ERR_SESSION_LIMIT/);
      assert.equal((await gw.gateway.store.lastAudit())?.decision.reason, 'session.limit');
    } finally {
      ac.abort();
      await long;
      // End the session (DELETE), so the next test starts with none.
      await (first.transport as { terminateSession?: () => Promise<void> }).terminateSession?.();
      await first.close();
    }
  });

  test('an idle session is closed, and its id is then unknown', async () => {
    for (let i = 0; i < 100 && gw.running.sessionCount() > 0; i++) await new Promise((r) => setTimeout(r, 20));
    const client = await connect(gw.url, TEST_KEY);
    try {
      await idleCase(client);
    } finally {
      await client.close().catch(() => undefined);
    }
  });

  /** The body of the idle test; the caller closes the client whatever happens, so a failure cannot hang the run. */
  async function idleCase(client: Awaited<ReturnType<typeof connect>>): Promise<void> {
    const sid = (client.transport as { sessionId?: string }).sessionId as string;
    await client.callTool({ name: 'bad__echo', arguments: { text: 'x' } });
    assert.equal(gw.running.sessionCount(), 1);
    // Regression: a call in flight longer than sessionIdleMs keeps its session alive (it was reaped mid-call).
    const ac = new AbortController();
    const long = client.callTool({ name: 'bad__hang', arguments: {} }, undefined, { signal: ac.signal }).catch(() => 'aborted');
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(gw.running.sessionCount(), 1, 'a busy session is not idle');
    ac.abort();
    assert.equal(await long, 'aborted');
    for (let i = 0; i < 100 && gw.running.sessionCount() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(gw.running.sessionCount(), 0, 'reaped');
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
    });
    assert.equal(res.status, 404);
  }
});
