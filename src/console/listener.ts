/**
 * The console on a listener of its own (config `server.console.listen`), for
 * operators who keep `/console` off the address agents reach. It serves the
 * console and nothing else, with the same checks as the main listener in
 * front: the Host allowlist (the bound address and the loopback names, with
 * this port: DNS rebinding) and, when a request carries one, an Origin of
 * `http://` one of those hosts. Refusals answer 403 and are audited.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import { listenOn } from '../server/listen.ts';
import type { Gateway } from '../server/gateway.ts';
import { defaultAllowedHosts } from '../server/http.ts';
import { headerOne } from '../door/body.ts';
import { reasonEntry, type Reason } from '../door/reasons.ts';
import { deny } from '../decision.ts';
import { CONSOLE_HEADERS } from './headers.ts';
import { closeConsole, handleConsole } from './server.ts';

/** A running console listener. */
export interface ConsoleListener {
  /** `http://host:port/console/`. */
  readonly url: URL;
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * Listens on `host:port` (port 0: any free port) and serves `/console` there.
 * @throws the listen error (`EADDRINUSE`, `EACCES`) when the address cannot be bound.
 */
export async function startConsoleListener(gateway: Gateway, host: string, port: number): Promise<ConsoleListener> {
  const cfg = gateway.config.server;
  const hosts = new Set<string>();
  const origins = new Set<string>();
  const refuse = async (res: ServerResponse, reason: Reason, method: string, started: number): Promise<void> => {
    const row = reasonEntry(reason);
    await gateway.auditStep.durable({
      time: new Date().toISOString(),
      door: 'admin',
      agent: null,
      method,
      target: null,
      decision: deny(reason, 'console.listen'),
      outcome: 'denied',
      durationMs: Math.round((performance.now() - started) * 1000) / 1000,
      detail: { status: 403, listener: 'console', code: row.code },
    });
    res.writeHead(403, { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8' });
    res.end(JSON.stringify({ error: `${reason === 'host.not_allowed' ? 'host' : 'origin'} not allowed (${row.code})`, code: row.code }));
  };
  const server = createServer({ headersTimeout: cfg.headersTimeoutMs, requestTimeout: cfg.requestTimeoutMs, keepAliveTimeout: 5_000 }, (req, res) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://bastion.invalid');
    const method = `console.${req.method ?? 'UNKNOWN'} ${url.pathname.slice(0, 256)}`;
    const run = async (): Promise<void> => {
      if (!hosts.has((req.headers.host ?? '').toLowerCase())) return refuse(res, 'host.not_allowed', method, started);
      const origin = headerOne(req, 'origin');
      if (origin !== undefined && !origins.has(origin.toLowerCase())) return refuse(res, 'origin.not_allowed', method, started);
      if (url.pathname === '/') {
        res.writeHead(302, { ...CONSOLE_HEADERS, location: '/console/' });
        return void res.end();
      }
      if (url.pathname !== '/console' && !url.pathname.startsWith('/console/')) {
        res.writeHead(404, { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8' });
        return void res.end('{"error":"not found","code":"ERR_CONSOLE_NOT_FOUND"}');
      }
      return handleConsole(gateway, req, res, url, started);
    };
    run().catch(() => {
      if (!res.headersSent) {
        res.writeHead(500, { ...CONSOLE_HEADERS, 'content-type': 'application/json; charset=utf-8' });
        res.end('{"error":"internal error","code":"ERR_INTERNAL"}');
      } else res.end();
    });
  });
  const addr = await listenOn(server, host, port);
  const shown = addr.shown;
  for (const h of defaultAllowedHosts(shown, addr.port)) {
    hosts.add(h);
    origins.add(`http://${h}`);
  }
  return {
    url: new URL(`http://${shown}:${addr.port}/console/`),
    server,
    close: async () => {
      closeConsole(gateway);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
