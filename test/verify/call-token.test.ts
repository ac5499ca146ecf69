/**
 * Per-call tokens: EdDSA JWTs from jose's SignJWT verify; `alg: none`, HS256,
 * wrong audience or issuer, expiry, unknown kid and a replayed jti are `bad_token`
 * with the matching reason.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWTPayload } from 'jose';
import { MemoryReplayStore, verifyCallToken, VerifyError, type CallTokenFailure, type CallTokenOptions } from '../../src/verify/index.ts';
import { generateTestKey, NOW_MS, NOW_S } from './helpers.ts';

let kid: string;
let publicJwk: Awaited<ReturnType<typeof generateTestKey>>['jwk'];
let privateKey: CryptoKey;

before(async () => {
  const pair = await generateKeyPair('Ed25519', { extractable: true });
  const pub = await exportJWK(pair.publicKey);
  kid = 'token-key-1';
  publicJwk = { kty: 'OKP', crv: 'Ed25519', x: pub.x!, kid, alg: 'EdDSA', use: 'sig' };
  privateKey = pair.privateKey;
});

const iat = Math.floor(NOW_S);
let jtiCount = 0;

async function mint(over: { payload?: JWTPayload; header?: Record<string, unknown>; exp?: number; aud?: string } = {}): Promise<string> {
  return new SignJWT({ scope: 'kb__search', act: { sub: 'support' }, ...over.payload })
    .setProtectedHeader({ alg: 'EdDSA', kid, typ: 'JWT', ...over.header })
    .setIssuer('https://bastion.acme.test')
    .setSubject('alice')
    .setAudience(over.aud ?? 'https://tools.example.com')
    .setJti(`jti-${process.pid}-${jtiCount++}`)
    .setIssuedAt(iat)
    .setExpirationTime(over.exp ?? iat + 60)
    .sign(privateKey);
}

function opts(extra: Partial<CallTokenOptions> = {}): CallTokenOptions {
  return { keys: [publicJwk], audience: 'https://tools.example.com', issuer: 'https://bastion.acme.test', now: () => NOW_MS, ...extra };
}

const b64u = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

async function badToken(jwt: string, reason: CallTokenFailure, o: CallTokenOptions = opts()): Promise<void> {
  await assert.rejects(verifyCallToken(jwt, o), (e) => {
    assert.ok(e instanceof VerifyError, String(e));
    assert.equal(e.code, 'bad_token', e.message);
    assert.equal(e.reason, reason, e.message);
    assert.equal(e.status, 401);
    return true;
  });
}

describe('verifyCallToken', () => {
  test('an EdDSA token minted with SignJWT verifies and yields its claims', async () => {
    const claims = await verifyCallToken(await mint(), opts());
    assert.equal(claims.sub, 'alice');
    assert.deepEqual(claims.act, { sub: 'support' });
    assert.equal(claims.scope, 'kb__search');
    assert.equal(claims.aud, 'https://tools.example.com');
    assert.equal(claims.iss, 'https://bastion.acme.test');
    assert.equal(claims.iat, iat);
    assert.equal(claims.exp, iat + 60);
  });

  test('alg "none" (an unsecured JWT): bad_token alg', async () => {
    const payload = { iss: 'https://bastion.acme.test', sub: 'alice', act: { sub: 'support' }, aud: 'https://tools.example.com', scope: 'x', jti: 'j', iat, exp: iat + 60 };
    await badToken(`${b64u({ alg: 'none', typ: 'JWT' })}.${b64u(payload)}.`, 'alg');
    await badToken(`${b64u({ alg: 'none', kid })}.${b64u(payload)}.`, 'alg');
  });

  test('HS256 signed with a secret (even the public key bytes): bad_token alg', async () => {
    const secret = new TextEncoder().encode(publicJwk.x);
    const hs = await new SignJWT({ scope: 'x', act: { sub: 'support' } })
      .setProtectedHeader({ alg: 'HS256', kid })
      .setIssuer('https://bastion.acme.test')
      .setSubject('alice')
      .setAudience('https://tools.example.com')
      .setJti('j-hs')
      .setIssuedAt(iat)
      .setExpirationTime(iat + 60)
      .sign(secret);
    await badToken(hs, 'alg');
  });

  test('wrong audience: bad_token audience; wrong issuer: bad_token issuer', async () => {
    await badToken(await mint({ aud: 'https://other-tool.example.com' }), 'audience');
    await badToken(await mint(), 'issuer', opts({ issuer: 'https://someone-else.test' }));
  });

  test('expired: bad_token expired (within the skew it passes)', async () => {
    await badToken(await mint({ exp: iat - 10 }), 'expired');
    await verifyCallToken(await mint({ exp: iat - 3 }), opts());
  });

  test('a bad signature or unknown kid: bad_token signature / unknown_key', async () => {
    const jwt = await mint();
    const [h, p, s] = jwt.split('.') as [string, string, string];
    const flipped = s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`;
    await badToken(`${h}.${p}.${flipped}`, 'signature');
    await badToken(await mint({ header: { kid: 'nobody' } }), 'unknown_key');
    await badToken('not.a.jwt', 'malformed');
  });

  test('missing act or scope: bad_token claims', async () => {
    await badToken(await mint({ payload: { act: undefined } }), 'claims');
    await badToken(await mint({ payload: { scope: 7 } }), 'claims');
  });

  test('a jti seen twice with a replay store: bad_token replayed', async () => {
    const o = opts({ replayStore: new MemoryReplayStore({ now: () => NOW_MS }) });
    const jwt = await mint();
    await verifyCallToken(jwt, o);
    await badToken(jwt, 'replayed', o);
    // without a store the same token is accepted again (stateless mode)
    await verifyCallToken(jwt, opts());
    await verifyCallToken(jwt, opts());
  });

  test('a private JWK among the keys is a TypeError, not a silent accept', async () => {
    const priv = await exportJWK(privateKey);
    await assert.rejects(verifyCallToken(await mint(), opts({ keys: [{ ...priv, kid }] })), TypeError);
    await assert.rejects(verifyCallToken(await mint(), { audience: 'x' }), TypeError);
    assert.ok(await importJWK(publicJwk, 'EdDSA'));
  });
});
