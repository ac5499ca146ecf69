/**
 * The egress benchmark's origin: one process serving the same routes over plain
 * HTTP and over HTTPS (certificate and key from files), on loopback, with
 * keep-alive. Prints `listening http=<port> https=<port>` when ready.
 *
 *   GET  /small    about 100 bytes of text
 *   POST /upload   reads the whole body (the bench sends 1 MiB) and answers a few bytes
 *   GET  /__stats  counters since the last /__stats, as JSON (then reset)
 *
 * A request carrying `x-bench-expect-secret: 1` must carry
 * `Authorization: Bearer real-secret-value`; anything else is counted as a
 * secret mismatch (the swap did not happen, or leaked the placeholder).
 * Usage: node bench/egress-origin.ts <cert.pem> <key.pem>
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

export const ORIGIN_SECRET = 'real-secret-value';
export const UPLOAD_BYTES = 1024 * 1024;

const SMALL = Buffer.from(`${'bastion egress bench: a small response body for the GET case, about one hundred bytes.'.padEnd(99, '.')}\n`);

interface Counters {
  requests: number;
  secretChecked: number;
  secretMismatches: number;
  bodyMismatches: number;
  lastMismatch: string;
}

let counters: Counters = fresh();
function fresh(): Counters {
  return { requests: 0, secretChecked: 0, secretMismatches: 0, bodyMismatches: 0, lastMismatch: '' };
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/__stats') {
    const body = JSON.stringify(counters);
    counters = fresh();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
    return;
  }
  counters.requests++;
  if (req.headers['x-bench-expect-secret'] === '1') {
    counters.secretChecked++;
    const got = req.headers.authorization;
    if (got !== `Bearer ${ORIGIN_SECRET}`) {
      counters.secretMismatches++;
      counters.lastMismatch = `authorization: ${got === undefined ? '(none)' : got.slice(0, 40)}`;
    }
  }
  const path = (req.url ?? '/').replace(/^https?:\/\/[^/]+/, '');
  if (req.method === 'POST' && path === '/upload') {
    let n = 0;
    req.on('data', (c: Buffer) => void (n += c.length));
    req.on('end', () => {
      if (n !== UPLOAD_BYTES) {
        counters.bodyMismatches++;
        counters.lastMismatch = `upload of ${n} bytes`;
      }
      const body = `received ${n}\n`;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' }).end(body);
    });
    return;
  }
  if (path === '/small') {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': SMALL.length, 'cache-control': 'no-store' }).end(SMALL);
    return;
  }
  req.resume();
  res.writeHead(404, { 'content-length': 0 }).end();
}

function tune(s: Server): Server {
  s.keepAliveTimeout = 120_000;
  s.headersTimeout = 130_000;
  s.requestTimeout = 0;
  return s;
}

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
}

if (import.meta.main) {
  const [certFile, keyFile] = process.argv.slice(2);
  if (!certFile || !keyFile) throw new Error('usage: egress-origin.ts <cert.pem> <key.pem>');
  const http = tune(createHttpServer(handle));
  const https = tune(createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, handle));
  const [hp, sp] = await Promise.all([listen(http), listen(https)]);
  process.stdout.write(`listening http=${hp} https=${sp}\n`);
  process.on('SIGTERM', () => process.exit(0));
}
