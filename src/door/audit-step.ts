/**
 * The kernel's audit step: every request through a door ends here, in one
 * record. The door says whether the record must be durable before the response
 * (tool calls, approvals, refusals of the tool and agent-to-agent doors) or may
 * be batched after it (high-volume proxy and model traffic).
 *
 * A failed write is never silent: it is counted, reported to `onFailure` (the
 * composition root turns that into a stderr line and an admin alert, at most one
 * per `reportEveryMs`), and for a durable record the caller learns it and must
 * refuse the request (`audit.write_failed`, 503): an action that cannot be
 * recorded does not happen.
 */
import type { AuditEvent, AuditRecord } from '../audit/types.ts';

/** Whether the response waits for the record. */
export type Durability = 'durable' | 'batched';

/** A failed audit write, as reported to {@link AuditStepOptions.onFailure}. Carries no event content beyond its door and method. */
export interface AuditFailure {
  readonly door: AuditEvent['door'];
  readonly method: string;
  readonly durability: Durability;
  /** The error code of the failure (`ERR_AUDIT_WRITE` from the log). */
  readonly code: string;
  /** Failures counted so far, this one included. */
  readonly count: number;
}

/** Options of {@link AuditStep}. */
export interface AuditStepOptions {
  /** Called on every failed write whose report is not suppressed by `reportEveryMs`. Must not throw. */
  readonly onFailure?: (failure: AuditFailure) => void;
  /** At most one report per this many ms (default 60 000); the count keeps growing meanwhile. */
  readonly reportEveryMs?: number;
  readonly now?: () => number;
}

/** What the step writes to: the audit log's append. */
export interface AuditSink {
  append(event: AuditEvent, opts?: { lazy?: boolean }): Promise<AuditRecord>;
  /** Events appended and not yet durable (the audit log's backlog); without it there is no backpressure. */
  readonly backlog?: number;
  /** The backlog bound past which {@link AuditStep.batchedBounded} waits for durability. */
  readonly maxPendingRecords?: number;
  /** The audit log's write gate (`AuditLog.writable`); without it the sink counts as writable. */
  readonly writable?: boolean;
}

/** Failed writes, by durability. */
export interface AuditFailureCounts {
  readonly durable: number;
  readonly batched: number;
}

export class AuditStep {
  readonly #sink: AuditSink;
  readonly #onFailure: ((failure: AuditFailure) => void) | undefined;
  readonly #reportEveryMs: number;
  readonly #now: () => number;
  #durableFailures = 0;
  #batchedFailures = 0;
  #lastReport = Number.NEGATIVE_INFINITY;

  constructor(sink: AuditSink, opts: AuditStepOptions = {}) {
    this.#sink = sink;
    this.#onFailure = opts.onFailure;
    this.#reportEveryMs = opts.reportEveryMs ?? 60_000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Writes `event` and resolves once it is durable: `true`, or `false` when the
   * write failed (counted and reported; the caller must refuse the request it
   * records, with reason `audit.write_failed`). Never rejects.
   */
  async durable(event: AuditEvent): Promise<boolean> {
    try {
      await this.#sink.append(event);
      return true;
    } catch (err) {
      this.#failed(event, 'durable', err);
      return false;
    }
  }

  /** Queues `event` in the next batch and returns at once; a failed write is counted and reported. */
  batched(event: AuditEvent): void {
    let pending: Promise<unknown>;
    try {
      pending = this.#sink.append(event, { lazy: true });
    } catch (err) {
      this.#failed(event, 'batched', err);
      return;
    }
    pending.catch((err: unknown) => this.#failed(event, 'batched', err));
  }

  /**
   * {@link AuditStep.batched} with backpressure: queues `event` and resolves at
   * once while the log's backlog (events not yet durable) is within
   * `maxPendingRecords`; past it, resolves only once `event` is durable (or its
   * write failed, counted and reported). A door awaits it before taking the
   * next request, so a slow disk slows the door instead of growing what a crash
   * can lose: at most the bound plus one record per waiting request
   * (docs/audit.md "Crash window"). Never rejects.
   */
  async batchedBounded(event: AuditEvent): Promise<void> {
    let pending: Promise<unknown>;
    try {
      pending = this.#sink.append(event, { lazy: true });
    } catch (err) {
      this.#failed(event, 'batched', err);
      return;
    }
    const over = (this.#sink.backlog ?? 0) > (this.#sink.maxPendingRecords ?? Number.POSITIVE_INFINITY);
    if (!over) {
      pending.catch((err: unknown) => this.#failed(event, 'batched', err));
      return;
    }
    try {
      await pending;
    } catch (err) {
      this.#failed(event, 'batched', err);
    }
  }

  /**
   * The write gate: false while the audit log's last commit failed (until a
   * commit or its store probe succeeds). A door checks it right before it
   * contacts an upstream or destination and, while it is false, refuses with
   * `audit.write_failed` (`ERR_AUDIT_WRITE`) instead: an action whose record
   * cannot be written does not happen. Cheap (a field read).
   */
  get writable(): boolean {
    return this.#sink.writable !== false;
  }

  /** Failed writes so far. */
  get failures(): AuditFailureCounts {
    return { durable: this.#durableFailures, batched: this.#batchedFailures };
  }

  #failed(event: AuditEvent, durability: Durability, err: unknown): void {
    if (durability === 'durable') this.#durableFailures++;
    else this.#batchedFailures++;
    const now = this.#now();
    if (now - this.#lastReport < this.#reportEveryMs) return;
    this.#lastReport = now;
    const own = (err as { code?: unknown } | null | undefined)?.code;
    const code = typeof own === 'string' ? own : 'ERR_AUDIT_WRITE';
    try {
      this.#onFailure?.({ door: event.door, method: event.method, durability, code, count: this.#durableFailures + this.#batchedFailures });
    } catch {
      // A reporting failure must not turn into a request failure.
    }
  }
}
