/**
 * The notifier (src/notify/notifier.ts) against real loopback HTTP and SMTP servers: payloads of the
 * three event kinds on each channel, retries with backoff, timeouts, queues, close, option checks, and
 * the detached JWS over webhook bodies. (Ported from test/alerts/notifier.test.ts, which tested the
 * alert-only notifier it replaces.)
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { createLocalJWKSet, exportJWK, generateKeyPair } from 'jose';
import { SMTPServer } from 'smtp-server';
import { isBastionError } from '../../src/errors.ts';
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { backoffDelay, Notifier, type DeliveryOutcome, type NotifierOptions } from '../../src/notify/notifier.ts';
import { consoleLink, type NotificationEvent } from '../../src/notify/events.ts';
import { signDetached, verifyDetached } from '../../src/notify/signature.ts';
import { Secret } from '../../src/util/secret.ts';
import { freePort } from '../helpers/mcp.ts';

const SECRET = 'Bearer s3cr3t-webhook-token-XYZ';
const PASSWORD = 'smtp-pa55word-QQQ';
const SLACK_TOKEN = 'T000/B000/sl4ckT0ken';
const FAST = { attempts: 3, baseDelayMs: 40, maxDelayMs: 100 };

function alert(over: Partial<AdminAlert> = {}): AdminAlert {
  return {
    kind: 'model.extraction_ban',
    severity: 'critical',
    time: '2026-01-02T03:04:05.000Z',
    agent: 'agent-1',
    user: 'alice',
    summary: 'user banned for 15 min after a prompt-extraction attempt',
    detail: { offence: 1, banMs: 900_000 },
    ...over,
  };
}

const APPROVAL = { id: 'ap-1', agent: 'ci', user: 'bob', tool: 'deploy__run', createdAt: Date.parse('2026-01-02T03:04:05Z'), expiresAt: Date.parse('2026-01-02T03:06:05Z') };

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

/** An HTTP server on 127.0.0.1 answering each request with `answer(n)` (n counts from 0); closed after the test. */
async function httpReceiver(
  t: TestContext,
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void | Promise<void> = (_n, _req, res) => void res.end('ok'),
  path = '/hooks/bastion?token=abc',
): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = received.length;
      received.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: performance.now() });
      void answer(n, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}${path}`, received };
}

interface Mail {
  from: string | undefined;
  to: string[];
  raw: string;
}

/** A plain SMTP server on 127.0.0.1 (no STARTTLS advertised, AUTH optional); closed after the test. */
async function smtpServer(t: TestContext, opts: { requireAuth?: boolean } = {}): Promise<{ port: number; mails: Mail[]; authAttempts: number[] }> {
  const mails: Mail[] = [];
  const authAttempts: number[] = [];
  const server = new SMTPServer({
    authOptional: opts.requireAuth !== true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onAuth(_auth, _session, callback) {
      authAttempts.push(Date.now());
      callback(new Error('auth refused'));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        mails.push({ from: from === false ? undefined : from.address, to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.server.address() as AddressInfo).port, mails, authAttempts };
}

/** Splits a raw RFC 5322 message into unfolded headers (lower-case names) and its body, quoted-printable decoded. */
function parseMail(raw: string): { headers: Map<string, string>; body: string } {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).replace(/\r\n[ \t]+/g, ' ');
  const headers = new Map<string, string>();
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    headers.set(line.slice(0, i).toLowerCase(), line.slice(i + 1).trim());
  }
  let body = raw.slice(split + 4);
  if (/quoted-printable/i.test(headers.get('content-transfer-encoding') ?? '')) {
    body = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
  return { headers, body: body.replace(/\r\n/g, '\n') };
}

/** A notifier (fast retries unless given) whose outcomes are collected; closed after the test. */
function notifier(t: TestContext, opts: Omit<NotifierOptions, 'onOutcome'>): { n: Notifier; outcomes: DeliveryOutcome[]; failures: () => DeliveryOutcome[] } {
  const outcomes: DeliveryOutcome[] = [];
  const n = new Notifier({ retry: FAST, ...opts, onOutcome: (o) => outcomes.push(o) });
  t.after(() => n.close());
  return { n, outcomes, failures: () => outcomes.filter((o) => o.status !== 'delivered') };
}

/** The non-secret facts of an outcome (what the gateway audits). */
function facts(o: DeliveryOutcome): Record<string, unknown> {
  const { event, durationMs, ...rest } = o;
  void durationMs;
  return { ...rest, kind: event.kind };
}

function assertNoSecrets(value: unknown): void {
  for (const text of [JSON.stringify(value), inspect(value, { depth: 8 })]) {
    assert.ok(!text.includes('s3cr3t'), 'webhook header value leaked');
    assert.ok(!text.includes(PASSWORD), 'SMTP password leaked');
    assert.ok(!text.includes('token=abc'), 'webhook URL leaked');
    assert.ok(!text.includes('sl4ck'), 'Slack URL leaked');
  }
}

describe('Notifier: webhook', () => {
  test('POSTs the event as JSON with the configured headers; an alert keeps its `alert` field', async (t) => {
    const hook = await httpReceiver(t);
    const { n, outcomes } = notifier(t, { webhook: { url: hook.url, headers: { Authorization: new Secret(SECRET), 'X-Bastion-Env': new Secret('prod') } }, publicUrl: () => 'https://bastion.example.test/' });
    const a = alert();
    n.notify(a);
    await n.flush();
    assert.deepEqual(outcomes.map(facts), [{ channel: 'webhook', status: 'delivered', attempts: 1, kind: 'alert' }]);
    assert.equal(hook.received.length, 1);
    const got = hook.received[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers.authorization, SECRET);
    assert.equal(got.headers['x-bastion-env'], 'prod');
    assert.equal(got.headers['bastion-signature'], undefined, 'no signer given: unsigned');
    const body = JSON.parse(got.body) as NotificationEvent & { alert: AdminAlert };
    assert.deepEqual(body.alert, a);
    assert.equal(body.kind, 'alert');
    assert.equal(body.link, 'https://bastion.example.test/console/#/alerts');
    assert.equal(body.agent, 'agent-1');
    assert.match(body.id, /^[0-9a-f-]{36}$/);
  });

  test('approval.pending carries tool, agent, user, id, expiry and link, never the arguments', async (t) => {
    const hook = await httpReceiver(t);
    const { n } = notifier(t, { webhook: { url: hook.url } });
    n.approvalPending({ ...APPROVAL, argsPreview: '{"arguments":{"password":"SECRETARG"}}', argsDigest: 'd'.repeat(64) } as typeof APPROVAL);
    await n.flush();
    const raw = hook.received[0]!.body;
    assert.ok(!raw.includes('SECRETARG') && !raw.includes('ddddd'), 'argument values or digest sent');
    const body = JSON.parse(raw) as Record<string, unknown>;
    assert.deepEqual(body.approval, { id: 'ap-1', agent: 'ci', user: 'bob', tool: 'deploy__run', createdAt: '2026-01-02T03:04:05.000Z', expiresAt: '2026-01-02T03:06:05.000Z' });
    assert.equal(body.kind, 'approval.pending');
    assert.equal(body.link, '/console/#/approvals/ap-1', 'without publicUrl, a path');
    assert.match(String(body.summary), /ci waits for approval to call deploy__run for user bob/);
  });

  test('incident: isolate is critical, restore info; the link names the agent (encoded)', async (t) => {
    const hook = await httpReceiver(t);
    const { n } = notifier(t, { webhook: { url: hook.url }, publicUrl: () => 'https://b.example.test/base/' });
    n.incident({ agent: 'ci/bot', action: 'isolate', reason: 'burst of denials', by: 'anomaly:denials', detail: { rule: 'denials' } });
    n.incident({ agent: 'ci', action: 'restore', by: 'admin:alice' });
    await n.flush();
    const [iso, res] = hook.received.map((r) => JSON.parse(r.body) as { severity: string; link: string; incident: unknown; summary: string });
    assert.equal(iso!.severity, 'critical');
    assert.equal(iso!.link, 'https://b.example.test/base/console/#/incidents/ci%2Fbot');
    assert.deepEqual(iso!.incident, { agent: 'ci/bot', action: 'isolate', reason: 'burst of denials', by: 'anomaly:denials', detail: { rule: 'denials' } });
    assert.equal(res!.severity, 'info');
    assert.equal(res!.summary, 'agent ci restored by admin:alice');
  });

  test('the event is copied when queued: later changes are not sent', async (t) => {
    const hook = await httpReceiver(t);
    const { n } = notifier(t, { webhook: { url: hook.url } });
    const detail: Record<string, unknown> = { rule: 'r1' };
    n.notify(alert({ detail }));
    detail.rule = 'changed';
    await n.flush();
    assert.deepEqual((JSON.parse(hook.received[0]!.body) as { alert: AdminAlert }).alert.detail, { rule: 'r1' });
  });

  test('500 twice then 200: delivered on attempt 3, after backoff pauses', async (t) => {
    const hook = await httpReceiver(t, (i, _req, res) => {
      res.statusCode = i < 2 ? 500 : 200;
      res.end();
    });
    const { n, outcomes } = notifier(t, { webhook: { url: hook.url }, retry: { attempts: 5, baseDelayMs: 100, maxDelayMs: 1_000 } });
    n.notify(alert());
    await n.flush();
    assert.equal(hook.received.length, 3);
    assert.deepEqual(outcomes.map(facts), [{ channel: 'webhook', status: 'delivered', attempts: 3, kind: 'alert' }]);
    const [a, b, c] = hook.received.map((r) => r.at);
    // Equal jitter: the first pause is in [50, 100] ms, the second in [100, 200] ms.
    assert.ok(b! - a! >= 45, `first pause ${b! - a!} ms`);
    assert.ok(c! - b! >= 95, `second pause ${c! - b!} ms`);
    // Retries send the same notification (same id: a receiver dedupes by it).
    assert.equal(new Set(hook.received.map((r) => (JSON.parse(r.body) as { id: string }).id)).size, 1);
  });

  test('500 every time: gives up after `attempts`, outcome failed with the status, without secrets', async (t) => {
    const hook = await httpReceiver(t, (_n, _req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const { n, outcomes } = notifier(t, { webhook: { url: hook.url, headers: { Authorization: new Secret(SECRET) } } });
    assert.doesNotThrow(() => n.notify(alert()));
    await n.flush();
    assert.equal(hook.received.length, 3);
    assert.deepEqual(outcomes.map(facts), [{ channel: 'webhook', status: 'failed', attempts: 3, reason: 'http_status', httpStatus: 500, kind: 'alert' }]);
    assertNoSecrets(outcomes);
  });

  test('a 4xx or a redirect is not retried (and the redirect not followed); 429 is', async (t) => {
    const hook = await httpReceiver(t, (i, _req, res) => {
      if (i === 0) res.statusCode = 401;
      else if (i === 1) {
        res.statusCode = 302;
        res.setHeader('location', 'http://127.0.0.1:1/elsewhere');
      } else res.statusCode = i === 2 ? 429 : 200;
      res.end();
    });
    const { n, outcomes } = notifier(t, { webhook: { url: hook.url } });
    n.notify(alert({ kind: 'k1' }));
    n.notify(alert({ kind: 'k2' }));
    n.notify(alert({ kind: 'k3' }));
    await n.flush();
    assert.equal(hook.received.length, 4);
    assert.deepEqual(outcomes.map(facts), [
      { channel: 'webhook', status: 'failed', attempts: 1, reason: 'http_status', httpStatus: 401, kind: 'alert' },
      { channel: 'webhook', status: 'failed', attempts: 1, reason: 'http_status', httpStatus: 302, kind: 'alert' },
      { channel: 'webhook', status: 'delivered', attempts: 2, kind: 'alert' },
    ]);
  });

  test('connection refused: retried, then failed with reason network', async (t) => {
    const port = await freePort();
    const { n, outcomes } = notifier(t, { webhook: { url: `http://127.0.0.1:${port}/x?token=abc`, headers: { Authorization: new Secret(SECRET) } } });
    n.notify(alert());
    await n.flush();
    assert.deepEqual(outcomes.map(facts), [{ channel: 'webhook', status: 'failed', attempts: 3, reason: 'network', code: 'ECONNREFUSED', kind: 'alert' }]);
    assertNoSecrets(outcomes);
  });

  test('a webhook that hangs: each attempt times out, is retried, then given up; the Slack channel is not held up', async (t) => {
    const hook = await httpReceiver(t, () => undefined);
    const slack = await httpReceiver(t, undefined, `/services/${SLACK_TOKEN}`);
    const { n, outcomes } = notifier(t, { webhook: { url: hook.url, timeoutMs: 300 }, slack: { url: new Secret(slack.url) } });
    const t0 = performance.now();
    n.notify(alert({ kind: 'a1' }));
    n.notify(alert({ kind: 'a2' }));
    await sleep(150);
    // Both alerts reached Slack while the webhook's first attempt is still hanging.
    assert.equal(slack.received.length, 2);
    await n.flush();
    const took = performance.now() - t0;
    assert.equal(hook.received.length, 6, 'three attempts per alert');
    assert.ok(took >= 1_800 && took < 4_000, `took ${took} ms`);
    const hooked = outcomes.filter((o) => o.channel === 'webhook');
    assert.deepEqual(hooked.map((o) => [o.status, o.reason, o.attempts]), [['failed', 'timeout', 3], ['failed', 'timeout', 3]]);
    assertNoSecrets(outcomes);
  });

  test('a slow webhook does not delay the entry points', async (t) => {
    const hook = await httpReceiver(t, async (_n, _req, res) => {
      await sleep(300);
      res.end();
    });
    const { n, failures } = notifier(t, { webhook: { url: hook.url } });
    const t0 = performance.now();
    for (let i = 0; i < 5; i++) assert.equal(n.notify(alert({ kind: `k${i}` })) as unknown, undefined);
    n.approvalPending(APPROVAL);
    n.incident({ agent: 'ci', action: 'isolate', by: 'admin' });
    assert.ok(performance.now() - t0 < 50);
    assert.equal(hook.received.length, 0);
    await n.flush();
    assert.deepEqual(
      hook.received.map((r) => (JSON.parse(r.body) as { kind: string; alert?: AdminAlert }).alert?.kind ?? (JSON.parse(r.body) as { kind: string }).kind),
      ['k0', 'k1', 'k2', 'k3', 'k4', 'approval.pending', 'incident'],
    );
    assert.deepEqual(failures(), []);
  });

  test('queue bound: events beyond maxQueue are dropped and reported at once', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const hook = await httpReceiver(t, async (_n, _req, res) => {
      await gate;
      res.end();
    });
    const { n, failures } = notifier(t, { webhook: { url: hook.url }, maxQueue: 2 });
    for (let i = 0; i < 5; i++) n.notify(alert({ kind: `k${i}` }));
    assert.deepEqual(failures().map((o) => [o.status, o.reason, (o.event as { alert: AdminAlert }).alert.kind]), [2, 3, 4].map((i) => ['dropped', 'queue_full', `k${i}`]));
    release();
    await n.flush();
    assert.deepEqual(hook.received.map((r) => (JSON.parse(r.body) as { alert: AdminAlert }).alert.kind), ['k0', 'k1']);
    n.notify(alert({ kind: 'k5' }));
    await n.flush();
    assert.equal(hook.received.length, 3);
  });

  test('minSeverity filters alerts only; each channel gets only the kinds it subscribed to', async (t) => {
    const all = await httpReceiver(t);
    const incidents = await httpReceiver(t, undefined, `/services/${SLACK_TOKEN}`);
    const { n } = notifier(t, { webhook: { url: all.url }, slack: { url: new Secret(incidents.url), events: ['incident'] }, minSeverity: 'warning' });
    n.notify(alert({ kind: 'i', severity: 'info' }));
    n.notify(alert({ kind: 'c', severity: 'critical' }));
    n.approvalPending(APPROVAL);
    n.incident({ agent: 'ci', action: 'restore', by: 'admin' });
    await n.flush();
    assert.deepEqual(all.received.map((r) => (JSON.parse(r.body) as { kind: string }).kind), ['alert', 'approval.pending', 'incident']);
    assert.equal(incidents.received.length, 1);
    assert.match(JSON.parse(incidents.received[0]!.body).text as string, /INCIDENT restore agent ci/);
  });
});

describe('Notifier: Slack-compatible webhook', () => {
  test('{text, blocks}: title, escaped summary, facts, and an "Open in console" button', async (t) => {
    const slack = await httpReceiver(t, undefined, `/services/${SLACK_TOKEN}`);
    const { n, outcomes } = notifier(t, { slack: { url: new Secret(slack.url) }, publicUrl: () => 'https://bastion.example.test' });
    n.approvalPending({ ...APPROVAL, user: '<!channel> & co' });
    await n.flush();
    assert.equal(slack.received[0]!.url, `/services/${SLACK_TOKEN}`);
    assert.equal(slack.received[0]!.headers['content-type'], 'application/json');
    const msg = JSON.parse(slack.received[0]!.body) as { text: string; blocks: { type: string; text?: { type: string; text: string }; elements?: { type: string; text?: unknown; url?: string }[] }[] };
    assert.deepEqual(Object.keys(msg).sort(), ['blocks', 'text']);
    assert.ok(!msg.text.includes('<!channel>') && !JSON.stringify(msg.blocks).includes('<!channel>'), 'a user id could ping the channel');
    assert.match(msg.text, /&lt;!channel&gt; &amp; co/);
    assert.match(msg.text, /<https:\/\/bastion\.example\.test\/console\/#\/approvals\/ap-1\|Open in console>$/);
    assert.deepEqual(msg.blocks.map((b) => b.type), ['header', 'section', 'context', 'actions']);
    assert.equal(msg.blocks[0]!.text!.type, 'plain_text');
    assert.match(msg.blocks[0]!.text!.text, /APPROVAL PENDING deploy__run \(agent ci\)/);
    assert.equal(msg.blocks[1]!.text!.type, 'mrkdwn');
    assert.deepEqual(msg.blocks[3]!.elements, [{ type: 'button', text: { type: 'plain_text', text: 'Open in console' }, url: 'https://bastion.example.test/console/#/approvals/ap-1' }]);
    assert.ok(msg.blocks[2]!.elements!.some((e) => /approval:\* ap-1/.test(String(e.text))));
    assert.deepEqual(outcomes.map(facts), [{ channel: 'slack', status: 'delivered', attempts: 1, kind: 'approval.pending' }]);
  });

  test('without publicUrl: no button (Slack needs an absolute URL), the path is in the text', async (t) => {
    const slack = await httpReceiver(t, undefined, `/services/${SLACK_TOKEN}`);
    const { n } = notifier(t, { slack: { url: new Secret(slack.url) } });
    n.notify(alert());
    await n.flush();
    const msg = JSON.parse(slack.received[0]!.body) as { text: string; blocks: { type: string }[] };
    assert.deepEqual(msg.blocks.map((b) => b.type), ['header', 'section', 'context']);
    assert.match(msg.text, /\/console\/#\/alerts$/);
  });

  test('the Slack URL never appears in an outcome or an option error', async (t) => {
    const port = await freePort();
    const { n, outcomes } = notifier(t, { slack: { url: new Secret(`http://127.0.0.1:${port}/services/${SLACK_TOKEN}`) } });
    n.notify(alert());
    await n.flush();
    assert.equal(outcomes[0]!.status, 'failed');
    assertNoSecrets(outcomes);
    assert.throws(
      () => new Notifier({ slack: { url: new Secret(`ftp://example.test/services/${SLACK_TOKEN}`) } }),
      (err) => isBastionError(err, 'ERR_CONFIG_INVALID') && err.detail?.path === 'alerts.slack.url' && !err.message.includes('sl4ck'),
    );
  });
});

describe('Notifier: SMTP', () => {
  test('mails a plain-text alert: envelope, subject with kind and severity, body with the fields and link', async (t) => {
    const smtp = await smtpServer(t);
    const { n, failures } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, secure: false, from: 'bastion@example.test', to: ['ops@example.test', 'sec@example.test'] }, publicUrl: () => 'https://bastion.example.test' });
    n.notify(alert());
    await n.flush();
    assert.deepEqual(failures(), []);
    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0]!;
    assert.equal(mail.from, 'bastion@example.test');
    assert.deepEqual(mail.to, ['ops@example.test', 'sec@example.test']);
    const { headers, body } = parseMail(mail.raw);
    assert.equal(headers.get('subject'), '[Bastion] CRITICAL model.extraction_ban');
    assert.match(headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(body, /^kind: +"model\.extraction_ban"$/m);
    assert.match(body, /^severity: +"critical"$/m);
    assert.match(body, /^agent: +"agent-1"$/m);
    assert.match(body, /^user: +"alice"$/m);
    assert.match(body, /"banMs": 900000/);
    assert.match(body, /^Console: https:\/\/bastion\.example\.test\/console\/#\/alerts$/m);
  });

  test('approval.pending and incident mails: subject and body name the call or the action, with the link', async (t) => {
    const smtp = await smtpServer(t);
    const { n } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.approvalPending(APPROVAL);
    n.incident({ agent: 'ci', action: 'rotate', reason: 'leaked', by: 'admin:alice', detail: { secrets: ['github'] } });
    await n.flush();
    const [a, i] = smtp.mails.map((m) => parseMail(m.raw));
    assert.equal(a!.headers.get('subject'), '[Bastion] APPROVAL PENDING deploy__run (agent ci)');
    assert.match(a!.body, /^approval: +"ap-1"$/m);
    assert.match(a!.body, /^expires: +"2026-01-02T03:06:05\.000Z"$/m);
    assert.match(a!.body, /^Console: \/console\/#\/approvals\/ap-1$/m);
    assert.equal(i!.headers.get('subject'), '[Bastion] INCIDENT rotate agent ci');
    assert.match(i!.body, /^by: +"admin:alice"$/m);
    assert.match(i!.body, /"github"/);
  });

  test('a newline in kind or user cannot inject a header or forge a body line', async (t) => {
    const smtp = await smtpServer(t);
    const { n } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.notify(alert({ kind: 'x\r\nBcc: evil@example.test', user: 'mallory\nsummary: all fine' }));
    await n.flush();
    assert.equal(smtp.mails.length, 1);
    assert.deepEqual(smtp.mails[0]!.to, ['ops@example.test']);
    const { headers, body } = parseMail(smtp.mails[0]!.raw);
    assert.equal(headers.has('bcc'), false);
    assert.equal(headers.get('subject'), '[Bastion] CRITICAL x  Bcc: evil@example.test');
    assert.doesNotMatch(body, /^summary: all fine$/m);
    assert.match(body, /^user: +"mallory\\nsummary: all fine"$/m);
  });

  test('SMTP server down: failed after retries (no hang), entry points never throw', async (t) => {
    const port = await freePort();
    const { n, outcomes } = notifier(t, { smtp: { host: '127.0.0.1', port, from: 'bastion@example.test', to: ['ops@example.test'], timeoutMs: 2_000 } });
    const t0 = performance.now();
    assert.doesNotThrow(() => n.notify(alert()));
    await n.flush();
    assert.ok(performance.now() - t0 < 2_500);
    assert.deepEqual(outcomes.map((o) => [o.channel, o.status, o.reason, o.attempts]), [['email', 'failed', 'smtp', 3]]);
  });

  test('with credentials, STARTTLS is required: a server without it never sees AUTH', async (t) => {
    const smtp = await smtpServer(t, { requireAuth: true });
    const { n, outcomes } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, user: 'bastion', password: new Secret(PASSWORD), from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.notify(alert());
    await n.flush();
    assert.deepEqual(smtp.authAttempts, []);
    assert.equal(smtp.mails.length, 0);
    assert.deepEqual(outcomes.map((o) => [o.channel, o.status]), [['email', 'failed']]);
    assertNoSecrets(outcomes);
  });

  test('webhook and SMTP together: each gets the event; one failing does not stop the other', async (t) => {
    const smtp = await smtpServer(t);
    const hook = await httpReceiver(t, (_n, _req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const { n, failures } = notifier(t, { webhook: { url: hook.url }, smtp: { host: '127.0.0.1', port: smtp.port, from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.notify(alert());
    await n.flush();
    assert.equal(smtp.mails.length, 1);
    assert.equal(hook.received.length, 3);
    assert.deepEqual(failures().map((o) => o.channel), ['webhook']);
  });
});

describe('Notifier: lifecycle, backoff and input', () => {
  test('close lets deliveries finish within the grace, abandons a hanging one (failed, closed), drops later events', async (t) => {
    const slow = await httpReceiver(t, async (_n, _req, res) => {
      await sleep(100);
      res.end();
    });
    const { n, outcomes } = notifier(t, { webhook: { url: slow.url } });
    n.notify(alert());
    await n.close();
    assert.deepEqual(outcomes.map((o) => o.status), ['delivered']);
    n.notify(alert({ kind: 'late' }));
    await n.close();
    assert.deepEqual(outcomes.slice(1).map((o) => [o.status, o.reason]), [['dropped', 'closed']]);

    const hang = await httpReceiver(t, () => undefined);
    const h = notifier(t, { webhook: { url: hang.url, timeoutMs: 60_000 }, closeGraceMs: 200 });
    h.n.incident({ agent: 'ci', action: 'isolate', by: 'admin' });
    const t0 = performance.now();
    await h.n.close();
    assert.ok(performance.now() - t0 < 1_000, 'close is bounded by the grace');
    assert.deepEqual(h.outcomes.map((o) => [o.status, o.reason, o.attempts]), [['failed', 'closed', 1]]);
  });

  test('an event that is not JSON-serializable is dropped and reported, not thrown; an onOutcome that throws is contained', async (t) => {
    const hook = await httpReceiver(t);
    const seen: DeliveryOutcome[] = [];
    const n = new Notifier({
      webhook: { url: hook.url },
      onOutcome: (o) => {
        seen.push(o);
        throw new Error('handler bug');
      },
    });
    t.after(() => n.close());
    assert.doesNotThrow(() => n.notify(alert({ detail: { big: 10n } })));
    assert.doesNotThrow(() => n.notify(null as unknown as AdminAlert));
    assert.doesNotThrow(() => n.incident({ agent: 'a', action: 'isolate', by: 'x', detail: { big: 1n } }));
    n.notify(alert({ kind: 'ok' }));
    await n.flush();
    assert.deepEqual(seen.map((o) => [o.status, o.reason ?? null]), [['dropped', 'invalid_event'], ['dropped', 'invalid_event'], ['dropped', 'invalid_event'], ['delivered', null]]);
    assert.equal(hook.received.length, 1);
  });

  test('no channel configured: nothing happens', async () => {
    const seen: DeliveryOutcome[] = [];
    const n = new Notifier({ onOutcome: (o) => seen.push(o) });
    n.notify(alert());
    n.approvalPending(APPROVAL);
    n.incident({ agent: 'a', action: 'isolate', by: 'x' });
    await n.close();
    assert.deepEqual(seen, []);
    assert.deepEqual(n.channels, []);
  });

  test('backoffDelay: within [d/2, d] for d = min(max, base·2^(n-1))', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (n, base, max, r) => {
        const d = Math.min(max, base * 2 ** Math.min(n - 1, 30));
        const got = backoffDelay(n, { attempts: 5, baseDelayMs: base, maxDelayMs: max }, () => r);
        return got >= Math.floor(d / 2) && got <= Math.ceil(d) && got <= max;
      }),
    );
    assert.equal(backoffDelay(1, { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 }, () => 0), 500);
    assert.equal(backoffDelay(3, { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 }, () => 0.999999), 4000);
    assert.equal(backoffDelay(20, { attempts: 5, baseDelayMs: 1000, maxDelayMs: 60_000 }, () => 0), 30_000);
  });

  test('consoleLink: origin and path of publicUrl kept, query and fragment dropped, segments encoded', () => {
    assert.equal(consoleLink(undefined, ['alerts']), '/console/#/alerts');
    assert.equal(consoleLink('https://b.example.test', ['approvals', 'x y']), 'https://b.example.test/console/#/approvals/x%20y');
    assert.equal(consoleLink('https://b.example.test/gw//?q=1#f', ['incidents', '../a']), 'https://b.example.test/gw/console/#/incidents/..%2Fa');
  });

  test('bad options are ERR_CONFIG_INVALID naming the field, never the value', () => {
    const smtp = { host: '127.0.0.1', port: 25, from: 'a@b.c', to: ['d@e.f'] };
    const cases: [NotifierOptions, string][] = [
      [{ webhook: { url: 'ftp://example.test/hook' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'not a url s3cr3t' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'https://user:s3cr3t@example.test/hook' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'https://example.test/h', headers: { 'Bad Name': new Secret('v') } } }, 'alerts.webhook.headers'],
      [{ webhook: { url: 'https://example.test/h', headers: { 'Content-Type': new Secret('text/plain') } } }, 'alerts.webhook.headers.Content-Type'],
      [{ webhook: { url: 'https://example.test/h', headers: { 'Bastion-Signature': new Secret('forged') } } }, 'alerts.webhook.headers.Bastion-Signature'],
      [{ webhook: { url: 'https://example.test/h', headers: { Authorization: new Secret('s3cr3t\r\nX-Evil: 1') } } }, 'alerts.webhook.headers.Authorization'],
      [{ webhook: { url: 'https://example.test/h', timeoutMs: 0 } }, 'alerts.webhook.timeoutMs'],
      [{ webhook: { url: 'https://example.test/h', events: [] } }, 'alerts.webhook.events'],
      [{ webhook: { url: 'https://example.test/h', events: ['everything' as never] } }, 'alerts.webhook.events'],
      [{ slack: { url: 'https://hooks.example.test/s3cr3t' as never } }, 'alerts.slack.url'],
      [{ smtp: { ...smtp, port: 0 } }, 'alerts.email.port'],
      [{ smtp: { ...smtp, to: [] } }, 'alerts.email.to'],
      [{ smtp: { ...smtp, from: '' } }, 'alerts.email.from'],
      [{ smtp: { ...smtp, user: 'u' } }, 'alerts.email'],
      [{ smtp: { ...smtp, password: new Secret(PASSWORD) } }, 'alerts.email'],
      [{ maxQueue: 0 }, 'alerts.maxQueue'],
      [{ retry: { attempts: 0 } }, 'retry.attempts'],
      [{ retry: { maxDelayMs: 1.5 } }, 'retry.maxDelayMs'],
      [{ minSeverity: 'loud' as never }, 'alerts.minSeverity'],
    ];
    for (const [opts, path] of cases) {
      assert.throws(
        () => new Notifier(opts),
        (err) => {
          assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'), `${path}: ${String(err)}`);
          assert.equal(err.detail?.path, path);
          assertNoSecrets(err);
          return true;
        },
      );
    }
  });
});

describe('webhook signature (detached JWS, RFC 7515 Appendix F)', () => {
  test('verifies over the exact body with the JWKS; a changed body, another key or a mangled value fails', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA', use: 'sig' };
    const jwks = createLocalJWKSet({ keys: [jwk] });
    const body = new TextEncoder().encode('{"kind":"alert","summary":"x"}');
    const sig = await signDetached(body, { kid: 'k1', cryptoKey: privateKey });
    assert.match(sig, /^[\w-]+\.\.[\w-]+$/);
    assert.deepEqual(await verifyDetached(body, sig, jwks), { kid: 'k1' });
    const changed = new TextEncoder().encode('{"kind":"alert","summary":"y"}');
    await assert.rejects(verifyDetached(changed, sig, jwks), (e) => isBastionError(e, 'ERR_SIGNING'));
    const other = await generateKeyPair('EdDSA', { extractable: true });
    const otherJwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(other.publicKey)), kid: 'k1', alg: 'EdDSA' }] });
    await assert.rejects(verifyDetached(body, sig, otherJwks), (e) => isBastionError(e, 'ERR_SIGNING'));
    for (const bad of ['', 'a.b.c', sig.replace('..', '.'), `${sig}.x`]) await assert.rejects(verifyDetached(body, bad, jwks), (e) => isBastionError(e, 'ERR_SIGNING'));
  });

  test('the webhook channel signs every attempt with the signer; a failing signer fails the attempt (never sent unsigned)', async (t) => {
    const hook = await httpReceiver(t);
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { extractable: true });
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'EdDSA' }] });
    let broken = false;
    const { n, outcomes } = notifier(t, {
      webhook: { url: hook.url },
      sign: async (b) => {
        if (broken) throw Object.assign(new Error('no key'), { code: 'ERR_VAULT_KEY' });
        return signDetached(b, { kid: 'k1', cryptoKey: privateKey });
      },
    });
    n.notify(alert());
    await n.flush();
    const got = hook.received[0]!;
    await verifyDetached(new TextEncoder().encode(got.body), String(got.headers['bastion-signature']), jwks);
    broken = true;
    n.notify(alert());
    await n.flush();
    assert.equal(hook.received.length, 1);
    assert.deepEqual(outcomes.map((o) => [o.status, o.reason ?? null, o.code ?? null]), [['delivered', null, null], ['failed', 'signing', 'ERR_VAULT_KEY']]);
  });
});
