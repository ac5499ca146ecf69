/** Loopback servers in tests: listening on an ephemeral port and shutting down. */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Starts `server` (HTTP or HTTPS) listening on 127.0.0.1 at an ephemeral port; resolves with the port. */
export async function listenLoopback(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Drops `server`'s open connections (keep-alive ones too) and closes it; resolves once it is closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
