/**
 * The console's audit explorer: filters over the audit chain, newest first,
 * with paging by seq. The store reads records by ascending seq only, so a
 * query walks back from its starting point page by page and stops after
 * `scanLimit` records (the answer then says where it stopped, and the next
 * page goes on from there): a query costs at most `scanLimit` reads whatever
 * the filter.
 */
import type { AuditRecord } from '../audit/types.ts';
import type { AuditStore } from '../audit/store.ts';

/** A filter over records; every given field must match (strings exactly, `time` as a closed ISO 8601 range). */
export interface AuditFilter {
  readonly door?: AuditRecord['door'];
  /** The principal: an agent, `admin`, `admin:<id>`. */
  readonly agent?: string;
  readonly user?: string;
  /** The decision's effect. */
  readonly effect?: 'allow' | 'deny' | 'approve';
  /** The decision's reason code (`policy.forbid`). */
  readonly reason?: string;
  /** The method or event name (`tools/call`, `alert`). */
  readonly method?: string;
  readonly outcome?: AuditRecord['outcome'];
  /** Inclusive bounds, epoch ms. */
  readonly fromMs?: number;
  readonly toMs?: number;
}

/** One page of {@link queryAudit}. */
export interface AuditPage {
  /** Matching records, newest first. */
  readonly records: readonly AuditRecord[];
  /** Where the next page starts (pass as `before`), or null when the chain's start was reached. */
  readonly next: number | null;
  /** Records read for this page. */
  readonly scanned: number;
}

const DOORS = new Set(['model', 'tool', 'network', 'a2a', 'admin', 'system']);
const EFFECTS = new Set(['allow', 'deny', 'approve']);
const OUTCOMES = new Set(['ok', 'denied', 'held', 'error', 'timeout', 'client_closed']);
const MAX_FIELD = 256;

/**
 * Parses a filter from query parameters (`door`, `agent`, `user`, `effect`,
 * `reason`, `method`, `outcome`, `from`, `to` as ISO 8601 or epoch ms).
 * @returns the filter, or a message naming the bad parameter.
 */
export function parseAuditFilter(q: URLSearchParams): AuditFilter | string {
  const out: { -readonly [K in keyof AuditFilter]: AuditFilter[K] } = {};
  for (const key of ['agent', 'user', 'reason', 'method'] as const) {
    const v = q.get(key);
    if (v === null || v === '') continue;
    if (v.length > MAX_FIELD) return `${key} must be at most ${MAX_FIELD} characters`;
    out[key] = v;
  }
  const door = q.get('door');
  if (door !== null && door !== '') {
    if (!DOORS.has(door)) return 'door must be one of model, tool, network, a2a, admin, system';
    out.door = door as AuditRecord['door'];
  }
  const effect = q.get('effect');
  if (effect !== null && effect !== '') {
    if (!EFFECTS.has(effect)) return 'effect must be one of allow, deny, approve';
    out.effect = effect as 'allow' | 'deny' | 'approve';
  }
  const outcome = q.get('outcome');
  if (outcome !== null && outcome !== '') {
    if (!OUTCOMES.has(outcome)) return 'outcome must be one of ok, denied, held, error, timeout, client_closed';
    out.outcome = outcome as AuditRecord['outcome'];
  }
  for (const [key, field] of [['from', 'fromMs'], ['to', 'toMs']] as const) {
    const v = q.get(key);
    if (v === null || v === '') continue;
    const ms = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) return `${key} must be an ISO 8601 time or epoch milliseconds`;
    out[field] = ms;
  }
  return out;
}

/** True when `r` matches every field of `f`. */
export function matchesAudit(r: AuditRecord, f: AuditFilter): boolean {
  if (f.door !== undefined && r.door !== f.door) return false;
  if (f.agent !== undefined && r.agent !== f.agent) return false;
  if (f.user !== undefined && (r.user ?? null) !== f.user) return false;
  if (f.effect !== undefined && r.decision?.effect !== f.effect) return false;
  if (f.reason !== undefined && r.decision?.reason !== f.reason) return false;
  if (f.method !== undefined && r.method !== f.method) return false;
  if (f.outcome !== undefined && r.outcome !== f.outcome) return false;
  if (f.fromMs !== undefined || f.toMs !== undefined) {
    const t = Date.parse(r.time);
    if (!Number.isFinite(t)) return false;
    if (f.fromMs !== undefined && t < f.fromMs) return false;
    if (f.toMs !== undefined && t > f.toMs) return false;
  }
  return true;
}

/**
 * Matching records with seq below `before` (default: past the tip), newest
 * first, at most `limit`, reading at most `scanLimit` records.
 * @throws RangeError for a limit that is not a positive integer; BastionError `ERR_STORE` from the store.
 */
export async function queryAudit(
  store: Pick<AuditStore, 'readAudit' | 'lastAudit'>,
  filter: AuditFilter,
  opts: { before?: number; limit: number; scanLimit: number; pageSize?: number },
): Promise<AuditPage> {
  for (const [k, v] of [['limit', opts.limit], ['scanLimit', opts.scanLimit]] as const) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`queryAudit: ${k} must be a positive integer`);
  }
  const pageSize = opts.pageSize ?? 500;
  const tip = (await store.lastAudit())?.seq ?? 0;
  let upTo = Math.min(tip, (opts.before ?? Number.MAX_SAFE_INTEGER) - 1);
  const records: AuditRecord[] = [];
  let scanned = 0;
  while (upTo >= 1 && records.length < opts.limit && scanned < opts.scanLimit) {
    const n = Math.min(pageSize, upTo, opts.scanLimit - scanned);
    const from = upTo - n + 1;
    const page = await store.readAudit(from, n);
    scanned += n;
    for (let i = page.length - 1; i >= 0; i--) {
      const r = page[i]!;
      if (r.seq > upTo) continue;
      if (matchesAudit(r, filter)) {
        records.push(r);
        if (records.length === opts.limit) {
          return { records, next: r.seq > 1 ? r.seq : null, scanned };
        }
      }
    }
    upTo = from - 1;
  }
  return { records, next: upTo >= 1 ? upTo + 1 : null, scanned };
}

/** True when a record is an alert: method `alert`, a notification that could not be delivered (`notify.failed` / `notify.dropped`), or a record whose detail carries `alert`. */
export function isAlertRecord(r: AuditRecord): boolean {
  return r.method === 'alert' || r.method === 'notify.failed' || r.method === 'notify.dropped' || (r.detail !== undefined && Object.hasOwn(r.detail, 'alert') && r.detail.alert !== undefined && r.detail.alert !== false);
}

/** The method of the record that acknowledges an alert (`detail.seq` names the alert's seq). */
export const ALERT_ACK_METHOD = 'console.alert.ack';
