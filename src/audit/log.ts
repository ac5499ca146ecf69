/**
 * The audit log: chains events (./chain.ts) and stores them with group commit,
 * writes signed checkpoints (in the store and to a witness outside it), and
 * verifies a stored chain.
 *
 * Group commit: events appended while a batch is being committed (or in the same
 * turn of the event loop) go into the next batch, one `appendAuditRecords`
 * transaction (one fsync) for all of them. Every `append` promise settles only
 * after its batch is durable; on failure it rejects with `ERR_AUDIT_WRITE` and
 * the caller must fail closed (refuse the request it was recording).
 *
 * Checkpoints: the record at seq 1 and at every multiple of `checkpointEvery`
 * is checkpointed in the same transaction as the record (so no crash leaves a
 * gap), plus the newest record on close. Checkpoint positions written by no one
 * (records a CLI admin command appended) are signed when the log next opens or
 * commits. See docs/audit.md.
 */
import { BastionError } from '../errors.ts';
import type { KeyStore, StoredKey } from '../identity/key-store.ts';
import { generateEd25519, keyIdOf, publicKeyOf, signEd25519 } from '../util/crypto.ts';
import { DEFAULTS } from '../defaults.ts';
import { appendChained, tipOf, type AuditTip } from './append.ts';
import { OffThreadChainer } from './chainer.ts';
import type { AuditStore } from './store.ts';
import { sizedJsonSnapshot } from './canonical.ts';
import { AUDIT_CLOSE, AUDIT_OPEN, AUDIT_RECOVERY, CLOSE_MARKERS, inspectAuditTail, openMarkerDetail, type TailFinding } from './recovery.ts';
import { checkpointPayload, isCheckpointPosition, verifyChain, type VerifyResult } from './chain.ts';
import type { AuditCheckpoint, AuditEvent, AuditRecord } from './types.ts';
import type { AuditWitness } from './witness.ts';
import { RetentionCheck } from './retention-verify.ts';

/** Options of {@link AuditLog}. */
export interface AuditLogOptions {
  /** A signed checkpoint is written over seq 1 and every multiple of this many records (and on close). */
  readonly checkpointEvery: number;
  /** Clock for checkpoint times and key creation (tests inject one). */
  readonly now?: () => Date;
  /**
   * Protects the signing key at rest (the vault's key-encryption key): new keys
   * are stored sealed, sealed keys are opened with it. Without it, new keys are
   * stored as plain PKCS#8 and a sealed key cannot be used (`ERR_VAULT_KEY`).
   */
  readonly keyProtector?: KeyProtector;
  /** Most events in one transaction (default 1000). */
  readonly maxBatch?: number;
  /**
   * Most JSON characters (about bytes) of events in one transaction (default
   * {@link DEFAULT_MAX_BATCH_BYTES}); a single larger event still forms a batch alone.
   */
  readonly maxBatchBytes?: number;
  /**
   * The backlog bound: events appended but not yet durable (queued or being
   * committed) from which a batch is committed without lingering and
   * `AuditStep.batchedBounded` makes its caller wait for durability (default
   * {@link DEFAULT_MAX_PENDING_RECORDS}). What a crash can lose of batched
   * records: docs/audit.md "Crash window".
   */
  readonly maxPendingRecords?: number;
  /**
   * This writer's id (the gateway gives one per process). With it, the log
   * appends per-instance markers (`audit.open` on open, `audit.close` on close)
   * and, after an unclean shutdown, an `audit.recovery` record saying what was
   * found (./recovery.ts). Without it (CLI commands, tests) it appends nothing
   * on its own; the start checks run either way.
   */
  readonly instance?: string;
  /**
   * Ids of the instances in the cluster registry (Redis heartbeats,
   * src/cluster/registry.ts): on open, an instance that did not close is live
   * when listed, not crashed (./recovery.ts `decideLiveness`).
   */
  readonly liveInstances?: () => Promise<ReadonlySet<string>>;
  /** How long a batch of only lazy events waits for more before committing, in ms (default {@link LAZY_LINGER_MS}). */
  readonly lazyLingerMs?: number;
  /**
   * Where checkpoints are also written, outside the store (audit/witness.ts).
   * Written after the store commit, never blocking an append; a failure is
   * counted ({@link AuditLog.witnessFailures}), reported to `onWitnessFailure`
   * and retried with the next checkpoint. Closed by {@link AuditLog.close}.
   */
  readonly witness?: AuditWitness;
  /**
   * Told about each failed witness write (`ERR_AUDIT_WITNESS`) with the failures
   * counted so far; default `process.emitWarning`. Exceptions it throws are ignored.
   */
  readonly onWitnessFailure?: (err: BastionError, count: number) => void;
  /**
   * Hash the chain on a worker thread (./chainer.ts) instead of between the
   * doors' requests; the gateway sets it. Default false: a CLI command's few
   * records are not worth starting a thread. Stopped by {@link AuditLog.close}.
   */
  readonly chainOffThread?: boolean;
  /**
   * While the write gate is closed ({@link AuditLog.writable} false), how often
   * the store is probed, in ms (default {@link AUDIT_PROBE_EVERY_MS}).
   */
  readonly probeEveryMs?: number;
}

/**
 * Told about every appended event and every batch commit: src/observe/ feeds the
 * decision metrics, the access log line and the request span from here, the one
 * place every door's record passes. Exceptions an observer throws are ignored.
 */
export interface AuditObserver {
  /** Synchronously inside {@link AuditLog.append}, in the caller's async context, with the snapshot to be written. */
  appended?(event: AuditEvent): void;
  /** After each batch commit: records in the batch, elapsed ms, whether it was written. */
  committed?(records: number, ms: number, ok: boolean): void;
}

/** Seals and opens a signing key's PKCS#8 PEM for storage (bound to the key id). */
export interface KeyProtector {
  seal(privateKeyPem: string, keyId: string): string;
  /** @throws BastionError `ERR_VAULT_DECRYPT` when it cannot be opened. */
  open(stored: string, keyId: string): string;
}

/** Prefix of a sealed private key in `StoredKey.privateKeyPem`. */
export const SEALED_KEY_PREFIX = 'sealed:v1:';

interface Pending {
  readonly event: AuditEvent;
  /** JSON characters of the event. */
  readonly size: number;
  /** When it was appended (`performance.now()`, ms). */
  readonly at: number;
  readonly lazy: boolean;
  readonly resolve: (record: AuditRecord) => void;
  readonly reject: (err: BastionError) => void;
}

interface SigningKey {
  readonly keyId: string;
  readonly privateKeyPem: string;
}

const DEFAULT_MAX_BATCH = 1000;
/** Default most JSON characters (about bytes) of events in one transaction: 1 MiB. */
export const DEFAULT_MAX_BATCH_BYTES = 1024 * 1024;
/** Default backlog bound (events appended, not yet durable). */
export const DEFAULT_MAX_PENDING_RECORDS = 512;
/** Most checkpoints kept for a witness retry after failures (the newest). */
const MAX_UNWITNESSED = 1000;

/** The checkpoint positions (seq 1 and multiples of `every`) in `[from, to]`, ascending. */
function positionsIn(from: number, to: number, every: number): number[] {
  const out: number[] = [];
  if (from <= 1 && to >= 1) out.push(1);
  for (let seq = Math.max(every, Math.ceil(Math.max(from, 2) / every) * every); seq <= to; seq += every) out.push(seq);
  return out;
}
/** How long a batch of only lazy events waits for more before it is committed, in ms. */
export const LAZY_LINGER_MS = 5;
/** Default interval of the store probe while the write gate is closed, in ms. */
export const AUDIT_PROBE_EVERY_MS = 500;
/** Method of the system record the store probe writes when the write gate reopens (docs/audit.md "Store outage"). */
export const AUDIT_RESTORED = 'audit.restored';

/** What the audit log needs from a store: the chain and its checkpoints, and the `audit` signing keys. */
export type AuditLogStore = AuditStore & KeyStore;

export class AuditLog {
  readonly #store: AuditLogStore;
  readonly #every: number;
  readonly #maxBatch: number;
  readonly #maxBatchBytes: number;
  readonly #maxPending: number;
  readonly #instance: string | undefined;
  /** Events appended and not yet settled (queued or in a commit). */
  #unflushed = 0;
  /** JSON characters of the queued events. */
  #queuedSize = 0;
  #finding: TailFinding | undefined;
  /** This instance's clean-close marker was appended (by its owner: `serve.stop`). */
  #closeMarked = false;
  readonly #linger: number;
  readonly #now: () => Date;
  readonly #subscribers = new Set<(record: AuditRecord) => void>();
  readonly #observers = new Set<AuditObserver>();
  #queue: Pending[] = [];
  #draining: Promise<void> | undefined;
  #key: SigningKey | undefined;
  readonly #protector: KeyProtector | undefined;
  /** Highest seq this process knows to be checkpointed; undefined until read from the store. */
  #checkpointedSeq: number | undefined;
  /** The chain tip as last written or read; undefined with `#tipKnown` false: read it from the store. */
  #tip: AuditTip | undefined;
  #tipKnown = false;
  /** Every checkpoint position at or below this seq is checkpointed; undefined until {@link AuditLog.#ready}. */
  #signedThrough: number | undefined;
  #readying: Promise<void> | undefined;
  readonly #witness: AuditWitness | undefined;
  readonly #onWitnessFailure: (err: BastionError, count: number) => void;
  readonly #chainer: OffThreadChainer | undefined;
  /** Checkpoints whose witness write failed, retried with the next (newest kept). */
  #unwitnessed: AuditCheckpoint[] = [];
  #witnessTail: Promise<void> = Promise.resolve();
  #witnessFailures = 0;
  /** Serializes checkpoint writes. */
  #checkpointLock: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Non-lazy events in the queue: while there are none, the drain lingers to batch more. */
  #urgent = 0;
  #flushing = 0;
  #wake: (() => void) | undefined;
  /** The write gate: false from a failed commit until a commit succeeds (see {@link AuditLog.writable}). */
  #writable = true;
  /** While the gate is closed: when it closed, and the commits and records that failed since. */
  #outage: { since: string; commits: number; records: number } | undefined;
  readonly #probeEveryMs: number;
  #probeTimer: ReturnType<typeof setInterval> | undefined;
  #probing = false;

  /** Prefer {@link AuditLog.open}, which creates the signing key up front; otherwise it is created on the first checkpoint. */
  constructor(store: AuditLogStore, opts: AuditLogOptions) {
    if (!Number.isSafeInteger(opts.checkpointEvery) || opts.checkpointEvery < 1) {
      throw new RangeError('AuditLog: checkpointEvery must be a positive integer');
    }
    const maxBatch = opts.maxBatch ?? DEFAULT_MAX_BATCH;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new RangeError('AuditLog: maxBatch must be a positive integer');
    this.#store = store;
    this.#every = opts.checkpointEvery;
    this.#maxBatch = maxBatch;
    const maxBatchBytes = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    if (!Number.isSafeInteger(maxBatchBytes) || maxBatchBytes < 1) throw new RangeError('AuditLog: maxBatchBytes must be a positive integer');
    this.#maxBatchBytes = maxBatchBytes;
    const maxPending = opts.maxPendingRecords ?? DEFAULT_MAX_PENDING_RECORDS;
    if (!Number.isSafeInteger(maxPending) || maxPending < 1) throw new RangeError('AuditLog: maxPendingRecords must be a positive integer');
    this.#maxPending = maxPending;
    if (opts.instance !== undefined && (typeof opts.instance !== 'string' || opts.instance.length === 0 || opts.instance.length > 200)) {
      throw new RangeError('AuditLog: instance must be a string of 1-200 characters');
    }
    this.#instance = opts.instance;
    const linger = opts.lazyLingerMs ?? LAZY_LINGER_MS;
    if (!Number.isSafeInteger(linger) || linger < 0) throw new RangeError('AuditLog: lazyLingerMs must be a non-negative integer (ms)');
    this.#linger = linger;
    const probeEvery = opts.probeEveryMs ?? AUDIT_PROBE_EVERY_MS;
    if (!Number.isSafeInteger(probeEvery) || probeEvery < 1) throw new RangeError('AuditLog: probeEveryMs must be a positive integer (ms)');
    this.#probeEveryMs = probeEvery;
    this.#now = opts.now ?? (() => new Date());
    this.#protector = opts.keyProtector;
    this.#witness = opts.witness;
    this.#chainer = opts.chainOffThread === true ? new OffThreadChainer() : undefined;
    this.#onWitnessFailure =
      opts.onWitnessFailure ?? ((err) => process.emitWarning(err.message, { type: 'BastionAuditWarning', code: err.code }));
  }

  /**
   * Opens the log: ensures an Ed25519 audit signing key exists in the store
   * (generating and storing one when missing); before signing anything, checks
   * the store's tail (./recovery.ts: the records after the last checkpoint chain
   * onto it, no checkpoint lies past the tip, the witness agrees with the store);
   * then signs checkpoint positions that records appended without a checkpoint
   * (by CLI admin commands, or before a crash) left uncovered, and sends the
   * witness the store's checkpoints it lacks. With `opts.instance`, appends an
   * `audit.recovery` record after an unclean shutdown and this instance's
   * `audit.open` marker, and checkpoints it (so the witness holds it at once).
   * On failure the witness is closed.
   * Throws `ERR_AUDIT_CHAIN_BROKEN` (the store was cut or rewritten: nothing is
   * signed), `ERR_AUDIT_WITNESS` (the witness cannot be read), `ERR_STORE`,
   * `ERR_AUDIT_WRITE`, `ERR_VAULT_KEY`.
   */
  static async open(store: AuditLogStore, opts: AuditLogOptions): Promise<AuditLog> {
    const log = new AuditLog(store, opts);
    try {
      await log.#signingKey();
      const witness = log.#witness;
      const recent = witness === undefined ? undefined : witness.recent === undefined ? null : await witness.recent();
      log.#finding = await inspectAuditTail(store, { witness: recent, markers: log.#instance !== undefined, ...(opts.liveInstances ? { liveInstances: opts.liveInstances } : {}) });
      await log.#ready();
      await log.#catchUpWitness();
      if (log.#instance !== undefined) await log.#markOpen(log.#instance, log.#finding);
    } catch (err) {
      // Nothing keeps running for a log that did not open.
      log.#closed = true;
      await log.#chainer?.close().catch(() => undefined);
      await log.#witnessTail;
      await log.#witness?.close().catch(() => undefined);
      throw err;
    }
    return log;
  }

  /** What the start checks found (./recovery.ts); undefined for a log built with `new`. */
  get recovery(): TailFinding | undefined {
    return this.#finding;
  }

  /** Events appended and not yet durable (queued or being committed). */
  get backlog(): number {
    return this.#unflushed;
  }

  /** The backlog bound ({@link AuditLogOptions.maxPendingRecords}). */
  get maxPendingRecords(): number {
    return this.#maxPending;
  }

  /**
   * The write gate, cheap to read on every request: false from a failed commit
   * until a commit succeeds. While it is false, a door must not forward an
   * action (its record could not be written: fail closed); the log probes the
   * store every `probeEveryMs` (a read of the tip, then a real write: one
   * {@link AUDIT_RESTORED} record saying how long the outage lasted and how many
   * commits and records failed), and any successful commit, the probe's or a
   * refusal's, opens the gate again. False once the log is closed.
   */
  get writable(): boolean {
    return this.#writable && !this.#closed;
  }

  #closeGate(records: number): void {
    this.#writable = false;
    this.#outage ??= { since: this.#now().toISOString(), commits: 0, records: 0 };
    this.#outage.commits++;
    this.#outage.records += records;
    if (this.#probeTimer === undefined && !this.#closed) {
      this.#probeTimer = setInterval(() => void this.#probe(), this.#probeEveryMs);
      // The probe never keeps the process alive.
      this.#probeTimer.unref();
    }
  }

  #openGate(): void {
    this.#writable = true;
    this.#outage = undefined;
    if (this.#probeTimer !== undefined) clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
  }

  /**
   * One probe of a closed gate (at most one at a time; the store's own timeouts
   * bound it): a read of the tip, which fails fast while the store is
   * unreachable, then a real write, since a store that reads may still refuse
   * writes (disk full, a read-only replica). The write is a system record, not a
   * second record of any request; its commit opens the gate.
   */
  async #probe(): Promise<void> {
    const outage = this.#outage;
    if (this.#probing || this.#closed || this.#writable || outage === undefined) return;
    this.#probing = true;
    try {
      await this.#store.lastAudit();
      if (this.#writable || this.#closed) return;
      const time = this.#now().toISOString();
      await this.#enqueue(
        {
          time,
          door: 'system',
          agent: null,
          method: AUDIT_RESTORED,
          decision: { effect: 'allow', reason: 'system', rule: 'audit' },
          outcome: 'ok',
          durationMs: Math.max(0, Date.parse(time) - Date.parse(outage.since)),
          detail: { since: outage.since, failedCommits: outage.commits, failedRecords: outage.records, ...(this.#instance !== undefined ? { instance: this.#instance } : {}) },
        },
        false,
      );
    } catch {
      // Still down: the gate stays closed and the next tick probes again.
    } finally {
      this.#probing = false;
    }
  }

  async #markOpen(instance: string, finding: TailFinding): Promise<void> {
    const time = this.#now().toISOString();
    const base = { time, door: 'system', agent: null, decision: { effect: 'allow', reason: 'system', rule: 'audit' }, outcome: 'ok', durationMs: 0 } as const;
    if (finding.uncleanShutdown) {
      await this.append({ ...base, method: AUDIT_RECOVERY, detail: { instance, ...finding } });
    }
    await this.append({ ...base, method: AUDIT_OPEN, detail: { ...openMarkerDetail(instance) } });
    // Sign now: what the recovery record describes, and the marker, reach the witness before any traffic.
    await this.checkpoint();
  }

  /** Witness writes that failed since the log opened (each is retried with the next checkpoint). */
  get witnessFailures(): number {
    return this.#witnessFailures;
  }

  /**
   * Appends `event`; resolves with its stored record once the batch holding it
   * is durable. `lazy`: nobody waits on this record (it is written after the
   * response, as the network door does), so its batch may wait up to
   * {@link LAZY_LINGER_MS} for more events before committing. Rejects with `BastionError('ERR_AUDIT_WRITE')` when the write
   * failed or the log is closed.
   */
  append(event: AuditEvent, opts: { lazy?: boolean } = {}): Promise<AuditRecord> {
    if (this.#closed) return Promise.reject(new BastionError('ERR_AUDIT_WRITE', 'audit: log is closed'));
    return this.#enqueue(event, opts.lazy === true);
  }

  /** A batch is ready to go without lingering: at the backlog bound or a full batch's size. */
  #full(): boolean {
    return this.#unflushed >= this.#maxPending || this.#queue.length >= this.#maxBatch || this.#queuedSize >= this.#maxBatchBytes;
  }

  #enqueue(event: AuditEvent, lazy: boolean): Promise<AuditRecord> {
    let sized: { value: AuditEvent; size: number };
    try {
      // A snapshot: a non-JSON event fails alone instead of failing its whole batch, and
      // a caller mutating the event after append cannot change what is recorded.
      sized = sizedJsonSnapshot(event);
    } catch (err) {
      return Promise.reject(new BastionError('ERR_AUDIT_WRITE', 'audit: event is not JSON', { cause: err }));
    }
    const snapshot = sized.value;
    if (snapshot.door === 'system' && CLOSE_MARKERS.has(snapshot.method) && this.#instance !== undefined && snapshot.detail?.['instance'] === this.#instance) this.#closeMarked = true;
    return new Promise<AuditRecord>((resolve, reject) => {
      this.#queue.push({ event: snapshot, size: sized.size, at: performance.now(), lazy, resolve, reject });
      this.#unflushed++;
      this.#queuedSize += sized.size;
      for (const o of this.#observers) {
        try {
          o.appended?.(snapshot);
        } catch {
          // An observer's failure must not affect the writer.
        }
      }
      if (!lazy) this.#urgent++;
      if (!lazy || this.#full()) this.#wake?.();
      this.#draining ??= this.#drain();
    });
  }

  /** Resolves when every event appended so far has been committed (or failed). */
  async flush(): Promise<void> {
    this.#flushing++;
    try {
      while (this.#draining !== undefined) {
        this.#wake?.();
        await this.#draining;
      }
    } finally {
      this.#flushing--;
    }
  }

  /**
   * Writes a signed checkpoint over the newest record unless it is already
   * checkpointed (used on shutdown). Returns it, or undefined when there was
   * nothing to checkpoint. Throws `ERR_AUDIT_WRITE`.
   */
  async checkpoint(): Promise<AuditCheckpoint | undefined> {
    await this.flush();
    return this.#locked(async () => {
      let last: AuditRecord | undefined;
      try {
        last = await this.#store.lastAudit();
      } catch (err) {
        throw new BastionError('ERR_AUDIT_WRITE', 'audit: checkpoint failed', { cause: err });
      }
      if (last === undefined || last.seq <= (await this.#knownCheckpointedSeq())) return undefined;
      return this.#writeCheckpoint(last);
    });
  }

  /** Adds an observer of appends and commits (see {@link AuditObserver}). Returns the function that removes it. */
  observe(observer: AuditObserver): () => void {
    this.#observers.add(observer);
    return () => {
      this.#observers.delete(observer);
    };
  }

  /** Subscribes to committed records, in seq order (an in-process tail). Returns the unsubscribe function. */
  subscribe(fn: (record: AuditRecord) => void): () => void {
    const entry = (record: AuditRecord): void => fn(record);
    this.#subscribers.add(entry);
    return () => {
      this.#subscribers.delete(entry);
    };
  }

  /**
   * Stops accepting events, commits what is pending, writes the final checkpoint
   * and closes the witness (after its last write settled). Does not close the store.
   */
  async close(): Promise<void> {
    const wasClosed = this.#closed;
    this.#closed = true;
    if (this.#instance !== undefined && !wasClosed && !this.#closeMarked) {
      // This instance's clean-close marker; a failed write leaves the next start to report an unclean shutdown.
      const time = this.#now().toISOString();
      this.#enqueue(
        { time, door: 'system', agent: null, method: AUDIT_CLOSE, decision: { effect: 'allow', reason: 'system', rule: 'audit' }, outcome: 'ok', durationMs: 0, detail: { instance: this.#instance } },
        false,
      ).catch(() => undefined);
    }
    await this.flush();
    if (this.#probeTimer !== undefined) clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    try {
      await this.checkpoint();
    } finally {
      await this.#chainer?.close();
      await this.#witnessTail;
      await this.#witness?.close().catch((err: unknown) => this.#witnessFailed(err));
    }
  }

  /** Resolves when every witness write queued so far has settled. Never rejects. */
  async flushWitness(): Promise<void> {
    await this.#witnessTail;
  }

  async #drain(): Promise<void> {
    try {
      // Let the rest of this turn's appends join the first batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#queue.length > 0) {
        // Only lazy events (the network door's, recorded after the response): wait a little so
        // one commit (one fsync) carries many of them. An urgent append, a flush or a full batch
        // ends the wait. The linger counts from the oldest queued event: events that arrived during
        // the previous commit have waited already (issue 14: a fresh linger after every commit
        // stretched time-to-durable under load).
        const wait = this.#linger - (performance.now() - this.#queue[0]!.at);
        if (wait > 0 && this.#urgent === 0 && this.#flushing === 0 && !this.#closed && !this.#full()) {
          await new Promise<void>((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              this.#wake = undefined;
              resolve();
            };
            const timer = setTimeout(done, wait);
            this.#wake = done;
          });
        }
        const batch = this.#takeBatch();
        for (const p of batch) if (!p.lazy) this.#urgent--;
        await this.#commit(batch);
      }
    } finally {
      this.#draining = undefined;
    }
  }

  #committed(count: number, began: number, ok: boolean): void {
    const ms = performance.now() - began;
    for (const o of this.#observers) {
      try {
        o.committed?.(count, ms, ok);
      } catch {
        // An observer's failure must not affect the writer.
      }
    }
  }

  /** The next batch: at most `maxBatch` events and `maxBatchBytes` characters (one oversized event goes alone). */
  #takeBatch(): Pending[] {
    let n = 0;
    let size = 0;
    while (n < this.#queue.length && n < this.#maxBatch) {
      const next = this.#queue[n]!.size;
      if (n > 0 && size + next > this.#maxBatchBytes) break;
      size += next;
      n++;
    }
    this.#queuedSize -= size;
    return this.#queue.splice(0, n);
  }

  async #commit(batch: readonly Pending[]): Promise<void> {
    let records: AuditRecord[];
    let checkpoints: readonly AuditCheckpoint[];
    const began = performance.now();
    try {
      await this.#ready();
      ({ records, checkpoints } = await appendChained(
        this.#store,
        batch.map((p) => p.event),
        {
          ...(this.#tipKnown ? { tip: this.#tip } : {}),
          snapshots: true,
          ...(this.#chainer ? { chain: this.#chainer.chain } : {}),
          checkpoints: (chained) => this.#positionCheckpoints(chained),
        },
      ));
      if (records.length !== batch.length) throw new Error('the chain returned a different number of records');
    } catch (err) {
      this.#tipKnown = false;
      // Closed before the callers learn of it: a door that checks the gate next refuses instead of acting.
      this.#closeGate(batch.length);
      const failure = new BastionError('ERR_AUDIT_WRITE', 'audit: write failed', { cause: err });
      this.#unflushed -= batch.length;
      for (const p of batch) p.reject(failure);
      this.#committed(batch.length, began, false);
      return;
    }
    this.#committed(batch.length, began, true);
    if (!this.#writable) this.#openGate();
    const last = records[records.length - 1]!;
    this.#tip = tipOf(last);
    this.#tipKnown = true;
    this.#signedThrough = last.seq;
    for (const cp of checkpoints) this.#checkpointedSeq = Math.max(this.#checkpointedSeq ?? 0, cp.seq);
    this.#witnessWrite(checkpoints);
    // Settled before the callers resume, so a caller that appends again sees the backlog without its batch.
    this.#unflushed -= batch.length;
    for (let i = 0; i < batch.length; i++) batch[i]!.resolve(records[i]!);
    for (const record of records) {
      for (const fn of this.#subscribers) {
        try {
          fn(record);
        } catch {
          // A subscriber's failure must not affect the writers.
        }
      }
    }
  }

  /**
   * The checkpoints to commit with `records`: every checkpoint position from the
   * last one known covered up to the batch's end. Positions before the batch
   * (records another writer appended, such as a CLI admin command) are read from
   * the store and signed too.
   */
  async #positionCheckpoints(records: readonly AuditRecord[]): Promise<AuditCheckpoint[]> {
    const first = records[0]!.seq;
    const out: AuditCheckpoint[] = [];
    for (const seq of positionsIn((this.#signedThrough ?? 0) + 1, first - 1, this.#every)) {
      const [record] = await this.#store.readAudit(seq, 1);
      if (record?.seq === seq) out.push(await this.#sign(record));
    }
    for (const record of records) if (isCheckpointPosition(record.seq, this.#every)) out.push(await this.#sign(record));
    return out;
  }

  /**
   * Once per log: reads the highest checkpointed seq and the tip, and signs the
   * checkpoint positions between them (records appended without checkpoints).
   */
  #ready(): Promise<void> {
    this.#readying ??= (async () => {
      const checkpointed = await this.#knownCheckpointedSeq();
      const last = await this.#store.lastAudit();
      const tipSeq = last?.seq ?? 0;
      for (const seq of positionsIn(checkpointed + 1, tipSeq, this.#every)) {
        const [record] = await this.#store.readAudit(seq, 1);
        if (record?.seq !== seq) continue;
        const cp = await this.#sign(record);
        await this.#store.appendCheckpoint(cp);
        this.#checkpointedSeq = Math.max(this.#checkpointedSeq ?? 0, seq);
        this.#witnessWrite([cp]);
      }
      this.#signedThrough = Math.max(checkpointed, tipSeq);
    })().catch((err: unknown) => {
      this.#readying = undefined;
      throw err;
    });
    return this.#readying;
  }

  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#checkpointLock.then(fn, fn);
    this.#checkpointLock = run.catch(() => undefined);
    return run;
  }

  async #writeCheckpoint(record: AuditRecord): Promise<AuditCheckpoint> {
    try {
      const checkpoint = await this.#sign(record);
      await this.#store.appendCheckpoint(checkpoint);
      this.#checkpointedSeq = Math.max(this.#checkpointedSeq ?? 0, record.seq);
      this.#witnessWrite([checkpoint]);
      return checkpoint;
    } catch (err) {
      throw new BastionError('ERR_AUDIT_WRITE', 'audit: checkpoint failed', { cause: err });
    }
  }

  /**
   * A synchronous signer of checkpoints with the audit key (loaded, and created
   * if missing, now), for a transaction that must not wait while it holds the
   * store's audit lock (the retention prune, ./prune.ts). The checkpoints it
   * returns are not stored by the log. Throws as the key loading does (`ERR_VAULT_KEY`, `ERR_STORE`).
   */
  async checkpointSigner(): Promise<(record: AuditRecord) => AuditCheckpoint> {
    const key = await this.#signingKey();
    return (record) => {
      const unsigned = { seq: record.seq, hash: record.hash, time: this.#now().toISOString(), keyId: key.keyId };
      return { ...unsigned, signature: signEd25519(key.privateKeyPem, checkpointPayload(unsigned)) };
    };
  }

  /** A checkpoint over `record`, signed now with the audit key. */
  async #sign(record: AuditRecord): Promise<AuditCheckpoint> {
    const key = await this.#signingKey();
    const unsigned = { seq: record.seq, hash: record.hash, time: this.#now().toISOString(), keyId: key.keyId };
    return { ...unsigned, signature: signEd25519(key.privateKeyPem, checkpointPayload(unsigned)) };
  }

  /** Queues `checkpoints` (and earlier failed ones) for the witness; never blocks, never throws. */
  #witnessWrite(checkpoints: readonly AuditCheckpoint[]): void {
    const witness = this.#witness;
    if (witness === undefined || checkpoints.length === 0) return;
    this.#witnessTail = this.#witnessTail.then(async () => {
      const batch = [...this.#unwitnessed, ...checkpoints];
      this.#unwitnessed = [];
      try {
        await witness.write(batch);
      } catch (err) {
        this.#unwitnessed = batch.slice(-MAX_UNWITNESSED);
        this.#witnessFailed(err);
      }
    });
  }

  #witnessFailed(err: unknown): void {
    this.#witnessFailures++;
    const failure = err instanceof BastionError && err.code === 'ERR_AUDIT_WITNESS' ? err : new BastionError('ERR_AUDIT_WITNESS', 'audit: witness write failed', { cause: err });
    try {
      this.#onWitnessFailure(failure, this.#witnessFailures);
    } catch {
      // A failing reporter must not affect the writers.
    }
  }

  /** Sends the witness the store's checkpoints past the last one it holds (lost by a crash between the two writes). */
  async #catchUpWitness(): Promise<void> {
    const witness = this.#witness;
    if (witness?.lastSeq === undefined) return;
    let held: number;
    try {
      held = await witness.lastSeq();
    } catch (err) {
      this.#witnessFailed(err);
      return;
    }
    const missing = (await this.#store.listCheckpoints()).filter((cp) => cp.seq > held);
    this.#witnessWrite(missing);
  }

  async #knownCheckpointedSeq(): Promise<number> {
    if (this.#checkpointedSeq === undefined) {
      const checkpoints = await this.#store.listCheckpoints();
      const seq = checkpoints.reduce((max, cp) => Math.max(max, cp.seq), 0);
      this.#checkpointedSeq = Math.max(this.#checkpointedSeq ?? 0, seq);
    }
    return this.#checkpointedSeq;
  }

  async #signingKey(): Promise<SigningKey> {
    if (this.#key !== undefined) return this.#key;
    let stored: StoredKey | undefined = await this.#store.getKey('audit');
    if (stored === undefined) {
      const pair = generateEd25519();
      const id = keyIdOf(pair.publicKeyPem);
      stored = {
        id,
        purpose: 'audit',
        alg: 'Ed25519',
        publicKeyPem: pair.publicKeyPem,
        privateKeyPem: this.#protector ? SEALED_KEY_PREFIX + this.#protector.seal(pair.privateKeyPem, id) : pair.privateKeyPem,
        createdAt: this.#now().getTime(),
      };
      await this.#store.putKey(stored);
    }
    let pem = stored.privateKeyPem;
    if (pem.startsWith(SEALED_KEY_PREFIX)) {
      if (!this.#protector) throw new BastionError('ERR_VAULT_KEY', 'audit: the signing key is sealed and no vault key is loaded');
      pem = this.#protector.open(pem.slice(SEALED_KEY_PREFIX.length), stored.id);
    }
    // The key id is derived from the private key actually used, so a checkpoint always names the key that verifies it.
    this.#key = { keyId: keyIdOf(publicKeyOf(pem)), privateKeyPem: pem };
    return this.#key;
  }
}

/** Options of {@link verifyAudit}. */
export interface VerifyAuditOptions {
  /**
   * Trusted SPKI PEM public key(s) (several PEM blocks may be concatenated). When
   * given, only checkpoints signed by these keys count: someone with write access
   * to the store could re-sign with a key of their own, so an exported key copy
   * is the stronger check. Otherwise every audit key in the store is used.
   */
  readonly publicKeyPem?: string;
  /** Records read per page (default 1000). */
  readonly pageSize?: number;
  /**
   * The density rule's allowance: the largest `audit.checkpointEvery` the store
   * was written with (default {@link DEFAULTS.auditCheckpointEvery}). See `verifyChain`.
   */
  readonly checkpointEvery?: number;
  /** Checkpoints read from the witness (`readWitnessFile`), compared with the store. */
  readonly witness?: readonly AuditCheckpoint[];
}

/**
 * Verifies the audit chain held in `store`, streaming records page by page:
 * hashes, links, checkpoint signatures, checkpoint density and, given
 * `opts.witness`, the witness's checkpoints. Safe on a live store: density is
 * checked up to the tip read before the checkpoints were listed.
 * A broken chain is a result (`ok: false`), not an exception. Throws `ERR_STORE`
 * when the store cannot be read, `TypeError` when `publicKeyPem` holds no public
 * key, `RangeError` for a bad `pageSize` or `checkpointEvery`.
 */
export async function verifyAudit(store: AuditStore & Pick<KeyStore, 'listKeys'>, opts: VerifyAuditOptions = {}): Promise<VerifyResult> {
  const pageSize = opts.pageSize ?? 1000;
  if (!Number.isSafeInteger(pageSize) || pageSize < 1) throw new RangeError('verifyAudit: pageSize must be a positive integer');
  const keys = new Map<string, string>();
  if (opts.publicKeyPem !== undefined) {
    for (const pem of pemPublicKeys(opts.publicKeyPem)) keys.set(keyIdOf(pem), pem);
  } else {
    for (const key of await store.listKeys('audit')) {
      try {
        keys.set(keyIdOf(key.publicKeyPem), key.publicKeyPem);
      } catch {
        // An unparseable stored key verifies nothing; checkpoints naming it fail as key_unknown.
      }
    }
  }
  const checkpointEvery = opts.checkpointEvery ?? DEFAULTS.auditCheckpointEvery;
  // The tip before the checkpoints are listed: a live gateway commits each position checkpoint with its
  // record, so every one at or below this tip is listed; records appended later are checked for density next time.
  const tipBefore: unknown = (await store.lastAudit())?.seq ?? 0;
  const checkpoints = await store.listCheckpoints();
  // A pruned store starts past seq 1: verify from its first record, whose link the newest prune manifest vouches for (./retention-verify.ts).
  const [first] = await store.readAudit(1, 1);
  const firstSeq: unknown = first?.seq;
  const after = typeof firstSeq === 'number' && Number.isSafeInteger(firstSeq) && firstSeq > 1 ? { seq: firstSeq - 1, hash: String(first!.prevHash) } : undefined;
  const retention = new RetentionCheck();
  const result = await verifyChain(retention.observe(readAllAudit(store, pageSize)), checkpoints, keys, {
    checkpointEvery,
    // A tampered tip seq is itself a chain fault; until the stream reaches it, enforce density everywhere.
    densityThrough: typeof tipBefore === 'number' && Number.isSafeInteger(tipBefore) ? tipBefore : Number.MAX_SAFE_INTEGER,
    ...(opts.witness === undefined ? {} : { witness: opts.witness }),
    ...(after === undefined ? {} : { after }),
    acceptTombstones: true,
  });
  if (!result.ok) return result;
  return retention.finish() ?? result;
}

/** The SPKI PEM blocks in `text`; `TypeError` when there is none or one does not parse. */
function pemPublicKeys(text: string): string[] {
  if (typeof text !== 'string') throw new TypeError('verifyAudit: publicKeyPem must be a string');
  const blocks = text.match(/-----BEGIN PUBLIC KEY-----[A-Za-z0-9+/=\s]*-----END PUBLIC KEY-----/g) ?? [];
  if (blocks.length === 0) throw new TypeError('verifyAudit: publicKeyPem holds no PEM public key');
  for (const pem of blocks) {
    try {
      keyIdOf(pem);
    } catch (err) {
      throw new TypeError('verifyAudit: publicKeyPem holds an unparseable public key', { cause: err });
    }
  }
  return blocks.map((b) => `${b}\n`);
}

/** Every record, ascending, `pageSize` at a time. */
async function* readAllAudit(store: Pick<AuditStore, 'readAudit'>, pageSize: number): AsyncGenerator<AuditRecord> {
  let from = 1;
  for (;;) {
    const page = await store.readAudit(from, pageSize);
    yield* page;
    if (page.length < pageSize) return;
    const lastSeq: unknown = page[page.length - 1]!.seq;
    // A tampered seq that does not advance would loop; the verifier has already failed on it.
    if (typeof lastSeq !== 'number' || !Number.isSafeInteger(lastSeq) || lastSeq < from) return;
    from = lastSeq + 1;
  }
}
