/**
 * Two in-process Bastion instances, A and B, each on its own loopback port,
 * registered to each other (JWKS URLs, a token each way): agents send through
 * `POST /a2a/send` on their own instance and the peer delivers to its agent.
 * Also what the sending side refuses, and what it reports when the peer refuses.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { registerPeer, sealPeerToken } from '../../src/a2a/peers.ts';
import { Secret } from '../../src/util/secret.ts';
import { a2aRecords, addPeer, deadPort, post, startDeliver, startInstance, storeBytes, textMessage, type DeliverEndpoint, type Instance } from './helpers.ts';

const A_ISSUER = 'https://a.bastion.test';
const B_ISSUER = 'https://b.bastion.test';
const ALICE = 'alice-agent-key-0123456789abcdef';
const MALLORY = 'mallory-agent-key-0123456789abcdef';
const BOB = 'bob-agent-key-0123456789abcdef';

let a: Instance;
let b: Instance;
let aliceInbox: DeliverEndpoint;
let bobInbox: DeliverEndpoint;
/** The token B presents to A, and the one A presents to B. */
let bToA: string;
let aToB: string;
/** A fake "peer" that records what A sends to it. */
let spy: Server;
const spied: { headers: IncomingMessage['headers']; body: string }[] = [];

before(async () => {
  aliceInbox = await startDeliver('alice');
  bobInbox = await startDeliver('bob');
  a = await startInstance({
    issuer: A_ISSUER,
    maxMessageBytes: 4096,
    agents: {
      alice: { key: ALICE, peers: ['b', 'unregistered', 'down', 'tokenless', 'spy'], receiveFrom: ['b'], deliver: aliceInbox.url },
      mallory: { key: MALLORY },
    },
  });
  b = await startInstance({ issuer: B_ISSUER, agents: { bob: { key: BOB, peers: ['a'], receiveFrom: ['a'], deliver: bobInbox.url } } });
  // A registers B first (no outbound token yet: B has not registered A), then B registers A with A's token, then A learns B's.
  bToA = await addPeer(a, 'b', { base: b.base, issuer: B_ISSUER });
  aToB = await addPeer(b, 'a', { base: a.base, issuer: A_ISSUER }, bToA);
  assert.equal(await a.gateway.store.setPeerOutboundToken('b', sealPeerToken(a.kek, 'b', new Secret(aToB))), true);

  const dead = await deadPort();
  for (const [name, url, token] of [['down', `http://127.0.0.1:${dead}/a2a/inbound`, 'bst_a2a_token-for-a-dead-peer-0123456789'], ['tokenless', `${b.base}/a2a/inbound`, undefined]] as const) {
    const r = await registerPeer(a.gateway.store, a.kek, { name, url, sender: B_ISSUER, jwksUrl: `${b.base}/.well-known/jwks.json`, ...(token ? { outboundToken: new Secret(token) } : {}) });
    assert.notEqual(r, 'exists');
  }
  spy = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      spied.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"jsonrpc":"2.0","id":1,"result":{"kind":"message","role":"agent","messageId":"spy","parts":[{"kind":"text","text":"ok"}]}}');
    });
  });
  await new Promise<void>((r) => spy.listen(0, '127.0.0.1', r));
  // The spy poses as B (B's sender id): what A signs for it is signed for B.
  const spyUrl = `http://127.0.0.1:${(spy.address() as AddressInfo).port}/a2a/inbound`;
  const r = await registerPeer(a.gateway.store, a.kek, { name: 'spy', url: spyUrl, sender: B_ISSUER, jwksUrl: `${b.base}/.well-known/jwks.json`, outboundToken: new Secret(aToB) });
  assert.notEqual(r, 'exists');
});

after(async () => {
  await a?.close();
  await b?.close();
  await aliceInbox?.close();
  await bobInbox?.close();
  spy?.closeAllConnections();
  await new Promise<void>((r) => (spy ? spy.close(() => r()) : r()));
});

describe('happy path', () => {
  test('alice on A sends to bob on B; bob\'s answer comes back to alice', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'b', to: 'bob', user: 'end-user-7', message: textMessage('lunch at noon?', 'ab-1') }, ALICE);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.peer, 'b');
    assert.equal(res.json.messageId, 'ab-1');
    assert.match(res.json.nonce, /^[A-Za-z0-9_-]{32}$/);
    assert.deepEqual(res.json.result, { kind: 'message', role: 'agent', messageId: 'reply-ab-1', parts: [{ kind: 'text', text: 'bob got: lunch at noon?' }] });

    const got = bobInbox.received.at(-1)!.body as any;
    assert.deepEqual(got.params.message, textMessage('lunch at noon?', 'ab-1'));
    const meta = got.params.metadata.bastion;
    assert.equal(meta.peer, 'a');
    assert.equal(meta.sender, A_ISSUER);
    assert.equal(meta.agent, 'alice');
    assert.equal(meta.user, 'end-user-7');
    assert.equal(meta.nonce, res.json.nonce);
    const kid = (await a.gateway.identity.signingKey()).kid;
    assert.equal(meta.kid, kid);

    const sent = (await a2aRecords(a)).at(-1) as any;
    assert.deepEqual(
      { method: sent.method, effect: sent.decision.effect, reason: sent.decision.reason, agent: sent.agent, target: sent.target, nonce: sent.detail.nonce, kid: sent.detail.kid, messageId: sent.detail.messageId },
      { method: 'a2a.send', effect: 'allow', reason: 'a2a.sent', agent: 'alice', target: 'b', nonce: res.json.nonce, kid, messageId: 'ab-1' },
    );
    const received = (await a2aRecords(b)).at(-1) as any;
    assert.deepEqual(
      { method: received.method, reason: received.decision.reason, agent: received.agent, target: received.target, nonce: received.detail.nonce, kid: received.detail.kid, remote: received.detail.remoteAgent },
      { method: 'a2a.inbound', reason: 'a2a.delivered', agent: 'bob', target: 'a', nonce: res.json.nonce, kid, remote: 'alice' },
    );
  });

  test('bob on B sends to alice on A (the other direction), without naming the agent', async () => {
    const res = await post(`${b.base}/a2a/send`, { peer: 'a', message: { ...textMessage('noon works', 'ba-1'), contextId: 'ctx-1', parts: [{ kind: 'text', text: 'noon works' }, { kind: 'data', data: { when: '12:00' } }] } }, BOB);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    assert.equal(res.json.result.parts[0].text, 'alice got: noon works');
    const got = aliceInbox.received.at(-1)!.body as any;
    assert.equal(got.params.message.contextId, 'ctx-1');
    assert.deepEqual(got.params.message.parts[1], { kind: 'data', data: { when: '12:00' } });
    assert.equal(got.params.metadata.bastion.sender, B_ISSUER);
    assert.equal(got.params.metadata.bastion.user, null);
  });
});

describe('the sending side refuses', () => {
  test('no or a wrong agent key: 401', async () => {
    const body = { peer: 'b', message: textMessage('x') };
    const none = await post(`${a.base}/a2a/send`, body);
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'ERR_AUTH_REQUIRED');
    const wrong = await post(`${a.base}/a2a/send`, body, 'not-a-key-0123456789abcdef');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json.error.code, 'ERR_AUTH_INVALID');
    // A peer's token is not an agent key.
    assert.equal((await post(`${a.base}/a2a/send`, body, bToA)).json.error.code, 'ERR_AUTH_INVALID');
  });

  test('an agent not allowed to send to that peer: 403', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'b', message: textMessage('x') }, MALLORY);
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'ERR_A2A_UNAUTHORIZED');
    const rec = (await a2aRecords(a)).at(-1) as any;
    assert.equal(rec.decision.reason, 'a2a.not_allowed');
    assert.equal(rec.decision.rule, 'a2a.agents.mallory.peers');
    // Not in alice's list either.
    assert.equal((await post(`${a.base}/a2a/send`, { peer: 'c', message: textMessage('x') }, ALICE)).status, 403);
  });

  test('a peer in the config but not registered: ERR_A2A_PEER_UNKNOWN 404; one without an outbound token: 404', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'unregistered', message: textMessage('x') }, ALICE);
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'ERR_A2A_PEER_UNKNOWN');
    assert.equal(((await a2aRecords(a)).at(-1) as any).decision.reason, 'a2a.peer_unknown');
    const tokenless = await post(`${a.base}/a2a/send`, { peer: 'tokenless', message: textMessage('x') }, ALICE);
    assert.equal(tokenless.status, 404);
    assert.match(tokenless.json.error.message, /bastion peers token/);
    assert.equal(((await a2aRecords(a)).at(-1) as any).decision.reason, 'a2a.peer_no_token');
  });

  test('an invalid message: 400 naming the field', async () => {
    const cases: [unknown, RegExp][] = [
      [{ peer: 'b', message: { ...textMessage('x'), parts: [{ kind: 'file', file: { uri: 'http://169.254.169.254/' } }] } }, /^message\.parts\.0/],
      [{ peer: 'b', message: { ...textMessage('x'), role: 'root' } }, /^message\.role/],
      [{ peer: 'b', message: { kind: 'message', role: 'user', parts: [{ kind: 'text', text: 'x' }] } }, /^message\.messageId/],
      [{ peer: 'b' }, /^message/],
      [{ peer: 'b/../x', message: textMessage('x') }, /^peer/],
      [{ peer: 'b', to: 'bob bob', message: textMessage('x') }, /^to/],
      [{ peer: 'b', user: 'a\nb', message: textMessage('x') }, /^user/],
      [{ peer: 'b', message: textMessage('x'), extra: true }, /^body|extra/],
    ];
    for (const [body, field] of cases) {
      const res = await post(`${a.base}/a2a/send`, body, ALICE);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error.code, 'ERR_A2A_INVALID');
      assert.match(res.json.error.message, field);
      assert.equal(((await a2aRecords(a)).at(-1) as any).decision.reason, 'a2a.invalid');
    }
  });

  test('an oversized message: 413', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'b', message: textMessage('z'.repeat(5000)) }, ALICE);
    assert.equal(res.status, 413);
    assert.equal(res.json.error.code, 'ERR_BODY_TOO_LARGE');
    assert.equal(((await a2aRecords(a)).at(-1) as any).decision.reason, 'a2a.too_large');
  });

  test('a peer that is down: ERR_A2A_DELIVERY 502', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'down', message: textMessage('x') }, ALICE);
    assert.equal(res.status, 502);
    assert.equal(res.json.error.code, 'ERR_A2A_DELIVERY');
    const rec = (await a2aRecords(a)).at(-1) as any;
    assert.equal(rec.decision.reason, 'a2a.peer_unreachable');
    assert.equal(rec.detail.error, 'ECONNREFUSED');
  });

  test('the peer refusing: 502 with the peer\'s status and code', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'b', to: 'nobody', message: textMessage('x') }, ALICE);
    assert.equal(res.status, 502);
    assert.equal(res.json.error.code, 'ERR_A2A_DELIVERY');
    assert.deepEqual(res.json.error.peer, { status: 403, code: 'ERR_A2A_UNAUTHORIZED' });
    assert.equal(((await a2aRecords(a)).at(-1) as any).decision.reason, 'a2a.peer_refused');
    assert.equal(((await a2aRecords(b)).at(-1) as any).decision.reason, 'a2a.not_receiving');
  });
});

describe('what A puts on the wire', () => {
  test('is a JSON-RPC message/send with the outbound token; replayed to B it is refused, tampered it fails', async () => {
    const res = await post(`${a.base}/a2a/send`, { peer: 'spy', to: 'bob', message: textMessage('captured', 'cap-1') }, ALICE);
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const captured = spied.at(-1)!;
    assert.equal(captured.headers.authorization, `Bearer ${aToB}`);
    assert.equal(captured.headers['content-type'], 'application/json');
    const wire = JSON.parse(captured.body);
    assert.equal(wire.jsonrpc, '2.0');
    assert.equal(wire.method, 'message/send');
    assert.deepEqual(wire.params.message, textMessage('captured', 'cap-1'));
    assert.deepEqual(Object.keys(wire.params.metadata.bastion).sort(), ['agent', 'iat', 'jws', 'nonce', 'recipient', 'sender', 'to', 'user', 'v']);
    assert.match(wire.params.metadata.bastion.jws, /^[A-Za-z0-9_-]+\.\.[A-Za-z0-9_-]+$/);
    const header = JSON.parse(Buffer.from(wire.params.metadata.bastion.jws.split('.')[0], 'base64url').toString('utf8'));
    assert.deepEqual(header, { alg: 'EdDSA', kid: (await a.gateway.identity.signingKey()).kid, typ: 'bastion-a2a+jws' });

    // The first arrival at B is accepted (B never saw it), the second is a replay.
    const first = await post(`${b.base}/a2a/inbound`, captured.body, aToB);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    const again = await post(`${b.base}/a2a/inbound`, captured.body, aToB);
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'ERR_A2A_REPLAY');
    assert.equal(((await a2aRecords(b)).at(-1) as any).decision.reason, 'a2a.replay');

    const tampered = JSON.parse(captured.body);
    tampered.params.message.parts[0].text = 'tampered';
    tampered.params.metadata.bastion.nonce = 'bmV3LW5vbmNlLW5ldy1ub25jZQ';
    const t = await post(`${b.base}/a2a/inbound`, tampered, aToB);
    assert.equal(t.status, 401);
    assert.equal(t.json.error.code, 'ERR_A2A_SIGNATURE');
  });
});

test('no token appears in clear in either store or audit chain', async () => {
  for (const inst of [a, b]) {
    const bytes = storeBytes(inst);
    const audit = JSON.stringify(await inst.gateway.store.readAudit(1, 100_000));
    for (const t of [aToB, bToA, ALICE, BOB]) {
      assert.equal(bytes.indexOf(Buffer.from(t)), -1);
      assert.ok(!audit.includes(t));
    }
  }
});
