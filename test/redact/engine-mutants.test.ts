/**
 * Rules of the redaction engine (src/redact/engine.ts, src/redact/forms.ts)
 * that the mutation run (reports/mutation/redact.txt) showed no other test
 * protected: the literal forms of a value with a non-UTF-8 escape or a lone
 * surrogate, and where a stream's held tail begins when the cut falls inside
 * the first of several decided escapes.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileRedaction, literalForms, redactBytes, REDACTED_VALUE } from '../../src/redact/index.ts';
import { heldAfterEach } from '../helpers/redact-stream.ts';


describe('literal forms', () => {
  test('a value whose own escape decodes to a byte that is no UTF-8 lists that decoding one char per byte', () => {
    // `%FF` in the value reads, decoded, as the byte 0xFF: listed as U+00FF.
    assert.ok(literalForms('abc%FFdefgh').includes('abc\u00ffdefgh'));
  });

  test('the literal forms of a value with a lone surrogate are renderings of that value, not of its U+FFFD replacement', () => {
    const forms = literalForms('ab\uD800cdefgh');
    assert.ok(forms.includes('ab\uD800cdefgh'));
    assert.ok(!forms.includes('ab\uFFFDcdefgh'));
  });
});

describe('where a stream resumes', () => {
  // The raw tail `41bc…` that could begin the value starts inside `%41`, the first of three
  // decided escapes (`%41`, `%20`, `%20`): the stream holds from that escape's `%`.
  test('a held tail that begins inside the first of several decided escapes is held from that escape\'s start', async () => {
    const value = '41bcdefghij%20%20klmnopqrstuvwxyz0123456789ABC';
    const head = 'x%41bcdefghij%20%20klmnopqrstuvwxyz0123456789';
    const set = compileRedaction([value]);
    assert.deepEqual(await heldAfterEach(set, [head, 'ABC']), { held: [head.length - 1, 0], out: `x%${REDACTED_VALUE}` });
    assert.equal(redactBytes(Buffer.from(head + 'ABC', 'latin1'), set).out.toString('latin1'), `x%${REDACTED_VALUE}`);
  });
});
