/**
 * Reconciliation of the scale harness: the ledger of requests sent (./load.ts)
 * against the audit records in the store. Pure: no I/O.
 *
 * The rule (Bastion's "every request ends in exactly one audit record"):
 * - a request answered with success, or with a refusal other than an audit
 *   write failure, has exactly one record (none: lost; more: duplicate), and
 *   the record agrees (a success is recorded as allowed);
 * - a request refused because its record could not be written
 *   (`audit.write_failed` / `ERR_AUDIT_WRITE`), or never answered, has at most one;
 * - no record names a request that was never sent.
 * Requests only counted (refusals whose records carry no request id) are
 * reconciled per bucket: records ≥ answered and ≤ sent.
 *
 * A lost record is a violation, except on a batched door (model, network) when
 * it falls in a window the issue accepts and the summary reports: records of
 * the instance killed with `kill -9`, answered before the kill (docs/audit.md
 * "Crash window"), and, when `acceptOutageLoss` is set, records answered during
 * a store outage.
 */
import type { AuditRecord } from '../../src/audit/types.ts';
import type { Door, Sent } from './load.ts';

/** Doors whose records are durable before the response (src/door/audit-step.ts). */
export const DURABLE_DOORS: ReadonlySet<Door> = new Set(['tool']);

/** Refusal reasons that mean "the record could not be written": such a request may have none. */
export const AUDIT_FAILURE_REASONS: ReadonlySet<string> = new Set(['audit.write_failed', 'ERR_AUDIT_WRITE']);

/**
 * The request key a record carries (the same form as `Sent.key`), a count-only
 * bucket (`bucket:<name>`), or undefined for records of no harness request
 * (system records, MCP session plumbing).
 */
export function keyOf(r: AuditRecord, originPort: number): string | undefined {
  if (r.door === 'tool' && r.method === 'tools/call') {
    const n = (r.args as { n?: unknown } | undefined)?.n;
    return typeof n === 'number' ? `tool:${n}` : 'bucket:tool-unkeyed';
  }
  if (r.door === 'model' && r.method !== 'alert' && r.method !== 'ratelimit.charge') {
    if (r.agent === 'nomodel') return 'bucket:model-deny';
    if (r.agent === 'scale' && typeof r.user === 'string' && r.user.startsWith('m-')) return `model:${r.user}`;
    return 'bucket:model-unkeyed';
  }
  if (r.door === 'network') {
    if (r.target?.startsWith('deny.scale.test:') === true) return `network-deny:${r.target.slice('deny.scale.test:'.length)}`;
    const d = r.detail ?? {};
    if (r.target === `echo.scale.test:${originPort}` && typeof d.bytesOut === 'number' && typeof d.bytesIn === 'number') return `network:${d.bytesOut}:${d.bytesIn}`;
    return 'bucket:network-unkeyed';
  }
  return undefined;
}

/** The count-only bucket of a request with no key. */
export function bucketOf(s: Sent): string {
  return s.door === 'model' ? 'bucket:model-deny' : s.door === 'network' ? 'bucket:network-unkeyed' : 'bucket:tool-unkeyed';
}

/** A time window (ms since the epoch, inclusive). */
export interface Window {
  readonly name: string;
  readonly from: number;
  readonly to: number;
}

/** What happened during the run, for classifying lost records. */
export interface RunFacts {
  readonly originPort: number;
  /** The instance killed with `kill -9`, and when. */
  readonly killed?: { readonly instance: string; readonly at: number };
  /** Store outages (cut to restore plus a grace for records queued before the cut). */
  readonly storeOutages: readonly Window[];
  /** Count batched-door losses in a store outage as accepted (reported) instead of violations. */
  readonly acceptOutageLoss: boolean;
}

/** Per-door figures. */
export interface DoorSummary {
  sent: number;
  ok: number;
  refused: number;
  unanswered: number;
  /** Records matched to this door's requests (keyed and counted). */
  audited: number;
  /** Lost records, by class: `violation`, `crash` (killed instance, batched door), `outage` (store outage, batched door). */
  lost: { violation: number; crash: number; outage: number };
  duplicates: number;
  /** Successes recorded as refusals, or the reverse. */
  mismatched: number;
  /** Refused ERR_AUDIT_WRITE but recorded allow/ok: a commit that landed while its acknowledgement was lost. */
  inDoubt: number;
  /** Answered refusals by reason. */
  reasons: Record<string, number>;
}

export interface Reconciliation {
  readonly doors: Record<Door, DoorSummary>;
  /** Records keyed to no request sent. */
  readonly unknown: number;
  /** Human-readable violations (first few of each kind with examples). */
  readonly violations: string[];
}

const emptyDoor = (): DoorSummary => ({ sent: 0, ok: 0, refused: 0, unanswered: 0, audited: 0, lost: { violation: 0, crash: 0, outage: 0 }, duplicates: 0, mismatched: 0, inDoubt: 0, reasons: {} });

/** Whether the request must have its record. */
export function recordRequired(s: Sent): boolean {
  return s.result === 'ok' || (s.result === 'refused' && !AUDIT_FAILURE_REASONS.has(s.reason));
}

function lossClass(s: Sent, facts: RunFacts): 'violation' | 'crash' | 'outage' {
  if (DURABLE_DOORS.has(s.door)) return 'violation';
  if (facts.storeOutages.some((w) => s.ackAt >= w.from && s.ackAt <= w.to)) return facts.acceptOutageLoss ? 'outage' : 'violation';
  if (facts.killed && s.instance === facts.killed.instance && s.ackAt <= facts.killed.at) return 'crash';
  return 'violation';
}

/** Reconciles `sent` with `records` (every record of the chain, any order). */
export function reconcile(sent: readonly Sent[], records: readonly AuditRecord[], facts: RunFacts): Reconciliation {
  const doors: Record<Door, DoorSummary> = { tool: emptyDoor(), model: emptyDoor(), network: emptyDoor() };
  const byKey = new Map<string, AuditRecord[]>();
  for (const r of records) {
    const k = keyOf(r, facts.originPort);
    if (k === undefined) continue;
    const list = byKey.get(k);
    if (list) list.push(r);
    else byKey.set(k, [r]);
  }
  const examples = new Map<string, string[]>();
  const note = (kind: string, text: string): void => {
    const list = examples.get(kind) ?? [];
    list.push(text);
    examples.set(kind, list);
  };
  const keys = new Set<string>();
  const unkeyedRefusals: Record<Door, Sent[]> = { tool: [], model: [], network: [] };
  const lose = (s: Sent): void => {
    const c = lossClass(s, facts);
    doors[s.door].lost[c]++;
    if (c === 'violation') note('lost', `${s.key ?? bucketOf(s)} (${s.instance}, answered ${s.result}${s.reason ? ` ${s.reason}` : ''} in phase ${s.ackPhase}) has no record`);
  };
  const buckets = new Map<string, { door: Door; sent: number; required: number }>();
  for (const s of sent) {
    const d = doors[s.door];
    d.sent++;
    if (s.result === 'ok') d.ok++;
    else if (s.result === 'refused') {
      d.refused++;
      d.reasons[s.reason] = (d.reasons[s.reason] ?? 0) + 1;
    } else d.unanswered++;
    if (s.key === null) {
      const b = bucketOf(s);
      const e = buckets.get(b) ?? { door: s.door, sent: 0, required: 0 };
      e.sent++;
      // A count cannot say whose record is missing: only requests whose loss would be a violation are required
      // (a shortfall is then a violation; records lost in an accepted window are not counted as such).
      if (recordRequired(s) && lossClass(s, facts) === 'violation') e.required++;
      buckets.set(b, e);
      continue;
    }
    keys.add(s.key);
    const found = byKey.get(s.key) ?? [];
    d.audited += Math.min(found.length, 1);
    if (found.length > 1) {
      d.duplicates += found.length - 1;
      note('duplicate', `${s.key} (${s.instance}, ${s.result}) has ${found.length} records: seq ${found.map((r) => r.seq).join(', ')}`);
    }
    if (found.length === 0 && recordRequired(s)) {
      // A refusal before the stage that puts the id in the record (e.g. the network door refusing before
      // it read the body) is recorded without it: matched below against the door's unkeyed records.
      if (s.result === 'refused') unkeyedRefusals[s.door].push(s);
      else lose(s);
    }
    const r = found[0];
    if (r !== undefined && s.result !== 'none') {
      const recordedAllow = r.decision.effect === 'allow' && r.outcome === 'ok';
      if (s.result === 'refused' && s.reason === 'ERR_AUDIT_WRITE' && recordedAllow) {
        // In doubt: the store committed the record but its acknowledgement was lost with the connection
        // (the store died mid-commit), so the agent was told ERR_AUDIT_WRITE; the record is true about what
        // ran. Counted apart and bounded by the caller like the audit gate's residual window.
        d.inDoubt++;
      } else if ((s.result === 'ok') !== recordedAllow) {
        d.mismatched++;
        note('mismatch', `${s.key} answered ${s.result}${s.reason ? ` ${s.reason}` : ''} but recorded ${r.decision.effect}/${r.outcome} (${r.decision.reason}), seq ${r.seq}`);
      }
    }
  }
  let unknown = 0;
  for (const door of ['tool', 'model', 'network'] as const) {
    const pool = `bucket:${door}-unkeyed`;
    const n = byKey.get(pool)?.length ?? 0;
    const waiting = unkeyedRefusals[door];
    doors[door].audited += Math.min(n, waiting.length);
    for (const s of waiting.slice(n)) lose(s);
    if (n > 0) buckets.set(pool, { door, sent: waiting.length, required: 0 });
  }
  for (const [b, e] of buckets) {
    if (b.endsWith('-unkeyed')) {
      const n = byKey.get(b)?.length ?? 0;
      if (n > e.sent) {
        unknown += n - e.sent;
        note('unknown', `${n - e.sent} record(s) of ${b} match no refused request`);
      }
      continue;
    }
    const n = byKey.get(b)?.length ?? 0;
    doors[e.door].audited += Math.min(n, e.sent);
    if (n < e.required) {
      doors[e.door].lost.violation += e.required - n;
      note('lost', `${b}: ${e.required} answered, ${n} records`);
    }
    if (n > e.sent) {
      doors[e.door].duplicates += n - e.sent;
      note('duplicate', `${b}: ${e.sent} sent, ${n} records`);
    }
  }
  for (const [k, list] of byKey) {
    if (k.startsWith('bucket:') ? !buckets.has(k) : !keys.has(k)) {
      unknown += list.length;
      note('unknown', `${list.length} record(s) with key ${k} (first seq ${list[0]?.seq}) match no request sent`);
    }
  }
  const violations: string[] = [];
  for (const [kind, list] of examples) violations.push(`${list.length} ${kind}: ${list.slice(0, 5).join('; ')}${list.length > 5 ? '; …' : ''}`);
  return { doors, unknown, violations };
}
