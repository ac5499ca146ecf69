/**
 * In-memory implementations of the OAuth ports, for tests and single-process
 * development. Production wires {@link UserTokenStore} to the vault's SQLite
 * store and {@link PendingAuthorizationStore} to a shared store with an atomic
 * delete-returning (`DELETE ... RETURNING`, Redis `GETDEL`).
 */
import type { PendingAuthorization, PendingAuthorizationStore, UserTokenStore } from './types.ts';

/** Options of {@link MemoryPendingAuthorizationStore}. */
export interface MemoryPendingStoreOptions {
  /** Entries held at most, expired ones pruned first. Default 10_000. */
  readonly maxEntries?: number;
  /** Clock, Unix epoch ms. */
  readonly now?: () => number;
}

/** A bounded map of pending authorizations with take-once semantics. */
export class MemoryPendingAuthorizationStore implements PendingAuthorizationStore {
  readonly #entries = new Map<string, PendingAuthorization>();
  readonly #max: number;
  readonly #now: () => number;

  /** Throws `RangeError` unless `maxEntries` is an integer 1-1_000_000. */
  constructor(opts: MemoryPendingStoreOptions = {}) {
    const max = opts.maxEntries ?? 10_000;
    if (!Number.isInteger(max) || max < 1 || max > 1_000_000) throw new RangeError('MemoryPendingAuthorizationStore: maxEntries must be an integer 1-1000000');
    this.#max = max;
    this.#now = opts.now ?? Date.now;
  }

  put(pending: PendingAuthorization): Promise<boolean> {
    if (this.#entries.size >= this.#max) this.#prune();
    if (this.#entries.size >= this.#max || this.#entries.has(pending.state)) return Promise.resolve(false);
    this.#entries.set(pending.state, pending);
    return Promise.resolve(true);
  }

  take(state: string): Promise<PendingAuthorization | undefined> {
    const entry = this.#entries.get(state);
    this.#entries.delete(state);
    return Promise.resolve(entry);
  }

  /** Entries held now, expired ones included until pruned. */
  get size(): number {
    return this.#entries.size;
  }

  #prune(): void {
    const now = this.#now();
    for (const [state, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(state);
  }
}

/** A map of sealed token sets keyed by (user, provider). */
export class MemoryUserTokenStore implements UserTokenStore {
  readonly #entries = new Map<string, string>();

  // JSON of the pair: unambiguous whatever characters the names hold.
  static #key(user: string, provider: string): string {
    return JSON.stringify([user, provider]);
  }

  get(user: string, provider: string): Promise<string | undefined> {
    return Promise.resolve(this.#entries.get(MemoryUserTokenStore.#key(user, provider)));
  }

  put(user: string, provider: string, sealed: string): Promise<void> {
    this.#entries.set(MemoryUserTokenStore.#key(user, provider), sealed);
    return Promise.resolve();
  }

  delete(user: string, provider: string): Promise<void> {
    this.#entries.delete(MemoryUserTokenStore.#key(user, provider));
    return Promise.resolve();
  }

  /** Entries held now. */
  get size(): number {
    return this.#entries.size;
  }
}
