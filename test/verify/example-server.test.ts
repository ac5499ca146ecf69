/**
 * examples/verify-server runs as documented: started as its own process with
 * BASTION_JWKS_URL pointing at a JWKS, it answers a signed request with the
 * verified context and a tampered one with the error code.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { CONTEXT_HEADER, contentDigest, createSignature, serializeContext } from '../../src/verify/index.ts';
import { BASE_CONTEXT, freshNonce, generateTestKey } from './helpers.ts';

const SERVER = join(import.meta.dirname, '../../examples/verify-server/server.ts');

let child: ChildProcess | undefined;
let jwks: Server | undefined;
after(async () => {
  child?.kill();
  if (jwks) await new Promise<void>((resolve) => jwks!.close(() => resolve()));
});

describe('examples/verify-server', () => {
  test('verifies against BASTION_JWKS_URL and echoes the context', async () => {
    const key = await generateTestKey();
    jwks = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [key.jwk] }));
    });
    await new Promise<void>((resolve) => jwks!.listen(0, '127.0.0.1', resolve));
    const jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;

    child = spawn(process.execPath, [SERVER], { env: { ...process.env, PORT: '0', BASTION_JWKS_URL: jwksUrl }, stdio: ['ignore', 'pipe', 'ignore'] });
    const origin = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('example server did not start')), 20_000);
      createInterface({ input: child!.stdout! }).on('line', (line) => {
        const m = /listening on (http:\/\/[\d.:]+)/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });

    const url = `${origin}/tools/kb__search`;
    const body = '{"query":"refunds"}';
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
    let res = await fetch(url, { method: 'POST', headers: { ...headers, ...sig }, body });
    assert.equal(res.status, 200);
    const json = (await res.json()) as Record<string, unknown>;
    assert.equal(json.agent, 'support');
    assert.equal(json.user, 'alice');
    assert.equal(json.conversation, 'c-17');
    res = await fetch(url, { method: 'POST', headers: { ...headers, ...sig }, body: '{"query":"everything"}' });
    assert.deepEqual([res.status, await res.json()], [401, { error: 'digest_mismatch' }]);
  });
});
