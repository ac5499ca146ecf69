/**
 * Values split across adjacent JSON fields (src/redact/json.ts): tool results
 * (values) and JSON bodies (bytes), keys and numbers, the response redactor
 * that reads JSON whole and streams everything else, and the log-line
 * redactor.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatWarning } from '../../src/util/warnings.ts';
import { cutAt, streamThrough } from '../helpers/chunks.ts';
import { assertLinear } from '../helpers/complexity.ts';
import { compileRedaction, isJsonMediaType, redactBytes, redactJsonBody, redactJsonValue, REDACTED_VALUE, redactLogLine, ResponseRedactor, type RedactionSet } from '../../src/redact/index.ts';

const VALUE = 'sk-live-0123456789abcdef';
const SET = compileRedaction([VALUE]);

async function respond(set: RedactionSet, json: boolean, chunks: readonly Buffer[], maxJsonBytes = 1 << 20): Promise<{ out: string; redactions: number; split: number }> {
  const r = new ResponseRedactor(set, { json, maxJsonBytes });
  const out = await streamThrough(r, chunks);
  return { out: out.toString('utf8'), redactions: r.redactions, split: r.split };
}

describe('a value split across adjacent JSON fields', () => {
  test('tool result: two string values, the key between them does not hide the split', () => {
    const r = redactJsonValue({ a: 'sk-live-01', b: '23456789abcdef', c: 'kept' }, SET);
    assert.deepEqual(r.value, { a: REDACTED_VALUE, b: REDACTED_VALUE, c: 'kept' });
    assert.equal(r.count, 1);
  });

  test('tool result: across array items, nesting, numbers and keys', () => {
    assert.deepEqual(redactJsonValue(['x', 'sk-live-', '0123', '456789abcdef', 'y'], SET).value, ['x', REDACTED_VALUE, REDACTED_VALUE, REDACTED_VALUE, 'y']);
    assert.deepEqual(redactJsonValue({ a: { b: 'sk-live-0' }, c: [{ d: '123456789abcdef' }] }, SET).value, { a: { b: REDACTED_VALUE }, c: [{ d: REDACTED_VALUE }] });
    const n = compileRedaction(['tok-1234567890']);
    assert.deepEqual(redactJsonValue({ a: 'tok-', b: 1234567890 }, n).value, { a: REDACTED_VALUE, b: REDACTED_VALUE });
    // Keys: the value split across two keys (with empty values between, so the pieces are adjacent).
    const keys = redactJsonValue({ 'sk-live-0123': '', '456789abcdef': '' }, SET).value as Record<string, unknown>;
    assert.ok(!JSON.stringify(keys).includes('sk-live-0123'), JSON.stringify(keys));
  });

  test('leaves holding halves of a surrogate pair keep their offsets (each encoded on its own)', () => {
    // Joined, the halves encode as 4 bytes, apart as 3 + 3: the piece `ef` would be read as part of the leaf before it.
    const r = redactJsonValue(['x\ud83d', '\ude00sk-live-0123456789abcd', 'ef'], SET);
    assert.deepEqual(r.value, ['x\ud83d', REDACTED_VALUE, REDACTED_VALUE]);
  });

  test('records of one shape: pieces under the same property name, whatever lies between them', () => {
    const body = Buffer.from('[{"type":"text","text":"sk-live-01"},{"type":"text","text":"23456789abcdef"},{"type":"text","text":"kept"}]');
    assert.equal(redactJsonBody(body, SET).out.toString(), `[{"type":"text","text":"${REDACTED_VALUE}"},{"type":"text","text":"${REDACTED_VALUE}"},{"type":"text","text":"kept"}]`);
    const rows = { rows: [{ id: 1, name: 'sk-live-0123' }, { id: 2, name: '456789abcdef' }] };
    assert.deepEqual(redactJsonValue(rows, SET).value, { rows: [{ id: 1, name: REDACTED_VALUE }, { id: 2, name: REDACTED_VALUE }] });
  });

  test('residual (docs/redaction.md): pieces in different fields with an unrelated value between them are not found', () => {
    const doc = { a: 'sk-live-01', b: 'zzz', c: '23456789abcdef' };
    assert.deepEqual(redactJsonValue(doc, SET).value, doc);
  });

  test('tool result: each piece in another encoding (base64 halves are not the value; decoded pieces are)', () => {
    const r = redactJsonValue({ a: 'sk\\u002dlive-0123', b: '456789%61bcdef' }, SET);
    assert.deepEqual(r.value, { a: REDACTED_VALUE, b: REDACTED_VALUE });
  });

  test('tool result: a value inside one string is redacted in place, the rest of the string kept', () => {
    assert.deepEqual(redactJsonValue({ a: `Bearer ${VALUE} ok`, b: 'other' }, SET).value, { a: `Bearer ${REDACTED_VALUE} ok`, b: 'other' });
  });

  test('JSON body: split fields are replaced in place, the rest of the body keeps its bytes (numbers too)', () => {
    const body = Buffer.from('{ "n": 12345678901234567890, "a" : "sk-live-01", "b":"23456789abcdef",\n "c": 1.50 }');
    const r = redactJsonBody(body, SET);
    assert.equal(r.out.toString(), `{ "n": 12345678901234567890, "a" : "${REDACTED_VALUE}", "b":"${REDACTED_VALUE}",\n "c": 1.50 }`);
    assert.equal(r.split, 1);
    // Nothing split: the byte engine's output exactly.
    const plain = Buffer.from(`{"a":"${VALUE}","b":"x"}`);
    assert.deepEqual(redactJsonBody(plain, SET).out, redactBytes(plain, SET).out);
    // Not JSON: the byte engine only.
    const broken = Buffer.from('{"a":"sk-live-01", "b":"23456789abcdef"');
    assert.deepEqual(redactJsonBody(broken, SET).out, broken);
  });

  test('property: any value split into pieces across adjacent fields is never readable from the result', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9_\-+/=.]{8,40}$/), fc.array(fc.nat(), { minLength: 1, maxLength: 4 }), fc.boolean(), (value, cuts, asBody) => {
        const set = compileRedaction([value]);
        // Cut strictly inside the value: every piece is non-empty.
        const pieces = cutAt(value, cuts.map((c) => 1 + (c % (value.length - 1))));
        const doc = Object.fromEntries(pieces.map((p, i) => [`f${i}`, p]));
        const text = asBody ? redactJsonBody(Buffer.from(JSON.stringify(doc)), set).out.toString() : JSON.stringify(redactJsonValue(doc, set).value);
        const back = JSON.parse(text) as Record<string, string>;
        assert.ok(!Object.values(back).join('').includes(value), text);
        for (const v of Object.values(back)) assert.equal(v, REDACTED_VALUE);
      }),
      { numRuns: 300 },
    );
  });
});

describe('complexity: the JSON pass stays linear', () => {
  const bodies: Record<string, (n: number) => string> = {
    'many short string leaves': (n) => `[${'"sk-l",'.repeat(n)}"x"]`,
    'many fields of one name': (n) => `[${'{"t":"sk-live-0"},'.repeat(n)}0]`,
    'many distinct keys': (n) => `{${Array.from({ length: n }, (_v, i) => `"k${i}":"sk-"`).join(',')}}`,
    'numbers': (n) => `[${'12345,'.repeat(n)}1]`,
  };
  for (const [name, make] of Object.entries(bodies)) {
    test(name, () => {
      // Limit 10 for 4x input: quadratic work shows 16x; the default 8 failed on CI's 2 busy cores from garbage-collection noise alone.
      assertLinear(name, (s) => void redactJsonBody(Buffer.from(s), SET), make(2000), make(8000), 10);
      const values = (s: string): unknown => JSON.parse(s) as unknown;
      assertLinear(`${name} (value)`, (s) => void redactJsonValue(values(s), SET), make(2000), make(8000), 10);
    });
  }
});

describe('ResponseRedactor', () => {
  const split = Buffer.from('{"a":"sk-live-01","b":"23456789abcdef"}');

  test('a JSON body is read whole: the split is found however it arrives', async () => {
    const r = await respond(SET, true, [...split].map((b) => Buffer.from([b])));
    assert.equal(r.out, `{"a":"${REDACTED_VALUE}","b":"${REDACTED_VALUE}"}`);
    assert.equal(r.split, 1);
  });

  test('past maxJsonBytes, or not JSON, the body streams through the byte engine', async () => {
    const over = await respond(SET, true, [split.subarray(0, 10), split.subarray(10)], 8);
    assert.equal(over.out, split.toString());
    const notJson = await respond(SET, false, [Buffer.from(`x ${Buffer.from(VALUE).toString('base64')} y`)]);
    assert.equal(notJson.out, `x ${REDACTED_VALUE} y`);
    assert.equal(notJson.redactions, 1);
  });

  test('JSON media types', () => {
    for (const t of ['application/json', 'application/json; charset=utf-8', 'Application/JSON', 'application/problem+json', 'text/json']) assert.equal(isJsonMediaType(t), true, t);
    for (const t of [undefined, 'text/plain', 'application/x-ndjson', 'text/event-stream', 'application/jsonx']) assert.equal(isJsonMediaType(t), false, String(t));
  });
});

describe('redactLogLine', () => {
  test('a process warning quoting a credential is written redacted', async () => {
    const gh = ['gh', 'p_', 'x7Qk2Lm9Vb4Nc8Rt1Yw6Ze3Pa5Sd0Fg2Hj7K'].join('');
    const line = await formatWarning(Object.assign(new Error(`fetch to https://api.example.com/?token=${gh} is deprecated`), { name: 'DeprecationWarning' }));
    assert.equal(line, `(node:${process.pid}) DeprecationWarning: fetch to https://api.example.com/?token=[REDACTED:github-token] is deprecated\n`);
  });

  test('the installed handler writes a redacted warning to stderr (child process)', () => {
    const gh = ['gh', 'p_', 'x7Qk2Lm9Vb4Nc8Rt1Yw6Ze3Pa5Sd0Fg2Hj7K'].join('');
    const mod = new URL('../../src/util/warnings.ts', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `const { quietSqliteExperimentalWarning } = await import(${JSON.stringify(mod)}); quietSqliteExperimentalWarning(); process.emitWarning('token ${gh} in a URL');`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /Warning: token \[REDACTED:github-token\] in a URL/);
    assert.ok(!r.stderr.includes(gh));
  });

  test('detector findings and known values in every form', () => {
    // A GitHub-token-shaped sample, built from parts so no scanner mistakes this file for a leak.
    const gh = ['gh', 'p_', 'x7Qk2Lm9Vb4Nc8Rt1Yw6Ze3Pa5Sd0Fg2Hj7K'].join('');
    assert.equal(redactLogLine(`token ${gh} here`), 'token [REDACTED:github-token] here');
    assert.equal(redactLogLine(`echo ${Buffer.from(VALUE).toString('base64')}`, SET), `echo ${REDACTED_VALUE}`);
    assert.equal(redactLogLine('nothing secret'), 'nothing secret');
  });
});
