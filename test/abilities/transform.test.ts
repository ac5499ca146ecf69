/**
 * The response transform: field selection (dotted paths, arrays item by item),
 * JSON detection, and the size cap with its truncation marker, which never lets
 * the text exceed `maxBytes` or split a UTF-8 character.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { cutUtf8, isJsonContentType, selectFields, shapeResponse } from '../../src/abilities/transform.ts';

describe('selectFields', () => {
  const issue = { number: 1, title: 'Bug', user: { login: 'octo', id: 9, site_admin: false }, labels: [{ name: 'bug', color: 'red' }, { name: 'p1', color: 'blue' }], body: 'long' };

  test('keeps dotted paths, per item on arrays, at any level', () => {
    assert.deepEqual(selectFields(issue, ['number', 'user.login', 'labels.name']), { number: 1, user: { login: 'octo' }, labels: [{ name: 'bug' }, { name: 'p1' }] });
    assert.deepEqual(selectFields([issue, { number: 2 }], ['number', 'user.login']), [{ number: 1, user: { login: 'octo' } }, { number: 2 }]);
  });

  test('a shorter path keeps the whole value; missing paths are left out', () => {
    assert.deepEqual(selectFields(issue, ['user', 'user.login', 'nope', 'title.length']), { user: issue.user });
  });

  test('a primitive at the top stays as it is', () => {
    assert.equal(selectFields('text', ['a']), 'text');
    assert.equal(selectFields(null, ['a']), null);
  });

  test('__proto__ is an ordinary field, never a prototype', () => {
    const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as unknown;
    const out = selectFields(v, ['__proto__.polluted', 'a']) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(Object.keys(out), ['__proto__', 'a']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('deeply nested arrays are bounded', () => {
    let deep: unknown = [1];
    for (let i = 0; i < 10_000; i++) deep = [deep];
    assert.ok(Array.isArray(selectFields(deep, ['a'])));
  });
});

describe('shapeResponse', () => {
  test('JSON content types', () => {
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'application/vnd.github+json', 'text/json']) assert.ok(isJsonContentType(ct), ct);
    for (const ct of ['text/plain', 'application/jsonp', 'text/html', undefined]) assert.ok(!isJsonContentType(ct), String(ct));
  });

  test('JSON is selected and serialized compactly', () => {
    const s = shapeResponse('{ "a": 1, "b": { "c": 2, "d": 3 } }', 'application/json', ['b.c'], 1000);
    assert.deepEqual(s, { text: '{"b":{"c":2}}', truncated: false, json: true });
  });

  test('non-JSON is text, select ignored; JSON that does not parse is text', () => {
    assert.deepEqual(shapeResponse('<p>hi</p>', 'text/html', ['a'], 1000), { text: '<p>hi</p>', truncated: false, json: false });
    assert.deepEqual(shapeResponse('{oops', 'application/json', ['a'], 1000), { text: '{oops', truncated: false, json: false });
  });

  test('an array over the cap keeps whole items and says how many', () => {
    const items = Array.from({ length: 100 }, (_, i) => ({ id: i, title: `issue ${i}` }));
    const s = shapeResponse(JSON.stringify(items), 'application/json', undefined, 400);
    assert.ok(s.truncated);
    assert.ok(Buffer.byteLength(s.text) <= 400);
    const [json, marker] = s.text.split('\n');
    const kept = JSON.parse(json as string) as unknown[];
    assert.ok(kept.length > 3 && kept.length < 100);
    assert.equal(marker, `[truncated by Bastion: ${kept.length} of 100 items]`);
  });

  test('text over the cap is cut on a character boundary, marker included in the cap', () => {
    const s = shapeResponse('é'.repeat(500), 'text/plain', undefined, 200);
    assert.ok(s.truncated);
    assert.ok(Buffer.byteLength(s.text) <= 200);
    assert.match(s.text, /^(é)+\n\[truncated by Bastion: \d+ of 1000 bytes\]$/);
  });

  test('property: the text never exceeds maxBytes and never holds a broken character', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), fc.json({ maxDepth: 3 })), fc.integer({ min: 1, max: 300 }), fc.boolean(), (body, max, asJson) => {
        const s = shapeResponse(body, asJson ? 'application/json' : 'text/plain', undefined, max);
        assert.ok(Buffer.byteLength(s.text, 'utf8') <= Math.max(max, 0));
        assert.ok(!s.text.includes('\ufffd') || body.includes('\ufffd'));
        if (!s.truncated) assert.ok(Buffer.byteLength(s.text) <= max);
      }),
      { numRuns: 1000 },
    );
  });

  test('cutUtf8', () => {
    assert.equal(cutUtf8('aé', 2), 'a');
    assert.equal(cutUtf8('aé', 3), 'aé');
    assert.equal(cutUtf8('😀x', 3), '');
  });
});
