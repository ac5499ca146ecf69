/**
 * Isolation of an agent (incident response, issue 15): an admin isolates a
 * compromised agent, and every instance refuses each of its later requests in
 * every door with `agent.isolated` (403, `ERR_AGENT_ISOLATED`, JSON-RPC -32003).
 *
 * The store (./isolation-store.ts) is the source of truth. Each instance keeps
 * the set of isolated agents in memory, so the kernel's authentication
 * (src/door/authenticate.ts, `KeyIndex.isIsolated`) asks synchronously, and keeps
 * it current three ways:
 * - an isolation or restore made here updates the set at once;
 * - whoever isolates or restores publishes `{type: 'incident.isolate' | 'incident.restore', agent}`
 *   on the cluster bus channel `broadcast` (src/cluster/bus.ts); every instance
 *   then re-reads the store (the message is only a wake-up);
 * - every instance re-reads the store every {@link ISOLATION_POLL_MS} ms when its
 *   bus is a `LocalBus` (the embedded store: several processes on one SQLite file,
 *   or instances sharing PostgreSQL without Redis), and every
 *   {@link ISOLATION_FALLBACK_POLL_MS} ms with a shared bus (a lost message).
 *
 * A failed store read keeps the last known state (documented choice): the agents
 * known to be isolated stay refused, and no agent is refused for an outage alone;
 * a store that cannot be read already fails requests closed through the audit
 * write gate (every request's record needs the store). The next successful read
 * brings the set up to date.
 *
 * Containment beyond refusal is done where its state lives: the isolating party
 * denies the agent's pending approvals (store-wide, {@link containAgent}); every
 * instance, on seeing the agent become isolated, calls its {@link Isolations.onChange}
 * listeners, which close the agent's tool-door sessions (src/server/http.ts) and
 * CONNECT tunnels (src/egress/door.ts).
 */
import type { ApprovalRecord, ApprovalStore } from '../approvals/store.ts';
import { decideApproval } from '../approvals/queue.ts';
import { LocalBus, type ClusterBus, type ClusterMessage } from '../cluster/bus.ts';
import { BastionError } from '../errors.ts';
import { randomId } from '../util/crypto.ts';
import type { IsolationStore, StoredIsolation } from './isolation-store.ts';

/** Store poll period with a `LocalBus` (the embedded store alone), in ms: instances converge within it. */
export const ISOLATION_POLL_MS = 250;
/** Store poll period with a shared bus (Redis), in ms: only covers a lost message. */
export const ISOLATION_FALLBACK_POLL_MS = 5_000;
/** Longest reason accepted, in characters. */
export const MAX_ISOLATION_REASON_CHARS = 500;

/** One isolation of an agent, as the API, the CLI and the console show it. Times are ISO 8601. */
export interface IsolationRecord {
  readonly agent: string;
  readonly reason: string;
  /** Who isolated it: an admin's name (admin API), `cli:<user>`, `anomaly:<rule>`. */
  readonly by: string;
  readonly at: string;
  /** Set once restored. */
  readonly restoredAt?: string;
  readonly restoredBy?: string;
  readonly restoreReason?: string;
}

/** A change of an agent's isolation seen by this instance. */
export interface IsolationChange {
  readonly agent: string;
  /** True: the agent became isolated; false: it was restored. */
  readonly isolated: boolean;
}

/**
 * Raises an admin alert (the notifications module delivers it): `kind` a dotted
 * name (`incident.isolated`, `incident.restored`, `incident.rotate`), `severity`
 * `info` | `warning` | `critical`, the agent, a one-line summary and non-secret
 * detail (names, never values). Must not throw or block; its failures are its own.
 */
export type IncidentAlert = (kind: string, severity: 'info' | 'warning' | 'critical', agent: string, summary: string, detail: Readonly<Record<string, unknown>>) => void;

/** The record of a stored isolation. */
export function isolationRecord(s: StoredIsolation): IsolationRecord {
  return {
    agent: s.agent,
    reason: s.reason,
    by: s.by,
    at: new Date(s.at).toISOString(),
    ...(s.restoredAt !== null ? { restoredAt: new Date(s.restoredAt).toISOString() } : {}),
    ...(s.restoredBy !== null ? { restoredBy: s.restoredBy } : {}),
    ...(s.restoreReason !== null ? { restoreReason: s.restoreReason } : {}),
  };
}

/** The message published on the bus channel `broadcast` after an isolation or restore. */
export function isolationMessage(type: 'incident.isolate' | 'incident.restore', agent: string): ClusterMessage {
  return { type, agent };
}

/**
 * Checks an admin's reason text. @throws BastionError `ERR_CLI_USAGE` naming `reason`
 * when it is not a string or longer than {@link MAX_ISOLATION_REASON_CHARS}.
 */
export function assertReason(reason: unknown): asserts reason is string {
  if (typeof reason !== 'string') throw new BastionError('ERR_CLI_USAGE', 'reason must be a string');
  if (reason.length > MAX_ISOLATION_REASON_CHARS) throw new BastionError('ERR_CLI_USAGE', `reason is limited to ${MAX_ISOLATION_REASON_CHARS} characters`);
}

/** What {@link containAgent} did. */
export interface Containment {
  readonly record: StoredIsolation;
  /** False when the agent was isolated already (the record is the isolation in force). */
  readonly created: boolean;
  /** Pending approvals of the agent denied now (`agent isolated`). */
  readonly deniedApprovals: readonly ApprovalRecord[];
}

/**
 * Isolates `agent` in the store and denies its pending approvals (reason
 * `agent isolated`, decided by `by`): what the gateway and the CLI both do. The
 * caller checks that the agent exists and publishes the change.
 * @throws BastionError `ERR_STORE`.
 */
export async function containAgent(
  store: IsolationStore & ApprovalStore,
  req: { readonly agent: string; readonly reason: string; readonly by: string; readonly now: number; readonly reuseTtlMs: number },
  decide?: (id: string) => Promise<ApprovalRecord>,
): Promise<Containment> {
  const { record, created } = await store.isolateAgent({ id: randomId(), agent: req.agent, reason: req.reason, by: req.by, at: req.now });
  const denied: ApprovalRecord[] = [];
  for (const a of await store.listApprovals({ status: 'pending', limit: 10_000 })) {
    if (a.agent !== req.agent) continue;
    try {
      denied.push(decide ? await decide(a.id) : await decideApproval(store, a.id, 'denied', req.by, 'agent isolated', req.reuseTtlMs, req.now));
    } catch {
      // Decided or expired meanwhile (ERR_APPROVAL_UNKNOWN), or the bus could not carry it (the decision stands).
    }
  }
  return { record, created, deniedApprovals: denied };
}

/** Options of {@link Isolations.open}. */
export interface IsolationsOptions {
  readonly store: IsolationStore & ApprovalStore;
  /** The cluster bus; a {@link LocalBus} means the store is polled every {@link ISOLATION_POLL_MS} ms. */
  readonly bus: ClusterBus;
  /** True for an agent of the current config (an unknown agent cannot be isolated). */
  readonly isAgent: (agent: string) => boolean;
  /** The approval queue: pending approvals are denied through it, so calls held here wake at once. */
  readonly approvals?: { decide(id: string, status: 'denied', by: string, reason: string | null): Promise<ApprovalRecord> };
  /** How long a granted approval stays claimable (config `approvals.reuseTtlMs`); only used without `approvals`. */
  readonly reuseTtlMs?: number;
  /** Raised on an isolation and a restore made through this instance. */
  readonly alert?: IncidentAlert;
  /** The notifier's incident notice (`gateway.notifications.incident`, src/notify/): called on an isolation and a restore made here. Must not throw. */
  readonly notify?: (notice: { readonly agent: string; readonly action: 'isolate' | 'restore'; readonly reason: string | null; readonly by: string; readonly detail: Readonly<Record<string, unknown>> }) => void;
  /** Store poll period in ms (default by bus kind, see above). */
  readonly pollMs?: number;
  readonly now?: () => number;
}

/** What {@link Isolations.isolateDetailed} did. */
export interface IsolateOutcome {
  readonly record: IsolationRecord;
  /** False when the agent was isolated already (idempotent). */
  readonly created: boolean;
  /** Ids of the pending approvals denied. */
  readonly deniedApprovals: readonly string[];
  /** False when the bus could not carry the change (the other instances see it at their next poll). */
  readonly notified: boolean;
}

/** The isolated agents of a deployment, as one instance sees them (the gateway's `isolations`). */
export class Isolations {
  readonly #opts: IsolationsOptions;
  readonly #now: () => number;
  #isolated = new Set<string>();
  readonly #listeners = new Set<(change: IsolationChange) => void>();
  readonly #unsubscribe: () => void;
  readonly #timer: NodeJS.Timeout;
  /** The refresh in flight: refreshes run one at a time, a request during one runs after it. */
  #refreshing: Promise<void> = Promise.resolve();
  #queued: Promise<void> | undefined;
  /** +1 before each isolation or restore made here: a read that started earlier is stale and dropped. */
  #epoch = 0;
  #closed = false;

  private constructor(opts: IsolationsOptions, initial: Set<string>) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#isolated = initial;
    this.#unsubscribe = opts.bus.subscribe('broadcast', (message) => {
      if (message.type === 'incident.isolate' || message.type === 'incident.restore') void this.refresh();
    });
    const pollMs = opts.pollMs ?? (opts.bus instanceof LocalBus ? ISOLATION_POLL_MS : ISOLATION_FALLBACK_POLL_MS);
    this.#timer = setInterval(() => void this.refresh(), pollMs);
    this.#timer.unref();
  }

  /**
   * Reads the isolations in force and starts following changes.
   * @throws BastionError `ERR_STORE` when the store cannot be read (the gateway does not open).
   */
  static async open(opts: IsolationsOptions): Promise<Isolations> {
    const current = await opts.store.listIsolations({ current: true, limit: 100_000 });
    return new Isolations(opts, new Set(current.map((i) => i.agent)));
  }

  /** True while `agent` is isolated, as this instance last read it (memory only; never throws). */
  isIsolated(agent: string): boolean {
    return this.#isolated.has(agent);
  }

  /** The agents isolated now, as this instance last read them. */
  isolatedAgents(): string[] {
    return [...this.#isolated].sort();
  }

  /**
   * Isolates `agent`: records it (idempotent: an agent isolated already keeps
   * its isolation in force, which is returned), denies its pending approvals,
   * refuses its requests here at once and tells every instance.
   * @throws BastionError `ERR_AGENT_UNKNOWN` (no such agent in the config), `ERR_CLI_USAGE` (reason), `ERR_STORE`.
   */
  async isolate(agent: string, reason: string, by: string): Promise<IsolationRecord> {
    return (await this.isolateDetailed(agent, reason, by)).record;
  }

  /** {@link isolate}, with what else happened (for the admin API's answer and audit record). */
  async isolateDetailed(agent: string, reason: string, by: string): Promise<IsolateOutcome> {
    assertReason(reason);
    if (typeof agent !== 'string' || !this.#opts.isAgent(agent)) throw new BastionError('ERR_AGENT_UNKNOWN', `no agent ${JSON.stringify(String(agent)).slice(0, 80)}`, { detail: { agent: String(agent).slice(0, 64) } });
    const approvals = this.#opts.approvals;
    this.#epoch++;
    const done = await containAgent(
      this.#opts.store,
      { agent, reason, by, now: this.#now(), reuseTtlMs: this.#opts.reuseTtlMs ?? 0 },
      approvals ? (id) => approvals.decide(id, 'denied', by, 'agent isolated') : undefined,
    );
    this.#set(agent, true);
    const notified = await this.#publish('incident.isolate', agent);
    const record = isolationRecord(done.record);
    if (done.created) {
      const detail = { deniedApprovals: done.deniedApprovals.length, notified };
      this.#opts.alert?.('incident.isolated', 'critical', agent, `agent ${agent} isolated by ${by}`, { reason, by, ...detail });
      this.#opts.notify?.({ agent, action: 'isolate', reason, by, detail });
    }
    return { record, created: done.created, deniedApprovals: done.deniedApprovals.map((a) => a.id), notified };
  }

  /**
   * Lifts the isolation of `agent` with a reason; its requests are served again.
   * @throws BastionError `ERR_AGENT_NOT_ISOLATED` (not isolated now), `ERR_AGENT_UNKNOWN`
   *   (not isolated and not in the config), `ERR_CLI_USAGE` (reason), `ERR_STORE`.
   */
  async restore(agent: string, reason: string, by: string): Promise<IsolationRecord> {
    assertReason(reason);
    if (typeof agent !== 'string') throw new BastionError('ERR_AGENT_UNKNOWN', 'agent must be a string');
    this.#epoch++;
    const restored = await this.#opts.store.restoreAgent(agent, { at: this.#now(), by, reason });
    if (restored === undefined) {
      if (!this.#opts.isAgent(agent)) throw new BastionError('ERR_AGENT_UNKNOWN', `no agent ${JSON.stringify(agent).slice(0, 80)}`, { detail: { agent: agent.slice(0, 64) } });
      this.#set(agent, false);
      throw new BastionError('ERR_AGENT_NOT_ISOLATED', `agent ${agent} is not isolated`, { detail: { agent } });
    }
    this.#set(agent, false);
    await this.#publish('incident.restore', agent);
    this.#opts.alert?.('incident.restored', 'warning', agent, `agent ${agent} restored by ${by}`, { reason, by });
    this.#opts.notify?.({ agent, action: 'restore', reason, by, detail: {} });
    return isolationRecord(restored);
  }

  /** Every isolation, current and past, newest first (at most `limit`, default 1000), of one agent when given. */
  async list(filter: { agent?: string; limit?: number } = {}): Promise<IsolationRecord[]> {
    return (await this.#opts.store.listIsolations(filter)).map(isolationRecord);
  }

  /** Calls `fn` for every change this instance sees (its own and other instances'); returns the unsubscribe function. A listener that throws is ignored. */
  onChange(fn: (change: IsolationChange) => void): () => void {
    this.#listeners.add(fn);
    return () => void this.#listeners.delete(fn);
  }

  /**
   * Re-reads the isolations in force and reports the differences to the
   * listeners. A failed read keeps the last known state. Resolves when a read
   * that started after the call has finished.
   */
  refresh(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    // One read in flight and at most one queued: a burst of wake-ups costs two reads.
    this.#queued ??= this.#refreshing.then(() => {
      this.#queued = undefined;
      // Never rejects: a failed read keeps the last known state, and the chain stays usable.
      return this.#read().catch(() => undefined);
    });
    this.#refreshing = this.#queued;
    return this.#queued;
  }

  /** Stops following changes (the bus and the poll); idempotent. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#unsubscribe();
    this.#listeners.clear();
  }

  async #read(): Promise<void> {
    if (this.#closed) return;
    const epoch = this.#epoch;
    let current: StoredIsolation[];
    try {
      current = await this.#opts.store.listIsolations({ current: true, limit: 100_000 });
    } catch {
      return; // keep the last known state (see the module comment)
    }
    // A change made here since the read started is newer than it (its publish queues a fresh read).
    if (epoch !== this.#epoch || this.#closed) return;
    const next = new Set(current.map((i) => i.agent));
    for (const a of [...this.#isolated]) if (!next.has(a)) this.#set(a, false);
    for (const a of next) this.#set(a, true);
  }

  #set(agent: string, isolated: boolean): void {
    if (this.#isolated.has(agent) === isolated) return;
    if (isolated) this.#isolated.add(agent);
    else this.#isolated.delete(agent);
    for (const fn of [...this.#listeners]) {
      try {
        fn({ agent, isolated });
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /** Publishes the change; false when the bus could not carry it. */
  async #publish(type: 'incident.isolate' | 'incident.restore', agent: string): Promise<boolean> {
    try {
      await this.#opts.bus.publish('broadcast', isolationMessage(type, agent));
      return true;
    } catch {
      return false;
    }
  }
}
