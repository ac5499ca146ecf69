/**
 * `RequestBody` (src/egress/forward-stages.ts): the network door scans a body's
 * bytes and makes its latin1 text only when a scan needs it. The release and
 * DLP stages must decide exactly as they do on the text: same releases, same
 * refusals, same swapped body.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { outboundDlp, releasePlaceholders, RequestBody, requestParts, swapReleased, type DlpScan, type ReleaseDeps } from '../../src/egress/forward-stages.ts';
import { dlpScan } from '../../src/egress/dlp.ts';
import { Secret } from '../../src/util/secret.ts';

const PH = 'bst_ph_' + 'abcdefghijklmnopqrstuvwxyz234567';
const OTHER_PH = 'bst_ph_' + 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz';
const VALUE = 'ghp_' + 'R3alV4lue'.repeat(4);
/** A fine-grained GitHub token the detector finds with its hosts. */
const PAT = 'github_pat_11A9kQ2mZ7xR4vB8nL3pT6wY1c' + 'Hj5Ks8Df2Gq7Wl4Zx9Cv3Bn6Mm1Pr0TyE4uI';
const TOKEN = 'abcdefghijkl';
const TARGET = { scheme: 'https', host: 'api.github.com', port: 443 };
const URL_ = new URL('https://api.github.com/upload');

function deps(): ReleaseDeps {
  return {
    resolve: async (ph) => (ph === PH ? { info: { id: 's1', name: 'github', hosts: ['api.github.com'] }, value: new Secret(VALUE) } : undefined),
    findPasted: async (token) => (token === TOKEN ? { secret: { id: 'p1', agent: 'coder', user: 'alice', hosts: ['api.github.com'] }, value: new Secret('pasted-value-1') } : undefined),
    granted: (name) => name === 'github',
    secretConfig: () => ({ swapIn: ['header', 'body'] }),
  };
}

/** A DLP scan that counts how often the body's text is made. */
function countingScan(): { scan: DlpScan; made: () => number } {
  let made = 0;
  const scan: DlpScan = Object.assign((text: string) => dlpScan(text), {
    latin1: (bytes: Uint8Array, text: () => string) =>
      dlpScan.latin1(bytes, () => {
        made++;
        return text();
      }),
  });
  return { scan, made: () => made };
}

test('request body: the text is latin1 of the bytes, made once; the flags name the placeholder literals', () => {
  const b = new RequestBody(Buffer.from([0x61, 0xe9, 0x00, 0xff]));
  assert.equal(b.text, 'a\u00e9\u0000\u00ff');
  assert.equal(b.text, b.text);
  const flags = (s: string) => {
    const r = new RequestBody(Buffer.from(s, 'latin1'));
    return [r.maskable, r.mayHoldPlaceholders];
  };
  assert.deepEqual(flags('plain body'), [false, false]);
  assert.deepEqual(flags('x bst_ph_ y'), [true, true]);
  assert.deepEqual(flags('<<SECRET_'), [true, true]);
  for (const enc of ['%3C%3C', '%3c%3c', '%3C%3c', '%3c%3C']) assert.deepEqual(flags(`q=${enc}SECRET_`), [true, true], enc);
  assert.deepEqual(flags('<<OAUTH_acme>>'), [false, true], 'an OAuth placeholder is released, not masked');
  assert.deepEqual(flags('bst-ph <SECRET_ %3C%3 <OAUTH_'), [false, false]);
});

test('request body: DLP without placeholders scans the bytes; the text is made only for a keyword', () => {
  const { scan, made } = countingScan();
  assert.ok(outboundDlp(['', '/', new RequestBody(Buffer.alloc(1 << 20, 0x78))], 'evil.example', scan).ok);
  assert.equal(made(), 0, 'a body without keywords is never copied into a string');
  const leak = new RequestBody(Buffer.from(`{"data":"${'x'.repeat(5000)}","t":"${PAT}"}`, 'latin1'));
  const r = outboundDlp(['', '/', leak], 'evil.example', scan);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.refusal.decision.reason, 'dlp.credential');
  assert.equal(made(), 1);
  assert.ok(outboundDlp(['', '/', leak], 'api.github.com', scan).ok, 'the credential may go to its own host');
});

test('request body: a scan without `latin1` (or one that throws) still decides on the text, fail closed', () => {
  const plain: DlpScan = (text) => dlpScan(text);
  assert.equal(outboundDlp(['', '/', new RequestBody(Buffer.from(`t=${PAT}`))], 'evil.example', plain).ok, false);
  const throwing: DlpScan = Object.assign(() => [], {
    latin1: () => {
      throw new Error('detector failed');
    },
  });
  const r = outboundDlp(['', '/', new RequestBody(Buffer.from('body'))], 'evil.example', throwing);
  assert.equal(!r.ok && r.refusal.decision.reason, 'dlp.error');
});

/** Bodies of placeholders (known, unknown, pasted raw and encoded in any case, OAuth), credentials, keywords and arbitrary bytes. */
const bodies = fc
  .array(
    fc.oneof(
      fc.constantFrom(PH, OTHER_PH, ` ${PH} `, `<<SECRET_${TOKEN}>>`, `%3c%3CSECRET_${TOKEN}%3E%3e`, `%3C%3Csecret_${TOKEN.toUpperCase()}%3E%3E`, '<<OAUTH_acme>>', PAT, `token=${PAT}`, 'password', 'bst_ph_', '<<SECRET_', '%3C%3C', ' ', '"', '\n'),
      fc.uint8Array({ maxLength: 24 }).map((u) => Buffer.from(u).toString('latin1')),
    ),
    { maxLength: 8 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

test('request body: release, DLP and swap decide as on the latin1 text (property)', async () => {
  await fc.assert(
    fc.asyncProperty(bodies, fc.constantFrom('api.github.com', 'evil.example'), async (bytes, host) => {
      const target = { ...TARGET, host };
      const who = { agent: 'coder', user: 'alice' };
      const headers: [string, string][] = [['authorization', PH]];
      const asText = await releasePlaceholders(requestParts(headers, URL_, bytes.toString('latin1')), who, target, deps());
      const body = new RequestBody(bytes);
      const asBody = await releasePlaceholders(requestParts(headers, URL_, body), who, target, deps());
      assert.deepEqual(asBody, asText);
      const texts = ['authorization: x', '/upload'];
      assert.deepEqual(outboundDlp([...texts, body], host, dlpScan), outboundDlp([...texts, bytes.toString('latin1')], host, dlpScan));
      if (asText.ok && asBody.ok) assert.deepEqual(swapReleased(headers, URL_, body, asBody.value), swapReleased(headers, URL_, bytes, asText.value));
    }),
    { numRuns: 300 },
  );
});
