/**
 * Notifications through a real gateway (config `alerts`, SQLite store, HTTP on loopback, the official
 * MCP client, the bad-upstream fixture): a held call announced to a signed webhook (verified with the
 * gateway's own JWKS endpoint) and a Slack-compatible receiver, delivery retried and audited, and a
 * hanging channel that never holds up a request.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { createRemoteJWKSet } from 'jose';
import type { AuditRecord } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { verifyDetached } from '../../src/notify/signature.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { BAD_UPSTREAM_YAML, TEST_KEY, connect, tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';

const SLACK_PATH = '/services/T0/B0/sl4ckT0ken';

interface Hit {
  readonly at: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A loopback receiver whose answer is switched by the test: `ok`, `500x2` (500 twice, then 200), `hang` (never answers). */
async function receiver(): Promise<{ url: string; hits: Hit[]; mode: { value: 'ok' | '500x2' | 'hang' }; close(): Promise<void> }> {
  const hits: Hit[] = [];
  const mode = { value: 'ok' as 'ok' | '500x2' | 'hang' };
  let failures = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      hits.push({ at: performance.now(), headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      if (mode.value === 'hang') return;
      if (mode.value === '500x2' && failures < 2) {
        failures++;
        res.statusCode = 500;
        res.end();
        return;
      }
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    mode,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function waitFor<T>(what: string, get: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('notifications through the gateway', () => {
  let hook: Awaited<ReturnType<typeof receiver>>;
  let slack: Awaited<ReturnType<typeof receiver>>;
  let gateway: Gateway;
  let running: RunningServer;
  let client: Client;
  const lines: string[] = [];

  before(async () => {
    hook = await receiver();
    slack = await receiver();
    const { config } = await writeAndLoadConfig(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
agents:
  demo:
    keys: [env:T_KEY]
    tools: ["bad__echo", "bad__echo_any"]
    approve: ["bad__echo"]
${BAD_UPSTREAM_YAML}approvals:
  timeoutMs: 20000
alerts:
  publicUrl: https://bastion.example.test
  webhook:
    url: ${hook.url}/hook?token=abc
    headers:
      Authorization: env:T_HOOK_AUTH
  slack:
    url: env:T_SLACK_URL
    events: [approval.pending, incident]
`,
      { T_KEY: TEST_KEY, T_HOOK_AUTH: 'Bearer s3cr3t-hook', T_SLACK_URL: `${slack.url}${SLACK_PATH}` },
    );
    ({ gateway } = await Gateway.open(config, { notify: { timeoutMs: 1_500, retry: { attempts: 3, baseDelayMs: 50, maxDelayMs: 200 }, onFailure: (l) => lines.push(l) } }));
    running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 });
    client = await connect(running.url, TEST_KEY);
  });
  after(async () => {
    await client?.close();
    await running?.close();
    await gateway?.close();
    await hook?.close();
    await slack?.close();
  });

  /** Audit records of notification outcomes, once batched writes have landed. */
  async function notifyRecords(pred: (r: AuditRecord) => boolean, count = 1): Promise<AuditRecord[]> {
    return waitFor('notify audit records', async () => {
      const recs = (await gateway.store.readAudit(1, 100_000)).filter((r) => r.method.startsWith('notify.') && pred(r));
      return recs.length >= count ? recs : undefined;
    });
  }

  test('a held call is announced, signed with the identity key (verified with /.well-known/jwks.json), and audited', async () => {
    hook.mode.value = 'ok';
    const held = client.callTool({ name: 'bad__echo', arguments: { text: 'ship it SECRETARG' } }, undefined, { timeout: 20_000 });
    // The first call starts the upstream (a child process): seconds on a loaded machine.
    const hit = await waitFor('approval.pending at the webhook', () => hook.hits.find((h) => JSON.parse(h.body).kind === 'approval.pending'), 30_000);
    const event = JSON.parse(hit.body) as { id: string; link: string; approval: { id: string; agent: string; tool: string; user: null; expiresAt: string } };
    assert.equal(event.approval.agent, 'demo');
    assert.equal(event.approval.tool, 'bad__echo');
    assert.equal(event.link, `https://bastion.example.test/console/#/approvals/${event.approval.id}`);
    assert.ok(!hit.body.includes('SECRETARG'), 'argument values are never sent');
    assert.equal(hit.headers.authorization, 'Bearer s3cr3t-hook');

    // A receiver verifies the body with the gateway's published keys; a changed body fails.
    const jwks = createRemoteJWKSet(new URL('/.well-known/jwks.json', running.url));
    const signature = String(hit.headers['bastion-signature']);
    const { kid } = await verifyDetached(new TextEncoder().encode(hit.body), signature, jwks);
    assert.equal(kid, (await gateway.identity.signingKey()).kid);
    await assert.rejects(verifyDetached(new TextEncoder().encode(hit.body.replace('bad__echo', 'bad__evil')), signature, jwks), (e) => isBastionError(e, 'ERR_SIGNING'));

    const chat = await waitFor('approval.pending at Slack', () => slack.hits[0]);
    assert.equal(chat.headers['bastion-signature'], undefined);
    const msg = JSON.parse(chat.body) as { text: string; blocks: { type: string; elements?: { url?: string }[] }[] };
    assert.match(msg.text, /APPROVAL PENDING bad__echo \(agent demo\)/);
    assert.equal(msg.blocks.at(-1)?.elements?.[0]?.url, event.link);

    await gateway.deps.approvals.decide(event.approval.id, 'approved', 'admin', null);
    const result = (await held) as { content: { text: string }[] };
    assert.equal(result.content[0]?.text, 'ship it SECRETARG');

    const recs = await notifyRecords((r) => r.detail?.approvalId === event.approval.id, 2);
    assert.deepEqual(recs.map((r) => [r.door, r.method, r.target, r.outcome, r.decision.reason, r.detail?.attempts]).sort(), [
      ['system', 'notify.delivered', 'slack', 'ok', 'system', 1],
      ['system', 'notify.delivered', 'webhook', 'ok', 'system', 1],
    ]);
    const text = JSON.stringify(recs);
    for (const s of ['token=abc', 'sl4ck', 's3cr3t', '127.0.0.1', 'SECRETARG']) assert.ok(!text.includes(s), `audit record holds ${s}`);
  });

  test('500 twice then 200: delivered on attempt 3 and audited so', async () => {
    hook.mode.value = '500x2';
    const before = hook.hits.length;
    gateway.notifications.incident({ agent: 'demo', action: 'isolate', reason: 'test', by: 'admin' });
    const [rec] = await notifyRecords((r) => r.target === 'webhook' && r.detail?.kind === 'incident');
    assert.equal(hook.hits.length - before, 3);
    assert.equal(rec!.method, 'notify.delivered');
    assert.equal(rec!.detail?.attempts, 3);
    assert.equal(rec!.detail?.action, 'isolate');
    const ids = new Set(hook.hits.slice(before).map((h) => (JSON.parse(h.body) as { id: string }).id));
    assert.equal(ids.size, 1, 'each retry carries the same notification id');
  });

  test('a hanging webhook: requests complete promptly, the held call is released at once, the channel times out, retries, gives up', async () => {
    hook.mode.value = 'hang';
    const slackBefore = slack.hits.length;
    const hookBefore = hook.hits.length;
    const held = client.callTool({ name: 'bad__echo', arguments: { text: 'while hanging' } }, undefined, { timeout: 20_000 });
    const pending = await waitFor('the approval', async () => (await gateway.deps.approvals.list({ status: 'pending' }))[0]);
    // The webhook is now holding the announcement's first attempt open.
    await waitFor('the hanging attempt', () => (hook.hits.length > hookBefore ? true : undefined));
    const t0 = performance.now();
    const other = (await client.callTool({ name: 'bad__echo_any', arguments: { text: 'not blocked' } })) as { content: { text: string }[] };
    const otherMs = performance.now() - t0;
    assert.equal(other.content[0]?.text, 'not blocked');
    // The webhook holds each of its 3 attempts open for 1.5 s: a request that waited on it would take seconds.
    assert.ok(otherMs < 1_000, `an unrelated call took ${otherMs} ms while the webhook hangs`);
    const t1 = performance.now();
    await gateway.deps.approvals.decide(pending.id, 'approved', 'admin', null);
    assert.equal(((await held) as { content: { text: string }[] }).content[0]?.text, 'while hanging');
    assert.ok(performance.now() - t1 < 1_000, 'the held call is released without waiting for the channel');
    // Slack got the announcement meanwhile.
    assert.ok(slack.hits.slice(slackBefore).some((h) => /APPROVAL PENDING/.test(JSON.parse(h.body).text as string)));

    const [rec] = await notifyRecords((r) => r.target === 'webhook' && r.detail?.approvalId === pending.id);
    assert.equal(rec!.method, 'notify.failed');
    assert.equal(rec!.outcome, 'timeout');
    assert.equal(rec!.decision.effect, 'deny');
    assert.equal(rec!.decision.reason, 'alert.delivery');
    assert.equal(rec!.detail?.reason, 'timeout');
    assert.equal(rec!.detail?.attempts, 3);
    assert.equal(hook.hits.length - hookBefore, 3);
    assert.ok(lines.some((l) => /^notification delivery failed \(webhook, approval\.pending: timeout .* after 3 attempts\)$/.test(l)), lines.join('\n'));
    assert.ok(!lines.join('\n').includes('token=abc'));
  });
});
