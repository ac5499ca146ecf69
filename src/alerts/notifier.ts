/**
 * Admin alerts (a user banned for a prompt-extraction attempt, a supervisor flag, a placeholder sent to a
 * foreign host, an anomaly rule firing, ...): their shape, and the one method every alert source calls.
 *
 * Delivery (webhook signed with the identity key, Slack-compatible webhook, SMTP mail; retries, audit) is
 * the gateway's notifier, `gateway.notifications` (src/notify/notifier.ts, docs/notifications.md), which
 * also announces pending approvals and incidents. Alerts are also audited by whoever raises them.
 */

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

/**
 * What an alert source is handed: `notify` queues the alert and returns at once, never throws
 * (`gateway.notifications` is one).
 */
export interface AlertNotifier {
  notify(alert: AdminAlert): void;
}
