/**
 * Preload (`node --import ./test/helpers/loopback-listen.ts ...`) that makes every TCP listen
 * without an explicit host bind 127.0.0.1 instead of all interfaces. Used to run third-party test
 * servers (server-everything's `app.listen(PORT)`) on loopback only.
 */
import { Server } from 'node:net';

const loopback = '127.0.0.1';
const originalListen = Server.prototype.listen;

function isPort(v: unknown): boolean {
  return typeof v === 'number' || (typeof v === 'string' && /^\d+$/.test(v));
}

Server.prototype.listen = function listenOnLoopback(this: Server, ...args: unknown[]): Server {
  const [first, second] = args;
  if (isPort(first) && (second === undefined || typeof second === 'function')) {
    args.splice(1, 0, loopback);
  } else if (typeof first === 'object' && first !== null && !('path' in first) && !('host' in first) && !('handle' in first) && !('fd' in first)) {
    args[0] = { ...first, host: loopback };
  }
  return (originalListen as (...a: unknown[]) => Server).apply(this, args);
} as typeof Server.prototype.listen;
