/**
 * The model door and a provider that drops a kept-alive connection as a
 * request goes out (its idle timeout racing Bastion's): the request fails with
 * ECONNRESET before any answer. Found under load in CI (the mock provider's
 * 5 s keep-alive against a stalled event loop): the agent got 502
 * `the provider is unreachable`. The door now retries such a request once on
 * a new connection, as the providers' own SDKs do; a provider that resets
 * every request is still a 502, after exactly two attempts.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { EGRESS_KEY, startEgress, type TestEgress } from '../helpers/egress.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

const completion = JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hello' }, finish_reason: 'stop' }] });

/** A provider that answers the first request on each connection and resets the connection on the next one (or on every request, `always`). */
async function startDroppingProvider(): Promise<{ server: Server; port: number; attempts: () => number; always: (on: boolean) => void }> {
  let attempts = 0;
  let always = false;
  const served = new WeakSet<object>();
  const server = createServer((req, res) => {
    attempts++;
    req.resume();
    req.on('end', () => {
      if (always || served.has(req.socket)) return void req.socket.resetAndDestroy();
      served.add(req.socket);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(completion);
    });
  });
  const port = await listenLoopback(server);
  return { server, port, attempts: () => attempts, always: (on) => void (always = on) };
}

async function chat(eg: TestEgress): Promise<{ status: number; body: string }> {
  const r = await fetch(new URL('/v1/chat/completions', eg.running.url), {
    method: 'POST',
    headers: { authorization: `Bearer ${EGRESS_KEY}`, 'bastion-user': 'alice', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
  });
  return { status: r.status, body: await r.text() };
}

describe('model door: a provider connection dropped under a request', () => {
  let eg: TestEgress;
  let provider: Awaited<ReturnType<typeof startDroppingProvider>>;
  before(async () => {
    provider = await startDroppingProvider();
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
agents:
  support:
    keys: [env:EGRESS_KEY]
    model: { provider: openai, baseUrl: "http://127.0.0.1:${provider.port}/v1" }
`,
      { model: true },
    );
  });
  after(async () => {
    await eg?.close();
    if (provider) await closeServer(provider.server);
  });

  test('a reset on a reused connection is retried once on a new one: the agent gets its answer', async () => {
    const first = await chat(eg);
    assert.equal(first.status, 200, first.body);
    const before = provider.attempts();
    // The second request goes out on the kept-alive connection, which the provider resets.
    const second = await chat(eg);
    assert.equal(second.status, 200, second.body);
    assert.match(second.body, /hello/);
    assert.equal(provider.attempts() - before, 2, 'one reset attempt, one retry');
  });

  test('a provider that resets every request is a 502 after exactly two attempts, its cause recorded', async () => {
    provider.always(true);
    try {
      const before = provider.attempts();
      const r = await chat(eg);
      assert.equal(r.status, 502);
      assert.match(r.body, /ERR_MODEL_UPSTREAM/);
      assert.equal(provider.attempts() - before, 2);
      await eg.gateway.audit.flush();
      const recs = await eg.gateway.store.readAudit(1, 10_000);
      const last = recs.filter((x) => x.door === 'model').at(-1);
      assert.equal(last?.decision.reason, 'upstream.unreachable');
      assert.equal(last?.detail?.cause, 'ECONNRESET');
    } finally {
      provider.always(false);
    }
  });
});
