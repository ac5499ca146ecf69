/**
 * What Bastion tells admins about, as values: a call held for approval, an admin alert, an incident
 * action. Pure: builds the event (with its console link) and renders it as text for mail and chat.
 *
 * An event holds names, ids and times only: never argument values (a held call's arguments stay in
 * the approval store and the console), never secret values.
 */
import type { AdminAlert, AlertSeverity } from '../alerts/notifier.ts';

/** The event kinds a channel can subscribe to (`alerts.<channel>.events`). */
export const NOTIFICATION_KINDS = ['approval.pending', 'alert', 'incident'] as const;

/** One of {@link NOTIFICATION_KINDS}. */
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** What every event carries. */
interface EventBase {
  /** Random id of this notification (not of the approval or alert): a receiver dedupes retried deliveries by it. */
  readonly id: string;
  readonly kind: NotificationKind;
  /** When it happened: ISO 8601. */
  readonly time: string;
  readonly severity: AlertSeverity;
  /** The agent concerned, when there is one. */
  readonly agent: string | null;
  /** One line for a human (no argument values). */
  readonly summary: string;
  /** The console page for it: absolute with `console.publicUrl`, else a path (`/console/#/...`). */
  readonly link: string;
}

/** A call held until an admin decides (src/approvals/queue.ts). */
export interface ApprovalPendingEvent extends EventBase {
  readonly kind: 'approval.pending';
  readonly approval: {
    readonly id: string;
    readonly agent: string;
    /** The end user the call is for, or null. */
    readonly user: string | null;
    /** The exposed tool name. */
    readonly tool: string;
    /** ISO 8601. */
    readonly createdAt: string;
    /** ISO 8601: undecided by then, the call is refused. */
    readonly expiresAt: string;
  };
}

/** An admin alert (a ban, a supervisor flag, a credential sent to a foreign host, an anomaly...). */
export interface AlertEvent extends EventBase {
  readonly kind: 'alert';
  readonly alert: AdminAlert;
}

/** Incident actions (issue 15 part 3: `bastion incident ...` and the console). */
export type IncidentAction = 'isolate' | 'restore' | 'rotate' | 'snapshot';

/** An incident action taken on an agent. */
export interface IncidentEvent extends EventBase {
  readonly kind: 'incident';
  readonly incident: {
    readonly agent: string;
    readonly action: IncidentAction;
    /** The reason given, or null. */
    readonly reason: string | null;
    /** Who acted: `admin`, an admin's identity, or `anomaly:RULE` for an automatic isolation. */
    readonly by: string;
    /** Non-secret facts (e.g. `{secrets: ['github']}` for a rotation: names only). */
    readonly detail: Readonly<Record<string, unknown>>;
  };
}

/** Any notification. */
export type NotificationEvent = ApprovalPendingEvent | AlertEvent | IncidentEvent;

/** What {@link incidentEvent} takes: the API the incident module calls through `gateway.notifications.incident`. */
export interface IncidentNotice {
  readonly agent: string;
  readonly action: IncidentAction;
  readonly reason?: string | null;
  readonly by: string;
  readonly detail?: Readonly<Record<string, unknown>>;
  /** ISO 8601; default now. */
  readonly time?: string;
}

/** The approval fields {@link approvalPendingEvent} reads (an `ApprovalRecord` fits). Times in epoch ms. */
export interface PendingApproval {
  readonly id: string;
  readonly agent: string;
  readonly user: string | null;
  readonly tool: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

/**
 * The console link for a page: `${publicUrl}/console/#/${page}` with `publicUrl` (an absolute
 * http(s) URL; a trailing slash and any path are kept, a query or fragment dropped), else the
 * path `/console/#/${page}`. Each segment of `page` is percent-encoded.
 */
export function consoleLink(publicUrl: string | undefined, page: readonly string[]): string {
  const path = `/console/#/${page.map((p) => encodeURIComponent(p)).join('/')}`;
  if (publicUrl === undefined) return path;
  const base = new URL(publicUrl);
  return `${base.origin}${base.pathname.replace(/\/+$/, '')}${path}`;
}

/** The `approval.pending` event for `a` (never its arguments). */
export function approvalPendingEvent(a: PendingApproval, id: string, publicUrl?: string): ApprovalPendingEvent {
  return {
    id,
    kind: 'approval.pending',
    time: new Date(a.createdAt).toISOString(),
    severity: 'warning',
    agent: a.agent,
    summary: `agent ${a.agent} waits for approval to call ${a.tool}${a.user !== null ? ` for user ${a.user}` : ''} (until ${new Date(a.expiresAt).toISOString()})`,
    link: consoleLink(publicUrl, ['approvals', a.id]),
    approval: { id: a.id, agent: a.agent, user: a.user, tool: a.tool, createdAt: new Date(a.createdAt).toISOString(), expiresAt: new Date(a.expiresAt).toISOString() },
  };
}

/** The `alert` event for `alert` (a JSON copy, so later changes are not sent). @throws TypeError when it is not JSON-serializable. */
export function alertEvent(alert: AdminAlert, id: string, publicUrl?: string): AlertEvent {
  const copy = JSON.parse(JSON.stringify(alert)) as AdminAlert;
  return {
    id,
    kind: 'alert',
    time: typeof copy.time === 'string' ? copy.time : new Date().toISOString(),
    severity: copy.severity,
    agent: typeof copy.agent === 'string' && copy.agent !== '' ? copy.agent : null,
    summary: String(copy.summary),
    link: consoleLink(publicUrl, ['alerts']),
    alert: copy,
  };
}

/** The `incident` event for `n`: `isolate` and `rotate` are critical, the others info. @throws TypeError when `detail` is not JSON-serializable. */
export function incidentEvent(n: IncidentNotice, id: string, publicUrl?: string): IncidentEvent {
  const detail = JSON.parse(JSON.stringify(n.detail ?? {})) as Record<string, unknown>;
  const reason = n.reason ?? null;
  const verb = { isolate: 'isolated', restore: 'restored', rotate: 'emergency rotation started for', snapshot: 'forensic snapshot taken of' }[n.action] ?? n.action;
  return {
    id,
    kind: 'incident',
    time: n.time ?? new Date().toISOString(),
    severity: n.action === 'isolate' || n.action === 'rotate' ? 'critical' : 'info',
    agent: n.agent,
    summary: `agent ${n.agent} ${verb} by ${n.by}${reason !== null ? `: ${reason}` : ''}`,
    link: consoleLink(publicUrl, ['incidents', n.agent]),
    incident: { agent: n.agent, action: n.action, reason, by: n.by, detail },
  };
}

/** Control and format characters replaced by spaces: a value cannot forge a header or a line. */
function oneLine(s: unknown, max: number): string {
  return String(s).replace(/[\p{Cc}\p{Cf}]/gu, ' ').slice(0, max);
}

/** A title such as `[Bastion] APPROVAL PENDING deploy (agent ci)`: kind and subject, one line, at most 200 characters. */
export function eventTitle(e: NotificationEvent): string {
  switch (e.kind) {
    case 'approval.pending':
      return oneLine(`[Bastion] APPROVAL PENDING ${e.approval.tool} (agent ${e.approval.agent})`, 200);
    case 'alert':
      return oneLine(`[Bastion] ${String(e.alert.severity).toUpperCase()} ${String(e.alert.kind)}`, 200);
    case 'incident':
      return oneLine(`[Bastion] INCIDENT ${e.incident.action} agent ${e.incident.agent}`, 200);
  }
}

/**
 * The plain-text mail body: one `field: value` line per fact, strings JSON-quoted so that a newline
 * in a user id or summary cannot forge a line; then the console link and structured detail as JSON.
 */
export function eventText(e: NotificationEvent): string {
  const line = (name: string, v: unknown): string => `${`${name}:`.padEnd(11)}${JSON.stringify(v ?? null)}`;
  const head = [`Bastion ${e.kind === 'approval.pending' ? 'approval request' : e.kind === 'alert' ? 'admin alert' : 'incident'}`, ''];
  const link = ['', `Console: ${e.link}`, ''];
  switch (e.kind) {
    case 'approval.pending':
      return [...head, line('summary', e.summary), line('approval', e.approval.id), line('agent', e.approval.agent), line('user', e.approval.user), line('tool', e.approval.tool), line('created', e.approval.createdAt), line('expires', e.approval.expiresAt), ...link].join('\n');
    case 'alert':
      return [
        ...head,
        line('kind', e.alert.kind),
        line('severity', e.alert.severity),
        line('time', e.alert.time),
        line('agent', e.alert.agent),
        line('user', e.alert.user),
        line('summary', e.alert.summary),
        'detail:',
        JSON.stringify(e.alert.detail ?? {}, null, 2),
        ...link,
      ].join('\n');
    case 'incident':
      return [...head, line('action', e.incident.action), line('agent', e.incident.agent), line('by', e.incident.by), line('reason', e.incident.reason), line('time', e.time), 'detail:', JSON.stringify(e.incident.detail, null, 2), ...link].join('\n');
  }
}

/** Slack mrkdwn escaping (`&`, `<`, `>`): a user id such as `<!channel>` cannot ping or forge a link. */
function slackEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A Slack-compatible incoming-webhook message: `text` (the fallback for notifications) and Block Kit
 * `blocks`: a header, the summary, context facts, and an "Open in console" button when the link is
 * absolute (Slack needs an absolute button URL; a relative link is shown as text instead).
 */
export function slackMessage(e: NotificationEvent): { text: string; blocks: unknown[] } {
  const title = eventTitle(e).replace(/^\[Bastion\] /, '');
  const absolute = /^https?:\/\//.test(e.link);
  const facts: string[] = [`*severity:* ${e.severity}`];
  if (e.agent !== null) facts.push(`*agent:* ${slackEscape(oneLine(e.agent, 200))}`);
  if (e.kind === 'approval.pending') facts.push(`*approval:* ${slackEscape(e.approval.id)}`, `*expires:* ${e.approval.expiresAt}`);
  if (e.kind === 'alert' && e.alert.user !== null) facts.push(`*user:* ${slackEscape(oneLine(e.alert.user, 200))}`);
  const summary = slackEscape(oneLine(e.summary, 2000));
  const blocks: unknown[] = [
    { type: 'header', text: { type: 'plain_text', text: oneLine(`Bastion: ${title}`, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: absolute ? summary : `${summary}\nConsole: ${slackEscape(e.link)}` } },
    { type: 'context', elements: facts.map((text) => ({ type: 'mrkdwn', text })) },
  ];
  if (absolute) blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in console' }, url: e.link }] });
  return { text: `${slackEscape(oneLine(title, 200))}: ${summary} ${absolute ? `<${e.link}|Open in console>` : slackEscape(e.link)}`, blocks };
}
