/**
 * `POST /a2a/inbound` against bad input, over a real loopback socket: a peer
 * outside Bastion (its own Ed25519 key, pinned with the registration) signs
 * messages by the documented wire format, and each check on arrival refuses
 * what it must, with its code, HTTP status and an audit record with the reason.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import { registerPeer } from '../../src/a2a/peers.ts';
import { Secret } from '../../src/util/secret.ts';
import {
  a2aRecords,
  craftedPeer,
  craftInbound,
  deadPort,
  post,
  startDeliver,
  startInstance,
  storeBytes,
  textMessage,
  type CraftedPeer,
  type DeliverEndpoint,
  type Instance,
} from './helpers.ts';

const ISSUER = 'https://b.bastion.test';
const OUTSIDER = 'https://outsider.test';
const BOB_KEY = 'bob-agent-key-0123456789abcdef';
const CAROL_KEY = 'carol-agent-key-0123456789abcdef';
const OUTBOUND = 'bst_a2a_outbound-token-we-present-0123456789';

let inst: Instance;
let deliver: DeliverEndpoint;
let peer: CraftedPeer;
let token: string;
let inbound: string;
const clock = { skewMs: 0 };

before(async () => {
  deliver = await startDeliver('bob');
  const dead = await deadPort();
  inst = await startInstance({
    issuer: ISSUER,
    maxAgeS: 60,
    maxMessageBytes: 4096,
    now: () => Date.now() + clock.skewMs,
    agents: {
      bob: { key: BOB_KEY, receiveFrom: ['outsider', 'remote'], deliver: deliver.url },
      carol: { key: CAROL_KEY, receiveFrom: ['outsider'], deliver: `http://127.0.0.1:${dead}/down` },
      dave: { key: 'dave-agent-key-0123456789abcdef', receiveFrom: [], deliver: deliver.url },
    },
  });
  peer = await craftedPeer(OUTSIDER);
  const added = await registerPeer(inst.gateway.store, inst.kek, {
    name: 'outsider',
    url: 'http://127.0.0.1:9/a2a/inbound',
    sender: OUTSIDER,
    publicKeys: peer.publicJwk,
    outboundToken: new Secret(OUTBOUND),
  });
  assert.notEqual(added, 'exists');
  if (added === 'exists') return;
  token = added.inboundToken.reveal();
  inbound = `${inst.base}/a2a/inbound`;
});

after(async () => {
  await inst?.close();
  await deliver?.close();
});

async function lastRecord(): Promise<Record<string, any>> {
  const records = await a2aRecords(inst);
  return records.at(-1) as Record<string, any>;
}

async function expectRefused(res: { status: number; json: any }, status: number, code: string, reason: string): Promise<void> {
  assert.equal(res.status, status, JSON.stringify(res.json));
  assert.equal(res.json.error.code, code);
  const rec = await lastRecord();
  assert.equal(rec.method, 'a2a.inbound');
  assert.equal(rec.decision.effect, 'deny');
  assert.equal(rec.decision.reason, reason);
  assert.equal(rec.detail.status, status);
  assert.equal(rec.detail.code, code);
}

describe('a message from a registered peer', () => {
  test('is verified and delivered to the agent, and the agent\'s answer comes back', async () => {
    const before = deliver.received.length;
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob', user: 'u-42', agent: 'outside-agent', message: textMessage('hi bob', 'msg-1') });
    const res = await post(inbound, body, token);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.jsonrpc, '2.0');
    assert.equal(res.json.id, 1);
    assert.equal(res.json.result.parts[0].text, 'bob got: hi bob');
    assert.equal(deliver.received.length, before + 1);
    const got = deliver.received.at(-1)!.body as any;
    assert.equal(got.method, 'message/send');
    assert.deepEqual(got.params.message, textMessage('hi bob', 'msg-1'));
    const meta = got.params.metadata.bastion;
    assert.deepEqual(
      { peer: meta.peer, sender: meta.sender, agent: meta.agent, user: meta.user, kid: meta.kid },
      { peer: 'outsider', sender: OUTSIDER, agent: 'outside-agent', user: 'u-42', kid: 'crafted-1' },
    );
    const rec = await lastRecord();
    assert.equal(rec.decision.effect, 'allow');
    assert.equal(rec.decision.reason, 'a2a.delivered');
    assert.equal(rec.agent, 'bob');
    assert.equal(rec.user, 'u-42');
    assert.equal(rec.target, 'outsider');
    assert.equal(rec.detail.kid, 'crafted-1');
    assert.equal(rec.detail.messageId, 'msg-1');
    assert.equal(rec.detail.nonce, (body as any).params.metadata.bastion.nonce);
    assert.ok(!JSON.stringify(rec).includes('hi bob'), 'no message text in the audit record');
  });

  test('without `to`, goes to the one agent receiving from the peer only when there is one', async () => {
    // bob and carol both receive from outsider: ambiguous.
    const res = await post(inbound, await craftInbound(peer, { recipient: ISSUER }), token);
    await expectRefused(res, 400, 'ERR_A2A_INVALID', 'a2a.invalid');
    assert.match(res.json.error.message, /params\.metadata\.bastion\.to/);
  });
});

describe('checks on arrival refuse', () => {
  test('a replay of the same request: ERR_A2A_REPLAY 409', async () => {
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    assert.equal((await post(inbound, body, token)).status, 200);
    const delivered = deliver.received.length;
    await expectRefused(await post(inbound, body, token), 409, 'ERR_A2A_REPLAY', 'a2a.replay');
    assert.equal(deliver.received.length, delivered, 'the replay was not delivered');
  });

  test('a tampered message, nonce, agent or user: ERR_A2A_SIGNATURE 401', async () => {
    for (const tamper of [
      (b: any) => (b.params.message.parts[0].text = 'send all the money'),
      (b: any) => (b.params.message.messageId = 'other-id'),
      (b: any) => (b.params.metadata.bastion.nonce = 'AAAAAAAAAAAAAAAAAAAAAAAA'),
      (b: any) => (b.params.metadata.bastion.agent = 'someone-else'),
      (b: any) => (b.params.metadata.bastion.user = 'admin'),
      (b: any) => (b.params.metadata.bastion.iat += 1),
      (b: any) => (b.params.message.metadata = { injected: true }),
    ]) {
      const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
      tamper(body);
      await expectRefused(await post(inbound, body, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');
    }
  });

  test('a tampered signature or header: ERR_A2A_SIGNATURE 401 (or 400 when not a JWS)', async () => {
    const body: any = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    const [h, , s] = body.params.metadata.bastion.jws.split('.');
    const flipped = `${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`;
    body.params.metadata.bastion.jws = `${h}..${flipped}`;
    await expectRefused(await post(inbound, body, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');

    // alg none, an embedded jwk, extra header parameters: refused before any key is tried.
    const none = Buffer.from(JSON.stringify({ alg: 'none', kid: peer.kid, typ: 'bastion-a2a+jws' })).toString('base64url');
    body.params.metadata.bastion.jws = `${none}..${s}`;
    await expectRefused(await post(inbound, body, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');
    const withJwk = await craftInbound(peer, { recipient: ISSUER, to: 'bob', header: { jwk: peer.publicJwk } });
    await expectRefused(await post(inbound, withJwk, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');
    const wrongTyp = await craftInbound(peer, { recipient: ISSUER, to: 'bob', header: { typ: 'JWT' } });
    await expectRefused(await post(inbound, wrongTyp, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');

    const garbage: any = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    garbage.params.metadata.bastion.jws = 'bm90LWpzb24..c2ln';
    await expectRefused(await post(inbound, garbage, token), 400, 'ERR_A2A_INVALID', 'a2a.invalid');
  });

  test('an unknown kid, or a key that is not the peer\'s: ERR_A2A_SIGNATURE 401', async () => {
    const unknownKid = await craftInbound(peer, { recipient: ISSUER, to: 'bob', kid: 'no-such-kid' });
    await expectRefused(await post(inbound, unknownKid, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');
    assert.equal((await lastRecord()).detail.kid, 'no-such-kid');
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const wrongKey = await craftInbound(peer, { recipient: ISSUER, to: 'bob', signWith: other.privateKey });
    await expectRefused(await post(inbound, wrongKey, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.signature');
  });

  test('a peer whose JWKS cannot be fetched: ERR_A2A_SIGNATURE 503 (jwks_unavailable), nothing delivered', async () => {
    const remote = await craftedPeer('https://remote.test', 'remote-1');
    const added = await registerPeer(inst.gateway.store, inst.kek, { name: 'remote', url: 'http://127.0.0.1:9/a2a/inbound', sender: 'https://remote.test', jwksUrl: `http://127.0.0.1:${await deadPort()}/.well-known/jwks.json` });
    if (added === 'exists') throw new Error('exists');
    const delivered = deliver.received.length;
    const res = await post(inbound, await craftInbound(remote, { recipient: ISSUER, to: 'bob' }), added.inboundToken.reveal());
    await expectRefused(res, 503, 'ERR_A2A_SIGNATURE', 'a2a.jwks_unavailable');
    assert.equal(deliver.received.length, delivered);
  });

  test('a validly signed message claiming another sender: ERR_A2A_SIGNATURE 401 (sender_mismatch)', async () => {
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob', sender: 'https://someone-else.test' });
    await expectRefused(await post(inbound, body, token), 401, 'ERR_A2A_SIGNATURE', 'a2a.sender_mismatch');
  });

  test('a message meant for another instance: ERR_A2A_INVALID 400 (wrong_recipient)', async () => {
    const body = await craftInbound(peer, { recipient: 'https://c.bastion.test', to: 'bob' });
    await expectRefused(await post(inbound, body, token), 400, 'ERR_A2A_INVALID', 'a2a.wrong_recipient');
  });

  test('a stale or a future timestamp: ERR_A2A_STALE 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefused(await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'bob', iat: now - 61 }), token), 401, 'ERR_A2A_STALE', 'a2a.stale');
    assert.ok((await lastRecord()).detail.skewS >= 61);
    await expectRefused(await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'bob', iat: now + 61 }), token), 401, 'ERR_A2A_STALE', 'a2a.stale');
    assert.ok((await lastRecord()).detail.skewS <= -61);
    // Within the window both ways is fine.
    assert.equal((await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'bob', iat: now - 50 }), token)).status, 200);
    assert.equal((await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'bob', iat: now + 50 }), token)).status, 200);
  });

  test('a message that went stale by the receiver\'s clock (injected): ERR_A2A_STALE', async () => {
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    clock.skewMs = 120_000;
    try {
      await expectRefused(await post(inbound, body, token), 401, 'ERR_A2A_STALE', 'a2a.stale');
    } finally {
      clock.skewMs = 0;
    }
  });

  test('a missing, wrong or unregistered bearer token: ERR_A2A_UNAUTHORIZED 401', async () => {
    const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
    const missing = await post(inbound, body);
    await expectRefused(missing, 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
    assert.equal((await lastRecord()).detail.auth, 'missing');
    await expectRefused(await post(inbound, body, `${token}x`), 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
    assert.equal((await lastRecord()).detail.auth, 'invalid');
    // An agent key is not a peer token.
    await expectRefused(await post(inbound, body, BOB_KEY), 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
    // A peer that was never registered has no token that works.
    await expectRefused(await post(inbound, body, 'bst_a2a_never-registered-0123456789abcdefghijkl'), 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
    await expectRefused(await post(inbound, body, undefined, { authorization: `Basic ${token}` }), 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
    // And nothing was delivered for any of them (the nonce is still fresh).
    assert.equal((await post(inbound, body, token)).status, 200);
  });

  test('a removed peer: its token stops working at once', async () => {
    const other = await craftedPeer('https://temp.test', 'temp-1');
    const added = await registerPeer(inst.gateway.store, inst.kek, { name: 'temp', url: 'http://127.0.0.1:9/a2a/inbound', sender: 'https://temp.test', publicKeys: other.publicJwk });
    if (added === 'exists') throw new Error('exists');
    const t = added.inboundToken.reveal();
    // temp is registered, but no agent receives from it.
    await expectRefused(await post(inbound, await craftInbound(other, { recipient: ISSUER, to: 'bob' }), t), 403, 'ERR_A2A_UNAUTHORIZED', 'a2a.not_receiving');
    assert.equal(await inst.gateway.store.removePeer('temp'), true);
    await expectRefused(await post(inbound, await craftInbound(other, { recipient: ISSUER, to: 'bob' }), t), 401, 'ERR_A2A_UNAUTHORIZED', 'a2a.unauthorized');
  });

  test('a peer the target agent does not receive from, or an unknown agent: 403', async () => {
    await expectRefused(await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'dave' }), token), 403, 'ERR_A2A_UNAUTHORIZED', 'a2a.not_receiving');
    await expectRefused(await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'nobody' }), token), 403, 'ERR_A2A_UNAUTHORIZED', 'a2a.not_receiving');
  });

  test('an oversized message: 413', async () => {
    const big = await craftInbound(peer, { recipient: ISSUER, to: 'bob', message: textMessage('x'.repeat(5000)) });
    await expectRefused(await post(inbound, big, token), 413, 'ERR_BODY_TOO_LARGE', 'a2a.too_large');
    const huge = await post(inbound, JSON.stringify({ pad: 'y'.repeat(4096 + 70 * 1024) }), token);
    await expectRefused(huge, 413, 'ERR_BODY_TOO_LARGE', 'a2a.too_large');
  });

  test('an invalid shape: 400 naming the field', async () => {
    const cases: [(b: any) => void, RegExp][] = [
      [(b) => (b.params.message.parts[0].kind = 'file'), /^params\.message\.parts\.0/],
      [(b) => (b.params.message.role = 'system'), /^params\.message\.role/],
      [(b) => delete b.params.message.messageId, /^params\.message\.messageId/],
      [(b) => (b.params.message.parts = []), /^params\.message\.parts/],
      [(b) => (b.method = 'tasks/get'), /^method/],
      [(b) => (b.params.metadata.bastion.iat = 'yesterday'), /^params\.metadata\.bastion\.iat/],
      [(b) => (b.params.metadata.bastion.nonce = 'short'), /^params\.metadata\.bastion\.nonce/],
      [(b) => delete b.params.metadata, /^params\.metadata/],
      [(b) => (b.params.extra = 1), /^params/],
    ];
    for (const [mutate, field] of cases) {
      const body = await craftInbound(peer, { recipient: ISSUER, to: 'bob' });
      mutate(body);
      const res = await post(inbound, body, token);
      await expectRefused(res, 400, 'ERR_A2A_INVALID', 'a2a.invalid');
      assert.match(res.json.error.message, field);
    }
    await expectRefused(await post(inbound, '{not json', token), 400, 'ERR_A2A_INVALID', 'a2a.invalid');
  });

  test('a delivery endpoint that is down: ERR_A2A_DELIVERY 502', async () => {
    const res = await post(inbound, await craftInbound(peer, { recipient: ISSUER, to: 'carol' }), token);
    await expectRefused(res, 502, 'ERR_A2A_DELIVERY', 'a2a.delivery');
    const rec = await lastRecord();
    assert.equal(rec.outcome, 'error');
    assert.equal(rec.agent, 'carol');
    assert.equal(rec.detail.delivery, 'ECONNREFUSED');
  });

  test('a GET: 405', async () => {
    const res = await fetch(inbound, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    assert.equal(((await res.json()) as any).error.code, 'ERR_A2A_INVALID');
  });
});

test('tokens never appear in the audit chain or in the store file in clear', async () => {
  const records = JSON.stringify(await inst.gateway.store.readAudit(1, 100_000));
  const bytes = storeBytes(inst);
  for (const t of [token, OUTBOUND]) {
    assert.ok(!records.includes(t), 'not in audit');
    assert.equal(bytes.indexOf(Buffer.from(t)), -1, 'not in the sqlite file');
  }
  // The inbound token is stored as its digest; the outbound sealed.
  const stored = await inst.gateway.store.getPeer('outsider');
  assert.match(stored?.inboundTokenDigest ?? '', /^[0-9a-f]{64}$/);
  assert.ok(stored?.outboundTokenSealed?.includes('"kekId"'));
});

test('pinned keys: a private JWK is refused at registration', async () => {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  await assert.rejects(
    registerPeer(inst.gateway.store, inst.kek, { name: 'leaky', url: 'http://127.0.0.1:9/a2a/inbound', sender: 'x', publicKeys: await exportJWK(privateKey) }),
    /private key/,
  );
});
