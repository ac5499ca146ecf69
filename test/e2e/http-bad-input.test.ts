/**
 * Bad input at the HTTP layer of the tool door, over real sockets: each gets a
 * clear status and JSON-RPC error code, is audited, and leaves the gateway serving.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { AuditRecord } from '../../src/audit/types.ts';
import { OTHER_KEY, TEST_KEY, connect, startGateway, tempDir, type TestGateway, BAD_UPSTREAM_YAML } from '../helpers/gateway.ts';

const INIT = (version = '2025-11-25') => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
});

interface Raw {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request with full control of headers (fetch forbids setting Host). */
function raw(url: URL, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer[]; chunked?: boolean }): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: opts.method ?? 'POST',
        headers: { accept: 'application/json, text/event-stream', 'content-type': 'application/json', ...opts.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? resolve({ status: -1, headers: {}, body: '' }) : reject(err)));
    if (Array.isArray(opts.body)) {
      for (const b of opts.body) req.write(b);
      req.end();
    } else req.end(opts.body);
  });
}

const rpcCode = (r: Raw): number | undefined => (JSON.parse(r.body) as { error?: { code: number } }).error?.code;

describe('tool door HTTP bad input', () => {
  let gw: TestGateway;
  const auth = { authorization: `Bearer ${TEST_KEY}` };

  before(async () => {
    gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
  maxBodyBytes: 4096
  bodyTimeoutMs: 400
store:
  sqlite: ./bastion.db
agents:
  demo:
    keys: [env:T_KEY]
    tools: ["bad__echo"]
  other:
    keys: [env:T_OTHER]
    tools: ["bad__echo"]
${BAD_UPSTREAM_YAML}`,
      { T_KEY: TEST_KEY, T_OTHER: OTHER_KEY },
    );
  });
  after(async () => gw?.close());

  const lastRecord = async (): Promise<AuditRecord | undefined> => (await gw.gateway.store.lastAudit());

  test('a missing key is 401 with WWW-Authenticate, and audited', async () => {
    const r = await raw(gw.url, { body: JSON.stringify(INIT()) });
    assert.equal(r.status, 401);
    assert.match(String(r.headers['www-authenticate']), /^Bearer/);
    assert.match(r.body, /ERR_AUTH_REQUIRED/);
    const rec = await lastRecord();
    assert.equal(rec?.decision.reason, 'auth.missing');
    assert.equal(rec?.agent, null);
  });

  test('a wrong key is 401 and audited, without echoing the key', async () => {
    const r = await raw(gw.url, { headers: { authorization: 'Bearer wrong-key-wrong-key-wrong-key' }, body: JSON.stringify(INIT()) });
    assert.equal(r.status, 401);
    assert.match(r.body, /ERR_AUTH_INVALID/);
    const rec = await lastRecord();
    assert.equal(rec?.decision.reason, 'auth.invalid');
    assert.ok(!JSON.stringify(rec).includes('wrong-key'));
  });

  test('the auth-scheme is case-insensitive and Basic works (RFC 9110 §11.1, RFC 7617): the kernel reads credentials for every door', async () => {
    // Before the door kernel, the tool door accepted only "Bearer" spelled so; the proxy accepted any case.
    for (const authorization of [`bearer ${TEST_KEY}`, `BEARER ${TEST_KEY}`, `Basic ${Buffer.from(`demo:${TEST_KEY}`).toString('base64')}`]) {
      const r = await raw(gw.url, { headers: { authorization }, body: JSON.stringify(INIT()) });
      assert.equal(r.status, 200, authorization.split(' ')[0]);
    }
    // A header that is no credential is invalid (the client tried), not missing.
    const r = await raw(gw.url, { headers: { authorization: TEST_KEY }, body: JSON.stringify(INIT()) });
    assert.equal(r.status, 401);
    assert.equal((await lastRecord())?.decision.reason, 'auth.invalid');
  });

  test('a foreign Host or Origin is 403 before authentication (DNS rebinding)', async () => {
    const host = await raw(gw.url, { headers: { ...auth, host: 'evil.example:80' }, body: JSON.stringify(INIT()) });
    assert.equal(host.status, 403);
    assert.match(host.body, /ERR_HOST_NOT_ALLOWED/);
    assert.equal((await lastRecord())?.decision.reason, 'host.not_allowed');
    const origin = await raw(gw.url, { headers: { ...auth, origin: 'http://evil.example' }, body: JSON.stringify(INIT()) });
    assert.equal(origin.status, 403);
    assert.match(origin.body, /ERR_ORIGIN_NOT_ALLOWED/);
    assert.equal((await lastRecord())?.decision.reason, 'origin.not_allowed');
  });

  test('malformed JSON is 400 with -32700', async () => {
    const r = await raw(gw.url, { headers: auth, body: '{"jsonrpc": "2.0", "id": 1, "method": ' });
    assert.equal(r.status, 400);
    assert.equal(rpcCode(r), -32700);
    assert.equal((await lastRecord())?.decision.reason, 'jsonrpc.parse');
  });

  test('JSON that is not JSON-RPC is 400 with -32600', async () => {
    for (const body of ['{"hello": "world"}', '"just a string"', '42', '{"jsonrpc":"1.0","id":1,"method":"ping"}']) {
      const r = await raw(gw.url, { headers: auth, body });
      assert.equal(r.status, 400, body);
      assert.equal(rpcCode(r), -32600, body);
    }
    assert.equal((await lastRecord())?.decision.reason, 'jsonrpc.invalid');
  });

  test('a batch is refused with -32600', async () => {
    const r = await raw(gw.url, { headers: auth, body: JSON.stringify([INIT(), { jsonrpc: '2.0', id: 2, method: 'ping' }]) });
    assert.equal(r.status, 400);
    assert.equal(rpcCode(r), -32600);
    assert.match(r.body, /ERR_JSONRPC_BATCH/);
    assert.equal((await lastRecord())?.decision.reason, 'jsonrpc.batch');
  });

  test('a body over the limit is 413, by Content-Length and when chunked', async () => {
    const big = JSON.stringify({ ...INIT(), pad: 'x'.repeat(8000) });
    const declared = await raw(gw.url, { headers: auth, body: big });
    assert.equal(declared.status, 413);
    assert.match(declared.body, /ERR_BODY_TOO_LARGE/);
    const chunks = Array.from({ length: 20 }, () => Buffer.from('x'.repeat(512)));
    const chunked = await raw(gw.url, { headers: { ...auth, 'transfer-encoding': 'chunked' }, body: chunks });
    assert.ok(chunked.status === 413 || chunked.status === -1, `status ${chunked.status}`);
    const rec = await lastRecord();
    assert.equal(rec?.decision.reason, 'body.too_large');
  });

  test('a body trickled slower than bodyTimeoutMs is cut off with 408 (slowloris)', async () => {
    const r = await new Promise<Raw>((resolve, reject) => {
      const req = request(gw.url, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'content-length': '1000' } }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
      });
      req.on('error', reject);
      req.write('{"jsonrpc":'); // and then nothing more
    });
    assert.equal(r.status, 408);
    assert.match(r.body, /ERR_BODY_TIMEOUT/);
    assert.equal((await lastRecord())?.decision.reason, 'body.timeout');
  });

  test('a request without a session, or with an unknown or foreign session, is refused', async () => {
    const noSession = await raw(gw.url, { headers: auth, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }) });
    assert.equal(noSession.status, 400);
    const unknown = await raw(gw.url, { headers: { ...auth, 'mcp-session-id': 'no-such-session' }, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }) });
    assert.equal(unknown.status, 404);
    // A real session of agent demo, presented by agent other.
    const client = await connect(gw.url, TEST_KEY);
    try {
      const sid = (client.transport as { sessionId?: string }).sessionId as string;
      const foreign = await raw(gw.url, {
        headers: { authorization: `Bearer ${OTHER_KEY}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 6, method: 'tools/list' }),
      });
      assert.equal(foreign.status, 404, 'another agent cannot use the session');
      assert.equal((await lastRecord())?.agent, 'other');
      const list = await client.listTools();
      assert.deepEqual(list.tools.map((t) => t.name), ['bad__echo'], 'the session still works for its owner');
    } finally {
      await client.close();
    }
  });

  test('a message the MCP transport itself refuses (a second initialize) is audited too', async () => {
    const client = await connect(gw.url, TEST_KEY);
    try {
      const sid = (client.transport as { sessionId?: string }).sessionId as string;
      const again = await raw(gw.url, { headers: { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify(INIT()) });
      assert.equal(again.status, 400);
      // The SDK transport writes this answer itself, so its record follows the response by a moment.
      let rec = await lastRecord();
      for (let i = 0; i < 100 && rec?.decision.reason !== 'transport.rejected'; i++) {
        await new Promise((r) => setTimeout(r, 10));
        rec = await lastRecord();
      }
      assert.equal(rec?.decision.reason, 'transport.rejected');
      assert.equal(rec?.method, 'initialize');
      assert.equal(rec?.detail?.status, 400);
    } finally {
      await client.close();
    }
  });

  test('a 2025-06-18 client is served with that protocol version', async () => {
    const r = await raw(gw.url, { headers: { ...auth, accept: 'application/json, text/event-stream' }, body: JSON.stringify(INIT('2025-06-18')) });
    assert.equal(r.status, 200);
    assert.match(r.body, /"protocolVersion":"2025-06-18"/);
  });

  test('after all of that the gateway still serves, and every rejection was audited once', async () => {
    const client = await connect(gw.url, TEST_KEY);
    try {
      const res = await client.callTool({ name: 'bad__echo', arguments: { text: 'alive' } });
      assert.equal((res as { content: { text: string }[] }).content[0]?.text, 'alive');
    } finally {
      await client.close();
    }
    const all = await gw.gateway.store.readAudit(1, 10_000);
    const reasons = all.filter((r) => r.decision.rule === 'http').map((r) => r.decision.reason);
    for (const reason of ['body.timeout', 'auth.missing', 'auth.invalid', 'host.not_allowed', 'origin.not_allowed', 'jsonrpc.parse', 'jsonrpc.invalid', 'jsonrpc.batch', 'body.too_large', 'session.missing', 'session.unknown']) {
      assert.ok(reasons.includes(reason), `${reason} audited`);
    }
    assert.equal(reasons.filter((r) => r === 'jsonrpc.batch').length, 1);
  });
});
