/**
 * Regression (issue 14): with `server.allowedHosts` set, a load balancer or
 * Kubernetes probe that sends the pod's IP as `Host` got 403 on `/healthz` and
 * `/readyz`. Both GET routes are now answered before the Host and Origin
 * allowlists (no CORS headers, only "ok" and check names); every other path,
 * `/mcp` first, still refuses an unlisted Host.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { startGateway, tempDir, TEST_KEY, type TestGateway } from '../helpers/gateway.ts';

const PROBE_HOST = '10.1.2.3:8790';

/** One request with an explicit Host header (fetch does not let a caller set it). */
function send(url: URL, path: string, host: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, method: opts.method ?? 'GET', headers: { host, ...opts.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

let gw: TestGateway;
before(async () => {
  gw = await startGateway(
    tempDir(),
    `version: 1
store:
  sqlite: ./bastion.db
server:
  allowedHosts: ["bastion.example:8790"]
agents:
  a:
    keys: [env:T_KEY]
`,
    { T_KEY: TEST_KEY },
  );
});
after(() => gw.close());

test('/healthz and /readyz answer a probe whose Host is not listed; no CORS header is sent', async () => {
  const health = await send(gw.url, '/healthz', PROBE_HOST, { headers: { origin: 'https://evil.example' } });
  assert.equal(health.status, 200);
  assert.deepEqual(JSON.parse(health.body), { status: 'ok' });
  assert.equal(health.headers['access-control-allow-origin'], undefined);
  const ready = await send(gw.url, '/readyz', PROBE_HOST);
  assert.ok(ready.status === 200 || ready.status === 503, `status ${ready.status}`);
  assert.equal(typeof (JSON.parse(ready.body) as { ready: unknown }).ready, 'boolean');
  assert.equal(ready.headers['access-control-allow-origin'], undefined);
});

test('every other path still refuses the unlisted Host with 403 ERR_HOST_NOT_ALLOWED', async () => {
  const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } });
  const mcp = await send(gw.url, '/mcp', PROBE_HOST, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: init,
  });
  assert.equal(mcp.status, 403);
  assert.match(mcp.body, /ERR_HOST_NOT_ALLOWED/);
  // A POST to a probe path is not a probe: it passes the allowlist like anything else.
  const post = await send(gw.url, '/readyz', PROBE_HOST, { method: 'POST' });
  assert.equal(post.status, 403);
  // The listed Host still reaches /readyz.
  const listed = await send(gw.url, '/readyz', 'bastion.example:8790');
  assert.ok(listed.status === 200 || listed.status === 503);
});
