/**
 * Connecting to exactly the address that was checked (the SSRF guard's second
 * half). `resolveAndClassify` decides on a name's addresses; this connector then
 * dials the one address it returned, never resolving the name again, so a DNS
 * answer that changes between the check and the connection (DNS rebinding)
 * cannot move the connection. For TLS the name stays the `servername`, so SNI
 * and certificate verification are against the name, as a browser would do.
 *
 * Built on undici's own connector (`buildConnector`), only the dial target is
 * replaced. A request for any other host through the same dispatcher is refused
 * before a socket is opened.
 */
import { isIP } from 'node:net';
import { Agent, buildConnector, type Dispatcher } from 'undici';

/** Error for a connection attempt to a host the dispatcher was not pinned for. */
export class UnpinnedHostError extends Error {
  readonly code = 'ERR_EGRESS_UNPINNED';
  constructor() {
    super('connection refused: host is not the one that was checked');
    this.name = 'UnpinnedHostError';
  }
}

export interface PinnedDispatcherOptions {
  /** Connect timeout in ms (undici's default is 10 s). */
  readonly connectTimeoutMs?: number;
  /** CA certificates (PEM) trusted for TLS destinations, replacing Node's defaults (pass `tls.rootCertificates` plus extras to add). */
  readonly ca?: readonly string[];
}

/**
 * An undici dispatcher that connects requests for `host` (exactly, case-insensitive)
 * to `address` and refuses every other host with {@link UnpinnedHostError}.
 * `address` must be an IP literal, normally `resolveAndClassify(...).address.address`.
 * @throws TypeError when `address` is not an IP literal.
 */
export function pinnedDispatcher(host: string, address: string, opts: PinnedDispatcherOptions = {}): Dispatcher {
  if (isIP(address) === 0) throw new TypeError('pinnedDispatcher: address must be an IP literal');
  const expected = host.toLowerCase().replace(/^\[|\]$/g, '');
  const base = buildConnector({ timeout: opts.connectTimeoutMs ?? 10_000, ...(opts.ca ? { ca: [...opts.ca] } : {}) });
  return new Agent({
    connect: (options, callback) => {
      const asked = options.hostname.toLowerCase().replace(/^\[|\]$/g, '');
      if (asked !== expected) {
        callback(new UnpinnedHostError(), null);
        return;
      }
      // Dial the checked address; keep the name for TLS (SNI, certificate identity).
      const servername = options.servername ?? (isIP(expected) === 0 ? expected : undefined);
      base({ ...options, hostname: address, ...(servername === undefined ? {} : { servername }) }, callback);
    },
  });
}

/**
 * Keep-alive pinned dispatchers, one per (host, checked address), so repeated
 * requests to the same destination reuse connections. Bounded: beyond `max`
 * the oldest dispatcher is closed. A new address for a host (DNS changed) gets
 * its own dispatcher; pinning is never loosened.
 */
export class PinnedDispatcherPool {
  readonly #opts: PinnedDispatcherOptions;
  readonly #max: number;
  readonly #dispatchers = new Map<string, Dispatcher>();

  /** `max`: most dispatchers kept (default 256). */
  constructor(opts: PinnedDispatcherOptions & { readonly max?: number } = {}) {
    this.#opts = opts;
    this.#max = opts.max ?? 256;
  }

  /** The dispatcher pinned to `address` for `host` ({@link pinnedDispatcher}). @throws TypeError when `address` is not an IP literal. */
  get(host: string, address: string): Dispatcher {
    const key = `${host}\u0000${address}`;
    let d = this.#dispatchers.get(key);
    if (d === undefined) {
      if (this.#dispatchers.size >= this.#max) {
        const [oldKey, old] = this.#dispatchers.entries().next().value as [string, Dispatcher];
        this.#dispatchers.delete(oldKey);
        void old.close().catch(() => undefined);
      }
      d = pinnedDispatcher(host, address, this.#opts);
      this.#dispatchers.set(key, d);
    }
    return d;
  }

  /** Closes every dispatcher (waits for their requests to finish). */
  async close(): Promise<void> {
    const all = [...this.#dispatchers.values()];
    this.#dispatchers.clear();
    await Promise.all(all.map((d) => d.close().catch(() => undefined)));
  }
}
