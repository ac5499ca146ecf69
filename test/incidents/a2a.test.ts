/**
 * Isolation at the agent-to-agent door: an isolated agent cannot send (403
 * `ERR_AGENT_ISOLATED`, audited naming it), and a message a peer addresses to
 * it is refused too; after restore it sends again.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sealPeerToken } from '../../src/a2a/peers.ts';
import { Secret } from '../../src/util/secret.ts';
import { addPeer, post, startDeliver, startInstance, textMessage, type DeliverEndpoint, type Instance } from '../a2a/helpers.ts';

const ALICE = 'alice-agent-key-0123456789abcdef-inc';
const BOB = 'bob-agent-key-0123456789abcdef-inc';
let a: Instance;
let b: Instance;
let aliceInbox: DeliverEndpoint;
let bobInbox: DeliverEndpoint;

before(async () => {
  aliceInbox = await startDeliver('alice');
  bobInbox = await startDeliver('bob');
  a = await startInstance({ issuer: 'https://a.bastion.test', agents: { alice: { key: ALICE, peers: ['b'], receiveFrom: ['b'], deliver: aliceInbox.url } } });
  b = await startInstance({ issuer: 'https://b.bastion.test', agents: { bob: { key: BOB, peers: ['a'], receiveFrom: ['a'], deliver: bobInbox.url } } });
  const bToA = await addPeer(a, 'b', { base: b.base, issuer: 'https://b.bastion.test' });
  const aToB = await addPeer(b, 'a', { base: a.base, issuer: 'https://a.bastion.test' }, bToA);
  assert.equal(await a.gateway.store.setPeerOutboundToken('b', sealPeerToken(a.kek, 'b', new Secret(aToB))), true);
});

after(async () => {
  await a?.close();
  await b?.close();
  await aliceInbox?.close();
  await bobInbox?.close();
});

test('an isolated agent cannot send, nor receive; restored, it sends again', async () => {
  const send = (key: string, from: Instance, peer: string): ReturnType<typeof post> => post(`${from.base}/a2a/send`, { peer, message: textMessage('hello') }, key);
  assert.equal((await send(ALICE, a, 'b')).status, 200);
  await a.gateway.isolations.isolate('alice', 'compromised', 'admin');
  const refused = await send(ALICE, a, 'b');
  assert.equal(refused.status, 403);
  assert.match(JSON.stringify(refused.json), /ERR_AGENT_ISOLATED/);
  // Bob's message to alice: A refuses to deliver it to an isolated agent.
  const n = aliceInbox.received.length;
  const inbound = await send(BOB, b, 'a');
  assert.notEqual(inbound.status, 200);
  assert.equal(aliceInbox.received.length, n, 'nothing delivered to the isolated agent');
  await a.gateway.audit.flush();
  const recs = await a.gateway.store.readAudit(1, 10_000);
  assert.ok(recs.some((r) => r.door === 'a2a' && r.method === 'a2a.send' && r.agent === 'alice' && r.decision.reason === 'agent.isolated'));
  assert.ok(recs.some((r) => r.door === 'a2a' && r.method === 'a2a.inbound' && r.agent === 'alice' && r.decision.reason === 'agent.isolated'));
  await a.gateway.isolations.restore('alice', 'clean', 'admin');
  assert.equal((await send(ALICE, a, 'b')).status, 200);
});
