/**
 * The one way Bastion connects to Redis (rate-limit counters, the A2A nonce
 * cache): a client that fails fast instead of queueing while disconnected, so
 * an outage refuses requests at once (fail closed) rather than holding them.
 */
import { Redis } from 'ioredis';

/**
 * An ioredis client for `url` that connects lazily (call `connect()`), has no
 * offline queue and no per-request retries, and bounds connect, commands and
 * disconnect by `timeoutMs` (ms). Connection errors are swallowed here (callers
 * see failed commands instead), so ioredis does not print host and port.
 */
export function failFastRedis(url: string, timeoutMs: number): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // close() ends the socket and waits this long for it to close (default 2 s, which delays process exit).
    disconnectTimeout: timeoutMs,
    retryStrategy: (attempt: number) => Math.min(attempt * 100, 2_000),
  });
  client.on('error', () => undefined);
  return client;
}
