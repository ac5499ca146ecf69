/**
 * The store's peer table (schema v4): unique names and inbound digests, one
 * key source per peer, outbound tokens replaced in place, removal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { StoredPeer } from '../../src/a2a/peer-store.ts';

const peer = (over: Partial<StoredPeer> = {}): StoredPeer => ({
  name: 'b',
  url: 'https://b.example/a2a/inbound',
  sender: 'https://b.example',
  jwksUrl: 'https://b.example/.well-known/jwks.json',
  publicJwks: null,
  inboundTokenDigest: 'a'.repeat(64),
  outboundTokenSealed: null,
  createdAt: 1000,
  ...over,
});

test('add, look up by name and digest, list, set the outbound token, remove', async () => {
  const store = await openSqliteStore(':memory:');
  try {
    assert.equal(await store.addPeer(peer()), true);
    assert.equal(await store.addPeer(peer({ inboundTokenDigest: 'b'.repeat(64) })), false, 'name taken');
    assert.equal(await store.addPeer(peer({ name: 'c' })), false, 'digest taken');
    assert.equal(await store.addPeer(peer({ name: 'c', inboundTokenDigest: 'c'.repeat(64), jwksUrl: null, publicJwks: '{"keys":[]}' })), true);
    await assert.rejects(store.addPeer(peer({ name: 'd', inboundTokenDigest: 'd'.repeat(64), publicJwks: '{"keys":[]}' })), TypeError);
    await assert.rejects(store.addPeer(peer({ name: 'd', inboundTokenDigest: 'd'.repeat(64), jwksUrl: null })), TypeError);

    assert.deepEqual(await store.getPeer('b'), peer());
    assert.equal((await store.getPeerByInboundDigest('c'.repeat(64)))?.name, 'c');
    assert.equal(await store.getPeerByInboundDigest('e'.repeat(64)), undefined);
    assert.deepEqual((await store.listPeers()).map((p) => p.name), ['b', 'c']);

    assert.equal(await store.setPeerOutboundToken('b', '{"sealed":1}'), true);
    assert.equal((await store.getPeer('b'))?.outboundTokenSealed, '{"sealed":1}');
    assert.equal(await store.setPeerOutboundToken('zz', '{}'), false);

    assert.equal(await store.removePeer('b'), true);
    assert.equal(await store.removePeer('b'), false);
    assert.equal(await store.getPeerByInboundDigest('a'.repeat(64)), undefined);
    // The name and digest are free again.
    assert.equal(await store.addPeer(peer()), true);
  } finally {
    await store.close();
  }
});
