import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { inspect } from 'node:util';
import fc from 'fast-check';
import { isBastionError } from '../../src/errors.ts';
import { aesGcmDecrypt, randomKeyBytes, sha256Hex } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import { SEALED_SECRET_FORMAT, openSecret, sealSecret, type SealedSecret, type SecretRef } from '../../src/vault/envelope.ts';
import { VAULT_DECRYPT_ERROR_CODE, VAULT_DECRYPT_MESSAGE } from '../../src/vault/errors.ts';
import { kekFromBytes, type Kek } from '../../src/vault/kek.ts';

const kek = kekFromBytes(randomKeyBytes(32));
const otherKek = kekFromBytes(randomKeyBytes(32));
const ref: SecretRef = { id: 'github', version: 3 };
const VALUE = 'test-value-not-a-credential-0123456789';

/** Asserts that opening fails with the vault decrypt code, the fixed message, and no detail beyond the ref. */
function assertSealedRejected(sealed: unknown, r: SecretRef = ref, k: Kek = kek): void {
  assert.throws(
    () => openSecret(k, r, sealed as SealedSecret),
    (err: unknown) => {
      assert.ok(isBastionError(err, VAULT_DECRYPT_ERROR_CODE));
      assert.equal(err.message, VAULT_DECRYPT_MESSAGE);
      assert.deepEqual(err.detail, { secret: r.id, version: r.version });
      return true;
    },
  );
}

function clone(sealed: SealedSecret): Record<string, Record<string, string>> {
  return JSON.parse(JSON.stringify(sealed)) as Record<string, Record<string, string>>;
}

const BOX_FIELDS = [
  ['wrappedKey', 'iv'],
  ['wrappedKey', 'tag'],
  ['wrappedKey', 'ciphertext'],
  ['value', 'iv'],
  ['value', 'tag'],
  ['value', 'ciphertext'],
] as const;

test('sealSecret/openSecret: round trip, also through JSON', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  assert.equal(openSecret(kek, ref, sealed).reveal(), VALUE);
  assert.equal(openSecret(kek, ref, JSON.parse(JSON.stringify(sealed)) as SealedSecret).reveal(), VALUE);
  assert.equal(sealed.format, SEALED_SECRET_FORMAT);
  assert.equal(sealed.kekId, kek.id);
  assert.deepEqual(Object.keys(sealed).sort(), ['format', 'kekId', 'value', 'wrappedKey']);
  for (const [part, field] of BOX_FIELDS) assert.match(sealed[part][field], /^[A-Za-z0-9_-]+$/);
});

test('sealSecret: a fresh data key and IVs each time', () => {
  const a = sealSecret(kek, ref, new Secret(VALUE));
  const b = sealSecret(kek, ref, new Secret(VALUE));
  for (const [part, field] of BOX_FIELDS) assert.notEqual(a[part][field], b[part][field], `${part}.${field}`);
});

test('openSecret: another KEK fails, also with the kekId rewritten to match', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  assertSealedRejected(sealed, ref, otherKek);
  assertSealedRejected({ ...sealed, kekId: otherKek.id }, ref, otherKek);
});

test('openSecret: another secret id or version fails (AAD binds both parts)', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  assertSealedRejected(sealed, { id: 'gitlab', version: 3 });
  assertSealedRejected(sealed, { id: 'github', version: 2 });
  assertSealedRejected(sealed, { id: 'github', version: 4 });
  assertSealedRejected(sealed, { id: 'GitHub', version: 3 });
});

test('openSecret: ids that look like the AAD separators do not collide', () => {
  const tricky: SecretRef[] = [
    { id: 'a|version=1', version: 1 },
    { id: 'a', version: 1 },
    { id: 'a"|version=1', version: 1 },
    { id: 'a\\', version: 1 },
    { id: 'a\\"', version: 1 },
    { id: '\ud800', version: 1 },
    { id: '\udc00', version: 1 },
    { id: '\ufffd', version: 1 },
    { id: 'a|key', version: 1 },
    { id: 'value', version: 1 },
  ];
  const sealed = tricky.map((r) => sealSecret(kek, r, new Secret(VALUE)));
  tricky.forEach((r, i) => {
    sealed.forEach((s, j) => {
      if (i === j) assert.equal(openSecret(kek, r, s).reveal(), VALUE);
      else assertSealedRejected(s, r);
    });
  });
});

test('openSecret: a SealedSecret of another secret, or parts mixed from two, fail', () => {
  const refB: SecretRef = { id: 'slack', version: 3 };
  const a = sealSecret(kek, ref, new Secret(VALUE));
  const b = sealSecret(kek, refB, new Secret('another-test-value'));
  assertSealedRejected(b, ref);
  assertSealedRejected({ ...a, wrappedKey: b.wrappedKey }, ref);
  assertSealedRejected({ ...a, value: b.value }, ref);
  // Same secret, two seals: each data key opens only its own value.
  const a2 = sealSecret(kek, ref, new Secret(VALUE));
  assertSealedRejected({ ...a, value: a2.value }, ref);
  // The wrapped data key box cannot stand in for the value box, nor the reverse.
  assertSealedRejected({ ...a, value: a.wrappedKey }, ref);
  assertSealedRejected({ ...a, wrappedKey: a.value }, ref);
});

test('openSecret: every single flipped byte of every binary field fails', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  for (const [part, field] of BOX_FIELDS) {
    const bytes = Buffer.from(sealed[part][field], 'base64url');
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const flipped = Buffer.from(bytes);
        flipped[i]! ^= mask;
        const bad = clone(sealed);
        bad[part]![field] = flipped.toString('base64url');
        assertSealedRejected(bad);
      }
    }
  }
});

test('openSecret: every single changed character of every text field fails (non-canonical base64url included)', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (const [part, field] of BOX_FIELDS) {
    const text = sealed[part][field];
    for (let i = 0; i < text.length; i++) {
      // Neighbouring alphabet letters differ in the low bits: the ones a lenient decoder drops in the last character.
      const at = alphabet.indexOf(text[i]!);
      for (const c of [alphabet[(at + 1) % 64]!, '=', '+', '/', ' ', '.']) {
        const bad = clone(sealed);
        bad[part]![field] = text.slice(0, i) + c + text.slice(i + 1);
        assertSealedRejected(bad);
      }
    }
    for (const extra of ['=', '==', 'A', '\n']) {
      const bad = clone(sealed);
      bad[part]![field] = text + extra;
      assertSealedRejected(bad);
    }
  }
  for (let i = 0; i < sealed.kekId.length; i++) {
    const c = sealed.kekId[i] === '0' ? '1' : '0';
    assertSealedRejected({ ...sealed, kekId: sealed.kekId.slice(0, i) + c + sealed.kekId.slice(i + 1) });
  }
  for (const format of [0, 2, '1', null]) assertSealedRejected({ ...sealed, format });
});

test('openSecret: truncated fields, missing or extra fields, and non-objects fail', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  for (const [part, field] of BOX_FIELDS) {
    const bytes = Buffer.from(sealed[part][field], 'base64url');
    for (const keep of [0, 1, bytes.length - 1]) {
      const bad = clone(sealed);
      bad[part]![field] = bytes.subarray(0, keep).toString('base64url');
      assertSealedRejected(bad);
    }
    const text = sealed[part][field];
    const badText = clone(sealed);
    badText[part]![field] = text.slice(0, -1);
    assertSealedRejected(badText);
    const missing = clone(sealed);
    delete missing[part]![field];
    assertSealedRejected(missing);
    const extra = clone(sealed);
    extra[part]!['aad'] = 'x';
    assertSealedRejected(extra);
    const wrongType = clone(sealed) as Record<string, Record<string, unknown>>;
    wrongType[part]![field] = [...Buffer.from(text, 'base64url')];
    assertSealedRejected(wrongType);
  }
  for (const key of ['format', 'kekId', 'wrappedKey', 'value'] as const) {
    const { [key]: _dropped, ...rest } = sealed;
    assertSealedRejected(rest);
  }
  assertSealedRejected({ ...sealed, note: 'x' });
  assertSealedRejected({ ...sealed, kekId: sealed.kekId.slice(0, -1) });
  for (const junk of [undefined, null, 'sealed', 42, [], [sealed], { __proto__: sealed }]) assertSealedRejected(junk);
});

test('openSecret: every failure has the same message and detail', () => {
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  const failures: unknown[] = [];
  const attempts: Array<() => unknown> = [
    () => openSecret(otherKek, ref, sealed),
    () => openSecret(kek, { id: 'github', version: 4 }, { ...sealed }),
    () => openSecret(kek, ref, { ...sealed, value: { ...sealed.value, tag: sealed.wrappedKey.tag } }),
    () => openSecret(kek, ref, { ...sealed, format: 2 } as unknown as SealedSecret),
  ];
  for (const attempt of attempts) {
    try {
      attempt();
    } catch (err) {
      failures.push(err);
    }
  }
  assert.equal(failures.length, attempts.length);
  const shapes = new Set(failures.map((e) => (isBastionError(e) ? `${e.code}|${e.message}|${JSON.stringify({ ...e.detail, version: 0 })}` : 'other')));
  assert.equal(shapes.size, 1);
});

test('sealSecret/openSecret: programmer errors are TypeErrors', () => {
  assert.throws(() => sealSecret(kek, { id: '', version: 1 }, new Secret(VALUE)), TypeError);
  assert.throws(() => sealSecret(kek, { id: 'x', version: 0 }, new Secret(VALUE)), TypeError);
  assert.throws(() => sealSecret(kek, { id: 'x', version: 1.5 }, new Secret(VALUE)), TypeError);
  assert.throws(() => sealSecret(kek, { id: 'x', version: Number.NaN }, new Secret(VALUE)), TypeError);
  assert.throws(() => sealSecret(kek, ref, VALUE as unknown as Secret), TypeError);
  // A lone surrogate would come back as U+FFFD: refused instead of changed.
  assert.throws(() => sealSecret(kek, ref, new Secret('ab\ud800cd')), /well-formed/);
  const sealed = sealSecret(kek, ref, new Secret(VALUE));
  assert.throws(() => openSecret(kek, { id: 'github', version: -1 }, sealed), TypeError);
});

test('property: random values round-trip and never appear in the sealed JSON', () => {
  const values = fc.oneof(
    fc.constant(''),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ unit: 'grapheme', maxLength: 50 }),
    fc.string({ unit: 'binary-ascii', maxLength: 200 }),
  );
  fc.assert(
    fc.property(values, fc.string({ minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 2 ** 31 }), (value, id, version) => {
      const r = { id, version };
      const sealed = sealSecret(kek, r, new Secret(value));
      assert.equal(openSecret(kek, r, sealed).reveal(), value);
      const json = JSON.stringify(sealed);
      assert.ok(!json.includes('[redacted]'));
      // Short strings occur in random base64url by chance; from 8 characters, a hit means a leak.
      if (value.length >= 8) {
        const bytes = Buffer.from(value, 'utf8');
        for (const form of [value, JSON.stringify(value).slice(1, -1), bytes.toString('base64url'), bytes.toString('base64'), bytes.toString('hex')]) {
          assert.ok(!json.includes(form), 'sealed JSON holds the value');
        }
      }
      // Clear value bytes are the same length as the ciphertext (GCM is a stream mode), nothing more.
      assert.equal(Buffer.from(sealed.value.ciphertext, 'base64url').length, Buffer.byteLength(value, 'utf8'));
    }),
    { numRuns: 300 },
  );
});

test('property: a value sealed for one ref never opens under another', () => {
  const refs = fc.record({ id: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }), version: fc.integer({ min: 1, max: 5 }) });
  fc.assert(
    fc.property(refs, refs, (a, b) => {
      fc.pre(a.id !== b.id || a.version !== b.version);
      assertSealedRejected(sealSecret(kek, a, new Secret(VALUE)), b);
    }),
    { numRuns: 200 },
  );
});

test('Kek and SealedSecret do not show key material when printed', () => {
  const keyBytes = randomKeyBytes(32);
  const k = kekFromBytes(keyBytes);
  for (const shown of [JSON.stringify(k), inspect(k, { showHidden: true, depth: 5 }), String(Object.entries(k))]) {
    assert.ok(!shown.includes(keyBytes.toString('base64url')));
    assert.ok(!shown.includes(keyBytes.toString('base64')));
    assert.ok(!shown.includes(keyBytes.toString('hex')));
  }
  assert.deepEqual(JSON.parse(JSON.stringify(k)), { id: k.id });
  assert.match(inspect(k), /^Kek \{ id: '[0-9a-f]{16}' \}$/);
  const secret = new Secret(VALUE);
  const sealed = sealSecret(k, ref, secret);
  assert.ok(!inspect(sealed, { depth: 5 }).includes(VALUE));
});

test('Kek.wrap/unwrap: 32-byte keys only, AAD and key bound', () => {
  const dataKey = randomKeyBytes(32);
  const wrapped = kek.wrap(dataKey, 'ctx');
  assert.deepEqual(kek.unwrap(wrapped, 'ctx'), dataKey);
  assert.equal(kek.unwrap(wrapped, 'ctx2'), undefined);
  assert.equal(otherKek.unwrap(wrapped, 'ctx'), undefined);
  assert.equal(kek.unwrap({ ...wrapped, ciphertext: wrapped.ciphertext.slice(0, -2) }, 'ctx'), undefined);
  assert.throws(() => kek.wrap(randomKeyBytes(16), 'ctx'), RangeError);
  assert.throws(() => kekFromBytes(randomKeyBytes(31 + 1).subarray(1)), RangeError);
});

interface Vector {
  ref: SecretRef;
  value: string;
  aad: { key: string; value: string };
  sealed: SealedSecret;
}
const vectors = JSON.parse(readFileSync(new URL('vectors/sealed-v1.json', import.meta.url), 'utf8')) as {
  kek: string;
  kekId: string;
  valid: Vector[];
};

test('vectors: format 1 sealed secrets open, and the AAD encoding is as documented', () => {
  const keyBytes = Buffer.from(vectors.kek, 'base64url');
  const k = kekFromBytes(keyBytes);
  assert.equal(k.id, vectors.kekId);
  assert.equal(k.id, sha256Hex(keyBytes).slice(0, 16));
  for (const v of vectors.valid) {
    assert.equal(openSecret(k, v.ref, v.sealed).reveal(), v.value);
    // Independently of envelope.ts: unwrap and decrypt with the primitives and the documented AAD.
    const box = (b: { iv: string; tag: string; ciphertext: string }) => ({
      iv: Buffer.from(b.iv, 'base64url'),
      tag: Buffer.from(b.tag, 'base64url'),
      ciphertext: Buffer.from(b.ciphertext, 'base64url'),
    });
    const dataKey = aesGcmDecrypt(keyBytes, box(v.sealed.wrappedKey), Buffer.from(v.aad.key, 'utf8'));
    assert.ok(dataKey !== undefined && dataKey.length === 32);
    const clear = aesGcmDecrypt(dataKey, box(v.sealed.value), Buffer.from(v.aad.value, 'utf8'));
    assert.equal(clear?.toString('utf8'), v.value);
    assert.equal(v.aad.value, `bastion/v1|value|secret=${JSON.stringify(v.ref.id)}|version=${v.ref.version}`);
  }
});
