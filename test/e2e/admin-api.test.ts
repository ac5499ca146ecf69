/**
 * The admin HTTP API for approvals, and progress notifications while a call is
 * held: a client that passes a progress token hears from Bastion until an admin
 * decides through the API.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { TEST_KEY, connect, startGateway, tempDir, type TestGateway, BAD_UPSTREAM_YAML } from '../helpers/gateway.ts';

const ADMIN_KEY = 'admin-key-0123456789abcdefghij';

describe('admin API and held calls', () => {
  let gw: TestGateway;
  const api = (path: string, init: RequestInit = {}): Promise<Response> =>
    fetch(new URL(path, gw.url), { ...init, headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(init.headers as Record<string, string>) } });

  before(async () => {
    gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
admin:
  keys: [env:T_ADMIN]
agents:
  demo:
    keys: [env:T_KEY]
    approve: ["bad__echo"]
${BAD_UPSTREAM_YAML}approvals:
  timeoutMs: 20000
  progressMs: 50
`,
      { T_KEY: TEST_KEY, T_ADMIN: ADMIN_KEY },
    );
  });
  after(async () => gw?.close());

  test('the admin API needs an admin key; an agent key is not one', async () => {
    assert.equal((await fetch(new URL('/api/approvals', gw.url))).status, 401);
    assert.equal((await fetch(new URL('/api/approvals', gw.url), { headers: { authorization: `Bearer ${TEST_KEY}` } })).status, 401);
    assert.equal((await api('/api/approvals')).status, 200);
    assert.equal((await api('/api/approvals?status=bogus')).status, 400);
  });

  test('a held call sends progress and runs once approved through the API', async () => {
    const client = await connect(gw.url, TEST_KEY);
    try {
      const progress: number[] = [];
      const held = client.callTool({ name: 'bad__echo', arguments: { text: 'approved via api' } }, undefined, {
        onprogress: (p) => progress.push(p.progress),
        timeout: 20_000,
      });
      let id: string | undefined;
      for (let i = 0; i < 100 && !id; i++) {
        await new Promise((r) => setTimeout(r, 30));
        const body = (await (await api('/api/approvals?status=pending')).json()) as { approvals: { id: string; argsPreview: string }[] };
        id = body.approvals[0]?.id;
        if (id) assert.match(body.approvals[0]?.argsPreview ?? '', /approved via api/);
      }
      assert.ok(id);
      await new Promise((r) => setTimeout(r, 200));
      // A form post (what a cross-site page could send) is refused: CSRF.
      const form = await api(`/api/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'reason=x' });
      assert.equal(form.status, 415);
      const ok = await api(`/api/approvals/${id}/approve`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"looks fine"}' });
      assert.equal(ok.status, 200);
      assert.equal(((await ok.json()) as { status: string }).status, 'approved');
      const result = await held;
      assert.equal((result as { content: { text: string }[] }).content[0]?.text, 'approved via api');
      assert.ok(progress.length >= 2, `progress notifications: ${progress.length}`);
      const again = await api(`/api/approvals/${id}/deny`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(again.status, 409, 'no longer pending');
      assert.equal((await api('/api/approvals/does-not-exist/approve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 404);
    } finally {
      await client.close();
    }
    const recs = await gw.gateway.store.readAudit(1, 10_000);
    assert.ok(recs.some((r) => r.door === 'admin' && r.decision.reason === 'approval.approved'));
    assert.ok(recs.some((r) => r.door === 'admin' && r.decision.reason === 'admin.csrf'));
  });
});
