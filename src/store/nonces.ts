/**
 * The nonce port: nonces seen in signed inbound messages (agent-to-agent),
 * each kept until a message carrying it could no longer be accepted, so a
 * message is accepted once — also across restarts and, with Redis, across
 * instances. Owned by its consumer (src/a2a/door.ts); kept apart from the
 * `Store` contract so it stays this narrow.
 *
 * Implementations (one each, shared with `bastion/verify`):
 * - `store`: a table `<namespace>_nonces` in the embedded SQLite store file, on
 *   its own connection (`SqliteReplayStore`: WAL, synchronous FULL, one atomic
 *   statement per nonce, expired rows pruned). The default: survives restarts,
 *   shared by every process opening the same store file.
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
  /** The embedded SQLite store file (`config.storePath`), for `store`. */
  readonly storePath: string;
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
}

/**
 * Opens the nonce store `config` names. For `redis`, waits at most
 * `redisTimeoutMs` to connect; an unreachable Redis does not fail the open (the
 * client keeps reconnecting) but every `remember` rejects until it answers.
 * @throws BastionError `ERR_STORE` when the SQLite store file cannot be opened;
 *   `ERR_CONFIG_INVALID` for `redis` without a `redis` setting or a bad namespace.
 */
export async function openNonceStore(config: NonceStoreConfig, opts: OpenNonceStoreOptions): Promise<NonceStore> {
  if (!/^[a-z][a-z0-9]{0,31}$/.test(config.namespace)) throw new BastionError('ERR_CONFIG_INVALID', 'nonce store: namespace must match [a-z][a-z0-9]{0,31}');
  switch (config.kind) {
    case 'store': {
      let sqlite: SqliteReplayStore;
      try {
        sqlite = new SqliteReplayStore({ path: config.storePath, table: `${config.namespace}_nonces`, ...(opts.now ? { now: opts.now } : {}) });
      } catch (err) {
        throw new BastionError('ERR_STORE', 'store: open failed', { cause: err, detail: { reason: 'nonce_table', path: config.storePath } });
      }
      return wrap(sqlite, () => sqlite.close());
    }
    case 'redis': {
      if (config.redis === undefined) throw new BastionError('ERR_CONFIG_INVALID', 'nonce store: redis needs the top-level redis setting');
      // No offline queue: while disconnected a nonce lookup fails at once (→ 503) instead of waiting.
      const client: Redis = failFastRedis(config.redis.url.reveal(), opts.redisTimeoutMs);
      await client.connect().catch(() => undefined);
      const redis = new RedisReplayStore(
        { set: (key, value, px, ttlMs, nx) => client.set(key, value, px, ttlMs, nx) },
        { prefix: `${config.redis.keyPrefix}${config.namespace}:nonce:` },
      );
      return wrap(redis, () => client.disconnect(false));
    }
    case 'memory':
      return wrap(new MemoryReplayStore(opts.now ? { now: opts.now } : {}), () => undefined);
  }
}

function wrap(store: ReplayStore, close: () => void): NonceStore {
  let closed = false;
  return {
    remember: (key, ttlMs) => (closed ? Promise.reject(new ReplayStoreError('nonce store closed')) : store.remember(key, ttlMs)),
    close: () => {
      if (!closed) {
        closed = true;
        close();
      }
      return Promise.resolve();
    },
  };
}
