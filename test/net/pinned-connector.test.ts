/**
 * The pinned connector over real sockets: a request for a name that does not
 * resolve anywhere reaches the pinned address (so no lookup happened), and a
 * request for any other host is refused before a socket is opened.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { pinnedDispatcher, UnpinnedHostError } from '../../src/net/pinned-connector.ts';

let server: Server;
let port: number;
let connections = 0;
const seenHosts: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    seenHosts.push(String(req.headers.host));
    res.end('pinned');
  });
  server.on('connection', () => void connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});
after(() => new Promise<void>((r) => server.close(() => r())));

test('a name that resolves nowhere reaches the pinned address: no second lookup', async () => {
  // `.invalid` is reserved (RFC 6761): any DNS lookup of it fails.
  const dispatcher = pinnedDispatcher('api.example.invalid', '127.0.0.1');
  const res = await request(`http://api.example.invalid:${port}/x`, { dispatcher });
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'pinned');
  assert.equal(seenHosts.at(-1), `api.example.invalid:${port}`, 'the Host header keeps the name');
  await dispatcher.close();
});

test('any other host through the same dispatcher is refused before connecting', async () => {
  const dispatcher = pinnedDispatcher('api.example.invalid', '127.0.0.1');
  const before = connections;
  await assert.rejects(request(`http://other.example.invalid:${port}/`, { dispatcher }), (err: unknown) => {
    assert.ok(err instanceof UnpinnedHostError);
    assert.equal(err.code, 'ERR_EGRESS_UNPINNED');
    return true;
  });
  await assert.rejects(request(`http://127.0.0.1:${port}/`, { dispatcher }), UnpinnedHostError);
  assert.equal(connections, before, 'no socket was opened');
  await dispatcher.close();
});

test('the address must be an IP literal', () => {
  assert.throws(() => pinnedDispatcher('a.example', 'localhost'), TypeError);
  assert.throws(() => pinnedDispatcher('a.example', '127.1'), TypeError);
});
