/**
 * The kernel's one agent authentication (src/door/authenticate.ts): every door
 * reads credentials through it, so these cases hold at every door. Before the
 * kernel, the tool, model, admin and agent-to-agent doors accepted only
 * `Bearer` with that exact case while the proxy accepted any case: a client
 * sending `bearer` (RFC 9110 §11.1: the scheme is case-insensitive) was refused
 * by four doors of five.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { authenticateAgent, authenticateAgentOrToken, KeyIndex, presentedKey } from '../../src/door/authenticate.ts';
import { sha256Hex } from '../../src/util/crypto.ts';

const KEY = 'bst_ak_test_key_0123456789abcdef';
const keys = new KeyIndex();
keys.add(sha256Hex(KEY), 'demo');
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

test('Bearer in any letter case authenticates (RFC 9110 §11.1)', () => {
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    assert.deepEqual(authenticateAgent({ authorization: `${scheme} ${KEY}` }, keys, ['authorization']), { ok: true, agent: 'demo', header: 'authorization' });
  }
});

test('Basic agent:key and Basic key: authenticate (RFC 7617), in any letter case', () => {
  for (const scheme of ['Basic', 'basic', 'BASIC']) {
    assert.equal(authenticateAgent({ 'proxy-authorization': `${scheme} ${b64(`demo:${KEY}`)}` }, keys, ['proxy-authorization']).ok, true);
    assert.equal(authenticateAgent({ 'proxy-authorization': `${scheme} ${b64(`${KEY}:`)}` }, keys, ['proxy-authorization']).ok, true);
  }
});

test('missing, malformed and wrong credentials are refused with their reason', () => {
  const cases: [Record<string, string | string[]>, string][] = [
    [{}, 'auth.missing'],
    [{ authorization: KEY }, 'auth.invalid'], // no scheme
    [{ authorization: `Token ${KEY}` }, 'auth.invalid'], // unknown scheme
    [{ authorization: `Bearer  ${KEY}x` }, 'auth.invalid'],
    [{ authorization: 'Bearer ' }, 'auth.invalid'],
    [{ authorization: `Basic ${b64('no-colon')}` }, 'auth.invalid'],
    [{ authorization: 'Basic !!!' }, 'auth.invalid'],
    [{ authorization: `Bearer ${KEY.slice(0, -1)}` }, 'auth.invalid'],
    [{ authorization: 'Bearer short' }, 'auth.invalid'],
    [{ authorization: `Bearer ${'k'.repeat(513)}` }, 'auth.invalid'],
    [{ authorization: `Bearer ${KEY} extra` }, 'auth.invalid'], // the credential is the whole rest of the header
    [{ authorization: `junk Bearer ${KEY}` }, 'auth.invalid'],
    [{ authorization: ` Bearer ${KEY}` }, 'auth.invalid'],
    [{ authorization: `Basic ${b64(':')}` }, 'auth.invalid'], // neither part holds a key
    [{ authorization: [`Bearer ${KEY}`, `Bearer ${KEY}`] }, 'auth.invalid'], // two credentials are ambiguous
  ];
  for (const [headers, reason] of cases) {
    const r = authenticateAgent(headers, keys, ['authorization']);
    assert.deepEqual(r, { ok: false, reason }, JSON.stringify(headers));
  }
});

test('the first header present decides: a bad Authorization is not rescued by x-api-key', () => {
  assert.deepEqual(authenticateAgent({ authorization: 'Bearer wrong-wrong-wrong-wrong', 'x-api-key': KEY }, keys, ['authorization', 'x-api-key']), { ok: false, reason: 'auth.invalid' });
  assert.deepEqual(authenticateAgent({ 'x-api-key': KEY }, keys, ['authorization', 'x-api-key']), { ok: true, agent: 'demo', header: 'x-api-key' });
  // A door that does not read a header ignores it.
  assert.deepEqual(authenticateAgent({ 'x-api-key': KEY }, keys, ['authorization']), { ok: false, reason: 'auth.missing' });
});

test('presentedKey: what each header form presents', () => {
  assert.deepEqual(presentedKey({ authorization: `Bearer  ${KEY}` }, ['authorization']), { kind: 'key', key: KEY, header: 'authorization', scheme: 'bearer' }); // 1*SP
  assert.deepEqual(presentedKey({ authorization: `Basic ${b64(`demo:${KEY}`)}` }, ['authorization']), { kind: 'key', key: KEY, header: 'authorization', scheme: 'basic' });
  assert.deepEqual(presentedKey({ authorization: `Basic ${b64(`${KEY}:`)}` }, ['authorization']), { kind: 'key', key: KEY, header: 'authorization', scheme: 'basic' });
  assert.deepEqual(presentedKey({ authorization: `Basic ${b64(':')}` }, ['authorization']), { kind: 'malformed', header: 'authorization' });
  assert.deepEqual(presentedKey({ authorization: `Digest ${KEY}` }, ['authorization']), { kind: 'malformed', header: 'authorization' });
  assert.deepEqual(presentedKey({ 'x-api-key': [KEY, KEY] }, ['x-api-key']), { kind: 'malformed', header: 'x-api-key' });
  assert.deepEqual(presentedKey({ 'bastion-key': KEY }, ['authorization', 'bastion-key']), { kind: 'key', key: KEY, header: 'bastion-key', scheme: 'bare' });
  assert.deepEqual(presentedKey({}, ['authorization', 'bastion-key']), { kind: 'missing' });
});

test('keys of 16 and 512 characters are accepted, 15 and 513 are not', () => {
  const index = new KeyIndex();
  for (const k of ['a'.repeat(15), 'b'.repeat(16), 'c'.repeat(512), 'd'.repeat(513)]) index.add(sha256Hex(k), k.slice(0, 1));
  assert.equal(index.lookup('a'.repeat(15)), undefined);
  assert.equal(index.lookup('b'.repeat(16)), 'b');
  assert.equal(index.lookup('c'.repeat(512)), 'c');
  assert.equal(index.lookup('d'.repeat(513)), undefined);
});

test('x-api-key and Bastion-Key take the bare key; control characters are malformed', () => {
  assert.equal(presentedKey({ 'bastion-key': KEY }, ['bastion-key']).kind, 'key');
  assert.equal(presentedKey({ 'x-api-key': `${KEY} x` }, ['x-api-key']).kind, 'malformed');
});

test('KeyIndex: a key finds exactly its principal; two principals cannot share a key', () => {
  fc.assert(
    fc.property(fc.uniqueArray(fc.string({ minLength: 16, maxLength: 64 }), { minLength: 1, maxLength: 8 }), fc.string({ minLength: 16, maxLength: 64 }), (list, probe) => {
      const index = new KeyIndex();
      list.forEach((k, i) => index.add(sha256Hex(k), `p${i}`));
      list.forEach((k, i) => assert.equal(index.lookup(k), `p${i}`));
      assert.equal(index.lookup(probe), list.includes(probe) ? `p${list.indexOf(probe)}` : undefined);
    }),
  );
  const index = new KeyIndex();
  index.add(sha256Hex(KEY), 'a');
  index.add(sha256Hex(KEY), 'a');
  assert.equal(index.size, 1);
  assert.throws(() => index.add(sha256Hex(KEY), 'b'), /a and b share a key/);
});

test('KeyIndex.add: a digest that is not exactly 64 lowercase hex characters is refused with TypeError, naming the principal', () => {
  const good = sha256Hex(KEY);
  for (const bad of [good.toUpperCase(), good.slice(1), `${good}0`, `x${good}`, `${good}x`, `${good.slice(0, 32)} ${good.slice(33)}`, '']) {
    assert.throws(() => new KeyIndex().add(bad, 'ops'), (err: unknown) => err instanceof TypeError && /^the key digest of ops must be 64 lowercase hex/.test(err.message), JSON.stringify(bad));
  }
  const index = new KeyIndex();
  index.add(good, 'ops');
  assert.equal(index.lookup(KEY), 'ops');
});

test('authenticateAgentOrToken: one parse; a known key wins, any other Bearer value goes to the token check, its reason kept', async () => {
  const keys = new KeyIndex();
  keys.add(sha256Hex('agent-key-0123456789abcdef'), 'demo');
  const seen: string[] = [];
  const tokens = {
    verify: (t: string) => {
      seen.push(t);
      return Promise.resolve(t === 'good.token.value' ? ({ ok: true, agent: 'tok-agent', user: 'alice' } as const) : ({ ok: false, reason: 'oauth.audience' } as const));
    },
  };
  assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Bearer agent-key-0123456789abcdef' }, keys, tokens), { ok: true, agent: 'demo', tokenUser: null });
  assert.deepEqual(seen, [], 'an agent key is never sent to the token check');
  assert.deepEqual(await authenticateAgentOrToken({ authorization: 'bearer good.token.value' }, keys, tokens), { ok: true, agent: 'tok-agent', tokenUser: 'alice' });
  assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Bearer other.token' }, keys, tokens), { ok: false, reason: 'oauth.audience' });
  assert.deepEqual(await authenticateAgentOrToken({}, keys, tokens), { ok: false, reason: 'auth.missing' });
  assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Basic Zm9vOmJhcg==' }, keys, tokens), { ok: false, reason: 'auth.invalid' }, 'only Bearer values are tokens');
  assert.deepEqual(await authenticateAgentOrToken({ authorization: 'Bearer other.token' }, keys, undefined), { ok: false, reason: 'auth.invalid' }, 'without MCP authorization: keys only');
});
