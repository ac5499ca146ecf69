/**
 * The kernel's end-user step (src/door/user.ts): asserted ids, and ids proven by
 * a JWT checked with jose against an issuer, an audience and a JWKS served over
 * a real socket.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { ResolvedUsers } from '../../src/config/types.ts';
import { mayActPrivileged, UserVerifier } from '../../src/door/user.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

const ISS = 'https://idp.example';
const AUD = 'bastion';

describe('UserVerifier', () => {
  let server: Server;
  let jwksUrl: string;
  let jwksUp = true;
  let priv: PrivateKey;
  let otherPriv: PrivateKey;
  let pubJwk: JWK;

  before(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    priv = pair.privateKey;
    otherPriv = (await generateKeyPair('ES256')).privateKey;
    pubJwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' };
    server = createServer((_req, res) => {
      if (!jwksUp) {
        res.writeHead(503).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify({ keys: [pubJwk] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const config = (over: Partial<NonNullable<ResolvedUsers['token']>> = {}, require: ResolvedUsers['require'] = 'privileged'): ResolvedUsers => ({
    require,
    token: { header: 'bastion-user-token', issuer: ISS, audience: AUD, jwks: { url: jwksUrl }, algorithms: ['ES256'], claim: 'sub', clockToleranceS: 5, ...over },
  });
  const token = (claims: Record<string, unknown> = {}, opts: { key?: PrivateKey; kid?: string; exp?: string; iss?: string; aud?: string } = {}): Promise<string> =>
    new SignJWT({ sub: 'alice', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: opts.kid ?? 'k1' })
      .setIssuer(opts.iss ?? ISS)
      .setAudience(opts.aud ?? AUD)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? '5m')
      .sign(opts.key ?? priv);

  test('a valid token proves the user; an asserted id alone is unverified', async () => {
    const v = new UserVerifier(config());
    assert.deepEqual(await v.identify({ token: await token() }), { ok: true, user: { id: 'alice', verified: true } });
    assert.deepEqual(await v.identify({ header: 'alice', token: await token() }), { ok: true, user: { id: 'alice', verified: true } });
    assert.deepEqual(await v.identify({ header: 'alice' }), { ok: true, user: { id: 'alice', verified: false } });
    assert.deepEqual(await v.identify({}), { ok: true, user: null });
  });

  test('a token that does not verify is refused even where tokens are optional', async () => {
    const v = new UserVerifier(config());
    const bad = [
      await token({}, { iss: 'https://evil.example' }),
      await token({}, { aud: 'someone-else' }),
      await token({}, { exp: '-10m' }),
      await token({}, { key: otherPriv }),
      await token({}, { kid: 'unknown' }),
      // alg none and HMAC are never accepted.
      `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"sub":"alice","iss":"${ISS}","aud":"${AUD}","exp":9999999999}`).toString('base64url')}.`,
      await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuer(ISS).setAudience(AUD).setExpirationTime('5m').sign(new Uint8Array(32)),
      'not-a-jwt',
      'x'.repeat(20_000),
    ];
    for (const t of bad) assert.deepEqual(await v.identify({ header: 'alice', token: t }), { ok: false, reason: 'user.token_invalid' });
    // A token without the id claim, or with a malformed id.
    assert.deepEqual(await v.identify({ token: await token({ sub: undefined }) }), { ok: false, reason: 'user.token_invalid' });
    assert.deepEqual(await v.identify({ token: await token({ sub: 'a\u0000b' }) }), { ok: false, reason: 'user.token_invalid' });
  });

  test('the token and the asserted id must name the same user', async () => {
    const v = new UserVerifier(config());
    assert.deepEqual(await v.identify({ header: 'mallory', token: await token() }), { ok: false, reason: 'user.ambiguous' });
    assert.deepEqual(await v.identify({ header: 'alice', field: 'bob' }), { ok: false, reason: 'user.ambiguous' });
    assert.deepEqual(await v.identify({ header: 'a\nb' }), { ok: false, reason: 'user.invalid' });
  });

  test('require: always refuses a named user without a token', async () => {
    const v = new UserVerifier(config({}, 'always'));
    assert.deepEqual(await v.identify({ header: 'alice' }), { ok: false, reason: 'user.unverified' });
    assert.deepEqual(await v.identify({ token: await token() }), { ok: true, user: { id: 'alice', verified: true } });
  });

  test('a JWKS that cannot be fetched is a 503-class failure, not a verdict on the token', async () => {
    const v = new UserVerifier(config({ jwks: { url: 'http://127.0.0.1:9/jwks.json' } }), { timeoutMs: 500 });
    assert.deepEqual(await v.identify({ token: await token() }), { ok: false, reason: 'user.jwks_unavailable' });
    jwksUp = false;
    try {
      const down = new UserVerifier(config());
      const r = await down.identify({ token: await token() });
      assert.equal(r.ok, false);
    } finally {
      jwksUp = true;
    }
  });

  test('a local JWKS (users.token.jwksFile) verifies the same way', async () => {
    const v = new UserVerifier(config({ jwks: { keys: { keys: [pubJwk as Record<string, unknown>] } } }));
    assert.deepEqual(await v.identify({ token: await token() }), { ok: true, user: { id: 'alice', verified: true } });
  });

  test('privilege needs a verified user once tokens are configured', () => {
    const on = new UserVerifier(config());
    const off = new UserVerifier({ require: 'privileged' });
    assert.equal(mayActPrivileged({ id: 'alice', verified: false }, on), false);
    assert.equal(mayActPrivileged({ id: 'alice', verified: true }, on), true);
    assert.equal(mayActPrivileged({ id: 'alice', verified: false }, off), true);
    assert.equal(mayActPrivileged(null, off), false);
  });

  test('claimsOf: a repeated user header is invalid', () => {
    const v = new UserVerifier(config());
    assert.equal(v.claimsOf({ 'bastion-user': ['a', 'b'] }), 'invalid');
    assert.deepEqual(v.claimsOf({ 'bastion-user': 'a', 'bastion-user-token': 't' }, 'a'), { header: 'a', field: 'a', token: 't' });
  });
});
