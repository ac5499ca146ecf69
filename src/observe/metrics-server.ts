/**
 * The separate metrics listener (`observability.metrics.listen`): answers
 * `GET /metrics` with the gateway's metrics and everything else with 404. It
 * asks for no key: bind it to an address only the scraper reaches.
 */
import { createServer, type Server } from 'node:http';
import { listenOn } from '../server/listen.ts';
import type { GatewayMetrics } from './metrics.ts';

/** A running metrics listener. */
export interface MetricsServer {
  readonly url: URL;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (port 0: any free port) and serves `metrics`.
 * @throws (rejects) the listen error (`EADDRINUSE`, `EACCES`)
 */
export async function startMetricsServer(metrics: GatewayMetrics, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://bastion.invalid').pathname;
    if (path !== '/metrics' || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end('{"error":"not found"}');
    }
    metrics.scrape().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' });
        res.end(body);
      },
      () => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end('{"error":"ERR_INTERNAL"}');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const addr = await listenOn(server, host, port);
  const shown = addr.shown;
  return {
    url: new URL(`http://${shown}:${addr.port}/metrics`),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
