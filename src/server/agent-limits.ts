/**
 * Per-agent limits of the tool door (config `server.sessions`): how many MCP
 * sessions an agent may hold, how many of its requests may be in flight at
 * once, and how fast it may send them. Pure: the listener (src/server/http.ts)
 * feeds in what it sees and acts on the answer.
 *
 * The admission rule for a new session is written so that one agent cannot
 * lock the others out (Bastion issue 14):
 *
 *   1. An agent at its own cap (`perAgent`) makes room among its OWN sessions:
 *      its least recently used idle session is evicted. Only when every one of
 *      its sessions has a request in flight is it refused — and only it
 *      (429, `session.agent_limit`).
 *   2. The global cap (`server.maxSessions`) is the last resort: the least
 *      recently used idle session of the agent holding the most sessions is
 *      evicted. Only when no session anywhere is idle is the request refused
 *      (503, `session.limit`).
 *
 * "Idle" means no request in flight (a busy session is never evicted).
 */

/** What the admission rule sees of one open session. */
export interface SessionView {
  readonly id: string;
  readonly agent: string;
  /** When the session last had a request (ms since the epoch, or any monotone clock). */
  readonly lastActivity: number;
  /** True while a request of the session is in flight (a running or held call). */
  readonly busy: boolean;
}

/** The caps the rule enforces: sessions per agent, and sessions in all. */
export interface SessionCaps {
  readonly perAgent: number;
  readonly global: number;
}

/**
 * The answer for one new session: admit it (first evicting `evict`, when set),
 * or refuse it. `scope` says whose cap decided: the agent's own, or the global one.
 */
export type Admission =
  | { readonly admit: true; readonly evict?: { readonly id: string; readonly agent: string; readonly scope: 'agent' | 'global' } }
  | { readonly admit: false; readonly scope: 'agent' | 'global' };

/**
 * Decides whether `agent` may open one more session among `open`, by the rule
 * in this module's comment. Ties between agents holding as many sessions are
 * broken by the older idle session (least recently used first).
 */
export function admitSession(open: Iterable<SessionView>, agent: string, caps: SessionCaps): Admission {
  const byAgent = new Map<string, { count: number; lru: SessionView | undefined }>();
  let total = 0;
  for (const s of open) {
    total++;
    let a = byAgent.get(s.agent);
    if (!a) byAgent.set(s.agent, (a = { count: 0, lru: undefined }));
    a.count++;
    if (!s.busy && (a.lru === undefined || s.lastActivity < a.lru.lastActivity)) a.lru = s;
  }
  const mine = byAgent.get(agent);
  if (mine !== undefined && mine.count >= caps.perAgent) {
    if (mine.lru === undefined) return { admit: false, scope: 'agent' };
    return { admit: true, evict: { id: mine.lru.id, agent, scope: 'agent' } };
  }
  if (total < caps.global) return { admit: true };
  let victim: { agent: string; count: number; lru: SessionView } | undefined;
  for (const [name, a] of byAgent) {
    if (a.lru === undefined) continue;
    if (victim === undefined || a.count > victim.count || (a.count === victim.count && a.lru.lastActivity < victim.lru.lastActivity)) victim = { agent: name, count: a.count, lru: a.lru };
  }
  if (victim === undefined) return { admit: false, scope: 'global' };
  return { admit: true, evict: { id: victim.lru.id, agent: victim.agent, scope: 'global' } };
}

/**
 * Per-agent request rate as token buckets: each agent's bucket holds up to
 * `burst` tokens and refills at `perSecond` tokens a second; a request takes one.
 * In memory, per process (each instance limits what it serves).
 */
export class AgentRateLimiter {
  readonly #perSecond: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * @param perSecond refill rate, in requests per second (> 0)
   * @param burst bucket size, in requests (>= 1)
   * @throws RangeError when either is out of range
   */
  constructor(perSecond: number, burst: number) {
    if (!(perSecond > 0) || !Number.isFinite(perSecond)) throw new RangeError('perSecond must be a positive number');
    if (!Number.isInteger(burst) || burst < 1) throw new RangeError('burst must be an integer >= 1');
    this.#perSecond = perSecond;
    this.#burst = burst;
  }

  /**
   * Takes one token for `agent` at time `now` (ms). Returns 0 when the request
   * may go ahead, else the whole seconds (>= 1) until a token is due (Retry-After).
   */
  take(agent: string, now: number): number {
    let b = this.#buckets.get(agent);
    if (!b) this.#buckets.set(agent, (b = { tokens: this.#burst, at: now }));
    b.tokens = Math.min(this.#burst, b.tokens + (Math.max(0, now - b.at) * this.#perSecond) / 1000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.#perSecond));
  }
}

/** Requests in flight per agent, bounded by `max`. */
export class AgentConcurrency {
  readonly #max: number;
  readonly #inflight = new Map<string, number>();

  /** @param max most requests of one agent in flight at once (>= 1). @throws RangeError otherwise */
  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('max must be an integer >= 1');
    this.#max = max;
  }

  /**
   * Claims a slot for `agent`: a function that releases it (idempotent), or
   * undefined when the agent already has `max` requests in flight.
   */
  acquire(agent: string): (() => void) | undefined {
    const n = this.#inflight.get(agent) ?? 0;
    if (n >= this.#max) return undefined;
    this.#inflight.set(agent, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inflight.get(agent) ?? 1) - 1;
      if (left <= 0) this.#inflight.delete(agent);
      else this.#inflight.set(agent, left);
    };
  }

  /** Requests of `agent` in flight now. */
  inflight(agent: string): number {
    return this.#inflight.get(agent) ?? 0;
  }
}
