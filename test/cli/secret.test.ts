/**
 * `bastion secret ...` as a user runs it: real processes, the value piped on
 * standard input, a config file and a store on disk.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { loadConfig } from '../../src/config/load.ts';
import { EXIT, readStdin } from '../../src/cli/io.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { randomKeyBytes } from '../../src/util/crypto.ts';
import { loadKek, type KekSource } from '../../src/vault/kek.ts';
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
  const store = await openSqliteStore(c.storePath);
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
