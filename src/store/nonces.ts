/**
 * The nonce port: nonces seen in signed inbound messages (agent-to-agent),
 * each kept until a message carrying it could no longer be accepted, so a
 * message is accepted once — also across restarts and, with Redis, across
 * instances. Owned by its consumer (src/a2a/door.ts); kept apart from the
 * `Store` contract so it stays this narrow.
 *
 * Implementations (one each, shared with `bastion/verify`):
 * - `store`: a table `<namespace>_nonces` in the store. With SQLite, in the store
 *   file, on its own connection (`SqliteReplayStore`: WAL, synchronous FULL, one
 *   atomic statement per nonce, expired rows pruned), shared by every process
 *   opening the same file; with PostgreSQL, in the store's database on its own
 *   small pool (./postgres-nonces.ts), shared by every instance. The default:
 *   survives restarts.
 * - `redis`: `SET key 1 PX ttl NX` under `<keyPrefix><namespace>:nonce:`, shared
 *   by every instance on that Redis (`RedisReplayStore`), fail-fast client.
 * - `memory`: in the process (`MemoryReplayStore`); lost at restart. For tests.
 */
import type { Redis } from 'ioredis';
import { BastionError } from '../errors.ts';
import { failFastRedis } from '../util/redis.ts';
import type { Secret } from '../util/secret.ts';
import { MemoryReplayStore, RedisReplayStore, ReplayStoreError, type ReplayStore } from '../verify/replay.ts';
import { SqliteReplayStore } from '../verify/sqlite-replay.ts';
import type { ResolvedStore } from '../config/types.ts';
import { openPostgresReplayStore, type PostgresReplayStore } from './postgres-nonces.ts';

/** Seen nonces with expiry. */
export interface NonceStore {
  /**
   * Records `key` for `ttlMs` ms. Resolves `true` on first use (or when its
   * record has expired), `false` for a replay; rejects when the store cannot
   * answer, and the caller then refuses the message (fail closed).
   */
  remember(key: string, ttlMs: number): Promise<boolean>;
  /** Releases the connection. */
  close(): Promise<void>;
}

/** Where a consumer's nonces go (from the resolved config). */
export interface NonceStoreConfig {
  readonly kind: 'store' | 'redis' | 'memory';
  /** The embedded SQLite store file (`config.storePath`), for `store` when `store` below is absent or SQLite. */
  readonly storePath?: string | undefined;
  /** Where the store lives (`config.store`), for `store`: a PostgreSQL store keeps the nonces in its database. */
  readonly store?: ResolvedStore;
  /** The `redis` setting, for `redis`. */
  readonly redis?: { readonly url: Secret; readonly keyPrefix: string };
  /** The consumer's name (`a2a`): table `a2a_nonces`, Redis keys `<keyPrefix>a2a:nonce:…`. */
  readonly namespace: string;
}

/** Options of {@link openNonceStore}. */
export interface OpenNonceStoreOptions {
  /** Connect and command timeout of the Redis client, in ms. */
  readonly redisTimeoutMs: number;
  /** Clock, epoch ms (tests inject one; SQLite and memory stores only, Redis keeps its own time). */
  readonly now?: () => number;
  /**
   * `redis` only: called with the short error code (`ECONNREFUSED`, `ERR_REDIS`; never a message or URL)
   * of every failed Redis command; the gateway counts it in `bastion_errors_total{component="redis"}`. Must not throw.
   */
  readonly onRedisError?: (code: string) => void;
}

/**
 * Opens the nonce store `config` names. For `redis`, waits at most
 * `redisTimeoutMs` to connect; an unreachable Redis does not fail the open (the
 * client keeps reconnecting) but every `remember` rejects until it answers.
 * @throws BastionError `ERR_STORE` when the SQLite store file or the PostgreSQL database cannot be opened
 *   (`ERR_CONFIG_SECRET_REF` when the PostgreSQL URL's reference did not resolve);
 *   `ERR_CONFIG_INVALID` for `redis` without a `redis` setting or a bad namespace.
 */
export async function openNonceStore(config: NonceStoreConfig, opts: OpenNonceStoreOptions): Promise<NonceStore> {
  if (!/^[a-z][a-z0-9]{0,31}$/.test(config.namespace)) throw new BastionError('ERR_CONFIG_INVALID', 'nonce store: namespace must match [a-z][a-z0-9]{0,31}');
  switch (config.kind) {
    case 'store': {
      const table = `${config.namespace}_nonces`;
      if (config.store?.kind === 'postgres') {
        if (config.store.url === undefined) throw new BastionError('ERR_CONFIG_SECRET_REF', `store.postgres: ${config.store.ref} did not resolve; the nonce store cannot be opened`);
        let pg: PostgresReplayStore;
        try {
          pg = await openPostgresReplayStore(config.store.url.reveal(), { table, ...(opts.now ? { now: opts.now } : {}) });
        } catch (err) {
          throw new BastionError('ERR_STORE', 'store: open failed', { cause: err, detail: { reason: 'nonce_table' } });
        }
        return wrap(pg, () => pg.close());
      }
      const path = config.store?.kind === 'sqlite' ? config.store.path : config.storePath;
      if (path === undefined) throw new BastionError('ERR_CONFIG_INVALID', 'nonce store: store needs the store location (storePath or store)');
      let sqlite: SqliteReplayStore;
      try {
        sqlite = new SqliteReplayStore({ path, table, ...(opts.now ? { now: opts.now } : {}) });
      } catch (err) {
        throw new BastionError('ERR_STORE', 'store: open failed', { cause: err, detail: { reason: 'nonce_table', path } });
      }
      return wrap(sqlite, () => sqlite.close());
    }
    case 'redis': {
      if (config.redis === undefined) throw new BastionError('ERR_CONFIG_INVALID', 'nonce store: redis needs the top-level redis setting');
      // No offline queue: while disconnected a nonce lookup fails at once (→ 503) instead of waiting.
      const client: Redis = failFastRedis(config.redis.url.reveal(), opts.redisTimeoutMs);
      await client.connect().catch(() => undefined);
      const failed = opts.onRedisError;
      const set = (key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null> =>
        failed === undefined
          ? client.set(key, value, px, ttlMs, nx)
          : client.set(key, value, px, ttlMs, nx).catch((err: unknown) => {
              const own = (err as { code?: unknown } | null)?.code;
              try {
                failed(typeof own === 'string' && /^[A-Za-z0-9_]{1,32}$/.test(own) ? own : 'ERR_REDIS');
              } catch {
                // Counting must not change the store's answer.
              }
              throw err;
            });
      const redis = new RedisReplayStore(
        { set },
        { prefix: `${config.redis.keyPrefix}${config.namespace}:nonce:` },
      );
      return wrap(redis, () => client.disconnect(false));
    }
    case 'memory':
      return wrap(new MemoryReplayStore(opts.now ? { now: opts.now } : {}), () => undefined);
  }
}

function wrap(store: ReplayStore, close: () => void | Promise<void>): NonceStore {
  let closed: Promise<void> | undefined;
  return {
    remember: (key, ttlMs) => (closed !== undefined ? Promise.reject(new ReplayStoreError('nonce store closed')) : store.remember(key, ttlMs)),
    close: () => {
      closed ??= Promise.resolve(close());
      return closed;
    },
  };
}
