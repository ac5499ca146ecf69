/**
 * The network door's forwarding stages (src/egress/forward-stages.ts), each on
 * its own, without sockets: every refusal asserted by reason, status and code
 * (the kernel's table, door `network`), the exfiltration flag and the secret
 * names it carries.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  askIdentity,
  connectMode,
  outboundDlp,
  readForwardBody,
  releasePlaceholders,
  requestParts,
  responseDecoder,
  responseHeaders,
  responseRedaction,
  swapReleased,
  type ReleaseDeps,
  type StageRefusal,
  type StageResult,
} from '../../src/egress/forward-stages.ts';
import { dlpScan } from '../../src/egress/dlp.ts';
import { NO_VALUES, REDACTED_VALUE, redactBytes } from '../../src/redact/index.ts';
import { Secret } from '../../src/util/secret.ts';

const PH = 'bst_ph_' + 'abcdefghijklmnopqrstuvwxyz234567';
const VALUE = 'ghp_' + 'R3alV4lue'.repeat(4);
/** A fine-grained GitHub token the detector finds with its hosts. */
const PAT = 'github_pat_11A9kQ2mZ7xR4vB8nL3pT6wY1c' + 'Hj5Ks8Df2Gq7Wl4Zx9Cv3Bn6Mm1Pr0TyE4uI';
const TARGET = { scheme: 'https', host: 'api.github.com', port: 443 };
const WHO = { agent: 'coder', user: null };
const LIMITS = { maxBodyBytes: 1024, bodyTimeoutMs: 1000 };

function refused<T>(r: StageResult<T>): StageRefusal {
  assert.equal(r.ok, false, 'the stage refuses');
  return r as StageRefusal;
}

function assertRefusal(r: StageRefusal, reason: string, status: number, code: string): void {
  assert.deepEqual([r.refusal.decision.effect, r.refusal.decision.reason, r.refusal.status, r.refusal.code], ['deny', reason, status, code]);
}

/** Release deps over one named secret `github` bound to api.github.com, header `authorization`, format `Bearer {}`. */
function deps(over: Partial<ReleaseDeps> = {}, config: { swapIn?: ('header' | 'query' | 'path' | 'body')[] } = {}): ReleaseDeps {
  return {
    resolve: async (ph) => (ph === PH ? { info: { id: 's1', name: 'github', hosts: ['api.github.com'], header: 'authorization', format: 'Bearer {}' }, value: new Secret(VALUE) } : undefined),
    granted: (name) => name === 'github',
    secretConfig: () => (config.swapIn ? { swapIn: config.swapIn } : undefined),
    ...over,
  };
}

// -- read body ---------------------------------------------------------------

test('read body: a bodiless request is not read; each reader outcome is its refusal', async () => {
  let skipped = false;
  const none = await readForwardBody({}, async () => assert.fail('read'), () => (skipped = true), LIMITS);
  assert.ok(none.ok && none.value.length === 0 && skipped);
  const withBody = { 'content-length': '5' };
  const cases = [
    ['too_large', 'body.too_large', 413, 'ERR_BODY_TOO_LARGE', true],
    ['timeout', 'body.timeout', 408, 'ERR_BODY_TIMEOUT', true],
  ] as const;
  for (const [outcome, reason, status, code, close] of cases) {
    const r = refused(await readForwardBody(withBody, async () => outcome, () => undefined, LIMITS));
    assertRefusal(r, reason, status, code);
    assert.equal(r.close, close);
  }
  const aborted = refused(await readForwardBody(withBody, async () => 'aborted', () => undefined, LIMITS));
  assert.equal(aborted.refusal.decision.reason, 'request.aborted');
  assert.equal(aborted.aborted, true, 'an aborted request is only recorded');
  const ok = await readForwardBody(withBody, async (max, ms) => (assert.deepEqual([max, ms], [1024, 1000]), Buffer.from('hello')), () => undefined, LIMITS);
  assert.ok(ok.ok && ok.value.toString() === 'hello');
});

test('read body: a compressed request body cannot be inspected (body.encoded, 415), identity and an empty coded body can', async () => {
  for (const enc of ['gzip', 'br', ' GZIP ', 'deflate, gzip']) {
    assertRefusal(refused(await readForwardBody({ 'content-length': '5', 'content-encoding': enc }, async () => gzipSync('x'), () => undefined, LIMITS)), 'body.encoded', 415, 'ERR_EGRESS_DENIED');
  }
  assert.ok((await readForwardBody({ 'content-length': '5', 'content-encoding': 'identity' }, async () => Buffer.from('hello'), () => undefined, LIMITS)).ok);
  assert.ok((await readForwardBody({ 'transfer-encoding': 'chunked', 'content-encoding': 'gzip' }, async () => Buffer.alloc(0), () => undefined, LIMITS)).ok);
});

// -- find and release placeholders --------------------------------------------

test('release: the placeholder as the whole authorization header is released formatted', async () => {
  const headers: [string, string][] = [['authorization', PH]];
  const url = new URL('https://api.github.com/user');
  const r = await releasePlaceholders(requestParts(headers, url, ''), WHO, TARGET, deps());
  assert.ok(r.ok);
  assert.equal(r.value.inserts[0]?.get(PH), `Bearer ${VALUE}`);
  assert.deepEqual([...r.value.named.values()].map((s) => s.info.name), ['github']);
  const out = swapReleased(headers, url, Buffer.alloc(0), r.value);
  assert.deepEqual(out.headers, [['authorization', `Bearer ${VALUE}`]]);
});

test('release: a placeholder in a location the secret is not declared for is release.location, an exfiltration naming the secret', async () => {
  for (const [headers, url, body] of [
    [[['x-other', PH]], 'https://api.github.com/', ''],
    [[], `https://api.github.com/?token=${PH}`, ''],
    [[], `https://api.github.com/${PH}`, ''],
    [[], 'https://api.github.com/', `{"token":"${PH}"}`],
  ] as const) {
    const r = refused(await releasePlaceholders(requestParts(headers as unknown as [string, string][], new URL(url), body), WHO, TARGET, deps()));
    assertRefusal(r, 'release.location', 403, 'ERR_EGRESS_PLACEHOLDER');
    assert.equal(r.exfiltration, true);
    assert.deepEqual(r.secrets, ['github']);
  }
});

test('release: a secret opted in to the query is swapped there, percent-encoded', async () => {
  const url = new URL(`https://api.github.com/search?q=${PH}`);
  const r = await releasePlaceholders(requestParts([], url, ''), WHO, TARGET, deps({}, { swapIn: ['query'] }));
  assert.ok(r.ok);
  assert.equal(swapReleased([], url, Buffer.alloc(0), r.value).path, `/search?q=${encodeURIComponent(VALUE)}`);
});

test('release: an unknown placeholder is placeholder.unknown; another host, another port scheme or an ungranted secret are release.*', async () => {
  const parts = requestParts([['authorization', PH]], new URL('https://api.github.com/'), '');
  const unknown = refused(await releasePlaceholders(parts, WHO, TARGET, deps({ resolve: async () => undefined })));
  assertRefusal(unknown, 'placeholder.unknown', 403, 'ERR_EGRESS_PLACEHOLDER');
  assert.equal(unknown.exfiltration, true);
  assertRefusal(refused(await releasePlaceholders(parts, WHO, { ...TARGET, host: 'evil.example' }, deps())), 'release.foreign_host', 403, 'ERR_EGRESS_PLACEHOLDER');
  assertRefusal(refused(await releasePlaceholders(parts, WHO, { ...TARGET, scheme: 'http', port: 80 }, deps())), 'release.insecure_scheme', 403, 'ERR_EGRESS_PLACEHOLDER');
  assertRefusal(refused(await releasePlaceholders(parts, WHO, TARGET, deps({ granted: () => false }))), 'release.not_granted', 403, 'ERR_EGRESS_PLACEHOLDER');
});

test('release: a store failure is vault.unavailable (503), not an exfiltration; a pasted token without a store too', async () => {
  const parts = requestParts([['authorization', PH]], new URL('https://api.github.com/'), '');
  const r = refused(
    await releasePlaceholders(parts, WHO, TARGET, deps({ resolve: async () => Promise.reject(new Error('store down')) })),
  );
  assertRefusal(r, 'vault.unavailable', 503, 'ERR_EGRESS_DENIED');
  assert.equal(r.exfiltration, false);
  const pastedParts = requestParts([['authorization', 'Bearer <<SECRET_abcdefghijkl>>']], new URL('https://api.github.com/'), '');
  assertRefusal(refused(await releasePlaceholders(pastedParts, WHO, TARGET, deps())), 'vault.unavailable', 503, 'ERR_EGRESS_DENIED');
});

test("release: a pasted token goes to its owner's hosts only after the end-user step; unknown tokens are placeholder.unknown", async () => {
  const token = 'abcdefghijkl';
  const parts = requestParts([['authorization', `Bearer <<SECRET_${token}>>`]], new URL('https://api.github.com/'), '');
  const owned = { secret: { id: 'p1', agent: 'coder', user: 'alice', hosts: ['api.github.com'] }, value: new Secret(VALUE) };
  const findPasted = async (t: string) => (t === token ? owned : undefined);
  const ok = await releasePlaceholders(parts, { agent: 'coder', user: 'alice' }, TARGET, deps({ findPasted }));
  assert.ok(ok.ok);
  assert.equal(ok.value.inserts[0]?.get(token), VALUE);
  const other = refused(await releasePlaceholders(parts, { agent: 'coder', user: 'bob' }, TARGET, deps({ findPasted })));
  assertRefusal(other, 'release.foreign_user', 403, 'ERR_EGRESS_PLACEHOLDER');
  assert.deepEqual(other.secrets, [`pasted:${token}`]);
  const unverified = refused(
    await releasePlaceholders(parts, { agent: 'coder', user: 'alice' }, TARGET, deps({ findPasted, verifyOwner: async () => ({ effect: 'deny', reason: 'user.unverified', rule: 'users.token' }) })),
  );
  assertRefusal(unverified, 'user.unverified', 401, 'ERR_USER_UNVERIFIED');
  assertRefusal(refused(await releasePlaceholders(parts, WHO, TARGET, deps({ findPasted: async () => undefined }))), 'placeholder.unknown', 403, 'ERR_EGRESS_PLACEHOLDER');
  // The end user is proven once per request, however many pasted tokens it carries (in several parts).
  let proofs = 0;
  const two = requestParts([['authorization', `Bearer <<SECRET_${token}>>`], ['x-again', `<<SECRET_${token}>>`]], new URL('https://api.github.com/'), '');
  const twice = await releasePlaceholders(two, { agent: 'coder', user: 'alice' }, TARGET, deps({ findPasted, verifyOwner: async () => void proofs++ }));
  assert.ok(twice.ok);
  assert.equal(proofs, 1);
});

// -- outbound DLP ------------------------------------------------------------

test('DLP: a credential headed elsewhere is dlp.credential (an exfiltration, the rule named); at its home it passes', () => {
  const r = refused(outboundDlp(['', '/', `token=${PAT}`], 'evil.example', dlpScan));
  assertRefusal(r, 'dlp.credential', 403, 'ERR_EGRESS_DLP');
  assert.equal(r.exfiltration, true);
  assert.match(r.refusal.decision.rule, /github/);
  assert.ok(outboundDlp(['', '/', `token=${PAT}`], 'api.github.com', dlpScan).ok);
  assertRefusal(refused(outboundDlp(['', `/?t=${PAT}`, ''], 'evil.example', dlpScan)), 'dlp.credential', 403, 'ERR_EGRESS_DLP');
  assert.ok(outboundDlp([`authorization: ${PH}`, '/', ''], 'evil.example', dlpScan).ok, 'a placeholder is no credential');
});

test('DLP: a detector that throws fails closed (dlp.error, 503)', () => {
  const r = refused(
    outboundDlp(['x'], 'api.github.com', () => {
      throw new Error('detector broke');
    }),
  );
  assertRefusal(r, 'dlp.error', 503, 'ERR_EGRESS_DLP');
  assert.equal(r.exfiltration, false);
});

// -- the response ------------------------------------------------------------

test('response: redacted of swapped and live values; identity asked for when redacting', () => {
  assert.equal(responseRedaction({ inserts: [], named: new Map(), pasted: new Map(), tokens: new Map() }, []), NO_VALUES);
  const live = [new Secret(VALUE)];
  const set = responseRedaction({ inserts: [], named: new Map(), pasted: new Map(), tokens: new Map() }, live);
  assert.ok(set.forms.length > 0);
  assert.equal(responseRedaction({ inserts: [], named: new Map(), pasted: new Map(), tokens: new Map() }, live), set, 'the live values of one vault reading are compiled once');
  // A swapped value the host's live set does not hold (a pasted secret) is redacted too.
  const pastedValue = new Secret('pasted-value-0123456789');
  const withPasted = responseRedaction({ inserts: [], named: new Map(), pasted: new Map([['t', { value: pastedValue }]]), tokens: new Map() } as unknown as Parameters<typeof responseRedaction>[0], live);
  assert.notEqual(withPasted, set);
  assert.equal(redactBytes(Buffer.from(`a ${VALUE} b pasted-value-0123456789 c`), withPasted).out.toString(), `a ${REDACTED_VALUE} b ${REDACTED_VALUE} c`);
  assert.deepEqual(askIdentity([['accept-encoding', 'gzip, br'], ['x', '1']]), [['x', '1'], ['accept-encoding', 'identity']]);
  assert.deepEqual(askIdentity([]), [['accept-encoding', 'identity']], 'no Accept-Encoding means any coding: identity is asked for');
  const headers = responseHeaders({ 'x-echo': `v=${VALUE}`, 'content-length': '10', connection: 'close', 'content-encoding': 'gzip' }, { redaction: set, decoded: true });
  assert.ok(!JSON.stringify(headers).includes(VALUE), 'header values are redacted');
  assert.ok(!headers.some(([k]) => k === 'content-length' || k === 'connection' || k === 'content-encoding'));
  assert.deepEqual(responseHeaders({ 'content-length': '10' }, { redaction: undefined, decoded: false }), [['content-length', '10']]);
});

test('response: an unknown content coding when redacting is upstream.unknown_encoding (502); known codings are decoded', async () => {
  assertRefusal(refused(responseDecoder('zstd', true)), 'upstream.unknown_encoding', 502, 'ERR_EGRESS_UPSTREAM');
  assertRefusal(refused(responseDecoder('gzip, br', true)), 'upstream.unknown_encoding', 502, 'ERR_EGRESS_UPSTREAM');
  const notRedacting = responseDecoder('zstd', false);
  assert.ok(notRedacting.ok && notRedacting.value === undefined, 'not redacting: passed as it comes');
  const id = responseDecoder(undefined, true);
  assert.ok(id.ok && id.value === undefined);
  const gz = responseDecoder(' GZIP ', true);
  assert.ok(gz.ok && gz.value !== undefined);
  const chunks: Buffer[] = [];
  for await (const c of Readable.from([gzipSync(`echo ${VALUE}`)]).pipe(gz.value)) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), `echo ${VALUE}`);
});

// -- CONNECT -----------------------------------------------------------------

test('CONNECT: tunnel unless a rule or a secret asks for interception; no CA is egress.no_ca (503), a store failure vault.unavailable (503)', async () => {
  const never = async (): Promise<boolean> => assert.fail('the store is not asked when a rule requires interception');
  const none = async (): Promise<boolean> => false;
  const some = async (): Promise<boolean> => true;
  const broken = async (): Promise<boolean> => Promise.reject(new Error('store down'));
  assert.deepEqual(await connectMode({ required: false, hasSecret: none, hasIssuer: true }), { ok: true, value: 'tunnel' });
  assert.deepEqual(await connectMode({ required: false, hasSecret: some, hasIssuer: true }), { ok: true, value: 'intercept' });
  assert.deepEqual(await connectMode({ required: true, hasSecret: never, hasIssuer: true }), { ok: true, value: 'intercept' });
  assertRefusal(refused(await connectMode({ required: true, hasSecret: never, hasIssuer: false })), 'egress.no_ca', 503, 'ERR_CA');
  assertRefusal(refused(await connectMode({ required: false, hasSecret: some, hasIssuer: false })), 'egress.no_ca', 503, 'ERR_CA');
  assertRefusal(refused(await connectMode({ required: false, hasSecret: broken, hasIssuer: true })), 'vault.unavailable', 503, 'ERR_EGRESS_DENIED');
});
