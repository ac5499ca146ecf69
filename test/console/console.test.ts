/**
 * The console over real sockets: pages and their headers (CSP), sign-in with
 * a wrong and a right key, the session cookie's flags, CSRF refusals (audited,
 * with their code), session expiry and sign-out, named admin keys recorded on
 * every action, and a held call denied from the console's API.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TEST_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';
import { CONSOLE_CSP } from '../../src/console/headers.ts';
import { isolationsOf } from '../../src/console/api.ts';
import { startConsoleListener, type ConsoleListener } from '../../src/console/listener.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { ADMIN_KEY, ALICE_KEY, consoleYaml, signIn } from './helpers.ts';

const ENV = { T_KEY: TEST_KEY, T_ADMIN: ADMIN_KEY, T_ALICE: ALICE_KEY };

async function records(gw: TestGateway): Promise<AuditRecord[]> {
  await gw.gateway.audit.flush();
  return gw.gateway.store.readAudit(1, 100_000);
}

function assertConsoleHeaders(res: Response): void {
  assert.equal(res.headers.get('content-security-policy'), CONSOLE_CSP);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
  assert.equal(res.headers.get('cache-control'), 'no-store');
}

describe('console', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), consoleYaml(), ENV);
  });
  after(async () => gw?.close());

  test('pages and assets carry the strict CSP and the other security headers', async () => {
    const redirect = await fetch(new URL('/console', gw.url), { redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), '/console/');
    const page = await fetch(new URL('/console/', gw.url));
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assertConsoleHeaders(page);
    const html = await page.text();
    assert.doesNotMatch(html, /<script>|<style|\son[a-z]+=|style=/i, 'no inline script, style or handler');
    const js = await fetch(new URL('/console/pages/approvals.js', gw.url));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assertConsoleHeaders(js);
    assert.doesNotMatch(await js.text(), /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    const missing = await fetch(new URL('/console/nope.js', gw.url));
    assert.equal(missing.status, 404);
    assertConsoleHeaders(missing);
    assert.equal(((await missing.json()) as { code: string }).code, 'ERR_CONSOLE_NOT_FOUND');
  });

  test('a wrong key is refused (401 ERR_AUTH_INVALID), sets no cookie and is audited', async () => {
    const res = await fetch(new URL('/console/api/sign-in', gw.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: 'wrong-key-0123456789abcdefghij' }) });
    assert.equal(res.status, 401);
    assertConsoleHeaders(res);
    assert.equal(res.headers.get('set-cookie'), null);
    const body = (await res.json()) as { code: string; error: string };
    assert.equal(body.code, 'ERR_AUTH_INVALID');
    assert.doesNotMatch(JSON.stringify(body), /wrong-key/);
    // An agent key is not an admin key.
    const agent = await fetch(new URL('/console/api/sign-in', gw.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: TEST_KEY }) });
    assert.equal(agent.status, 401);
    // A form post (what a cross-site page can send) is refused before the key is looked at.
    const form = await fetch(new URL('/console/api/sign-in', gw.url), { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `key=${ADMIN_KEY}` });
    assert.equal(form.status, 415);
    const recs = await records(gw);
    const refused = recs.filter((r) => r.method === 'console.sign-in' && r.decision.reason === 'auth.invalid');
    assert.equal(refused.length, 2);
    assert.equal(refused[0]?.agent, null);
    assert.equal(refused[0]?.door, 'admin');
    assert.doesNotMatch(JSON.stringify(recs), /wrong-key|alice-key|admin-key-0123/, 'no key in any record');
  });

  test('sign-in sets an HttpOnly, SameSite=Strict cookie scoped to /console (no Secure over plain http)', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    assert.equal(c.admin, 'alice');
    assert.match(c.setCookie, /^bastion_console=[A-Za-z0-9_-]{43};/);
    assert.match(c.setCookie, /; HttpOnly/);
    assert.match(c.setCookie, /; SameSite=Strict/);
    assert.match(c.setCookie, /; Path=\/console/);
    assert.doesNotMatch(c.setCookie, /Secure/);
    const s = await c.get('/console/api/session');
    assert.equal(s.status, 200);
    assertConsoleHeaders(s);
    assert.deepEqual(await s.json(), { admin: 'alice', csrf: c.csrf, expiresAt: ((await (await c.get('/console/api/session')).json()) as { expiresAt: number }).expiresAt });
    const unnamed = await signIn(gw.url, ADMIN_KEY);
    assert.equal(unnamed.admin, 'admin');
    const recs = await records(gw);
    const ok = recs.filter((r) => r.method === 'console.sign-in' && r.decision.reason === 'console.sign_in');
    assert.ok(ok.some((r) => r.agent === 'admin:alice' && r.detail?.admin === 'alice'));
  });

  test('without a session: 401 ERR_AUTH_REQUIRED, audited', async () => {
    const res = await fetch(new URL('/console/api/approvals', gw.url));
    assert.equal(res.status, 401);
    assertConsoleHeaders(res);
    assert.equal(((await res.json()) as { code: string }).code, 'ERR_AUTH_REQUIRED');
    const forged = await fetch(new URL('/console/api/approvals', gw.url), { headers: { cookie: `bastion_console=${'A'.repeat(43)}` } });
    assert.equal(forged.status, 401);
    assert.match(forged.headers.get('set-cookie') ?? '', /Max-Age=0/, 'a dead cookie is cleared');
    const recs = await records(gw);
    assert.ok(recs.filter((r) => r.decision.reason === 'console.session' && r.method === 'console.GET /console/api/approvals').length >= 2);
  });

  test('a change without the CSRF token, or with a wrong one, is refused 403 ERR_CONSOLE_CSRF and audited', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const none = await fetch(new URL('/console/api/approvals/x/approve', gw.url), { method: 'POST', headers: { cookie: c.cookie, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(none.status, 403);
    assertConsoleHeaders(none);
    assert.equal(((await none.json()) as { code: string }).code, 'ERR_CONSOLE_CSRF');
    const wrong = await c.post('/console/api/approvals/x/approve', {}, { 'x-csrf-token': 'A'.repeat(43) });
    assert.equal(wrong.status, 403);
    assert.equal(((await wrong.json()) as { code: string }).code, 'ERR_CONSOLE_CSRF');
    // Another session's token is no better.
    const other = await signIn(gw.url, ALICE_KEY);
    assert.equal((await c.post('/console/api/bans/lift', { user: 'u' }, { 'x-csrf-token': other.csrf })).status, 403);
    // Sign-out is a change too.
    assert.equal((await fetch(new URL('/console/api/sign-out', gw.url), { method: 'POST', headers: { cookie: c.cookie, 'content-type': 'application/json' }, body: '{}' })).status, 403);
    // With the token but not JSON: 415.
    assert.equal((await c.post('/console/api/bans/lift', {}, { 'content-type': 'text/plain' })).status, 415);
    const recs = await records(gw);
    const csrf = recs.filter((r) => r.decision.reason === 'console.csrf');
    assert.equal(csrf.length, 4);
    for (const r of csrf) {
      assert.equal(r.agent, 'admin:alice');
      assert.equal(r.decision.effect, 'deny');
      assert.equal(r.detail?.code, 'ERR_CONSOLE_CSRF');
      assert.equal(r.detail?.status, 403);
    }
  });

  test('a held call denied from the console fails, recorded with the admin who decided', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const client = await connect(gw.url, TEST_KEY);
    try {
      const held = client.callTool({ name: 'bad__echo', arguments: { text: 'deny me' } }, undefined, { timeout: 30_000 });
      void held.catch(() => undefined);
      let id: string | undefined;
      let shown: Record<string, unknown> | undefined;
      for (let i = 0; i < 200 && id === undefined; i++) {
        await sleep(25);
        const body = (await (await c.get('/console/api/approvals?status=pending')).json()) as { approvals: Record<string, unknown>[] };
        shown = body.approvals.find((a) => a.tool === 'bad__echo' && (a.arguments as { text?: string } | null)?.text === 'deny me');
        id = shown?.id as string | undefined;
      }
      assert.ok(id, 'the held call shows up');
      assert.equal(shown?.agent, 'demo');
      assert.equal((shown?.policy as { effect: string }).effect, 'approve');
      const res = await c.post(`/console/api/approvals/${id}/deny`, { reason: 'not today' });
      assert.equal(res.status, 200);
      const rec = (await res.json()) as { status: string; decidedBy: string; reason: string };
      assert.equal(rec.status, 'denied');
      assert.equal(rec.decidedBy, 'console:alice');
      const result = (await held) as { isError?: boolean; content: { text: string }[] };
      assert.equal(result.isError, true);
      assert.match(result.content[0]?.text ?? '', /denied this call: not today/);
      // Single use: a second decision is refused.
      const again = await c.post(`/console/api/approvals/${id}/approve`, {});
      assert.equal(again.status, 409);
      assert.equal(((await again.json()) as { code: string }).code, 'ERR_APPROVAL_UNKNOWN');
    } finally {
      await client.close();
    }
    const recs = await records(gw);
    const decided = recs.find((r) => r.method === 'console.POST /console/api/approvals/:id/deny' && r.decision.reason === 'approval.denied');
    assert.equal(decided?.agent, 'admin:alice');
    assert.equal(decided?.detail?.admin, 'alice');
  });

  test('audit explorer filters and pages; record detail; chain status', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const page = (await (await c.get('/console/api/audit?door=admin&agent=admin:alice&limit=2')).json()) as { records: AuditRecord[]; next: number | null };
    assert.equal(page.records.length, 2);
    assert.ok(page.records[0]!.seq > page.records[1]!.seq, 'newest first');
    for (const r of page.records) assert.equal(r.agent, 'admin:alice');
    assert.ok(page.next !== null);
    const older = (await (await c.get(`/console/api/audit?door=admin&agent=admin:alice&limit=2&before=${page.next}`)).json()) as { records: AuditRecord[] };
    assert.ok(older.records.every((r) => r.seq < page.records[1]!.seq));
    const denied = (await (await c.get('/console/api/audit?effect=deny&reason=console.csrf')).json()) as { records: AuditRecord[] };
    assert.ok(denied.records.length >= 1);
    assert.ok(denied.records.every((r) => r.decision.reason === 'console.csrf'));
    const bad = await c.get('/console/api/audit?door=kitchen');
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /door must be one of/);
    const one = await c.get(`/console/api/audit/${page.records[0]!.seq}`);
    assert.equal(((await one.json()) as AuditRecord).seq, page.records[0]!.seq);
    assert.equal((await c.get('/console/api/audit/99999999')).status, 404);
    const chain = (await (await c.get('/console/api/audit/chain')).json()) as { ok: boolean; verifiedThrough: number; tip: number };
    assert.equal(chain.ok, true);
    assert.ok(chain.verifiedThrough >= 1 && chain.verifiedThrough <= chain.tip);
    // Incremental: a second check goes on from where the first stopped.
    const again = (await (await c.get('/console/api/audit/chain')).json()) as { ok: boolean; verifiedThrough: number };
    assert.ok(again.ok && again.verifiedThrough >= chain.verifiedThrough);
  });

  test('agents (policy engine), secrets without a vault, incidents (isolate, snapshot, restore)', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const agent = (await (await c.get('/console/api/agents/demo')).json()) as { name: string; effective: { tool: string; call: { effect: string } }[]; keys: number };
    assert.equal(agent.name, 'demo');
    assert.equal(agent.keys, 1);
    assert.equal(agent.effective.find((t) => t.tool === 'bad__echo')?.call.effect, 'approve');
    assert.doesNotMatch(JSON.stringify(agent), new RegExp(TEST_KEY));
    const x = (await (await c.get('/console/api/agents/demo/explain?tool=bad__other')).json()) as { effect: string };
    assert.equal(x.effect, 'deny');
    assert.equal((await c.get('/console/api/agents/nobody')).status, 404);
    const secrets = (await (await c.get('/console/api/secrets')).json()) as { vault: boolean };
    assert.equal(secrets.vault, false);
    const add = await c.post('/console/api/secrets', { name: 'x', value: 'v', hosts: ['a.example'] });
    assert.equal(add.status, 501);
    assert.equal(((await add.json()) as { code: string }).code, 'ERR_CONSOLE_UNAVAILABLE');
    const inc = await c.post('/console/api/incidents/demo/isolate', { reason: 'test' });
    if (isolationsOf(gw.gateway) === undefined) {
      assert.equal(inc.status, 501);
      assert.equal(((await inc.json()) as { code: string }).code, 'ERR_CONSOLE_UNAVAILABLE');
    } else {
      assert.equal(inc.status, 200);
      assert.equal(isolationsOf(gw.gateway)?.isIsolated('demo'), true);
      const list = (await (await c.get('/console/api/incidents')).json()) as { isolations: { agent: string; by: string }[] };
      assert.equal(list.isolations[0]?.agent, 'demo');
      assert.equal(list.isolations[0]?.by, 'console:alice');
      const snap = await c.post('/console/api/incidents/demo/snapshot', {});
      assert.equal(snap.status, 200);
      assert.match(((await snap.json()) as { sha256: string }).sha256, /^[0-9a-f]{64}$/);
      assert.equal((await c.post('/console/api/incidents/demo/restore', {})).status, 400, 'a reason is required');
      assert.equal((await c.post('/console/api/incidents/demo/restore', { reason: 'test over' })).status, 200);
      assert.equal(isolationsOf(gw.gateway)?.isIsolated('demo'), false);
      assert.equal((await c.post('/console/api/incidents/nobody/isolate', { reason: 'x' })).status, 404);
    }
  });

  test('named admin keys are recorded by the admin API too', async () => {
    const res = await fetch(new URL('/api/approvals', gw.url), { headers: { authorization: `Bearer ${ALICE_KEY}` } });
    assert.equal(res.status, 200);
    const recs = await records(gw);
    assert.ok(recs.some((r) => r.method === 'api.GET /api/approvals' && r.detail?.admin === 'alice'));
  });

  test('the event stream sends the pending approvals at once, with the console headers', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const ac = new AbortController();
    const res = await fetch(new URL('/console/api/events', gw.url), { headers: { cookie: c.cookie }, signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assertConsoleHeaders(res);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: approvals\ndata: ')) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    ac.abort();
    const data = /event: approvals\ndata: (.*)\n\n/.exec(text)?.[1];
    assert.ok(data, text);
    assert.ok(Array.isArray((JSON.parse(data) as { approvals: unknown }).approvals));
    assert.equal((await fetch(new URL('/console/api/events', gw.url))).status, 401, 'no session, no stream');
  });

  test('sign-out ends the session', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    const out = await c.post('/console/api/sign-out');
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /Max-Age=0/);
    assert.equal((await c.get('/console/api/session')).status, 401);
  });
});

describe('console sessions over https and their expiry', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway(tempDir(), consoleYaml(['allowedOrigins: ["https://console.example"]', 'console:', '  sessionIdleMs: 400', '  sessionTtlMs: 60000']), ENV);
  });
  after(async () => gw?.close());

  test('a page served over https gets a Secure cookie', async () => {
    const c = await signIn(gw.url, ALICE_KEY, { origin: 'https://console.example' });
    assert.match(c.setCookie, /; Secure/);
    assert.match(c.setCookie, /; HttpOnly/);
  });

  test('an idle session expires: 401, cookie cleared, audited', async () => {
    const c = await signIn(gw.url, ALICE_KEY);
    assert.equal((await c.get('/console/api/session')).status, 200);
    await sleep(600);
    const res = await c.get('/console/api/session');
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { code: string }).code, 'ERR_AUTH_REQUIRED');
    assert.match(res.headers.get('set-cookie') ?? '', /Max-Age=0/);
    const recs = await records(gw);
    assert.ok(recs.some((r) => r.method === 'console.GET /console/api/session' && r.decision.reason === 'console.session'));
  });

  test('after 10 failed sign-ins from one address, sign-in is refused 429 for the minute, audited', async () => {
    const attempt = (key: string): Promise<Response> =>
      fetch(new URL('/console/api/sign-in', gw.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key }) });
    for (let i = 0; i < 10; i++) assert.equal((await attempt(`wrong-key-${i}-0123456789abcdefghij`)).status, 401);
    const locked = await attempt(ALICE_KEY);
    assert.equal(locked.status, 429, 'even the right key, until the window ends');
    assert.equal(((await locked.json()) as { code: string }).code, 'ERR_RATE_LIMITED');
    assert.match(locked.headers.get('retry-after') ?? '', /^\d+$/);
    const recs = await records(gw);
    assert.ok(recs.some((r) => r.method === 'console.sign-in' && r.decision.reason === 'ratelimit.exceeded' && r.detail?.failures === 10));
  });
});

describe('console on its own listener (server.console.listen)', () => {
  let gw: TestGateway;
  let listener: ConsoleListener;
  before(async () => {
    gw = await startGateway(tempDir(), consoleYaml(), ENV);
    listener = await startConsoleListener(gw.gateway, '127.0.0.1', 0);
  });
  after(async () => {
    await listener?.close();
    await gw?.close();
  });

  test('serves the console only, behind the Host and Origin checks', async () => {
    const page = await fetch(listener.url);
    assert.equal(page.status, 200);
    assertConsoleHeaders(page);
    const c = await signIn(listener.url, ALICE_KEY);
    assert.equal((await c.get('/console/api/session')).status, 200);
    assert.equal((await fetch(new URL('/mcp', listener.url))).status, 404);
    assert.equal((await fetch(new URL('/api/approvals', listener.url), { headers: { authorization: `Bearer ${ADMIN_KEY}` } })).status, 404);
    const rebound = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: listener.url.hostname, port: listener.url.port, path: '/console/', headers: { host: 'evil.example' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(rebound.status, 403);
    assert.equal((JSON.parse(rebound.body) as { code: string }).code, 'ERR_HOST_NOT_ALLOWED');
    const cross = await fetch(new URL('/console/api/sign-in', listener.url), { method: 'POST', headers: { origin: 'http://evil.example', 'content-type': 'application/json' }, body: JSON.stringify({ key: ALICE_KEY }) });
    assert.equal(cross.status, 403);
    const recs = await records(gw);
    assert.ok(recs.some((r) => r.decision.reason === 'host.not_allowed' && r.detail?.listener === 'console'));
    assert.ok(recs.some((r) => r.decision.reason === 'origin.not_allowed' && r.detail?.listener === 'console'));
  });
});
