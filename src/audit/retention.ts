/**
 * Audit retention, as pure functions (no I/O): retention classes, durations,
 * tombstones, prune manifests and the prune plan. The store applies a plan
 * (./prune.ts, `AuditPrunePort`); verification accepts what a plan leaves
 * (./retention-verify.ts). Design and what verify proves afterwards:
 * docs/audit.md "Retention and pruning".
 *
 * A prune keeps the chain verifiable:
 * - only a **prefix** is deleted (every record at or below `through` is past its retention);
 * - an expired record above the prefix becomes a **tombstone**: `seq`, `prevHash`, `hash`,
 *   `time`, `door` and its retention class stay, the payload goes; its hash can no longer be
 *   recomputed, so it is vouched for by the next record's `prevHash` and by the prune manifest;
 * - the **manifest** is an ordinary chained record (`audit.pruned`, door `system`) appended in the
 *   same transaction, with a signed checkpoint over it, carrying the prefix's head (`through` and
 *   its hash) and a digest of the tombstones it made.
 */
import { sha256Hex } from '../util/crypto.ts';
import { canonicalJson } from './canonical.ts';
import { GENESIS_HASH } from './chain.ts';
import type { AuditEvent, AuditRecord } from './types.ts';

/** The retention classes, derived from an event's door, decision and outcome (see {@link retentionClassOf}). */
export const RETENTION_CLASSES = ['system', 'admin', 'denials', 'approvals', 'errors', 'allows'] as const;
/** A retention class. */
export type RetentionClass = (typeof RETENTION_CLASSES)[number];

/** `audit.retention` resolved: ms per class; `default` for classes not named; a class with neither is kept forever. */
export type RetentionPolicy = Readonly<Partial<Record<RetentionClass | 'default', number>>>;

/** Method of the prune manifest record. */
export const AUDIT_PRUNED = 'audit.pruned';

/** Hour and day in ms. */
const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, d: 86_400_000 };
/** `30d`, `12h`: a positive integer (at most 6 digits, no leading zero) and a unit. */
const DURATION = /^([1-9][0-9]{0,5})([hd])$/;

/**
 * Parses a retention duration: `<n>d` (days) or `<n>h` (hours), n a positive
 * integer of at most 6 digits. Returns ms.
 * @throws RangeError naming `label` when `text` is not one.
 */
export function parseRetention(text: unknown, label = 'duration'): number {
  const m = typeof text === 'string' ? DURATION.exec(text) : null;
  if (m === null) throw new RangeError(`${label} must be a duration like 30d or 12h`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

/**
 * The retention class of an event: `system` and `admin` by door; otherwise
 * `denials` (effect deny or outcome denied), `approvals` (effect approve or
 * outcome held), `errors` (outcome error or timeout), else `allows`.
 */
export function retentionClassOf(event: Pick<AuditEvent, 'door' | 'decision' | 'outcome'>): RetentionClass {
  if (event.door === 'system') return 'system';
  if (event.door === 'admin') return 'admin';
  const effect = event.decision?.effect;
  if (effect === 'deny' || event.outcome === 'denied') return 'denials';
  if (effect === 'approve' || event.outcome === 'held') return 'approvals';
  if (event.outcome === 'error' || event.outcome === 'timeout') return 'errors';
  return 'allows';
}

/** The retention of `cls` in ms under `policy`, or undefined: kept forever. */
export function retentionOf(policy: RetentionPolicy, cls: RetentionClass): number | undefined {
  return policy[cls] ?? policy.default;
}

/**
 * A pruned record's remains. `hash` is the original record's hash (it can no
 * longer be recomputed). Stored in place of the record; `readAudit` returns it
 * as it is (typed as a record: check with {@link isTombstone}).
 */
export interface AuditTombstone {
  readonly tombstone: RetentionClass;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly time: string;
  readonly door: AuditEvent['door'];
}

/** A row of the audit table after pruning: a full record or a tombstone. */
export type AuditRow = AuditRecord | AuditTombstone;

/** Whether a stored row is a tombstone (has a `tombstone` field). */
export function isTombstone(row: unknown): row is AuditTombstone {
  return typeof row === 'object' && row !== null && 'tombstone' in row;
}

/** The tombstone of `record`. Key order puts `tombstone` first: the stores rely on it to tell rows apart (`json LIKE '{"tombstone":%'`). */
export function tombstoneOf(record: AuditRecord): AuditTombstone {
  return { tombstone: retentionClassOf(record), seq: record.seq, prevHash: record.prevHash, hash: record.hash, time: record.time, door: record.door };
}

/**
 * The running digest over the tombstones a manifest vouches for (every
 * tombstone in the store after its prune), in seq order: starts at 64
 * zeros; each step is SHA-256 hex of `previous + "\n" + canonical JSON of the tombstone`.
 * Throws TypeError on a tombstone that is not JSON.
 */
export function foldTombstone(digest: string, t: AuditTombstone): string {
  return sha256Hex(`${digest}\n${canonicalJson(t)}`);
}

/** The digest of no tombstones. */
export const EMPTY_TOMBSTONE_DIGEST = GENESIS_HASH;

/** `detail` of a prune manifest record (`audit.pruned`). */
export interface PruneManifest {
  /** Every record with seq ≤ `through` was deleted (0: none). */
  readonly through: number;
  /** The hash of the record at `through` (the pruned prefix's head; 64 zeros when `through` is 0). */
  readonly head: string;
  /** Every tombstone in the store after this prune (older ones included): how many and their digest ({@link foldTombstone}). */
  readonly tombstones: { readonly count: number; readonly digest: string };
  /** Records deleted and tombstoned by this prune, per class. */
  readonly deleted: Readonly<Partial<Record<RetentionClass, number>>>;
  readonly tombstoned: Readonly<Partial<Record<RetentionClass, number>>>;
  /** The cut-off used: records older than `now - retention(class)` expired. ISO 8601. */
  readonly now: string;
  /** The retention applied, ms per class. */
  readonly retention: RetentionPolicy;
  /** The newest checkpoint at or below which everything pruned lay. */
  readonly coveredBy: number;
}

/** Whether `record` is a prune manifest (door `system`, method `audit.pruned`). */
export function isManifest(row: AuditRow): row is AuditRecord & { readonly detail: PruneManifest } {
  return !isTombstone(row) && row.door === 'system' && row.method === AUDIT_PRUNED;
}

/** Whether `row` (record or tombstone) is past its retention at `nowMs`. Records with an unparseable time never expire. */
export function isExpired(row: AuditRow, policy: RetentionPolicy, nowMs: number): boolean {
  const cls = isTombstone(row) ? row.tombstone : retentionClassOf(row);
  const keep = retentionOf(policy, cls);
  if (keep === undefined) return false;
  const at = Date.parse(row.time);
  return Number.isFinite(at) && at + keep <= nowMs;
}

/** Most records one prune turns into tombstones by default (memory bound; the next prune goes on). */
export const DEFAULT_MAX_TOMBSTONES = 100_000;

/** What a prune will do, from a scan of the stored rows. */
export interface PrunePlan {
  /** The first stored seq before pruning (1 on an unpruned store, 0 when empty). */
  readonly firstSeq: number;
  /** Delete every row with seq ≤ `through` (`firstSeq - 1`: nothing). */
  readonly through: number;
  /** The hash of the row at `through` (the pruned prefix's head); the first row's `prevHash` when nothing is deleted. */
  readonly head: string;
  /** New tombstones (of full records above `through`), ascending. */
  readonly tombstone: readonly AuditTombstone[];
  /** Every tombstone after the prune (kept and new): count and digest ({@link foldTombstone}). */
  readonly tombstones: { readonly count: number; readonly digest: string };
  /** The newest seq scanned (the store checks that no manifest was appended after it). */
  readonly scannedTip: number;
  /** Rows deleted and records tombstoned, per class. */
  readonly deleted: Partial<Record<RetentionClass, number>>;
  readonly tombstoned: Partial<Record<RetentionClass, number>>;
  /** Whether the plan changes nothing. */
  readonly empty: boolean;
}

/**
 * Plans a prune over `rows` (every stored row, ascending, already verified) at
 * `nowMs`: the longest prefix of expired rows, at most through `coveredBy` (the
 * newest checkpoint's seq: nothing unsigned is dropped), is deleted; expired
 * full records above it, up to `coveredBy`, become tombstones (at most
 * `maxTombstones`). Prune manifests are never tombstoned (verification needs
 * the newest), only deleted with the prefix.
 * @throws TypeError when a row is not JSON.
 */
export async function planPrune(
  rows: Iterable<AuditRow> | AsyncIterable<AuditRow>,
  policy: RetentionPolicy,
  nowMs: number,
  coveredBy: number,
  maxTombstones = DEFAULT_MAX_TOMBSTONES,
): Promise<PrunePlan> {
  let firstSeq = 0;
  let through = 0;
  let head = GENESIS_HASH;
  let inPrefix = true;
  const tombstone: AuditTombstone[] = [];
  let digest = EMPTY_TOMBSTONE_DIGEST;
  let count = 0;
  let scannedTip = 0;
  const deleted: Partial<Record<RetentionClass, number>> = {};
  const tombstoned: Partial<Record<RetentionClass, number>> = {};
  const add = (m: Partial<Record<RetentionClass, number>>, cls: RetentionClass): void => {
    m[cls] = (m[cls] ?? 0) + 1;
  };
  for await (const row of rows) {
    scannedTip = row.seq;
    if (firstSeq === 0) {
      firstSeq = row.seq;
      through = row.seq - 1;
      head = row.prevHash;
    }
    const eligible = row.seq <= coveredBy;
    const expired = eligible && isExpired(row, policy, nowMs);
    const cls = isTombstone(row) ? row.tombstone : retentionClassOf(row);
    if (inPrefix && expired) {
      through = row.seq;
      head = row.hash;
      add(deleted, cls);
      continue;
    }
    inPrefix = false;
    if (isTombstone(row)) {
      digest = foldTombstone(digest, row);
      count++;
    } else if (expired && !isManifest(row) && tombstone.length < maxTombstones) {
      const t = tombstoneOf(row);
      tombstone.push(t);
      add(tombstoned, cls);
      digest = foldTombstone(digest, t);
      count++;
    }
  }
  const empty = through <= Math.max(0, firstSeq - 1) && tombstone.length === 0;
  return { firstSeq, through, head, tombstone, tombstones: { count, digest }, scannedTip, deleted, tombstoned, empty };
}
