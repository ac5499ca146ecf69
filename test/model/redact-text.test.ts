/**
 * Redaction of model output: redactText (the definition), StreamingTextRedactor
 * (the same output for any split of the text into chunks, holding back only
 * what can still change), and the JSON path for tool-call arguments.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { findSecrets } from '../../src/detect/secrets.ts';
import {
  CONTEXT_CHARS,
  MAX_PEM_CHARS,
  MAX_RUN_HOLD_CHARS,
  redactJsonText,
  redactText,
  redactValue,
  RUN_STEP_CHARS,
  StreamingJsonRedactor,
  StreamingTextRedactor,
  type TextRedactionOptions,
} from '../../src/model/redact-text.ts';
import { cutAt } from '../helpers/chunks.ts';
import { assertLinear } from '../helpers/complexity.ts';
import { prng } from '../helpers/prng.ts';

// Credential-shaped strings are assembled at run time from a seeded generator, so
// no realistic literal sits in the repository.
const rnd = prng(20260);
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const B64 = `${ALNUM}+/`;
const HEX = '0123456789abcdef';
function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(rnd() * alphabet.length)];
  return out;
}
const b64url = (s: string): string => Buffer.from(s).toString('base64url');
const pemLines = (n: number): string => Array.from({ length: n }, () => pick(B64, 64)).join('\n');
const BEGIN = (label: string): string => `-----BEGIN ${label}-----`;
const END = (label: string): string => `-----END ${label}-----`;
const PK = 'PRIVATE ' + 'KEY';
const uuid4 = (): string => `${pick(HEX, 8)}-${pick(HEX, 4)}-4${pick(HEX, 3)}-a${pick(HEX, 3)}-${pick(HEX, 12)}`;

/** Makers of credentials the detector finds, covering the holds: plain tokens, whitespace inside the secret, PEM, Kubernetes. */
const MAKERS: Record<string, () => string> = {
  github: () => ['gh', 'p_', pick(ALNUM, 36)].join(''),
  aws: () => ['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join(''),
  stripe: () => ['sk', '_live_', pick(ALNUM, 24)].join(''),
  jwt: () => [b64url('{"alg":"HS256","typ":"JWT"}'), b64url(`{"sub":"${pick(ALNUM, 8)}"}`), pick(`${ALNUM}_-`, 43)].join('.'),
  pem: () => `${BEGIN(`RSA ${PK}`)}\n${pemLines(3)}\n${END(`RSA ${PK}`)}`,
  pemTruncated: () => `${BEGIN(`OPENSSH ${PK}`)}\n${pemLines(2)}\n${pick(B64, 20)}`,
  pemSample: () => `${BEGIN(PK)}\n...\n${END(PK)}`,
  certificate: () => `${BEGIN('CERTIFICATE')}\n${pemLines(2)}\n${END('CERTIFICATE')}`,
  password: () => `password = "${pick(ALNUM, 14)}"`,
  envPassword: () => `DB_PASSWORD=${pick(B64, 24)}`,
  curlQuoted: () => `curl -u "admin:${pick(ALNUM, 6)} ${pick(ALNUM, 6)}" https://x.test`,
  curlUser: () => `curl --user=bob:${pick(ALNUM, 12)} x`,
  heroku: () => `heroku_api_key = ${uuid4()}`,
  sonar: () => `sonar.token = ${pick(HEX, 40)}`,
  urlCredentials: () => `https://user:${pick(ALNUM, 12)}@db.example.org/x`,
  bearer: () => `Authorization: Bearer ${pick(`${ALNUM}-._~+/`, 40)}`,
  k8sDataFirst: () => `apiVersion: v1\ndata:\n  password: ${Buffer.from(pick(ALNUM, 12)).toString('base64')}\nkind: Secret\nmetadata:\n  name: x\n`,
  k8sKindFirst: () => `kind: Secret\ndata:\n  token: ${Buffer.from(pick(ALNUM, 15)).toString('base64')}  \n`,
  nuget: () => `<add key="ClearTextPassword" value="${pick(ALNUM, 5)} ${pick(ALNUM, 6)}" />`,
};
const SAMPLES = Object.values(MAKERS).flatMap((make) => [make(), make(), make()]);
/** Known values with characters that JSON- and percent-encoding change. */
const VALUES = ['hunter2 "x"/é', `v-${pick(ALNUM, 10)}`];
const VALUE_FORMS = VALUES.flatMap((v) => [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]);
/** Filler that provokes the holds without being a credential: keywords, markers, whitespace, multi-byte characters. */
const FILLER = [' ', '\n', '\t', '\r\n', 'the ', 'key ', 'token: ', 'password', ' = ', '"', "'", ',', '\\n', 'data:\n', 'kind: ', 'Secret\n', '-u ', 'jira ', 'x', 'AKIA', 'ghp_', '-----BEGIN ', '-----END ', 'é', '😀', ':', '/', '='];

const piece = fc.oneof({ arbitrary: fc.constantFrom(...SAMPLES), weight: 3 }, { arbitrary: fc.constantFrom(...FILLER), weight: 5 }, fc.constantFrom(...VALUE_FORMS), fc.string({ maxLength: 8 }));
const textArb = fc.array(piece, { maxLength: 24 }).map((parts) => parts.join(''));
const cutsArb = fc.oneof(fc.array(fc.nat(), { maxLength: 40 }), fc.constant('every' as const));

/** `text` cut at `cuts` (offsets taken modulo its length, in UTF-16 code units: also inside surrogate pairs), or at every character. */
function split(text: string, cuts: readonly number[] | 'every'): string[] {
  if (cuts === 'every') return [...text].flatMap((ch) => (ch.length === 2 ? [ch[0] as string, ch[1] as string] : [ch]));
  return cutAt(text, cuts);
}

/** Streams `chunks` through a redactor: the concatenated output, the pieces, the redactor, and the most it held. */
function stream(chunks: readonly string[], opts?: TextRedactionOptions): { out: string; pieces: string[]; r: StreamingTextRedactor; maxHeld: number } {
  const r = new StreamingTextRedactor(opts);
  const pieces: string[] = [];
  let maxHeld = 0;
  for (const c of chunks) {
    pieces.push(r.push(c));
    maxHeld = Math.max(maxHeld, r.held);
  }
  pieces.push(r.end());
  return { out: pieces.join(''), pieces, r, maxHeld };
}

describe('redactText', () => {
  test('replaces credentials and known values (raw, JSON-escaped, percent-encoded) and counts them', () => {
    const gh = MAKERS.github?.() as string;
    const v = VALUES[0] as string;
    const text = `a ${gh} b ${v} c ${JSON.stringify(v).slice(1, -1)} d ${encodeURIComponent(v)} e`;
    const r = redactText(text, { values: VALUES });
    assert.equal(r.text, 'a [REDACTED:github-token] b [REDACTED:vault-secret] c [REDACTED:vault-secret] d [REDACTED:vault-secret] e');
    assert.equal(r.count, 4);
    assert.deepEqual(r.rules, ['github-token', 'vault-secret']);
    assert.deepEqual(redactText('nothing here', { values: VALUES }), { text: 'nothing here', count: 0, rules: [] });
    assert.deepEqual(redactText(''), { text: '', count: 0, rules: [] });
  });

  test('overlapping spans are merged into one marker named by the earliest start; a known value wins a tie', () => {
    const gh = MAKERS.github?.() as string;
    // A known value inside a token: one span, named by the token (it starts first).
    assert.equal(redactText(`x ${gh} y`, { values: [gh.slice(10, 20)] }).text, 'x [REDACTED:github-token] y');
    // A known value that is the token itself: the known value names it.
    assert.equal(redactText(`x ${gh} y`, { values: [gh] }).text, 'x [REDACTED:vault-secret] y');
    // A known value that begins before the token and ends inside it: one span, named by the value.
    const r = redactText(`x ab/${gh} y`, { values: [`ab/${gh.slice(0, 8)}`] });
    assert.equal(r.text, 'x [REDACTED:vault-secret] y');
    assert.equal(r.count, 1);
  });

  test('values: empty strings are ignored; a lone surrogate is searched in the forms it has; non-strings throw TypeError', () => {
    assert.equal(redactText('a b', { values: [''] }).text, 'a b');
    assert.equal(redactText('a \ud800z b', { values: ['\ud800z'] }).text, 'a [REDACTED:vault-secret] b');
    assert.throws(() => redactText(1 as unknown as string), TypeError);
    assert.throws(() => redactText('x', { values: [1 as unknown as string] }), TypeError);
  });
});

describe('redactValue', () => {
  test('redacts every string (keys kept), leaves the input alone, replaces too-deep subtrees', () => {
    const gh = MAKERS.github?.() as string;
    const input = { a: [`x ${gh}`, 1, null, { b: 'hunter2 "x"/é' }], [gh]: true };
    const frozen = structuredClone(input);
    const r = redactValue(input, { values: VALUES });
    assert.deepEqual(r.value, { a: ['x [REDACTED:github-token]', 1, null, { b: '[REDACTED:vault-secret]' }], [gh]: true });
    assert.equal(r.count, 2);
    assert.deepEqual(input, frozen);
    let deep: unknown = 'leaf';
    for (let i = 0; i < 70; i++) deep = [deep];
    const d = redactValue({ deep });
    assert.equal(d.count, 1);
    assert.deepEqual(d.rules, ['too-deep']);
    assert.ok(JSON.stringify(d.value).includes('[REDACTED:too-deep]'));
  });
});

describe('StreamingTextRedactor', () => {
  test('any split of any text streams to redactText of the whole (property)', () => {
    fc.assert(
      fc.property(textArb, cutsArb, fc.boolean(), (text, cuts, withValues) => {
        const opts = withValues ? { values: VALUES } : {};
        const want = redactText(text, opts);
        const { out, r } = stream(split(text, cuts), opts);
        assert.equal(out, want.text);
        assert.equal(r.count, want.count);
        assert.deepEqual([...r.rules].sort(), [...want.rules].sort());
        // What the detector finds in the whole text never comes out (checked for secrets that occur once), nor a known value.
        for (const f of findSecrets(text)) {
          const secret = text.slice(f.start, f.end);
          if (text.indexOf(secret) === text.lastIndexOf(secret)) assert.ok(!out.includes(secret));
        }
        if (withValues) for (const v of VALUE_FORMS) assert.ok(!out.includes(v));
      }),
      { numRuns: 600 },
    );
  });

  test('emitted pieces never split a surrogate pair (property)', () => {
    fc.assert(
      fc.property(textArb, cutsArb, (text, cuts) => {
        fc.pre(text.isWellFormed());
        // Every piece but the chunks' own halves is well formed: chunks here are cut only between code points.
        const chunks = split(text, cuts === 'every' ? 'every' : cuts).reduce<string[]>((acc, c) => {
          const prev = acc.at(-1);
          if (prev !== undefined && /[\ud800-\udbff]$/.test(prev)) acc[acc.length - 1] = prev + c;
          else acc.push(c);
          return acc;
        }, []);
        for (const p of stream(chunks).pieces) assert.ok(p.isWellFormed(), JSON.stringify(p));
      }),
      { numRuns: 300 },
    );
  });

  test('each credential, cut at every offset into two chunks, streams whole', () => {
    for (const [name, make] of Object.entries(MAKERS)) {
      const text = `before ${make()} after\n`;
      const want = redactText(text).text;
      // A PEM sample body ("...") and a certificate are not credentials: the stream must not redact them either.
      if (name === 'pemSample' || name === 'certificate') assert.equal(want, text, name);
      else assert.notEqual(want, text, name);
      for (let i = 0; i <= text.length; i++) assert.equal(stream([text.slice(0, i), text.slice(i)]).out, want, `${name} cut at ${i}`);
    }
  });

  test('ordinary prose is held back only to the end of the current word', () => {
    const prose = 'The quick brown fox reads the key to the data: it is fine. Then the token of the day jumps over the moon, twice.\n'.repeat(20);
    const { out, maxHeld } = stream(split(prose, 'every'));
    assert.equal(out, prose);
    assert.ok(maxHeld <= 8, `held ${maxHeld}`);
  });

  test('a secret that holds whitespace is held from its keyword', () => {
    // curl -u "user:pass word": emitting `"admin:ab ` before the rest arrives would leak it.
    const curl = `run curl -u "admin:${pick(ALNUM, 6)} ${pick(ALNUM, 6)}" https://x.test now`;
    const heroku = `set heroku_api_key = ${uuid4()} then`;
    for (const text of [curl, heroku]) {
      const want = redactText(text).text;
      assert.notEqual(want, text);
      const { out, pieces } = stream(split(text, 'every'));
      assert.equal(out, want);
      // Nothing of the secret came out before the marker.
      assert.ok(!pieces.slice(0, pieces.findIndex((p) => p.includes('[REDACTED'))).join('').includes('admin:'));
    }
  });

  test('a PEM block is held from -----BEGIN to its END line; a certificate is let go after its header', () => {
    const key = `${BEGIN(PK)}\n${pemLines(200)}\n${END(PK)}`;
    const text = `here:\n${key}\nafter`;
    const { out, pieces } = stream(split(text, 'every'));
    assert.equal(out, 'here:\n[REDACTED:private-key]\nafter');
    assert.ok(pieces.every((p) => !p.includes('PRIVATE')));
    const cert = `${BEGIN('CERTIFICATE')}\n${pemLines(200)}\n${END('CERTIFICATE')}\n`;
    const c = stream(split(cert, 'every'));
    assert.equal(c.out, cert);
    assert.ok(c.maxHeld < 100, `held ${c.maxHeld}`);
  });

  test(`a truncated key longer than MAX_PEM_CHARS (${MAX_PEM_CHARS}) is redacted as it streams, line by line`, () => {
    const lines = Math.ceil((2.5 * MAX_PEM_CHARS) / 65);
    const text = `${BEGIN(PK)}\n${pemLines(lines)}\nand then prose ${MAKERS.github?.()} here\n`;
    const want = redactText(text).text;
    assert.ok(want.startsWith('[REDACTED:private-key]'));
    for (const size of [7, 997]) {
      const { out, maxHeld, pieces } = stream(split(text, Array.from({ length: Math.ceil(text.length / size) }, (_, i) => i * size)));
      assert.equal(out, want);
      assert.ok(maxHeld <= MAX_PEM_CHARS + 2048, `held ${maxHeld}`);
      // The marker went out long before the key ended.
      const at = pieces.findIndex((p) => p.includes('[REDACTED:private-key]'));
      assert.ok(at >= 0 && at < pieces.length / 2, `marker in piece ${at} of ${pieces.length}`);
    }
  });

  test(`a run without whitespace is held at most MAX_RUN_HOLD_CHARS + RUN_STEP_CHARS (${MAX_RUN_HOLD_CHARS} + ${RUN_STEP_CHARS})`, () => {
    const gh = MAKERS.github?.() as string;
    const text = `${pick(ALNUM, 70_000)}/${gh}/${pick(ALNUM, 50_000)}.${MAKERS.jwt?.()} tail`;
    const want = redactText(text).text;
    assert.ok(!want.includes(gh));
    const { out, maxHeld } = stream(split(text, Array.from({ length: text.length / 5 }, (_, i) => i * 5)));
    assert.equal(out, want);
    assert.ok(maxHeld <= MAX_RUN_HOLD_CHARS + RUN_STEP_CHARS, `held ${maxHeld}`);
    assert.ok(maxHeld >= MAX_RUN_HOLD_CHARS - 8, `held ${maxHeld}: the run must be held to the cap`);
  });

  test('Kubernetes: data listed before kind: Secret (kubectl order) is held until the kind line decides', () => {
    const value = Buffer.from(pick(ALNUM, 16)).toString('base64');
    const text = `apiVersion: v1\ndata:\n  password: ${value}\n${'  other: line\n'.repeat(20)}kind: Secret\nmetadata:\n  name: db\n`;
    const want = redactText(text).text;
    assert.ok(!want.includes(value));
    const { out, pieces } = stream(split(text, 'every'));
    assert.equal(out, want);
    assert.ok(!pieces.join('').includes(value));
  });

  test('left context: a keyword emitted long before its value still names it; `context` seeds it', () => {
    const value = pick(B64, 24);
    const text = `DB_PASSWORD=${value}`;
    assert.equal(stream(['DB_PASS', 'WORD=', value.slice(0, 3), value.slice(3)]).out, 'DB_PASSWORD=[REDACTED:generic-secret]');
    const r = new StreamingTextRedactor({}, 'config:\nDB_PASSWORD=');
    assert.equal(r.push(value) + r.end(), '[REDACTED:generic-secret]');
    assert.equal(redactText(text).text, 'DB_PASSWORD=[REDACTED:generic-secret]');
    assert.ok(CONTEXT_CHARS >= 1024, 'the window covers the `curl` a `-u` needs');
  });

  test('end() is idempotent; push after end throws TypeError', () => {
    const r = new StreamingTextRedactor();
    assert.equal(r.push('abc'), '');
    assert.equal(r.end(), 'abc');
    assert.equal(r.end(), '');
    assert.equal(r.held, 0);
    assert.throws(() => r.push('x'), TypeError);
    assert.throws(() => new StreamingTextRedactor().push(1 as unknown as string), TypeError);
  });

  test('push() over many small chunks is linear in the stream length', () => {
    const unit = `the key ${MAKERS.github?.()} and password = "${pick(ALNUM, 14)}" -u jira data:\nkind: x ${'word '.repeat(30)}\n`;
    const small = unit.repeat(Math.ceil(20_000 / unit.length));
    const large = unit.repeat(Math.ceil(80_000 / unit.length));
    const work = (input: string): void => {
      const r = new StreamingTextRedactor({ values: VALUES });
      for (let i = 0; i < input.length; i += 4) r.push(input.slice(i, i + 4));
      r.end();
    };
    assertLinear('StreamingTextRedactor.push', work, small, large);
    const run = (n: number): string => pick(ALNUM, n);
    assertLinear('StreamingTextRedactor.push (one long run)', work, run(60_000), run(240_000));
  });
});

/** Arbitrary JSON values whose strings hold credentials, known values, escapes and multi-byte characters. */
const jsonString = fc.oneof(fc.constantFrom(...SAMPLES, ...VALUE_FORMS, 'a "q" \\ / \b\f\n\r\t \u0001 é 😀'), fc.string({ maxLength: 12 }));
const { json: jsonArb } = fc.letrec((tie) => ({
  json: fc.oneof({ depthSize: 'small', withCrossShrink: true }, jsonString, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(true, false, null), tie('array'), tie('object')),
  array: fc.array(tie('json'), { maxLength: 4 }),
  object: fc.dictionary(fc.oneof(fc.constantFrom('__proto__', 'password', 'k"ey'), fc.string({ maxLength: 6 })), tie('json'), { maxKeys: 4 }),
}));
/** JSON text of `v`, compact or indented, with some characters written as escapes JSON.stringify does not use. */
function serialize(v: unknown, indent: boolean, escapes: boolean): string {
  const s = JSON.stringify(v, null, indent ? 2 : undefined);
  return escapes ? s.replace(/é/g, '\\u00e9').replace(/\//g, '\\/').replace(/😀/g, '\\ud83d\\ude00') : s;
}

describe('StreamingJsonRedactor and redactJsonText', () => {
  test('any split streams to the one-shot output, which parses to redactValue of the input (property)', () => {
    fc.assert(
      fc.property(jsonArb, fc.boolean(), fc.boolean(), cutsArb, (value, indent, escapes, cuts) => {
        const text = serialize(value, indent, escapes);
        const whole = redactJsonText(text, { values: VALUES });
        const r = new StreamingJsonRedactor({ values: VALUES });
        const out = split(text, cuts).map((c) => r.push(c)).join('') + r.end();
        assert.equal(out, whole.text);
        assert.equal(r.count, whole.count);
        assert.ok(r.isJson);
        const expected = redactValue(JSON.parse(text), { values: VALUES });
        assert.deepEqual(JSON.parse(out), expected.value);
        assert.equal(whole.count, expected.count);
      }),
      { numRuns: 400 },
    );
  });

  test('a marker never lands inside an escape; keys, numbers and layout are kept', () => {
    const gh = MAKERS.github?.() as string;
    const text = `{"${gh}": 1.5e3, "list": [ "a\\n${gh}\\n", true ], "p": "hunter2 \\"x\\"\\/\\u00e9" }`;
    const out = redactJsonText(text, { values: VALUES }).text;
    assert.equal(out, `{"${gh}": 1.5e3, "list": [ "a\\n[REDACTED:github-token]\\n", true ], "p": "[REDACTED:vault-secret]" }`);
    assert.deepEqual(JSON.parse(out), redactValue(JSON.parse(text), { values: VALUES }).value);
  });

  test('a container deeper than MAX_REDACT_DEPTH becomes "[REDACTED:too-deep]"', () => {
    const text = `{"a": ${'['.repeat(70)}"x", {"b": "}]"}${']'.repeat(70)}, "c": 1}`;
    const r = redactJsonText(text);
    assert.deepEqual(JSON.parse(r.text), redactValue(JSON.parse(text)).value);
    assert.deepEqual(r.rules, ['too-deep']);
  });

  test('text that stops being JSON is redacted as text from there on: no credential survives', () => {
    const gh = MAKERS.github?.() as string;
    const value = pick(B64, 24);
    for (const text of [`{"a": ${gh}}`, `{"DB_PASSWORD": 1, x DB_PASSWORD=${value} }`, `{"a": "x\u0001 ${gh}"}`, `{"a": "\\q ${gh}"}`, `[1, 2] ${gh}`]) {
      const whole = redactJsonText(text);
      assert.equal(whole.text, redactText(text).text, 'unparsable text is redacted whole');
      for (const cuts of [[], 'every' as const, [3, 9, 17]]) {
        const r = new StreamingJsonRedactor();
        const out = split(text, cuts).map((c) => r.push(c)).join('') + r.end();
        assert.ok(!out.includes(gh) && !out.includes(value), `${JSON.stringify(text)} → ${JSON.stringify(out)}`);
        assert.equal(r.isJson, false);
      }
    }
  });

  test('push() over many small fragments is linear', () => {
    const unit = `{"cmd": "echo ${MAKERS.github?.()} and some words", "n": [1, 2, 3], "nested": {"k": "v v v v"}}`;
    const mk = (n: number): string => `[${Array.from({ length: n }, () => unit).join(',')}]`;
    const work = (input: string): void => {
      const r = new StreamingJsonRedactor();
      for (let i = 0; i < input.length; i += 3) r.push(input.slice(i, i + 3));
      r.end();
    };
    assertLinear('StreamingJsonRedactor.push', work, mk(150), mk(600));
  });
});
