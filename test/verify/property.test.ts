/**
 * Properties: for any method, path, query, body and context, a request signed
 * with createSignature verifies; flipping any byte of the body fails with
 * digest_mismatch; and garbage in any signature-related header only ever
 * produces a VerifyError (no other exception escapes the parsers).
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import {
  CONTEXT_HEADER,
  contentDigest,
  createSignature,
  MemoryReplayStore,
  serializeContext,
  verifyParts,
  VerifyError,
  type SignedContext,
  type VerifyOptions,
} from '../../src/verify/index.ts';
import { freshNonce, generateTestKey, NOW_MS, NOW_S, ORIGIN, signedRequest, type TestKey } from './helpers.ts';

const COMPONENTS = ['@method', '@target-uri', '@authority', '@path', '@query', 'content-digest', CONTEXT_HEADER];

const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 40 });
const contextArb: fc.Arbitrary<SignedContext> = fc.record(
  {
    agent: printable,
    user: printable,
    conversation: printable,
    platform: printable,
    request: printable,
    tool: printable,
    time: fc.integer({ min: 0, max: 4_000_000_000 }),
  },
  { requiredKeys: ['agent', 'platform', 'request', 'time'] },
);
const methodArb = fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'PROPFIND');
const anyText = fc.string({ unit: 'binary', maxLength: 12 });
const requestArb = fc.record({
  method: methodArb,
  host: fc.constantFrom('tools.example.com', '127.0.0.1:8791', 'xn--bcher-kva.example:443', '[::1]:9000'),
  segments: fc.array(anyText, { maxLength: 4 }),
  query: fc.array(fc.tuple(anyText, anyText), { maxLength: 4 }),
  body: fc.uint8Array({ maxLength: 256 }),
  context: contextArb,
});

let key: TestKey;
let opts: VerifyOptions;
before(async () => {
  key = await generateTestKey();
  opts = { keys: [key.jwk], origin: ORIGIN, now: () => NOW_MS, replayStore: new MemoryReplayStore({ now: () => NOW_MS }), requiredComponents: COMPONENTS };
});

describe('sign then verify', () => {
  test('any request verifies, and any flipped body byte is digest_mismatch', async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, fc.nat(), fc.integer({ min: 1, max: 255 }), async (r, at, xor) => {
        const url = new URL(`https://${r.host}`);
        url.pathname = `/${r.segments.map(encodeURIComponent).join('/')}`;
        for (const [k, v] of r.query) url.searchParams.append(k, v);
        const headers = { [CONTEXT_HEADER]: serializeContext(r.context), 'content-digest': await contentDigest(r.body) };
        const req = { method: r.method, url: url.href, headers };
        const created = Math.floor(NOW_S);
        const sig = await createSignature(req, {
          label: 'bastion',
          components: COMPONENTS,
          params: { created, expires: created + 30, nonce: freshNonce(), keyid: key.kid, alg: 'ed25519', tag: 'bastion' },
          sign: key.sign,
        });
        const signed = { ...req, headers: { ...headers, ...sig } };
        const here = { ...opts, origin: url.origin };
        if (r.body.length > 0) {
          const flipped = r.body.slice();
          flipped[at % flipped.length]! ^= xor;
          await assert.rejects(verifyParts({ ...signed, body: flipped }, here), (e) => e instanceof VerifyError && e.code === 'digest_mismatch');
        }
        const v = await verifyParts({ ...signed, body: r.body }, here);
        assert.deepEqual(v.context, { ...r.context });
      }),
      { numRuns: 200 },
    );
  });
});

describe('fuzz: only VerifyError escapes', () => {
  test('garbage Signature-Input, Signature, Content-Digest and Bastion-Context', async () => {
    const template = await signedRequest(key);
    const fields = ['signature-input', 'signature', 'content-digest', CONTEXT_HEADER] as const;
    // Mutations of the real value (insert/delete/replace a few chars) and arbitrary strings.
    const mutated = fc
      .tuple(fc.constantFrom(...fields), fc.nat(), fc.constantFrom('insert', 'delete', 'replace'), fc.string({ unit: 'binary', minLength: 1, maxLength: 3 }))
      .map(([field, at, op, text]) => ({ field, edit: { at, op, text } }));
    const arbitrary = fc.tuple(fc.constantFrom(...fields), fc.string({ unit: 'binary', maxLength: 80 })).map(([field, text]) => ({ field, text }));
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated, arbitrary), async (m) => {
        const field = m.field;
        const orig = template.headers[field] as string;
        let value: string;
        if ('text' in m) value = m.text;
        else {
          const { at: rawAt, op, text } = m.edit;
          const at = rawAt % (orig.length + 1);
          value = op === 'insert' ? orig.slice(0, at) + text + orig.slice(at) : op === 'delete' ? orig.slice(0, at) + orig.slice(at + 1) : orig.slice(0, at) + text + orig.slice(at + text.length);
        }
        if (value === orig) return;
        const req = { ...template, headers: { ...template.headers, [field]: value } };
        try {
          await verifyParts(req, { ...opts, requiredComponents: undefined, replayStore: new MemoryReplayStore() });
        } catch (err) {
          assert.ok(err instanceof VerifyError, `unexpected ${String(err)}`);
          return;
        }
        // A mutation that still verifies must leave the signed meaning unchanged (e.g. whitespace in the dictionary).
        assert.ok(field !== CONTEXT_HEADER || value.trim() !== '', 'accepted an empty context');
      }),
      { numRuns: 500 },
    );
  });
});
