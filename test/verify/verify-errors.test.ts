/**
 * verifyParts refuses every bad request with the exact VerifyError code, and
 * accepts the good one. Fixed clock; each test signs its own request.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import {
  CONTEXT_HEADER,
  MemoryReplayStore,
  parseContext,
  RedisReplayStore,
  serializeContext,
  verifyParts,
  VerifyError,
  type RequestParts,
  type VerifyErrorCode,
  type VerifyOptions,
} from '../../src/verify/index.ts';
import { BASE_CONTEXT, generateTestKey, NOW_MS, NOW_S, ORIGIN, signedRequest, type TestKey } from './helpers.ts';
import { ensureRedis } from '../helpers/redis.ts';

let key: TestKey;
before(async () => {
  key = await generateTestKey();
});

function opts(extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return { keys: [key.jwk], origin: ORIGIN, now: () => NOW_MS, replayStore: new MemoryReplayStore({ now: () => NOW_MS }), ...extra };
}

async function refused(req: RequestParts, code: VerifyErrorCode, o: VerifyOptions = opts()): Promise<VerifyError> {
  let caught: unknown;
  try {
    await verifyParts(req, o);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof VerifyError, `expected VerifyError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  return caught;
}

function withHeader(req: RequestParts & { headers: Record<string, string> }, name: string, value: string | undefined): RequestParts {
  const headers = { ...req.headers };
  if (value === undefined) delete headers[name];
  else headers[name] = value;
  return { ...req, headers };
}

describe('verifyParts: accepts', () => {
  test('a request signed like Bastion signs it, returning the context', async () => {
    const req = await signedRequest(key);
    const v = await verifyParts(req, opts());
    assert.deepEqual(v.context, BASE_CONTEXT);
    assert.equal(v.keyid, key.kid);
    assert.equal(v.label, 'bastion');
    assert.equal(v.created, Math.floor(NOW_S));
    assert.equal(v.expires, Math.floor(NOW_S) + 30);
    assert.deepEqual(v.components, ['@method', '@target-uri', 'content-digest', 'bastion-context']);
  });

  test('picks the label tagged "bastion" among several signatures', async () => {
    const other = await generateTestKey();
    const a = await signedRequest(other, { label: 'proxy', params: { tag: 'proxy' } });
    const b = await signedRequest(key, { body: a.body });
    const merged = {
      ...b,
      headers: { ...b.headers, 'signature-input': `${a.headers['signature-input']}, ${b.headers['signature-input']}`, signature: `${a.headers.signature}, ${b.headers.signature}` },
    };
    // bodies differ in nonce only: both sign the same body and context
    const v = await verifyParts(merged, opts());
    assert.equal(v.label, 'bastion');
    await refused(merged, 'missing_signature', opts({ label: 'nope' }));
  });

  test('a tampered request does not burn the nonce: the genuine one still passes', async () => {
    const req = await signedRequest(key);
    const o = opts();
    await refused(withHeader(req, CONTEXT_HEADER, serializeContext({ ...BASE_CONTEXT, user: 'mallory' })), 'bad_signature', o);
    await verifyParts(req, o);
  });
});

describe('verifyParts: refuses', () => {
  test('a tampered body: digest_mismatch', async () => {
    const req = await signedRequest(key, { body: '{"amount":10}' });
    await refused({ ...req, body: new TextEncoder().encode('{"amount":99}') }, 'digest_mismatch');
  });

  test('a tampered covered header (bastion-context): bad_signature', async () => {
    const req = await signedRequest(key);
    await refused(withHeader(req, CONTEXT_HEADER, serializeContext({ ...BASE_CONTEXT, user: 'mallory' })), 'bad_signature');
  });

  test('a tampered target: other path or query: bad_signature; other host, scheme or port: wrong_origin', async () => {
    const req = await signedRequest(key, { url: 'https://tools.example.com/mcp?session=s1' });
    for (const url of ['https://tools.example.com/admin?session=s1', 'https://tools.example.com/mcp?session=s2', 'https://tools.example.com/mcp']) {
      await refused({ ...req, url }, 'bad_signature');
    }
    for (const url of ['https://evil.example.com/mcp?session=s1', 'http://tools.example.com/mcp?session=s1', 'https://tools.example.com:8443/mcp?session=s1']) {
      await refused({ ...req, url }, 'wrong_origin');
    }
  });

  test('a tampered method: bad_signature', async () => {
    const req = await signedRequest(key, { method: 'POST' });
    await refused({ ...req, method: 'PUT' }, 'bad_signature');
  });

  test('created older than maxAgeS: expired', async () => {
    const req = await signedRequest(key, { params: { created: Math.floor(NOW_S) - 61, expires: Math.floor(NOW_S) + 30 } });
    await refused(req, 'expired');
    const ok = await signedRequest(key, { params: { created: Math.floor(NOW_S) - 61, expires: Math.floor(NOW_S) + 30 } });
    await verifyParts(ok, opts({ maxAgeS: 120 }));
  });

  test('created in the future beyond clockSkewS: not_yet_valid', async () => {
    await refused(await signedRequest(key, { params: { created: Math.floor(NOW_S) + 10 } }), 'not_yet_valid');
    await verifyParts(await signedRequest(key, { params: { created: Math.floor(NOW_S) + 4 } }), opts());
  });

  test('expires in the past: expired', async () => {
    await refused(await signedRequest(key, { params: { created: Math.floor(NOW_S) - 20, expires: Math.floor(NOW_S) - 10 } }), 'expired');
  });

  test('the same nonce twice with one store: replayed', async () => {
    const req = await signedRequest(key);
    const o = opts();
    await verifyParts(req, o);
    await refused(req, 'replayed', o);
  });

  test('an unknown kid: unknown_key', async () => {
    const stranger = await generateTestKey();
    await refused(await signedRequest(stranger), 'unknown_key');
  });

  test('the right kid with another key: bad_signature', async () => {
    const impostor = await generateTestKey(key.kid);
    await refused(await signedRequest(impostor), 'bad_signature');
  });

  test('no Signature or Signature-Input header: missing_signature', async () => {
    const req = await signedRequest(key);
    await refused(withHeader(withHeader(req, 'signature', undefined) as typeof req, 'signature-input', undefined), 'missing_signature');
    await refused(withHeader(req, 'signature', undefined), 'missing_signature');
    await refused(withHeader(req, 'signature-input', undefined), 'missing_signature');
    await refused(withHeader(req, 'signature', 'other=:AAAA:'), 'missing_signature');
  });

  test('garbage Signature-Input or Signature: malformed', async () => {
    const req = await signedRequest(key);
    const input = req.headers['signature-input']!;
    for (const bad of ['bastion=("@method" "@target-uri"', '"quoted"=1', 'bastion="x"', '\u00ff']) {
      await refused(withHeader(req, 'signature-input', bad), 'malformed');
    }
    // unknown parameter, wrong parameter type, missing created / keyid
    for (const [from, to] of [
      [';tag="bastion"', ';tag="bastion";foo=1'],
      [/;created=\d+/, ';created="1"'],
      [/;created=\d+/, ''],
      [/;keyid="[^"]*"/, ''],
      ['"@method"', '"@Method"'],
      ['"@method"', '"@status"'],
      ['"@method"', '"@method";req'],
    ] as const) {
      await refused(withHeader(req, 'signature-input', input.replace(from, to)), 'malformed');
    }
    for (const bad of ['bastion=:not base64!:', 'bastion="text"', 'bastion=(:AAAA:)']) {
      await refused(withHeader(req, 'signature', bad), 'malformed');
    }
  });

  test('a signature of the wrong length: bad_signature', async () => {
    const req = await signedRequest(key);
    await refused(withHeader(req, 'signature', 'bastion=:AAAA:'), 'bad_signature');
  });

  test('a signature not covering content-digest (or another required component): missing_component', async () => {
    await refused(await signedRequest(key, { components: ['@method', '@target-uri', CONTEXT_HEADER] }), 'missing_component');
    await refused(await signedRequest(key, { components: ['@method', 'content-digest', CONTEXT_HEADER] }), 'missing_component');
  });

  test('bastion-context not covered even when not required: missing_component', async () => {
    const req = await signedRequest(key, { components: ['@method', '@target-uri', 'content-digest'] });
    await refused(req, 'missing_component', opts({ requiredComponents: ['@method'] }));
  });

  test('no nonce: missing_component', async () => {
    const req = await signedRequest(key, { params: { nonce: undefined } });
    await refused(req, 'missing_component');
  });

  test('a covered header that is absent: missing_component', async () => {
    const req = await signedRequest(key, { components: ['@method', '@target-uri', 'content-digest', CONTEXT_HEADER, 'content-type'] });
    await refused(withHeader(req, 'content-type', undefined), 'missing_component');
  });

  test('alg other than ed25519: bad_alg', async () => {
    await refused(await signedRequest(key, { params: { alg: 'hmac-sha256' } }), 'bad_alg');
    await refused(await signedRequest(key, { params: { alg: 'rsa-pss-sha512' } }), 'bad_alg');
    // no alg parameter at all is fine: the key decides (Ed25519 only)
    await verifyParts(await signedRequest(key, { params: { alg: undefined } }), opts());
  });

  test('Content-Digest without sha-256 (sha-512 only, md5): digest_mismatch; not a dictionary: malformed', async () => {
    const body = '{"hello": "world"}';
    const sha512 = 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:';
    await refused(await signedRequest(key, { body, contentDigest: sha512 }), 'digest_mismatch');
    await refused(await signedRequest(key, { body, contentDigest: 'md5=:+SqxUmaUIdLMpo+hjQJJ/w==:' }), 'digest_mismatch');
    await refused(await signedRequest(key, { body, contentDigest: 'sha-256="X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="' }), 'malformed');
    await refused(await signedRequest(key, { body, contentDigest: 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=' }), 'malformed');
    // sha-256 alongside others is checked
    const both = `${sha512}, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`;
    await verifyParts(await signedRequest(key, { body, contentDigest: both }), opts());
  });

  test('a context with non-ASCII, a missing agent, an unknown field or wrong types: bad_context', async () => {
    const req = await signedRequest(key);
    await refused(withHeader(req, CONTEXT_HEADER, 'agent="supp\u00f6rt", platform="acme", request="r1", time=1'), 'bad_context');
    for (const raw of [
      'user="alice", platform="acme", request="r1", time=1',
      'agent="support", platform="acme", request="r1"',
      'agent="support", platform="acme", request="r1", time=1, admin=?1',
      'agent=support, platform="acme", request="r1", time=1',
      'agent="support", platform="acme", request="r1", time="1"',
      'agent="support";x=1, platform="acme", request="r1", time=1',
      'agent="", platform="acme", request="r1", time=1',
      'agent=("a" "b"), platform="acme", request="r1", time=1',
      'agent="support", platform="acme", request="r1", time=1.5',
      'agent="support", platform="acme", request="r1", time=-1',
    ]) {
      await refused(await signedRequest(key, { rawContext: raw }), 'bad_context');
    }
  });

  test('a replay store that errors: replay_store_unavailable', async () => {
    const broken = new RedisReplayStore({ set: () => Promise.reject(new Error('ECONNREFUSED')) });
    await refused(await signedRequest(key), 'replay_store_unavailable', opts({ replayStore: broken }));
    const e = await refused(await signedRequest(key), 'replay_store_unavailable', opts({ replayStore: broken }));
    assert.equal(e.status, 503);
  });

  test('statuses: 400 for malformed, 401 for the rest, and no header value in messages', async () => {
    const req = await signedRequest(key);
    const m = await refused(withHeader(req, 'signature-input', 'bastion=("@method" secret-value-xyz'), 'malformed');
    assert.equal(m.status, 400);
    assert.ok(!m.message.includes('secret-value-xyz'));
    const b = await refused(withHeader(req, CONTEXT_HEADER, serializeContext({ ...BASE_CONTEXT, user: 'secret-user-xyz' })), 'bad_signature');
    assert.equal(b.status, 401);
    assert.ok(!b.message.includes('secret-user-xyz'));
  });
});

describe('parseContext / serializeContext', () => {
  test('round trip, optional fields absent', () => {
    const min = { agent: 'a', platform: 'p', request: 'r', time: 0 };
    assert.deepEqual(parseContext(serializeContext(min)), min);
    assert.deepEqual(parseContext(serializeContext(BASE_CONTEXT)), BASE_CONTEXT);
    assert.equal(
      serializeContext(BASE_CONTEXT),
      'agent="support", user="alice", conversation="c-17", platform="acme", request="r_8f3k", tool="kb__search", time=1732200000',
    );
  });

  test('values not representable: bad_context', () => {
    const bad: unknown[] = [
      { ...BASE_CONTEXT, user: 'al\u00efce' },
      { ...BASE_CONTEXT, user: 'a\nb' },
      { ...BASE_CONTEXT, time: 1.5 },
      { ...BASE_CONTEXT, agent: '' },
      { ...BASE_CONTEXT, extra: 'x' },
      { platform: 'p', request: 'r', time: 1 },
    ];
    for (const ctx of bad) {
      assert.throws(() => serializeContext(ctx as never), (e) => e instanceof VerifyError && e.code === 'bad_context');
    }
    assert.throws(() => parseContext('agent="\u00e9"'), (e) => e instanceof VerifyError && e.code === 'bad_context');
  });
});

// ---- a real Redis shared by two verifier instances ----

const REDIS_URL = 'redis://127.0.0.1:6379';


describe('RedisReplayStore over a real Redis', () => {
  const clients: Redis[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.quit()));
  });

  test('a nonce accepted by one verifier instance is replayed at the other', async () => {
    await ensureRedis();
    const prefix = `bastion-test:verify:${process.pid}:${Date.now()}:`;
    const a = new Redis(REDIS_URL);
    const b = new Redis(REDIS_URL);
    clients.push(a, b);
    const verifierA = opts({ replayStore: new RedisReplayStore(a, { prefix }) });
    const verifierB = opts({ replayStore: new RedisReplayStore(b, { prefix }) });
    const req = await signedRequest(key);
    await verifyParts(req, verifierA);
    await refused(req, 'replayed', verifierB);
    await refused(req, 'replayed', verifierA);
    // the key carries the ttl of the acceptance window: (60 + 5) s
    const ttl = await a.pttl(`${prefix}${key.kid}:${req.headers['signature-input']!.match(/nonce="([^"]+)"/)![1]!}`);
    assert.ok(ttl > 60_000 && ttl <= 65_000, `ttl ${ttl}`);
    // two racing verifiers: exactly one wins
    const race = await signedRequest(key);
    const results = await Promise.allSettled([verifyParts(race, verifierA), verifyParts(race, verifierB)]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });
});
