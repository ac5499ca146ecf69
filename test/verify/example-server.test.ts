/**
 * examples/verify-server runs as documented: started as its own process with
 * BASTION_JWKS_URL pointing at a JWKS, it answers a signed request with the
 * verified context and a tampered one with the error code. Two copies of it
 * (tool servers A and B) show that a request signed for A is refused by B even
 * with a forged `Host: A`, and a restart on the same REPLAY_DB shows that a
 * nonce accepted before the restart is refused after it.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { CONTEXT_HEADER, contentDigest, createSignature, serializeContext } from '../../src/verify/index.ts';
import { tempDir } from '../helpers/gateway.ts';
import { BASE_CONTEXT, freshNonce, generateTestKey, postSigned, type TestKey } from './helpers.ts';
import { freePort } from '../helpers/mcp.ts';

const SERVER = join(import.meta.dirname, '../../examples/verify-server/server.ts');

const children: ChildProcess[] = [];
let jwks: Server | undefined;
let jwksUrl: string;
let key: TestKey;

before(async () => {
  key = await generateTestKey();
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [key.jwk] }));
  });
  await new Promise<void>((resolve) => jwks!.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});

after(async () => {
  for (const c of children) c.kill();
  if (jwks) await new Promise<void>((resolve) => jwks!.close(() => resolve()));
});

/** Starts the example as a process; resolves with its `http://127.0.0.1:<port>` once it listens. */
async function startExample(env: Record<string, string>): Promise<{ child: ChildProcess; origin: string }> {
  const child = spawn(process.execPath, [SERVER], { env: { ...process.env, BASTION_JWKS_URL: jwksUrl, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(child);
  const origin = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('example server did not start')), 20_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = /listening on (http:\/\/[\d.:]+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
  });
  return { child, origin };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill();
  await once(child, 'exit');
}

/** A request to `url` signed the way Bastion signs it, with real time. */
async function signedFor(url: string, body = '{"query":"refunds"}'): Promise<{ headers: Record<string, string>; body: string }> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    [CONTEXT_HEADER]: serializeContext(BASE_CONTEXT),
    'content-digest': await contentDigest(new TextEncoder().encode(body)),
  };
  const created = Math.floor(Date.now() / 1000);
  const sig = await createSignature(
    { method: 'POST', url, headers },
    {
      label: 'bastion',
      components: ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER],
      params: { created, expires: created + 30, nonce: freshNonce(), keyid: key.kid, alg: 'ed25519', tag: 'bastion' },
      sign: key.sign,
    },
  );
  return { headers: { ...headers, ...sig }, body };
}

describe('examples/verify-server', () => {
  test('verifies against BASTION_JWKS_URL and echoes the context', async () => {
    const { origin } = await startExample({ REPLAY_DB: join(tempDir(), 'nonces.db') });
    const url = `${origin}/tools/kb__search`;
    const signed = await signedFor(url);
    let res = await fetch(url, { method: 'POST', headers: signed.headers, body: signed.body });
    assert.equal(res.status, 200);
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(json.agent, 'support');
    assert.equal(json.user, 'alice');
    assert.equal(json.conversation, 'c-17');
    res = await fetch(url, { method: 'POST', headers: signed.headers, body: '{"query":"everything"}' });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'digest_mismatch' }]);
  });

  test('forged Host: a request signed for tool server A is refused by tool server B (bad_signature), and A still accepts it once', async () => {
    const a = await startExample({ REPLAY_DB: join(tempDir(), 'a.db') });
    const b = await startExample({ REPLAY_DB: join(tempDir(), 'b.db') });
    const signed = await signedFor(`${a.origin}/tools/kb__search`);
    const hostA = new URL(a.origin).host;
    // Before issue 11, B rebuilt the target from Host and accepted A's request.
    assert.deepEqual(await postSigned(b.origin, '/tools/kb__search', signed, hostA), [401, { error: 'bad_signature' }]);
    const [status] = await postSigned(a.origin, '/tools/kb__search', signed);
    assert.equal(status, 200, 'B did not burn the nonce of A\'s request');
    assert.deepEqual(await postSigned(a.origin, '/tools/kb__search', signed), [401, { error: 'replayed' }]);
  });

  test('restart: a request accepted before the server restarts is refused after it (replayed), from REPLAY_DB', async () => {
    const db = join(tempDir(), 'nonces.db');
    const port = String(await freePort());
    const first = await startExample({ REPLAY_DB: db, PORT: port });
    const signed = await signedFor(`${first.origin}/tools/kb__search`);
    assert.equal((await postSigned(first.origin, '/tools/kb__search', signed))[0], 200);
    await stop(first.child);
    const second = await startExample({ REPLAY_DB: db, PORT: port });
    assert.equal(second.origin, first.origin);
    // Before issue 11 the example kept nonces in memory, and the restarted server accepted this again.
    assert.deepEqual(await postSigned(second.origin, '/tools/kb__search', signed), [401, { error: 'replayed' }]);
  });
});
