/**
 * test/helpers/auth-proxy.ts: adds Authorization, keeps Host and Origin as sent, streams SSE
 * unbuffered, and leaves conformance results unchanged at both revisions (the fixtures ignore
 * Authorization).
 */
import assert from 'node:assert/strict';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startAuthProxy } from '../helpers/auth-proxy.ts';
import { runConformanceDetailed, startFixture2026Http, type ScenarioReport } from '../helpers/conformance.ts';
import { startFixtureHttp } from '../helpers/mcp.ts';

async function listen(server: ReturnType<typeof createServer>): Promise<URL> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp?x=1`);
}

test('forwards method, path, Host and Origin as sent; replaces Authorization; relays status and headers', { timeout: 10_000 }, async (t) => {
  let seen: { method?: string; url?: string; headers: IncomingHttpHeaders; body: string } | undefined;
  const upstream = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body };
      res.writeHead(418, { 'x-upstream': 'yes', 'content-type': 'text/plain' });
      res.end('teapot');
    });
  });
  const target = await listen(upstream);
  const proxy = await startAuthProxy(target, 'Bearer k-123');
  t.after(async () => {
    await proxy.close();
    upstream.close();
  });
  assert.equal(proxy.url.pathname, '/mcp');
  assert.equal(proxy.url.search, '?x=1');

  const res = await new Promise<{ status: number; headers: IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = request(
      proxy.url,
      {
        method: 'PUT',
        agent: false,
        headers: { host: 'evil.example.com', origin: 'http://evil.example.com', authorization: 'Bearer client-supplied', 'x-custom': 'a' },
      },
      (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
      },
    );
    req.on('error', reject);
    req.end('payload');
  });
  assert.equal(res.status, 418);
  assert.equal(res.headers['x-upstream'], 'yes');
  assert.equal(res.body, 'teapot');
  assert.ok(seen);
  assert.equal(seen.method, 'PUT');
  assert.equal(seen.url, '/mcp?x=1');
  assert.equal(seen.headers.host, 'evil.example.com');
  assert.equal(seen.headers.origin, 'http://evil.example.com');
  assert.equal(seen.headers.authorization, 'Bearer k-123');
  assert.equal(seen.headers['x-custom'], 'a');
  assert.equal(seen.body, 'payload');
});

test('streams SSE events one by one', { timeout: 10_000 }, async (t) => {
  const gapMs = 400;
  let second: (() => void) | undefined;
  const upstream = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: one\n\n');
    second = () => res.end('data: two\n\n');
  });
  const target = await listen(upstream);
  const proxy = await startAuthProxy(target, 'Bearer k');
  t.after(async () => {
    await proxy.close();
    upstream.closeAllConnections();
    upstream.close();
  });
  const arrivals = await new Promise<{ chunk: string; at: number }[]>((resolve, reject) => {
    const got: { chunk: string; at: number }[] = [];
    const req = request(proxy.url, { agent: false }, (r) => {
      r.setEncoding('utf8');
      r.on('data', (c: string) => {
        got.push({ chunk: c, at: performance.now() });
        // The first event arrived before the upstream wrote the second.
        if (got.length === 1) setTimeout(() => second?.(), gapMs);
      });
      r.on('end', () => resolve(got));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(arrivals.map((a) => a.chunk).join(''), 'data: one\n\ndata: two\n\n');
  assert.ok(arrivals[0]?.chunk.includes('one') && !arrivals[0].chunk.includes('two'));
});

for (const [revision, start, what] of [
  ['2025-11-25', startFixtureHttp, ''],
  ['2026-07-28', startFixture2026Http, ' (Mcp-* headers, SSE listen streams)'],
] as const) {
  test(`${revision} conformance results through the proxy equal the direct run${what}`, { timeout: 180_000 }, async (t) => {
    const fixture = await start();
    const proxy = await startAuthProxy(fixture.url, 'Bearer unused-by-fixture');
    t.after(async () => {
      await proxy.close();
      await fixture.close();
    });
    const summary = (reports: Map<string, ScenarioReport>): string[] =>
      [...reports.values()].map((r) => `${r.scenario} ${r.verdict} ${JSON.stringify(r.counts)}`);
    const direct = await runConformanceDetailed(fixture.url.href, { requirements: revision, timeoutMs: 60_000 });
    const proxied = await runConformanceDetailed(proxy.url.href, { requirements: revision, timeoutMs: 60_000 });
    assert.deepEqual(summary(proxied.reports), summary(direct.reports));
  });
}
