/**
 * The identity key ring: first key on open, rotation with a grace period in the
 * JWKS, sealed private keys that need the vault key, kids that are RFC 7638
 * thumbprints, and a rotation by another process picked up by a running ring.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { calculateJwkThumbprint, importJWK, jwtVerify, SignJWT } from 'jose';
import { SEALED_KEY_PREFIX } from '../../src/audit/log.ts';
import { IdentityKeys } from '../../src/identity/keys.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { kekFromBytes } from '../../src/vault/kek.ts';
import { kekKeyProtector } from '../../src/vault/key-protector.ts';
import { tempDir } from '../helpers/gateway.ts';
import { isBastionError, type BastionErrorCode } from '../../src/errors.ts';

const GRACE_MS = 60_000;

async function assertBastionError(fn: () => Promise<unknown>, code: BastionErrorCode): Promise<void> {
  await assert.rejects(fn, (err: unknown) => isBastionError(err, code));
}
const protector = kekKeyProtector(kekFromBytes(Buffer.alloc(32, 9)));

async function freshStore() {
  return openSqliteStore(join(tempDir(), 'bastion.db'));
}

test('open creates one sealed key; its kid is the RFC 7638 thumbprint of the published JWK', async () => {
  const store = await freshStore();
  try {
    const ring = await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector });
    const stored = await store.listKeys('identity');
    assert.equal(stored.length, 1);
    assert.ok(stored[0]?.privateKeyPem.startsWith(SEALED_KEY_PREFIX), 'the private key is sealed at rest');
    assert.doesNotMatch(stored[0]?.privateKeyPem ?? '', /BEGIN PRIVATE KEY/);
    const { keys } = await ring.jwks();
    assert.equal(keys.length, 1);
    const jwk = keys[0];
    assert.ok(jwk);
    assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x'], 'public members only');
    assert.equal(jwk.kid, await calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, 'sha256'));
    assert.equal((await ring.signingKey()).kid, jwk.kid);
    // Opening again reuses the key.
    const again = await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector });
    assert.equal((await again.signingKey()).kid, jwk.kid);
    assert.equal((await store.listKeys('identity')).length, 1);
  } finally {
    await store.close();
  }
});

test('a token signed by the current key verifies with the published JWK', async () => {
  const store = await freshStore();
  try {
    const ring = await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector });
    const key = await ring.signingKey();
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'EdDSA', kid: key.kid }).setAudience('t').sign(key.cryptoKey);
    const jwk = (await ring.jwks()).keys[0];
    assert.ok(jwk);
    const { payload } = await jwtVerify(jwt, await importJWK(jwk, 'EdDSA'), { audience: 't' });
    assert.equal(payload.aud, 't');
  } finally {
    await store.close();
  }
});

test('a sealed key cannot be used without the vault key, nor with another one', async () => {
  const store = await freshStore();
  try {
    await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector });
    await assertBastionError(() => IdentityKeys.open(store, { rotationGraceMs: GRACE_MS }), 'ERR_VAULT_KEY');
    const other = kekKeyProtector(kekFromBytes(Buffer.alloc(32, 1)));
    await assertBastionError(() => IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector: other }), 'ERR_VAULT_DECRYPT');
  } finally {
    await store.close();
  }
});

test('rotation: the old key stays published for the grace period, then leaves the JWKS', async () => {
  const store = await freshStore();
  let now = 1_800_000_000_000;
  try {
    const ring = await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector, now: () => now, refreshMs: 0 });
    const first = (await ring.signingKey()).kid;
    now += 1000;
    const second = (await ring.rotate()).kid;
    assert.notEqual(first, second);
    assert.equal((await ring.signingKey()).kid, second, 'the new key signs');
    assert.deepEqual((await ring.jwks()).keys.map((k) => k.kid), [second, first], 'newest first, old key in grace');
    const listed = await ring.list();
    assert.deepEqual(listed.map((k) => [k.kid, k.status]), [[first, 'grace'], [second, 'current']]);
    assert.equal(listed[0]?.graceUntil, now + GRACE_MS);
    now += GRACE_MS - 1;
    assert.equal((await ring.jwks()).keys.length, 2, 'still inside the grace period');
    now += 1;
    assert.deepEqual((await ring.jwks()).keys.map((k) => k.kid), [second], 'dropped when the grace ends');
    assert.equal((await ring.list())[0]?.status, 'expired');
  } finally {
    await store.close();
  }
});

test('a rotation by another process is picked up after refreshMs', async () => {
  const dir = tempDir();
  const a = await openSqliteStore(join(dir, 'bastion.db'));
  const b = await openSqliteStore(join(dir, 'bastion.db'));
  let now = 1_800_000_000_000;
  try {
    const running = await IdentityKeys.open(a, { rotationGraceMs: GRACE_MS, protector, now: () => now, refreshMs: 5000 });
    const before = (await running.signingKey()).kid;
    const cli = IdentityKeys.view(b, { rotationGraceMs: GRACE_MS, protector, now: () => now });
    const rotated = (await cli.rotate()).kid;
    assert.equal((await running.signingKey()).kid, before, 'cached within refreshMs');
    now += 5000;
    assert.equal((await running.signingKey()).kid, rotated);
    assert.deepEqual((await running.jwks()).keys.map((k) => k.kid), [rotated, before]);
  } finally {
    await a.close();
    await b.close();
  }
});

test('identity keys never appear in clear in the store file', async () => {
  const dir = tempDir();
  const store = await openSqliteStore(join(dir, 'bastion.db'));
  const ring = await IdentityKeys.open(store, { rotationGraceMs: GRACE_MS, protector });
  const pem = (await ring.signingKey()).privateKeyPem;
  await ring.rotate();
  await store.close();
  const bytes = readFileSync(join(dir, 'bastion.db'));
  const body = pem.split('\n').filter((l) => !l.startsWith('-----') && l.length > 0).join('');
  assert.ok(body.length > 40);
  assert.equal(bytes.includes(Buffer.from(body)), false);
  assert.equal(bytes.includes(Buffer.from('BEGIN PRIVATE KEY')), false);
});
