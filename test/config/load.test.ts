import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import picomatch from 'picomatch';
import { loadConfig, parseConfigText, type ConfigIssue } from '../../src/config/load.ts';
import { BastionError, isBastionError, type BastionErrorCode } from '../../src/errors.ts';
import { Secret } from '../../src/util/secret.ts';

const root = join(import.meta.dirname, '..', '..');
const example = join(root, 'examples/quickstart/bastion.yaml');
const temps: string[] = [];
after(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

function tempDir(name = 'bastion-config-'): string {
  const d = mkdtempSync(join(tmpdir(), name));
  temps.push(d);
  return d;
}

/** Writes `text` as bastion.yaml in a fresh temp dir (plus extra files) and returns its path. */
function writeConfig(text: string, files: Record<string, string> = {}): string {
  const dir = tempDir();
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, text);
  return file;
}

/** The example of issue 2, verbatim: it must stay accepted as written while the schema grows. */
const ISSUE_EXAMPLE = `version: 1
server:
  listen: 127.0.0.1:8790
store:
  sqlite: ./.bastion/bastion.db
agents:
  demo:
    keys: [env:BASTION_DEMO_KEY]
    tools: ["files__*"]
    deny: ["files__write_file", "files__edit_file"]
    approve: ["files__move_file"]
upstreams:
  files:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]
paths:
  allow: ["./workspace/**"]
  deny: ["**/.env", "**/*.pem", "**/id_*"]
approvals:
  timeoutMs: 120000
`;

test('the example of issue 2 is accepted exactly as written', async () => {
  const { config } = await loadConfig(writeConfig(ISSUE_EXAMPLE), { env: { BASTION_DEMO_KEY: 'd'.repeat(24) }, secrets: 'strict' });
  assert.deepEqual([...config.agents.keys()], ['demo']);
  assert.equal(config.agents.get('demo')?.keys.length, 1);
  assert.equal(config.upstreams.get('files')?.kind, 'stdio');
  assert.equal(config.approvals.timeoutMs, 120000);
});

/** Runs `fn`, asserts it throws a BastionError with `code`, and returns it. */
async function rejects(fn: () => unknown, code: BastionErrorCode): Promise<BastionError> {
  try {
    await fn();
  } catch (err) {
    assert.ok(isBastionError(err), `expected a BastionError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, nothing was thrown`);
}

function issuesOf(err: BastionError): ConfigIssue[] {
  return err.detail?.issues as ConfigIssue[];
}

/** 1-based line of the first line of `text` containing `needle`. */
function lineOf(text: string, needle: string): number {
  const i = text.split('\n').findIndex((l) => l.includes(needle));
  assert.ok(i >= 0, `${needle} not in text`);
  return i + 1;
}

const BASE = `version: 1
agents:
  demo:
    tools: ["files__*"]
upstreams:
  files:
    command: npx
`;

describe('the quickstart example', () => {
  test('is accepted as written, the demo agent listing no keys (one is generated on first start)', async () => {
    const { config, warnings } = await loadConfig(example, { env: {} });
    const dir = join(root, 'examples/quickstart');
    assert.equal(config.file, example);
    assert.equal(config.dir, dir);
    assert.equal(config.storePath, join(dir, '.bastion/bastion.db'));
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8790);
    assert.deepEqual(config.server.allowedHosts, ['127.0.0.1:8790', 'localhost:8790', '[::1]:8790']);
    assert.deepEqual(config.server.allowedOrigins, ['http://127.0.0.1:8790', 'http://localhost:8790', 'http://[::1]:8790']);
    const demo = config.agents.get('demo');
    assert.ok(demo);
    assert.deepEqual(demo.keys, []);
    assert.deepEqual(demo.unresolvedKeyRefs, []);
    assert.deepEqual(demo.tools, ['files__*']);
    assert.deepEqual(demo.deny, ['files__write_file', 'files__edit_file']);
    assert.deepEqual(demo.approve, ['files__move_file']);
    const files = config.upstreams.get('files');
    assert.ok(files);
    assert.equal(files.kind, 'stdio');
    assert.equal(files.command, 'npx');
    assert.deepEqual(files.args, ['-y', '@modelcontextprotocol/server-filesystem', './workspace']);
    assert.equal(files.cwd, dir);
    assert.deepEqual(config.paths.allow, [join(dir, 'workspace/**')]);
    assert.deepEqual(config.paths.deny, ['**/.env', '**/*.pem', '**/id_*']);
    assert.equal(config.paths.base, dir);
    assert.equal(config.approvals.timeoutMs, 120000);
    assert.deepEqual(warnings, []);
  });

  test('resolves a listed demo key from the environment', async () => {
    const key = 'k'.repeat(24);
    const listed = writeConfig(ISSUE_EXAMPLE);
    const { config, warnings } = await loadConfig(listed, { env: { BASTION_DEMO_KEY: key } });
    const demo = config.agents.get('demo');
    assert.equal(demo?.keys.length, 1);
    assert.equal(demo?.keys[0]?.reveal(), key);
    assert.deepEqual(demo?.unresolvedKeyRefs, []);
    assert.deepEqual(warnings, []);
    assert.ok(!JSON.stringify(demo).includes(key));
  });

  test('the result is deeply frozen', async () => {
    const { config } = await loadConfig(example, { env: {} });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.raw.agents.demo?.tools));
    assert.ok(Object.isFrozen(config.paths.allow));
    assert.ok(Object.isFrozen(config.agents.get('demo')));
    assert.throws(() => (config.agents as Map<string, unknown>).set('x', {}), TypeError);
    assert.throws(() => (config.upstreams as Map<string, unknown>).delete('files'), TypeError);
    assert.equal(config.agents.size, 1);
  });
});

describe('schema errors name file, line, column and path', () => {
  test('an unknown key points at the key', async () => {
    const text = `version: 1
agents:
  demo:
    toolz: ["files__*"]
`;
    const file = writeConfig(text);
    const err = await rejects(() => loadConfig(file, { env: {} }), 'ERR_CONFIG_INVALID');
    assert.equal(err.message, `${file}:4:5: agents.demo.toolz: unknown key`);
    assert.deepEqual(issuesOf(err), [{ path: 'agents.demo.toolz', line: 4, col: 5, message: 'unknown key' }]);
  });

  test('a value of the wrong type points at the value', () => {
    const text = `${BASE}approvals:\n  timeoutMs: soon\n`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    const issue = issuesOf(err)[0];
    assert.equal(issue?.path, 'approvals.timeoutMs');
    assert.equal(issue?.line, lineOf(text, 'timeoutMs'));
    assert.equal(issue?.col, 14);
    assert.match(err.message, /^cfg\.yaml:\d+:14: approvals\.timeoutMs: .*expected number/);
  });

  test('a bad tool glob names agents.demo.tools[1] and its line', () => {
    const text = `version: 1
agents:
  demo:
    tools:
      - files__read_file
      - "files__["
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.equal(issuesOf(err).length, 1);
    assert.match(err.message, /^cfg\.yaml:6:9: agents\.demo\.tools\[1\]: bad glob/);
  });

  test('a missing required key points at the parent', () => {
    const err = parseThrows('agents: {}\n', 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => [i.path, i.line, i.col]),
      [['version', 1, 1]],
    );
    assert.match(err.message, /version: missing required key/);
  });

  test('every issue is reported, in source order', () => {
    const text = `version: 1
bogus: 1
agents:
  demo:
    toolz: []
    tools: [7]
audit:
  recordArguments: everything
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => [i.path, i.line]),
      [
        ['bogus', 2],
        ['agents.demo.toolz', 5],
        ['agents.demo.tools[0]', 6],
        ['audit.recordArguments', 8],
      ],
    );
    assert.equal(err.message.split('\n').length, 4);
  });

  test('a bad agent name points at the name', () => {
    const err = parseThrows('version: 1\nagents:\n  "bad name": {}\n', 'ERR_CONFIG_INVALID');
    assert.match(err.message, /^cfg\.yaml:3:3: agents\["bad name"\]: bad name: agent names are/);
  });

  test('an agent named __proto__ is rejected, not silently dropped', () => {
    const err = parseThrows('version: 1\nagents:\n  __proto__:\n    tools: [a]\n', 'ERR_CONFIG_INVALID');
    assert.match(err.message, /cfg\.yaml:3:3: agents\.__proto__: reserved key/);
  });

  test('an upstream with both command and url is rejected, as is one with neither', () => {
    const text = `version: 1
upstreams:
  both:
    command: npx
    url: https://mcp.example.com/mcp
  neither:
    args: []
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => [i.path, i.line]),
      [
        ['upstreams.both', 4],
        ['upstreams.neither', 7],
      ],
    );
    assert.match(err.message, /exactly one of command \(stdio\) or url/);
  });

  test('an upstream url must be http(s) without credentials', () => {
    const text = `version: 1
upstreams:
  a:
    url: file:///etc/passwd
  b:
    url: https://user:pw@mcp.example.com/
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => i.path),
      ['upstreams.a.url', 'upstreams.b.url'],
    );
    assert.ok(!err.message.includes('pw@'));
  });
});

function parseThrows(text: string, code: BastionErrorCode): BastionError {
  try {
    parseConfigText(text, 'cfg.yaml');
  } catch (err) {
    assert.ok(isBastionError(err, code), String(err));
    return err;
  }
  assert.fail('expected a throw');
}

describe('semantic checks', () => {
  test('bad path globs are rejected with their path', () => {
    const text = `version: 1
paths:
  allow:
    - ./ws/**
    - "./ws/[abc"
    - "./ws/{a,b"
  deny:
    - "!keep/**"
    - "**/x]"
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => [i.path, i.line]),
      [
        ['paths.allow[1]', 5],
        ['paths.allow[2]', 6],
        ['paths.deny[0]', 8],
        ['paths.deny[1]', 9],
      ],
    );
    for (const i of issuesOf(err)) assert.match(i.message, /^bad glob: /);
  });

  test('allowedOrigins must be origins without a path', () => {
    const text = `version: 1
server:
  allowedOrigins: ["http://localhost:8790", "https://app.example.com/callback", "ftp://x.example.com"]
`;
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.deepEqual(
      issuesOf(err).map((i) => i.path),
      ['server.allowedOrigins[1]', 'server.allowedOrigins[2]'],
    );
  });

  test('origins and hosts are normalized; defaults follow the listen address', async () => {
    const a = await loadConfig(writeConfig('version: 1\nserver:\n  listen: "[::1]:9000"\n'), { env: {} });
    assert.equal(a.config.server.host, '::1');
    assert.equal(a.config.server.port, 9000);
    assert.deepEqual(a.config.server.allowedHosts, ['[::1]:9000', 'localhost:9000', '127.0.0.1:9000']);
    const b = await loadConfig(
      writeConfig('version: 1\nserver:\n  allowedHosts: [Bastion.Example.COM]\n  allowedOrigins: ["HTTPS://Bastion.Example.com/"]\n'),
      { env: {} },
    );
    assert.deepEqual(b.config.server.allowedHosts, ['bastion.example.com']);
    assert.deepEqual(b.config.server.allowedOrigins, ['https://bastion.example.com']);
  });
});

describe('YAML', () => {
  test('a syntax error names its line', () => {
    const text = 'version: 1\nagents:\n  demo:\n    tools: [a, b\n  other: {}\n';
    const err = parseThrows(text, 'ERR_CONFIG_INVALID');
    assert.match(err.message, /^cfg\.yaml:\d+:\d+: /);
    assert.ok((issuesOf(err)[0]?.line ?? 0) >= 4, err.message);
  });

  test('a duplicate key is an error at the duplicate', () => {
    const err = parseThrows('version: 1\nagents: {}\nagents: {}\n', 'ERR_CONFIG_INVALID');
    assert.equal(issuesOf(err)[0]?.line, 3);
    assert.match(err.message, /unique/);
  });

  test('anchors and aliases work; alias expansion is capped', () => {
    const ok = parseConfigText('version: 1\nagents:\n  a:\n    tools: &t [x, y]\n    approve: *t\n', 'cfg.yaml');
    assert.deepEqual(ok.agents.a?.approve, ['x', 'y']);
    const lines = ['version: 1', 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) lines.push(`a${i}: &a${i} [${Array(10).fill(`*a${i - 1}`).join(', ')}]`);
    const err = parseThrows(`${lines.join('\n')}\n`, 'ERR_CONFIG_INVALID');
    assert.match(err.message, /alias/i);
  });

  test('more than one document is an error', () => {
    parseThrows('version: 1\n---\nversion: 1\n', 'ERR_CONFIG_INVALID');
  });

  test('an empty file is an error', () => {
    const err = parseThrows('', 'ERR_CONFIG_INVALID');
    assert.match(err.message, /^cfg\.yaml:1:1: /);
  });
});

describe('files and paths', () => {
  test('a missing config file is ERR_CONFIG_NOT_FOUND naming it', async () => {
    const file = join(tempDir(), 'nope.yaml');
    const err = await rejects(() => loadConfig(file, { env: {} }), 'ERR_CONFIG_NOT_FOUND');
    assert.ok(err.message.includes(file));
  });

  test('relative paths resolve against the config folder, not the working directory', async () => {
    const file = writeConfig(
      `version: 1
store:
  sqlite: ./state/b.db
upstreams:
  files:
    command: node
    args: [./server.js, ./workspace]
    env:
      TOKEN: file:./secrets/token
paths:
  allow: ["./workspace/**", "../shared/*.md", "/abs/**"]
  deny: ["**/.env"]
policies: ["policies/*.cedar"]
`,
      {
        'secrets/token': 'tok-value\n',
        'policies/b.cedar': 'forbid(principal, action, resource);',
        'policies/a.cedar': 'permit(principal, action, resource);',
        'policies/not-cedar.txt': 'x',
      },
    );
    const dir = join(file, '..');
    const cwd = process.cwd();
    process.chdir(tmpdir());
    try {
      const { config } = await loadConfig(file, { env: {} });
      assert.equal(config.dir, dir);
      assert.equal(config.storePath, join(dir, 'state/b.db'));
      const up = config.upstreams.get('files');
      assert.equal(up?.cwd, dir);
      assert.deepEqual(up?.args, ['./server.js', './workspace']);
      assert.equal(up?.env.TOKEN?.reveal(), 'tok-value');
      assert.deepEqual(config.paths.allow, [join(dir, 'workspace/**'), join(dir, '../shared/*.md'), '/abs/**']);
      assert.deepEqual(config.paths.deny, ['**/.env']);
      assert.deepEqual(
        config.policies.map((p) => p.path),
        [join(dir, 'policies/a.cedar'), join(dir, 'policies/b.cedar')],
      );
      assert.equal(config.policies[0]?.text, 'permit(principal, action, resource);');
    } finally {
      process.chdir(cwd);
    }
  });

  test('glob characters in the config folder name match literally', async () => {
    const dir = join(tempDir(), 'odd [dir] {x}');
    mkdirSync(dir);
    const file = join(dir, 'bastion.yaml');
    writeFileSync(file, 'version: 1\npaths:\n  allow: ["./ws/**"]\n');
    const { config } = await loadConfig(file, { env: {} });
    const glob = config.paths.allow[0] ?? '';
    assert.ok(picomatch.isMatch(join(dir, 'ws/a/b.txt'), glob, { dot: true }), glob);
    assert.ok(!picomatch.isMatch(join(tempDir(), 'odd d x/ws/a.txt'), glob, { dot: true }));
  });

  test('a policies glob that matches no file is rejected, naming the entry', async () => {
    const text = 'version: 1\npolicies:\n  - "policies/*.cedar"\n  - "missing/*.cedar"\n';
    const file = writeConfig(text, { 'policies/a.cedar': 'permit(principal, action, resource);' });
    const err = await rejects(() => loadConfig(file, { env: {} }), 'ERR_CONFIG_INVALID');
    assert.equal(err.message, `${file}:4:5: policies[1]: no file matches "missing/*.cedar"`);
  });
});

describe('secret references', () => {
  const text = `version: 1
agents:
  bot:
    keys: [env:BOT_KEY, env:BOT_KEY_OLD]
upstreams:
  gh:
    url: https://mcp.example.com/mcp
    headers:
      Authorization: env:GH_TOKEN
  local:
    command: node
    env:
      API_TOKEN: file:./token.txt
admin:
  keys: [env:ADMIN_KEY]
`;
  const VALUE = 'S3cr3t-value-not-to-leak-0001';

  test('strict: unresolvable references are ERR_CONFIG_SECRET_REF naming path and reference', async () => {
    const file = writeConfig(text);
    const err = await rejects(() => loadConfig(file, { env: { BOT_KEY: VALUE } }), 'ERR_CONFIG_SECRET_REF');
    assert.deepEqual(
      issuesOf(err).map((i) => [i.path, i.line]),
      [
        ['agents.bot.keys[1]', 4],
        ['upstreams.gh.headers.Authorization', 9],
        ['upstreams.local.env.API_TOKEN', 13],
        ['admin.keys[0]', 15],
      ],
    );
    assert.match(err.message, /agents\.bot\.keys\[1\]: env:BOT_KEY_OLD is not set/);
    assert.match(err.message, /upstreams\.gh\.headers\.Authorization: env:GH_TOKEN is not set/);
    assert.match(err.message, /upstreams\.local\.env\.API_TOKEN: file:\.\/token\.txt could not be read \(ENOENT\)/);
    assert.ok(!err.message.includes(VALUE));
  });

  test('strict is the default; an unset agent key is an error, never a generated key', async () => {
    const file = writeConfig(text, { 'token.txt': `${VALUE}\n` });
    const env = { GH_TOKEN: VALUE, ADMIN_KEY: `admin-${VALUE}` };
    const err = await rejects(() => loadConfig(file, { env }), 'ERR_CONFIG_SECRET_REF');
    assert.deepEqual(issuesOf(err).map((i) => i.path), ['agents.bot.keys[0]', 'agents.bot.keys[1]']);
    // Lenient keys (tools that only read the store): warnings, listed as unresolved.
    const lenient = await loadConfig(file, { env, keys: 'lenient' });
    assert.deepEqual(lenient.config.agents.get('bot')?.unresolvedKeyRefs, ['env:BOT_KEY', 'env:BOT_KEY_OLD']);
    assert.equal(lenient.warnings.length, 2);
    const { config, warnings } = await loadConfig(file, { env: { ...env, BOT_KEY: `bot-${VALUE}`, BOT_KEY_OLD: `old-${VALUE}` } });
    const bot = config.agents.get('bot');
    assert.equal(bot?.keys.length, 2);
    assert.deepEqual(bot?.unresolvedKeyRefs, []);
    assert.equal(warnings.length, 0);
    assert.equal(config.upstreams.get('gh')?.headers.Authorization?.reveal(), VALUE);
    assert.equal(config.upstreams.get('local')?.env.API_TOKEN?.reveal(), VALUE);
    assert.equal(config.adminKeys[0]?.reveal(), `admin-${VALUE}`);
    assert.ok(config.adminKeys[0] instanceof Secret);
    assert.ok(!JSON.stringify({ ...config, agents: [...config.agents], upstreams: [...config.upstreams] }).includes(VALUE));
  });

  test('lenient: unresolvable references become warnings', async () => {
    const file = writeConfig(text);
    const { config, warnings } = await loadConfig(file, { env: {}, secrets: 'lenient' });
    assert.equal(warnings.length, 5);
    assert.ok(warnings.some((w) => w.includes(`${file}:9:22: upstreams.gh.headers.Authorization: env:GH_TOKEN is not set`)), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.includes('admin.keys[0]: env:ADMIN_KEY is not set')));
    assert.deepEqual(config.upstreams.get('gh')?.headers, {});
    assert.deepEqual(config.adminKeys, []);
  });

  test('a resolved key shorter than 16 characters is an error in both modes, without its value', async () => {
    const file = writeConfig(text);
    const short = 'Zq9-short';
    for (const secrets of ['strict', 'lenient'] as const) {
      const err = await rejects(
        () => loadConfig(file, { env: { BOT_KEY: short, GH_TOKEN: VALUE, ADMIN_KEY: VALUE }, secrets }),
        'ERR_CONFIG_SECRET_REF',
      );
      if (secrets === 'lenient') assert.match(err.message, /agents\.bot\.keys\[0\]: env:BOT_KEY resolves to a key shorter than 16 characters/);
      assert.ok(!err.message.includes(short));
      assert.ok(!JSON.stringify(err.detail).includes(short));
    }
  });

  test('a header value with a line break is rejected', async () => {
    const file = writeConfig(text, { 'token.txt': VALUE });
    const err = await rejects(
      () => loadConfig(file, { env: { GH_TOKEN: `${VALUE}\r\nX-Injected: 1`, ADMIN_KEY: VALUE } }),
      'ERR_CONFIG_SECRET_REF',
    );
    assert.match(err.message, /upstreams\.gh\.headers\.Authorization: env:GH_TOKEN resolves to a value holding a line break/);
    assert.ok(!err.message.includes(VALUE));
  });

  test('a literal secret in place of a reference is a schema error', () => {
    const err = parseThrows('version: 1\nadmin:\n  keys: [hunter2hunter2hunter2]\n', 'ERR_CONFIG_INVALID');
    assert.match(err.message, /admin\.keys\[0\]: must be a secret reference/);
  });
});

describe('properties', () => {
  const known = new Set(['version', 'server', 'store', 'agents', 'upstreams', 'paths', 'approvals', 'audit', 'output', 'admin', 'policies']);

  test('any unknown top-level key is rejected with its name in the message', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 40 }).filter((k) => !known.has(k)),
        (key) => {
          const text = `{"version": 1, ${JSON.stringify(key)}: 1}`;
          const err = parseThrows(text, 'ERR_CONFIG_INVALID');
          assert.ok(err.message.includes(JSON.stringify(key).slice(1, -1)), err.message);
          assert.equal(issuesOf(err).length, 1);
          assert.equal(issuesOf(err)[0]?.line, 1);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('arbitrary text either parses or throws ERR_CONFIG_INVALID, nothing else', () => {
    const yamlish = fc
      .array(fc.constantFrom('version: 1\n', 'agents:\n', '  a:\n', '    tools: [', ']\n', '- ', '&x ', '*x ', '"', "'", '{', '}', ':', ' ', '\n', '#', '!!binary ', '? '), { maxLength: 30 })
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish, fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        try {
          parseConfigText(text, 'cfg.yaml');
        } catch (err) {
          assert.ok(isBastionError(err, 'ERR_CONFIG_INVALID'), String(err));
          assert.match(err.message, /^cfg\.yaml:\d+:\d+: /);
        }
      }),
      { numRuns: 500 },
    );
  });
});

test('redis.url is a URL or a secret reference holding one; the URL stays a Secret', async () => {
  const ref = writeConfig('version: 1\nredis:\n  url: env:BASTION_REDIS_URL\n');
  const { config } = await loadConfig(ref, { env: { BASTION_REDIS_URL: 'redis://:redispw@127.0.0.1:6379/0' } });
  assert.equal(config.redis?.url.reveal(), 'redis://:redispw@127.0.0.1:6379/0');
  assert.ok(!JSON.stringify(config.redis).includes('redispw'));
  await rejects(() => loadConfig(ref, { env: {} }), 'ERR_CONFIG_SECRET_REF');
  const wrong = await rejects(() => loadConfig(ref, { env: { BASTION_REDIS_URL: 'http://:redispw@h/' } }), 'ERR_CONFIG_SECRET_REF');
  assert.ok(!wrong.message.includes('redispw'));
  const literal = await loadConfig(writeConfig('version: 1\nredis:\n  url: rediss://cache.internal:6380\n'), { env: {} });
  assert.equal(literal.config.redis?.url.reveal(), 'rediss://cache.internal:6380');
  await rejects(() => loadConfig(writeConfig('version: 1\nredis:\n  url: cache.internal:6379\n'), { env: {} }), 'ERR_CONFIG_INVALID');
});
