/**
 * Issue 11, class 6: `bastion/verify` does not trust Host. The verifier needs
 * the tool server's expected origin and fails closed without it; the target URI
 * a signature covers is checked against that origin, so a request signed for
 * tool server A is refused by tool server B whatever `Host` (or a Fetch
 * runtime's URL built from it) says. Real sockets for the adapters, IPv4 and IPv6.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  bastionMiddleware,
  MemoryReplayStore,
  verifyMessageSignature,
  verifyNodeRequest,
  verifyParts,
  verifyRequest,
  VerifyError,
  type NodeVerifyOptions,
  type RequestParts,
  type VerifyErrorCode,
  type VerifyOptions,
} from '../../src/verify/index.ts';
import { generateTestKey, NOW_MS, postSigned, signedRequest, type TestKey } from './helpers.ts';

let key: TestKey;
before(async () => {
  key = await generateTestKey();
});

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(value));
}

/**
 * A Node request as a Fetch `Request`, the way Fetch adapters of Node servers
 * build it (e.g. @hono/node-server): the URL from the Host header.
 */
function toFetchRequest(req: IncomingMessage): Request {
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
  return new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers, body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } as RequestInit);
}

/**
 * A tool server on `host`:0 whose verifier is configured with its own origin:
 * `/node/*` through verifyNodeRequest, `/mw/*` through bastionMiddleware,
 * `/fetch/*` through verifyRequest with a Fetch `Request`.
 */
async function toolServer(host: string): Promise<{ origin: string; port: number }> {
  let node: NodeVerifyOptions | undefined;
  let mw: ((req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void) | undefined;
  const server = createServer((req, res) => {
    const path = req.url ?? '';
    if (path.startsWith('/node/')) {
      void verifyNodeRequest(req, res, node!).then((v) => v && json(res, 200, { ok: true }));
    } else if (path.startsWith('/mw/')) {
      mw!(req, res, () => json(res, 200, { ok: true }));
    } else {
      verifyRequest(toFetchRequest(req), node!).then(
        () => json(res, 200, { ok: true }),
        (err: unknown) => json(res, err instanceof VerifyError ? err.status : 500, { error: err instanceof VerifyError ? err.code : 'internal' }),
      );
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  node = { keys: [key.jwk], origin, replayStore: new MemoryReplayStore() };
  mw = bastionMiddleware({ keys: [key.jwk], origin, replayStore: new MemoryReplayStore() });
  return { origin, port };
}

/** A request signed with real time for `url` (Bastion's four components). */
async function signedFor(url: string): Promise<{ headers: Record<string, string>; body: string }> {
  const parts = await signedRequest(key, { url, params: { created: Math.floor(Date.now() / 1000), expires: Math.floor(Date.now() / 1000) + 30 } });
  return { headers: parts.headers, body: new TextDecoder().decode(parts.body) };
}

async function refused(p: Promise<unknown>, code: VerifyErrorCode): Promise<VerifyError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VerifyError, `expected VerifyError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function partsOpts(extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return { keys: [key.jwk], origin: 'https://tools.example.com', now: () => NOW_MS, replayStore: new MemoryReplayStore({ now: () => NOW_MS }), ...extra };
}

describe('forged Host: a request signed for tool server A, replayed to tool server B', () => {
  test('is refused by B through every adapter (bad_signature), and still accepted once by A', async () => {
    const a = await toolServer('127.0.0.1');
    const b = await toolServer('127.0.0.1');
    const hostA = new URL(a.origin).host;
    for (const adapter of ['node', 'mw', 'fetch']) {
      const path = `/${adapter}/tools/kb__search`;
      const signed = await signedFor(`${a.origin}${path}`);
      // Before issue 11 the Fetch adapter trusted the URL a runtime built from Host, and accepted this.
      assert.deepEqual(await postSigned(b.origin, path, signed, hostA), [401, { error: 'bad_signature' }], adapter);
      assert.deepEqual(await postSigned(a.origin, path, signed), [200, { ok: true }], adapter);
      assert.deepEqual(await postSigned(a.origin, path, signed), [401, { error: 'replayed' }], adapter);
    }
  });

  test('over IPv6: a server at http://[::1]:port accepts its own requests and refuses one signed for an IPv4 server with that Host', async () => {
    const v6 = await toolServer('::1');
    const v4 = await toolServer('127.0.0.1');
    assert.match(v6.origin, /^http:\/\/\[::1\]:\d+$/);
    for (const adapter of ['node', 'fetch']) {
      const path = `/${adapter}/call`;
      assert.deepEqual(await postSigned(v6.origin, path, await signedFor(`${v6.origin}${path}`)), [200, { ok: true }], adapter);
      const forV4 = await signedFor(`${v4.origin}${path}`);
      assert.deepEqual(await postSigned(v6.origin, path, forV4, new URL(v4.origin).host), [401, { error: 'bad_signature' }], adapter);
    }
    // An IPv6 origin spelled out in full is the same origin.
    const url = `${v6.origin}/node/x`;
    const parts = await signedRequest(key, { url });
    await verifyParts(parts, partsOpts({ origin: `http://[0:0:0:0:0:0:0:1]:${v6.port}` }));
    await refused(verifyParts(parts, partsOpts({ origin: `http://[::2]:${v6.port}` })), 'wrong_origin');
  });
});

describe('no origin, no replay store: fail closed', () => {
  test('without origin every entry point refuses origin_required (500), even a request whose Host matches its signature', async () => {
    const parts = await signedRequest(key);
    const noOrigin = { keys: [key.jwk], replayStore: new MemoryReplayStore(), now: () => NOW_MS } as unknown as VerifyOptions;
    const e = await refused(verifyParts(parts, noOrigin), 'origin_required');
    assert.equal(e.status, 500);
    await refused(verifyMessageSignature(parts, noOrigin), 'origin_required');
    await refused(verifyRequest(new Request(parts.url, { method: parts.method, headers: parts.headers, body: parts.body as Uint8Array<ArrayBuffer> }), noOrigin), 'origin_required');
    assert.throws(() => bastionMiddleware(noOrigin as NodeVerifyOptions), (err) => err instanceof VerifyError && err.code === 'origin_required');

    // Over a socket: signed for exactly the URL the client sends to, Host included.
    const server = createServer((req, res) => void verifyNodeRequest(req, res, noOrigin as NodeVerifyOptions).then((v) => v && json(res, 200, { ok: true })));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    assert.deepEqual(await postSigned(origin, '/x', await signedFor(`${origin}/x`)), [500, { error: 'origin_required' }]);
  });

  test('an origin that is not scheme://host[:port] is origin_required', async () => {
    const parts = await signedRequest(key);
    for (const origin of ['tools.example.com', 'https://tools.example.com/mcp', 'https://tools.example.com?x=1', 'https://u:p@tools.example.com', 'ftp://tools.example.com', 'https://tools.example.com#f', 42]) {
      await refused(verifyParts(parts, partsOpts({ origin: origin as string })), 'origin_required');
    }
    // A trailing slash and a URL object are fine.
    await verifyParts(parts, partsOpts({ origin: 'https://tools.example.com/' }));
    await verifyParts(await signedRequest(key), partsOpts({ origin: new URL('https://tools.example.com') }));
  });

  test('without a replay store verifyParts, verifyRequest and verifyNodeRequest refuse replay_store_required (500); bastionMiddleware throws', async () => {
    const parts = await signedRequest(key);
    const noStore: VerifyOptions = { keys: [key.jwk], origin: 'https://tools.example.com', now: () => NOW_MS };
    const e = await refused(verifyParts(parts, noStore), 'replay_store_required');
    assert.equal(e.status, 500);
    await refused(verifyRequest(new Request(parts.url, { method: parts.method, headers: parts.headers, body: parts.body as Uint8Array<ArrayBuffer> }), noStore), 'replay_store_required');
    assert.throws(() => bastionMiddleware(noStore), (err) => err instanceof VerifyError && err.code === 'replay_store_required');
    // verifyMessageSignature checks no nonce and needs no store.
    await verifyMessageSignature(parts, noStore);
  });
});

describe('origins compare after URL normalization', () => {
  test('default ports and host case: https://TOOLS.example.com:443 is https://tools.example.com; :80 on https is not', async () => {
    await verifyParts(await signedRequest(key, { url: 'https://tools.example.com/mcp' }), partsOpts({ origin: 'HTTPS://TOOLS.Example.COM:443' }));
    await verifyParts(await signedRequest(key, { url: 'https://Tools.Example.com:443/mcp' }), partsOpts({ origin: 'https://tools.example.com' }));
    await verifyParts(await signedRequest(key, { url: 'http://tools.example.com/mcp' }), partsOpts({ origin: 'http://tools.example.com:80' }));
    await refused(verifyParts(await signedRequest(key, { url: 'https://tools.example.com:80/mcp' }), partsOpts()), 'wrong_origin');
    await refused(verifyParts(await signedRequest(key, { url: 'http://tools.example.com:443/mcp' }), partsOpts({ origin: 'https://tools.example.com' })), 'wrong_origin');
  });

  test('property: verifyParts accepts exactly when the request URL and the configured origin are the same origin', async () => {
    const scheme = fc.constantFrom('http', 'https', 'HTTPS');
    const host = fc.constantFrom('tools.example.com', 'TOOLS.example.com', 'other.example.com', '127.0.0.1', '[::1]', '[0:0::1]', 'xn--bcher-kva.example', 'bücher.example');
    const port = fc.constantFrom('', ':80', ':443', ':8443');
    await fc.assert(
      fc.asyncProperty(scheme, host, port, scheme, host, port, async (s1, h1, p1, s2, h2, p2) => {
        const url = `${s1}://${h1}${p1}/mcp?x=1`;
        const origin = `${s2}://${h2}${p2}`;
        const parts: RequestParts = await signedRequest(key, { url: new URL(url).href });
        const same = new URL(url).origin === new URL(origin).origin;
        if (same) await verifyParts(parts, partsOpts({ origin }));
        else await refused(verifyParts(parts, partsOpts({ origin })), 'wrong_origin');
      }),
      { numRuns: 150 },
    );
  });

  test('a signature that binds no origin (neither @target-uri nor @authority) is missing_component', async () => {
    const parts = await signedRequest(key, { components: ['@method', '@path', 'content-digest', 'bastion-context'] });
    await refused(verifyParts(parts, partsOpts({ requiredComponents: ['@method', 'content-digest'] })), 'missing_component');
    const withAuthority = await signedRequest(key, { components: ['@method', '@authority', '@path', 'content-digest', 'bastion-context'] });
    await verifyParts(withAuthority, partsOpts({ requiredComponents: ['@method', 'content-digest'] }));
  });
});
