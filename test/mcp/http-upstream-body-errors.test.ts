/**
 * The MCP HTTP upstream transport (src/mcp/http-upstream-transport.ts) drops
 * bodies it does not read (an error status, a 202, a wrong content type) with
 * an error listener: an upstream that resets the connection mid-body must not
 * raise an unhandled 'error' event, which ends the process and takes every
 * agent down with it. Real sockets: a raw TCP upstream that sends half a body
 * and resets.
 *
 * These pass on the code before the listeners were added too: undici 7.30
 * attaches its own no-op listener when a connection fails mid-body
 * (lib/api/api-request.js onError). They guard the transport against an undici
 * that stops doing so and against a discard that destroys the body unread.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { UpstreamHttpTransport, UpstreamHttpError } from '../../src/mcp/http-upstream-transport.ts';

let server: Server;
let url: URL;
/** The status line the upstream answers with next. */
let answer = 'HTTP/1.1 500 Internal Server Error';
const sockets = new Set<Socket>();

before(async () => {
  server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.once('data', () => {
      // Promise a long body, send a little of it, then reset the connection.
      socket.write(`${answer}\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n${'x'.repeat(1000)}`);
      setTimeout(() => socket.resetAndDestroy(), 20);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Collects uncaught exceptions while `fn` runs and a moment after (the reset arrives after the status). */
async function uncaughtDuring(fn: () => Promise<unknown>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onError = (err: unknown): void => void seen.push(err);
  process.on('uncaughtException', onError);
  try {
    await fn().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    process.off('uncaughtException', onError);
  }
  return seen;
}

test('an error status whose body is reset mid-way: the send fails with the status, the process does not crash', async () => {
  answer = 'HTTP/1.1 500 Internal Server Error';
  const t = new UpstreamHttpTransport(url);
  let failure: unknown;
  const seen = await uncaughtDuring(() =>
    t.send({ jsonrpc: '2.0', id: 1, method: 'tools/list' }).catch((err: unknown) => {
      failure = err;
    }),
  );
  assert.deepEqual(seen.map(String), []);
  assert.ok(failure instanceof UpstreamHttpError && failure.status === 500, String(failure));
  await t.close();
});

test('a 2xx with a content type the transport does not read, reset mid-body: the process does not crash', async () => {
  answer = 'HTTP/1.1 200 OK';
  const t = new UpstreamHttpTransport(url);
  let failure: unknown;
  const seen = await uncaughtDuring(() =>
    t.send({ jsonrpc: '2.0', id: 2, method: 'tools/list' }).catch((err: unknown) => {
      failure = err;
    }),
  );
  assert.deepEqual(seen.map(String), []);
  assert.match(String(failure), /content-type text\/plain/);
  await t.close();
});

test('a notification answered 2xx and reset mid-body: the process does not crash', async () => {
  answer = 'HTTP/1.1 200 OK';
  const t = new UpstreamHttpTransport(url);
  const seen = await uncaughtDuring(() => t.send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: 1 } }));
  assert.deepEqual(seen.map(String), []);
  await t.close();
});
