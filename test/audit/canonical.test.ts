import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import { canonicalJson } from '../../src/audit/canonical.ts';

interface Vectors {
  valid: { name: string; input: string; expected: string }[];
  numbers: { ieee754: string; expected: string }[];
  invalidNumbers: { ieee754: string; name: string }[];
  invalid: { name: string; input: string }[];
}
const vectors = JSON.parse(readFileSync(new URL('./vectors/jcs.json', import.meta.url), 'utf8')) as Vectors;

function fromIeee(hex: string): number {
  const view = new DataView(new ArrayBuffer(8));
  view.setBigUint64(0, BigInt(`0x${hex}`));
  return view.getFloat64(0);
}

for (const v of vectors.valid) {
  test(`JCS valid: ${v.name}`, () => {
    assert.equal(canonicalJson(JSON.parse(v.input)), v.expected);
  });
}

test('JCS numbers: RFC 8785 Appendix B', () => {
  assert.ok(vectors.numbers.length >= 20);
  for (const v of vectors.numbers) {
    assert.equal(canonicalJson(fromIeee(v.ieee754)), v.expected, v.ieee754);
  }
});

test('JCS numbers: NaN and infinities are rejected with TypeError', () => {
  for (const v of vectors.invalidNumbers) {
    assert.throws(() => canonicalJson(fromIeee(v.ieee754)), TypeError, v.name);
    assert.throws(() => canonicalJson({ a: [fromIeee(v.ieee754)] }), TypeError, v.name);
  }
});

for (const v of vectors.invalid) {
  test(`JCS invalid: ${v.name}`, () => {
    assert.throws(() => canonicalJson(JSON.parse(v.input)), TypeError);
  });
}

test('undefined, functions, symbols and bigints are rejected with TypeError', () => {
  assert.throws(() => canonicalJson(undefined), TypeError);
  assert.throws(() => canonicalJson({ a: () => 1 }), TypeError);
  assert.throws(() => canonicalJson({ a: Symbol('x') }), TypeError);
  assert.throws(() => canonicalJson([1n]), TypeError);
  const cyclic: Record<string, unknown> = {};
  cyclic['self'] = cyclic;
  assert.throws(() => canonicalJson(cyclic), TypeError);
});

test('object members whose value is undefined are omitted', () => {
  assert.equal(canonicalJson({ b: 1, a: undefined }), '{"b":1}');
});

test('property: canonical JSON is a fixed point and agrees with JSON.parse', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      const text = canonicalJson(value);
      assert.equal(canonicalJson(JSON.parse(text)), text);
      assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(value)));
    }),
  );
});
