/**
 * Admin alerts (a user banned for a prompt-extraction attempt, a supervisor flag, a placeholder sent to a
 * foreign host, ...) delivered by webhook and/or SMTP mail, off the request path.
 *
 * `notify` snapshots the alert and queues it on each configured channel; it never throws and never
 * waits. Each channel has its own FIFO queue of at most `maxQueue` alerts (the one being delivered
 * included) and delivers one alert at a time, so a slow or dead channel delays only itself and holds at
 * most `maxQueue` alerts in memory. A failed or dropped delivery is reported to `onError` as a
 * `BastionError('ERR_ALERT_DELIVERY')` whose message names the channel and whose detail holds only
 * non-secret facts (channel, alert kind, HTTP status, error code); never a header value, a password, or
 * the webhook URL (which often carries a token in its path).
 *
 * Alerts are also audited by the caller; delivery is best effort by design (an alert lost to a full
 * queue is reported, not retried).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createTransport } from 'nodemailer';
import { Agent, request } from 'undici';
import { BastionError } from '../errors.ts';
import type { Secret } from '../util/secret.ts';

/** Notifier defaults (to move into src/defaults.ts). */
export const ALERT_DEFAULTS = Object.freeze({
  /** Bound on one webhook attempt (connect, headers, body), in ms. Two attempts at most. */
  webhookTimeoutMs: 5_000,
  /** Pause before the webhook retry, in ms. */
  webhookRetryDelayMs: 250,
  /** Bound on one SMTP delivery (connect, greeting, each command, and the whole transaction), in ms. */
  smtpTimeoutMs: 10_000,
  /** Alerts held per channel (the one in flight included); more are dropped and reported. */
  maxQueue: 100,
});

/** Alert severities, lowest first. */
export type AlertSeverity = 'info' | 'warning' | 'critical';

/** One admin alert. Must be JSON-serializable; holds names and ids only, never secret values. */
export interface AdminAlert {
  /** Dotted event name, e.g. `model.extraction_ban`, `model.supervisor_flag`, `egress.placeholder_foreign_host`. */
  readonly kind: string;
  readonly severity: AlertSeverity;
  /** When it happened: ISO 8601. */
  readonly time: string;
  readonly agent: string | null;
  readonly user: string | null;
  /** One line for a human. */
  readonly summary: string;
  /** Structured facts: names and ids only, never secret values. */
  readonly detail: Readonly<Record<string, unknown>>;
}

/** POST each alert as `application/json` `{"alert": AdminAlert}`. */
export interface WebhookTarget {
  /** `http:` or `https:` URL without user info. Never echoed in errors (it may carry a token). */
  readonly url: string;
  /** Extra request headers (e.g. `Authorization`), values resolved from secret references. */
  readonly headers?: Readonly<Record<string, Secret>>;
  /** Bound on each of the (at most two) attempts, in ms. Default 5000. */
  readonly timeoutMs?: number;
}

/** Mail each alert as plain text over SMTP. */
export interface SmtpTarget {
  readonly host: string;
  /** 1..65535, e.g. 587 (submission, STARTTLS) or 465 (implicit TLS). */
  readonly port: number;
  /**
   * `true`: TLS from the first byte (port 465). `false`: STARTTLS when the server offers it; when
   * credentials are set STARTTLS is *required* (no credentials ever cross in clear). Default: `port === 465`.
   * Server certificates are always verified.
   */
  readonly secure?: boolean;
  /** SMTP AUTH user; set together with `password`. */
  readonly user?: string;
  /** SMTP AUTH password; set together with `user`. */
  readonly password?: Secret;
  /** The sender address, e.g. `Bastion <bastion@example.com>`. */
  readonly from: string;
  /** At least one recipient address. */
  readonly to: readonly string[];
  /** Bound on one delivery, in ms. Default 10000. */
  readonly timeoutMs?: number;
}

/** Options of {@link AlertNotifier}. */
export interface AlertNotifierOptions {
  readonly webhook?: WebhookTarget;
  readonly smtp?: SmtpTarget;
  /** Alerts below this severity are not sent (the caller still audits them). Default `info` (all). */
  readonly minSeverity?: AlertSeverity;
  /** Alerts held per channel, the one in flight included; a positive integer. Default 100. */
  readonly maxQueue?: number;
  /**
   * Told about every alert that was dropped or could not be delivered: `ERR_ALERT_DELIVERY`, message naming
   * the channel, `detail: { channel, kind, reason, ... }` with `reason` one of `queue_full`, `closed`,
   * `invalid_alert`, `http_status`, `network`, `smtp`. Called asynchronously for delivery failures and
   * synchronously (from `notify`) for drops; an exception it throws is ignored. Default: `process.emitWarning`.
   */
  readonly onError?: (err: BastionError) => void;
}

type ChannelName = 'webhook' | 'smtp';

/** A delivery failure: `reason` and non-secret facts only. */
class DeliveryFailure extends Error {
  readonly facts: Readonly<Record<string, unknown>>;
  constructor(message: string, facts: Readonly<Record<string, unknown>>) {
    super(message);
    this.name = 'DeliveryFailure';
    this.facts = facts;
  }
}

interface Channel {
  readonly name: ChannelName;
  /** Delivers one alert; rejects with {@link DeliveryFailure}. */
  deliver(alert: AdminAlert): Promise<void>;
  close(): Promise<void>;
}

interface ChannelQueue {
  readonly channel: Channel;
  pending: number;
  tail: Promise<void>;
}

const SEVERITY_RANK: Readonly<Record<AlertSeverity, number>> = { info: 0, warning: 1, critical: 2 };

/**
 * Sends admin alerts to the configured webhook and/or SMTP server, asynchronously and bounded.
 * With neither configured, `notify` does nothing.
 */
export class AlertNotifier {
  readonly #queues: readonly ChannelQueue[];
  readonly #minRank: number;
  readonly #maxQueue: number;
  readonly #onError: (err: BastionError) => void;
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Validates and compiles the options once.
   *
   * @throws BastionError `ERR_CONFIG_INVALID` naming the field (never its value) for: a webhook URL that is
   *   not `http(s)` or holds user info; a header name that is not an HTTP token, a reserved header
   *   (`host`, `content-type`, `content-length`, `transfer-encoding`, `connection`), or a header value
   *   with CR/LF/NUL; an SMTP host/port/from/to out of shape; `user` without `password` or the reverse;
   *   a timeout or `maxQueue` that is not a positive integer; an unknown `minSeverity`.
   */
  constructor(opts: AlertNotifierOptions = {}) {
    const minSeverity = opts.minSeverity ?? 'info';
    if (!Object.hasOwn(SEVERITY_RANK, minSeverity)) invalid('alerts.minSeverity', 'must be info, warning or critical');
    this.#minRank = SEVERITY_RANK[minSeverity];
    this.#maxQueue = opts.maxQueue ?? ALERT_DEFAULTS.maxQueue;
    assertPositiveInteger(this.#maxQueue, 'alerts.maxQueue');
    this.#onError = opts.onError ?? ((err) => process.emitWarning(err.message, { type: 'BastionAlertWarning', code: err.code }));
    const channels: Channel[] = [];
    if (opts.webhook !== undefined) channels.push(webhookChannel(opts.webhook));
    if (opts.smtp !== undefined) channels.push(smtpChannel(opts.smtp));
    this.#queues = channels.map((channel) => ({ channel, pending: 0, tail: Promise.resolve() }));
  }

  /**
   * Queues `alert` on every configured channel unless its severity is below `minSeverity`. Returns at once;
   * never throws. The alert is copied (JSON) now, so later changes to it are not sent. A full channel
   * queue, a closed notifier or an alert that is not JSON-serializable drops it and reports to `onError`.
   */
  notify(alert: AdminAlert): void {
    try {
      if (this.#queues.length === 0) return;
      const kind = typeof alert.kind === 'string' ? alert.kind : '';
      if (this.#closed) {
        this.#report('all', 'closed', 'alert dropped: notifier is closed', { kind });
        return;
      }
      // An unknown severity is sent (as if critical): better a stray alert than a lost one.
      const rank = (SEVERITY_RANK as Record<string, number | undefined>)[alert.severity] ?? SEVERITY_RANK.critical;
      if (rank < this.#minRank) return;
      let snapshot: AdminAlert;
      try {
        snapshot = JSON.parse(JSON.stringify(alert)) as AdminAlert;
      } catch {
        this.#report('all', 'invalid_alert', 'alert dropped: not JSON-serializable', { kind });
        return;
      }
      for (const q of this.#queues) {
        if (q.pending >= this.#maxQueue) {
          this.#report(q.channel.name, 'queue_full', `alert dropped: ${q.channel.name} queue is full`, { kind, maxQueue: this.#maxQueue });
          continue;
        }
        q.pending++;
        q.tail = q.tail.then(() => this.#deliver(q, snapshot));
      }
    } catch {
      // notify must never throw into the request path; a failure here is a bug in the alert object itself.
      this.#report('all', 'invalid_alert', 'alert dropped: malformed alert', {});
    }
  }

  /** Resolves when every alert queued so far has been attempted (delivered or reported). Never rejects. */
  async flush(): Promise<void> {
    await Promise.all(this.#queues.map((q) => q.tail));
  }

  /**
   * Stops accepting alerts (later `notify` calls are reported as `closed`), waits for the queued ones to be
   * attempted (each bounded by its channel's timeout), then releases connections. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      await this.flush();
      await Promise.all(this.#queues.map((q) => q.channel.close()));
    })();
    return this.#closing;
  }

  async #deliver(q: ChannelQueue, alert: AdminAlert): Promise<void> {
    try {
      await q.channel.deliver(alert);
    } catch (err) {
      const facts = err instanceof DeliveryFailure ? err.facts : { reason: 'network' };
      const why = err instanceof DeliveryFailure ? err.message : 'delivery failed';
      this.#report(q.channel.name, String(facts.reason), `alert delivery failed (${q.channel.name}: ${why})`, { kind: alert.kind, ...facts });
    } finally {
      q.pending--;
    }
  }

  #report(channel: ChannelName | 'all', reason: string, message: string, facts: Record<string, unknown>): void {
    try {
      this.#onError(new BastionError('ERR_ALERT_DELIVERY', message, { detail: { ...facts, channel, reason } }));
    } catch {
      // An onError that throws must not break notify() or the delivery queue.
    }
  }
}

// --- webhook ---------------------------------------------------------------------------------------

/** Header names Bastion sets itself or that would break the request framing. */
const RESERVED_HEADERS = new Set(['host', 'content-type', 'content-length', 'transfer-encoding', 'connection']);
/** RFC 9110 §5.6.2 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function webhookChannel(target: WebhookTarget): Channel {
  let url: URL;
  try {
    url = new URL(target.url);
  } catch {
    invalid('alerts.webhook.url', 'is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid('alerts.webhook.url', 'must be an http(s) URL');
  if (url.username !== '' || url.password !== '') invalid('alerts.webhook.url', 'must not hold user info (use a header)');
  const timeoutMs = target.timeoutMs ?? ALERT_DEFAULTS.webhookTimeoutMs;
  assertPositiveInteger(timeoutMs, 'alerts.webhook.timeoutMs');

  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(target.headers ?? {})) {
    const path = `alerts.webhook.headers.${name}`;
    if (!HEADER_NAME.test(name)) invalid('alerts.webhook.headers', 'has a header name that is not an HTTP token');
    if (RESERVED_HEADERS.has(name.toLowerCase())) invalid(path, 'is set by Bastion and cannot be configured');
    const clear = typeof value?.reveal === 'function' ? value.reveal() : undefined;
    if (typeof clear !== 'string') invalid(path, 'must be a secret value');
    if (/[\r\n\0]/.test(clear)) invalid(path, 'holds a CR, LF or NUL');
    headers[name.toLowerCase()] = clear;
  }
  headers['content-type'] = 'application/json';

  // A private pool: no global dispatcher (and its proxy settings), explicit timeouts (undici's defaults are 300 s).
  const agent = new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const href = url.href;

  async function attempt(body: string): Promise<{ ok: true } | { ok: false; retry: boolean; facts: Record<string, unknown>; why: string }> {
    try {
      const res = await request(href, { method: 'POST', headers, body, dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) });
      // Read and discard the answer (bounded by bodyTimeout) so the connection can be reused.
      await res.body.dump();
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
      // Redirects are not followed: the configured URL is the only place an alert (and its headers) may go.
      return { ok: false, retry: res.statusCode >= 500, facts: { reason: 'http_status', status: res.statusCode }, why: `HTTP ${res.statusCode}` };
    } catch (err) {
      const code = errorCode(err);
      return { ok: false, retry: true, facts: { reason: 'network', code }, why: code };
    }
  }

  return {
    name: 'webhook',
    async deliver(alert) {
      const body = JSON.stringify({ alert });
      let result = await attempt(body);
      if (!result.ok && result.retry) {
        await sleep(ALERT_DEFAULTS.webhookRetryDelayMs);
        result = await attempt(body);
        if (!result.ok) throw new DeliveryFailure(`${result.why} after 2 attempts`, { ...result.facts, attempts: 2 });
      }
      if (!result.ok) throw new DeliveryFailure(result.why, { ...result.facts, attempts: 1 });
    },
    close: () => agent.close(),
  };
}

// --- SMTP ------------------------------------------------------------------------------------------

function smtpChannel(target: SmtpTarget): Channel {
  if (typeof target.host !== 'string' || target.host.length === 0 || /[\s/]/.test(target.host)) invalid('alerts.email.host', 'must be a host name or address');
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) invalid('alerts.email.port', 'must be an integer in 1..65535');
  if (typeof target.from !== 'string' || target.from.trim().length === 0) invalid('alerts.email.from', 'must be an address');
  if (!Array.isArray(target.to) || target.to.length === 0 || !target.to.every((a) => typeof a === 'string' && a.trim().length > 0)) {
    invalid('alerts.email.to', 'must list at least one address');
  }
  if ((target.user === undefined) !== (target.password === undefined)) invalid('alerts.email', 'user and password must be set together');
  const timeoutMs = target.timeoutMs ?? ALERT_DEFAULTS.smtpTimeoutMs;
  assertPositiveInteger(timeoutMs, 'alerts.email.timeoutMs');
  const secure = target.secure ?? target.port === 465;
  const auth = target.user !== undefined && target.password !== undefined ? { user: target.user, pass: target.password.reveal() } : undefined;

  const transport = createTransport({
    host: target.host,
    port: target.port,
    secure,
    // With credentials, STARTTLS is required: a stripped STARTTLS fails the delivery instead of sending the password in clear.
    requireTLS: !secure && auth !== undefined,
    ...(auth ? { auth } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
    // Never print the SMTP dialogue (it would hold AUTH lines).
    logger: false,
    debug: false,
  });
  const from = target.from;
  const to = [...target.to];

  return {
    name: 'smtp',
    async deliver(alert) {
      const send = transport.sendMail({ from, to, subject: mailSubject(alert), text: mailBody(alert) });
      let timer: NodeJS.Timeout | undefined;
      const overall = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeliveryFailure('timed out', { reason: 'smtp', code: 'ETIMEDOUT' })), timeoutMs);
      });
      try {
        await Promise.race([send, overall]);
      } catch (err) {
        send.catch(() => undefined); // the socket timeouts end it; its late rejection is not a new failure
        if (err instanceof DeliveryFailure) throw err;
        const facts: Record<string, unknown> = { reason: 'smtp', code: errorCode(err) };
        const responseCode = (err as { responseCode?: unknown }).responseCode;
        if (typeof responseCode === 'number') facts.responseCode = responseCode;
        throw new DeliveryFailure(responseCode === undefined ? String(facts.code) : `${String(facts.code)} ${String(responseCode)}`, facts);
      } finally {
        clearTimeout(timer);
      }
    },
    close() {
      transport.close();
      return Promise.resolve();
    },
  };
}

/** `[Bastion] CRITICAL model.extraction_ban`: kind and severity, control characters removed, at most 200 characters. */
function mailSubject(alert: AdminAlert): string {
  return `[Bastion] ${String(alert.severity).toUpperCase()} ${String(alert.kind)}`.replace(/[\p{Cc}\p{Cf}]/gu, ' ').slice(0, 200);
}

/**
 * The plain-text mail body: one `field: value` line per alert field, strings JSON-quoted so that a
 * newline in a user id or summary cannot forge a line, then `detail` as indented JSON.
 */
function mailBody(alert: AdminAlert): string {
  const line = (name: string, v: unknown): string => `${`${name}:`.padEnd(10)}${JSON.stringify(v ?? null)}`;
  return [
    'Bastion admin alert',
    '',
    line('kind', alert.kind),
    line('severity', alert.severity),
    line('time', alert.time),
    line('agent', alert.agent),
    line('user', alert.user),
    line('summary', alert.summary),
    'detail:',
    JSON.stringify(alert.detail ?? {}, null, 2),
    '',
  ].join('\n');
}

// --- helpers ---------------------------------------------------------------------------------------

function invalid(path: string, what: string): never {
  throw new BastionError('ERR_CONFIG_INVALID', `${path} ${what}`, { detail: { path } });
}

function assertPositiveInteger(v: unknown, path: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) invalid(path, 'must be a positive integer');
}

/** A stable, non-secret name for a network/SMTP error: its `code` (ECONNREFUSED, UND_ERR_…, EAUTH) or `name`. */
function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code)) return code;
    const causeCode = (err as { cause?: { code?: unknown } }).cause?.code;
    if (typeof causeCode === 'string' && /^[A-Z0-9_]{1,64}$/.test(causeCode)) return causeCode;
    const name = (err as { name?: unknown }).name;
    if (typeof name === 'string' && /^[A-Za-z]{1,64}$/.test(name)) return name;
  }
  return 'UNKNOWN';
}
