/**
 * The cluster bus over Redis pub/sub (config `redis`): every instance of a
 * deployment that uses the same Redis and `keyPrefix` hears every message.
 *
 * Two connections: a subscriber (a connection in subscribe mode can do nothing
 * else) and a publisher, which also carries the few plain commands of the
 * instance registry (./registry.ts). Both are fail-fast clients
 * (src/util/redis.ts): no offline queue, so a publish while Redis is down
 * rejects at once with `ERR_STORE` instead of waiting; both reconnect by
 * themselves (backoff up to 2 s) and the subscriber subscribes again on every
 * reconnect. Messages published while the subscriber was away are lost (Redis
 * pub/sub is at most once): consumers read the store, and keep a slower poll.
 *
 * Channel names: `<keyPrefix>bus:<channel>`. Payload: JSON
 * `{"v":1,"from":"<instance id>","message":{…}}`, at most
 * {@link MAX_BUS_MESSAGE_BYTES}; anything else received is dropped.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { BastionError } from '../errors.ts';
import { failFastRedis } from '../util/redis.ts';
import { CLUSTER_CHANNELS, type ClusterBus, type ClusterChannel, type ClusterHandler, type ClusterMessage } from './bus.ts';

/** Largest payload published or accepted, in bytes (messages are wake-ups, not data). */
export const MAX_BUS_MESSAGE_BYTES = 64 * 1024;

/** Default bound of connect and of each command, in ms. */
export const REDIS_BUS_TIMEOUT_MS = 1_000;

/** Options of {@link RedisBus.open}. */
export interface RedisBusOptions {
  /** `redis://` or `rediss://` URL; may hold a password, never echoed. */
  readonly url: string;
  /** Prefix of every channel and key (config `redis.keyPrefix`, e.g. `bastion:`). */
  readonly keyPrefix: string;
  /** This instance's id (default: a random UUID). */
  readonly instanceId?: string;
  /** Bound of connect and of each command, in ms (default {@link REDIS_BUS_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
}

/** The state of the bus's connections, for readiness and the outage alert. */
export interface RedisBusHealth {
  /** True while both connections are ready and the subscriber is subscribed. */
  readonly ok: boolean;
  /** When not ok: the last socket error code (`ECONNREFUSED`, `ETIMEDOUT`) or the connection state; never a URL. */
  readonly detail?: string;
}

/** The error code of a socket or client error, without its message (which names host and port). */
function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'ERR_REDIS';
}

/** A {@link ClusterBus} over Redis pub/sub. Open with {@link RedisBus.open}. */
export class RedisBus implements ClusterBus {
  readonly instanceId: string;
  readonly keyPrefix: string;
  readonly #pub: Redis;
  readonly #sub: Redis;
  readonly #local = new EventEmitter();
  readonly #health = new EventEmitter();
  #subscribed = false;
  #lastError: string | undefined;
  #lastOk: boolean | undefined;
  #closed = false;

  private constructor(pub: Redis, sub: Redis, keyPrefix: string, instanceId: string) {
    this.#pub = pub;
    this.#sub = sub;
    this.keyPrefix = keyPrefix;
    this.instanceId = instanceId;
    this.#local.setMaxListeners(0);
    this.#health.setMaxListeners(0);
    for (const c of [pub, sub]) {
      c.on('error', (err: unknown) => {
        this.#lastError = errorCode(err);
        this.#changed();
      });
      c.on('close', () => this.#changed());
      c.on('end', () => this.#changed());
    }
    pub.on('ready', () => {
      this.#lastError = undefined;
      this.#changed();
    });
    sub.on('close', () => {
      this.#subscribed = false;
    });
    // Subscribe on every (re)connect: with no offline queue a SUBSCRIBE sent while down would fail.
    sub.on('ready', () => void this.#subscribe());
    sub.on('message', (channel: string, payload: string) => this.#receive(channel, payload));
  }

  /**
   * Connects both clients, waiting at most `timeoutMs` for them; an unreachable
   * Redis does not fail the open (the clients keep reconnecting, and until they
   * do `publish` rejects and {@link health} is not ok).
   * @throws BastionError `ERR_CONFIG_INVALID` for a URL that is not `redis:`/`rediss:` (not echoed) or a bad key prefix.
   */
  static async open(opts: RedisBusOptions): Promise<RedisBus> {
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      throw new BastionError('ERR_CONFIG_INVALID', 'redis.url is not a valid URL', { detail: { path: 'redis.url' } });
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
      throw new BastionError('ERR_CONFIG_INVALID', 'redis.url must be a redis:// or rediss:// URL', { detail: { path: 'redis.url' } });
    }
    if (typeof opts.keyPrefix !== 'string' || opts.keyPrefix.length > 64) {
      throw new BastionError('ERR_CONFIG_INVALID', 'redis.keyPrefix must be a string of at most 64 characters', { detail: { path: 'redis.keyPrefix' } });
    }
    const timeoutMs = opts.timeoutMs ?? REDIS_BUS_TIMEOUT_MS;
    const bus = new RedisBus(failFastRedis(opts.url, timeoutMs), failFastRedis(opts.url, timeoutMs), opts.keyPrefix, opts.instanceId ?? randomUUID());
    await Promise.all([bus.#pub.connect().catch(() => undefined), bus.#sub.connect().catch(() => undefined)]);
    if (bus.#sub.status === 'ready' && !bus.#subscribed) await bus.#subscribe();
    bus.#changed();
    return bus;
  }

  /** The publisher connection, for the few plain commands of the instance registry (./registry.ts). Fail fast: commands reject while Redis is down. */
  get commands(): Redis {
    return this.#pub;
  }

  /** The Redis channel name of `channel`. */
  channelName(channel: ClusterChannel): string {
    return `${this.keyPrefix}bus:${channel}`;
  }

  /**
   * Publishes to every instance (this one included, through Redis).
   * @throws BastionError `ERR_STORE` (detail `{code}`: `ECONNREFUSED`, `not_ready`, `closed`, …) when Redis is unreachable or the command failed;
   *   RangeError when the message is larger than {@link MAX_BUS_MESSAGE_BYTES}; TypeError when it is not JSON.
   */
  async publish(channel: ClusterChannel, message: ClusterMessage): Promise<void> {
    if (!CLUSTER_CHANNELS.includes(channel)) throw new TypeError(`cluster bus: unknown channel ${String(channel)}`);
    const payload = JSON.stringify({ v: 1, from: this.instanceId, message });
    if (Buffer.byteLength(payload) > MAX_BUS_MESSAGE_BYTES) throw new RangeError(`cluster bus: message larger than ${MAX_BUS_MESSAGE_BYTES} bytes`);
    if (this.#closed) throw new BastionError('ERR_STORE', 'cluster bus: closed', { detail: { code: 'closed' } });
    if (this.#pub.status !== 'ready') {
      const code = this.#lastError ?? 'not_ready';
      this.#health.emit('failed', code);
      throw new BastionError('ERR_STORE', 'cluster bus: redis unavailable', { detail: { code } });
    }
    try {
      await this.#pub.publish(this.channelName(channel), payload);
    } catch (err) {
      const code = errorCode(err);
      this.#health.emit('failed', code);
      throw new BastionError('ERR_STORE', 'cluster bus: redis unavailable', { detail: { code } });
    }
  }

  /**
   * Calls `listener` with the short error code (`ECONNREFUSED`, `not_ready`, …; never a URL) of every
   * publish that failed because of Redis; returns the function that removes it. Listeners must not throw.
   */
  onCommandError(listener: (code: string) => void): () => void {
    this.#health.on('failed', listener);
    return () => void this.#health.off('failed', listener);
  }

  subscribe(channel: ClusterChannel, handler: ClusterHandler): () => void {
    const safe = (message: ClusterMessage, from: string): void => {
      try {
        handler(message, from);
      } catch {
        // A subscriber's failure is its own; the bus keeps delivering.
      }
    };
    this.#local.on(channel, safe);
    return () => void this.#local.off(channel, safe);
  }

  /** The connections' state now (cheap; for the `redis` readiness check). */
  health(): RedisBusHealth {
    if (this.#closed) return { ok: false, detail: 'closed' };
    if (this.#pub.status === 'ready' && this.#sub.status === 'ready' && this.#subscribed) return { ok: true };
    return { ok: false, detail: this.#lastError ?? (this.#pub.status === 'ready' ? 'subscriber_not_ready' : 'not_ready') };
  }

  /** Calls `listener` on every change of {@link health}'s `ok` (down, then up again); returns the function that removes it. */
  onHealthChange(listener: (health: RedisBusHealth) => void): () => void {
    this.#health.on('change', listener);
    return () => void this.#health.off('change', listener);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#local.removeAllListeners();
    this.#health.removeAllListeners();
    // disconnect(), not quit(): quit waits for a reply an unreachable Redis never sends; disconnect also stops reconnecting.
    this.#sub.disconnect(false);
    this.#pub.disconnect(false);
    return Promise.resolve();
  }

  async #subscribe(): Promise<void> {
    try {
      await this.#sub.subscribe(...CLUSTER_CHANNELS.map((c) => this.channelName(c)));
      this.#subscribed = true;
    } catch (err) {
      this.#subscribed = false;
      this.#lastError = errorCode(err);
    }
    this.#changed();
  }

  #receive(channelName: string, payload: string): void {
    if (this.#closed || !channelName.startsWith(`${this.keyPrefix}bus:`)) return;
    const channel = channelName.slice(this.keyPrefix.length + 4) as ClusterChannel;
    if (!CLUSTER_CHANNELS.includes(channel) || payload.length > MAX_BUS_MESSAGE_BYTES) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return;
    }
    if (parsed === null || typeof parsed !== 'object') return;
    const { v, from, message } = parsed as { v?: unknown; from?: unknown; message?: unknown };
    if (v !== 1 || typeof from !== 'string' || from.length === 0 || from.length > 128) return;
    if (message === null || typeof message !== 'object' || Array.isArray(message)) return;
    this.#local.emit(channel, message as ClusterMessage, from);
  }

  #changed(): void {
    if (this.#closed) return;
    const h = this.health();
    if (h.ok === this.#lastOk) return;
    this.#lastOk = h.ok;
    this.#health.emit('change', h);
  }
}
