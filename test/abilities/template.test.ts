/**
 * Ability URL templates: strict parsing (RFC 6570 grammar, the allowed
 * operators), expansion that keeps every path value inside one segment, and
 * the request built from config plus parameters. Valid and invalid vectors,
 * every attack the issue names, and a property: whatever string a parameter
 * holds, an accepted URL keeps the ability's origin and its path's segment count.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { buildAbilityRequest, fillBody, arrayParams } from '../../src/abilities/request.ts';
import { expandUrl, parseUrlTemplate, unsafePathValue, type UrlTemplate } from '../../src/abilities/template.ts';
import type { ResolvedAbility } from '../../src/config/types.ts';

const ORIGIN = 'https://api.acme.test';

function parsed(t: string): UrlTemplate {
  const p = parseUrlTemplate(t);
  assert.ok(!('error' in p), `parses: ${t}: ${'error' in p ? p.error : ''}`);
  return p;
}

const ISSUES = parsed(`${ORIGIN}/repos/{owner}/{repo}/issues{?state,labels}`);

function expand(args: Record<string, unknown>, t: UrlTemplate = ISSUES, arrays: ReadonlySet<string> = new Set(['labels'])) {
  return expandUrl(t, args, ORIGIN, arrays);
}

describe('parseUrlTemplate', () => {
  test('valid templates of levels 1 and 3', () => {
    for (const t of [
      `${ORIGIN}/x`,
      `${ORIGIN}`,
      `${ORIGIN}/repos/{owner}/{repo}`,
      `${ORIGIN}/files{/name}{.ext}`,
      `${ORIGIN}/m{;a,b}`,
      `${ORIGIN}/search{?q,page}{&limit}`,
      `${ORIGIN}/search?fixed=1{&q}`,
      `${ORIGIN}/a.b/{x.y}`,
      `https://api.acme.test:8443/v1/{id}`,
    ]) parsed(t);
  });

  test('invalid templates, each with its reason', () => {
    const bad: [string, RegExp][] = [
      [`${ORIGIN}/{+path}`, /reserved or fragment/],
      [`${ORIGIN}/x{#frag}`, /reserved or fragment/],
      [`${ORIGIN}/{x:3}`, /level 4/],
      [`${ORIGIN}/{list*}`, /level 4/],
      [`${ORIGIN}/{=x}`, /reserved by RFC 6570/],
      [`${ORIGIN}/{x`, /unbalanced \{/],
      [`${ORIGIN}/x}`, /unbalanced \}/],
      [`${ORIGIN}/{a{b}}`, /nested/],
      [`${ORIGIN}/{}`, /not a variable name/],
      [`${ORIGIN}/{a-b}`, /not a variable name/],
      [`${ORIGIN}/{a,}`, /not a variable name/],
      [`${ORIGIN}/a b`, /space/],
      [`${ORIGIN}/a\\b`, /literal part/],
      [`${ORIGIN}/x#frag`, /fragment/],
      [`${ORIGIN}/100%`, /percent-encoded/],
      ['ftp://x/y', /literal http/],
      ['https://{host}/x', /literal http/],
    ];
    for (const [t, why] of bad) {
      const p = parseUrlTemplate(t);
      assert.ok('error' in p, `refused: ${t}`);
      assert.match(p.error, why, t);
    }
  });

  test('tells path expressions from query expressions', () => {
    const t = parsed(`${ORIGIN}/a/{x}?fixed=1{&y}`);
    const exprs = t.parts.filter((p) => p.kind === 'expression');
    assert.deepEqual(
      exprs.map((e) => [e.kind === 'expression' ? e.names : [], e.inQuery]),
      [
        [['x'], false],
        [['y'], true],
      ],
    );
  });
});

describe('expandUrl', () => {
  test('fills path and query', () => {
    const r = expand({ owner: 'octo', repo: 'hello-world', state: 'open', labels: ['bug', 'p1'] });
    assert.ok(r.ok);
    assert.equal(r.url.href, `${ORIGIN}/repos/octo/hello-world/issues?state=open&labels=bug,p1`);
    assert.equal(r.path, '/repos/octo/hello-world/issues');
  });

  test('query values are percent-encoded, never structure', () => {
    const r = expand({ owner: 'o', repo: 'r', state: 'a&admin=true#x' });
    assert.ok(r.ok);
    assert.equal(r.url.search, '?state=a%26admin%3Dtrue%23x');
    assert.equal(r.url.hash, '');
    assert.equal(r.url.searchParams.get('admin'), null);
  });

  test('every path attack of the issue is refused, naming the parameter', () => {
    const attacks: [string, string][] = [
      ['../admin', 'separator'],
      ['..', 'dot_segment'],
      ['.', 'dot_segment'],
      ['a/b', 'separator'],
      ['a%2Fb', 'separator'],
      ['a%2fb', 'separator'],
      ['a%252Fb', 'separator'],
      ['a%25252fb', 'separator'],
      ['a%5Cb', 'separator'],
      ['%2e%2e', 'dot_segment'],
      ['.%2E', 'dot_segment'],
      ['%252e%252e', 'dot_segment'],
      ['evil.com@', 'separator'],
      ['@evil.com', 'separator'],
      ['x?y=1', 'separator'],
      ['x#f', 'separator'],
      ['\\evil', 'separator'],
      ['a\r\nHost: evil', 'control'],
      ['a\nb', 'control'],
      ['a%0d%0ab', 'control'],
      ['a\u0000b', 'control'],
      ['', 'empty'],
    ];
    for (const [value, reason] of attacks) {
      const r = expand({ owner: value, repo: 'r' });
      assert.deepEqual(r, { ok: false, param: 'owner', reason }, JSON.stringify(value));
      const r2 = expand({ owner: 'o', repo: value });
      assert.equal(r2.ok, false, JSON.stringify(value));
    }
  });

  test('values that only look odd are fine and stay one segment', () => {
    for (const v of ['a.b', '...', 'a..b', '~user', 'naïve', '100%', '%zz', 'a+b', 'a;b', 'a=b', 'a,b', ' spaced ']) {
      const r = expand({ owner: v, repo: 'r' });
      assert.ok(r.ok, JSON.stringify(v));
      assert.equal(r.url.pathname.split('/').length, 5, JSON.stringify(v));
      assert.equal(decodeURIComponent(r.url.pathname.split('/')[2] as string), v);
    }
  });

  test('types: objects never, arrays only where the schema says so', () => {
    assert.deepEqual(expand({ owner: { a: 1 }, repo: 'r' }), { ok: false, param: 'owner', reason: 'type' });
    assert.deepEqual(expand({ owner: ['a', 'b'], repo: 'r' }), { ok: false, param: 'owner', reason: 'type' });
    assert.deepEqual(expand({ owner: 'o', repo: 'r', labels: [{ x: 1 }] }), { ok: false, param: 'labels', reason: 'type' });
    const n = expand({ owner: 42, repo: true });
    assert.ok(n.ok);
    assert.equal(n.path, '/repos/42/true/issues');
  });

  test('list items in the path are checked one by one', () => {
    const t = parsed(`${ORIGIN}/files{/parts}`);
    assert.ok(expandUrl(t, { parts: ['a', 'b'] }, ORIGIN, new Set(['parts'])).ok);
    assert.deepEqual(expandUrl(t, { parts: ['a', '..'] }, ORIGIN, new Set(['parts'])), { ok: false, param: 'parts', reason: 'dot_segment' });
  });

  test('a simple path expression with no value is refused (it would leave an empty segment)', () => {
    assert.deepEqual(expand({ owner: 'o' }), { ok: false, param: 'repo', reason: 'missing' });
    assert.deepEqual(expand({ owner: 'o', repo: [] }, ISSUES, new Set(['repo'])), { ok: false, param: 'repo', reason: 'missing' });
    // An optional {/x} just drops out.
    const t = parsed(`${ORIGIN}/files{/name}`);
    const r = expandUrl(t, {}, ORIGIN, new Set());
    assert.ok(r.ok);
    assert.equal(r.path, '/files');
  });

  test('a template whose literal path holds a dot segment never passes the normalization check', () => {
    const t = parsed(`${ORIGIN}/a/../{x}`);
    assert.deepEqual(expandUrl(t, { x: 'y' }, ORIGIN, new Set()), { ok: false, param: null, reason: 'normalized' });
  });

  test('property: any string in the path keeps the origin and the segment count, or is refused', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 24 }), fc.string({ unit: fc.constantFrom('%', '2', 'f', 'F', '5', 'c', '.', '/', '\\', '@', 'a', '?', '#'), maxLength: 12 }), (a, b) => {
        for (const v of [a, b, `${a}${b}`]) {
          const r = expand({ owner: v, repo: 'r' });
          if (!r.ok) continue;
          assert.equal(r.url.origin, ORIGIN);
          assert.equal(r.url.pathname.split('/').length, 5);
          assert.equal(r.url.pathname.split('/')[4], 'issues');
          assert.ok(!/%2f|%5c/i.test(decodeURIComponent(r.url.pathname.split('/')[2] as string)));
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('unsafePathValue decodes any depth', () => {
    let v = '/';
    for (let i = 0; i < 6; i++) {
      v = encodeURIComponent(v);
      assert.equal(unsafePathValue(`a${v}b`), 'separator', v);
    }
    assert.equal(unsafePathValue('plain'), undefined);
  });
});

function ability(over: Partial<ResolvedAbility> = {}): ResolvedAbility {
  return {
    name: 'acme__thing',
    description: 'x',
    method: 'POST',
    url: `${ORIGIN}/repos/{owner}/{repo}/issues{?state,labels}`,
    origin: ORIGIN,
    host: 'api.acme.test',
    params: { type: 'object', properties: { owner: { type: 'string' }, repo: { type: 'string' }, title: { type: 'string' }, n: { type: 'integer' } }, additionalProperties: false },
    headers: { 'X-Api-Version': '2022-11-28' },
    body: { title: '{title}', count: '{n}', fixed: 'literal {title}', tags: ['a', '{title}'], nested: { x: '{missing}' } },
    signContext: true,
    response: { maxBytes: 1000 },
    timeoutMs: 1000,
    ...over,
  };
}

describe('buildAbilityRequest', () => {
  test('config headers and defaults; body template with typed values; absent params drop their key', () => {
    const a = ability();
    const r = buildAbilityRequest(a, ISSUES, { owner: 'o', repo: 'r', n: 3 }, arrayParams(a.params));
    assert.ok('url' in r);
    assert.equal(r.method, 'POST');
    assert.equal(r.headers['x-api-version'], '2022-11-28');
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers.accept, 'application/json');
    assert.deepEqual(JSON.parse(Buffer.from(r.body).toString('utf8')), { count: 3, fixed: 'literal {title}', tags: ['a'], nested: {} });
    const withTitle = buildAbilityRequest(a, ISSUES, { owner: 'o', repo: 'r', title: 'Hi\r\nBastion-Context: forged' }, new Set());
    assert.ok('url' in withTitle);
    assert.equal(JSON.parse(Buffer.from(withTitle.body).toString('utf8')).title, 'Hi\r\nBastion-Context: forged');
    assert.equal(Object.keys(withTitle.headers).some((h) => h === 'bastion-context'), false);
  });

  test('a GET never carries the body template', () => {
    const a = ability({ method: 'GET' });
    const r = buildAbilityRequest(a, ISSUES, { owner: 'o', repo: 'r', title: 't' }, new Set());
    assert.ok('url' in r);
    assert.equal(r.body.length, 0);
    assert.equal(r.headers['content-type'], undefined);
  });

  test('fillBody keeps non-matching strings literal and JSON types intact', () => {
    assert.deepEqual(fillBody({ a: '{x}', b: '{ x }', c: 1, d: null, e: [true, '{y}'] }, { x: [1, 2], y: false }), { a: [1, 2], b: '{ x }', c: 1, d: null, e: [true, false] });
  });
});
