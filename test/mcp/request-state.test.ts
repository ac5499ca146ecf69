/**
 * The sealed `requestState` of held MCP tool calls (src/mcp/request-state.ts):
 * round trip, tampering, re-binding, replay, expiry, key rotation, malformed
 * input, nonce-store failure and foreign JWEs. Every refusal is asserted by its
 * reason. The key derivation is pinned against node:crypto's `hkdfSync` as an
 * independent oracle (RFC 5869), and foreign states are crafted with jose.
 */
import assert from 'node:assert/strict';
import { hkdfSync, randomBytes } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { CompactEncrypt, type CompactJWEHeaderParameters } from 'jose';
import { isBastionError } from '../../src/errors.ts';
import {
  RequestStateSealer,
  type RequestStateKey,
  type RequestStateRefusal,
  type StateBinding,
} from '../../src/mcp/request-state.ts';
import type { NonceStore } from '../../src/store/nonces.ts';
import { MemoryReplayStore } from '../../src/verify/replay.ts';

const T0 = 1_800_000_000_000;
const TTL_MS = 60_000;
const K1: RequestStateKey = { kid: 'k1', secret: new Uint8Array(randomBytes(32)) };
const K2: RequestStateKey = { kid: 'k2', secret: new Uint8Array(randomBytes(48)) };
const BINDING: StateBinding = { agent: 'agent-a', user: 'alice@example.com', tool: 'files__write', argsDigest: 'ab'.repeat(32) };
const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function nonceStore(now: () => number): NonceStore {
  const mem = new MemoryReplayStore({ now });
  return { remember: (key, ttlMs) => mem.remember(key, ttlMs), close: () => Promise.resolve() };
}

interface Rig {
  sealer: RequestStateSealer;
  readonly clock: { t: number };
  ring: RequestStateKey[];
}

function rig(opts: { ring?: RequestStateKey[]; nonces?: NonceStore; maxLength?: number } = {}): Rig {
  const clock = { t: T0 };
  const holder: { ring: RequestStateKey[] } = { ring: opts.ring ?? [K1] };
  const sealer = new RequestStateSealer({
    keys: () => Promise.resolve(holder.ring),
    nonces: opts.nonces ?? nonceStore(() => clock.t),
    ttlMs: TTL_MS,
    now: () => clock.t,
    ...(opts.maxLength === undefined ? {} : { maxLength: opts.maxLength }),
  });
  return {
    sealer,
    clock,
    get ring() {
      return holder.ring;
    },
    set ring(ring: RequestStateKey[]) {
      holder.ring = ring;
    },
  };
}

/** The AEAD key as the format defines it, computed independently (RFC 5869 via OpenSSL). */
function specKey(secret: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, 'bastion/hkdf-salt/v1', 'bastion/mcp-request-state/v1', 32));
}

function craft(claims: unknown, opts: { kid?: string | null; key?: Uint8Array; alg?: string; enc?: string } = {}): Promise<string> {
  const header: CompactJWEHeaderParameters = { alg: opts.alg ?? 'dir', enc: opts.enc ?? 'A256GCM' };
  if (opts.kid !== null) header.kid = opts.kid ?? K1.kid;
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(claims)))
    .setProtectedHeader(header)
    .encrypt(opts.key ?? specKey(K1.secret));
}

function validClaims(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { v: 1, ...BINDING, approvalId: 'appr-1', upstream: null, nonce: randomBytes(16).toString('base64url'), exp: T0 + TTL_MS, ...over };
}

async function refusal(r: Rig, state: unknown, binding: StateBinding = BINDING): Promise<RequestStateRefusal | 'ok'> {
  const res = await r.sealer.open(state, binding);
  return res.ok ? 'ok' : res.reason;
}

test('round trip: a sealed state opens with its claims', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  assert.equal(state.split('.').length, 5);
  assert.equal(state.split('.')[1], '', 'dir carries no encrypted key');
  assert.ok(!state.includes('alice'), 'the claims are encrypted');
  const res = await r.sealer.open(state, BINDING);
  assert.ok(res.ok);
  assert.deepEqual(res.claims, { v: 1, ...BINDING, approvalId: 'appr-1', upstream: null, nonce: res.claims.nonce, exp: T0 + TTL_MS });
  assert.match(res.claims.nonce, /^[A-Za-z0-9_-]{22}$/);
});

test('a continuation state carries the upstream\'s own state byte-exact, with or without an approval', async () => {
  const r = rig();
  const upstream = 'opaque.UPSTREAM/state+=\u00e9';
  const s1 = await r.sealer.seal(BINDING, '', upstream);
  const o1 = await r.sealer.open(s1, BINDING);
  assert.ok(o1.ok);
  assert.equal(o1.claims.upstream, upstream);
  assert.equal(o1.claims.approvalId, '');
  const s2 = await r.sealer.seal(BINDING, 'appr-9', '');
  const o2 = await r.sealer.open(s2, BINDING);
  assert.ok(o2.ok && o2.claims.upstream === '' && o2.claims.approvalId === 'appr-9');
  await assert.rejects(r.sealer.seal(BINDING, ''), TypeError, 'an approval state needs an approval id');
});

test('round trip with a null user; null must match null, not a string', async () => {
  const r = rig();
  const anon: StateBinding = { ...BINDING, user: null };
  const state = await r.sealer.seal(anon, 'appr-2');
  assert.equal(await refusal(r, state, { ...anon, user: 'null' }), 'state.rebound');
  assert.equal(await refusal(r, state, { ...anon, user: '' }), 'state.rebound');
  assert.equal(await refusal(r, state, anon), 'ok');
});

test('each seal has a fresh nonce', async () => {
  const r = rig();
  const a = await r.sealer.open(await r.sealer.seal(BINDING, 'x'), BINDING);
  const b = await r.sealer.open(await r.sealer.seal(BINDING, 'x'), BINDING);
  assert.ok(a.ok && b.ok);
  assert.notEqual(a.claims.nonce, b.claims.nonce);
});

test('the key is HKDF-SHA256 of the secret (RFC 5869): a state crafted with the spec key opens', async () => {
  const r = rig();
  assert.equal(await refusal(r, await craft(validClaims())), 'ok');
});

test('domain separation: a state encrypted directly under the raw secret is forged', async () => {
  const r = rig();
  assert.equal(await refusal(r, await craft(validClaims(), { key: K1.secret })), 'state.forged');
});

test('property: replacing any single character of a sealed state is never accepted', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  const alphabet = [...B64URL, '.', '=', '+', '/', ' ', '\u00e9'];
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: state.length - 1 }), fc.constantFrom(...alphabet), async (i, ch) => {
      fc.pre(state[i] !== ch);
      const mutated = state.slice(0, i) + ch + state.slice(i + 1);
      const reason = await refusal(r, mutated);
      assert.ok(reason === 'state.forged' || reason === 'state.malformed', `position ${i}: ${reason}`);
    }),
    { numRuns: 400 },
  );
  // The original was never consumed by the failed attempts.
  assert.equal(await refusal(r, state), 'ok');
});

test('every position flipped to its neighbouring base64url character is refused', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  for (let i = 0; i < state.length; i++) {
    const c = state[i] as string;
    if (c === '.') continue;
    const flipped = B64URL[(B64URL.indexOf(c) + 1) % B64URL.length] as string;
    const reason = await refusal(r, state.slice(0, i) + flipped + state.slice(i + 1));
    assert.ok(reason === 'state.forged' || reason === 'state.malformed', `position ${i}: ${reason}`);
  }
});

test('property: changing any one binding field gives state.rebound', async () => {
  const r = rig();
  const field = fc.constantFrom('agent', 'user', 'tool', 'argsDigest');
  const text = fc.string({ minLength: 1, maxLength: 20 });
  const digest = fc.stringMatching(/^[0-9a-f]{64}$/);
  await fc.assert(
    fc.asyncProperty(field, text, digest, fc.boolean(), fc.boolean(), async (f, s, d, userNull, sealNull) => {
      const sealed: StateBinding = sealNull ? { ...BINDING, user: null } : BINDING;
      let other: StateBinding;
      if (f === 'argsDigest') other = { ...sealed, argsDigest: d };
      else if (f === 'user') other = { ...sealed, user: userNull && sealed.user !== null ? null : s };
      else other = { ...sealed, [f]: s };
      fc.pre(other[f] !== sealed[f]);
      const state = await r.sealer.seal(sealed, 'appr-1');
      assert.equal(await refusal(r, state, other), 'state.rebound');
    }),
    { numRuns: 200 },
  );
});

test('a rebound attempt does not consume the state', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  assert.equal(await refusal(r, state, { ...BINDING, tool: 'files__delete' }), 'state.rebound');
  assert.equal(await refusal(r, state), 'ok');
});

test('replay: the second open of the same state is state.replayed', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  assert.equal(await refusal(r, state), 'ok');
  assert.equal(await refusal(r, state), 'state.replayed');
  r.clock.t += TTL_MS - 1;
  assert.equal(await refusal(r, state), 'state.replayed');
});

test('replay across two sealers sharing one nonce store (two instances)', async () => {
  const t = { t: T0 };
  const shared = nonceStore(() => t.t);
  const a = rig({ nonces: shared });
  const b = rig({ nonces: shared });
  const state = await a.sealer.seal(BINDING, 'appr-1');
  assert.equal(await refusal(b, state), 'ok');
  assert.equal(await refusal(a, state), 'state.replayed');
});

test('the nonce is remembered under mcp-state:<nonce> for the remaining lifetime + 1 s', async () => {
  const calls: [string, number][] = [];
  const r = rig({ nonces: { remember: (k, ttl) => (calls.push([k, ttl]), Promise.resolve(true)), close: () => Promise.resolve() } });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  r.clock.t += 10_000;
  const res = await r.sealer.open(state, BINDING);
  assert.ok(res.ok);
  assert.deepEqual(calls, [[`mcp-state:${res.claims.nonce}`, TTL_MS - 10_000 + 1000]]);
});

test('expiry: refused at and after exp, accepted just before', async () => {
  const r = rig();
  const s1 = await r.sealer.seal(BINDING, 'appr-1');
  const s2 = await r.sealer.seal(BINDING, 'appr-1');
  const s3 = await r.sealer.seal(BINDING, 'appr-1');
  r.clock.t = T0 + TTL_MS;
  assert.equal(await refusal(r, s1), 'state.expired');
  r.clock.t = T0 + 10 * TTL_MS;
  assert.equal(await refusal(r, s2), 'state.expired');
  r.clock.t = T0 + TTL_MS - 1;
  assert.equal(await refusal(r, s3), 'ok');
});

test('rotation: a state sealed under an older key still in the ring opens', async () => {
  const r = rig({ ring: [K1] });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  r.ring = [K2, K1];
  assert.equal(await refusal(r, state), 'ok');
  const res = await r.sealer.open(await r.sealer.seal(BINDING, 'appr-2'), BINDING);
  assert.ok(res.ok);
});

test('rotation: the current (first) key seals', async () => {
  const r = rig({ ring: [K2, K1] });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  const header = JSON.parse(Buffer.from(state.split('.')[0] as string, 'base64url').toString('utf8')) as Record<string, unknown>;
  assert.deepEqual(header, { alg: 'dir', enc: 'A256GCM', kid: 'k2' });
});

test('rotation: a state sealed under a key no longer in the ring is forged', async () => {
  const r = rig({ ring: [K1] });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  r.ring = [K2];
  assert.equal(await refusal(r, state), 'state.forged');
});

test('a known kid with another secret is forged', async () => {
  const r = rig({ ring: [K1] });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  r.ring = [{ kid: 'k1', secret: K2.secret }];
  assert.equal(await refusal(r, state), 'state.forged');
});

test('malformed: non-strings, empty, oversize, wrong segment count, junk', async () => {
  const r = rig({ maxLength: 1000 });
  const inputs: unknown[] = [
    undefined,
    null,
    42,
    true,
    {},
    [],
    ['a.b.c.d.e'],
    new TextEncoder().encode('a.b.c.d.e'),
    '',
    'x'.repeat(1001),
    'a.b.c.d.e',
    '....',
    'a.b.c.d',
    'a.b.c.d.e.f',
    'not a state',
    '!!.!!.!!.!!.!!',
    'eyJhbGciOiJkaXIifQ.a.b.c.d', // header JSON without enc or kid, but junk body segments
  ];
  for (const input of inputs) assert.equal(await refusal(r, input), 'state.malformed', `input ${JSON.stringify(input)}`);
});

test('malformed: a sealed state just over maxLength is refused before any crypto', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  const small = rig({ maxLength: state.length - 1 });
  assert.equal(await refusal(small, state), 'state.malformed');
});

test('malformed: a non-canonical base64url spelling of the tag is refused', async () => {
  const r = rig();
  const state = await r.sealer.seal(BINDING, 'appr-1');
  const parts = state.split('.');
  const tag = parts[4] as string; // 16 bytes → 22 characters; the last one carries 4 spare bits
  const last = tag[tag.length - 1] as string;
  const alt = B64URL[B64URL.indexOf(last) ^ 1] as string; // same high 2 bits, different spare bit
  parts[4] = tag.slice(0, -1) + alt;
  assert.deepEqual(Buffer.from(parts[4], 'base64url'), Buffer.from(tag, 'base64url'), 'the alternative decodes to the same bytes');
  assert.equal(await refusal(r, parts.join('.')), 'state.malformed');
  assert.equal(await refusal(r, state), 'ok');
});

test('malformed: authentic JWEs whose claims have the wrong shape', async () => {
  const r = rig();
  const { nonce: _n, ...noNonce } = validClaims();
  const bad: unknown[] = [
    validClaims({ extra: 1 }),
    noNonce,
    validClaims({ v: 2 }),
    validClaims({ v: '1' }),
    validClaims({ exp: String(T0 + TTL_MS) }),
    validClaims({ exp: T0 + 0.5 }),
    validClaims({ user: 7 }),
    validClaims({ agent: '' }),
    validClaims({ argsDigest: 'AB'.repeat(32) }),
    validClaims({ nonce: 'short' }),
    validClaims({ approvalId: 5 }),
    validClaims({ approvalId: '' }),
    validClaims({ upstream: 7 }),
    validClaims({ upstream: undefined }),
    [validClaims()],
    'a string',
    null,
  ];
  for (const claims of bad) assert.equal(await refusal(r, await craft(claims)), 'state.malformed', JSON.stringify(claims));
  const notJson = await new CompactEncrypt(new TextEncoder().encode('{not json'))
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' })
    .encrypt(specKey(K1.secret));
  assert.equal(await refusal(r, notJson), 'state.malformed');
});

test('forged: a JWE with another alg or enc, or no kid', async () => {
  const r = rig();
  const kw = await craft(validClaims(), { alg: 'A256KW', key: specKey(K1.secret) });
  const gcm128 = await craft(validClaims(), { enc: 'A128GCM', key: specKey(K1.secret).slice(0, 16) });
  const cbc = await craft(validClaims(), { enc: 'A128CBC-HS256', key: specKey(K1.secret) });
  const noKid = await craft(validClaims(), { kid: null });
  const unknownKid = await craft(validClaims(), { kid: 'k9' });
  for (const state of [kw, gcm128, cbc, noKid, unknownKid]) assert.equal(await refusal(r, state), 'state.forged');
});

test('store_error: a nonce store that rejects refuses the state (fail closed)', async () => {
  const r = rig({ nonces: { remember: () => Promise.reject(new Error('redis down')), close: () => Promise.resolve() } });
  const state = await r.sealer.seal(BINDING, 'appr-1');
  assert.equal(await refusal(r, state), 'state.store_error');
});

test('store_error: a full MemoryReplayStore rejects and the state is refused', async () => {
  const mem = new MemoryReplayStore({ maxEntries: 1, now: () => T0 });
  const r = rig({ nonces: { remember: (k, t) => mem.remember(k, t), close: () => Promise.resolve() } });
  assert.equal(await refusal(r, await r.sealer.seal(BINDING, 'a')), 'ok');
  assert.equal(await refusal(r, await r.sealer.seal(BINDING, 'b')), 'state.store_error');
});

test('programming errors throw: bad binding, bad approval id, bad key ring, bad options', async () => {
  const r = rig();
  await assert.rejects(r.sealer.seal({ ...BINDING, argsDigest: 'xyz' }, 'a'), TypeError);
  await assert.rejects(r.sealer.seal({ ...BINDING, agent: '' }, 'a'), TypeError);
  await assert.rejects(r.sealer.seal(BINDING, ''), TypeError);
  await assert.rejects(r.sealer.open('a.b.c.d.e', { ...BINDING, user: undefined as unknown as null }), TypeError);
  const isConfig = (err: unknown): boolean => isBastionError(err, 'ERR_CONFIG_INVALID');
  for (const ring of [[], [{ kid: 'k', secret: new Uint8Array(31) }], [K1, { kid: 'k1', secret: K2.secret }], [{ kid: '', secret: K1.secret }]]) {
    const bad = rig({ ring });
    await assert.rejects(bad.sealer.seal(BINDING, 'a'), isConfig);
    await assert.rejects(bad.sealer.open('a.b.c.d.e', BINDING), isConfig);
  }
  const nonces = nonceStore(Date.now);
  const keys = (): Promise<RequestStateKey[]> => Promise.resolve([K1]);
  assert.throws(() => new RequestStateSealer({ keys, nonces, ttlMs: 0 }), RangeError);
  assert.throws(() => new RequestStateSealer({ keys, nonces, ttlMs: 1.5 }), RangeError);
  assert.throws(() => new RequestStateSealer({ keys, nonces, ttlMs: 1000, maxLength: -1 }), RangeError);
});

test('seal refuses to produce a state longer than maxLength', async () => {
  const r = rig({ maxLength: 300 });
  await assert.rejects(r.sealer.seal({ ...BINDING, tool: 't'.repeat(400) }, 'a'), RangeError);
});
