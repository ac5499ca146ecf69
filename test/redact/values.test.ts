/**
 * Known values as compiled byte forms (src/redact/values.ts: what the tool
 * door, abilities and the egress proxy keep beside a request):
 * `redactionForms`, `redactValuesInString`, and RedactStream over those forms
 * cut at arbitrary byte boundaries (also inside multi-byte characters). These
 * were the egress proxy's own engine's tests (test/egress/redact-stream.test.ts)
 * and still pass on the one engine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileRedaction, REDACTED_VALUE, RedactStream, setOfForms } from '../../src/redact/engine.ts';
import { redactionForms, redactValuesInString } from '../../src/redact/values.ts';
import { cutAt, everyByte, streamThrough } from '../helpers/chunks.ts';

/** Runs `chunks` through a RedactStream over `forms`; the output and the redaction count. */
async function redactStream(forms: readonly Buffer[], chunks: readonly Buffer[]): Promise<{ out: Buffer; redactions: number }> {
  const r = new RedactStream(setOfForms(forms));
  return { out: await streamThrough(r, chunks), redactions: r.redactions };
}

/** `bytes` cut at `cuts` (any byte offsets), empty pieces dropped. */
function cut(bytes: Buffer, cuts: readonly number[]): Buffer[] {
  return cutAt(bytes, cuts).filter((c) => c.length > 0);
}

/** Whether `text`, with the replacements taken out, still holds any of `forms` (split at replacements, so a form cannot span one). */
function leaks(text: string, forms: readonly Buffer[]): string | undefined {
  for (const segment of text.split(REDACTED_VALUE)) {
    for (const f of forms) {
      // A form that is not UTF-8 (a value's `%AA` decoded) cannot be checked in a string.
      if (!Buffer.from(f.toString('utf8'), 'utf8').equals(f)) continue;
      if (segment.includes(f.toString('utf8'))) return f.toString('utf8');
    }
  }
  return undefined;
}

/** Whether some form is a substring of another (the case where redaction order matters). */
function nested(forms: readonly Buffer[]): boolean {
  return forms.some((f, i) => forms.some((g, j) => i !== j && g.includes(f)));
}

describe('redactionForms', () => {
  test('the engine\'s encoded forms (src/redact/forms.ts), deduplicated, empty values dropped', () => {
    const v = 'p@ss "w/ord"\\é';
    assert.deepEqual(redactionForms([v, '', v]), [...compileRedaction([v]).forms]);
    assert.deepEqual(redactionForms([]), []);
    assert.deepEqual(redactionForms(['']), []);
    // JSON escapes and percent-encoding are found through the decoded views, not listed as forms.
    assert.equal(redactValuesInString(JSON.stringify(v), redactionForms([v])), `"${REDACTED_VALUE}"`);
    assert.equal(redactValuesInString(encodeURIComponent(v), redactionForms([v])), REDACTED_VALUE);
  });
});

describe('redactValuesInString', () => {
  test('every occurrence of every form is replaced', () => {
    const forms = redactionForms(['s3cr3t "x"', 'tok']);
    assert.equal(redactValuesInString('a s3cr3t "x" b s3cr3t \\"x\\" c s3cr3t%20%22x%22 d tok tok', forms), `a ${REDACTED_VALUE} b ${REDACTED_VALUE} c ${REDACTED_VALUE} d ${REDACTED_VALUE} ${REDACTED_VALUE}`);
    assert.equal(redactValuesInString('nothing here', forms), 'nothing here');
    assert.equal(redactValuesInString('', forms), '');
  });

  // Regression: forms were replaced one after another in the order given, so 'abcdef'
  // with values ['abc', 'abcdef'] left 'def' of the longer secret in a header.
  test('a secret that contains another is redacted whole, whatever the order of the values', () => {
    assert.equal(redactValuesInString('abcdef', redactionForms(['abcdef', 'abc'])), REDACTED_VALUE);
    assert.equal(redactValuesInString('abcdef', redactionForms(['abc', 'abcdef'])), REDACTED_VALUE);
  });
});

describe('RedactStream over compiled forms', () => {
  test('an empty stream stays empty; no forms pass everything through', async () => {
    const empty = await redactStream(redactionForms(['secret']), []);
    assert.equal(empty.out.length, 0);
    assert.equal(empty.redactions, 0);
    const bytes = Buffer.from('héllo wörld 😀', 'utf8');
    const none = await redactStream([], everyByte(bytes));
    assert.deepEqual(none.out, bytes);
    const emptyValue = await redactStream(redactionForms(['']), cut(bytes, [3, 7]));
    assert.deepEqual(emptyValue.out, bytes);
  });

  test('a value split into single bytes, and a value at the very end, are redacted', async () => {
    const forms = redactionForms(['sk-live-0123456789']);
    const text = 'token=sk-live-0123456789';
    for (const chunks of [everyByte(Buffer.from(text)), [Buffer.from(text)], cut(Buffer.from(text), [10]), cut(Buffer.from(text), [23])]) {
      const r = await redactStream(forms, chunks);
      assert.equal(r.out.toString('utf8'), `token=${REDACTED_VALUE}`);
      assert.equal(r.redactions, 1);
    }
    // The value is the whole stream.
    const whole = await redactStream(forms, everyByte(Buffer.from('sk-live-0123456789')));
    assert.equal(whole.out.toString('utf8'), REDACTED_VALUE);
    // A proper prefix of the value at the end is not a value: released at the end.
    const partial = await redactStream(forms, everyByte(Buffer.from('x sk-live-01234')));
    assert.equal(partial.out.toString('utf8'), 'x sk-live-01234');
    assert.equal(partial.redactions, 0);
  });

  test('JSON-escaped and percent-encoded echoes are redacted, also cut inside a multi-byte character', async () => {
    const v = 'pä$$ "w/ord" 😀';
    const forms = redactionForms([v]);
    const body = Buffer.from(`{"echo":${JSON.stringify(v)},"q":"${encodeURIComponent(v)}","raw":"${v}"}`, 'utf8');
    const expected = `{"echo":"${REDACTED_VALUE}","q":"${REDACTED_VALUE}","raw":"${REDACTED_VALUE}"}`;
    for (const chunks of [[body], everyByte(body), cut(body, [12, 13, 14, 40])]) {
      const r = await redactStream(forms, chunks);
      assert.equal(r.out.toString('utf8'), expected);
      assert.equal(r.redactions, 3);
    }
  });

  test('adjacent and repeated values (overlapping occurrences of one value merge into one span)', async () => {
    const forms = redactionForms(['AAA', 'BBB']);
    const r = await redactStream(forms, everyByte(Buffer.from('AAAAAABBBAAAB')));
    assert.equal(r.out.toString('utf8'), `${REDACTED_VALUE}${REDACTED_VALUE}${REDACTED_VALUE}B`);
    assert.equal(r.redactions, 3);
    const apart = await redactStream(forms, everyByte(Buffer.from('AAA AAA')));
    assert.equal(apart.out.toString('utf8'), `${REDACTED_VALUE} ${REDACTED_VALUE}`);
  });

  test('overlapping values are redacted as one span, so no part of either survives', async () => {
    const forms = redactionForms(['abcd', 'cdef']);
    for (const chunks of [[Buffer.from('xabcdefx')], everyByte(Buffer.from('xabcdefx'))]) {
      const out = (await redactStream(forms, chunks)).out.toString('utf8');
      assert.equal(out, `x${REDACTED_VALUE}x`);
      assert.equal(leaks(out, forms), undefined);
    }
  });

  test('on a whole buffer the longest of the values starting at a position wins', async () => {
    const forms = redactionForms(['abc', 'abcdef']);
    assert.equal((await redactStream(forms, [Buffer.from('abcdef abc')])).out.toString('utf8'), `${REDACTED_VALUE} ${REDACTED_VALUE}`);
  });

  // Regression: a shorter form's match was taken as soon as it was complete, so with
  // ['abc', 'abcdef'] cut as 'abc' | 'def' the tail of the longer secret reached the agent.
  test('the output does not depend on where the stream is cut when one value contains another', async () => {
    const prefix = redactionForms(['abc', 'abcdef']);
    assert.equal((await redactStream(prefix, [Buffer.from('abc'), Buffer.from('def')])).out.toString('utf8'), REDACTED_VALUE);
    const inner = redactionForms(['xabcdefx', 'abc']);
    assert.equal((await redactStream(inner, [Buffer.from('xabc'), Buffer.from('defx')])).out.toString('utf8'), REDACTED_VALUE);
  });

  // Values from an alphabet the filler text never uses, none a substring of another,
  // inserted with filler between them: every occurrence is exactly an inserted one,
  // so the stream and the whole-string redaction must agree byte for byte.
  const VALUE_CHARS = [...'0123456789GHIJKLMNOPQSUVWXYZ"\\ /+&é😀\n'];
  const FILLER_CHARS = [...'abcdefghijklmopqrstvwxyz{}:,.<>=ü'];
  const value = fc.array(fc.constantFrom(...VALUE_CHARS), { minLength: 1, maxLength: 12 }).map((cs) => cs.join(''));
  const filler = (min: number): fc.Arbitrary<string> => fc.array(fc.constantFrom(...FILLER_CHARS), { minLength: min, maxLength: 20 }).map((cs) => cs.join(''));
  const scenario = fc
    .uniqueArray(value, { minLength: 1, maxLength: 4 })
    .filter((values) => !nested(redactionForms(values)))
    .chain((values) => {
      const forms = redactionForms(values);
      const insert = fc.tuple(fc.nat(forms.length - 1), filler(1));
      return fc.record({
        values: fc.constant(values),
        head: filler(0),
        inserts: fc.array(insert, { maxLength: 8 }),
        cuts: fc.array(fc.nat(2000), { maxLength: 30 }),
      });
    });

  test('property: any chunking gives the whole-string redaction, counts every insert, leaks nothing', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ values, head, inserts, cuts }) => {
        const forms = redactionForms(values);
        const text = head + inserts.map(([i, tail]) => (forms[i] as Buffer).toString('utf8') + tail).join('');
        const bytes = Buffer.from(text, 'utf8');
        const expected = redactValuesInString(text, forms);
        assert.equal(expected, head + inserts.map(([, tail]) => REDACTED_VALUE + tail).join(''));
        const r = await redactStream(forms, cut(bytes, cuts));
        assert.equal(r.out.toString('utf8'), expected);
        assert.deepEqual(r.out, Buffer.from(expected, 'utf8'));
        assert.equal(r.redactions, inserts.length);
        assert.equal(leaks(r.out.toString('utf8'), forms), undefined);
      }),
      { numRuns: 300 },
    );
  });

  // Arbitrary values over a tiny alphabet (so they overlap, repeat and prefix each
  // other) in arbitrary text: no chunking lets a whole value through.
  const tiny = fc.array(fc.constantFrom(...'ab"\\%é'), { minLength: 1, maxLength: 5 }).map((cs) => cs.join(''));
  const noise = fc.array(fc.constantFrom(...'ab"\\%éxy'), { maxLength: 12 }).map((cs) => cs.join(''));

  test('property: overlapping values never pass whole, whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(tiny, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(noise, fc.nat(2)), { maxLength: 6 }), fc.array(fc.nat(500), { maxLength: 20 }), async (values, parts, cuts) => {
        const forms = redactionForms(values);
        const text = parts.map(([n, k]) => n + (forms[k % forms.length] as Buffer).toString('utf8')).join('');
        const chunked = (await redactStream(forms, cut(Buffer.from(text, 'utf8'), cuts))).out.toString('utf8');
        assert.equal(leaks(chunked, forms), undefined, JSON.stringify({ values, text, chunked }));
      }),
      { numRuns: 300 },
    );
  });

  test('property: when no value contains another, the output does not depend on the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(tiny, { minLength: 1, maxLength: 3 }).filter((vs) => !nested(redactionForms(vs))),
        fc.array(fc.tuple(noise, fc.nat(2)), { maxLength: 6 }),
        fc.array(fc.nat(500), { maxLength: 20 }),
        async (values, parts, cuts) => {
          const forms = redactionForms(values);
          const bytes = Buffer.from(parts.map(([n, k]) => n + (forms[k % forms.length] as Buffer).toString('utf8')).join(''), 'utf8');
          const whole = await redactStream(forms, [bytes]);
          const chunked = await redactStream(forms, cut(bytes, cuts));
          assert.deepEqual(chunked.out, whole.out);
          assert.equal(chunked.redactions, whole.redactions);
        },
      ),
      { numRuns: 300 },
    );
  });
});
