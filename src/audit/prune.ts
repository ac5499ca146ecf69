/**
 * Applying audit retention to a store (docs/audit.md "Retention and pruning"):
 * verify the chain, plan the prune (./retention.ts), then in one store
 * transaction append the prune manifest with a signed checkpoint over it,
 * delete the expired prefix and tombstone the other expired records. Used by
 * `bastion audit prune` and by `bastion serve` (daily, {@link startAuditRetention}).
 */
import { BastionError, isBastionError } from '../errors.ts';
import type { KeyStore } from '../identity/key-store.ts';
import { chainRecord } from './chain.ts';
import { verifyAudit } from './log.ts';
import { AUDIT_PRUNED, DEFAULT_MAX_TOMBSTONES, planPrune, type PruneManifest, type RetentionClass, type RetentionPolicy } from './retention.ts';
import type { AuditPrunePort } from './retention-store.ts';
import type { AuditStore } from './store.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from './types.ts';

/** A store a prune can run on. */
export type PrunableStore = AuditStore & Pick<KeyStore, 'listKeys'> & AuditPrunePort;

/** Options of {@link pruneAudit}. */
export interface PruneAuditOptions {
  /** Retention per class (ms); see `RetentionPolicy`. */
  readonly policy: RetentionPolicy;
  /** Signs the checkpoint over the manifest (`AuditLog.checkpointSigner()`); not needed for a dry run. */
  readonly sign?: (record: AuditRecord) => AuditCheckpoint;
  /** Plan only: change nothing. */
  readonly dryRun?: boolean;
  /** The time records expire against (default: now). */
  readonly now?: Date;
  /** The density allowance the chain is verified with first (`audit.checkpointEvery`). */
  readonly checkpointEvery: number;
  /** Most records turned into tombstones by one prune (default {@link DEFAULT_MAX_TOMBSTONES}). */
  readonly maxTombstones?: number;
  /** Records read per page (default 1000). */
  readonly pageSize?: number;
}

/** What a prune did (or, dry, would do). */
export interface PruneAuditResult {
  readonly dryRun: boolean;
  /** Whether anything was (or would be) pruned. */
  readonly changed: boolean;
  /** The first stored seq before the prune. */
  readonly firstSeq: number;
  /** Records up to this seq are (would be) deleted. */
  readonly through: number;
  /** Rows deleted and records tombstoned, per class. */
  readonly deleted: Partial<Record<RetentionClass, number>>;
  readonly tombstoned: Partial<Record<RetentionClass, number>>;
  /** Every tombstone in the store afterwards. */
  readonly tombstones: number;
  /** The newest checkpoint before the prune: nothing past it was touched. */
  readonly coveredBy: number;
  /** Seq of the manifest record (`audit.pruned`) and of the checkpoint over it, when written. */
  readonly manifestSeq?: number;
}

/** How many times a prune is planned again after the store changed under it. */
const PRUNE_ATTEMPTS = 3;

/** Every row from seq 1 on (a pruned store starts later), `pageSize` at a time. */
async function* rowsOf(store: Pick<AuditStore, 'readAudit'>, pageSize: number): AsyncGenerator<AuditRecord> {
  let from = 1;
  for (;;) {
    const page = await store.readAudit(from, pageSize);
    yield* page;
    if (page.length < pageSize) return;
    from = page[page.length - 1]!.seq + 1;
  }
}

/**
 * Prunes `store` by `opts.policy` (see the module comment). Refuses to touch a
 * chain that does not verify. Nothing past the newest signed checkpoint is
 * pruned, and the newest prune manifest is never tombstoned.
 * @throws BastionError `ERR_AUDIT_CHAIN_BROKEN` (detail `{seq, reason}`) when the chain does not verify;
 *   `ERR_AUDIT_CONFLICT` when the store kept changing under {@link PRUNE_ATTEMPTS} plans;
 *   `ERR_STORE`; TypeError without `sign` for a real prune.
 */
export async function pruneAudit(store: PrunableStore, opts: PruneAuditOptions): Promise<PruneAuditResult> {
  const dryRun = opts.dryRun === true;
  if (!dryRun && opts.sign === undefined) throw new TypeError('pruneAudit: sign is required unless dryRun');
  const pageSize = opts.pageSize ?? 1000;
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    const now = opts.now ?? new Date();
    const verified = await verifyAudit(store, { checkpointEvery: opts.checkpointEvery, pageSize });
    if (!verified.ok) {
      throw new BastionError('ERR_AUDIT_CHAIN_BROKEN', `audit: the chain does not verify (${verified.reason} at record ${verified.seq}); nothing was pruned`, {
        detail: { seq: verified.seq, reason: verified.reason },
      });
    }
    const coveredBy = (await store.listCheckpoints()).reduce((max, cp) => Math.max(max, cp.seq), 0);
    const plan = await planPrune(rowsOf(store, pageSize), opts.policy, now.getTime(), coveredBy, opts.maxTombstones ?? DEFAULT_MAX_TOMBSTONES);
    const result = {
      dryRun,
      changed: !plan.empty,
      firstSeq: plan.firstSeq,
      through: plan.through,
      deleted: plan.deleted,
      tombstoned: plan.tombstoned,
      tombstones: plan.tombstones.count,
      coveredBy,
    };
    if (plan.empty || dryRun) return result;
    const manifest: PruneManifest = {
      through: plan.through,
      head: plan.head,
      tombstones: plan.tombstones,
      deleted: plan.deleted,
      tombstoned: plan.tombstoned,
      now: now.toISOString(),
      retention: opts.policy,
      coveredBy,
    };
    const event: AuditEvent = {
      time: new Date().toISOString(),
      door: 'system',
      agent: null,
      method: AUDIT_PRUNED,
      decision: { effect: 'allow', reason: 'system', rule: 'audit.retention' },
      outcome: 'ok',
      durationMs: Math.max(0, Date.now() - started),
      detail: { ...manifest },
    };
    const sign = opts.sign!;
    try {
      const out = await store.pruneAudit((tip) => {
        const record = chainRecord(tip, event);
        return { records: [record], checkpoints: [sign(record)], firstSeq: plan.firstSeq, through: plan.through, tombstones: plan.tombstone, scannedTip: plan.scannedTip };
      });
      return { ...result, manifestSeq: out.records[0]!.seq };
    } catch (err) {
      if (!isBastionError(err, 'ERR_AUDIT_CONFLICT') || attempt >= PRUNE_ATTEMPTS) throw err;
    }
  }
}

/** A running daily prune ({@link startAuditRetention}). */
export interface AuditRetentionTask {
  /** Resolves when the prune started at start-up has settled. Never rejects. */
  readonly first: Promise<void>;
  /** Stops the schedule and waits for a running prune. */
  close(): Promise<void>;
}

/** How often `bastion serve` prunes, in ms: once a day. */
export const PRUNE_EVERY_MS = 86_400_000;

/**
 * Prunes now and then every `everyMs` (default {@link PRUNE_EVERY_MS}) in the
 * background; a prune never overlaps another. `report` is told each outcome
 * (the result, or the error: a failed prune is retried at the next tick). The
 * timer never keeps the process alive.
 */
export function startAuditRetention(
  run: () => Promise<PruneAuditResult>,
  report: (outcome: { ok: true; result: PruneAuditResult } | { ok: false; error: unknown }) => void,
  everyMs = PRUNE_EVERY_MS,
): AuditRetentionTask {
  let running: Promise<void> | undefined;
  let closed = false;
  const tick = (): Promise<void> => {
    if (closed || running !== undefined) return running ?? Promise.resolve();
    running = run()
      .then(
        (result) => report({ ok: true, result }),
        (error: unknown) => report({ ok: false, error }),
      )
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const first = tick();
  const timer = setInterval(() => void tick(), everyMs);
  timer.unref();
  return {
    first,
    async close() {
      closed = true;
      clearInterval(timer);
      await running;
    },
  };
}
