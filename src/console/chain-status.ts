/**
 * The audit chain's status for the console: verified up to which record, the
 * last checkpoint, the witness. Verification is the chain verifier's own
 * ({@link verifyChain}, as `bastion audit verify` runs it), done incrementally:
 * each call verifies the records after the last verified one (at most
 * `maxPerCall` of them, linked to the last verified hash) and caches where it
 * got, so the console never re-reads the whole chain. A break is reported
 * and the position stays before it: the next call verifies the same window
 * again (a young store whose first checkpoint is not written yet reads as
 * `checkpoint_missing` until it is).
 */
import type { AuditCheckpoint, AuditRecord } from '../audit/types.ts';
import type { AuditStore } from '../audit/store.ts';
import type { KeyStore } from '../identity/key-store.ts';
import { verifyChain, type ChainBreakReason } from '../audit/chain.ts';
import { readWitnessFile } from '../audit/witness.ts';
import { keyIdOf } from '../util/crypto.ts';
import { isBastionError } from '../errors.ts';

/** What {@link ChainStatus.check} answers. */
export interface ChainReport {
  /** Seq of the last record read from the store (0: empty). */
  readonly tip: number;
  /** Records 1..verifiedThrough link and hash correctly and their checkpoints verify. */
  readonly verifiedThrough: number;
  readonly ok: boolean;
  /** On a break: where and why (the verifier's own message: seqs and reasons, no record content). */
  readonly broken?: { readonly seq: number; readonly reason: ChainBreakReason; readonly message: string };
  readonly lastCheckpoint: { readonly seq: number; readonly time: string; readonly keyId: string } | null;
  readonly checkpoints: number;
  /** The witness file (config `audit.witness.file`): its last checkpoint, or why it could not be read; null when none is configured. */
  readonly witness: { readonly file: string; readonly lastSeq: number | null; readonly count: number; readonly error?: string } | null;
  /** When this report was made, epoch ms. */
  readonly checkedAt: number;
}

/** Options of {@link ChainStatus}. */
export interface ChainStatusOptions {
  readonly checkpointEvery: number;
  readonly witnessFile?: string | undefined;
  /** Records verified per call at most (default 50 000). */
  readonly maxPerCall?: number;
}

/** Incremental chain verification with a cached position. Calls are serialized. */
export class ChainStatus {
  readonly #store: AuditStore & Pick<KeyStore, 'listKeys'>;
  readonly #opts: ChainStatusOptions;
  #verified = { seq: 0, hash: '' };
  /** The last seq of the pruned prefix (0: nothing pruned). */
  #prunedThrough = 0;
  #broken: ChainReport['broken'] | undefined;
  #running: Promise<ChainReport> | undefined;

  constructor(store: AuditStore & Pick<KeyStore, 'listKeys'>, opts: ChainStatusOptions) {
    this.#store = store;
    this.#opts = opts;
  }

  /** Verifies what was appended since the last call and reports. @throws BastionError `ERR_STORE` */
  check(): Promise<ChainReport> {
    this.#running ??= this.#check().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #check(): Promise<ChainReport> {
    const tip = (await this.#store.lastAudit())?.seq ?? 0;
    const checkpoints = await this.#store.listCheckpoints();
    const witness = await this.#witness();
    this.#broken = undefined;
    if (this.#verified.seq === 0) {
      // A pruned store (audit.retention) starts past seq 1: verify from its first record's link, as
      // `bastion audit verify` does; the prune manifest itself is checked by `audit verify` (src/audit/retention-verify.ts).
      const [first] = await this.#store.readAudit(1, 1);
      if (first !== undefined && Number.isSafeInteger(first.seq) && first.seq > 1) {
        this.#verified = { seq: first.seq - 1, hash: String(first.prevHash) };
        this.#prunedThrough = first.seq - 1;
      }
    }
    if (tip > this.#verified.seq) {
      const end = Math.min(tip, this.#verified.seq + (this.#opts.maxPerCall ?? 50_000));
      const keys = new Map<string, string>();
      for (const key of await this.#store.listKeys('audit')) {
        try {
          keys.set(keyIdOf(key.publicKeyPem), key.publicKeyPem);
        } catch {
          // An unparseable stored key verifies nothing; checkpoints naming it fail as key_unknown.
        }
      }
      const prunedThrough = this.#prunedThrough;
      const inWindow = (cp: AuditCheckpoint): boolean => cp.seq <= end && cp.seq > prunedThrough;
      const from = this.#verified.seq;
      let last = { ...this.#verified };
      const store = this.#store;
      async function* records(): AsyncGenerator<AuditRecord> {
        let next = from + 1;
        while (next <= end) {
          const page = await store.readAudit(next, Math.min(1000, end - next + 1));
          if (page.length === 0) return;
          for (const r of page) {
            yield r;
            last = { seq: r.seq, hash: r.hash };
          }
          next = page[page.length - 1]!.seq + 1;
        }
      }
      const result = await verifyChain(records(), checkpoints.filter(inWindow), keys, {
        checkpointEvery: this.#opts.checkpointEvery,
        densityThrough: end,
        ...(from > 0 ? { after: this.#verified } : {}),
        // Tombstones (expired records past the pruned prefix) are vouched for by the next record's link.
        acceptTombstones: true,
        ...(witness.checkpoints.length > 0 ? { witness: witness.checkpoints.filter(inWindow) } : {}),
      });
      if (result.ok) {
        if (last.seq === end) this.#verified = last;
      } else this.#broken = { seq: result.seq, reason: result.reason, message: result.message };
    }
    const lastCp = checkpoints.length === 0 ? undefined : checkpoints[checkpoints.length - 1];
    return {
      tip,
      verifiedThrough: this.#broken === undefined ? this.#verified.seq : Math.min(this.#verified.seq, this.#broken.seq - 1),
      ok: this.#broken === undefined,
      ...(this.#broken === undefined ? {} : { broken: this.#broken }),
      lastCheckpoint: lastCp === undefined ? null : { seq: lastCp.seq, time: lastCp.time, keyId: lastCp.keyId },
      checkpoints: checkpoints.length,
      witness: witness.report,
      checkedAt: Date.now(),
    };
  }

  async #witness(): Promise<{ checkpoints: AuditCheckpoint[]; report: ChainReport['witness'] }> {
    const file = this.#opts.witnessFile;
    if (file === undefined) return { checkpoints: [], report: null };
    try {
      const w = await readWitnessFile(file);
      const lastSeq = w.checkpoints.reduce<number | null>((m, cp) => (m === null || cp.seq > m ? cp.seq : m), null);
      return { checkpoints: w.checkpoints, report: { file, lastSeq, count: w.checkpoints.length } };
    } catch (err) {
      // A witness not written yet (no checkpoint so far) is not an error.
      const missing = isBastionError(err, 'ERR_AUDIT_WITNESS') && (err.cause as { code?: string } | undefined)?.code === 'ENOENT';
      return { checkpoints: [], report: { file, lastSeq: null, count: 0, ...(missing ? {} : { error: isBastionError(err) ? err.code : 'ERR_AUDIT_WITNESS' }) } };
    }
  }
}
