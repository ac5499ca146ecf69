/**
 * A replay store in a SQLite file (`node:sqlite`, no extra dependency): nonces
 * survive a restart of the verifier, and every process opening the same file
 * shares them. Part of `bastion/verify`.
 *
 * `node:sqlite` is loaded when a store is created (`process.getBuiltinModule`),
 * not when `bastion/verify` is imported: servers that use another store never
 * load it (nor see Node's experimental-feature warning for it).
 */
import { closeSync, existsSync, openSync } from 'node:fs';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ReplayStoreError, type ReplayStore } from './replay.ts';

/** Options of {@link SqliteReplayStore}. */
export interface SqliteReplayStoreOptions {
  /**
   * The database file. Created (mode 0600) when missing; its folder must exist.
   * Use a path on persistent storage: a file on a container's ephemeral layer
   * is gone after a restart, and with it the protection.
   */
  readonly path: string;
  /** Table holding the nonces (default `bastion_replay`), `[a-z_][a-z0-9_]{0,62}`; created when missing. */
  readonly table?: string;
  /** Expired nonces are deleted at most once per this many ms, during `remember` (default 60 000). */
  readonly pruneIntervalMs?: number;
  /**
   * `full` (default): each nonce is fsynced before `remember` resolves, so it
   * survives a process restart, an OS crash and a power loss; the fsync blocks
   * the event loop (milliseconds on most disks). `normal`: SQLite's WAL
   * `synchronous=NORMAL`, written to the OS but fsynced only at checkpoints: it
   * survives a process restart or crash, not an OS crash or power loss, and is
   * about 30 times faster.
   */
  readonly synchronous?: 'full' | 'normal';
  /** How long a write waits for another process's lock, in ms (default 5 000); then `remember` rejects. */
  readonly busyTimeoutMs?: number;
  /** Clock in ms since the epoch (tests inject one). */
  readonly now?: () => number;
}

const TABLE = /^[a-z_][a-z0-9_]{0,62}$/;

function nonNegativeInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`SqliteReplayStore: ${name} must be a non-negative integer (ms)`);
  return v;
}

/**
 * Nonces in a SQLite table `(key TEXT PRIMARY KEY, until INTEGER)`, one row per
 * nonce until it expires. `remember` is one `INSERT … ON CONFLICT DO UPDATE …
 * WHERE until <= now` statement: it takes SQLite's write lock, so of several
 * connections, threads or processes racing on one nonce exactly one sees it as
 * new. WAL with `synchronous=FULL` by default: a nonce is on disk before the
 * request it belongs to is accepted, so it is refused after a restart or a power
 * loss (`synchronous: 'normal'` trades the power-loss case for speed).
 * Expired rows are deleted on open and then at most once per `pruneIntervalMs`.
 *
 * The database calls are synchronous (node:sqlite); each is one short indexed
 * write plus its fsync.
 */
/** Whether an error is SQLite's "database is locked / busy" (SQLITE_BUSY, SQLITE_LOCKED, their extended codes). */
function isBusy(err: unknown): boolean {
  const e = err as { errcode?: unknown; message?: unknown };
  const code = typeof e?.errcode === 'number' ? e.errcode & 0xff : -1;
  return code === 5 || code === 6 || (typeof e?.message === 'string' && /database is (?:locked|busy)/i.test(e.message));
}

/** Runs `fn`, again after a short sleep while it fails busy, until `timeoutMs` has passed (then the last error). */
function untilNotBusy(timeoutMs: number, fn: () => void): void {
  const deadline = Date.now() + timeoutMs;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      fn();
      return;
    } catch (err) {
      if (!isBusy(err) || Date.now() + wait > deadline) throw err;
      Atomics.wait(sleeper, 0, 0, wait);
    }
  }
}

export class SqliteReplayStore implements ReplayStore {
  readonly #db: DatabaseSync;
  readonly #remember: StatementSync;
  readonly #prune: StatementSync;
  readonly #count: StatementSync;
  readonly #now: () => number;
  readonly #pruneIntervalMs: number;
  #nextPrune = 0;
  #closed = false;

  /**
   * Opens (creating when missing) the database and the table.
   * @throws TypeError for invalid options; ReplayStoreError when the file cannot
   *   be opened or is not a SQLite database, or `node:sqlite` is unavailable (Node < 22.5).
   */
  constructor(opts: SqliteReplayStoreOptions) {
    if (typeof opts?.path !== 'string' || opts.path === '') throw new TypeError('SqliteReplayStore: path must be a non-empty string');
    const table = opts.table ?? 'bastion_replay';
    if (typeof table !== 'string' || !TABLE.test(table)) throw new TypeError('SqliteReplayStore: table must match [a-z_][a-z0-9_]{0,62}');
    this.#pruneIntervalMs = nonNegativeInt('pruneIntervalMs', opts.pruneIntervalMs, 60_000);
    const busy = nonNegativeInt('busyTimeoutMs', opts.busyTimeoutMs, 5_000);
    this.#now = opts.now ?? Date.now;
    const synchronous = opts.synchronous ?? 'full';
    if (synchronous !== 'full' && synchronous !== 'normal') throw new TypeError("SqliteReplayStore: synchronous must be 'full' or 'normal'");

    const sqlite = process.getBuiltinModule('node:sqlite') as typeof import('node:sqlite') | undefined;
    if (sqlite === undefined) throw new ReplayStoreError('replay store: node:sqlite is not available (Node 22.5 or later)');
    let db: DatabaseSync | undefined;
    try {
      // Create the file ourselves so it is owner-only; SQLite gives -wal/-shm the same mode.
      if (opts.path !== ':memory:' && !existsSync(opts.path)) closeSync(openSync(opts.path, 'a', 0o600));
      db = new sqlite.DatabaseSync(opts.path, { timeout: busy });
      const open = db;
      // Two processes opening a new file at once can meet SQLITE_BUSY while one switches it to WAL or
      // creates the table, in ways SQLite's busy handler does not wait out: retried within the timeout.
      untilNotBusy(busy, () => {
        open.exec(`PRAGMA busy_timeout = ${busy}`);
        open.exec('PRAGMA journal_mode = WAL');
        open.exec(synchronous === 'full' ? 'PRAGMA synchronous = FULL' : 'PRAGMA synchronous = NORMAL');
        open.exec(`CREATE TABLE IF NOT EXISTS ${table} (key TEXT PRIMARY KEY, until INTEGER NOT NULL) STRICT`);
        open.exec(`CREATE INDEX IF NOT EXISTS ${table}_until ON ${table} (until)`);
      });
      this.#remember = db.prepare(`INSERT INTO ${table} (key, until) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET until = excluded.until WHERE ${table}.until <= ?`);
      this.#prune = db.prepare(`DELETE FROM ${table} WHERE until <= ?`);
      this.#count = db.prepare(`SELECT COUNT(*) AS n FROM ${table}`);
    } catch (err) {
      try {
        db?.close();
      } catch {
        // The open error is the one to report.
      }
      throw new ReplayStoreError('replay store: cannot open the database', { cause: err });
    }
    this.#db = db;
    this.prune();
  }

  /**
   * Records `key` until now + `ttlMs`. Resolves `true` when it was new (or its
   * earlier record had expired), `false` for a replay; rejects with
   * {@link ReplayStoreError} when the database cannot answer (locked longer than
   * `busyTimeoutMs`, disk error, closed): callers refuse the message.
   */
  remember(key: string, ttlMs: number): Promise<boolean> {
    try {
      if (this.#closed) throw new Error('closed');
      const now = this.#now();
      if (now >= this.#nextPrune) this.prune();
      const r = this.#remember.run(key, now + Math.max(1, Math.ceil(ttlMs)), now);
      return Promise.resolve(Number(r.changes) === 1);
    } catch (err) {
      return Promise.reject(new ReplayStoreError('replay store unavailable', { cause: err }));
    }
  }

  /**
   * Deletes expired nonces now; returns how many.
   * @throws ReplayStoreError when the database cannot answer.
   */
  prune(): number {
    try {
      const now = this.#now();
      this.#nextPrune = now + this.#pruneIntervalMs;
      return Number(this.#prune.run(now).changes);
    } catch (err) {
      throw new ReplayStoreError('replay store unavailable', { cause: err });
    }
  }

  /** Number of rows held (expired ones count until pruned). */
  get size(): number {
    return Number((this.#count.get() as { n: number }).n);
  }

  /** Closes the database; later `remember` calls reject. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }
}
