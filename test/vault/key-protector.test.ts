/**
 * The audit signing key sealed under the KEK: stored sealed, usable with the
 * right KEK, refused without one or with another, bound to its key id.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuditLog, SEALED_KEY_PREFIX } from '../../src/audit/log.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import { kekKeyProtector } from '../../src/vault/key-protector.ts';

const kek = kekFromBytes(new Uint8Array(32).fill(1));
const otherKek = kekFromBytes(new Uint8Array(32).fill(2));

test('a new audit key is stored sealed and signs checkpoints; another KEK or none cannot use it', async () => {
  const store = await openSqliteStore(':memory:');
  try {
    const log = await AuditLog.open(store, { checkpointEvery: 2, keyProtector: kekKeyProtector(kek) });
    const key = await store.getKey('audit');
    assert.ok(key?.privateKeyPem.startsWith(SEALED_KEY_PREFIX));
    assert.doesNotMatch(key?.privateKeyPem ?? '', /PRIVATE KEY/);
    const event = { time: new Date().toISOString(), door: 'system' as const, agent: null, method: 't', decision: { effect: 'allow' as const, reason: 'r', rule: 'r' }, outcome: 'ok' as const, durationMs: 0 };
    await Promise.all([log.append(event), log.append(event)]);
    await log.flush();
    // Checkpoints over seq 1 and every multiple of checkpointEvery, signed with the sealed key.
    assert.deepEqual((await store.listCheckpoints()).map((c) => c.seq), [1, 2]);

    await assert.rejects(AuditLog.open(store, { checkpointEvery: 2, keyProtector: kekKeyProtector(otherKek) }), (e: unknown) => isBastionError(e, 'ERR_VAULT_DECRYPT'));
    await assert.rejects(AuditLog.open(store, { checkpointEvery: 2 }), (e: unknown) => isBastionError(e, 'ERR_VAULT_KEY'));
  } finally {
    await store.close();
  }
});

test('a sealed key is bound to its key id', () => {
  const p = kekKeyProtector(kek);
  const sealed = p.seal('-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'key-a');
  assert.match(p.open(sealed, 'key-a'), /BEGIN PRIVATE KEY/);
  assert.throws(() => p.open(sealed, 'key-b'), (e: unknown) => isBastionError(e, 'ERR_VAULT_DECRYPT'));
  assert.throws(() => p.open('not json', 'key-a'), (e: unknown) => isBastionError(e, 'ERR_VAULT_DECRYPT'));
});
