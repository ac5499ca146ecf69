/**
 * The encoded forms of a known value (src/redact/forms.ts) against a fixed
 * vector file (test/redact/form-vectors.json, owned data) and an independent
 * oracle: for each alignment, the base64 characters that stay the same
 * whatever bytes surround the value, found by encoding it between all-zero and
 * all-one neighbours with node's Buffer and comparing (no bit arithmetic).
 *
 * Regenerate the vector file (after a deliberate change of the forms) with
 * `BASTION_WRITE_VECTORS=1 npm test -- test/redact/forms.test.ts`.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { ALIGNMENTS, base64Forms, encodedForms, literalForms, MIN_ENCODED_VALUE_BYTES } from '../../src/redact/forms.ts';

const VECTORS = new URL('./form-vectors.json', import.meta.url);

/** Sample values (none a real credential): lengths ≡ 0, 1, 2 mod 3, ASCII and multi-byte, characters that base64 and the escapes treat specially, and one under the floor. */
const VALUES = [
  'sk-test-0123456789abcdef',
  'sk-test-0123456789abcdefg',
  'sk-test-0123456789abcdefgh',
  'pässwörd-ünïcode-✓-😀',
  'a+b/c=d?e&f%g"h\\i<j>k\'l',
  '\u00ff\u00fe\u00fd\u00fc\u00fb\u00fa\u00f9\u00f8\u00f7',
  '12345678',
  'short',
];

/**
 * The oracle: the characters of base64(prefix ‖ value ‖ suffix) that do not
 * change when every bit of the prefix (a bytes) and suffix (3 bytes) flips:
 * exactly those determined by the value alone.
 */
function oracleCore(value: Buffer, a: number, alphabet: 'base64' | 'base64url'): string {
  const enc = (fill: number, suffixFill: number): string => Buffer.concat([Buffer.alloc(a, fill), value, Buffer.alloc(3, suffixFill)]).toString(alphabet);
  const variants = [enc(0, 0), enc(0xff, 0), enc(0, 0xff), enc(0xff, 0xff), enc(0x55, 0xaa), enc(0xaa, 0x55)];
  const base = variants[0] as string;
  let first = -1;
  let last = -1;
  for (let i = 0; i < base.length; i++) {
    if (variants.every((v) => v[i] === base[i])) {
      if (first < 0) first = i;
      last = i;
    } else if (first >= 0) break;
  }
  return first < 0 ? '' : base.slice(first, last + 1);
}

interface Vector {
  readonly value: string;
  readonly forms: readonly { kind: string; alignment?: number; text: string }[];
}

function current(): Vector[] {
  return VALUES.map((value) => ({
    value,
    forms: encodedForms(value).map((f) => ({ kind: f.kind, ...(f.alignment === undefined ? {} : { alignment: f.alignment }), text: f.kind === 'raw' ? value : f.bytes.toString('latin1') })),
  }));
}

describe('encoded forms', () => {
  test('match the fixed vector file', () => {
    if (process.env.BASTION_WRITE_VECTORS === '1') writeFileSync(VECTORS, JSON.stringify(current(), null, 1) + '\n');
    const stored = JSON.parse(readFileSync(VECTORS, 'utf8')) as Vector[];
    assert.deepEqual(current(), stored);
  });

  test('the base64 core at each alignment is exactly what the oracle finds stable', () => {
    for (const value of VALUES.filter((v) => Buffer.byteLength(v) >= MIN_ENCODED_VALUE_BYTES)) {
      const raw = Buffer.from(value, 'utf8');
      for (const alphabet of ['base64', 'base64url'] as const) {
        for (const a of ALIGNMENTS) {
          assert.equal(base64Forms(raw, a, alphabet)[0], oracleCore(raw, a, alphabet), `${alphabet} alignment ${a} of ${JSON.stringify(value)}`);
        }
      }
    }
  });

  test('property: at any offset inside any blob, base64 and base64url of the blob contain a form of that alignment', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 8, maxLength: 40 }), fc.uint8Array({ maxLength: 10 }), fc.uint8Array({ maxLength: 10 }), (v, pre, post) => {
        const value = Buffer.from(v);
        const a = (pre.length % 3) as 0 | 1 | 2;
        for (const alphabet of ['base64', 'base64url'] as const) {
          const blob = Buffer.concat([pre, value, post]).toString(alphabet);
          const forms = base64Forms(value, a, alphabet);
          assert.ok(blob.includes(forms[0] as string), `${alphabet} core at alignment ${a}`);
          assert.equal(forms[0], oracleCore(value, a, alphabet));
          // Ending the blob: the core plus the last character (and the padding base64 writes) is there too.
          if (post.length === 0 && forms.length > 1) assert.ok(blob.endsWith(alphabet === 'base64' ? (forms[2] as string) : (forms[1] as string)));
        }
      }),
      { numRuns: 400 },
    );
  });

  test('hex forms are node Buffer hex, lower and upper', () => {
    const forms = encodedForms('sk-test-0123456789abcdef');
    assert.equal(forms.find((f) => f.kind === 'hex-lower')?.bytes.toString(), Buffer.from('sk-test-0123456789abcdef').toString('hex'));
    assert.equal(forms.find((f) => f.kind === 'hex-upper')?.bytes.toString(), Buffer.from('sk-test-0123456789abcdef').toString('hex').toUpperCase());
  });

  test(`values under ${MIN_ENCODED_VALUE_BYTES} bytes get the raw form only; '' gets none; a non-string throws TypeError`, () => {
    assert.deepEqual(
      encodedForms('short').map((f) => f.kind),
      ['raw'],
    );
    assert.deepEqual(encodedForms(''), []);
    assert.throws(() => encodedForms(42 as unknown as string), TypeError);
    assert.equal(encodedForms('12345678').length > 1, true);
  });

  test('literal forms hold the escaped renderings a literal search needs', () => {
    const v = 'a+b/c "d"é';
    const forms = literalForms(v);
    for (const expected of [
      v,
      JSON.stringify(v).slice(1, -1),
      [...v].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
      encodeURIComponent(v),
      encodeURIComponent(v).replace(/%20/g, '+'),
      'a+b/c &quot;d&quot;é',
      [...v].map((c) => `&#${c.codePointAt(0)};`).join(''),
      Buffer.from(v).toString('hex'),
    ]) {
      assert.ok(forms.includes(expected), expected);
    }
    assert.equal(new Set(forms).size, forms.length, 'deduplicated');
    assert.deepEqual(literalForms(''), []);
  });
});

describe('base64Forms: which forms one alignment has', () => {
  test('a value that fixes no whole base64 character at its alignment has no forms (one byte at alignment 1 spans characters 1 and 2, each shared with a neighbour byte)', () => {
    assert.deepEqual(base64Forms(Buffer.from([0x41]), 1, 'base64'), []);
    assert.deepEqual(base64Forms(Buffer.from([0x41]), 1, 'base64url'), []);
    for (const a of ALIGNMENTS) assert.deepEqual(base64Forms(Buffer.alloc(0), a, 'base64'), [], `empty value at alignment ${a}`);
  });

  test('a value that ends on a character boundary at its alignment has exactly one form, its whole encoding: no partial last character, no padding', () => {
    // 8(a + L) is a multiple of 6: L ≡ 0, 2, 1 (mod 3) at a = 0, 1, 2.
    const cases = [
      { a: 0, value: Buffer.from('sk-test-0123456'), from: 0 },
      { a: 1, value: Buffer.from('sk-test-012345'), from: 2 },
      { a: 2, value: Buffer.from('sk-test-01234'), from: 3 },
    ] as const;
    for (const { a, value, from } of cases) {
      for (const alphabet of ['base64', 'base64url'] as const) {
        const whole = Buffer.concat([Buffer.alloc(a), value]).toString(alphabet);
        assert.equal(whole.endsWith('='), false);
        assert.deepEqual(base64Forms(value, a, alphabet), [whole.slice(from)], `${alphabet} alignment ${a}`);
      }
    }
    assert.deepEqual(base64Forms(Buffer.from('sk-test-0123456'), 0, 'base64'), ['c2stdGVzdC0wMTIzNDU2']);
  });
});

describe('encodedForms: input and shape', () => {
  test('a non-string is refused with a TypeError naming the function, never converted (a Buffer or an array is not read as text)', () => {
    for (const bad of [42, null, undefined, Buffer.from('sk-test-0123456789'), ['sk-test-0123456789']]) {
      assert.throws(() => encodedForms(bad as unknown as string), { name: 'TypeError', message: 'encodedForms: value must be a string' });
    }
  });

  test('only base64 and base64url forms carry an alignment; every other form has no alignment key at all', () => {
    const forms = encodedForms('sk test %41 ???0123456789');
    assert.deepEqual([...new Set(forms.map((f) => f.kind))], ['raw', 'raw-plus', 'raw-decoded', 'base64', 'base64url', 'hex-lower', 'hex-upper']);
    for (const f of forms) {
      if (f.kind === 'base64' || f.kind === 'base64url') assert.ok(ALIGNMENTS.includes(f.alignment as 0 | 1 | 2), f.kind);
      else assert.equal(Object.hasOwn(f, 'alignment'), false, f.kind);
    }
  });
});

describe('encodedForms: the value written another way', () => {
  const rawForms = (value: string): { kind: string; text: string }[] =>
    encodedForms(value)
      .filter((f) => f.kind.startsWith('raw'))
      .map((f) => ({ kind: f.kind, text: f.bytes.toString('utf8') }));

  test('a value with spaces is also searched with + for each space (form encoding), as UTF-8 bytes', () => {
    const value = 'pässwört mit leerzeichen';
    const forms = rawForms(value);
    assert.deepEqual(forms, [
      { kind: 'raw', text: value },
      { kind: 'raw-plus', text: 'pässwört+mit+leerzeichen' },
    ]);
    // A form decoder reads the raw-plus text back as the value.
    assert.equal(new URLSearchParams(`k=${forms[1]?.text}`).get('k'), value);
    assert.deepEqual(rawForms('sk-test-0123456789'), [{ kind: 'raw', text: 'sk-test-0123456789' }]);
  });

  test('a value holding escape-like sequences is also searched with them decoded, wherever they sit (within 20 bytes of its end too)', () => {
    for (const value of ['sk-live-0123%41%42', 'sk-live-0123\\tsecret', '%41' + 'x'.repeat(30)]) {
      const decoded = value.includes('%') ? decodeURIComponent(value) : (JSON.parse(`"${value}"`) as string);
      assert.deepEqual(rawForms(value), [
        { kind: 'raw', text: value },
        { kind: 'raw-decoded', text: decoded },
      ]);
    }
  });
});

describe('literalForms: the usual fully-escaped renderings', () => {
  test('a non-ASCII value keeps its characters in the form-encoded spelling (`+` for space), not its UTF-8 bytes read as latin1', () => {
    const forms = literalForms('pässwort geheim!');
    assert.ok(forms.includes('pässwort+geheim!'), JSON.stringify(forms));
    assert.ok(!forms.some((f) => f.includes('Ã')), 'no latin1 reading of UTF-8 bytes');
    assert.ok(literalForms('a\tz é').includes('a\tz+é'));
  });

  test('a non-string is refused with a TypeError naming the function', () => {
    for (const bad of [42, null, Buffer.from('sk-test-0123456789')]) {
      assert.throws(() => literalForms(bad as unknown as string), { name: 'TypeError', message: 'literalForms: value must be a string' });
    }
  });

  test('a short value (no base64 or hex forms) gives each rendering once, in order, and never its UTF-8 bytes read as latin1', () => {
    assert.deepEqual(literalForms('é😀'), [
      'é😀',
      '\\u00e9\\ud83d\\ude00',
      '\\u00E9\\uD83D\\uDE00',
      '%C3%A9%F0%9F%98%80',
      '%c3%a9%f0%9f%98%80',
      '&#233;&#128512;',
      '&#xe9;&#x1f600;',
      '&#xE9;&#x1F600;',
    ]);
  });

  test('JSON \\u escapes: one per UTF-16 code unit (a surrogate pair is two), in lower and in upper hex', () => {
    const value = 'é😀 sk';
    const forms = literalForms(value);
    for (const expected of ['\\u00e9\\ud83d\\ude00\\u0020\\u0073\\u006b', '\\u00E9\\uD83D\\uDE00\\u0020\\u0073\\u006B']) {
      assert.ok(forms.includes(expected), expected);
      assert.equal(JSON.parse(`"${expected}"`), value);
    }
  });

  test('percent-encoding: encodeURIComponent, that with + for a space, and every byte encoded with two hex digits (under 0x10 too) in upper and lower case', () => {
    const value = 'a\tz é';
    const forms = literalForms(value);
    for (const expected of ['a%09z%20%C3%A9', 'a%09z+%C3%A9', '%61%09%7A%20%C3%A9', '%61%09%7a%20%c3%a9']) {
      assert.ok(forms.includes(expected), expected);
      assert.equal(decodeURIComponent(expected.replace('+', ' ')), value);
    }
  });

  test("HTML: & < > \" ' escaped, and every code point as a decimal and as a hex character reference (lower and upper hex)", () => {
    const forms = literalForms(`<&>"'é😀`);
    for (const expected of [
      '&lt;&amp;&gt;&quot;&#39;é😀',
      '&#60;&#38;&#62;&#34;&#39;&#233;&#128512;',
      '&#x3c;&#x26;&#x3e;&#x22;&#x27;&#xe9;&#x1f600;',
      '&#x3C;&#x26;&#x3E;&#x22;&#x27;&#xE9;&#x1F600;',
    ]) {
      assert.ok(forms.includes(expected), expected);
    }
  });
});
