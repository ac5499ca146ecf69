/**
 * The audit chain, as pure functions (no I/O): chaining an event onto the
 * previous record, the checkpoint signing payload, and verification.
 *
 * A record's `hash` is SHA-256 (hex) of the RFC 8785 canonical JSON of the
 * record without `hash`; `prevHash` is the previous record's hash, 64 zeros for
 * seq 1. A checkpoint is an Ed25519 signature over the canonical JSON of
 * `{seq, hash, time, keyId}`. See audit/types.ts.
 */
import { constantTimeEqual, sha256Hex, verifyEd25519 } from '../util/crypto.ts';
import { canonicalJson, canonicalJsonOfSnapshot } from './canonical.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from './types.ts';

/** `prevHash` of the first record: 64 zeros. */
export const GENESIS_HASH = '0'.repeat(64);

/** Why verification failed. */
export type ChainBreakReason =
  | 'hash_mismatch'
  | 'prev_mismatch'
  | 'seq_gap'
  | 'seq_order'
  | 'checkpoint_signature'
  | 'checkpoint_mismatch'
  | 'truncated'
  | 'checkpoint_key_unknown'
  /** The store holds records but no checkpoint over any of them. */
  | 'checkpoint_missing'
  /** More than `checkpointEvery` consecutive records carry no checkpoint: checkpoints were deleted (or records re-chained past them). */
  | 'checkpoint_gap'
  /** The record at a witnessed checkpoint's seq has another hash: the store was rewritten and re-chained from that seq or earlier. */
  | 'witness_mismatch'
  /** The witness holds a checkpoint past the store's last record: the store was cut (or emptied). */
  | 'witness_truncated'
  /** Records are missing before the first stored one and no prune manifest (`audit.pruned`) accounts for it, or its head does not match (audit/retention-verify.ts). */
  | 'prune_unexplained'
  /** A tombstone is not vouched for by the newest prune manifest (count or digest differ), or lies where it cannot be. */
  | 'tombstone_unvouched';

/** Options of {@link verifyChain}. */
export interface VerifyChainOptions {
  /**
   * Enables the density rule: a run of more than this many consecutive records
   * none of which is checkpointed fails (`checkpoint_gap`, naming the first
   * record past the allowance), and records with no checkpoint at all fail
   * (`checkpoint_missing`, seq 1). Use the largest `audit.checkpointEvery` the
   * store was written with. Without it, only hashes and checkpoints are checked.
   */
  readonly checkpointEvery?: number;
  /**
   * Checkpoints read from a witness outside the store (see audit/witness.ts):
   * each must be signed by a key in `publicKeys` and match the record at its seq
   * (`witness_mismatch`); one past the last record means the store was cut
   * (`witness_truncated`).
   */
  readonly witness?: readonly AuditCheckpoint[];
  /**
   * The density rule covers records up to this seq only (default: all). A
   * verifier of a live store passes the tip it read before listing the
   * checkpoints: records appended after that carry checkpoints it did not list.
   */
  readonly densityThrough?: number;
  /**
   * Verify a window of the chain: `records` start at `after.seq + 1` and the
   * first must link to `after.hash` (default: from seq 1 and the genesis).
   * Checkpoints and witness checkpoints at or below `after.seq` are ignored, and
   * the density rule counts from `after.seq` as if it were checkpointed. Used on
   * start to verify the unsigned tail (./recovery.ts).
   */
  readonly after?: { readonly seq: number; readonly hash: string };
  /**
   * Accept tombstones (rows with a `tombstone` field, audit/retention.ts) in
   * place of records: their hash cannot be recomputed, so only their seq and
   * link are checked here (the next record's `prevHash` must still name their
   * hash). The caller must vouch for them against the prune manifest
   * (audit/retention-verify.ts `RetentionCheck`). Default false: a tombstone is a `hash_mismatch`.
   */
  readonly acceptTombstones?: boolean;
}

/** Result of {@link verifyChain}. A broken chain is a value, not an exception. */
export type VerifyResult =
  | { readonly ok: true; readonly count: number; readonly lastSeq: number; readonly checkpoints: number }
  | {
      readonly ok: false;
      readonly code: 'ERR_AUDIT_CHAIN_BROKEN';
      /** The first record at fault: the position where the expected record is missing or wrong, or the checkpoint's seq. */
      readonly seq: number;
      readonly reason: ChainBreakReason;
      readonly message: string;
    };

/**
 * Chains `event` onto `prev` (undefined for the first record): `seq` is
 * `prev.seq + 1` (or 1), `prevHash` is `prev.hash` (or {@link GENESIS_HASH}).
 *
 * The record is normalized through canonical JSON first, so fields whose value is
 * `undefined` are dropped and the returned record deep-equals what a store
 * returns after a JSON round trip. Throws `TypeError` when the event is not JSON.
 */
export function chainRecord(prev: { readonly seq: number; readonly hash: string } | undefined, event: AuditEvent): AuditRecord {
  return chain(prev, event, false);
}

function chain(prev: { readonly seq: number; readonly hash: string } | undefined, event: AuditEvent, snapshot: boolean): AuditRecord {
  const seq = prev === undefined ? 1 : prev.seq + 1;
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError('chainRecord: prev.seq must be a non-negative integer');
  const prevHash = prev === undefined ? GENESIS_HASH : prev.hash;
  // A stray `hash` on the event must not enter what is hashed.
  const { hash: _ignored, ...rest } = event as AuditEvent & { hash?: unknown };
  const unhashed = { ...rest, seq, prevHash };
  if (snapshot) {
    // A snapshot is already what a JSON round trip gives: no walk, no re-parse.
    return { ...(unhashed as Omit<AuditRecord, 'hash'>), hash: sha256Hex(canonicalJsonOfSnapshot(unhashed)) };
  }
  const text = canonicalJson(unhashed);
  const body = JSON.parse(text) as Omit<AuditRecord, 'hash'>;
  return { ...body, hash: sha256Hex(text) };
}

/** The hash a record should carry: SHA-256 hex of its canonical JSON without `hash`. Throws `TypeError` on a non-JSON record. */
export function recordHash(record: AuditRecord): string {
  const { hash: _ignored, ...body } = record;
  return sha256Hex(canonicalJson(body));
}

/**
 * Chains `events` onto `tip` (undefined for an empty chain), as {@link chainRecord}
 * does one by one. The records a store adapter is given to store: adapters store
 * rows and never compute hashes. Throws `TypeError` when an event is not JSON.
 * `opts.snapshots`: every event is a `jsonSnapshot` result (the audit log's
 * queue), so the I-JSON walk and the re-parse are skipped; same records.
 */
export function chainRecords(
  tip: { readonly seq: number; readonly hash: string } | undefined,
  events: readonly AuditEvent[],
  opts: { readonly snapshots?: boolean } = {},
): AuditRecord[] {
  const out: AuditRecord[] = [];
  let prev = tip;
  const snapshot = opts.snapshots === true;
  for (const event of events) {
    const record = chain(prev, event, snapshot);
    out.push(record);
    prev = record;
  }
  return out;
}

/**
 * Whether the audit log writes a checkpoint at `seq` when chaining with
 * `checkpointEvery`: the first record and every multiple of `checkpointEvery`.
 * So a store with records always has a checkpoint, and consecutive positions
 * are at most `checkpointEvery` apart (the density {@link verifyChain} checks).
 */
export function isCheckpointPosition(seq: number, checkpointEvery: number): boolean {
  return seq === 1 || seq % checkpointEvery === 0;
}

/** The bytes a checkpoint signs: canonical JSON of `{seq, hash, time, keyId}`. */
export function checkpointPayload(cp: Pick<AuditCheckpoint, 'seq' | 'hash' | 'time' | 'keyId'>): string {
  return canonicalJson({ seq: cp.seq, hash: cp.hash, time: cp.time, keyId: cp.keyId });
}

/**
 * Verifies an audit chain, streaming: `records` are consumed once, in order, and
 * iteration stops at the first fault.
 *
 * Checks, per record: `seq` is the next integer (`seq_gap` when larger, naming
 * the missing seq; `seq_order` when not larger), `hash` matches the content
 * (`hash_mismatch`), `prevHash` equals the previous hash (`prev_mismatch`).
 * Every checkpoint must be signed by a key in `publicKeys` (keyId → SPKI PEM)
 * (`checkpoint_key_unknown`, `checkpoint_signature`) and its hash must equal the
 * record at its seq (`checkpoint_mismatch`). A validly signed checkpoint beyond
 * the last record proves records were cut off (`truncated`, naming the
 * checkpoint's seq). With `opts.checkpointEvery`, checkpoint density is checked
 * too, and with `opts.witness`, the witness's checkpoints (see
 * {@link VerifyChainOptions}). Records after the last checkpoint are covered by
 * the hash chain only: removing at most `checkpointEvery` of them is undetectable
 * by construction, unless the witness holds a checkpoint over them.
 */
export async function verifyChain(
  records: Iterable<AuditRecord> | AsyncIterable<AuditRecord>,
  checkpoints: readonly AuditCheckpoint[],
  publicKeys: ReadonlyMap<string, string>,
  opts: VerifyChainOptions = {},
): Promise<VerifyResult> {
  const every = opts.checkpointEvery;
  if (every !== undefined && (!Number.isSafeInteger(every) || every < 1)) {
    throw new RangeError('verifyChain: checkpointEvery must be a positive integer');
  }
  const after = opts.after;
  if (after !== undefined && (!Number.isSafeInteger(after.seq) || after.seq < 0 || typeof after.hash !== 'string')) {
    throw new RangeError('verifyChain: after must be {seq: a non-negative integer, hash}');
  }
  const from = after?.seq ?? 0;
  for (const cp of [...checkpoints, ...(opts.witness ?? [])]) {
    if (!Number.isSafeInteger(cp.seq) || cp.seq < 1) {
      return broken(0, 'checkpoint_mismatch', 'a checkpoint has an invalid seq');
    }
  }
  const pending = checkpoints.filter((cp) => cp.seq > from).sort((a, b) => a.seq - b.seq);
  const witnessed = (opts.witness ?? []).filter((cp) => cp.seq > from).sort((a, b) => a.seq - b.seq);
  const densityThrough = opts.densityThrough ?? Number.MAX_SAFE_INTEGER;
  let cpIndex = 0;
  let wIndex = 0;
  let expectedSeq = from + 1;
  let prevHash = after?.hash ?? GENESIS_HASH;
  /** Seq of the last record covered by a store checkpoint (0: none yet; `after.seq` for a window). */
  let lastCheckpointed = from;

  const tombstones = opts.acceptTombstones === true;
  for await (const record of records) {
    const fault = checkRecord(record, expectedSeq, prevHash, tombstones);
    if (fault !== undefined) return fault;
    while (cpIndex < pending.length && pending[cpIndex]!.seq === expectedSeq) {
      const cp = pending[cpIndex++]!;
      const cpFault = checkCheckpoint(cp, publicKeys);
      if (cpFault !== undefined) return cpFault;
      if (typeof cp.hash !== 'string' || !constantTimeEqual(cp.hash, record.hash)) {
        return broken(cp.seq, 'checkpoint_mismatch', `checkpoint at seq ${cp.seq} does not match the record's hash`);
      }
      lastCheckpointed = expectedSeq;
    }
    while (wIndex < witnessed.length && witnessed[wIndex]!.seq === expectedSeq) {
      const cp = witnessed[wIndex++]!;
      const cpFault = checkCheckpoint(cp, publicKeys, 'witness ');
      if (cpFault !== undefined) return cpFault;
      if (typeof cp.hash !== 'string' || !constantTimeEqual(cp.hash, record.hash)) {
        return broken(cp.seq, 'witness_mismatch', `record ${cp.seq} does not match the witness's checkpoint: the store was rewritten at or before seq ${cp.seq}`);
      }
    }
    if (every !== undefined && expectedSeq <= densityThrough && expectedSeq - lastCheckpointed > every) {
      return broken(
        expectedSeq,
        'checkpoint_gap',
        `records ${lastCheckpointed + 1}-${expectedSeq} carry no checkpoint (at most ${every} may): checkpoints were removed`,
      );
    }
    prevHash = record.hash;
    expectedSeq++;
  }

  const lastSeq = expectedSeq - 1;
  // Checkpoints past the last record prove a cut; a forged one must not pass as that evidence.
  let truncatedAt = 0;
  for (const cp of pending.slice(cpIndex)) {
    const cpFault = checkCheckpoint(cp, publicKeys);
    if (cpFault !== undefined) return cpFault;
    truncatedAt = cp.seq;
  }
  if (truncatedAt > 0) {
    return broken(truncatedAt, 'truncated', `records end at seq ${lastSeq} but a signed checkpoint covers seq ${truncatedAt}`);
  }
  let witnessTruncatedAt = 0;
  for (const cp of witnessed.slice(wIndex)) {
    const cpFault = checkCheckpoint(cp, publicKeys, 'witness ');
    if (cpFault !== undefined) return cpFault;
    witnessTruncatedAt = cp.seq;
  }
  if (witnessTruncatedAt > 0) {
    const what = lastSeq === 0 ? 'the store holds no record (emptied)' : `records end at seq ${lastSeq}`;
    return broken(witnessTruncatedAt, 'witness_truncated', `${what} but the witness holds a signed checkpoint at seq ${witnessTruncatedAt}`);
  }
  if (every !== undefined && from === 0 && Math.min(lastSeq, densityThrough) > 0 && lastCheckpointed === 0) {
    return broken(1, 'checkpoint_missing', `the store holds records 1-${lastSeq} but no checkpoint over any of them`);
  }
  return { ok: true, count: lastSeq - from, lastSeq, checkpoints: pending.length };
}

function checkRecord(record: AuditRecord, expectedSeq: number, prevHash: string, tombstones = false): VerifyResult | undefined {
  if (typeof record !== 'object' || record === null) {
    return broken(expectedSeq, 'hash_mismatch', `record ${expectedSeq} is not an object`);
  }
  const seq: unknown = record.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq)) {
    return broken(expectedSeq, 'hash_mismatch', `record ${expectedSeq} has no integer seq`);
  }
  if (seq > expectedSeq) return broken(expectedSeq, 'seq_gap', `record ${expectedSeq} is missing (next record has seq ${seq})`);
  if (seq < expectedSeq) return broken(expectedSeq, 'seq_order', `record at position ${expectedSeq} has seq ${seq}`);
  if (tombstones && 'tombstone' in record) {
    // A tombstone's hash is the pruned record's: vouched for by the next record's prevHash and the prune manifest.
    if (typeof record.hash !== 'string' || !/^[0-9a-f]{64}$/.test(record.hash)) return broken(seq, 'hash_mismatch', `tombstone ${seq} has no valid hash`);
    if (typeof record.prevHash !== 'string' || !constantTimeEqual(record.prevHash, prevHash)) {
      return broken(seq, 'prev_mismatch', `record ${seq} prevHash does not match record ${seq - 1}`);
    }
    return undefined;
  }
  let actual: string;
  try {
    actual = recordHash(record);
  } catch {
    return broken(seq, 'hash_mismatch', `record ${seq} is not canonicalizable JSON`);
  }
  if (typeof record.hash !== 'string' || !constantTimeEqual(actual, record.hash)) {
    return broken(seq, 'hash_mismatch', `record ${seq} content does not match its hash`);
  }
  if (typeof record.prevHash !== 'string' || !constantTimeEqual(record.prevHash, prevHash)) {
    return broken(seq, 'prev_mismatch', `record ${seq} prevHash does not match record ${seq - 1}`);
  }
  return undefined;
}

function checkCheckpoint(cp: AuditCheckpoint, publicKeys: ReadonlyMap<string, string>, source = ''): VerifyResult | undefined {
  const pem = publicKeys.get(cp.keyId);
  if (pem === undefined) {
    return broken(cp.seq, 'checkpoint_key_unknown', `${source}checkpoint at seq ${cp.seq} is signed by an unknown key`);
  }
  let payload: string;
  try {
    payload = checkpointPayload(cp);
  } catch {
    return broken(cp.seq, 'checkpoint_signature', `${source}checkpoint at seq ${cp.seq} is malformed`);
  }
  if (typeof cp.signature !== 'string' || !verifyEd25519(pem, payload, cp.signature)) {
    return broken(cp.seq, 'checkpoint_signature', `${source}checkpoint at seq ${cp.seq} has an invalid signature`);
  }
  return undefined;
}

function broken(seq: number, reason: ChainBreakReason, message: string): VerifyResult {
  return { ok: false, code: 'ERR_AUDIT_CHAIN_BROKEN', seq, reason, message };
}
