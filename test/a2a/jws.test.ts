/**
 * The signed envelope on its own (no I/O): a detached compact JWS over the
 * RFC 8785 canonical JSON; member order does not matter, any change of any
 * signed field does; the header is exact; the message shape is the A2A one.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import canonicalize from 'canonicalize';
import fc from 'fast-check';
import { CompactSign, createLocalJWKSet, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { signEnvelope, verifyEnvelope } from '../../src/a2a/jws.ts';
import { A2aMessage, InboundRequest, SendRequest, type A2aEnvelope } from '../../src/a2a/message.ts';

async function keyPair(kid: string): Promise<{ kid: string; cryptoKey: CryptoKey; jwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  return { kid, cryptoKey: privateKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

const envelope = (over: Partial<A2aEnvelope> = {}): A2aEnvelope => ({
  v: 1,
  sender: 'https://a.test',
  recipient: 'https://b.test',
  agent: 'alice',
  to: 'bob',
  user: 'u-1',
  nonce: 'bm9uY2Utbm9uY2Utbm9uY2U',
  iat: 1_750_000_000,
  message: { kind: 'message', role: 'user', messageId: 'm1', parts: [{ kind: 'text', text: 'héllo 👋' }, { kind: 'data', data: { b: 2, a: [1, 2.5, null] } }] },
  ...over,
});

describe('signEnvelope / verifyEnvelope', () => {
  test('round trip; the JWS is detached and its header exact', async () => {
    const k = await keyPair('k1');
    const keys = createLocalJWKSet({ keys: [k.jwk] });
    const jws = await signEnvelope(envelope(), k);
    assert.match(jws, /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/);
    assert.deepEqual(JSON.parse(Buffer.from(jws.split('.')[0] as string, 'base64url').toString()), { alg: 'EdDSA', kid: 'k1', typ: 'bastion-a2a+jws' });
    assert.deepEqual(await verifyEnvelope(jws, envelope(), keys), { ok: true, kid: 'k1' });
  });

  test('member order is irrelevant (RFC 8785), and an independent signer interoperates', async () => {
    const k = await keyPair('k1');
    const keys = createLocalJWKSet({ keys: [k.jwk] });
    const e = envelope();
    const reordered = Object.fromEntries(Object.entries(e).reverse()) as unknown as A2aEnvelope;
    assert.equal((await verifyEnvelope(await signEnvelope(e, k), reordered, keys)).ok, true);
    const compact = await new CompactSign(new TextEncoder().encode(canonicalize(e) as string)).setProtectedHeader({ alg: 'EdDSA', kid: 'k1', typ: 'bastion-a2a+jws' }).sign(k.cryptoKey);
    const [h, , s] = compact.split('.');
    assert.equal((await verifyEnvelope(`${h}..${s}`, reordered, keys)).ok, true);
  });

  test('any change to any signed field fails (property)', async () => {
    const k = await keyPair('k1');
    const keys = createLocalJWKSet({ keys: [k.jwk] });
    const jws = await signEnvelope(envelope(), k);
    const fields = ['sender', 'recipient', 'agent', 'to', 'user', 'nonce', 'iat', 'message'] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...fields), fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.dictionary(fc.string(), fc.string())), async (field, value) => {
        const changed = { ...envelope(), [field]: value } as A2aEnvelope;
        fc.pre(canonicalize(changed) !== canonicalize(envelope()));
        const r = await verifyEnvelope(jws, changed, keys);
        assert.equal(r.ok, false);
      }),
      { numRuns: 200 },
    );
  });

  test('unknown kid, another key, wrong header: signature/header failures, never a throw', async () => {
    const k = await keyPair('k1');
    const other = await keyPair('k1');
    const keys = createLocalJWKSet({ keys: [k.jwk] });
    assert.deepEqual(await verifyEnvelope(await signEnvelope(envelope(), { ...k, kid: 'k2' }), envelope(), keys), { ok: false, why: 'signature', kid: 'k2' });
    assert.deepEqual(await verifyEnvelope(await signEnvelope(envelope(), other), envelope(), keys), { ok: false, why: 'signature', kid: 'k1' });
    for (const header of [{ alg: 'EdDSA', kid: 'k1' }, { alg: 'HS256', kid: 'k1', typ: 'bastion-a2a+jws' }, { alg: 'EdDSA', kid: 'k1', typ: 'bastion-a2a+jws', crit: ['b64'], b64: false }]) {
      const h = Buffer.from(JSON.stringify(header)).toString('base64url');
      const r = await verifyEnvelope(`${h}..AAAA`, envelope(), keys);
      assert.equal(r.ok, false);
      assert.equal(r.ok === false && r.why, 'header');
    }
    for (const bad of ['', '..', 'a.b.c', 'a..b..c', '!!!..AAAA', `${Buffer.from('[1]').toString('base64url')}..AAAA`]) {
      const r = await verifyEnvelope(bad, envelope(), keys);
      assert.equal(r.ok, false, bad);
    }
    // A message that is not I-JSON cannot be signed for or verified.
    const loneSurrogate = envelope({ message: { text: '\ud800' } });
    assert.deepEqual(await verifyEnvelope(await signEnvelope(envelope(), k), loneSurrogate, keys), { ok: false, why: 'malformed', kid: 'k1' });
  });
});

describe('message shapes (A2A v0.3 Message)', () => {
  test('valid messages', () => {
    for (const m of [
      { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: '' }] },
      { kind: 'message', role: 'agent', messageId: 'm', contextId: 'c', taskId: 't', referenceTaskIds: ['t0'], extensions: ['https://x/ext'], metadata: { a: 1 }, parts: [{ kind: 'data', data: {}, metadata: {} }] },
    ]) assert.equal(A2aMessage.safeParse(m).success, true, JSON.stringify(m));
  });

  test('invalid messages', () => {
    for (const m of [
      { kind: 'task', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: 'x' }] },
      { kind: 'message', role: 'user', messageId: '', parts: [{ kind: 'text', text: 'x' }] },
      { kind: 'message', role: 'user', messageId: 'm', parts: [] },
      { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'file', file: { uri: 'file:///etc/passwd' } }] },
      { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'data', data: [1] }] },
      { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: 'x', extra: 1 }] },
      { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: 'x' }], unknownField: 1 },
    ]) assert.equal(A2aMessage.safeParse(m).success, false, JSON.stringify(m));
  });

  test('send and inbound bodies', () => {
    const message = { kind: 'message', role: 'user', messageId: 'm', parts: [{ kind: 'text', text: 'x' }] };
    assert.equal(SendRequest.safeParse({ peer: 'b.peer_1', to: 'bob', user: 'u', message }).success, true);
    assert.equal(SendRequest.safeParse({ peer: 'b', message, to: '../x' }).success, false);
    const bastion = { v: 1, sender: 's', recipient: 'r', agent: 'a', to: null, user: null, nonce: 'A'.repeat(16), iat: 1, jws: 'a..b' };
    assert.equal(InboundRequest.safeParse({ jsonrpc: '2.0', id: 'x', method: 'message/send', params: { message, metadata: { bastion } } }).success, true);
    assert.equal(InboundRequest.safeParse({ jsonrpc: '2.0', id: 'x', method: 'message/send', params: { message, metadata: { bastion: { ...bastion, v: 2 } } } }).success, false);
    assert.equal(InboundRequest.safeParse({ jsonrpc: '2.0', id: 'x', method: 'message/send', params: { message, metadata: { bastion: { ...bastion, jws: 'a.b.c' } } } }).success, false);
  });
});
