/**
 * `bastion secret ...` as a user runs it: real processes, the value piped on
 * standard input, a config file and a store on disk.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { EXIT, readStdin } from '../../src/cli/io.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { randomKeyBytes } from '../../src/util/crypto.ts';
import { Secret } from '../../src/util/secret.ts';
import { loadKek, type KekSource } from '../../src/vault/kek.ts';
import { PastedSecrets } from '../../src/vault/pasted.ts';
import { Vault } from '../../src/vault/vault.ts';
import { tempDir } from '../audit/fixtures.ts';

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');
const tmp = tempDir('bastion-secret-cli-');
after(tmp.cleanup);
let n = 0;

const VALUE = 'ghp_TOPSECRET_c0ffee_4242_value';

const YAML = `version: 1
agents:
  alice:
    secrets: [github, slack]
  bob:
    tools: []
secrets:
  github:
    description: GitHub API token
  slack:
    hosts: ['*.slack.com']
`;

/** A fresh folder with bastion.yaml; the store and key file go to its .bastion/. */
function project(yaml = YAML): { dir: string; config: string } {
  const dir = join(tmp.dir, `p${n++}`);
  mkdirSync(dir);
  const config = join(dir, 'bastion.yaml');
  writeFileSync(config, yaml);
  return { dir, config };
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bastion secret ...`; `input` undefined: stdin is /dev/null-like (ignored). */
function secret(args: string[], input?: string, env: Record<string, string> = {}): Run {
  const base: Record<string, string | undefined> = { ...process.env, BASTION_MASTER_KEY: undefined, BASTION_CONFIG: undefined, ...env };
  const r = spawnSync(process.execPath, [CLI, 'secret', ...args], {
    encoding: 'utf8',
    env: Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
    timeout: 60_000,
    ...(input === undefined ? { stdio: ['ignore', 'pipe', 'pipe'] } : { input }),
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every byte under `dir` (the DB, its WAL, the key file). */
function allBytes(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const p = join(dir, name);
    if (statSync(p).isFile()) parts.push(readFileSync(p));
  }
  return Buffer.concat(parts);
}

function assertNoValue(r: Run, value = VALUE): void {
  assert.ok(!r.stdout.includes(value), 'value in stdout');
  assert.ok(!r.stderr.includes(value), 'value in stderr');
}

async function openVaultOf(config: string, source?: KekSource): Promise<{ vault: Vault; close: () => Promise<void> }> {
  const { config: c } = await loadConfig(config, { env: {}, secrets: 'lenient' });
  const store = await openSqliteStore(c.storePath!);
  const kek = await loadKek(source ?? { keyFile: c.vault.keyFile });
  const vault = await Vault.open(store, kek, { rotationGraceMs: c.vault.rotationGraceMs });
  return { vault, close: () => store.close() };
}

describe('bastion secret', () => {
  test('add reads the value from stdin; list shows metadata and never the value; the files on disk never hold it', async () => {
    const p = project();
    const add = secret(['add', 'github', '--config', p.config, '--hosts', 'api.github.com', '--header', 'Authorization', '--format', 'Bearer {}'], `${VALUE}\n`);
    assert.equal(add.status, EXIT.OK, add.stderr);
    assert.match(add.stdout, /^added github \(version 1\) for api\.github\.com, sent in Authorization\n$/);
    assertNoValue(add);
    const keyFile = join(p.dir, '.bastion', 'master.key');
    assert.ok(existsSync(keyFile), 'the key file is created on first run');
    if (process.platform !== 'win32') assert.equal(statSync(keyFile).mode & 0o777, 0o600);

    const list = secret(['list', '--config', p.config]);
    assert.equal(list.status, EXIT.OK, list.stderr);
    assertNoValue(list);
    const lines = list.stdout.trimEnd().split('\n');
    assert.match(lines[0]!, /^NAME\s+HOSTS\s+VERSION\s+CREATED\s+LAST USED$/);
    assert.match(lines[1]!, /^github\s+api\.github\.com\s+1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+never$/);
    assert.equal(lines[2], 'declared in the config but not stored: slack');

    const json = secret(['list', '--json', '--config', p.config]);
    assert.equal(json.status, EXIT.OK);
    assertNoValue(json);
    const body = JSON.parse(json.stdout) as { secrets: Record<string, unknown>[] };
    assert.equal(body.secrets.length, 1);
    assert.deepEqual(
      { ...body.secrets[0], id: undefined, createdAt: undefined },
      { id: undefined, name: 'github', hosts: ['api.github.com'], header: 'Authorization', format: 'Bearer {}', version: 1, createdAt: undefined, rotatedAt: null, lastUsedAt: null, description: 'GitHub API token' },
    );

    const bytes = allBytes(join(p.dir, '.bastion'));
    assert.equal(bytes.includes(VALUE), false, 'the DB (and WAL) never hold the clear value');
    assert.equal(bytes.includes(Buffer.from(VALUE).toString('base64')), false);

    // The value piped in, minus the trailing newline, is what the vault holds.
    const { vault, close } = await openVaultOf(p.config);
    const ph = await vault.placeholder('github', 'alice');
    assert.equal((await vault.resolve('alice', ph))?.value.reveal(), VALUE);
    await close();

    // The changes are audited on the admin door, without the value.
    const verify = spawnSync(process.execPath, [CLI, 'audit', 'tail', '--config', p.config, '--json'], { encoding: 'utf8' });
    assert.equal(verify.status, 0, verify.stderr);
    assert.match(verify.stdout, /"method":"secret\.add"/);
    assert.ok(!verify.stdout.includes(VALUE));
  });

  test('a duplicate name fails with exit 1 before the value is read; the stored value is unchanged', async () => {
    const p = project();
    assert.equal(secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], VALUE).status, EXIT.OK);
    const dup = secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], 'another-value');
    assert.equal(dup.status, EXIT.FAILED);
    assert.match(dup.stderr, /a secret named github exists/);
    assertNoValue(dup, 'another-value');
    const { vault, close } = await openVaultOf(p.config);
    assert.equal((await vault.resolve('alice', await vault.placeholder('github', 'alice')))?.value.reveal(), VALUE);
    await close();
  });

  test('hosts: from --hosts, else from the config; required when neither; validated', () => {
    const p = project();
    const fromConfig = secret(['add', 'slack', '--config', p.config], 'xoxb-1');
    assert.equal(fromConfig.status, EXIT.OK, fromConfig.stderr);
    assert.match(fromConfig.stdout, /for \*\.slack\.com\n/);
    const none = secret(['add', 'github', '--config', p.config], VALUE);
    assert.equal(none.status, EXIT.USAGE);
    assert.match(none.stderr, /--hosts is required \(or declare secrets\.github\.hosts/);
    const bad = secret(['add', 'github', '--hosts', 'https://api.github.com/', '--config', p.config], VALUE);
    assert.equal(bad.status, EXIT.USAGE);
    assert.match(bad.stderr, /hosts: .* must be a host name/);
    const formatOnly = secret(['add', 'github', '--hosts', 'api.github.com', '--format', 'Bearer {}', '--config', p.config], VALUE);
    assert.equal(formatOnly.status, EXIT.USAGE);
    assert.match(formatOnly.stderr, /--format needs --header/);
    const twoBraces = secret(['add', 'github', '--hosts', 'a.example', '--header', 'X-Key', '--format', '{}{}', '--config', p.config], VALUE);
    assert.equal(twoBraces.status, EXIT.USAGE);
    assert.match(twoBraces.stderr, /exactly one \{\}/);
    const badName = secret(['add', 'bad.name', '--hosts', 'a.example', '--config', p.config], VALUE);
    assert.equal(badName.status, EXIT.USAGE);
    const undeclared = secret(['add', 'other', '--hosts', 'a.example', '--config', p.config], VALUE);
    assert.equal(undeclared.status, EXIT.OK);
    assert.match(undeclared.stderr, /not declared under secrets/);
  });

  test('the value comes from stdin only: --value, a positional value, no stdin and an empty value are refused, never echoed', () => {
    const p = project();
    const flag = secret(['add', 'github', '--hosts', 'a.example', '--value', VALUE, '--config', p.config], VALUE);
    assert.equal(flag.status, EXIT.USAGE);
    assert.match(flag.stderr, /--value is not accepted: a value on the command line lands in shell history and the process list/);
    assertNoValue(flag);
    const eq = secret(['add', 'github', '--hosts', 'a.example', `--value=${VALUE}`, '--config', p.config], VALUE);
    assert.equal(eq.status, EXIT.USAGE);
    assertNoValue(eq);
    const positional = secret(['add', 'github', VALUE, '--hosts', 'a.example', '--config', p.config], VALUE);
    assert.equal(positional.status, EXIT.USAGE);
    assert.match(positional.stderr, /values are read from standard input/);
    assertNoValue(positional);
    for (const input of [undefined, '', '\n', '\r\n']) {
      const r = secret(['add', 'github', '--hosts', 'a.example', '--config', p.config], input);
      assert.equal(r.status, EXIT.USAGE, JSON.stringify(input));
      assert.match(r.stderr, /no value on standard input/);
    }
    const twoLines = secret(['add', 'github', '--hosts', 'a.example', '--config', p.config], `${VALUE}\nmore\n`);
    assert.equal(twoLines.status, EXIT.USAGE);
    assert.match(twoLines.stderr, /must not contain CR, LF or NUL/);
    assertNoValue(twoLines);
    const big = secret(['add', 'github', '--hosts', 'a.example', '--config', p.config], 'x'.repeat(64 * 1024 + 1));
    assert.equal(big.status, EXIT.USAGE);
    assert.match(big.stderr, /at most 65536 bytes/);
    assert.equal(secret(['list', '--json', '--config', p.config]).stdout, '{"secrets":[]}\n', 'nothing was stored');
  });

  test('rotate gives new placeholders and keeps the old value in grace; revoke ends both; unknown names exit 5', async () => {
    const p = project();
    assert.equal(secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], `${VALUE}\r\n`).status, EXIT.OK);
    const before = secret(['placeholder', 'github', '--agent', 'alice', '--config', p.config]);
    assert.equal(before.status, EXIT.OK, before.stderr);
    const rotate = secret(['rotate', 'github', '--config', p.config], 'rotated-value\n');
    assert.equal(rotate.status, EXIT.OK, rotate.stderr);
    assert.match(rotate.stdout, /^rotated github to version 2; version 1 stays valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n$/);
    assertNoValue(rotate, 'rotated-value');
    const afterRotate = secret(['placeholder', 'github', '--agent', 'alice', '--config', p.config]);
    assert.notEqual(afterRotate.stdout, before.stdout);
    assert.match(secret(['list', '--config', p.config]).stdout, /^github\s+api\.github\.com\s+2\s/m);

    const { vault, close } = await openVaultOf(p.config);
    assert.equal((await vault.resolve('alice', before.stdout.trim()))?.value.reveal(), VALUE, 'CRLF stripped; in grace');
    assert.equal((await vault.resolve('alice', afterRotate.stdout.trim()))?.value.reveal(), 'rotated-value');

    const revoke = secret(['revoke', 'github', '--config', p.config]);
    assert.equal(revoke.status, EXIT.OK, revoke.stderr);
    assert.equal(await vault.resolve('alice', before.stdout.trim()), undefined, 'the running vault notices the other process');
    assert.equal(await vault.resolve('alice', afterRotate.stdout.trim()), undefined);
    await close();

    assert.equal(secret(['revoke', 'github', '--config', p.config]).status, EXIT.NOT_FOUND);
    assert.equal(secret(['rotate', 'github', '--config', p.config], 'x').status, EXIT.NOT_FOUND);
    assert.equal(secret(['placeholder', 'github', '--agent', 'alice', '--config', p.config]).status, EXIT.NOT_FOUND);
    assert.match(secret(['list', '--config', p.config]).stdout, /^no secrets\n/);
  });

  test('placeholder: printed alone, equal to Vault.placeholder; refused for an agent not granted or not in the config', async () => {
    const p = project();
    assert.equal(secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], VALUE).status, EXIT.OK);
    const r = secret(['placeholder', 'github', '--agent', 'alice', '--config', p.config]);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^bst_ph_[a-z2-7]{32}\n$/);
    const { vault, close } = await openVaultOf(p.config);
    assert.equal(r.stdout, `${await vault.placeholder('github', 'alice')}\n`);
    await close();

    const bob = secret(['placeholder', 'github', '--agent', 'bob', '--config', p.config]);
    assert.equal(bob.status, EXIT.FAILED);
    assert.match(bob.stderr, /agent bob is not granted secret github \(add it to agents\.bob\.secrets\)/);
    assert.equal(bob.stdout, '');
    const carol = secret(['placeholder', 'github', '--agent', 'carol', '--config', p.config]);
    assert.equal(carol.status, EXIT.FAILED);
    assert.match(carol.stderr, /agent carol is not in the config/);
    assert.equal(secret(['placeholder', 'github', '--config', p.config]).status, EXIT.USAGE, '--agent is required');
  });

  test('BASTION_MASTER_KEY: used instead of a key file; the wrong key is exit 3 and opens nothing', () => {
    const p = project();
    const key = randomKeyBytes(32).toString('base64');
    const env = { BASTION_MASTER_KEY: key };
    assert.equal(secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], VALUE, env).status, EXIT.OK);
    assert.equal(existsSync(join(p.dir, '.bastion', 'master.key')), false, 'no key file when the variable is set');
    assert.equal(secret(['list', '--config', p.config], undefined, env).status, EXIT.OK);
    const wrong = secret(['placeholder', 'github', '--agent', 'alice', '--config', p.config], undefined, { BASTION_MASTER_KEY: randomKeyBytes(32).toString('base64') });
    assert.equal(wrong.status, EXIT.CONFIG);
    assert.match(wrong.stderr, /cannot be opened with this key-encryption key/);
    const malformed = secret(['list', '--config', p.config], undefined, { BASTION_MASTER_KEY: 'not-a-key' });
    assert.equal(malformed.status, EXIT.CONFIG);
    assert.match(malformed.stderr, /BASTION_MASTER_KEY must be/);
    assert.ok(!malformed.stderr.includes('not-a-key'));
    // rotate does not create a key file: without the key the secrets are lost, and that must be said.
    const noKey = secret(['rotate', 'github', '--config', p.config], 'x');
    assert.equal(noKey.status, EXIT.CONFIG);
    assert.match(noKey.stderr, /does not exist/);
  });

  test('usage: --help, unknown subcommand, missing config', () => {
    const help = secret(['add', '--help']);
    assert.equal(help.status, EXIT.OK);
    assert.match(help.stdout, /read from standard input/);
    const unknown = secret(['show', 'github']);
    assert.equal(unknown.status, EXIT.USAGE);
    assert.match(unknown.stderr, /unknown command "secret show"/);
    const missing = secret(['list', '--config', join(tmp.dir, 'nope.yaml')]);
    assert.equal(missing.status, EXIT.CONFIG);
  });
});

/** The admin door's audit records, via `bastion audit tail --json`. */
function auditRecords(config: string): { method: string; target: string; detail: Record<string, unknown> }[] {
  const r = spawnSync(process.execPath, [CLI, 'audit', 'tail', '--config', config, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { method: string; target: string; detail: Record<string, unknown> });
}

// Issue 11, class 2: before the Public Suffix List check, every refused binding below was stored (exit 0).
describe('bastion secret: host bindings are checked against the Public Suffix List', () => {
  test('add: a wildcard over a shared or public suffix, or covering one, exits 1 with the reason; nothing is stored', () => {
    const p = project();
    const cases: [string, RegExp][] = [
      ['*.github.io', /host refused: "\*\.github\.io" is a wildcard over a shared suffix .*\(wildcard\.shared_suffix\)/],
      ['api.github.com,*.s3.amazonaws.com', /"\*\.s3\.amazonaws\.com" .*\(wildcard\.shared_suffix\)/],
      ['*.amazonaws.com', /\(wildcard\.covers_suffix\)/],
      ['*.CO.UK.', /"\*\.CO\.UK\." is a wildcard over a public suffix .*\(wildcard\.public_suffix\)/],
      ['com', /\(host\.public_suffix\)/],
      ['mystore.myshopify.com', /\(host\.under_shared_suffix\).*--unsafe-allow-shared-suffix/],
      ['*.myshopify.com', /\(wildcard\.shared_suffix\)/],
    ];
    for (const [hosts, message] of cases) {
      const r = secret(['add', 'github', '--hosts', hosts, '--config', p.config], VALUE);
      assert.equal(r.status, EXIT.FAILED, `${hosts}: ${r.stderr}`);
      assert.match(r.stderr, message, hosts);
      assertNoValue(r);
    }
    const wild = secret(['add', 'github', '--hosts', '*.myshopify.com', '--unsafe-allow-shared-suffix', '--config', p.config], VALUE);
    assert.equal(wild.status, EXIT.FAILED, 'the override never lifts a wildcard');
    assert.equal(secret(['list', '--json', '--config', p.config]).stdout, '{"secrets":[]}\n', 'nothing was stored');
  });

  test('add --unsafe-allow-shared-suffix binds an exact host under a shared suffix, and the audit record says so', () => {
    const p = project();
    const r = secret(['add', 'shop', '--hosts', 'MyStore.myshopify.com,api.example.com', '--unsafe-allow-shared-suffix', '--header', 'X-Shopify-Access-Token', '--config', p.config], VALUE);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^added shop \(version 1\) for mystore\.myshopify\.com, api\.example\.com, sent in X-Shopify-Access-Token\n$/);
    const add = auditRecords(p.config).find((a) => a.method === 'secret.add');
    assert.deepEqual(add?.detail.unsafeAllowSharedSuffix, [{ host: 'mystore.myshopify.com', overridden: 'host.under_shared_suffix' }]);
    const plain = secret(['add', 'other', '--hosts', 'api.example.com', '--config', p.config], VALUE);
    assert.equal(plain.status, EXIT.OK);
    assert.equal(auditRecords(p.config).find((a) => a.target === 'other')?.detail.unsafeAllowSharedSuffix, undefined);
  });

  test('a config binding a secret to a shared suffix is refused (exit 3, with the config path); its override covers its own hosts only', () => {
    const bad = project(`version: 1
secrets:
  shop:
    hosts: ["*.myshopify.com"]
`);
    const r = secret(['add', 'shop', '--config', bad.config], VALUE);
    assert.equal(r.status, EXIT.CONFIG);
    assert.match(r.stderr, /bastion\.yaml:4:\d+: secrets\.shop\.hosts\[0\]: refused: .*\(wildcard\.shared_suffix\)/);
    const ok = project(`version: 1
secrets:
  shop:
    hosts: [mystore.myshopify.com]
    unsafeAllowSharedSuffix: true
`);
    const fromConfig = secret(['add', 'shop', '--config', ok.config], VALUE);
    assert.equal(fromConfig.status, EXIT.OK, fromConfig.stderr);
    assert.match(fromConfig.stdout, /for mystore\.myshopify\.com\n/);
    const viaFlag = secret(['add', 'shop2', '--hosts', 'other.myshopify.com', '--config', ok.config], VALUE);
    assert.equal(viaFlag.status, EXIT.FAILED, '--hosts needs its own --unsafe-allow-shared-suffix');
  });

  test('list flags hosts stored before the check that are no longer used', () => {
    const p = project();
    assert.equal(secret(['add', 'github', '--hosts', 'api.github.com', '--config', p.config], VALUE).status, EXIT.OK);
    const db = new DatabaseSync(join(p.dir, '.bastion', 'bastion.db'));
    db.prepare('UPDATE secrets SET hosts = ?').run(JSON.stringify(['api.github.com', '*.github.io']));
    db.close();
    const list = secret(['list', '--config', p.config]);
    assert.equal(list.status, EXIT.OK, list.stderr);
    assert.match(list.stdout, /^github: hosts refused by the Public Suffix List check, not used: \*\.github\.io/m);
  });
});

describe('bastion secret pasted bind', () => {
  /** A project with one pasted Shopify token of agent support / user alice, vaulted as the model door does. */
  async function withPasted(): Promise<{ config: string; token: string }> {
    const p = project();
    assert.equal(secret(['list', '--config', p.config]).status, EXIT.OK, 'creates the key file and store');
    const { config: c } = await loadConfig(p.config, { env: {}, secrets: 'lenient' });
    const store = await openSqliteStore(c.storePath!);
    try {
      const vault = await Vault.open(store, await loadKek({ keyFile: c.vault.keyFile }), { rotationGraceMs: c.vault.rotationGraceMs });
      const v = await new PastedSecrets(store, vault).vault('support', 'alice', new Secret(`shpat_${'0123456789abcdef'.repeat(2)}`), 'shopify-token');
      assert.deepEqual(v.secret.hosts, [], 'a Shopify token is vaulted unbound');
      return { config: p.config, token: v.secret.token };
    } finally {
      await store.close();
    }
  }

  test('exit codes: 1 for a refused host (with the reason), 2 usage, 5 unknown token; refusals change nothing', async () => {
    const { config, token } = await withPasted();
    const bind = (...args: string[]): Run => secret(['pasted', 'bind', ...args, '--config', config]);
    const wild = bind(token, '--hosts', '*.myshopify.com');
    assert.equal(wild.status, EXIT.FAILED);
    assert.match(wild.stderr, /bastion secret pasted bind: host refused: "\*\.myshopify\.com" is a wildcard over a shared suffix .*\(wildcard\.shared_suffix\)/);
    assert.equal(bind(token, '--hosts', '*.myshopify.com', '--unsafe-allow-shared-suffix').status, EXIT.FAILED);
    const exact = bind(token, '--hosts', 'mystore.myshopify.com');
    assert.equal(exact.status, EXIT.FAILED);
    assert.match(exact.stderr, /\(host\.under_shared_suffix\).*--unsafe-allow-shared-suffix/);
    assert.equal(bind(token, '--hosts', '*.amazonaws.com').status, EXIT.FAILED);
    assert.equal(bind(token, '--hosts', 'not a host').status, EXIT.USAGE);
    assert.equal(bind(token).status, EXIT.USAGE, '--hosts is required');
    assert.equal(bind('NOT-A-TOKEN', '--hosts', 'api.example.com').status, EXIT.USAGE);
    assert.equal(bind('aaaaaaaaaaaa', '--hosts', 'api.example.com').status, EXIT.NOT_FOUND);
    assert.equal(secret(['pasted', 'list', '--unsafe-allow-shared-suffix', '--config', config]).status, EXIT.USAGE);
    const list = secret(['pasted', 'list', '--json', '--config', config]);
    assert.deepEqual((JSON.parse(list.stdout) as { pasted: { hosts: string[] }[] }).pasted.map((x) => x.hosts), [[]], 'still unbound');
    assert.equal(auditRecords(config).filter((a) => a.method === 'secret.pasted.bind').length, 0, 'refusals are not binds');
  });

  test('the override binds one exact host (token or whole placeholder); the bind is audited with before, after and the override', async () => {
    const { config, token } = await withPasted();
    const r = secret(['pasted', 'bind', `<<SECRET_${token}>>`, '--hosts', 'MyStore.myshopify.com', '--unsafe-allow-shared-suffix', '--config', config]);
    assert.equal(r.status, EXIT.OK, r.stderr);
    assert.equal(r.stdout, `bound ${token} to mystore.myshopify.com\n`);
    const rec = auditRecords(config).find((a) => a.method === 'secret.pasted.bind');
    assert.equal(rec?.target, token);
    assert.deepEqual(
      { ...rec?.detail, by: undefined },
      { by: undefined, forAgent: 'support', forUser: 'alice', rule: 'shopify-token', previousHosts: [], hosts: ['mystore.myshopify.com'], unsafeAllowSharedSuffix: [{ host: 'mystore.myshopify.com', overridden: 'host.under_shared_suffix' }] },
    );
    const list = secret(['pasted', 'list', '--config', config]);
    assert.match(list.stdout, /shopify-token {2}hosts mystore\.myshopify\.com/);
    assert.ok(!list.stdout.includes('shpat_'));
  });
});

describe('readStdin', () => {
  test('reads everything up to the bound, and rejects with RangeError past it', async () => {
    const ok = await readStdin(Readable.from([Buffer.from('ab'), Buffer.from('c\n')]) as unknown as NodeJS.ReadStream, { maxBytes: 4 });
    assert.equal(ok.toString(), 'abc\n');
    await assert.rejects(readStdin(Readable.from([Buffer.from('abc'), Buffer.from('de')]) as unknown as NodeJS.ReadStream, { maxBytes: 4 }), RangeError);
    const empty = await readStdin(Readable.from([]) as unknown as NodeJS.ReadStream);
    assert.equal(empty.length, 0);
  });

  test('a read error rejects', async () => {
    const s = new PassThrough();
    const p = readStdin(s as unknown as NodeJS.ReadStream);
    s.destroy(new Error('boom'));
    await assert.rejects(p, /boom/);
  });
});

describe('CLI admin records are checkpointed', () => {
  /** Runs `bastion <args>` in the project. */
  function bastion(args: string[], input?: string): Run {
    const base: Record<string, string | undefined> = { ...process.env, BASTION_MASTER_KEY: undefined, BASTION_CONFIG: undefined };
    const r = spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: Object.fromEntries(Object.entries(base).filter(([, v]) => v !== undefined)) as NodeJS.ProcessEnv,
      timeout: 60_000,
      ...(input === undefined ? { stdio: ['ignore', 'pipe', 'pipe'] } : { input }),
    });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  test('secret add, rotate, placeholder and revoke on a store only the CLI has written: audit verify passes (each record carries a signed checkpoint)', () => {
    const p = project();
    for (const [args, input] of [
      [['secret', 'add', 'github', '--hosts', 'api.github.com', '--config', p.config], VALUE],
      [['secret', 'rotate', 'github', '--config', p.config], `${VALUE}-2`],
      [['secret', 'placeholder', 'github', '--agent', 'alice', '--config', p.config], undefined],
      [['secret', 'revoke', 'github', '--config', p.config], undefined],
    ] as const) {
      const r = bastion([...args], input);
      assert.equal(r.status, EXIT.OK, `${args.join(' ')}: ${r.stderr}`);
      const verify = bastion(['audit', 'verify', '--config', p.config]);
      assert.equal(verify.status, EXIT.OK, `audit verify after ${args.slice(0, 2).join(' ')}: ${verify.stdout}${verify.stderr}`);
    }
  });
});
