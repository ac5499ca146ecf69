/**
 * A loopback HTTP proxy that adds an Authorization header to every request, so that clients which
 * cannot send headers (the conformance CLI) can reach the gateway.
 *
 * Forwarded unchanged: method, path and query, every end-to-end request header including Host and
 * Origin exactly as the client sent them (the dns-rebinding scenario sends a forged Host and expects
 * the server behind to see it), status and response headers. Hop-by-hop headers (RFC 9110 §7.6.1)
 * are dropped. Bodies stream both ways without buffering, so SSE events reach the client one by one.
 * A client-supplied Authorization header is replaced, never forwarded.
 */
import { Agent, createServer, request, type OutgoingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AuthProxy {
  /** The proxy's URL: the target's path and query on the proxy's loopback origin. */
  url: URL;
  close(): Promise<void>;
}

const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Copies rawHeaders (name, value, name, value, ...) without hop-by-hop headers and the named extras. */
function forwardable(raw: string[], drop: ReadonlySet<string>): OutgoingHttpHeaders {
  const listed = new Set<string>();
  const connection = raw.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === 'connection' ? (raw[i + 1] ?? '').split(',') : []));
  for (const token of connection) listed.add(token.trim().toLowerCase());
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    if (hopByHop.has(lower) || listed.has(lower) || drop.has(lower)) continue;
    const prev = out[lower];
    out[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}

export async function startAuthProxy(target: URL, authorization: string, opts: { port?: number } = {}): Promise<AuthProxy> {
  if (target.protocol !== 'http:') throw new TypeError(`target: expected an http: URL, got ${target.protocol}`);
  if (authorization.length === 0 || /[\r\n]/.test(authorization)) throw new TypeError('authorization: expected a non-empty single-line header value');

  const agent = new Agent({ keepAlive: true });
  const dropFromRequest = new Set(['authorization']);
  const none = new Set<string>();

  const server = createServer((req, res) => {
    const headers = forwardable(req.rawHeaders, dropFromRequest);
    headers.authorization = authorization;
    const upstream = request({
      agent,
      host: target.hostname,
      port: target.port === '' ? 80 : Number(target.port),
      method: req.method,
      path: req.url,
      headers,
      // Keep the client's Host header instead of one derived from the target.
      setHost: false,
    });
    upstream.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, forwardable(upRes.rawHeaders, none));
      // Send the head now: an SSE response may wait a long time for its first event.
      res.flushHeaders();
      upRes.pipe(res);
      upRes.on('error', () => res.destroy());
    });
    upstream.on('error', () => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('bad gateway');
      } else {
        res.destroy();
      }
    });
    // The client went away (e.g. it cancelled an SSE stream): stop the upstream exchange too.
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = new URL(`${target.pathname}${target.search}`, `http://127.0.0.1:${port}`);

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      });
      return closing;
    },
  };
}
