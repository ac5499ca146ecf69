/**
 * Verification of a pruned chain (docs/audit.md "Retention and pruning"), as a
 * pass over the stored rows beside `verifyChain` (./chain.ts, which checks
 * hashes, links and checkpoints and, with `acceptTombstones`, takes tombstones
 * by their link alone). This pass vouches for what pruning left:
 *
 * - records missing before the first stored one (seq S > 1) are accounted for
 *   by the newest prune manifest: its `through` is S - 1 and its `head` is the
 *   first stored record's `prevHash` (`prune_unexplained` otherwise);
 * - every tombstone is vouched for by the newest manifest: the count and the
 *   digest (./retention.ts `foldTombstone`) over all tombstones in the store
 *   equal the manifest's (`tombstone_unvouched` otherwise). The manifest is an
 *   ordinary chained record under a signed checkpoint, so changing it is a
 *   chain fault `verifyChain` reports.
 */
import { constantTimeEqual } from '../util/crypto.ts';
import { GENESIS_HASH, type VerifyResult } from './chain.ts';
import { EMPTY_TOMBSTONE_DIGEST, foldTombstone, isManifest, isTombstone, type AuditRow, type PruneManifest } from './retention.ts';
import type { AuditRecord } from './types.ts';

/** Collects what the stream shows about pruning; {@link RetentionCheck.finish} judges it. */
export class RetentionCheck {
  #firstSeq = 0;
  #firstPrev = GENESIS_HASH;
  #digest = EMPTY_TOMBSTONE_DIGEST;
  #count = 0;
  #firstTombstone = 0;
  #manifest: { readonly seq: number; readonly detail: Partial<PruneManifest> } | undefined;
  #broken: VerifyResult | undefined;

  /** Passes `rows` through unchanged, observing each. */
  async *observe(rows: Iterable<AuditRecord> | AsyncIterable<AuditRecord>): AsyncGenerator<AuditRecord> {
    for await (const row of rows) {
      this.#see(row as AuditRow);
      yield row;
    }
  }

  #see(row: AuditRow): void {
    if (typeof row !== 'object' || row === null) return;
    if (this.#firstSeq === 0 && typeof row.seq === 'number') {
      this.#firstSeq = row.seq;
      this.#firstPrev = typeof row.prevHash === 'string' ? row.prevHash : '';
    }
    if (isTombstone(row)) {
      this.#count++;
      if (this.#firstTombstone === 0) this.#firstTombstone = row.seq;
      try {
        this.#digest = foldTombstone(this.#digest, row);
      } catch {
        this.#broken ??= broken(row.seq, 'tombstone_unvouched', `tombstone ${row.seq} is not JSON`);
      }
    } else if (isManifest(row)) {
      this.#manifest = { seq: row.seq, detail: (typeof row.detail === 'object' && row.detail !== null ? row.detail : {}) as Partial<PruneManifest> };
    }
  }

  /** The first row's seq (0 before any row). */
  get firstSeq(): number {
    return this.#firstSeq;
  }

  /** The fault this pass found over the rows seen, or undefined. Call after the stream ended. */
  finish(): VerifyResult | undefined {
    if (this.#broken !== undefined) return this.#broken;
    const first = this.#firstSeq;
    const m = this.#manifest;
    if (m === undefined) {
      if (first > 1) return broken(first, 'prune_unexplained', `records 1-${first - 1} are missing and no prune manifest (audit.pruned) accounts for them`);
      if (this.#count > 0) return broken(this.#firstTombstone, 'tombstone_unvouched', `tombstone ${this.#firstTombstone} is not vouched for by any prune manifest`);
      return undefined;
    }
    const d = m.detail;
    const through = typeof d.through === 'number' ? d.through : -1;
    if (first > 0 && through !== first - 1) {
      return broken(first, 'prune_unexplained', `the newest prune manifest (seq ${m.seq}) pruned through seq ${through}, but the first stored record is ${first}`);
    }
    if (first > 1 && (typeof d.head !== 'string' || !constantTimeEqual(d.head, this.#firstPrev))) {
      return broken(first, 'prune_unexplained', `record ${first} does not link to the pruned prefix's head in the newest prune manifest (seq ${m.seq})`);
    }
    const t = d.tombstones;
    if (typeof t !== 'object' || t === null || t.count !== this.#count || typeof t.digest !== 'string' || !constantTimeEqual(t.digest, this.#digest)) {
      const at = this.#firstTombstone === 0 ? m.seq : this.#firstTombstone;
      return broken(at, 'tombstone_unvouched', `the tombstones in the store (${this.#count}) do not match those the newest prune manifest (seq ${m.seq}) vouches for`);
    }
    return undefined;
  }
}

function broken(seq: number, reason: 'prune_unexplained' | 'tombstone_unvouched', message: string): VerifyResult {
  return { ok: false, code: 'ERR_AUDIT_CHAIN_BROKEN', seq, reason, message };
}
