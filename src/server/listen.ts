/**
 * Binding a listener: one place for the listen-then-report-address dance of the
 * main listener, the metrics listener and the console listener.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Where a listener ended up: the address as it goes in a URL's host (IPv6 in brackets) and the port. */
export interface BoundAddress {
  /** `127.0.0.1` or `[::1]`. */
  readonly shown: string;
  readonly port: number;
}

/**
 * Listens on `host:port` (port 0: any free port) and resolves with the bound address.
 * @throws (rejects) the listen error (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`)
 */
export async function listenOn(server: Server, host: string, port: number): Promise<BoundAddress> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return { shown: addr.family === 'IPv6' ? `[${addr.address}]` : addr.address, port: addr.port };
}
