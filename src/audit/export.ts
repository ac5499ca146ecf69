/**
 * Audit export (docs/audit.md "Export"): stored rows as JSON Lines, or mapped
 * to OCSF 1.3.0 events. Pure mapping plus a streaming reader; the CLI
 * (`bastion audit export`) writes the lines.
 *
 * OCSF classes used (schema.ocsf.io, 1.3.0):
 * - 4002 HTTP Activity (category 4 Network Activity): network door records;
 *   `activity_id` from the HTTP method (1 Connect … 8 Trace, 99 Other);
 * - 3002 Authentication (category 3 Identity & Access Management): requests
 *   refused because the agent did not authenticate (`auth.missing`, `auth.invalid`),
 *   `activity_id` 1 Logon, `status_id` 2 Failure;
 * - 6003 API Activity (category 6 Application Activity): everything else
 *   (tool calls, model requests, agent-to-agent messages, admin and system
 *   events), `activity_id` 99 Other with the method as `activity_name`.
 * Every event carries the Security Control profile's `action_id` (1 Allowed,
 * 2 Denied) and `disposition_id` (1 Allowed, 2 Blocked), and the whole stored
 * record, chain fields included, under `unmapped.bastion`.
 */
import type { AuditStore } from './store.ts';
import { isTombstone, type AuditRow } from './retention.ts';
import type { AuditRecord } from './types.ts';

/** The OCSF schema version the mapping follows. */
export const OCSF_VERSION = '1.3.0';

/** An OCSF event (the attributes this mapping sets). */
export type OcsfEvent = Readonly<Record<string, unknown>>;

const HTTP_ACTIVITY: Readonly<Record<string, number>> = { CONNECT: 1, DELETE: 2, GET: 3, HEAD: 4, OPTIONS: 5, POST: 6, PUT: 7, TRACE: 8 };
const AUTH_REASONS = new Set(['auth.missing', 'auth.invalid']);

/** `host:port` or `[v6]:port` split; undefined when `target` is not one. */
function endpoint(target: string | null | undefined): { hostname: string; port?: number } | undefined {
  if (typeof target !== 'string' || target === '') return undefined;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{0,5})$/.exec(target);
  if (m === null) return { hostname: target };
  const port = m[3] === '' ? undefined : Number(m[3]);
  return { hostname: (m[1] ?? m[2])!, ...(port === undefined ? {} : { port }) };
}

/**
 * Maps a stored record to an OCSF 1.3.0 event (see the module comment).
 * Returns undefined for a tombstone (its payload is gone; JSONL keeps it).
 */
export function toOcsf(row: AuditRow): OcsfEvent | undefined {
  if (isTombstone(row)) return undefined;
  const r: AuditRecord = row;
  const denied = r.decision?.effect === 'deny' || r.outcome === 'denied';
  const failed = denied || r.outcome === 'error' || r.outcome === 'timeout';
  const time = Date.parse(r.time);
  let cls: { class_uid: number; class_name: string; category_uid: number; category_name: string; activity_id: number; activity_name: string };
  const extra: Record<string, unknown> = {};
  if (r.door === 'network') {
    const method = typeof r.method === 'string' ? r.method.toUpperCase() : '';
    const activity = HTTP_ACTIVITY[method] ?? 99;
    cls = { class_uid: 4002, class_name: 'HTTP Activity', category_uid: 4, category_name: 'Network Activity', activity_id: activity, activity_name: activity === 99 ? r.method : method.charAt(0) + method.slice(1).toLowerCase() };
    const dst = endpoint(r.target);
    const status = r.detail?.['status'];
    const path = r.detail?.['path'];
    extra['http_request'] = { http_method: method, ...(dst ? { url: { hostname: dst.hostname, ...(dst.port !== undefined ? { port: dst.port } : {}), ...(typeof path === 'string' ? { path } : {}) } } : {}) };
    if (typeof status === 'number') extra['http_response'] = { code: status };
    if (dst) extra['dst_endpoint'] = dst;
  } else if (AUTH_REASONS.has(r.decision?.reason)) {
    cls = { class_uid: 3002, class_name: 'Authentication', category_uid: 3, category_name: 'Identity & Access Management', activity_id: 1, activity_name: 'Logon' };
    extra['user'] = { name: r.agent ?? 'unknown' };
    extra['service'] = { name: `bastion.${r.door}` };
  } else {
    cls = { class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity', activity_id: 99, activity_name: r.method };
    extra['api'] = { operation: r.method, service: { name: `bastion.${r.door}` }, ...(r.session ? { request: { uid: r.session } } : {}) };
    extra['src_endpoint'] = { name: r.agent ?? 'unauthenticated' };
    if (r.target) extra['resources'] = [{ name: r.target, type: r.door === 'tool' ? 'tool' : r.door }];
  }
  return {
    ...cls,
    type_uid: cls.class_uid * 100 + cls.activity_id,
    time: Number.isFinite(time) ? time : 0,
    duration: r.durationMs,
    severity_id: denied ? 3 : failed ? 2 : 1,
    severity: denied ? 'Medium' : failed ? 'Low' : 'Informational',
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    status_code: r.outcome,
    status_detail: r.decision?.reason,
    action_id: denied ? 2 : 1,
    action: denied ? 'Denied' : 'Allowed',
    disposition_id: denied ? 2 : 1,
    disposition: denied ? 'Blocked' : 'Allowed',
    message: [r.method, r.target].filter((x) => typeof x === 'string' && x !== '').join(' '),
    ...(r.agent ? { actor: { user: { name: r.agent, uid: r.agent } } } : {}),
    ...extra,
    metadata: {
      version: OCSF_VERSION,
      product: { name: 'Bastion', vendor_name: 'Bastion' },
      profiles: ['security_control'],
      uid: String(r.seq),
      log_name: 'audit',
      original_time: r.time,
    },
    unmapped: { bastion: r },
  };
}

/** Which rows {@link readAuditRange} yields. */
export interface AuditRange {
  /** First seq (default: the first stored). */
  readonly from?: number;
  /** Last seq, inclusive (default: the tip when reading began). */
  readonly to?: number;
  /** Only rows whose `time` is at or after this instant (ms since the epoch). Rows with an unparseable time are kept. */
  readonly sinceMs?: number;
}

/**
 * Stored rows (records and tombstones, exactly as stored) in `range`,
 * ascending, `pageSize` at a time; stops at the tip read when it began, so a
 * live store's export ends. Throws `ERR_STORE` from the store.
 */
export async function* readAuditRange(store: Pick<AuditStore, 'readAudit' | 'lastAudit'>, range: AuditRange = {}, pageSize = 1000): AsyncGenerator<AuditRow> {
  const tip = (await store.lastAudit())?.seq ?? 0;
  const to = Math.min(range.to ?? tip, tip);
  let from = Math.max(1, range.from ?? 1);
  while (from <= to) {
    const page = await store.readAudit(from, Math.min(pageSize, to - from + 1));
    if (page.length === 0) return;
    for (const row of page as AuditRow[]) {
      if (row.seq > to) return;
      if (range.sinceMs !== undefined) {
        const at = Date.parse(row.time);
        if (Number.isFinite(at) && at < range.sinceMs) continue;
      }
      yield row;
    }
    from = page[page.length - 1]!.seq + 1;
  }
}
