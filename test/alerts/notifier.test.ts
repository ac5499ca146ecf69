import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { type BastionError, isBastionError } from '../../src/errors.ts';
import { AlertNotifier, type AdminAlert, type AlertNotifierOptions } from '../../src/alerts/notifier.ts';
import { Secret } from '../../src/util/secret.ts';
import { freePort } from '../helpers/mcp.ts';

const SECRET = 'Bearer s3cr3t-webhook-token-XYZ';
const PASSWORD = 'smtp-pa55word-QQQ';

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

interface Received {
  method: string | undefined;
  headers: IncomingMessage['headers'];
  body: string;
}

/** An HTTP server on 127.0.0.1 answering each request with `answer(n)` (n counts from 0); closed after the test. */
async function webhookServer(
  t: TestContext,
  answer: (n: number, req: IncomingMessage, res: ServerResponse) => void | Promise<void> = (_n, _req, res) => void res.end('ok'),
): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const n = received.length;
      received.push({ method: req.method, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      void answer(n, req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/bastion?token=abc`, received };
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

/** A notifier whose errors are collected; closed after the test. */
function notifier(t: TestContext, opts: Omit<AlertNotifierOptions, 'onError'>): { n: AlertNotifier; errors: BastionError[] } {
  const errors: BastionError[] = [];
  const n = new AlertNotifier({ ...opts, onError: (e) => errors.push(e) });
  t.after(() => n.close());
  return { n, errors };
}

function assertNoSecrets(err: BastionError): void {
  for (const text of [err.message, JSON.stringify(err.detail), inspect(err, { depth: 5 })]) {
    assert.ok(!text.includes('s3cr3t'), 'webhook header value leaked');
    assert.ok(!text.includes(PASSWORD), 'SMTP password leaked');
    assert.ok(!text.includes('token=abc'), 'webhook URL leaked');
  }
}

describe('AlertNotifier: webhook', () => {
  test('POSTs {alert} as JSON with the configured headers', async (t) => {
    const hook = await webhookServer(t);
    const { n, errors } = notifier(t, { webhook: { url: hook.url, headers: { Authorization: new Secret(SECRET), 'X-Bastion-Env': new Secret('prod') } } });
    const a = alert();
    n.notify(a);
    await n.flush();
    assert.deepEqual(errors, []);
    assert.equal(hook.received.length, 1);
    const got = hook.received[0]!;
    assert.equal(got.method, 'POST');
    assert.equal(got.headers['content-type'], 'application/json');
    assert.equal(got.headers.authorization, SECRET);
    assert.equal(got.headers['x-bastion-env'], 'prod');
    assert.deepEqual(JSON.parse(got.body), { alert: a });
  });

  test('the alert is copied at notify(): later changes are not sent', async (t) => {
    const hook = await webhookServer(t);
    const { n } = notifier(t, { webhook: { url: hook.url } });
    const detail: Record<string, unknown> = { rule: 'r1' };
    n.notify(alert({ detail }));
    detail.rule = 'changed';
    await n.flush();
    assert.deepEqual((JSON.parse(hook.received[0]!.body) as { alert: AdminAlert }).alert.detail, { rule: 'r1' });
  });

  test('500 twice: one retry, then onError ERR_ALERT_DELIVERY naming the channel, without secrets', async (t) => {
    const hook = await webhookServer(t, (_n, _req, res) => {
      res.statusCode = 500;
      res.end('boom');
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url, headers: { Authorization: new Secret(SECRET) } } });
    assert.doesNotThrow(() => n.notify(alert()));
    await n.flush();
    assert.equal(hook.received.length, 2);
    assert.equal(errors.length, 1);
    const err = errors[0]!;
    assert.ok(isBastionError(err, 'ERR_ALERT_DELIVERY'));
    assert.match(err.message, /webhook/);
    assert.deepEqual(err.detail, { channel: 'webhook', reason: 'http_status', status: 500, attempts: 2, kind: 'model.extraction_ban' });
    assertNoSecrets(err);
  });

  test('500 then 200: delivered on the retry, no error', async (t) => {
    const hook = await webhookServer(t, (i, _req, res) => {
      res.statusCode = i === 0 ? 503 : 204;
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url } });
    n.notify(alert());
    await n.flush();
    assert.equal(hook.received.length, 2);
    assert.deepEqual(errors, []);
  });

  test('a 4xx or a redirect is not retried (and the redirect not followed)', async (t) => {
    const hook = await webhookServer(t, (i, _req, res) => {
      if (i === 0) {
        res.statusCode = 401;
      } else {
        res.statusCode = 302;
        res.setHeader('location', 'http://127.0.0.1:1/elsewhere');
      }
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url } });
    n.notify(alert({ kind: 'k1' }));
    n.notify(alert({ kind: 'k2' }));
    await n.flush();
    assert.equal(hook.received.length, 2);
    assert.deepEqual(
      errors.map((e) => [e.code, e.detail]),
      [
        ['ERR_ALERT_DELIVERY', { channel: 'webhook', reason: 'http_status', status: 401, attempts: 1, kind: 'k1' }],
        ['ERR_ALERT_DELIVERY', { channel: 'webhook', reason: 'http_status', status: 302, attempts: 1, kind: 'k2' }],
      ],
    );
  });

  test('connection refused: two attempts, onError with reason network', async (t) => {
    const port = await freePort();
    const { n, errors } = notifier(t, { webhook: { url: `http://127.0.0.1:${port}/x?token=abc`, headers: { Authorization: new Secret(SECRET) } } });
    n.notify(alert());
    await n.flush();
    assert.equal(errors.length, 1);
    assert.ok(isBastionError(errors[0], 'ERR_ALERT_DELIVERY'));
    assert.deepEqual(errors[0].detail, { channel: 'webhook', reason: 'network', code: 'ECONNREFUSED', attempts: 2, kind: 'model.extraction_ban' });
    assertNoSecrets(errors[0]);
  });

  test('a webhook that never answers: each attempt is bounded by timeoutMs', async (t) => {
    const hook = await webhookServer(t, () => undefined);
    const { n, errors } = notifier(t, { webhook: { url: hook.url, timeoutMs: 300 } });
    const t0 = performance.now();
    n.notify(alert());
    await n.flush();
    const took = performance.now() - t0;
    assert.ok(took >= 600 && took < 2_000, `took ${took} ms`);
    assert.equal(hook.received.length, 2);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.detail?.reason, 'network');
    assert.equal(errors[0]!.detail?.attempts, 2);
  });

  test('a slow webhook does not delay notify()', async (t) => {
    const hook = await webhookServer(t, async (_n, _req, res) => {
      await sleep(500);
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url } });
    // notify() is synchronous and returns nothing to await: delivery happens after it returned.
    for (let i = 0; i < 5; i++) assert.equal(n.notify(alert({ kind: `k${i}` })) as unknown, undefined);
    assert.equal(hook.received.length, 0);
    await n.flush();
    assert.deepEqual(hook.received.map((r) => (JSON.parse(r.body) as { alert: AdminAlert }).alert.kind), ['k0', 'k1', 'k2', 'k3', 'k4']);
    assert.deepEqual(errors, []);
  });

  test('queue bound: alerts beyond maxQueue are dropped and reported at once', async (t) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const hook = await webhookServer(t, async (_n, _req, res) => {
      await gate;
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url }, maxQueue: 2 });
    for (let i = 0; i < 5; i++) n.notify(alert({ kind: `k${i}` }));
    assert.deepEqual(
      errors.map((e) => [e.code, e.detail]),
      [2, 3, 4].map((i) => ['ERR_ALERT_DELIVERY', { channel: 'webhook', reason: 'queue_full', kind: `k${i}`, maxQueue: 2 }]),
    );
    release();
    await n.flush();
    assert.deepEqual(hook.received.map((r) => (JSON.parse(r.body) as { alert: AdminAlert }).alert.kind), ['k0', 'k1']);
    // Room again once delivered.
    n.notify(alert({ kind: 'k5' }));
    await n.flush();
    assert.equal(hook.received.length, 3);
    assert.equal(errors.length, 3);
  });

  test('minSeverity: lower alerts are not sent', async (t) => {
    const hook = await webhookServer(t);
    const { n, errors } = notifier(t, { webhook: { url: hook.url }, minSeverity: 'warning' });
    n.notify(alert({ kind: 'i', severity: 'info' }));
    n.notify(alert({ kind: 'w', severity: 'warning' }));
    n.notify(alert({ kind: 'c', severity: 'critical' }));
    await n.flush();
    assert.deepEqual(hook.received.map((r) => (JSON.parse(r.body) as { alert: AdminAlert }).alert.kind), ['w', 'c']);
    assert.deepEqual(errors, []);
  });
});

describe('AlertNotifier: SMTP', () => {
  test('mails a plain-text alert: envelope, subject with kind and severity, body with the fields', async (t) => {
    const smtp = await smtpServer(t);
    const { n, errors } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, secure: false, from: 'bastion@example.test', to: ['ops@example.test', 'sec@example.test'] } });
    n.notify(alert());
    await n.flush();
    assert.deepEqual(errors, []);
    assert.equal(smtp.mails.length, 1);
    const mail = smtp.mails[0]!;
    assert.equal(mail.from, 'bastion@example.test');
    assert.deepEqual(mail.to, ['ops@example.test', 'sec@example.test']);
    const { headers, body } = parseMail(mail.raw);
    assert.equal(headers.get('subject'), '[Bastion] CRITICAL model.extraction_ban');
    assert.equal(headers.get('from'), 'bastion@example.test');
    assert.match(headers.get('content-type') ?? '', /^text\/plain/);
    assert.match(body, /^kind: +"model\.extraction_ban"$/m);
    assert.match(body, /^severity: +"critical"$/m);
    assert.match(body, /^agent: +"agent-1"$/m);
    assert.match(body, /^user: +"alice"$/m);
    assert.match(body, /"banMs": 900000/);
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
    assert.equal(headers.get('subject'), '[Bastion] CRITICAL x  Bcc: evil@example.test'); // CR and LF each became a space
    assert.doesNotMatch(body, /^summary: all fine$/m);
    assert.match(body, /^user: +"mallory\\nsummary: all fine"$/m);
  });

  test('SMTP server down: onError (no hang), and notify never throws', async (t) => {
    const port = await freePort();
    const { n, errors } = notifier(t, { smtp: { host: '127.0.0.1', port, from: 'bastion@example.test', to: ['ops@example.test'], timeoutMs: 2_000 } });
    const t0 = performance.now();
    assert.doesNotThrow(() => n.notify(alert()));
    await n.flush();
    assert.ok(performance.now() - t0 < 2_500);
    assert.equal(errors.length, 1);
    assert.ok(isBastionError(errors[0], 'ERR_ALERT_DELIVERY'));
    assert.match(errors[0].message, /smtp/);
    assert.equal(errors[0].detail?.channel, 'smtp');
    assert.equal(errors[0].detail?.reason, 'smtp');
  });

  test('with credentials, STARTTLS is required: a server without it never sees AUTH', async (t) => {
    const smtp = await smtpServer(t, { requireAuth: true });
    const { n, errors } = notifier(t, { smtp: { host: '127.0.0.1', port: smtp.port, user: 'bastion', password: new Secret(PASSWORD), from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.notify(alert());
    await n.flush();
    assert.deepEqual(smtp.authAttempts, []);
    assert.equal(smtp.mails.length, 0);
    assert.equal(errors.length, 1);
    assert.ok(isBastionError(errors[0], 'ERR_ALERT_DELIVERY'));
    assert.equal(errors[0].detail?.channel, 'smtp');
    assertNoSecrets(errors[0]);
  });

  test('webhook and SMTP together: each gets the alert; one failing does not stop the other', async (t) => {
    const smtp = await smtpServer(t);
    const hook = await webhookServer(t, (_n, _req, res) => {
      res.statusCode = 500;
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url }, smtp: { host: '127.0.0.1', port: smtp.port, from: 'bastion@example.test', to: ['ops@example.test'] } });
    n.notify(alert());
    await n.flush();
    assert.equal(smtp.mails.length, 1);
    assert.equal(hook.received.length, 2);
    assert.deepEqual(errors.map((e) => e.detail?.channel), ['webhook']);
  });
});

describe('AlertNotifier: lifecycle and input', () => {
  test('close waits for queued alerts; later notify is reported as closed; close is idempotent', async (t) => {
    const hook = await webhookServer(t, async (_n, _req, res) => {
      await sleep(200);
      res.end();
    });
    const { n, errors } = notifier(t, { webhook: { url: hook.url } });
    n.notify(alert());
    await n.close();
    assert.equal(hook.received.length, 1);
    n.notify(alert({ kind: 'late' }));
    await n.close();
    assert.deepEqual(errors.map((e) => [e.code, e.detail]), [['ERR_ALERT_DELIVERY', { channel: 'all', reason: 'closed', kind: 'late' }]]);
  });

  test('an alert that is not JSON-serializable is reported, not thrown; an onError that throws is contained', async (t) => {
    const hook = await webhookServer(t);
    const errors: BastionError[] = [];
    const n = new AlertNotifier({
      webhook: { url: hook.url },
      onError: (e) => {
        errors.push(e);
        throw new Error('handler bug');
      },
    });
    t.after(() => n.close());
    assert.doesNotThrow(() => n.notify(alert({ detail: { big: 10n } })));
    assert.doesNotThrow(() => n.notify(null as unknown as AdminAlert));
    n.notify(alert({ kind: 'ok' }));
    await n.flush();
    assert.deepEqual(errors.map((e) => [e.code, e.detail?.reason]), [['ERR_ALERT_DELIVERY', 'invalid_alert'], ['ERR_ALERT_DELIVERY', 'invalid_alert']]);
    assert.equal(hook.received.length, 1);
  });

  test('no channel configured: notify does nothing', async () => {
    const errors: BastionError[] = [];
    const n = new AlertNotifier({ onError: (e) => errors.push(e) });
    n.notify(alert());
    await n.close();
    assert.deepEqual(errors, []);
  });

  test('bad options are ERR_CONFIG_INVALID naming the field, never the value', () => {
    const smtp = { host: '127.0.0.1', port: 25, from: 'a@b.c', to: ['d@e.f'] };
    const cases: [AlertNotifierOptions, string][] = [
      [{ webhook: { url: 'ftp://example.test/hook' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'not a url s3cr3t' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'https://user:s3cr3t@example.test/hook' } }, 'alerts.webhook.url'],
      [{ webhook: { url: 'https://example.test/h', headers: { 'Bad Name': new Secret('v') } } }, 'alerts.webhook.headers'],
      [{ webhook: { url: 'https://example.test/h', headers: { 'Content-Type': new Secret('text/plain') } } }, 'alerts.webhook.headers.Content-Type'],
      [{ webhook: { url: 'https://example.test/h', headers: { Authorization: new Secret('s3cr3t\r\nX-Evil: 1') } } }, 'alerts.webhook.headers.Authorization'],
      [{ webhook: { url: 'https://example.test/h', timeoutMs: 0 } }, 'alerts.webhook.timeoutMs'],
      [{ smtp: { ...smtp, port: 0 } }, 'alerts.email.port'],
      [{ smtp: { ...smtp, to: [] } }, 'alerts.email.to'],
      [{ smtp: { ...smtp, from: '' } }, 'alerts.email.from'],
      [{ smtp: { ...smtp, user: 'u' } }, 'alerts.email'],
      [{ smtp: { ...smtp, password: new Secret(PASSWORD) } }, 'alerts.email'],
      [{ maxQueue: 0 }, 'alerts.maxQueue'],
      [{ minSeverity: 'loud' as never }, 'alerts.minSeverity'],
    ];
    for (const [opts, path] of cases) {
      assert.throws(
        () => new AlertNotifier(opts),
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
