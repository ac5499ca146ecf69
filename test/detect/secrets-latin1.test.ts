/**
 * `findSecretsInLatin1` (src/detect/secrets.ts): the detector over bytes read as
 * latin1 finds exactly what `findSecrets` finds in the latin1 text, makes that
 * text only when a keyword occurs, and stays linear on adversarial bytes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { SECRET_RULE_TABLE } from '../../src/detect/secret-rules.ts';
import { findSecrets, findSecretsInLatin1 } from '../../src/detect/secrets.ts';
import { assertLinear } from '../helpers/complexity.ts';
import { prng } from '../helpers/prng.ts';

// Credential-shaped strings are assembled at run time from a seeded generator.
const rnd = prng(7);
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const pick = (alphabet: string, n: number): string => Array.from({ length: n }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join('');
const CREDENTIALS = [
  ['gh', 'p_', pick(ALNUM, 36)].join(''),
  ['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join(''),
  ['xo', 'xb-', pick('0123456789', 12), '-', pick('0123456789', 13), '-', pick(ALNUM, 24)].join(''),
  `password = "${pick(ALNUM, 20)}9"`,
  `Authorization: Bearer ${pick(ALNUM, 40)}`,
  ['-----BEGIN ', 'PRIVATE KEY-----\n', pick(ALNUM, 64), '\n', pick(ALNUM, 64), '\n-----END PRIVATE KEY-----'].join(''),
  [b64url('{"alg":"HS256","typ":"JWT"}'), b64url(`{"sub":"${pick(ALNUM, 12)}","iat":1700000000}`), pick(ALNUM, 43)].join('.'),
];
const KEYWORDS = [...new Set(SECRET_RULE_TABLE.flatMap((r) => r.keywords))];

const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** Bytes made of credentials, rule keywords (any case), arbitrary bytes (0x00-0xff) and ASCII. */
const bodies = fc
  .array(
    fc.oneof(
      fc.constantFrom(...CREDENTIALS).map((s) => Buffer.from(s, 'latin1')),
      fc.tuple(fc.constantFrom(...KEYWORDS), fc.boolean()).map(([k, up]) => Buffer.from(up ? k.toUpperCase() : k, 'latin1')),
      fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      fc.string({ maxLength: 40 }).map((s) => Buffer.from(s, 'latin1')),
    ),
    { maxLength: 12 },
  )
  .map((parts) => Buffer.concat(parts));

describe('findSecretsInLatin1', () => {
  test('finds what findSecrets finds in the latin1 text (property, with and without a text provider)', () => {
    fc.assert(
      fc.property(bodies, fc.nat({ max: 7 }), (body, offset) => {
        // A view into a larger buffer: byteOffset must be honoured.
        const backing = Buffer.concat([Buffer.alloc(offset, 0x41), body]);
        const view = backing.subarray(offset);
        const expected = findSecrets(latin1(view));
        assert.deepEqual(findSecretsInLatin1(view), expected);
        assert.deepEqual(findSecretsInLatin1(view, () => latin1(view)), expected);
      }),
      { numRuns: 400 },
    );
  });

  test('every sample credential is found at the start, in the middle and at the end of a large body', () => {
    const filler = Buffer.alloc(100_000, 0x78);
    for (const c of CREDENTIALS) {
      const bytes = Buffer.from(c, 'latin1');
      for (const body of [Buffer.concat([bytes, Buffer.from('\n'), filler]), Buffer.concat([filler, Buffer.from(' '), bytes, Buffer.from(' '), filler]), Buffer.concat([filler, Buffer.from('\n'), bytes])]) {
        const found = findSecretsInLatin1(body);
        assert.ok(found.length > 0, `found in a body: ${c.slice(0, 6)}…`);
        assert.deepEqual(found, findSecrets(latin1(body)));
      }
    }
  });

  test('the text is made only when a keyword occurs, and once', () => {
    let made = 0;
    const provide = (b: Buffer) => () => (made++, latin1(b));
    const plain = Buffer.alloc(1 << 16, 0x78);
    assert.deepEqual(findSecretsInLatin1(plain, provide(plain)), []);
    const binary = Buffer.from(Array.from({ length: 4096 }, (_, i) => 128 + (i % 128)));
    assert.deepEqual(findSecretsInLatin1(binary, provide(binary)), []);
    assert.equal(made, 0, 'no keyword: no text');
    const withKeyword = Buffer.from(`${'x'.repeat(1000)} password and token ${'x'.repeat(1000)}`, 'latin1');
    findSecretsInLatin1(withKeyword, provide(withKeyword));
    assert.equal(made, 1);
  });

  test('bad input is a TypeError', () => {
    assert.throws(() => findSecretsInLatin1('text' as unknown as Uint8Array), TypeError);
    const b = Buffer.from('token=abc');
    assert.throws(() => findSecretsInLatin1(b, () => 'token'), TypeError, 'a text of another length');
  });

  test('complexity: linear on adversarial bytes', () => {
    const N = 40_000;
    const fill = (unit: string, n: number) => Buffer.from(unit.repeat(Math.ceil(n / unit.length)).slice(0, n), 'latin1');
    const cases: Record<string, (n: number) => Buffer> = {
      'plain letters': (n) => Buffer.alloc(n, 0x61),
      'keyword repeated': (n) => fill('token=', n),
      'prefix repeated': (n) => fill('ghp_', n),
      'pem BEGIN repeated': (n) => fill('-----BEGIN ', n),
      'high bytes': (n) => Buffer.alloc(n, 0xe9),
    };
    for (const [name, make] of Object.entries(cases)) {
      const inputs = new Map([
        ['small', make(N)],
        ['large', make(4 * N)],
      ]);
      assertLinear(name, (k) => findSecretsInLatin1(inputs.get(k) as Buffer), 'small', 'large');
    }
  });
});
