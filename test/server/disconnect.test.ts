/**
 * Client disconnects recorded as what they are (Bastion issue 14), over real
 * sockets in every door that streams: an idle keep-alive connection reset is no
 * request (no record, never a denied `request.malformed`); a client that hangs
 * up while its answer streams is `client_closed`, its request still allowed —
 * never an `upstream.error`, nor the outcome of an answer it never received.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect as netConnect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../../src/audit/types.ts';
import { EGRESS_KEY, proxyAuth, startEgress, type TestEgress } from '../helpers/egress.ts';
import { BAD_UPSTREAM_YAML, TEST_KEY, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

type WithAudit = { gateway: TestGateway['gateway'] };

async function records(g: WithAudit): Promise<AuditRecord[]> {
  await g.gateway.audit.flush();
  return g.gateway.store.readAudit(1, 100_000);
}

/** Polls the audit log (bounded) until a record after `from` matches. */
async function waitForRecord(g: WithAudit, from: number, match: (r: AuditRecord) => boolean): Promise<AuditRecord> {
  for (let i = 0; i < 200; i++) {
    const found = (await records(g)).slice(from).find(match);
    if (found) return found;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('no matching audit record');
}

/** Writes `request` on a raw connection to `port`, resolves with the socket once `until` matches what was read. */
function openAndRead(port: number, request: string, until: RegExp): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port }, () => socket.write(request));
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no ${String(until)} in: ${got.slice(0, 300)}`));
    }, 10_000);
    socket.on('error', () => undefined);
    socket.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      if (until.test(got)) {
        clearTimeout(timer);
        resolve(socket);
      }
    });
  });
}

/** An origin (or model provider) that answers 200 and keeps streaming until its client goes away; `gone` resolves then. */
async function startStreamer(firstChunk: string, nextChunk: string, contentType: string): Promise<{ port: number; server: Server; gone: () => Promise<void> }> {
  let closed!: () => void;
  let done = new Promise<void>((r) => (closed = r));
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': contentType });
    res.write(firstChunk);
    const t = setInterval(() => res.write(nextChunk), 100);
    res.on('close', () => {
      clearInterval(t);
      closed();
      done = new Promise<void>((r) => (closed = r));
    });
  });
  const port = await listenLoopback(server);
  return { port, server, gone: () => done };
}

describe('network door', () => {
  let eg: TestEgress;
  let origin: Awaited<ReturnType<typeof startStreamer>>;
  before(async () => {
    origin = await startStreamer('first-chunk\n', 'more\n', 'text/plain');
    eg = await startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
egress:
  staticHosts: { plain.example.net: [127.0.0.1] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    network: ["plain.example.net:${origin.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`);
  });
  after(async () => {
    await eg?.close();
    if (origin) await closeServer(origin.server);
  });

  test('an idle keep-alive connection reset is no request: no record, and no request.malformed', async () => {
    const port = Number(eg.proxyUrl.port);
    const from = (await records(eg)).length;
    // A whole request (refused: no credentials), answered; then the connection idles and is reset.
    const s = await openAndRead(port, `GET http://plain.example.net:${origin.port}/ HTTP/1.1\r\nHost: plain.example.net:${origin.port}\r\n\r\n`, /\r\n\r\n\{.*\}$/s);
    await waitForRecord(eg, from, (r) => r.decision.reason === 'auth.missing');
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 300));
    // A marker request after the reset: every record the reset could cause is written before it.
    const marker = await openAndRead(port, `GET http://plain.example.net:${origin.port}/marker HTTP/1.1\r\nHost: plain.example.net:${origin.port}\r\n\r\n`, /\r\n\r\n\{.*\}$/s);
    marker.destroy();
    const reasons = async (): Promise<string[]> => (await records(eg)).slice(from).map((r) => r.decision.reason);
    for (let i = 0; i < 200 && (await reasons()).filter((r) => r === 'auth.missing').length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    assert.deepEqual(await reasons(), ['auth.missing', 'auth.missing'], 'only the two requests are recorded');
  });

  test('a client that hangs up during a 200 is client_closed (allowed), not upstream.error', async () => {
    const port = Number(eg.proxyUrl.port);
    const from = (await records(eg)).length;
    const s = await openAndRead(
      port,
      `GET http://plain.example.net:${origin.port}/stream HTTP/1.1\r\nHost: plain.example.net:${origin.port}\r\nProxy-Authorization: ${proxyAuth(EGRESS_KEY, 'demo')}\r\n\r\n`,
      /first-chunk/,
    );
    s.destroy();
    await origin.gone();
    const rec = await waitForRecord(eg, from, (r) => r.method === 'GET' && r.target === `plain.example.net:${origin.port}`);
    assert.equal(rec.outcome, 'client_closed');
    assert.equal(rec.decision.effect, 'allow');
    assert.notEqual(rec.decision.reason, 'upstream.error');
    assert.equal(rec.detail?.status, 200);
  });

  test('a client that hangs up before the destination answers is client_closed, and the process lives on', async () => {
    // The answer's headers come after the client has gone: its body is dropped unread.
    // (Found by bench:egress: destroying that body emitted an unheard 'error' that killed the process.)
    const late = createServer((req, res) => {
      req.resume();
      setTimeout(() => res.end('late answer, no one to read it'), 300);
    });
    const latePort = await listenLoopback(late);
    const lateEg = await startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
egress:
  staticHosts: { late.example.net: [127.0.0.1] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    network: ["late.example.net:${latePort}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`);
    let uncaught: unknown;
    const onUncaught = (e: unknown): void => {
      uncaught = e;
    };
    process.on('uncaughtException', onUncaught);
    try {
      const port = Number(lateEg.proxyUrl.port);
      const target = `late.example.net:${latePort}`;
      const s = netConnect({ host: '127.0.0.1', port }, () =>
        s.write(`GET http://${target}/late HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${proxyAuth(EGRESS_KEY, 'demo')}\r\n\r\n`),
      );
      s.on('error', () => undefined);
      await new Promise((r) => setTimeout(r, 100));
      s.destroy();
      const rec = await waitForRecord(lateEg, 0, (r) => r.method === 'GET' && r.target === target);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(uncaught, undefined, 'no uncaught error from the dropped body');
      assert.equal(rec.outcome, 'client_closed');
      assert.equal(rec.decision.effect, 'allow');
      // And the proxy still answers.
      const again = await openAndRead(port, `GET http://${target}/again HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${proxyAuth(EGRESS_KEY, 'demo')}\r\n\r\n`, /late answer/);
      again.destroy();
    } finally {
      process.off('uncaughtException', onUncaught);
      await lateEg.close();
      await closeServer(late);
    }
  });
});

describe('model door (streaming)', () => {
  let eg: TestEgress;
  let provider: Awaited<ReturnType<typeof startStreamer>>;
  const chunk = (text: string): string => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] })}\n\n`;
  before(async () => {
    provider = await startStreamer(chunk('Hello'), chunk(' again'), 'text/event-stream');
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

  test('an agent that hangs up mid-stream is client_closed (the request was forwarded), not a provider error', async () => {
    const port = Number(eg.running.url.port);
    const from = (await records(eg)).length;
    const body = JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    const s = await openAndRead(
      port,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${EGRESS_KEY}\r\nBastion-User: alice\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      /Hello/,
    );
    s.destroy();
    await provider.gone();
    const rec = await waitForRecord(eg, from, (r) => r.door === 'model' && r.method === 'model.chat');
    assert.equal(rec.outcome, 'client_closed');
    assert.equal(rec.decision.effect, 'allow');
    assert.equal(rec.decision.reason, 'model.forwarded');
    assert.equal(rec.detail?.status, 499);
  });
});

describe('tool door (SSE) and the main listener', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
    tools: ["bad__hang"]
${BAD_UPSTREAM_YAML}`,
      { T_KEY: TEST_KEY },
    );
  });
  after(async () => gw?.close());

  const headers = (session?: string): Record<string, string> => ({
    authorization: `Bearer ${TEST_KEY}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    ...(session ? { 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' } : {}),
  });

  test('a client that hangs up during a tools/call is recorded client_closed, not as the call\'s error', async () => {
    const init = await fetch(gw.url, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    const session = init.headers.get('mcp-session-id') as string;
    await init.text();
    await (await fetch(gw.url, { method: 'POST', headers: headers(session), body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text();
    const from = (await records(gw)).length;
    // The call's SSE stream is dropped by the client (no notifications/cancelled: it just went away).
    const ac = new AbortController();
    const call = fetch(gw.url, { method: 'POST', headers: headers(session), body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'bad__hang', arguments: {} } }), signal: ac.signal })
      .then(async (r) => r.text())
      .catch(() => 'aborted');
    for (let i = 0; i < 500 && !gw.running.sessionSnapshot().some((x) => x.busy); i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    ac.abort();
    assert.equal(await call, 'aborted');
    await new Promise((r) => setTimeout(r, 100));
    // The session ends with the call unanswered: its one record says the client went away.
    await (await fetch(gw.url, { method: 'DELETE', headers: headers(session) })).text();
    const rec = await waitForRecord(gw, from, (r) => r.method === 'tools/call');
    assert.equal(rec.outcome, 'client_closed');
    assert.equal(rec.target, 'bad__hang');
    assert.equal(rec.detail?.answer, 'error', 'what the answer would have been is kept');
    assert.equal((await records(gw)).slice(from).filter((r) => r.method === 'tools/call').length, 1, 'one record for the call');
  });

  test('an idle keep-alive reset on the main listener leaves no record', async () => {
    const port = Number(gw.url.port);
    const from = (await records(gw)).length;
    const s = await openAndRead(port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, /"status":"ok"/);
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 300));
    const marker = await fetch(gw.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(marker.status, 401);
    await marker.text();
    const added = (await records(gw)).slice(from);
    assert.ok(added.some((r) => r.decision.reason === 'auth.missing'), 'the marker is recorded');
    // (A late record of the previous test's session may land here too: only the listener's own records count.)
    const own = added.filter((r) => r.method === 'http.request' || r.agent === null);
    assert.deepEqual(own.map((r) => r.decision.reason), ['auth.missing'], JSON.stringify(added.map((r) => [r.method, r.decision.reason])));
  });
});
