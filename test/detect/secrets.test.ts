import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { looksGenerated, looksRandomLower } from '../../src/detect/secret-rules.ts';
import { findSecrets, secretRuleHosts, MAX_PEM_CHARS, MAX_REDACT_DEPTH, redactDeep, redactSecrets, SECRET_RULES } from '../../src/detect/secrets.ts';
import { assertLinear } from '../helpers/complexity.ts';
import { prng } from '../helpers/prng.ts';

// Credential-shaped strings are assembled at run time from a seeded generator, so
// no realistic literal sits in the repository.
const rnd = prng(42);
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(rnd() * alphabet.length)];
  return out;
}
const b64url = (s: string) => Buffer.from(s).toString('base64url');

const SAMPLES: Record<string, string> = {
  'github-token': ['gh', 'p_', pick(ALNUM, 36)].join(''),
  'github-fine-grained-pat': ['github', '_pat_', pick(ALNUM, 22), '_', pick(ALNUM, 59)].join(''),
  'aws-access-key-id': ['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join(''),
  'slack-token': ['xo', 'xb-', pick('0123456789', 12), '-', pick('0123456789', 13), '-', pick(ALNUM, 24)].join(''),
  'slack-webhook-url': ['https://hooks.', 'slack.com/services/T', pick(ALNUM, 8), '/B', pick(ALNUM, 8), '/', pick(ALNUM, 24)].join(''),
  'anthropic-api-key': ['sk-', 'ant-api03-', pick(ALNUM + '_-', 93), 'AA'].join(''),
  'openai-api-key': ['sk-', 'proj-', pick(ALNUM, 40), 'T3Blbk', 'FJ', pick(ALNUM, 40)].join(''),
  'stripe-secret-key': ['sk', '_live_', pick(ALNUM, 24)].join(''),
  'google-api-key': ['AI', 'za', pick(ALNUM + '_-', 35)].join(''),
  jwt: [b64url('{"alg":"HS256","typ":"JWT"}'), b64url(`{"sub":"${pick(ALNUM, 8)}","iat":1516239022}`), pick(ALNUM + '_-', 43)].join('.'),
  'private-key': ['-----BEGIN RSA ', 'PRIVATE KEY-----\n', pick(ALNUM + '+/', 64), '\n', pick(ALNUM + '+/', 64), '\n-----END RSA ', 'PRIVATE KEY-----'].join(''),
};

describe('findSecrets: one credential of each rule', () => {
  for (const [rule, secret] of Object.entries(SAMPLES)) {
    test(rule, () => {
      const text = `before ${secret} after`;
      assert.deepEqual(findSecrets(text), [{ rule, start: 7, end: 7 + secret.length }]);
      assert.equal(redactSecrets(text).text, `before [REDACTED:${rule}] after`);
    });
  }

  test('bearer-token: only the credential is redacted, in header, JSON and curl forms', () => {
    const token = pick(ALNUM + '-._~+/', 40);
    for (const [text, expect] of [
      [`Authorization: Bearer ${token}\r\n`, 'Authorization: Bearer [REDACTED:bearer-token]\r\n'],
      [`{"authorization": "bearer ${token}"}`, '{"authorization": "bearer [REDACTED:bearer-token]"}'],
      [`curl -H 'Proxy-Authorization: Bearer ${token}'`, "curl -H 'Proxy-Authorization: Bearer [REDACTED:bearer-token]'"],
    ]) {
      assert.equal(redactSecrets(text as string).text, expect);
    }
  });

  test('generic-secret: the value of a secret-named assignment, with entropy', () => {
    const value = pick(ALNUM + '+/', 32);
    assert.equal(redactSecrets(`DB_PASSWORD=${value}`).text, 'DB_PASSWORD=[REDACTED:generic-secret]');
    assert.equal(redactSecrets(`"api_key": "${value}",`).text, '"api_key": "[REDACTED:generic-secret]",');
    assert.equal(redactSecrets(`client_secret := '${value}'`).text, "client_secret := '[REDACTED:generic-secret]'");
    // not values: low entropy, references, URLs, short
    for (const text of [
      'password = aaaaaaaaaaaaaaaaaaaaaaaa',
      'apiKey: process.env.OPENAI_API_KEY',
      'token = SOME_ENVIRONMENT_VARIABLE',
      'token_url: https://oauth2.example.com/token',
      'password: hunter2',
      'secret: <<SECRET_abcdefabcdef>>',
    ]) {
      assert.deepEqual(findSecrets(text), [], text);
    }
  });

  test('placeholders and near misses are not flagged', () => {
    for (const text of [
      ['ghp', '_', 'x'.repeat(36)].join(''),
      ['sk', '_live_', 'A'.repeat(24)].join(''),
      ['AKIA', 'X'.repeat(16)].join(''),
      'task_test_' + pick(ALNUM, 30),
      ['-----BEGIN PRIVATE ', 'KEY-----\n...\n-----END PRIVATE ', 'KEY-----'].join(''),
      '{"alg":"HS256"}.{"name":"x"}.abc',
      'xoxe-1-xxx',
    ]) {
      assert.deepEqual(findSecrets(text), [], text);
    }
  });

  test('a PEM block without END (truncated output) is still redacted up to the end of its base64', () => {
    const text = ['-----BEGIN OPENSSH ', 'PRIVATE KEY-----\n', pick(ALNUM, 70), '\n', pick(ALNUM, 20), '\nand then prose.'].join('');
    // The first word of the following line is taken for base64: over-redaction beats a leak.
    assert.equal(redactSecrets(text).text, '[REDACTED:private-key] then prose.');
    const escaped = ['"-----BEGIN RSA ', 'PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\n\\n', pick(ALNUM, 64), '\\n', pick(ALNUM, 10), '", "next": 1'].join('');
    assert.equal(redactSecrets(escaped).text, '"[REDACTED:private-key]", "next": 1');
  });

  test('overlapping findings merge; the more specific rule names them', () => {
    const gh = SAMPLES['github-token'] as string;
    const r = redactSecrets(`GITHUB_TOKEN=${gh}`);
    assert.equal(r.text, 'GITHUB_TOKEN=[REDACTED:github-token]');
    assert.deepEqual(r.rules, ['github-token']);
    const jwt = SAMPLES.jwt as string;
    assert.equal(redactSecrets(`Authorization: Bearer ${jwt}`).text, 'Authorization: Bearer [REDACTED:jwt]');
  });

  test('redaction is idempotent and exact (property)', () => {
    const secrets = Object.values(SAMPLES);
    const filler = fc.string({ minLength: 1, maxLength: 30 }).map((s) => s.replace(/[A-Za-z0-9_\-+/=.]/g, ' '));
    fc.assert(
      fc.property(fc.array(fc.tuple(filler, fc.constantFrom(...secrets)), { maxLength: 6 }), filler, (parts, tail) => {
        const text = parts.map(([f, s]) => f + s).join('') + tail;
        const once = redactSecrets(text);
        assert.equal(once.count, parts.length);
        assert.equal(redactSecrets(once.text).text, once.text);
        for (const s of secrets) assert.ok(!once.text.includes(s));
      }),
      { numRuns: 300 },
    );
  });

  test('every rule id is documented in SECRET_RULES', () => {
    for (const rule of [...Object.keys(SAMPLES), 'bearer-token', 'generic-secret']) assert.ok(SECRET_RULES.includes(rule), rule);
  });
});

describe('redactDeep', () => {
  test('walks objects and arrays, keeps keys, does not modify its input', () => {
    const gh = SAMPLES['github-token'] as string;
    const input = { a: [`x ${gh}`, 1, null, { b: SAMPLES.jwt }], [gh]: true, n: 5 };
    const frozen = structuredClone(input);
    const r = redactDeep(input);
    assert.deepEqual(r.value, { a: ['x [REDACTED:github-token]', 1, null, { b: '[REDACTED:jwt]' }], [gh]: true, n: 5 });
    assert.equal(r.count, 2);
    assert.deepEqual(r.rules.sort(), ['github-token', 'jwt']);
    assert.deepEqual(input, frozen);
  });

  test('a __proto__ key stays data; too-deep subtrees are replaced whole', () => {
    const r = redactDeep(JSON.parse(`{"__proto__": {"k": "${SAMPLES['github-token']}"}}`));
    assert.deepEqual(Object.keys(r.value as object), ['__proto__']);
    assert.equal(Object.getPrototypeOf(r.value), Object.prototype);
    let deep: unknown = 'leaf';
    for (let i = 0; i < MAX_REDACT_DEPTH + 5; i++) deep = [deep];
    const d = redactDeep(deep);
    assert.equal(d.count, 1);
    assert.deepEqual(d.rules, ['too-deep']);
    assert.ok(!JSON.stringify(d.value).includes('leaf'));
  });
});

describe('texts that hold no credential (the third-party corpora run in npm run test:corpora)', () => {
  test('ordinary prose, code and logs that talk about keys, tokens and passwords are not flagged (owned vectors)', () => {
    const texts = readFileSync(join(import.meta.dirname, 'benign-texts.txt'), 'utf8').split('\n\n').filter((t) => t.trim() !== '');
    assert.ok(texts.length >= 40);
    const flagged = texts.filter((text) => findSecrets(text).length > 0).map((text) => `${text.slice(0, 60)}… → ${findSecrets(text).map((f) => f.rule).join(', ')}`);
    assert.deepEqual(flagged, []);
  });

  test('identifiers that are not credentials: UUIDs, git SHAs, digests, base64 data', () => {
    const sha = pick('0123456789abcdef', 40);
    const texts = [
      `commit ${sha}\nAuthor: A <a@example.com>`,
      `request id 0f8fad5b-d9cb-469f-a165-70867728950e failed`,
      `sha256:${pick('0123456789abcdef', 64)}`,
      `"integrity": "sha512-${pick(ALNUM + '+/', 86)}=="`,
      `data:image/png;base64,${pick(ALNUM + '+/', 400)}`,
      'The API key must be rotated every 90 days; the token expires after one hour.',
      'Use `Authorization: Bearer <token>` with the token from the dashboard.',
      'sk-learn-is-a-python-library-for-machine-learning',
    ];
    for (const text of texts) assert.deepEqual(findSecrets(text), [], text);
  });
});

describe('issue 11: the classes the corpora measure (owned vectors; corpus figures in npm run test:corpora)', () => {
  const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const B64 = ALNUM + '+/';
  /** A random value with at least one upper, one lower and one digit (what 30 random bytes in base64 look like). */
  const awsSecret = (): string => {
    for (;;) {
      const v = pick(B64, 40);
      if (/[a-z]/.test(v) && /[A-Z]/.test(v) && /\d/.test(v)) return v;
    }
  };
  const awsId = (): string => ['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join('');
  /** Asserts a finding covers exactly `value` inside `text`. */
  const found = (text: string, value: string): void => {
    const at = text.indexOf(value);
    assert.ok(
      findSecrets(text).some((f) => f.start <= at && f.end >= at + value.length),
      `${JSON.stringify(text)}: ${JSON.stringify(findSecrets(text))}`,
    );
  };

  test('the secret half of an AWS key pair: CSV rows from the console, separators, and prose', () => {
    for (let i = 0; i < 20; i++) {
      const id = awsId();
      const secret = awsSecret();
      for (const text of [
        `Access key ID,Secret access key\n${id},${secret}\n`,
        `User name,Password,Access key ID,Secret access key,Console login link\nbob,,${id},${secret},https://123456789012.signin.aws.amazon.com/console`,
        `"${id}","${secret}"`,
        `${id}:${secret}`,
        `${id}\t${secret}`,
        `${id} | ${secret}`,
        `my aws secret key is ${secret}`,
        `My AWS Secret Access Key: ${secret}`,
        `the aws secret was ${secret}.`,
        `aws_secret = "${secret}"`,
        `AWS access key secret -> ${secret}`,
      ]) {
        found(text, secret);
        if (text.includes(id)) found(text, id);
      }
    }
  });

  test('AWS: no finding for a 40-character word, a filler value, or talk about the key', () => {
    for (const text of [
      `${awsId()},${'a'.repeat(40)}`,
      `${awsId()},abcdefghijklmnopqrstuvwxyzabcdefghijklmn`,
      'my aws secret key is stored in the vault, ask the platform team',
      'aws secret access key rotation: every 90 days',
    ]) {
      assert.deepEqual(findSecrets(text).filter((f) => f.rule === 'aws-secret-access-key'), [], text);
    }
  });

  test('provider-named assignments: lowercase generated values, long numeric secrets, dashed values with random parts', () => {
    for (let i = 0; i < 20; i++) {
      const lower = pick('abcdefghij', 4) + pick(LOWER, 24) + '7a3';
      const [l, d] = ['abcdefghijklmnopqrstuvwxyz', '0123456789'];
      const short = pick(l, 2) + pick(d, 1) + pick(l, 3) + pick(d, 1) + pick(l, 4) + pick(d, 1) + pick(l, 2) + pick(d, 1);
      for (const [text, value] of [
        [`String bitbucketToken = "${lower}";`, lower],
        [`$dropboxToken .= "${short}"`, short],
        [`{\n  "discord_token": "${pick('123456789', 1)}${pick('0123456789', 17)}"\n}`, ''],
        [`  "plaidToken" => "access-development-${pick('0123456789abcdef', 8)}-${pick('0123456789abcdef', 4)}-9${pick('0123456789abcdef', 3)}-${pick('0123456789abcdef', 4)}-${pick('0123456789abcdef', 12)}"`, ''],
        [`kucoinToken = '${pick('0123456789abcdef', 8)}-${pick('0123456789abcdef', 4)}-f${pick('0123456789abcdef', 3)}-${pick('0123456789abcdef', 4)}-${pick('0123456789abcdef', 12)}'`, ''],
        [`kucoin_TOKEN := "${pick('0123456789abcdef', 24)}"`, ''],
      ] as const) {
        if (value) found(text, value);
        else assert.ok(findSecrets(text).length > 0, text);
      }
    }
  });

  test('names and values that say "not a credential" stay quiet', () => {
    for (const text of [
      `nonMatchingToken := "${pick(LOWER, 16)}7a3b"`,
      `invalidToken = "${pick(ALNUM, 30)}"`,
      `key_down_event=${pick(ALNUM, 30)}`,
      `telegram_api_token = "7113:A${pick(LOWER, 34)}"`,
      'token: "clm34681:AgencyIdentificationCodeContentType"',
      'token = user_session_cache',
      'secret_name = build.cache.v2',
      'token_count = 1234567890',
      'api_token = 1700000000000',
      `session_token = "${['0f8fad5b', 'd9cb', '11ef', 'a165', '70867728950e'].join('-')}"`,
    ]) {
      assert.deepEqual(findSecrets(text), [], text);
    }
  });

  test('provider tokens with a distinctive prefix: found in prose, code and CSV, redacted whole, with their hosts', () => {
    const HEX = '0123456789abcdef';
    const low = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const uuid = () => [pick(HEX, 8), pick(HEX, 4), pick(HEX, 4), pick(HEX, 4), pick(HEX, 12)].join('-');
    // Assembled from pieces at run time: no credential-shaped literal sits in the repository.
    const tokens: Record<string, () => string> = {
      'adafruit-io-key': () => ['ai', 'o_', pick(ALNUM, 28)].join(''),
      'adobe-client-secret': () => ['p8', 'e-', pick(ALNUM, 32)].join(''),
      'alibaba-access-key-id': () => ['LT', 'AI', pick(ALNUM, 20)].join(''),
      'artifactory-api-key': () => ['AK', 'Cp', pick(ALNUM, 69)].join(''),
      'artifactory-reference-token': () => ['cmV', 'md', pick(ALNUM, 59)].join(''),
      'apify-api-token': () => ['apify', '_api_', pick(ALNUM, 36)].join(''),
      'brevo-api-key': () => ['xkey', 'sib-', pick(HEX, 64), '-', pick(ALNUM, 16)].join(''),
      'buildkite-token': () => ['bk', 'ua_', pick(low, 40)].join(''),
      'dynatrace-api-token': () => ['dt0', 'c01.', pick(ALNUM, 24), '.', pick(ALNUM, 64)].join(''),
      'easypost-api-token': () => ['EZ', 'AK', pick(ALNUM, 54)].join(''),
      'figma-token': () => ['fig', 'd_', pick(ALNUM + '_-', 40)].join(''),
      'flutterwave-key': () => ['FLW', 'SECK_TEST-', pick('abcdefgh0123456789', 32), '-X'].join(''),
      'harness-api-key': () => ['pa', 't.', pick(ALNUM, 22), '.', pick(ALNUM, 24), '.', pick(ALNUM, 20)].join(''),
      'langsmith-api-key': () => ['lsv', '2_pt_', pick(HEX, 32), '_', pick(HEX, 10)].join(''),
      'lob-api-key': () => ['li', 've_', pick(HEX, 35)].join(''),
      'mailgun-api-key': () => ['ke', 'y-', pick(HEX, 32)].join(''),
      'mapbox-token': () => ['p', 'k.', pick(low, 60), '.', pick(low, 22)].join(''),
      'netlify-token': () => ['nf', 'p_', pick(ALNUM, 36)].join(''),
      'new-relic-key': () => ['NR', 'AK-', pick(ALNUM, 27)].join(''),
      'openrouter-api-key': () => ['sk-', 'or-v1-', pick(HEX, 64)].join(''),
      'pganalyze-api-key': () => ['pg', 'ar_', pick(ALNUM, 27)].join(''),
      'pinecone-api-key': () => ['pc', 'sk_', pick(ALNUM + '_', 60)].join(''),
      'plaid-access-token': () => ['access-', 'sandbox-', uuid()].join(''),
      'planetscale-token': () => ['psc', 'ale_tkn_', pick(ALNUM + '_', 43)].join(''),
      'prefect-api-key': () => ['pn', 'u_', pick(ALNUM, 36)].join(''),
      'readme-api-key': () => ['rd', 'me_', pick(low, 70)].join(''),
      'replicate-api-token': () => ['r', '8_', pick(ALNUM, 37)].join(''),
      'rootly-api-key': () => ['roo', 'tly_', pick(HEX, 64)].join(''),
      'rubygems-api-key': () => ['ruby', 'gems_', pick(HEX, 48)].join(''),
      'settlemint-token': () => ['sm', '_pat_', pick(ALNUM, 16)].join(''),
      'shippo-api-token': () => ['shippo', '_live_', pick(HEX, 40)].join(''),
      'spectralops-token': () => ['sp', 'u-', pick(HEX, 32)].join(''),
      'supabase-token': () => ['sb', 'p_', pick(HEX, 40)].join(''),
      'tailscale-key': () => ['tsk', 'ey-api-', pick(ALNUM, 12), '-', pick(ALNUM, 32)].join(''),
      'twitter-bearer-token': () => ['A'.repeat(22), pick(ALNUM + '%', 90)].join(''),
      'typeform-api-token': () => ['tf', 'p_', pick(ALNUM + '_', 59)].join(''),
      'xai-api-key': () => ['xa', 'i-', pick(ALNUM, 80)].join(''),
    };
    for (const [rule, make] of Object.entries(tokens)) {
      assert.ok(SECRET_RULES.includes(rule), rule);
      const token = make();
      for (const text of [`here is my key ${token} thanks`, `const k = "${token}";`, `name,key\nprod,${token}\n`, `X_KEY=${token}`]) {
        const f = findSecrets(text).filter((x) => x.rule === rule);
        const at = text.indexOf(token);
        assert.deepEqual(f.map((x) => [x.start, x.end]), [[at, at + token.length]], `${rule} in ${JSON.stringify(text)}`);
      }
      // One character too few (formats of one exact length): not that token.
      if (!['pinecone-api-key', 'planetscale-token', 'tailscale-key', 'twitter-bearer-token'].includes(rule)) {
        assert.deepEqual(findSecrets(`v ${token.slice(0, -1)} v`).filter((x) => x.rule === rule), [], `${rule}: one short`);
      }
    }
    assert.deepEqual(secretRuleHosts('shippo-api-token'), ['api.goshippo.com']);
    assert.deepEqual(findSecrets(['shippo', '_live_', 'a'.repeat(40)].join('')), []);
  });

  test('XML credential elements (Jenkins credentials.xml, Maven settings.xml): the content is the secret', () => {
    for (let i = 0; i < 10; i++) {
      const encrypted = ['{AQAAABAAAAAQ', pick(ALNUM + '+/', 64), '=}'].join('');
      const plain = pick(ALNUM, 32);
      for (const [text, value] of [
        [`<com.cloudbees.plugins.credentials.impl.StringCredentialsImpl>\n  <id>deploy</id>\n  <secret>${encrypted}</secret>\n</com.cloudbees.plugins.credentials.impl.StringCredentialsImpl>`, encrypted],
        [`<server>\n  <id>nexus</id>\n  <username>ci</username>\n  <password>${plain}</password>\n</server>`, plain],
        [`<apiToken>\n    ${plain}\n  </apiToken>`, plain],
        [`<secret>{vendor label ${plain}}</secret>`, plain],
      ] as const) {
        found(text, value);
        assert.ok(findSecrets(text).some((f) => f.rule === 'xml-credential-element'), text);
      }
    }
    for (const text of [
      '<password>${env.DB_PASSWORD}</password>',
      '<secret>changeme-changeme</secret>',
      '<password></password>',
      '<secret>true</secret>',
      '<secret>the shared folder</secret>',
      `<password>${'x'.repeat(24)}</password>`,
    ]) {
      assert.deepEqual(findSecrets(text), [], text);
    }
  });

  test('webhook URLs whose path is the credential, and pre-signed URL signatures, with their hosts', () => {
    const HEX = '0123456789abcdef';
    const low = 'abcdefghijklmnopqrstuvwxyz0123456789';
    const hooks: Record<string, string> = {
      'discord-webhook-url': ['https://discord', '.com/api/webhooks/', pick('123456789', 1), pick('0123456789', 17), '/', pick(ALNUM + '_-', 68)].join(''),
      'microsoft-teams-webhook-url': ['https://contoso.webhook', '.office.com/webhookb2/', pick(HEX, 8), '-', pick(HEX, 4), '@', pick(HEX, 8), '/IncomingWebhook/', pick(HEX, 32), '/', pick(HEX, 8)].join(''),
      'zapier-webhook-url': ['https://hooks', '.zapier.com/hooks/catch/', pick('0123456789', 7), '/', pick(low, 6), '/'].join(''),
      'tines-webhook-url': ['https://tenant', '.tines.com/webhook/', pick(low, 32), '/', pick(low, 32)].join(''),
    };
    for (const [rule, url] of Object.entries(hooks)) {
      const text = `curl -X POST '${url}' -d '{}'`;
      const f = findSecrets(text).filter((x) => x.rule === rule);
      assert.equal(f.length, 1, `${rule}: ${JSON.stringify(findSecrets(text))}`);
      assert.ok(f[0] && text.slice(f[0].start, f[0].end).startsWith('https://'), rule);
      assert.ok(secretRuleHosts(rule).length > 0, rule);
    }
    assert.deepEqual(findSecrets(['https://discord', '.com/api/webhooks/123456789012345678/', 'x'.repeat(68)].join('')), []);

    const sig = pick(ALNUM + '+/', 43) + '=';
    const sas = `https://acct.blob.core.windows.net/c/f.txt?sv=2022-11-02&st=2025-03-04T07:24:52Z&se=2025-04-04T15:24:52Z&sr=b&sp=r&sig=${encodeURIComponent(sig)}`;
    found(sas, encodeURIComponent(sig));
    const amz = pick(HEX, 64);
    const presigned = `https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20250101T000000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=${amz}`;
    found(presigned, amz);
    for (const text of ['?sig=short', `&sig=${'a'.repeat(44)}`, 'the sig= parameter carries the signature']) {
      assert.deepEqual(findSecrets(text).filter((f) => f.rule === 'url-signature'), [], text);
    }
  });

  test('generic-secret: long values, a Bearer scheme or a space inside the quotes, percent-encoding, connection-string fields', () => {
    for (let i = 0; i < 10; i++) {
      const long = pick(ALNUM, 120) + '.' + pick(ALNUM, 300);
      const v = pick(ALNUM, 32);
      const pct = pick(ALNUM, 20) + '%2B' + pick(ALNUM, 20) + '%3D';
      // Letters changing case as a generator leaves them, with a `_` inside (base64url).
      const mixed = () => Array.from({ length: 10 }, () => pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1) + pick('abcdefghijklmnopqrstuvwxyz', 1)).join('');
      const letters = mixed() + '_' + mixed();
      for (const [text, value] of [
        [`acme token = '${long}'`, long],
        [`acmeToken := "Bearer ${v}"`, v],
        [`acme_auth_token: "Bearer ${v}" # note`, v],
        [`acme token = ' ${v} '`, v],
        [`API_KEY=${pct}`, pct],
        [`cache.example.net:6380,password=${v},ssl=True`, v],
        [`acme_key: "${letters}"`, letters],
      ] as const) {
        found(text, value);
      }
    }
  });

  test('generic-secret: values a person typed or edited, host names, and values opening with an operator stay quiet', () => {
    const HEX = '0123456789abcdef';
    for (let i = 0; i < 10; i++) {
      const hex = pick(HEX, 40);
      for (const text of [
        // Hex with one stray letter: edited by hand (a generator emits [0-9a-f] or base62, never 39 of 40 hex).
        `api_key = ${hex.slice(0, 20)}q${hex.slice(21)}`,
        `api_key = "${hex.slice(0, 10)}y${hex.slice(11, 30)}z${hex.slice(31)}"`,
        // Counting and typed runs.
        'secret_token = "a1b2c3d4e5f6a7b8c9d0e1f2"',
        'API_KEY=x9qabcdefk2m7w4p0r8tq5',
        'apikey = k7zxcvb3m9p2w8r4t6y1',
        `token = "${pick(ALNUM, 10)}123456${pick(ALNUM, 10)}"`,
        // A host name is where the key is used, not the key.
        'redis_access_key = ab12cd34ef56.redis.cache.windows.net:6380',
        // `KEY==value`, `token=?value`: an operator doubled or a value edited.
        `API_KEY==${pick(ALNUM, 30)}`,
        `auth_token = "?${pick(ALNUM, 30)}"`,
      ]) {
        assert.deepEqual(findSecrets(text).filter((f) => f.rule === 'generic-secret'), [], text);
      }
    }
    // The same shapes, generated: found.
    for (let i = 0; i < 10; i++) {
      const v = pick('abcdefghijklmnopqrstuvwxyz0123456789', 40);
      if (/[0-9]{3}/.test(v) || !/[g-z].*[g-z].*[g-z]/.test(v)) continue;
      found(`api_key = ${v}`, v);
    }
  });

  test('command-line credential flags, Docker config auths, and an Authorization header set in code', () => {
    for (let i = 0; i < 10; i++) {
      const v = pick(ALNUM, 28) + '9';
      for (const [text, value] of [
        [`docker login registry.example.com -u ci -p ${v}`, v],
        [`vault login --token=${v}`, v],
        [`tool deploy --api-key '${v}' --region eu`, v],
        [`az-tool sync --account acct -storagekey ${v}== --container logs`, v],
        [`req.Header.Set("Authorization", "Bearer ${v}")`, v],
        [`headers.set('Authorization', 'Basic ${Buffer.from(`ci:${v}`).toString('base64')}')`, ''],
      ] as const) {
        if (value) found(text, value);
        else assert.ok(findSecrets(text).length > 0, text);
      }
      const auth = Buffer.from(`ci-bot:${v}`).toString('base64');
      found(`{"auths": {"registry.example.com": {"auth": "${auth}"}}}`, auth);
      found(`DOCKER_AUTH_CONFIG={\\"auths\\":{\\"registry.internal\\":{\\"auth\\":\\"${auth}\\"}}}`, auth);
    }
    for (const text of [
      'docker login -u ci -p $REGISTRY_PASSWORD',
      'vault login --token=${{ secrets.VAULT_TOKEN }}',
      'mysql -h db -p password123',
    ]) {
      assert.deepEqual(findSecrets(text), [], text);
    }
    // Not a user:password pair, or a sample one: not a Docker registry credential.
    for (const pair of ['my_username:my_password', 'no colon here', 'ci:changeme']) {
      const text = `{"auths": {"r": {"auth": "${Buffer.from(pair).toString('base64')}"}}}`;
      assert.deepEqual(findSecrets(text).filter((f) => f.rule === 'docker-config-auth'), [], text);
    }
  });

  test('looksRandomLower: lowercase a generator made, not names people write', () => {
    const consonantHeavy = () => {
      for (;;) {
        const v = pick('abcdefghijklmnopqrstuvwxyz', 24);
        if (looksRandomLower(v)) return v;
      }
    };
    for (let i = 0; i < 10; i++) {
      const v = consonantHeavy();
      found(`databox_secret: "${v}"`, v);
      found(`Using Key=${v.slice(0, 10)}-${v.slice(10)}`, v.slice(0, 10));
    }
    for (const v of ['user_session_cache', 'xmlhttprequest', 'build.cache.primary', 'my-secret-name-for-prod', 'kbdmgmtsvc']) assert.ok(!looksRandomLower(v), v);
    for (const text of ['secret_name = user_session_cache', 'token = refresh-access-credentials', 'auth = authentication_provider']) {
      assert.deepEqual(findSecrets(text), [], text);
    }
  });

  test('looksGenerated: interleaved letters and digits, not names people write', () => {
    for (const v of ['cjz5ip6ug319jnzvlnbp2ur2fmgqhfaj', '5n9cfu3dooind3k', 'u9oi47qbrg480n1_8cu40cprfirfcievf45j5rix7dsauu8aa']) assert.ok(looksGenerated(v), v);
    for (const v of ['user_id_2', 'sha256_v2', 'struct_X509_pubkey_st', 'cmp2-qat-1208358310', 'jjwt-jackson-0.11.2', 'base64url']) assert.ok(!looksGenerated(v), v);
  });
});

describe('issue 12: provider rules for formats with no prefix, read from trufflehog\'s detectors (owned vectors)', () => {
  const HEX = '0123456789abcdef';
  const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const B64 = ALNUM + '+/';
  /** A value of `alphabet` with a digit, drawn until it has one (the rules ask for a digit). */
  const value = (alphabet: string, n: number): string => {
    for (;;) {
      const v = pick(alphabet, n);
      if (/\d/.test(v)) return v;
    }
  };
  const only = (text: string, rule: string) => findSecrets(text).filter((f) => f.rule === rule).map((f) => text.slice(f.start, f.end));
  // [rule, provider name as written in config or prose, a credential of the documented shape]
  const named: ReadonlyArray<readonly [string, string, () => string]> = [
    ['api2cart-api-key', 'API2Cart', () => value(HEX, 32)],
    ['apimetrics-api-key', 'apiMetrics', () => value(ALNUM, 32)],
    ['apitemplate-api-key', 'APITemplate', () => value(ALNUM, 39)],
    ['betterstack-token', 'BetterStack', () => value(ALNUM, 24)],
    ['bitfinex-api-key', 'bitfinex', () => value(ALNUM + '_-', 43)],
    ['cloudimage-api-key', 'cloudimage', () => value('abcdefghijklmnopqrstuvwxyz0123456789_', 30)],
    ['cloudmersive-api-key', 'cloudmersive', () => value(LOWER + '-', 36)],
    ['cloudsmith-api-key', 'cloudsmith', () => value(HEX, 40)],
    ['freshworks-api-key', 'freshworks', () => value(ALNUM + '_-', 22)],
    ['instamojo-api-key', 'instamojo', () => value(ALNUM, 40)],
    ['invoiceocean-api-token', 'invoiceocean', () => value(ALNUM, 20)],
    ['jira-api-token', 'jira', () => value(ALNUM, 24)],
    ['kanban-tool-api-token', 'kanbantool', () => value(UPPER, 12)],
    ['keen-io-key', 'keenio', () => value(UPPER, 64)],
    ['liveagent-api-key', 'liveagent', () => value(ALNUM, 32)],
    ['loggly-token', 'loggly', () => [value(LOWER, 8), pick(LOWER, 4), pick(LOWER, 4), pick(LOWER, 4), pick(LOWER, 12)].join('-')],
    ['luno-api-key', 'luno', () => value(ALNUM + '_-', 43)],
    ['mattermost-token', 'mattermost', () => value(LOWER, 26)],
    ['maxmind-license-key', 'geoip', () => value(ALNUM, 16)],
    ['metaapi-token', 'metaapi', () => value(HEX, 64)],
    ['metabase-session-token', 'metabase', () => value(ALNUM, 36)],
    ['mite-api-key', 'mite', () => value(LOWER, 16)],
    ['mixpanel-secret', 'mixpanel', () => value(ALNUM, 32)],
    ['redhat-api-key', 'redhat', () => value(LOWER, 32)],
    ['request-finance-api-key', 'requestfinance', () => [value(UPPER, 7), pick(UPPER, 7), pick(UPPER, 7), pick(UPPER, 7)].join('-')],
    ['scrapingbee-api-key', 'ScrapingBee', () => value(UPPER, 80)],
    ['smartsheet-token', 'smartsheet', () => value(ALNUM, 37)],
    ['textmagic-api-key', 'textmagic', () => value(ALNUM, 30)],
    ['vouchery-api-key', 'vouchery', () => value(LOWER, 36)],
    ['websitepulse-api-key', 'websitepulse', () => value(HEX, 32)],
  ];

  test('a provider\'s name, then within 40 characters a value of its documented shape: the value is the finding', () => {
    for (const [rule, name, make] of named) {
      assert.ok(SECRET_RULES.includes(rule), rule);
      const v = make();
      for (const text of [`${name} '${v}'`, `const ${name}Key = "${v}";`, `Your ${name} key is ${v}, keep it safe.`, `# ${name} credentials\n  key: ${v}\n`]) {
        assert.deepEqual(only(text, rule), [v], `${rule} in ${JSON.stringify(text)}`);
      }
    }
  });

  test('near misses: one character more or less, another alphabet, the name too far away or inside a word', () => {
    for (const [rule, name, make] of named) {
      const v = make();
      const longer = v + (v.at(-1) === '0' ? '1' : '0');
      const swapped = /[a-z]/.test(v) ? v.toUpperCase() : v.toLowerCase();
      const negatives = [`${name} '${v.slice(0, -1)}'`, `${name} '${longer}'`, `${name} ${'and then some other words '.repeat(2)}${v}`, `sub${name.toLowerCase()} '${v}'`];
      // Shapes in one case (hex, upper or lower): the value in the other case is not that shape.
      if (swapped !== v && !/[a-z]/.test(v) !== !/[A-Z]/.test(v)) negatives.push(`${name} '${swapped}'`);
      for (const text of negatives) assert.deepEqual(only(text, rule), [], `${rule}: ${JSON.stringify(text)}`);
    }
    // Filler, a typed run and a value without a digit are not credentials even after the name.
    assert.deepEqual(only(`mixpanel '${'a1'.repeat(16)}'`, 'mixpanel-secret'), []);
    assert.deepEqual(only(`mixpanel 'abcdef${pick(ALNUM, 26)}'`, 'mixpanel-secret'), []);
    assert.deepEqual(only(`mixpanel '${pick('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 32)}'`, 'mixpanel-secret'), []);
    // "termite", "Jiran": the name must start a word (or a camelCase hump).
    assert.deepEqual(only(`termite '${value(LOWER, 16)}'`, 'mite-api-key'), []);
  });

  test('prefixed formats: Cloudflare cfk_/cfut_/cfat_, LaunchDarkly api-/sdk-/mob-, BestTime pri_', () => {
    const cases: ReadonlyArray<readonly [string, () => string]> = [
      ['cloudflare-api-token', () => ['cf', 'ut_', value(ALNUM, 40), pick(HEX, 8)].join('')],
      ['cloudflare-api-token', () => ['cf', 'k_', value(ALNUM, 40), pick(HEX, 8)].join('')],
      ['launchdarkly-key', () => ['sd', 'k-', value(LOWER, 8), '-', pick(LOWER, 4), '-', pick(LOWER, 4), '-', pick(LOWER, 4), '-', pick(LOWER, 12)].join('')],
      ['besttime-api-key', () => ['pr', 'i_', value(HEX, 32)].join('')],
    ];
    for (const [rule, make] of cases) {
      const token = make();
      for (const text of [`here is ${token} thanks`, `API_KEY=${token}`, `"key": "${token}"`]) assert.deepEqual(only(text, rule), [token], `${rule} in ${text}`);
      assert.deepEqual(only(`k ${token.slice(0, -1)} k`, rule), [], `${rule}: one short`);
      assert.deepEqual(only(`k ${token}A k`, rule), [], `${rule}: one long`);
    }
    assert.deepEqual(only(`sdk-${[pick(LOWER, 8), pick(LOWER, 4), pick(LOWER, 4), pick(LOWER, 4), pick(LOWER, 12)].join('-').toUpperCase()}`, 'launchdarkly-key'), []);
    assert.deepEqual(secretRuleHosts('cloudflare-api-token'), ['api.cloudflare.com']);
    // Under a Cloudflare name, the new formats are Cloudflare's (the name's format check let only the old ones through).
    const cfk = ['cf', 'k_', value(ALNUM, 40), pick(HEX, 8)].join('');
    assert.ok(findSecrets(`CLOUDFLARE_API_KEY=${cfk}`).some((f) => f.end - f.start === cfk.length));
  });

  test('Tableau personal access token secrets, Azure Storage account keys, Entra ID refresh tokens', () => {
    const tableau = [value(B64, 22), '==:', value(ALNUM, 32)].join('');
    for (const text of [`pat test-token-6\n${tableau}\n`, `secret=${tableau}`]) assert.deepEqual(only(text, 'tableau-pat-secret'), [tableau]);
    assert.deepEqual(only(`x ${tableau.slice(1)} x`, 'tableau-pat-secret'), []);
    assert.deepEqual(only(`x ${tableau}A x`, 'tableau-pat-secret'), []);

    const accountKey = value(B64, 86) + '==';
    for (const text of [
      `static const std::string AzuriteAccountKey{\n    "${accountKey}"};`,
      `export const key =\n  process.env.ACCOUNT_KEY ||\n  "${accountKey}";`,
      ` --conf spark.copydata.storageaccountkey=${accountKey} \\`,
    ]) {
      assert.deepEqual(only(text, 'azure-storage-account-key'), [accountKey], text);
    }
    assert.deepEqual(only(`AccountKey=${accountKey.slice(2)}`, 'azure-storage-account-key'), []);
    // An integrity digest (SHA-512 in base64 has the same shape) is not under an account key's name.
    assert.deepEqual(findSecrets(`"integrity": "sha512-${accountKey}"`), []);

    const refresh = ['1.A', value(ALNUM + '_-', 55), '.AgAB', value(ALNUM + '_-', 1200)].join('');
    for (const text of [`"refresh_token": "${refresh}"`, `grant_type=refresh_token&refresh_token=${refresh}&scope=x`]) {
      assert.deepEqual(only(text, 'azure-entra-refresh-token'), [refresh], text.slice(0, 40));
    }
    assert.deepEqual(only(`"refresh_token": "${refresh.replace('.AgAB', '.AgBB')}"`, 'azure-entra-refresh-token'), []);
  });

  test('a Sanctum token (`<id>|<40 random>`) under a key name; a YAML key on the next line is not a value', () => {
    const sanctum = ['49|', value(ALNUM, 40)].join('');
    assert.ok(findSecrets(`convier_key: "${sanctum}"`).some((f) => f.end - f.start === sanctum.length));
    assert.deepEqual(findSecrets('auth0_credentials file: \n    auth0_clientID: x\n'), []);
  });
});

describe('complexity: every rule stays linear on adversarial input', () => {
  // Model: noble-hashes test/slow-dos.test.ts; see test/helpers/complexity.ts.
  const N = 40_000;
  const fill = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
  const cases: Record<string, (n: number) => string> = {
    'plain letters': (n) => 'a'.repeat(n),
    'github-token prefix repeated': (n) => fill('ghp_', n),
    'github-token long body': (n) => 'ghp_' + 'a'.repeat(n),
    'github-fine-grained-pat repeated': (n) => fill('github_pat_', n),
    'aws prefix repeated': (n) => fill('AKIA', n),
    'slack prefix repeated': (n) => fill('xoxb-', n),
    'slack long body': (n) => 'xoxb-' + '1-'.repeat(n / 2),
    'slack webhook repeated': (n) => fill('https://hooks.slack.com/services/', n),
    'anthropic prefix repeated': (n) => fill('sk-ant-api03-', n),
    'openai prefix repeated': (n) => fill('sk-', n),
    'openai long body': (n) => 'sk-' + 'a'.repeat(n),
    'stripe prefix repeated': (n) => fill('sk_live_', n),
    'google prefix repeated': (n) => fill('AIza', n),
    'jwt prefix repeated': (n) => fill('eyJ', n),
    'jwt long header, no dot': (n) => 'eyJ' + 'a'.repeat(n),
    'jwt segments repeated': (n) => fill('eyJaaaaaaaaaa.', n),
    'jwt two parts repeated': (n) => fill('eyJaaaaaaaaaa.eyJbbbbbbbbbb', n),
    'pem BEGIN repeated': (n) => fill('-----BEGIN ', n),
    'pem header repeated, no END': (n) => fill('-----BEGIN RSA PRIVATE KEY-----\n', n),
    'pem header and short END repeated': (n) => fill('-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n', n),
    // The END line lies beyond MAX_PEM_CHARS from every header, at both sizes.
    'pem many headers, END far away': (n) => fill('-----BEGIN A PRIVATE KEY-----x', n) + ' '.repeat(MAX_PEM_CHARS) + '-----END PRIVATE KEY-----',
    'bearer repeated': (n) => fill('Authorization: Bearer ', n),
    'authorization then spaces': (n) => 'authorization:' + ' '.repeat(n),
    'generic keyword repeated': (n) => fill('token', n),
    'generic keyword with long name': (n) => fill('password_' + 'a'.repeat(40), n),
    'generic assignment repeated': (n) => fill('token=', n),
    'generic long value': (n) => 'api_key=' + 'a'.repeat(n),
    'generic spaces': (n) => 'secret' + ' '.repeat(n),
    'base64 blob': (n) => pick(ALNUM + '+/', n),
    'aws pair prefix repeated': (n) => fill('AKIAAAAAAAAAAAAAAAAA,', n),
    'aws pair, long base64 after the comma': (n) => 'AKIAAAAAAAAAAAAAAAAA,' + pick(ALNUM + '+/', n),
    'aws secret prose repeated': (n) => fill('my aws secret key is ', n),
    'aws secret prose, long value': (n) => 'aws secret access key: ' + pick(ALNUM + '+/', n),
    'generic lowercase generated value, long': (n) => 'fooToken = "' + fill('a1b2c3d4e5f6g7h8', n),
    'generic lowercase near misses repeated': (n) => fill('fooToken = "a1b2" ', n),
    'hand-written list dashes repeated': (n) => fill('token - ', n),
    'xml element repeated': (n) => fill('<secret>', n),
    'xml element, long content, no closing tag': (n) => '<secret>' + pick(ALNUM + ' ', n),
    'xml elements with content and spaces repeated': (n) => fill('<password>  a1B2c3D4e5 F6g7H8  \n ', n),
    'url signature repeated': (n) => fill('&sig=', n),
    'url signature, long value': (n) => '?sig=' + pick(ALNUM + '%', n),
    'webhook paths repeated': (n) => fill('discord.com/api/webhooks/webhook.office.com/webhookb2/hooks.zapier.com/hooks/catch/', n),
    'generic bearer inside quotes repeated': (n) => fill('token = "Bearer ', n),
    'generic long value, 1024 characters then more': (n) => fill(`api_key=${pick(ALNUM, 1100)} `, n),
    'generic typed runs repeated': (n) => fill('api_key = abcdefabcdef123456 ', n),
    'cli flags repeated': (n) => fill(' -p --password --token=', n),
    'cli flag, long value': (n) => ' --token ' + pick(ALNUM, n),
    'docker auth repeated': (n) => fill('"auth": "', n),
    'docker auth, long base64, no closing quote': (n) => '"auth": "' + pick(ALNUM + '+/', n),
    'authorization header call repeated': (n) => fill('set("Authorization", "Bearer ', n),
    'provider prefixes repeated': (n) => fill('pk.sk.key-live_test_pat.AAAAAAAAAAAAAAAAAAAAAA ', n),
    // Provider names: each occurrence scans its 40-character window for a value of the shape.
    'provider name then near-miss values repeated': (n) => fill(`mixpanel '${'a1B2'.repeat(8)}x' `, n),
    'provider names back to back': (n) => fill('mixpanelmiteloggly', n),
    'provider name then a long run of the value alphabet': (n) => 'mite ' + fill('a1', n),
    'account key then long base64': (n) => 'AccountKey=' + pick(ALNUM + '+/', n),
    'account keys repeated': (n) => fill(`storagekey ${'A'.repeat(40)}== `, n),
    'tableau separator repeated': (n) => fill('AAAAAAAAAAAAAAAAAAAAAA==:', n),
    'refresh token, long body': (n) => 'refresh_token=0.A' + 'a'.repeat(50) + '.AgAB' + 'a'.repeat(n),
    'refresh token names repeated': (n) => fill('refresh_token=1.A', n),
  };
  for (const [name, build] of Object.entries(cases)) {
    test(name, (t) => {
      const small = build(N);
      const large = build(4 * N);
      const ratios = assertLinear(name, (input) => {
        findSecrets(input);
        redactSecrets(input);
      }, small, large);
      t.diagnostic(`n=${N}: ratios ${ratios.map((r) => r.toFixed(1)).join(', ')}`);
    });
  }
});
