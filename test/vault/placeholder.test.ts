import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { base32nopad } from '@scure/base';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { hmacSha256 } from '../../src/util/crypto.ts';
import {
  PLACEHOLDER_LENGTH,
  PLACEHOLDER_PATTERN,
  PLACEHOLDER_PREFIX,
  createPlaceholderReplacer,
  createPlaceholderScanner,
  derivePlaceholder,
  findPlaceholders,
  isPlaceholder,
  type PlaceholderMatch,
  type PlaceholderScanner,
} from '../../src/vault/placeholder.ts';
import { cutAt } from '../helpers/chunks.ts';
import { assertLinear } from '../helpers/complexity.ts';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

/**
 * Fixed vector, computed once and cross-checked independently with
 * `openssl dgst -sha256 -mac HMAC -binary | head -c 20 | base32 | tr A-Z a-z`
 * over the message bytes below.
 */
const VECTOR = {
  keyHex: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  secretId: 'github',
  version: 1,
  // "bastion/placeholder/v1" ‖ 0x00 ‖ u32be(6) ‖ "github" ‖ u64be(1)
  messageHex: '62617374696f6e2f706c616365686f6c6465722f763100000000066769746875620000000000000001',
  placeholder: 'bst_ph_u7ublai4vgk6dxj3m7xm6xd3px7yc5pv',
} as const;

const KEY = hex(VECTOR.keyHex);
const PH = derivePlaceholder(KEY, { secretId: 'github', version: 1 });
const PH2 = derivePlaceholder(KEY, { secretId: 'slack', version: 3 });
const BODY = PH.slice(PLACEHOLDER_PREFIX.length);

describe('derivePlaceholder', () => {
  test('matches the fixed vector', () => {
    assert.equal(derivePlaceholder(hex(VECTOR.keyHex), { secretId: VECTOR.secretId, version: VECTOR.version }), VECTOR.placeholder);
  });

  test('the body is the first 20 bytes of HMAC-SHA256 over the documented message (RFC 4648 base32, lowercase)', () => {
    const body = base32nopad.decode(VECTOR.placeholder.slice(PLACEHOLDER_PREFIX.length).toUpperCase());
    assert.deepEqual(body, Uint8Array.from(hmacSha256(KEY, hex(VECTOR.messageHex)).subarray(0, 20)));
  });

  test('is deterministic, 39 characters, and a placeholder', () => {
    assert.equal(derivePlaceholder(KEY, { secretId: 'github', version: 1 }), PH);
    assert.equal(PH.length, PLACEHOLDER_LENGTH);
    assert.equal(PLACEHOLDER_LENGTH, 39);
    assert.ok(isPlaceholder(PH));
  });

  test('differs by key, secret id and version', () => {
    const other = hex(VECTOR.keyHex.replace(/^00/, '01'));
    const all = [
      PH,
      derivePlaceholder(other, { secretId: 'github', version: 1 }),
      derivePlaceholder(KEY, { secretId: 'github2', version: 1 }),
      derivePlaceholder(KEY, { secretId: 'github', version: 2 }),
      derivePlaceholder(KEY, { secretId: 'github', version: 0 }),
      // would collide under a naive "id + version" concatenation
      derivePlaceholder(KEY, { secretId: 'a1', version: 1 }),
      derivePlaceholder(KEY, { secretId: 'a', version: 11 }),
      derivePlaceholder(Uint8Array.from([...KEY, 1]), { secretId: 'github', version: 1 }),
    ];
    assert.equal(new Set(all).size, all.length);
  });

  test('RFC 2104 zero-pads keys: a key and the same key with trailing zero bytes (up to 64) are one key', () => {
    // Not a flaw of derivation but of variable-length keys; the vault derives fixed-length ones.
    assert.equal(derivePlaceholder(Uint8Array.from([...KEY, 0]), { secretId: 'github', version: 1 }), PH);
  });

  test('any valid input gives a placeholder that findPlaceholders finds (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 64 }),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        fc.nat(),
        (key, secretId, version) => {
          const ph = derivePlaceholder(key, { secretId, version });
          assert.ok(isPlaceholder(ph));
          assert.deepEqual(findPlaceholders(`"${ph}"`), [{ start: 1, end: 40, placeholder: ph }]);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('rejects bad input with TypeError / RangeError', () => {
    const ref = { secretId: 'github', version: 1 };
    assert.throws(() => derivePlaceholder(KEY.subarray(0, 31), ref), RangeError);
    assert.throws(() => derivePlaceholder('k'.repeat(32) as unknown as Uint8Array, ref), TypeError);
    assert.throws(() => derivePlaceholder(KEY, { secretId: '', version: 1 }), TypeError);
    assert.throws(() => derivePlaceholder(KEY, { secretId: 'a\uD800', version: 1 }), TypeError); // lone surrogate
    assert.throws(() => derivePlaceholder(KEY, { secretId: 1 as unknown as string, version: 1 }), TypeError);
    for (const version of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, '1' as unknown as number]) {
      assert.throws(() => derivePlaceholder(KEY, { secretId: 'github', version }), RangeError, String(version));
    }
  });
});

describe('isPlaceholder', () => {
  test('shape only, exact, case-sensitive', () => {
    assert.equal(isPlaceholder(PH), true);
    assert.equal(isPlaceholder(`bst_ph_${'a'.repeat(32)}`), true);
    assert.equal(isPlaceholder(`bst_ph_${'7'.repeat(32)}`), true);
    for (const s of [
      PH.toUpperCase(),
      PH.slice(0, -1),
      `${PH}a`,
      `${PH}\n`,
      ` ${PH}`,
      `bst_ph_${'a'.repeat(31)}0`,
      `bst_ph_${'a'.repeat(31)}1`,
      `bst_ph_${'a'.repeat(31)}8`,
      `bst_ph_${'a'.repeat(31)}=`,
      `bst-ph-${BODY}`,
      '',
    ]) {
      assert.equal(isPlaceholder(s), false, JSON.stringify(s));
    }
    assert.equal(isPlaceholder(undefined), false);
    assert.equal(isPlaceholder(123), false);
  });
});

describe('findPlaceholders', () => {
  test('boundaries: standalone tokens match', () => {
    const cases: [string, number][] = [
      [PH, 0],
      [`${PH}.`, 0],
      [`(${PH})`, 1],
      [`"${PH}"`, 1],
      [`{"token":"${PH}","x":1}`, 10],
      [`https://api.example.com/v1?token=${PH}&x=1`, 33],
      [`Authorization: Bearer ${PH}\r\n`, 22],
      [`GITHUB_TOKEN=${PH}\n`, 13],
      [`${PH}-suffix`, 0],
      [`é${PH}é`, 1],
      [`😀${PH}`, 2],
      [`a/${PH}/b`, 2],
      [`[${PH}]`, 1],
      [`'${PH}'`, 1],
      [`\t${PH}\t`, 1],
    ];
    for (const [text, start] of cases) {
      assert.deepEqual(findPlaceholders(text), [{ start, end: start + 39, placeholder: PH }], text);
    }
  });

  test('boundaries: embedded in a longer token does not match', () => {
    for (const text of [
      `x${PH}`,
      `_${PH}`,
      `X${PH}`,
      `9${PH}`,
      `${PH}a`,
      `${PH}z`,
      `${PH}2`,
      `${PH}8`,
      `${PH}A`,
      `${PH}_`,
      `abc${PH}def`,
      `bst_ph_${BODY}${BODY}`,
      `bst_ph_${BODY.slice(1)}`, // too short
      `${PH}`.toUpperCase(),
      `?q=a%20${PH}`, // a percent-escape ends in a hex digit: decode before scanning to find it
      `%2F${PH}`,
      `bst_ph_${BODY.slice(0, 31)}0`,
    ]) {
      assert.deepEqual(findPlaceholders(text), [], text);
    }
  });

  test('adjacent and repeated placeholders', () => {
    assert.deepEqual(findPlaceholders(`${PH} ${PH2},${PH}`), [
      { start: 0, end: 39, placeholder: PH },
      { start: 40, end: 79, placeholder: PH2 },
      { start: 80, end: 119, placeholder: PH },
    ]);
    assert.deepEqual(findPlaceholders(PH + PH), []); // one 78-character token
    assert.deepEqual(findPlaceholders(''), []);
  });

  test('rejects a non-string', () => {
    assert.throws(() => findPlaceholders(undefined as unknown as string), TypeError);
  });

  test('agrees with PLACEHOLDER_PATTERN and leaves it reusable', () => {
    const text = `a ${PH} b ${PH2}`;
    assert.equal(text.replace(PLACEHOLDER_PATTERN, '<>'), 'a <> b <>');
    assert.deepEqual(
      findPlaceholders(text).map((m) => m.placeholder),
      [PH, PH2],
    );
  });
});

describe('complexity (linear in input size)', () => {
  const adversarial: [string, (n: number) => string][] = [
    ['bst_ph_ repeated', (n) => 'bst_ph_'.repeat(n / 7)],
    ['long base32 run', (n) => 'a'.repeat(n)],
    ['prefix + long base32 run', (n) => `bst_ph_${'a'.repeat(n)}`],
    ['almost-placeholders', (n) => `bst_ph_${'a'.repeat(31)} `.repeat(n / 40)],
    ['placeholders back to back', (n) => PH.repeat(n / 39)],
    ['b after boundary', (n) => ' b'.repeat(n / 2)],
  ];
  for (const [name, make] of adversarial) {
    test(`findPlaceholders: ${name}`, () => {
      assertLinear(`findPlaceholders ${name}`, (s) => findPlaceholders(s), make(20_000), make(80_000));
    });
    test(`scanner, 1-character chunks: ${name}`, () => {
      const scan = (s: string) => {
        const sc = createPlaceholderScanner();
        for (const c of s) sc.push(c);
        sc.end();
      };
      assertLinear(`scanner ${name}`, scan, make(4_000), make(16_000));
    });
  }
});

/** Independent oracle: the shortest tail of `text` that could still be a placeholder (or its start), given the whole stream so far. */
function expectedHeld(text: string): number {
  const partial = /^(?:b|bs|bst|bst_|bst_p|bst_ph|bst_ph_[a-z2-7]{0,32})$/;
  for (let i = Math.max(0, text.length - 39); i < text.length; i++) {
    if (i > 0 && /[A-Za-z0-9_]/.test(text[i - 1] as string)) continue;
    if (partial.test(text.slice(i))) return text.length - i;
  }
  return 0;
}

interface Run {
  readonly out: string;
  readonly found: PlaceholderMatch[];
}

/** Feeds `chunks` to `sc`, checking after each push the hold-back bound and that emitted text is never ahead of what was found. */
function feed(sc: PlaceholderScanner, chunks: string[], passThrough: boolean): Run {
  const input = chunks.join('');
  const whole = findPlaceholders(input);
  let out = '';
  let consumed = 0;
  const found: PlaceholderMatch[] = [];
  for (const chunk of chunks) {
    const r = sc.push(chunk);
    consumed += chunk.length;
    out += r.text;
    found.push(...r.found);
    if (passThrough) {
      const held = consumed - out.length;
      assert.ok(held >= 0 && held <= PLACEHOLDER_LENGTH, `held ${held}`);
      assert.equal(held, expectedHeld(input.slice(0, consumed)), 'held tail is the shortest possible');
      // Safe to emit: every placeholder that starts in emitted text has been reported.
      assert.deepEqual(found, whole.filter((m) => m.start < out.length));
    }
  }
  const r = sc.end();
  out += r.text;
  found.push(...r.found);
  return { out, found };
}

const piece = fc.constantFrom(
  PH,
  PH2,
  PLACEHOLDER_PREFIX,
  'bst_',
  'bst_ph',
  'st_ph_',
  'b',
  BODY.slice(0, 20),
  'a',
  '7',
  'x',
  'X',
  '_',
  '9',
  ' ',
  '-',
  '"',
  '=',
  '&',
  '?token=',
  'Bearer ',
  '\r\n',
  'é',
  '😀',
);
const textArb = fc.array(piece, { maxLength: 30 }).map((ps) => ps.join(''));

const chunksArb = fc.oneof(
  textArb.chain((t) => fc.array(fc.nat(), { maxLength: 12 }).map((cuts) => cutAt(t, cuts))),
  textArb.map((t) => t.split('')), // 1-character chunks (UTF-16 code units)
);

const mark = (p: string) => `<${p.slice(7, 12)}:${p.length}>`;

describe('createPlaceholderScanner / createPlaceholderReplacer (streaming)', () => {
  test('property: output, found offsets and replacement equal the whole-text results; the tail held is minimal and at most 39', () => {
    fc.assert(
      fc.property(chunksArb, (chunks) => {
        const input = chunks.join('');
        const expected = findPlaceholders(input);
        const scanned = feed(createPlaceholderScanner(), chunks, true);
        assert.equal(scanned.out, input);
        assert.deepEqual(scanned.found, expected);

        const replaced = feed(createPlaceholderReplacer(mark), chunks, false);
        assert.equal(replaced.out, input.replace(/\bbst_ph_[a-z2-7]{32}\b/g, mark));
        assert.deepEqual(replaced.found, expected);
        for (const m of replaced.found) assert.equal(input.slice(m.start, m.end), m.placeholder);
      }),
      { numRuns: 2000 },
    );
  });

  test('a placeholder split across chunks in a JSON body is swapped', () => {
    const r = createPlaceholderReplacer((p) => (p === PH ? 'ghp_REAL' : 'other'));
    const a = r.push(`{"token":"${PH.slice(0, 20)}`);
    assert.deepEqual(a, { text: '{"token":"', found: [] });
    const b = r.push(`${PH.slice(20)}","n":1}`);
    assert.deepEqual(b, { text: 'ghp_REAL","n":1}', found: [{ start: 10, end: 49, placeholder: PH }] });
    assert.deepEqual(r.end(), { text: '', found: [] });
  });

  test('a complete placeholder at the end of a chunk waits for its right boundary', () => {
    const sc = createPlaceholderScanner();
    assert.deepEqual(sc.push(`Bearer ${PH}`), { text: 'Bearer ', found: [] });
    assert.deepEqual(sc.push('x'), { text: `${PH}x`, found: [] }); // followed by more: not a placeholder
    const sc2 = createPlaceholderScanner();
    sc2.push(`Bearer ${PH}`);
    assert.deepEqual(sc2.push('\r\n'), { text: `${PH}\r\n`, found: [{ start: 7, end: 46, placeholder: PH }] });
    const sc3 = createPlaceholderScanner();
    sc3.push(`Bearer ${PH}`);
    assert.deepEqual(sc3.end(), { text: PH, found: [{ start: 7, end: 46, placeholder: PH }] });
  });

  test('holds back nothing that cannot start a placeholder', () => {
    const sc = createPlaceholderScanner();
    assert.deepEqual(sc.push('abc bst_ph_ab'), { text: 'abc ', found: [] });
    assert.deepEqual(sc.push('!'), { text: 'bst_ph_ab!', found: [] });
    assert.deepEqual(sc.push('xbst_ph_'), { text: 'xbst_ph_', found: [] }); // preceded by a word character
    assert.deepEqual(sc.push(`${BODY} `), { text: `${BODY} `, found: [] });
    assert.deepEqual(sc.push('b'), { text: '', found: [] }); // after a space: could start one
    assert.deepEqual(sc.push('o'), { text: 'bo', found: [] });
    assert.deepEqual(sc.end(), { text: '', found: [] });
  });

  test('the left boundary is remembered across chunks', () => {
    const sc = createPlaceholderScanner();
    assert.deepEqual(sc.push('x'), { text: 'x', found: [] });
    assert.deepEqual(sc.push(PH), { text: PH, found: [] });
    assert.deepEqual(sc.end(), { text: '', found: [] });
  });

  test('regression: a word character emitted just before a chunk never becomes the start of a match', () => {
    // The scanner once put the previous character itself in front of the next chunk,
    // so `…b` + `st_ph_…` matched one character before the chunk (found at a bogus offset).
    const chunks = [` ${PH2}b`, `st_ph_${BODY} `];
    for (const sc of [createPlaceholderScanner(), createPlaceholderReplacer(mark)]) {
      const a = sc.push(chunks[0] as string);
      const b = sc.push(chunks[1] as string);
      const c = sc.end();
      assert.deepEqual([...a.found, ...b.found, ...c.found], []);
      assert.equal(a.text + b.text + c.text, chunks.join(''));
    }
  });

  test('a throwing replace propagates and leaves the replacer unchanged', () => {
    const blocked = new Error('blocked');
    let fail = true;
    const r = createPlaceholderReplacer((p) => {
      if (p === PH2 && fail) throw blocked;
      return 'V';
    });
    assert.deepEqual(r.push(`a ${PH} b ${PH2.slice(0, 5)}`), { text: 'a V b ', found: [{ start: 2, end: 41, placeholder: PH }] });
    assert.throws(() => r.push(`${PH2.slice(5)} c`), (e) => e === blocked);
    fail = false;
    // Nothing of the failed step was consumed: the same chunk can be fed again.
    assert.deepEqual(r.push(`${PH2.slice(5)} c`), { text: 'V c', found: [{ start: 44, end: 83, placeholder: PH2 }] });
    assert.deepEqual(r.end(), { text: '', found: [] });
  });

  test('a throw from replace at end propagates too', () => {
    const r = createPlaceholderReplacer(() => {
      throw new RangeError('nope');
    });
    assert.deepEqual(r.push(PH), { text: '', found: [] });
    assert.throws(() => r.end(), RangeError);
  });

  test('misuse: non-string chunk, non-function replace, non-string replacement, use after end', () => {
    assert.throws(() => createPlaceholderScanner().push(1 as unknown as string), TypeError);
    assert.throws(() => createPlaceholderReplacer('x' as unknown as (p: string) => string), TypeError);
    const bad = createPlaceholderReplacer(() => 1 as unknown as string);
    assert.throws(() => bad.push(`${PH} `), TypeError);
    const sc = createPlaceholderScanner();
    sc.end();
    assert.throws(() => sc.push('a'), (e) => isBastionError(e, 'ERR_INTERNAL'));
    assert.throws(() => sc.end(), (e) => isBastionError(e, 'ERR_INTERNAL'));
  });
});
