/**
 * Admin notifications: a call held for approval, an admin alert, an incident action, sent to the
 * configured channels (a signed JSON webhook, a Slack-compatible incoming webhook, SMTP mail) off the
 * request path. docs/notifications.md.
 *
 * Every entry point (`notify`, `approvalPending`, `incident`) builds the event, queues it on each
 * channel that subscribed to its kind and returns at once; none throws or waits. Each channel has its
 * own FIFO queue of at most `maxQueue` events (the one in flight included) and delivers one at a time,
 * each attempt bounded by the channel's timeout, retrying a network error, a timeout or a 5xx with
 * exponential backoff and jitter up to `retry.attempts` attempts; a slow or dead channel delays only
 * itself. Every outcome (delivered, failed, dropped) goes to `onOutcome`, which the gateway audits as
 * a `system` record; outcomes carry non-secret facts only (channel, event kind and id, attempts, HTTP
 * status, error code), never a URL (webhook and Slack URLs carry tokens), a header value or a password.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { createTransport } from 'nodemailer';
import { Agent, request } from 'undici';
import type { AdminAlert, AlertSeverity } from '../alerts/notifier.ts';
import { BastionError } from '../errors.ts';
import { randomId } from '../util/crypto.ts';
import type { Secret } from '../util/secret.ts';
import {
  alertEvent,
  approvalPendingEvent,
  eventText,
  eventTitle,
  incidentEvent,
  NOTIFICATION_KINDS,
  slackMessage,
  type IncidentNotice,
  type NotificationEvent,
  type NotificationKind,
  type PendingApproval,
} from './events.ts';
import { SIGNATURE_HEADER } from './signature.ts';

/** Notifier defaults, each with its unit. */
export const NOTIFY_DEFAULTS = Object.freeze({
  /** Attempts per event and channel (the first included) before it is given up and audited as failed. */
  attempts: 5,
  /** Backoff before the second attempt, in ms; doubled per attempt, capped by `maxDelayMs`, with jitter. */
  baseDelayMs: 1_000,
  /** Longest pause between two attempts, in ms. */
  maxDelayMs: 60_000,
  /** Bound on one webhook or Slack attempt (connect, headers, body), in ms. */
  webhookTimeoutMs: 5_000,
  /** Bound on one SMTP delivery (connect, greeting, each command, and the whole transaction), in ms. */
  smtpTimeoutMs: 10_000,
  /** Events held per channel (the one in flight included); more are dropped and audited. */
  maxQueue: 100,
  /** On close, how long queued deliveries may still run before they are abandoned (audited as failed, `closed`), in ms. */
  closeGraceMs: 3_000,
});

/** Retries of one event on one channel. */
export interface RetryPolicy {
  /** Attempts in all, ≥ 1. */
  readonly attempts: number;
  /** ms before the second attempt. */
  readonly baseDelayMs: number;
  /** ms, the cap of any pause. */
  readonly maxDelayMs: number;
}

/**
 * The pause after the `failed`-th failed attempt (1-based), in ms: "equal jitter" exponential backoff,
 * `d = min(maxDelayMs, baseDelayMs · 2^(failed-1))`, then uniformly in `[d/2, d]`, so instances that
 * failed together do not retry together. `random` returns a number in [0, 1).
 */
export function backoffDelay(failed: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const d = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, Math.min(failed - 1, 30)));
  return Math.round(d / 2 + random() * (d / 2));
}

/** The channel names, as audited (`target` of a `notify.*` record). */
export type ChannelName = 'webhook' | 'slack' | 'email';

/** Which event kinds a channel gets; default all. */
interface Subscribed {
  readonly events?: readonly NotificationKind[];
}

/** POST each event as `application/json` (the event itself), signed in `Bastion-Signature`. */
export interface WebhookTarget extends Subscribed {
  /** `http:` or `https:` URL without user info. Never echoed in errors or audit records (it may carry a token). */
  readonly url: string;
  /** Extra request headers (e.g. `Authorization`), values resolved from secret references. */
  readonly headers?: Readonly<Record<string, Secret>>;
  /** Bound on each attempt, in ms. Default {@link NOTIFY_DEFAULTS.webhookTimeoutMs}. */
  readonly timeoutMs?: number;
}

/** POST each event as a Slack-compatible incoming-webhook message `{text, blocks}`. */
export interface SlackTarget extends Subscribed {
  /** The incoming-webhook URL, a secret (its path is the token): `http(s)`, no user info. */
  readonly url: Secret;
  /** Bound on each attempt, in ms. Default {@link NOTIFY_DEFAULTS.webhookTimeoutMs}. */
  readonly timeoutMs?: number;
}

/** Mail each event as plain text over SMTP. */
export interface SmtpTarget extends Subscribed {
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
  /** Bound on one delivery, in ms. Default {@link NOTIFY_DEFAULTS.smtpTimeoutMs}. */
  readonly timeoutMs?: number;
}

/** Why a delivery failed or an event was dropped. */
export type DeliveryFailureReason = 'http_status' | 'network' | 'timeout' | 'smtp' | 'signing' | 'queue_full' | 'closed' | 'invalid_event';

/** One delivery outcome, as audited: non-secret facts only. */
export interface DeliveryOutcome {
  readonly channel: ChannelName;
  readonly event: NotificationEvent;
  /** `delivered`; `failed` after the last attempt (or a non-retryable answer); `dropped` without an attempt (queue full, closed). */
  readonly status: 'delivered' | 'failed' | 'dropped';
  /** Attempts made (0 when dropped). */
  readonly attempts: number;
  /** From queueing to the outcome, in ms. */
  readonly durationMs: number;
  /** Why, for `failed` and `dropped`. */
  readonly reason?: DeliveryFailureReason;
  /** The last HTTP status, for `http_status`. */
  readonly httpStatus?: number;
  /** The last error code (`ECONNREFUSED`, `UND_ERR_HEADERS_TIMEOUT`, `EAUTH`, ...). */
  readonly code?: string;
  /** The SMTP response code, when the server answered one. */
  readonly smtpCode?: number;
}

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  readonly webhook?: WebhookTarget;
  readonly slack?: SlackTarget;
  readonly smtp?: SmtpTarget;
  /** Alerts below this severity are not sent (they are still audited by whoever raised them); other kinds always are. Default `info`. */
  readonly minSeverity?: AlertSeverity;
  /** Events held per channel, the one in flight included; a positive integer. Default 100. */
  readonly maxQueue?: number;
  /** Retries; each field defaults to {@link NOTIFY_DEFAULTS}. */
  readonly retry?: Partial<RetryPolicy>;
  /** How long {@link Notifier.close} lets queued deliveries run, in ms. Default 3000. */
  readonly closeGraceMs?: number;
  /** `console.publicUrl` (read per event, so a reload applies): links are absolute with it, paths without. */
  readonly publicUrl?: () => string | undefined;
  /**
   * Signs a webhook body (the exact bytes), returning the `Bastion-Signature` value
   * (src/notify/signature.ts `signDetached` with the identity key). Without it webhooks are unsigned.
   * A rejection fails the attempt (`signing`, retried): a webhook is never sent unsigned by accident.
   */
  readonly sign?: (body: Uint8Array) => Promise<string>;
  /**
   * Told every outcome (the gateway audits it as `notify.delivered` / `notify.failed` / `notify.dropped`).
   * Called asynchronously for deliveries and synchronously (from the entry point) for drops. An exception it
   * throws is ignored. It must not notify (that would loop).
   */
  readonly onOutcome?: (outcome: DeliveryOutcome) => void;
}

/** The result of one attempt. */
type Attempt = { ok: true } | { ok: false; retry: boolean; reason: DeliveryFailureReason; httpStatus?: number; code?: string; smtpCode?: number };

interface Channel {
  readonly name: ChannelName;
  readonly events: ReadonlySet<NotificationKind>;
  /** One attempt, bounded by the channel's timeout and by `signal` (the notifier closing). Never rejects. */
  attempt(event: NotificationEvent, signal: AbortSignal): Promise<Attempt>;
  close(): Promise<void>;
}

interface ChannelQueue {
  readonly channel: Channel;
  pending: number;
  tail: Promise<void>;
}

const SEVERITY_RANK: Readonly<Record<AlertSeverity, number>> = { info: 0, warning: 1, critical: 2 };

/**
 * Sends notifications to the configured channels, asynchronously, bounded and retried.
 * With no channel configured every entry point does nothing.
 */
export class Notifier {
  readonly #queues: readonly ChannelQueue[];
  readonly #minRank: number;
  readonly #maxQueue: number;
  readonly #retry: RetryPolicy;
  readonly #closeGraceMs: number;
  readonly #publicUrl: () => string | undefined;
  readonly #onOutcome: (o: DeliveryOutcome) => void;
  /** Aborted when the close grace ends: pauses and attempts in flight stop. */
  readonly #abort = new AbortController();
  #closed = false;
  #closing: Promise<void> | undefined;

  /**
   * Validates and compiles the options once.
   *
   * @throws BastionError `ERR_CONFIG_INVALID` naming the field (never its value) for: a webhook or Slack
   *   URL that is not `http(s)` or holds user info; a header name that is not an HTTP token, a reserved
   *   header, or a header value with CR/LF/NUL; an SMTP host/port/from/to out of shape; `user` without
   *   `password` or the reverse; a timeout, `maxQueue` or retry field that is not a positive integer;
   *   an unknown `minSeverity` or event kind; an empty `events` list.
   */
  constructor(opts: NotifierOptions = {}) {
    const minSeverity = opts.minSeverity ?? 'info';
    if (!Object.hasOwn(SEVERITY_RANK, minSeverity)) invalid('alerts.minSeverity', 'must be info, warning or critical');
    this.#minRank = SEVERITY_RANK[minSeverity];
    this.#maxQueue = opts.maxQueue ?? NOTIFY_DEFAULTS.maxQueue;
    assertPositiveInteger(this.#maxQueue, 'alerts.maxQueue');
    this.#retry = {
      attempts: opts.retry?.attempts ?? NOTIFY_DEFAULTS.attempts,
      baseDelayMs: opts.retry?.baseDelayMs ?? NOTIFY_DEFAULTS.baseDelayMs,
      maxDelayMs: opts.retry?.maxDelayMs ?? NOTIFY_DEFAULTS.maxDelayMs,
    };
    assertPositiveInteger(this.#retry.attempts, 'retry.attempts');
    assertPositiveInteger(this.#retry.baseDelayMs, 'retry.baseDelayMs');
    assertPositiveInteger(this.#retry.maxDelayMs, 'retry.maxDelayMs');
    this.#closeGraceMs = opts.closeGraceMs ?? NOTIFY_DEFAULTS.closeGraceMs;
    assertPositiveInteger(this.#closeGraceMs, 'closeGraceMs');
    const publicUrl = opts.publicUrl ?? (() => undefined);
    this.#publicUrl = () => {
      try {
        const u = publicUrl();
        return u !== undefined && /^https?:\/\//.test(u) && URL.canParse(u) ? u : undefined;
      } catch {
        return undefined;
      }
    };
    this.#onOutcome = opts.onOutcome ?? (() => undefined);
    const channels: Channel[] = [];
    if (opts.webhook !== undefined) channels.push(webhookChannel(opts.webhook, opts.sign));
    if (opts.slack !== undefined) channels.push(slackChannel(opts.slack));
    if (opts.smtp !== undefined) channels.push(smtpChannel(opts.smtp));
    this.#queues = channels.map((channel) => ({ channel, pending: 0, tail: Promise.resolve() }));
  }

  /** The configured channels. */
  get channels(): readonly ChannelName[] {
    return this.#queues.map((q) => q.channel.name);
  }

  /**
   * Sends an admin alert (kind `alert`) unless its severity is below `minSeverity`. The alert is copied
   * (JSON) now. Returns at once; never throws. The `{notify(alert)}` shape every alert source takes.
   */
  notify(alert: AdminAlert): void {
    if (this.#queues.length === 0) return;
    try {
      // An unknown severity is sent (as if critical): better a stray alert than a lost one.
      const rank = (SEVERITY_RANK as Record<string, number | undefined>)[alert.severity] ?? SEVERITY_RANK.critical;
      if (rank < this.#minRank) return;
    } catch {
      // a malformed alert is reported below
    }
    this.#build('alert', () => alertEvent(alert, randomId(), this.#publicUrl()));
  }

  /**
   * Announces a call held for approval (kind `approval.pending`): tool, agent, end user, approval id and
   * expiry, never the arguments. Called by the approval queue when it creates an approval. Never throws.
   */
  approvalPending(approval: PendingApproval): void {
    if (this.#queues.length === 0) return;
    this.#build('approval.pending', () => approvalPendingEvent(approval, randomId(), this.#publicUrl()));
  }

  /**
   * Announces an incident action (kind `incident`): `{agent, action: 'isolate'|'restore'|'rotate'|'snapshot',
   * reason?, by, detail?}`; `detail` holds names only (e.g. the secrets marked for rotation). Never throws.
   */
  incident(notice: IncidentNotice): void {
    if (this.#queues.length === 0) return;
    this.#build('incident', () => incidentEvent(notice, randomId(), this.#publicUrl()));
  }

  /** Queues a built event on every channel subscribed to its kind. Returns at once; never throws. */
  send(event: NotificationEvent): void {
    const queued = Date.now();
    for (const q of this.#queues) {
      if (!q.channel.events.has(event.kind)) continue;
      if (this.#closed) {
        this.#report({ channel: q.channel.name, event, status: 'dropped', attempts: 0, durationMs: 0, reason: 'closed' });
        continue;
      }
      if (q.pending >= this.#maxQueue) {
        this.#report({ channel: q.channel.name, event, status: 'dropped', attempts: 0, durationMs: 0, reason: 'queue_full' });
        continue;
      }
      q.pending++;
      q.tail = q.tail.then(() => this.#deliver(q, event, queued));
    }
  }

  /** Resolves when every event queued so far has been delivered or given up. Never rejects. */
  async flush(): Promise<void> {
    await Promise.all(this.#queues.map((q) => q.tail));
  }

  /**
   * Stops accepting events (later ones are dropped as `closed`), lets queued deliveries run for
   * `closeGraceMs`, then abandons what is left (each reported `failed`, reason `closed`) and releases
   * connections. Resolves after every outcome is reported. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      const grace = new AbortController();
      const drained = this.flush();
      await Promise.race([drained, sleep(this.#closeGraceMs, undefined, { signal: grace.signal }).catch(() => undefined)]);
      grace.abort();
      this.#abort.abort();
      await drained;
      await Promise.all(this.#queues.map((q) => q.channel.close().catch(() => undefined)));
    })();
    return this.#closing;
  }

  #build(kind: NotificationKind, build: () => NotificationEvent): void {
    let event: NotificationEvent;
    try {
      event = build();
    } catch {
      // Not JSON-serializable or malformed: reported as a drop of a minimal event.
      const stub = { id: randomId(), kind, time: new Date().toISOString(), severity: 'critical', agent: null, summary: 'malformed notification', link: '' } as unknown as NotificationEvent;
      for (const q of this.#queues) this.#report({ channel: q.channel.name, event: stub, status: 'dropped', attempts: 0, durationMs: 0, reason: 'invalid_event' });
      return;
    }
    this.send(event);
  }

  async #deliver(q: ChannelQueue, event: NotificationEvent, queued: number): Promise<void> {
    const signal = this.#abort.signal;
    let attempts = 0;
    let last: Attempt = { ok: false, retry: false, reason: 'closed' };
    try {
      while (!signal.aborted) {
        attempts++;
        last = await q.channel.attempt(event, signal);
        if (last.ok || !last.retry || attempts >= this.#retry.attempts) break;
        await sleep(backoffDelay(attempts, this.#retry), undefined, { signal }).catch(() => undefined);
      }
      if (signal.aborted && !last.ok) last = { ok: false, retry: false, reason: 'closed' };
      const base = { channel: q.channel.name, event, attempts, durationMs: Date.now() - queued };
      if (last.ok) this.#report({ ...base, status: 'delivered' });
      else {
        const { reason, httpStatus, code, smtpCode } = last;
        this.#report({ ...base, status: 'failed', reason, ...(httpStatus !== undefined ? { httpStatus } : {}), ...(code !== undefined ? { code } : {}), ...(smtpCode !== undefined ? { smtpCode } : {}) });
      }
    } finally {
      q.pending--;
    }
  }

  #report(outcome: DeliveryOutcome): void {
    try {
      this.#onOutcome(outcome);
    } catch {
      // An onOutcome that throws must not break an entry point or a delivery queue.
    }
  }
}

// --- webhook and Slack -------------------------------------------------------------------------------

/** Header names Bastion sets itself or that would break the request framing. */
const RESERVED_HEADERS = new Set(['host', 'content-type', 'content-length', 'transfer-encoding', 'connection', SIGNATURE_HEADER]);
/** RFC 9110 §5.6.2 token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function subscribed(events: readonly NotificationKind[] | undefined, path: string): ReadonlySet<NotificationKind> {
  if (events === undefined) return new Set(NOTIFICATION_KINDS);
  if (!Array.isArray(events) || events.length === 0) invalid(`${path}.events`, 'must list at least one event kind');
  for (const k of events) if (!(NOTIFICATION_KINDS as readonly string[]).includes(k)) invalid(`${path}.events`, `must hold only ${NOTIFICATION_KINDS.join(', ')}`);
  return new Set(events);
}

function checkedUrl(raw: string, path: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    invalid(path, 'is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') invalid(path, 'must be an http(s) URL');
  if (url.username !== '' || url.password !== '') invalid(path, 'must not hold user info (use a header)');
  return url.href;
}

/**
 * One JSON POST to `href` over `agent`: 2xx delivered; 5xx, 408, 429, a network error or a timeout
 * retried; another status (4xx, a redirect: never followed, the configured URL is the only place an
 * event and its headers may go) failed at once.
 */
async function postJson(agent: Agent, href: string, headers: Record<string, string>, body: string, timeoutMs: number, signal: AbortSignal): Promise<Attempt> {
  try {
    const res = await request(href, { method: 'POST', headers, body, dispatcher: agent, signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), signal]) });
    // Read and discard the answer (bounded by bodyTimeout) so the connection can be reused.
    await res.body.dump();
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true };
    const retry = res.statusCode >= 500 || res.statusCode === 408 || res.statusCode === 429;
    return { ok: false, retry, reason: 'http_status', httpStatus: res.statusCode };
  } catch (err) {
    const code = errorCode(err);
    return { ok: false, retry: true, reason: /TIMEOUT/i.test(code) || code === 'TimeoutError' ? 'timeout' : 'network', code };
  }
}

/** A private pool: no global dispatcher (and its proxy settings), explicit timeouts (undici's defaults are 300 s). */
function pool(timeoutMs: number): Agent {
  return new Agent({ connect: { timeout: timeoutMs }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
}

function webhookChannel(target: WebhookTarget, sign: NotifierOptions['sign']): Channel {
  const href = checkedUrl(target.url, 'alerts.webhook.url');
  const timeoutMs = target.timeoutMs ?? NOTIFY_DEFAULTS.webhookTimeoutMs;
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
  const events = subscribed(target.events, 'alerts.webhook');
  const agent = pool(timeoutMs);
  return {
    name: 'webhook',
    events,
    async attempt(event, signal) {
      const body = JSON.stringify(event);
      let signed: Record<string, string> = headers;
      if (sign !== undefined) {
        try {
          signed = { ...headers, [SIGNATURE_HEADER]: await sign(new TextEncoder().encode(body)) };
        } catch (err) {
          return { ok: false, retry: true, reason: 'signing', code: errorCode(err) };
        }
      }
      return postJson(agent, href, signed, body, timeoutMs, signal);
    },
    close: () => agent.close(),
  };
}

function slackChannel(target: SlackTarget): Channel {
  const clear = typeof target.url?.reveal === 'function' ? target.url.reveal() : undefined;
  if (typeof clear !== 'string') invalid('alerts.slack.url', 'must be a secret value');
  const href = checkedUrl(clear, 'alerts.slack.url');
  const timeoutMs = target.timeoutMs ?? NOTIFY_DEFAULTS.webhookTimeoutMs;
  assertPositiveInteger(timeoutMs, 'alerts.slack.timeoutMs');
  const events = subscribed(target.events, 'alerts.slack');
  const agent = pool(timeoutMs);
  return {
    name: 'slack',
    events,
    attempt: (event, signal) => postJson(agent, href, { 'content-type': 'application/json' }, JSON.stringify(slackMessage(event)), timeoutMs, signal),
    close: () => agent.close(),
  };
}

// --- SMTP --------------------------------------------------------------------------------------------

function smtpChannel(target: SmtpTarget): Channel {
  if (typeof target.host !== 'string' || target.host.length === 0 || /[\s/]/.test(target.host)) invalid('alerts.email.host', 'must be a host name or address');
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) invalid('alerts.email.port', 'must be an integer in 1..65535');
  if (typeof target.from !== 'string' || target.from.trim().length === 0) invalid('alerts.email.from', 'must be an address');
  if (!Array.isArray(target.to) || target.to.length === 0 || !target.to.every((a) => typeof a === 'string' && a.trim().length > 0)) {
    invalid('alerts.email.to', 'must list at least one address');
  }
  if ((target.user === undefined) !== (target.password === undefined)) invalid('alerts.email', 'user and password must be set together');
  const timeoutMs = target.timeoutMs ?? NOTIFY_DEFAULTS.smtpTimeoutMs;
  assertPositiveInteger(timeoutMs, 'alerts.email.timeoutMs');
  const events = subscribed(target.events, 'alerts.email');
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
    name: 'email',
    events,
    async attempt(event, signal) {
      const send = transport.sendMail({ from, to, subject: eventTitle(event), text: eventText(event) });
      let timer: NodeJS.Timeout | undefined;
      let onAbort: (() => void) | undefined;
      const bounded = new Promise<'timeout' | 'closed'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
        onAbort = () => resolve('closed');
        signal.addEventListener('abort', onAbort, { once: true });
      });
      try {
        const r = await Promise.race([send, bounded]);
        if (r === 'timeout') return { ok: false, retry: true, reason: 'timeout', code: 'ETIMEDOUT' };
        if (r === 'closed') return { ok: false, retry: false, reason: 'closed' };
        return { ok: true };
      } catch (err) {
        const responseCode = (err as { responseCode?: unknown }).responseCode;
        // A permanent SMTP answer (5xx) is not retried; a transient one (4xx) or a network error is.
        const permanent = typeof responseCode === 'number' && responseCode >= 500;
        return { ok: false, retry: !permanent, reason: 'smtp', code: errorCode(err), ...(typeof responseCode === 'number' ? { smtpCode: responseCode } : {}) };
      } finally {
        send.catch(() => undefined); // the socket timeouts end it; its late rejection is not a new failure
        clearTimeout(timer);
        if (onAbort) signal.removeEventListener('abort', onAbort);
      }
    },
    close() {
      transport.close();
      return Promise.resolve();
    },
  };
}

// --- helpers -----------------------------------------------------------------------------------------

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
