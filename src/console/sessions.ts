/**
 * Console sign-in sessions: an admin key, presented once on the sign-in form,
 * is exchanged for a random session id (the cookie) and a random CSRF token
 * (sent back by the page in `X-CSRF-Token` on every change).
 *
 * Sessions live in this process's memory: an admin signed in on one instance
 * is not signed in on another (behind a load balancer, use sticky sessions or
 * sign in again), and a restart signs everyone out. The map is keyed by the
 * SHA-256 of the id, so a heap dump does not hand out live cookies directly.
 * Each session ends `ttlMs` after sign-in, or `idleMs` after its last use.
 */
import { constantTimeEqual, randomToken, sha256Hex } from '../util/crypto.ts';

/** One signed-in admin. Times are epoch ms. */
export interface ConsoleSession {
  /** The admin's name (config `admin.keys[].id`; `admin` for an unnamed key). */
  readonly admin: string;
  /** The CSRF token every state-changing request of this session must carry. */
  readonly csrf: string;
  readonly createdAt: number;
  lastUsedAt: number;
}

/** Limits of {@link ConsoleSessions}. */
export interface ConsoleSessionOptions {
  /** Absolute lifetime, ms. */
  readonly ttlMs: number;
  /** Idle lifetime, ms. */
  readonly idleMs: number;
  /** Most sessions held; at the cap the least recently used one ends (default 1000). */
  readonly max?: number;
  readonly now?: () => number;
}

/** Session ids are 32 random bytes, base64url: 43 characters. */
const ID_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The in-memory session table of one console. */
export class ConsoleSessions {
  readonly #byDigest = new Map<string, ConsoleSession>();
  readonly #ttlMs: number;
  readonly #idleMs: number;
  readonly #max: number;
  readonly #now: () => number;

  /** @throws RangeError when a limit is not a positive integer. */
  constructor(opts: ConsoleSessionOptions) {
    for (const [k, v] of [['ttlMs', opts.ttlMs], ['idleMs', opts.idleMs], ['max', opts.max ?? 1000]] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`ConsoleSessions: ${k} must be a positive integer`);
    }
    this.#ttlMs = opts.ttlMs;
    this.#idleMs = opts.idleMs;
    this.#max = opts.max ?? 1000;
    this.#now = opts.now ?? Date.now;
  }

  /** Signs `admin` in: the new session's id (for the cookie only) and the session. */
  create(admin: string): { id: string; session: ConsoleSession } {
    this.#sweep();
    while (this.#byDigest.size >= this.#max) {
      // Map order is insertion order and get() re-inserts: the first entry is the least recently used.
      const oldest = this.#byDigest.keys().next().value;
      if (oldest === undefined) break;
      this.#byDigest.delete(oldest);
    }
    const id = randomToken(32);
    const now = this.#now();
    const session: ConsoleSession = { admin, csrf: randomToken(32), createdAt: now, lastUsedAt: now };
    this.#byDigest.set(sha256Hex(id), session);
    return { id, session };
  }

  /** The live session with this id (and marks it used), or undefined: unknown, malformed, expired or idle too long. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined || !ID_PATTERN.test(id)) return undefined;
    const digest = sha256Hex(id);
    const s = this.#byDigest.get(digest);
    if (s === undefined) return undefined;
    const now = this.#now();
    if (this.#expired(s, now)) {
      this.#byDigest.delete(digest);
      return undefined;
    }
    s.lastUsedAt = now;
    this.#byDigest.delete(digest);
    this.#byDigest.set(digest, s);
    return s;
  }

  /** As {@link get}, without marking the session used (a live stream does not keep an idle session alive). */
  peek(id: string | undefined): ConsoleSession | undefined {
    if (id === undefined || !ID_PATTERN.test(id)) return undefined;
    const digest = sha256Hex(id);
    const s = this.#byDigest.get(digest);
    if (s === undefined) return undefined;
    if (this.#expired(s, this.#now())) {
      this.#byDigest.delete(digest);
      return undefined;
    }
    return s;
  }

  /** Ends the session with this id (sign-out); true when there was one. */
  delete(id: string | undefined): boolean {
    if (id === undefined || !ID_PATTERN.test(id)) return false;
    return this.#byDigest.delete(sha256Hex(id));
  }

  /** Live sessions. */
  get size(): number {
    this.#sweep();
    return this.#byDigest.size;
  }

  #expired(s: ConsoleSession, now: number): boolean {
    return now - s.createdAt >= this.#ttlMs || now - s.lastUsedAt >= this.#idleMs;
  }

  #sweep(): void {
    const now = this.#now();
    for (const [d, s] of this.#byDigest) if (this.#expired(s, now)) this.#byDigest.delete(d);
  }
}

/** True when `presented` is the session's CSRF token (constant time). */
export function csrfMatches(session: ConsoleSession, presented: string | undefined): boolean {
  return presented !== undefined && presented.length === session.csrf.length && constantTimeEqual(presented, session.csrf);
}
