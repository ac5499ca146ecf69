/**
 * Cross-verification with an independent RFC 9421 implementation
 * (`http-message-signatures`, dev dependency): its verifier accepts what
 * createSignature makes, and verifyParts accepts what its signer makes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { httpbis, type Request as HmsRequest } from 'http-message-signatures';
import type { CryptoKey } from 'jose';
import { CONTEXT_HEADER, contentDigest, MemoryReplayStore, serializeContext, verifyParts, VerifyError } from '../../src/verify/index.ts';
import { BASE_CONTEXT, freshNonce, generateTestKey, NOW_MS, ORIGIN, signedRequest } from './helpers.ts';

const COMPONENTS = ['@method', '@target-uri', '@authority', '@path', '@query', 'content-digest', CONTEXT_HEADER, 'content-type'];

async function verifierFor(key: CryptoKey, kid: string): Promise<Parameters<typeof httpbis.verifyMessage>[0]> {
  return {
    keyLookup: async (params) =>
      params.keyid === kid
        ? {
            id: kid,
            algs: ['ed25519'],
            verify: async (data: Buffer, sig: Buffer) => crypto.subtle.verify({ name: 'Ed25519' }, key, sig as Uint8Array<ArrayBuffer>, data as Uint8Array<ArrayBuffer>),
          }
        : null,
    requiredFields: ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER],
    tolerance: 5,
  };
}

describe('interop with http-message-signatures 1.0.6', () => {
  test('its verifier accepts a signature made by createSignature', async () => {
    const key = await generateTestKey();
    const pub = await crypto.subtle.importKey('jwk', key.jwk, { name: 'Ed25519' }, false, ['verify']);
    // Its verifier reads the real clock.
    const created = Math.floor(Date.now() / 1000);
    const req = await signedRequest(key, { components: COMPONENTS, url: 'https://tools.example.com/v1/call?tool=kb__search&x=1', params: { created, expires: created + 30 } });
    const asHms: HmsRequest = { method: req.method, url: req.url, headers: req.headers };
    assert.equal(await httpbis.verifyMessage(await verifierFor(pub, key.kid), asHms), true);
    // and it notices a change to the signed context
    const tampered = { ...asHms, headers: { ...req.headers, [CONTEXT_HEADER]: serializeContext({ ...BASE_CONTEXT, user: 'mallory' }) } };
    assert.equal(await httpbis.verifyMessage(await verifierFor(pub, key.kid), tampered), false);
  });

  test('verifyParts accepts a signature made by its signer', async () => {
    const key = await generateTestKey();
    const body = new TextEncoder().encode('{"jsonrpc":"2.0","id":1,"method":"tools/call"}');
    const unsigned: HmsRequest = {
      method: 'POST',
      url: 'https://tools.example.com/mcp?session=abc',
      headers: { 'Content-Type': 'application/json', 'Content-Digest': await contentDigest(body), 'Bastion-Context': serializeContext(BASE_CONTEXT) },
    };
    const nonce = freshNonce();
    const signed = await httpbis.signMessage(
      {
        key: { id: key.kid, alg: 'ed25519', sign: async (data: Buffer) => Buffer.from(await key.sign(data)) },
        name: 'bastion',
        fields: COMPONENTS,
        params: ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'],
        paramValues: { created: new Date(NOW_MS), expires: new Date(NOW_MS + 30_000), nonce, tag: 'bastion' },
      },
      unsigned,
    );
    const v = await verifyParts({ ...signed, url: String(signed.url), body }, { keys: [key.jwk], origin: ORIGIN, replayStore: new MemoryReplayStore(), now: () => NOW_MS + 1000 });
    assert.equal(v.nonce, nonce);
    assert.equal(v.label, 'bastion');
    assert.deepEqual(v.context, BASE_CONTEXT);
    assert.deepEqual(v.components, COMPONENTS);
    // its signature over a different body's digest is refused
    await assert.rejects(
      verifyParts({ ...signed, url: String(signed.url), body: new TextEncoder().encode('{}') }, { keys: [key.jwk], origin: ORIGIN, replayStore: new MemoryReplayStore(), now: () => NOW_MS + 1000 }),
      (e) => e instanceof VerifyError && e.code === 'digest_mismatch',
    );
  });
});
