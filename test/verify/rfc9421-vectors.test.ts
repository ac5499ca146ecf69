/**
 * RFC 9421 Appendix B.2.6 ("Signing a Request Using ed25519") with the test key
 * of Appendix B.1.4, and the RFC 9530 §2 / RFC 9421 B.2 Content-Digest values:
 * public test data, typed in from the RFCs (line wrapping of RFC 8792 undone).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { contentDigest, createSignature, MemoryReplayStore, signatureBase, VerifyError, verifyMessageSignature, verifyParts } from '../../src/verify/index.ts';

/** RFC 9421 B.1.4 test-key-ed25519, as a JWK (public `x`, private `d`). */
const TEST_KEY_ED25519 = {
  kty: 'OKP',
  crv: 'Ed25519',
  kid: 'test-key-ed25519',
  d: 'n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU',
  x: 'JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs',
} as const;
const PUBLIC_JWK = { kty: 'OKP', crv: 'Ed25519', kid: TEST_KEY_ED25519.kid, x: TEST_KEY_ED25519.x };

/** RFC 9421 B.2 test-request. */
const BODY = '{"hello": "world"}';
const REQUEST = {
  method: 'POST',
  url: 'https://example.com/foo?param=Value&Pet=dog',
  headers: {
    Host: 'example.com',
    Date: 'Tue, 20 Apr 2021 02:07:55 GMT',
    'Content-Type': 'application/json',
    'Content-Digest': 'sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:',
    'Content-Length': '18',
  },
};

const B26_COMPONENTS = ['date', '@method', '@path', '@authority', 'content-type', 'content-length'];
const B26_CREATED = 1618884473;
const B26_BASE = [
  '"date": Tue, 20 Apr 2021 02:07:55 GMT',
  '"@method": POST',
  '"@path": /foo',
  '"@authority": example.com',
  '"content-type": application/json',
  '"content-length": 18',
  '"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"',
].join('\n');
const B26_SIGNATURE_INPUT =
  'sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';
const B26_SIGNATURE = 'sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw==:';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

const signedB26 = { ...REQUEST, headers: { ...REQUEST.headers, 'Signature-Input': B26_SIGNATURE_INPUT, Signature: B26_SIGNATURE }, body: enc(BODY) };
const b26Options = { keys: [PUBLIC_JWK], origin: 'https://example.com', requiredComponents: B26_COMPONENTS, maxAgeS: 10 * 365 * 24 * 3600, now: () => (B26_CREATED + 10) * 1000 };

describe('RFC 9421 B.2.6: ed25519 over test-request', () => {
  test('signatureBase reproduces the RFC signature base exactly', () => {
    const { base, signatureParams } = signatureBase(REQUEST, B26_COMPONENTS, { created: B26_CREATED, keyid: 'test-key-ed25519' });
    assert.equal(base, B26_BASE);
    assert.equal(`sig-b26=${signatureParams}`, B26_SIGNATURE_INPUT);
  });

  test('createSignature with the test private key gives the RFC signature bytes (Ed25519 is deterministic)', async () => {
    const priv = await crypto.subtle.importKey('jwk', TEST_KEY_ED25519, { name: 'Ed25519' }, false, ['sign']);
    const headers = await createSignature(REQUEST, {
      label: 'sig-b26',
      components: B26_COMPONENTS,
      params: { created: B26_CREATED, keyid: 'test-key-ed25519' },
      sign: async (b) => new Uint8Array(await crypto.subtle.sign({ name: 'Ed25519' }, priv, b as Uint8Array<ArrayBuffer>)),
    });
    assert.deepEqual(headers, { 'signature-input': B26_SIGNATURE_INPUT, signature: B26_SIGNATURE });
  });

  test('the RFC signature verifies with the public test key', async () => {
    const v = await verifyMessageSignature(signedB26, b26Options);
    assert.equal(v.keyid, 'test-key-ed25519');
    assert.equal(v.label, 'sig-b26');
    assert.equal(v.created, B26_CREATED);
    assert.deepEqual(v.components, B26_COMPONENTS);
  });

  test('one changed bit of a covered header fails bad_signature', async () => {
    const tampered = { ...signedB26, headers: { ...signedB26.headers, Date: 'Tue, 20 Apr 2021 02:07:56 GMT' } };
    await assert.rejects(verifyMessageSignature(tampered, b26Options), (e) => e instanceof VerifyError && e.code === 'bad_signature');
  });

  test('verifyParts refuses it: it covers neither bastion-context nor a nonce (missing_component)', async () => {
    await assert.rejects(verifyParts(signedB26, { ...b26Options, replayStore: new MemoryReplayStore() }), (e) => e instanceof VerifyError && e.code === 'missing_component');
  });

  test('the default required components refuse it (no @target-uri)', async () => {
    const { requiredComponents: _, ...rest } = b26Options;
    await assert.rejects(verifyMessageSignature(signedB26, rest), (e) => e instanceof VerifyError && e.code === 'missing_component');
  });
});

describe('RFC 9530 Content-Digest', () => {
  test('sha-256 of {"hello": "world"} (RFC 9530 §2 example)', async () => {
    assert.equal(await contentDigest(enc(BODY)), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  });
});

/** The component lines of the signature base (the @signature-params line dropped). */
function componentLines(req: Parameters<typeof signatureBase>[0], components: string[]): string[] {
  return signatureBase(req, components, { created: 1, keyid: 'k' }).base.split('\n').slice(0, -1);
}

describe('RFC 9421 §2.1 and §2.2 component examples', () => {
  test('§2.1 HTTP fields: whitespace trimmed, obs-fold replaced, field lines joined', () => {
    const req = {
      method: 'GET',
      url: 'https://www.example.com/',
      headers: {
        Host: 'www.example.com',
        Date: 'Tue, 20 Apr 2021 02:07:56 GMT',
        'X-OWS-Header': '   Leading and trailing whitespace.   ',
        'X-Obs-Fold-Header': 'Obsolete\r\n    line folding.',
        'Cache-Control': ['max-age=60', '   must-revalidate'],
        'Example-Dict': ' a=1,    b=2;x=1;y=2,   c=(a   b   c)',
      },
    };
    assert.deepEqual(componentLines(req, ['host', 'date', 'x-ows-header', 'x-obs-fold-header', 'cache-control', 'example-dict', 'example-dict;sf']), [
      '"host": www.example.com',
      '"date": Tue, 20 Apr 2021 02:07:56 GMT',
      '"x-ows-header": Leading and trailing whitespace.',
      '"x-obs-fold-header": Obsolete line folding.',
      '"cache-control": max-age=60, must-revalidate',
      '"example-dict": a=1,    b=2;x=1;y=2,   c=(a   b   c)',
      '"example-dict";sf: a=1, b=2;x=1;y=2, c=(a b c)',
    ]);
  });

  test('§2.1.2 dictionary members (key) and §2.1.3 byte sequences (bs)', () => {
    const req = {
      method: 'GET',
      url: 'https://www.example.com/',
      headers: { 'Example-Dict': ' a=1, b=2;x=1;y=2, c=(a   b    c), d', 'Example-Header': ['value, with, lots', 'of, commas'] },
    };
    assert.deepEqual(
      componentLines(req, ['"example-dict";key="a"', '"example-dict";key="d"', '"example-dict";key="b"', '"example-dict";key="c"', 'example-header', 'example-header;bs']),
      [
        '"example-dict";key="a": 1',
        '"example-dict";key="d": ?1',
        '"example-dict";key="b": 2;x=1;y=2',
        '"example-dict";key="c": (a b c)',
        '"example-header": value, with, lots, of, commas',
        '"example-header";bs: :dmFsdWUsIHdpdGgsIGxvdHM=:, :b2YsIGNvbW1hcw==:',
      ],
    );
    assert.throws(() => componentLines(req, ['"example-dict";key="zz"']), (e) => e instanceof VerifyError && e.code === 'missing_component');
  });

  test('§2.2.1-§2.2.7 derived components', () => {
    const req = { method: 'POST', url: 'https://www.example.com/path?param=value', headers: {} };
    assert.deepEqual(componentLines(req, ['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query']), [
      '"@method": POST',
      '"@target-uri": https://www.example.com/path?param=value',
      '"@authority": www.example.com',
      '"@scheme": https',
      '"@request-target": /path?param=value',
      '"@path": /path',
      '"@query": ?param=value',
    ]);
    const q = (url: string): string[] => componentLines({ method: 'GET', url, headers: {} }, ['@query']);
    assert.deepEqual(q('https://www.example.com/path?param=value&foo=bar&baz=bat%2Dman'), ['"@query": ?param=value&foo=bar&baz=bat%2Dman']);
    assert.deepEqual(q('https://www.example.com/path?queryString'), ['"@query": ?queryString']);
    assert.deepEqual(q('https://www.example.com/path'), ['"@query": ?']);
  });

  test('§2.2.8 query parameters, re-encoded', () => {
    const a = { method: 'GET', url: 'https://www.example.com/path?param=value&foo=bar&baz=batman&qux=', headers: {} };
    assert.deepEqual(componentLines(a, ['@query-param;name="baz"', '@query-param;name="qux"', '"@query-param";name="param"']), [
      '"@query-param";name="baz": batman',
      '"@query-param";name="qux": ',
      '"@query-param";name="param": value',
    ]);
    const b = {
      method: 'GET',
      url: 'https://www.example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something',
      headers: {},
    };
    assert.deepEqual(componentLines(b, ['@query-param;name="var"', '@query-param;name="bar"', '@query-param;name="fa%C3%A7ade%22%3A%20"']), [
      '"@query-param";name="var": this%20is%20a%20big%0Amultiline%20value',
      '"@query-param";name="bar": with%20plus%20whitespace',
      '"@query-param";name="fa%C3%A7ade%22%3A%20": something',
    ]);
    assert.throws(() => componentLines(a, ['@query-param;name="nope"']), (e) => e instanceof VerifyError && e.code === 'missing_component');
  });

  test('unsupported or repeated components are malformed', () => {
    const req = { method: 'GET', url: 'https://www.example.com/', headers: { a: '1' } };
    for (const c of [['@status'], ['@method;req'], ['a;tr'], ['a', 'a'], ['a;sf'], ['@query-param']]) {
      assert.throws(() => componentLines(req, c), (e) => e instanceof VerifyError && e.code === 'malformed', c.join(','));
    }
  });
});
