/**
 * The gateway's notifier, built from config `alerts`: webhooks signed with the identity key, every
 * delivery outcome audited as a `system` record. The composition root (src/server/gateway.ts) opens it
 * once; it is reachable as `gateway.notifications`.
 *
 * No loop: an outcome is only audited (batched), never notified; a failing audit write is reported by
 * the audit step, at most once a minute, so `audit.write_failed` alerts cannot feed on themselves.
 */
import type { AuditEvent } from '../audit/types.ts';
import type { ResolvedAlerts } from '../config/types.ts';
import type { SigningKey } from '../identity/keys.ts';
import { Notifier, type DeliveryOutcome, type RetryPolicy } from './notifier.ts';
import { signDetached } from './signature.ts';

/** Overrides of the notifier's timing (tests, benches); production uses NOTIFY_DEFAULTS. */
export interface NotifierTuning {
  readonly retry?: Partial<RetryPolicy>;
  /** Bound on one attempt of every channel, in ms. */
  readonly timeoutMs?: number;
  readonly closeGraceMs?: number;
  readonly maxQueue?: number;
  /** Told a one-line, non-secret message for each failed or dropped delivery (`bastion serve` prints it on stderr). */
  readonly onFailure?: (line: string) => void;
}

/** What {@link openNotifier} needs from the gateway. */
export interface NotifierDeps {
  /** The identity key ring: the current key signs webhook bodies. */
  readonly identity: { signingKey(): Promise<Pick<SigningKey, 'kid' | 'cryptoKey'>> };
  /** The audit step's batched write. */
  readonly audit: (event: AuditEvent) => void;
  /** The current `alerts.publicUrl` (read per event). */
  readonly publicUrl: () => string | undefined;
}

/**
 * Builds the notifier for `alerts`.
 * @throws BastionError `ERR_CONFIG_INVALID` naming the field, as {@link Notifier}'s constructor.
 */
export function openNotifier(alerts: ResolvedAlerts, deps: NotifierDeps, tuning: NotifierTuning = {}): Notifier {
  const t = tuning.timeoutMs !== undefined ? { timeoutMs: tuning.timeoutMs } : {};
  return new Notifier({
    minSeverity: alerts.minSeverity,
    ...(alerts.webhook ? { webhook: { ...alerts.webhook, ...t } } : {}),
    ...(alerts.slack ? { slack: { ...alerts.slack, ...t } } : {}),
    ...(alerts.email ? { smtp: { ...alerts.email, ...t } } : {}),
    ...(tuning.retry ? { retry: tuning.retry } : {}),
    ...(tuning.closeGraceMs !== undefined ? { closeGraceMs: tuning.closeGraceMs } : {}),
    ...(tuning.maxQueue !== undefined ? { maxQueue: tuning.maxQueue } : {}),
    publicUrl: deps.publicUrl,
    sign: async (body) => signDetached(body, await deps.identity.signingKey()),
    onOutcome: (o) => {
      deps.audit(outcomeAuditEvent(o));
      if (o.status !== 'delivered') tuning.onFailure?.(outcomeLine(o));
    },
  });
}

/** What the event is about, for the audit record: the approval id, the alert kind, or the incident action and agent. */
function subject(o: DeliveryOutcome): Record<string, unknown> {
  const e = o.event;
  if (e.kind === 'approval.pending') return { approvalId: e.approval?.id };
  if (e.kind === 'alert') return { alertKind: e.alert?.kind };
  return { action: e.incident?.action, agent: e.incident?.agent };
}

/**
 * The audit record of one outcome: door `system`, method `notify.delivered` / `notify.failed` /
 * `notify.dropped`, target the channel; detail `{channel, kind, notification, attempts, ...subject,
 * reason?, status?, code?, smtpCode?}`. Never a URL, header or password.
 */
export function outcomeAuditEvent(o: DeliveryOutcome): AuditEvent {
  const ok = o.status === 'delivered';
  return {
    time: new Date().toISOString(),
    door: 'system',
    agent: null,
    method: `notify.${o.status}`,
    target: o.channel,
    decision: ok ? { effect: 'allow', reason: 'system', rule: 'notifications' } : { effect: 'deny', reason: 'alert.delivery', rule: 'notifications' },
    outcome: ok ? 'ok' : o.reason === 'timeout' ? 'timeout' : 'error',
    durationMs: o.durationMs,
    detail: {
      channel: o.channel,
      kind: o.event.kind,
      notification: o.event.id,
      attempts: o.attempts,
      ...subject(o),
      ...(o.reason !== undefined ? { reason: o.reason } : {}),
      ...(o.httpStatus !== undefined ? { status: o.httpStatus } : {}),
      ...(o.code !== undefined ? { code: o.code } : {}),
      ...(o.smtpCode !== undefined ? { smtpCode: o.smtpCode } : {}),
    },
  };
}

/** `notification delivery failed (webhook, approval.pending: HTTP 500 after 5 attempts)`. */
function outcomeLine(o: DeliveryOutcome): string {
  const why = o.httpStatus !== undefined ? `HTTP ${o.httpStatus}` : o.code !== undefined ? `${o.reason ?? 'error'} ${o.code}` : (o.reason ?? 'error');
  return `notification ${o.status === 'dropped' ? 'dropped' : 'delivery failed'} (${o.channel}, ${o.event.kind}: ${why}${o.attempts > 0 ? ` after ${o.attempts} attempt${o.attempts === 1 ? '' : 's'}` : ''})`;
}
