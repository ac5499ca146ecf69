/**
 * The adapters over real sockets: a Node http server with verifyNodeRequest, a
 * Connect-style server with bastionMiddleware, Fetch `Request` objects, body
 * limits, a TLS-terminating proxy in front (origin, not Host), and keys from a
 * JWKS served over HTTP (with rotation).
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { JWK } from 'jose';
import {
  bastionMiddleware,
  CONTEXT_HEADER,
  contentDigest,
  createSignature,
  MemoryReplayStore,
  serializeContext,
  verifyNodeRequest,
  verifyParts,
  verifyRequest,
  VerifyError,
  type BastionIncomingMessage,
  type NodeVerifyOptions,
  type SignedContext,
} from '../../src/verify/index.ts';
import { BASE_CONTEXT, freshNonce, generateTestKey, ORIGIN, type TestKey } from './helpers.ts';

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(body);
}

/** Signs a request to `url` with real time, the way Bastion does; returns fetch init. */
async function signedInit(key: TestKey, url: string, o: { body?: string; method?: string; context?: SignedContext } = {}): Promise<{ method: string; headers: Record<string, string>; body?: string }> {
  const method = o.method ?? 'POST';
  const body = o.body ?? (method === 'GET' ? '' : '{"jsonrpc":"2.0","id":1,"method":"tools/call"}');
  const bytes = new TextEncoder().encode(body);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [CONTEXT_HEADER]: serializeContext(o.context ?? BASE_CONTEXT),
    'content-digest': await contentDigest(bytes),
  };
  const created = Math.floor(Date.now() / 1000);
  const sig = await createSignature(
    { method, url, headers },
    {
      label: 'bastion',
      components: ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER],
      params: { created, expires: created + 30, nonce: freshNonce(), keyid: key.kid, alg: 'ed25519', tag: 'bastion' },
      sign: key.sign,
    },
  );
  return { method, headers: { ...headers, ...sig }, ...(method === 'GET' ? {} : { body }) };
}

let key: TestKey;
before(async () => {
  key = await generateTestKey();
});

describe('verifyNodeRequest on a Node http server', () => {
  let origin: string;
  let opts: NodeVerifyOptions;
  const seen: unknown[] = [];
  before(async () => {
    origin = await listen((req, res) => {
      void (async () => {
        const v = await verifyNodeRequest(req, res, opts);
        if (v !== undefined) json(res, 200, { context: v.context, keyid: v.keyid });
      })();
    });
    opts = { keys: [key.jwk], origin, replayStore: new MemoryReplayStore(), maxBodyBytes: 4096, onError: (e) => seen.push(e) };
  });

  test('a valid signed request: 200 with the context', async () => {
    const url = `${origin}/tools/kb?x=1`;
    const res = await fetch(url, await signedInit(key, url));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { context: BASE_CONTEXT, keyid: key.kid });
  });

  test('a GET without a body verifies', async () => {
    const url = `${origin}/health`;
    const res = await fetch(url, await signedInit(key, url, { method: 'GET' }));
    assert.equal(res.status, 200);
  });

  test('tampered body, path or context: 401 with the code; replay: 401 replayed', async () => {
    const url = `${origin}/tools/kb`;
    const init = await signedInit(key, url);
    let res = await fetch(url, { ...init, body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' });
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'digest_mismatch' });
    res = await fetch(`${origin}/tools/admin`, init);
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), { error: 'bad_signature' });
    res = await fetch(url, { ...init, headers: { ...init.headers, [CONTEXT_HEADER]: serializeContext({ ...BASE_CONTEXT, user: 'root' }) } });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'bad_signature' }]);
    res = await fetch(url, init);
    assert.equal(res.status, 200);
    res = await fetch(url, init);
    assert.deepEqual([res.status, await res.json()], [401, { error: 'replayed' }]);
  });

  test('no signature: 401 missing_signature; garbage: 400 malformed', async () => {
    let res = await fetch(`${origin}/x`, { method: 'POST', body: '{}' });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'missing_signature' }]);
    res = await fetch(`${origin}/x`, { method: 'POST', body: '{}', headers: { 'signature-input': 'bastion=(', signature: 'bastion=:AA==:' } });
    assert.deepEqual([res.status, await res.json()], [400, { error: 'malformed' }]);
  });

  test('a body over maxBodyBytes: 413, with Content-Length and when chunked', async () => {
    const url = `${origin}/big`;
    const big = 'x'.repeat(10_000);
    const init = await signedInit(key, url, { body: big });
    let res = await fetch(url, init);
    assert.deepEqual([res.status, await res.json()], [413, { error: 'malformed' }]);
    const chunks = [new TextEncoder().encode(big.slice(0, 3000)), new TextEncoder().encode(big.slice(3000))];
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        const next = chunks.shift();
        if (next === undefined) c.close();
        else c.enqueue(next);
      },
    });
    res = await fetch(url, { method: 'POST', headers: init.headers, body: stream, duplex: 'half' } as RequestInit);
    assert.deepEqual([res.status, await res.json()], [413, { error: 'malformed' }]);
    assert.ok(seen.some((e) => e instanceof VerifyError && e.status === 413));
  });
});

describe('behind a TLS-terminating proxy: the origin option, never Host or X-Forwarded-*', () => {
  test('a request Bastion signed for the public origin verifies on the loopback socket', async () => {
    const pinned: NodeVerifyOptions = { keys: [key.jwk], origin: ORIGIN, replayStore: new MemoryReplayStore() };
    const local = await listen((req, res) => {
      void verifyNodeRequest(req, res, pinned).then((v) => v && json(res, 200, { ok: true }));
    });
    let init = await signedInit(key, `${ORIGIN}/call`);
    let res = await fetch(`${local}/call`, init);
    assert.equal(res.status, 200);
    // Forwarding headers cannot move the origin: signed for the loopback URL the proxy sees, it fails.
    init = await signedInit(key, `${local}/call`);
    res = await fetch(`${local}/call`, { ...init, headers: { ...init.headers, 'x-forwarded-proto': 'http', 'x-forwarded-host': new URL(local).host } });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'bad_signature' }]);
  });
});

type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/** The smallest Connect: runs middlewares in order; an error passed to next answers 500. */
function connectLike(...stack: Middleware[]): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    let i = 0;
    const next = (err?: unknown): void => {
      if (err !== undefined) {
        json(res, 500, { error: 'internal' });
        return;
      }
      const mw = stack[i++];
      if (mw === undefined) json(res, 404, { error: 'not_found' });
      else mw(req, res, next);
    };
    next();
  };
}

const echo: Middleware = (req, res) => {
  const r = req as BastionIncomingMessage;
  json(res, 200, { context: r.bastion?.context, rawBytes: r.rawBody?.length });
};

/** A body parser that keeps the raw bytes (like express.json's `verify` hook). */
const rawKeepingParser: Middleware = (req, _res, next) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    (req as BastionIncomingMessage).rawBody = Buffer.concat(chunks);
    next();
  });
};

/** A body parser that drops the raw bytes. */
const lossyParser: Middleware = (req, _res, next) => {
  req.resume();
  req.on('end', () => next());
};

describe('bastionMiddleware in a Connect-style server', () => {
  let origin: string;
  before(async () => {
    let mw: Middleware = (_req, res) => json(res, 503, { error: 'starting' });
    origin = await listen((req, res) => {
      if (req.url?.startsWith('/parsed')) connectLike(rawKeepingParser, mw, echo)(req, res);
      else if (req.url?.startsWith('/lossy')) connectLike(lossyParser, mw, echo)(req, res);
      else connectLike(mw, echo)(req, res);
    });
    mw = bastionMiddleware({ keys: [key.jwk], origin, replayStore: new MemoryReplayStore() });
  });

  test('valid: next() runs with req.bastion and req.rawBody', async () => {
    const url = `${origin}/tool`;
    const init = await signedInit(key, url);
    const res = await fetch(url, init);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { context: BASE_CONTEXT, rawBytes: new TextEncoder().encode(init.body).length });
  });

  test('tampered: 401 JSON and next() is not called', async () => {
    const url = `${origin}/tool`;
    const init = await signedInit(key, url);
    const res = await fetch(url, { ...init, body: `${init.body!} ` });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'digest_mismatch' }]);
  });

  test('after a body parser that kept req.rawBody: verifies', async () => {
    const url = `${origin}/parsed`;
    const res = await fetch(url, await signedInit(key, url));
    assert.equal(res.status, 200);
  });

  test('after a body parser that dropped the bytes: next(err), never acceptance', async () => {
    const url = `${origin}/lossy`;
    const res = await fetch(url, await signedInit(key, url));
    assert.deepEqual([res.status, await res.json()], [500, { error: 'internal' }]);
  });

  test('bad options fail when the middleware is created', () => {
    const ok = { origin: ORIGIN, replayStore: new MemoryReplayStore() };
    assert.throws(() => bastionMiddleware({ ...ok }), TypeError);
    assert.throws(() => bastionMiddleware({ ...ok, keys: [{ kty: 'RSA', kid: 'r', n: 'x', e: 'AQAB' }] }), TypeError);
    assert.throws(() => bastionMiddleware({ ...ok, keys: [key.jwk], maxAgeS: -1 }), TypeError);
    assert.throws(() => bastionMiddleware({ ...ok, keys: [key.jwk], requiredComponents: ['@status'] }), TypeError);
    assert.throws(() => bastionMiddleware({ ...ok, keys: [key.jwk], replayStorePath: '/tmp/x.db' }), TypeError);
  });
});

describe('verifyRequest with a Fetch API Request', () => {
  test('valid verifies and leaves the body readable; tampered is refused', async () => {
    const url = 'https://tools.example.com/mcp?session=9';
    const init = await signedInit(key, url);
    const request = new Request(url, init);
    const o = { keys: [key.jwk], origin: ORIGIN, replayStore: new MemoryReplayStore() };
    const v = await verifyRequest(request, o);
    assert.deepEqual(v.context, BASE_CONTEXT);
    assert.equal(await request.text(), init.body);
    const other = new Request('https://tools.example.com/mcp?session=10', init);
    await assert.rejects(verifyRequest(other, o), (e) => e instanceof VerifyError && e.code === 'bad_signature');
    const big = new Request(url, { ...init, body: 'y'.repeat(2000) });
    await assert.rejects(verifyRequest(big, { ...o, maxBodyBytes: 1000 }), (e) => e instanceof VerifyError && e.status === 413);
  });
});

describe('keys from a JWKS over HTTP', () => {
  let jwksUrl: string;
  let published: JWK[] = [];
  let fetches = 0;
  let failing = false;
  before(async () => {
    const origin = await listen((_req, res) => {
      fetches++;
      if (failing) json(res, 500, { error: 'down' });
      else json(res, 200, { keys: published });
    });
    jwksUrl = `${origin}/.well-known/jwks.json`;
  });

  const site = (): { origin: string; replayStore: MemoryReplayStore } => ({ origin: ORIGIN, replayStore: new MemoryReplayStore() });

  async function signedParts(k: TestKey): Promise<Parameters<typeof verifyParts>[0]> {
    const url = `${ORIGIN}/call`;
    const init = await signedInit(k, url);
    return { method: init.method, url, headers: init.headers, body: new TextEncoder().encode(init.body) };
  }

  test('a key in the JWKS verifies; the JWKS is cached; an unknown kid refetches once, then unknown_key', async () => {
    const k1 = await generateTestKey();
    const stranger = await generateTestKey();
    published = [k1.jwk];
    const o = { jwksUrl, jwksCooldownMs: 0, ...site() };
    fetches = 0;
    await verifyParts(await signedParts(k1), o);
    await verifyParts(await signedParts(k1), { jwksUrl, jwksCooldownMs: 0, ...site() }); // a fresh options object shares the cache
    assert.equal(fetches, 1);
    await assert.rejects(verifyParts(await signedParts(stranger), o), (e) => e instanceof VerifyError && e.code === 'unknown_key');
    assert.equal(fetches, 2);
  });

  test('rotation: a key removed from the JWKS stops verifying once the cache expires', async () => {
    const old = await generateTestKey();
    const next = await generateTestKey();
    published = [old.jwk, next.jwk];
    const o = { jwksUrl: new URL(jwksUrl), jwksCacheMaxAgeMs: 100, jwksCooldownMs: 0, ...site() };
    const early = await signedParts(old);
    await verifyParts(await signedParts(old), o);
    published = [next.jwk];
    await sleep(150);
    await assert.rejects(verifyParts(early, o), (e) => e instanceof VerifyError && e.code === 'unknown_key');
    await verifyParts(await signedParts(next), o);
  });

  test('a JWKS that cannot be fetched: jwks_unavailable (503)', async () => {
    const k = await generateTestKey();
    failing = true;
    try {
      await assert.rejects(verifyParts(await signedParts(k), { jwksUrl: `${jwksUrl}?down`, jwksCooldownMs: 0, ...site() }), (e) => {
        assert.ok(e instanceof VerifyError);
        assert.equal(e.code, 'jwks_unavailable');
        assert.equal(e.status, 503);
        return true;
      });
    } finally {
      failing = false;
    }
  });
});
