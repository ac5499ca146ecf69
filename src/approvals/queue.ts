/**
 * The human approval queue. A call whose policy decision is `approve` is held
 * here until an admin decides or `timeoutMs` passes (then it is denied).
 *
 * Approvals are bound to agent + end user + tool + argument digest and are
 * single use: a granted approval is consumed by exactly one call. When the
 * client gave up before the decision, the same agent, for the same end user,
 * calling the same tool with the same arguments within `reuseTtlMs` of the
 * grant runs once without asking again; another user's call never claims it.
 *
 * Decisions may be written by another process (the `bastion approvals` CLI works
 * on the store directly) or another instance, so a waiting call re-reads the
 * store every `pollMs`; decisions made through this process's admin API wake it
 * at once, and with a cluster bus (src/cluster/bus.ts) so does a message on the
 * `approvals` channel (`{id}`, published after every decision by whoever
 * decided): the waiting call then re-reads the store, which stays the source
 * of truth. The poll remains as the fallback for a lost message.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULTS } from '../defaults.ts';
import { BastionError } from '../errors.ts';
import { randomId } from '../util/crypto.ts';
import type { ClusterBus } from '../cluster/bus.ts';
import type { ApprovalRecord, ApprovalStore } from './store.ts';

export interface ApprovalQueueOptions {
  readonly timeoutMs: number;
  readonly reuseTtlMs: number;
  readonly pollMs?: number;
  readonly progressMs?: number;
  readonly now?: () => number;
  /** The cluster bus: decisions are published on `approvals`, and a message wakes the call waiting for that id. */
  readonly bus?: ClusterBus;
  /**
   * Told each approval this queue creates (not one found pending or claimed), right after it is stored:
   * the gateway announces it to admins (`approval.pending` notifications). Must return at once; an
   * exception it throws is ignored.
   */
  readonly onCreated?: (approval: ApprovalRecord) => void;
}

export interface HoldRequest {
  readonly agent: string;
  /** The end user the call is for (null: none named); the approval is bound to it. */
  readonly user: string | null;
  readonly tool: string;
  readonly argsDigest: string;
  /** Arguments with credentials redacted, for the admin's eyes. */
  readonly argsPreview: string;
  /** Aborted when the client cancels or disconnects: the wait stops, the approval stays pending. */
  readonly signal?: AbortSignal;
  /** Called every `progressMs` while waiting, with ms waited (to send MCP progress notifications). */
  readonly onProgress?: (waitedMs: number, approvalId: string) => void;
  /** Called once when a new approval is created (not when an earlier grant is claimed). */
  readonly onCreated?: (approvalId: string) => void;
}

/**
 * The outcome of a hold. `claimed`: an earlier grant was consumed without waiting.
 * `pending` only from {@link ApprovalQueue.check}: nobody has decided yet.
 */
export type HoldOutcome =
  | { readonly status: 'approved' | 'claimed'; readonly approval: ApprovalRecord }
  | { readonly status: 'denied'; readonly approval: ApprovalRecord }
  | { readonly status: 'timeout' | 'cancelled'; readonly approval: ApprovalRecord };

/** The outcome of a non-waiting check ({@link ApprovalQueue.check}). */
export type CheckOutcome = HoldOutcome | { readonly status: 'pending'; readonly approval: ApprovalRecord };

export class ApprovalQueue {
  readonly #store: ApprovalStore;
  readonly #opts: Required<Omit<ApprovalQueueOptions, 'bus' | 'onCreated'>>;
  readonly #wake = new EventEmitter();
  readonly #bus: ClusterBus | undefined;
  readonly #onCreated: ((approval: ApprovalRecord) => void) | undefined;

  constructor(store: ApprovalStore, opts: ApprovalQueueOptions) {
    this.#store = store;
    const { bus, onCreated, ...rest } = opts;
    this.#onCreated = onCreated;
    this.#opts = {
      pollMs: DEFAULTS.approvalPollMs,
      progressMs: DEFAULTS.approvalProgressMs,
      now: Date.now,
      ...rest,
    };
    this.#wake.setMaxListeners(0);
    this.#bus = bus;
    // A message is only a wake-up: the woken call reads the decision from the store.
    bus?.subscribe('approvals', (message) => {
      const id = message.id;
      if (typeof id === 'string' && id.length > 0 && id.length <= 128) this.#wake.emit(id);
    });
  }

  /**
   * Holds a call until decided. Never throws for a decision: the outcome is a value.
   * @throws BastionError `ERR_STORE` when the store fails (the caller must deny).
   */
  async hold(req: HoldRequest): Promise<HoldOutcome> {
    const now = this.#opts.now();
    const claimed = await this.#store.claimApproval(req.agent, req.user, req.tool, req.argsDigest, now);
    if (claimed) return { status: 'claimed', approval: claimed };

    let approval = await this.#store.findPendingApproval(req.agent, req.user, req.tool, req.argsDigest, now);
    if (!approval) {
      approval = this.#newApproval(req, now);
      await this.#store.createApproval(approval);
      req.onCreated?.(approval.id);
      this.#announce(approval);
    }
    return this.#wait(approval, req);
  }

  /**
   * The hold without the wait, for clients that come back on their own (MCP
   * 2026-07-28 multi-round-trip requests): with `approvalId` (from a sealed
   * request state), reads that approval, which must be bound to the same agent,
   * end user, tool and digest (otherwise `denied`); without, claims an earlier
   * grant or finds or creates the pending approval. Then reads its status once:
   * an approved one is consumed (single use) and answered `approved`.
   * @throws BastionError `ERR_STORE` when the store fails (the caller must deny).
   */
  async check(req: HoldRequest, approvalId?: string): Promise<CheckOutcome> {
    const now = this.#opts.now();
    let approval: ApprovalRecord | undefined;
    if (approvalId !== undefined) {
      approval = await this.#store.getApproval(approvalId);
      if (!approval) throw new BastionError('ERR_APPROVAL_UNKNOWN', 'approval vanished from the store', { detail: { approvalId } });
      if (approval.agent !== req.agent || approval.user !== req.user || approval.tool !== req.tool || approval.argsDigest !== req.argsDigest) {
        return { status: 'denied', approval: { ...approval, reason: 'the approval is for another call' } };
      }
    } else {
      const claimed = await this.#store.claimApproval(req.agent, req.user, req.tool, req.argsDigest, now);
      if (claimed) return { status: 'claimed', approval: claimed };
      approval = await this.#store.findPendingApproval(req.agent, req.user, req.tool, req.argsDigest, now);
      if (!approval) {
        approval = this.#newApproval(req, now);
        await this.#store.createApproval(approval);
        req.onCreated?.(approval.id);
        this.#announce(approval);
      }
    }
    if (approval.status === 'approved') {
      if (await this.#store.consumeApproval(approval.id, now)) return { status: 'approved', approval };
      return { status: 'denied', approval: { ...approval, reason: 'approval already used' } };
    }
    if (approval.status === 'denied') return { status: 'denied', approval };
    if (approval.status === 'expired' || approval.status === 'used') return { status: 'timeout', approval };
    if (now >= approval.expiresAt) {
      await this.#store.expireApproval(approval.id, now);
      return { status: 'timeout', approval: { ...approval, status: 'expired' } };
    }
    return { status: 'pending', approval };
  }

  #announce(approval: ApprovalRecord): void {
    try {
      this.#onCreated?.(approval);
    } catch {
      // An announcement must never fail the held call.
    }
  }

  #newApproval(req: HoldRequest, now: number): ApprovalRecord {
    return {
      id: randomId(),
      agent: req.agent,
      user: req.user,
      tool: req.tool,
      argsDigest: req.argsDigest,
      argsPreview: req.argsPreview,
      status: 'pending',
      createdAt: now,
      expiresAt: now + this.#opts.timeoutMs,
      decidedAt: null,
      decidedBy: null,
      reason: null,
    };
  }

  async #wait(initial: ApprovalRecord, req: HoldRequest): Promise<HoldOutcome> {
    const id = initial.id;
    const started = this.#opts.now();
    let lastProgress = started;
    for (;;) {
      const current = await this.#store.getApproval(id);
      if (!current) throw new BastionError('ERR_APPROVAL_UNKNOWN', 'approval vanished from the store', { detail: { approvalId: id } });
      if (current.status === 'approved') {
        // Single use: only the one caller that flips approved → used may run.
        if (await this.#store.consumeApproval(id, this.#opts.now())) return { status: 'approved', approval: current };
        return { status: 'denied', approval: { ...current, reason: 'approval already used' } };
      }
      if (current.status === 'denied') return { status: 'denied', approval: current };
      if (current.status === 'expired' || current.status === 'used') return { status: 'timeout', approval: current };
      const now = this.#opts.now();
      if (now >= current.expiresAt) {
        if (await this.#store.expireApproval(id, now)) return { status: 'timeout', approval: { ...current, status: 'expired' } };
        continue; // decided at the last moment: read it again
      }
      if (req.signal?.aborted) return { status: 'cancelled', approval: current };
      if (req.onProgress && now - lastProgress >= this.#opts.progressMs) {
        lastProgress = now;
        req.onProgress(now - started, id);
      }
      const untilProgress = req.onProgress ? this.#opts.progressMs - (now - lastProgress) : Infinity;
      await this.#sleepOrWake(id, Math.min(this.#opts.pollMs, current.expiresAt - now, untilProgress), req.signal);
    }
  }

  async #sleepOrWake(id: string, ms: number, signal?: AbortSignal): Promise<void> {
    const ac = new AbortController();
    const onWake = (): void => ac.abort();
    const onAbort = (): void => ac.abort();
    this.#wake.once(id, onWake);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await sleep(Math.max(1, ms), undefined, { signal: ac.signal });
    } catch {
      // Woken early by a decision or by the client going away; the loop re-reads the store.
    } finally {
      this.#wake.off(id, onWake);
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * Records an admin decision, wakes a waiting call in this process and
   * publishes the decision on the bus (other instances wake theirs).
   * @throws BastionError `ERR_APPROVAL_UNKNOWN` when no such approval exists or it
   *   is no longer pending (detail.status tells what it is); `ERR_STORE` from
   *   {@link publishDecision} when the decision was recorded but the bus could not
   *   carry it (detail `{approvalId, status, notified: false, code}`).
   */
  async decide(id: string, status: 'approved' | 'denied', by: string, reason: string | null): Promise<ApprovalRecord> {
    const rec = await decideApproval(this.#store, id, status, by, reason, this.#opts.reuseTtlMs, this.#opts.now());
    this.#wake.emit(id);
    if (this.#bus !== undefined) await publishDecision(this.#bus, rec);
    return rec;
  }

  list(filter?: { status?: ApprovalRecord['status']; limit?: number }): Promise<ApprovalRecord[]> {
    return this.#store.listApprovals(filter);
  }
}

/**
 * Decides a pending approval directly on a store (used by the queue and by the CLI,
 * which runs in another process). On approve, the grant stays claimable for `reuseTtlMs`.
 * @throws BastionError `ERR_APPROVAL_UNKNOWN` when the id does not exist, or is
 *   no longer pending (detail.status tells what it is).
 */
export async function decideApproval(
  store: ApprovalStore,
  id: string,
  status: 'approved' | 'denied',
  by: string,
  reason: string | null,
  reuseTtlMs: number,
  now: number,
): Promise<ApprovalRecord> {
  const ok = await store.decideApproval(id, { status, by, reason, at: now, claimUntil: now + reuseTtlMs });
  const rec = await store.getApproval(id);
  if (!rec) throw new BastionError('ERR_APPROVAL_UNKNOWN', `no approval with id ${id}`, { detail: { approvalId: id } });
  if (!ok) {
    throw new BastionError('ERR_APPROVAL_UNKNOWN', `approval ${id} is ${rec.status === 'pending' ? 'past its deadline' : rec.status}, not pending`, {
      detail: { approvalId: id, status: rec.status },
    });
  }
  return rec;
}

/**
 * Tells every instance on `bus` that approval `rec` was decided (channel
 * `approvals`, message `{id, status}`), so a call held elsewhere re-reads the
 * store now instead of at its next poll. Call it after the store's decision.
 * @throws BastionError `ERR_STORE` when the bus is unreachable: the decision
 *   stands (it is in the store) and held calls see it at their next poll
 *   (detail `{approvalId, status, notified: false, code}`).
 */
export async function publishDecision(bus: ClusterBus, rec: ApprovalRecord): Promise<void> {
  try {
    await bus.publish('approvals', { id: rec.id, status: rec.status });
  } catch (err) {
    const code = (err as { detail?: { code?: unknown } } | null)?.detail?.code;
    throw new BastionError('ERR_STORE', `approval ${rec.id} is ${rec.status}, but the other instances could not be told (redis unavailable); they see it within their poll interval`, {
      cause: err,
      detail: { approvalId: rec.id, status: rec.status, notified: false, code: typeof code === 'string' ? code : 'ERR_STORE' },
    });
  }
}
