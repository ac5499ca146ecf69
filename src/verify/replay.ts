/**
 * Replay stores: remember a nonce for as long as a message carrying it could
 * still be accepted, so the same signed request or message is accepted once.
 *
 * Part of `bastion/verify`: no dependency on the rest of Bastion. SQLite
 * (persistent, ./sqlite-replay.ts) is in its own file. The Redis
 * store takes any client with ioredis' `set(key, value, 'PX', ms, 'NX')`
 * signature, so tool servers bring their own client.
 */

/** Where seen nonces are kept. Implementations must be atomic across every verifier sharing them. */
export interface ReplayStore {
  /**
   * Records `key` for `ttlMs` milliseconds. Resolves `true` when the key was new
   * (first use), `false` when it was already recorded and has not expired (a replay).
   * Rejects when the store cannot answer; callers must then refuse the message.
   */
  remember(key: string, ttlMs: number): Promise<boolean>;
}

/** Options of {@link MemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /** Most nonces held at once (default 100 000). When full of unexpired nonces, `remember` rejects rather than forget one. */
  readonly maxEntries?: number;
  /** Clock in ms since the epoch (tests inject one). */
  readonly now?: () => number;
}

/** Error a replay store rejects with when it cannot record a nonce; callers refuse the message. */
export class ReplayStoreError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ReplayStoreError';
  }
}

/**
 * An in-process replay store: nonces are lost when the process stops, so a
 * request captured before a restart is accepted again after it (within
 * `maxAgeS`). For tests, or a verifier whose restarts take longer than the
 * signature window. Persistent: `SqliteReplayStore`; several hosts: {@link RedisReplayStore}.
 */
export class MemoryReplayStore implements ReplayStore {
  readonly #seen = new Map<string, number>();
  readonly #max: number;
  readonly #now: () => number;

  constructor(opts: MemoryReplayStoreOptions = {}) {
    this.#max = opts.maxEntries ?? 100_000;
    this.#now = opts.now ?? Date.now;
  }

  /** Number of nonces held (expired ones may still count until the next sweep). */
  get size(): number {
    return this.#seen.size;
  }

  remember(key: string, ttlMs: number): Promise<boolean> {
    const now = this.#now();
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return Promise.resolve(false);
    if (until === undefined && this.#seen.size >= this.#max) {
      this.#sweep(now);
      if (this.#seen.size >= this.#max) return Promise.reject(new ReplayStoreError('replay store full: nonce not recorded'));
    }
    // Delete first so re-insertion moves the key to the end: the map stays ordered by insertion time.
    this.#seen.delete(key);
    this.#seen.set(key, now + Math.max(1, ttlMs));
    return Promise.resolve(true);
  }

  #sweep(now: number): void {
    for (const [k, until] of this.#seen) if (until <= now) this.#seen.delete(k);
  }
}

/** The part of a Redis client {@link RedisReplayStore} uses (ioredis' signature). */
export interface RedisSetNx {
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null>;
}

/** Options of {@link RedisReplayStore}. */
export interface RedisReplayStoreOptions {
  /** Prefix of every key (default `bastion:nonce:`). */
  readonly prefix?: string;
}

/**
 * A replay store in Redis, shared by every verifier using the same server and
 * prefix: `SET key 1 PX ttl NX` is atomic, so of two verifiers racing on one
 * nonce exactly one sees it as new. A Redis error rejects (fail closed).
 */
export class RedisReplayStore implements ReplayStore {
  readonly #client: RedisSetNx;
  readonly #prefix: string;

  constructor(client: RedisSetNx, opts: RedisReplayStoreOptions = {}) {
    this.#client = client;
    this.#prefix = opts.prefix ?? 'bastion:nonce:';
  }

  async remember(key: string, ttlMs: number): Promise<boolean> {
    let reply: 'OK' | null;
    try {
      reply = await this.#client.set(this.#prefix + key, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    } catch (err) {
      throw new ReplayStoreError('replay store unavailable', { cause: err });
    }
    return reply === 'OK';
  }
}
