/** The agent-to-agent door's stages (src/a2a/stages.ts), alone: plain values in, a value or a refusal out. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { checkClaims, deliverUrl, deliveryResult, isRefusal, mayContact, peerResult, receivingAgent, type Refusal } from '../../src/a2a/stages.ts';
import type { ResolvedA2aAgent } from '../../src/config/types.ts';

const AGENTS = new Map<string, ResolvedA2aAgent>([
  ['alice', { peers: ['acme'], receiveFrom: ['acme'], deliver: new URL('http://127.0.0.1:1/alice') }],
  ['bob', { peers: [], receiveFrom: ['acme', 'globex'] }],
  ['carol', { peers: ['globex'], receiveFrom: [] }],
]);

function refused(v: unknown, reason: string, status: number, code: string): Refusal {
  assert.ok(isRefusal(v), `expected a refusal, got ${JSON.stringify(v)}`);
  assert.equal(v.decision.effect, 'deny');
  assert.equal(v.decision.reason, reason);
  assert.equal(v.status, status);
  assert.equal(v.code, code);
  return v;
}

test('send: an agent contacts only the peers its a2a.agents entry lists', () => {
  assert.equal(mayContact(AGENTS, 'alice', 'acme'), undefined);
  refused(mayContact(AGENTS, 'alice', 'globex'), 'a2a.not_allowed', 403, 'ERR_A2A_UNAUTHORIZED');
  refused(mayContact(AGENTS, 'nobody', 'acme'), 'a2a.not_allowed', 403, 'ERR_A2A_UNAUTHORIZED');
});

test('inbound claims: sender is the registered one, recipient is this instance, iat within ±maxAgeS (both edges)', () => {
  const peer = { name: 'acme', sender: 'https://acme.example' };
  const here = { issuer: 'https://bastion.example', maxAgeS: 60, nowMs: 1_000_000_000 };
  const now = 1_000_000;
  const ok = { sender: peer.sender, recipient: here.issuer, iat: now };
  assert.equal(checkClaims(ok, peer, here), undefined);
  assert.equal(checkClaims({ ...ok, iat: now - 60 }, peer, here), undefined, '60 s old is within');
  assert.equal(checkClaims({ ...ok, iat: now + 60 }, peer, here), undefined, '60 s ahead is within');
  assert.deepEqual(refused(checkClaims({ ...ok, iat: now - 61 }, peer, here), 'a2a.stale', 401, 'ERR_A2A_STALE').detail, { skewS: 61 });
  assert.deepEqual(refused(checkClaims({ ...ok, iat: now + 61 }, peer, here), 'a2a.stale', 401, 'ERR_A2A_STALE').detail, { skewS: -61 });
  refused(checkClaims({ ...ok, sender: 'https://evil.example' }, peer, here), 'a2a.sender_mismatch', 401, 'ERR_A2A_SIGNATURE');
  refused(checkClaims({ ...ok, recipient: 'https://other.example' }, peer, here), 'a2a.wrong_recipient', 400, 'ERR_A2A_INVALID');
});

test('inbound target: `to` must receive from the peer; without `to`, exactly one agent receiving from it', () => {
  assert.equal(receivingAgent(AGENTS, 'alice', 'acme'), 'alice');
  refused(receivingAgent(AGENTS, 'carol', 'acme'), 'a2a.not_receiving', 403, 'ERR_A2A_UNAUTHORIZED');
  refused(receivingAgent(AGENTS, 'nobody', 'acme'), 'a2a.not_receiving', 403, 'ERR_A2A_UNAUTHORIZED');
  assert.equal(receivingAgent(AGENTS, null, 'globex'), 'bob');
  refused(receivingAgent(AGENTS, null, 'acme'), 'a2a.invalid', 400, 'ERR_A2A_INVALID');
  refused(receivingAgent(AGENTS, null, 'initech'), 'a2a.not_receiving', 403, 'ERR_A2A_UNAUTHORIZED');
  assert.equal(deliverUrl(AGENTS, 'alice').toString(), 'http://127.0.0.1:1/alice');
  refused(deliverUrl(AGENTS, 'bob'), 'a2a.no_deliver', 403, 'ERR_A2A_UNAUTHORIZED');
});

test("send: the peer's answer is a result only as a 200 JSON-RPC response with `result`", () => {
  assert.deepEqual(peerResult({ status: 200, json: { jsonrpc: '2.0', id: 1, result: { ok: 1 } } }, 'acme'), { result: { ok: 1 }, status: 200 });
  const down = refused(peerResult({ error: 'ECONNREFUSED' }, 'acme'), 'a2a.peer_unreachable', 502, 'ERR_A2A_DELIVERY');
  assert.deepEqual(down.detail, { error: 'ECONNREFUSED' });
  const no = refused(peerResult({ status: 403, json: { error: { code: 'ERR_A2A_FORBIDDEN' } } }, 'acme'), 'a2a.peer_refused', 502, 'ERR_A2A_DELIVERY');
  assert.deepEqual(no.extra, { peer: { status: 403, code: 'ERR_A2A_FORBIDDEN' } });
  // A peer's code goes into the message and the record only when it is a well-formed ERR_ code.
  const odd = refused(peerResult({ status: 500, json: { error: { code: 'x<script>' } } }, 'acme'), 'a2a.peer_refused', 502, 'ERR_A2A_DELIVERY');
  assert.deepEqual(odd.extra, { peer: { status: 500, code: null } });
  refused(peerResult({ status: 200, json: { jsonrpc: '2.0', error: { code: -32000 } } }, 'acme'), 'a2a.peer_refused', 502, 'ERR_A2A_DELIVERY');
  refused(peerResult({ status: 200, json: undefined }, 'acme'), 'a2a.peer_refused', 502, 'ERR_A2A_DELIVERY');
});

test("inbound: the agent's 2xx JSON answer is the result (a JSON-RPC response's result, else the JSON itself)", () => {
  assert.deepEqual(deliveryResult({ status: 200, json: { jsonrpc: '2.0', id: 1, result: 'hi' } }, 'alice'), { result: 'hi' });
  assert.deepEqual(deliveryResult({ status: 202, json: { text: 'queued' } }, 'alice'), { result: { text: 'queued' } });
  for (const bad of [{ error: 'TimeoutError' }, { status: 500, json: { result: 1 } }, { status: 199, json: {} }, { status: 300, json: {} }, { status: 200, json: undefined }, { status: 200, json: { jsonrpc: '2.0', error: { code: 1 } } }]) {
    refused(deliveryResult(bad, 'alice'), 'a2a.delivery', 502, 'ERR_A2A_DELIVERY');
  }
});

test('property: peerResult and deliveryResult never throw, whatever the JSON', () => {
  fc.assert(
    fc.property(fc.integer({ min: 100, max: 599 }), fc.jsonValue(), (status, json) => {
      const a = peerResult({ status, json }, 'p');
      const b = deliveryResult({ status, json }, 'a');
      assert.ok(isRefusal(a) || status === 200);
      assert.ok(isRefusal(b) || (status >= 200 && status <= 299));
    }),
  );
});
