/**
 * Abilities and skillsets in config: what the loader accepts (and how it
 * resolves it), and each definition error with its exact, path-aware message.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import type { ResolvedConfig } from '../../src/config/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { tempDir } from '../helpers/gateway.ts';

const KEY = 'k'.repeat(32);

function write(yaml: string): string {
  const file = join(tempDir(), 'bastion.yaml');
  writeFileSync(file, `version: 1\nserver: { listen: 127.0.0.1:0 }\n${yaml}`);
  return file;
}

async function load(yaml: string): Promise<ResolvedConfig> {
  return (await loadConfig(write(yaml), { env: { K: KEY }, secrets: 'strict' })).config;
}

/** The config error's lines without the `file:line:col: ` prefix. */
async function problems(yaml: string): Promise<string[]> {
  const file = write(yaml);
  try {
    await loadConfig(file, { env: { K: KEY }, secrets: 'strict' });
  } catch (err) {
    assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'), String(err));
    return err.message.split('\n').map((l) => l.replace(/^.*?:\d+:\d+: /, ''));
  }
  assert.fail('config accepted');
}

const GOOD = `secrets:
  github: { hosts: [api.github.com] }
abilities:
  github__issues_list:
    description: List the issues of a repository.
    url: "https://api.github.com/repos/{owner}/{repo}/issues{?state,labels}"
    params:
      type: object
      properties:
        owner: { type: string }
        repo: { type: string }
        state: { type: string, enum: [open, closed, all] }
        labels: { type: array, items: { type: string } }
      required: [owner, repo]
    headers: { X-GitHub-Api-Version: "2022-11-28" }
    secret: github
    response: { select: [number, title, user.login], maxBytes: 8192 }
  github__issue_create:
    description: Open an issue.
    method: POST
    url: "https://api.github.com/repos/{owner}/{repo}/issues"
    params:
      type: object
      properties: { owner: { type: string }, repo: { type: string }, title: { type: string } }
      required: [owner, repo, title]
    body: { title: "{title}", labels: [triage] }
    signContext: false
    token: { audience: https://api.github.com, lifetimeS: 60, header: X-Call-Token }
skillsets:
  github: [github__issues_list, github__issue_create]
agents:
  demo:
    keys: [env:K]
    tools: ["files__*"]
    skillsets: [github]
`;

describe('ability config', () => {
  test('a sound definition loads and resolves', async () => {
    const c = await load(GOOD);
    const a = c.abilities.get('github__issues_list');
    assert.ok(a);
    assert.equal(a.origin, 'https://api.github.com');
    assert.equal(a.host, 'api.github.com');
    assert.equal(a.method, 'GET');
    assert.equal(a.params.additionalProperties, false);
    assert.equal(a.signContext, true);
    assert.equal(a.response.maxBytes, 8192);
    const b = c.abilities.get('github__issue_create');
    assert.deepEqual(b?.token, { lifetimeS: 60, header: 'X-Call-Token', audience: 'https://api.github.com' });
    assert.deepEqual(c.agents.get('demo')?.tools, ['files__*', 'github__issues_list', 'github__issue_create']);
    assert.deepEqual(c.skillsets.get('github'), ['github__issues_list', 'github__issue_create']);
  });

  test('a bound secret granted to an agent too', async () => {
    const out = await problems(`secrets:
  github: { hosts: [api.github.com] }
abilities:
  github__me:
    description: Me.
    url: https://api.github.com/user
    secret: github
agents:
  demo:
    keys: [env:K]
    secrets: [github]
`);
    assert.deepEqual(out, ['agents.demo.secrets[0]: secret github is bound to ability github__me and usable only by it']);
  });

  test('a bound secret over plain http', async () => {
    const out = await problems(`secrets:
  local: { hosts: [api.internal.test] }
abilities:
  local__me: { description: Me., url: "http://api.internal.test/me", secret: local }
`);
    assert.deepEqual(out, ['abilities.local__me.secret: would be sent over plain http; use an https URL']);
  });

  test('unknown skillset, unknown ability in a skillset, a secret bound twice or for another host', async () => {
    const out = await problems(`secrets:
  github: { hosts: [api.github.com] }
abilities:
  a__one: { description: One., url: "https://api.github.com/one", secret: github }
  a__two: { description: Two., url: "https://uploads.github.com/two", secret: github }
skillsets:
  set: [a__one, a__three]
agents:
  demo:
    keys: [env:K]
    skillsets: [set, nope]
`);
    assert.deepEqual(out, [
      'abilities.a__two.secret: secret github is already bound to ability a__one; a bound secret serves one ability',
      'abilities.a__two.secret: secret github\'s hosts do not cover uploads.github.com',
      'skillsets.set[1]: unknown ability a__three: declare it under abilities',
      'agents.demo.skillsets[1]: unknown skillset nope: declare it under skillsets',
    ]);
  });

  test('URL templates that could move the origin, or that Bastion cannot expand safely', async () => {
    const cases: [string, string][] = [
      ['https://{host}/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['https://api.example.com{host}/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['https://api.example.com{.host}/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['https://api.example.com/{host}/x', 'abilities.t.params.required: must include host: {host} fills a path segment, which cannot be left empty'],
      ['https://user@api.example.com/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['{scheme}://api.example.com/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['https://api.example.com:{port}/x', 'abilities.t.url: must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)'],
      ['https://api.example.com/{+host}', 'abilities.t.url: is not a usable URL template: {+…} (reserved or fragment expansion) passes /, ? and # through unencoded; use {name}, {/name} or {?name}'],
      ['https://api.example.com/x{#host}', 'abilities.t.url: is not a usable URL template: {#…} (reserved or fragment expansion) passes /, ? and # through unencoded; use {name}, {/name} or {?name}'],
      ['https://api.example.com/{host:3}', 'abilities.t.url: is not a usable URL template: {host:3}: prefix (:n) and explode (*) modifiers are RFC 6570 level 4, not supported'],
      ['https://api.example.com/{host', 'abilities.t.url: is not a usable URL template: unbalanced { at character 25'],
      ['https://api.example.com/{other}', 'abilities.t.url: {other} is not a property declared in params'],
    ];
    for (const [url, message] of cases) {
      const out = await problems(`abilities:
  t:
    description: T.
    url: "${url}"
    params: { type: object, properties: { host: { type: string } } }
`);
      assert.deepEqual(out, [message], url);
    }
  });

  test('parameter schemas, headers, token header and body', async () => {
    const out = await problems(`abilities:
  t:
    description: T.
    method: GET
    url: "https://api.example.com/{id}{?filter}"
    params:
      type: object
      properties: { id: { type: string }, filter: { type: object } }
      required: [id]
    headers: { Host: evil.example, Signature: x, Bastion-Context: x, Content-Length: "1", Authorization: x }
    token: true
    body: { a: "{id}", b: "{nope}" }
  u:
    description: U.
    url: "https://api.example.com/u"
    params: { type: array }
  v:
    description: V.
    url: "https://api.example.com/v"
    params: { type: object, properties: { x: { type: strin } } }
`);
    assert.deepEqual(out, [
      'abilities.t.params.properties.filter.type: must be string, number, integer, boolean or array (the parameter fills the URL)',
      'abilities.t.headers.Host: is set by Bastion or the HTTP client and cannot be configured',
      'abilities.t.headers.Signature: is set by Bastion or the HTTP client and cannot be configured',
      'abilities.t.headers.Bastion-Context: is set by Bastion or the HTTP client and cannot be configured',
      'abilities.t.headers.Content-Length: is set by Bastion or the HTTP client and cannot be configured',
      'abilities.t.headers.Authorization: carries the per-call token (token.header) and cannot be configured',
      'abilities.t.body: a GET request carries no body; use POST, PUT, PATCH or DELETE',
      'abilities.t.body: {nope} is not a property declared in params',
      'abilities.u.params.type: must be "object": the parameters are one object of named values',
      'abilities.v.params: is not a JSON Schema that compiles (ajv, draft 2020-12 unless $schema says draft-07)',
    ]);
  });
});
