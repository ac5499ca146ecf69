import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { randomKeyBytes, sha256Hex } from '../../src/util/crypto.ts';
import { VAULT_KEY_ERROR_CODE } from '../../src/vault/errors.ts';
import { kekFromBytes, loadKek } from '../../src/vault/kek.ts';

const root = mkdtempSync(join(tmpdir(), 'bastion-kek-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
function freshDir(): string {
  return join(root, `case-${++n}`);
}

/** Asserts a vault key error whose message matches `pattern` and does not contain `secretText`. */
async function assertKeyError(promise: Promise<unknown>, pattern: RegExp, secretText?: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(isBastionError(err, VAULT_KEY_ERROR_CODE), String(err));
    assert.match(err.message, pattern);
    if (secretText !== undefined && secretText !== '') {
      assert.ok(!err.message.includes(secretText), 'message echoes the key');
      assert.ok(!JSON.stringify(err.detail).includes(secretText), 'detail echoes the key');
    }
    return true;
  });
}

function writeKeyFile(file: string, content: string | Buffer, mode = 0o600): void {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(file, content, { mode });
  chmodSync(file, mode);
}

test('key file: created on first run with mode 0600 in a 0700 folder, then reused', async () => {
  const dir = join(freshDir(), 'nested', 'keys');
  const file = join(dir, 'master.key');
  const kek = await loadKek({ keyFile: file }, { create: true });
  assert.equal(statSync(file).mode & 0o7777, 0o600);
  assert.equal(statSync(dir).mode & 0o7777, 0o700);
  assert.equal(statSync(join(dir, '..')).mode & 0o7777, 0o700);
  const content = readFileSync(file, 'latin1');
  assert.match(content, /^[A-Za-z0-9+/]{43}=\n$/);
  const bytes = Buffer.from(content.trim(), 'base64');
  assert.equal(bytes.length, 32);
  assert.equal(kek.id, sha256Hex(bytes).slice(0, 16));
  assert.match(kek.id, /^[0-9a-f]{16}$/);
  const again = await loadKek({ keyFile: file }, { create: true });
  assert.equal(again.id, kek.id);
  const withoutCreate = await loadKek({ keyFile: file });
  assert.equal(withoutCreate.id, kek.id);
  assert.deepEqual(readdirSync(dir), ['master.key'], 'no temporary file left');
  // The KEK from the file wraps and unwraps like any other.
  const dataKey = randomKeyBytes(32);
  assert.deepEqual(again.unwrap(kek.wrap(dataKey, 'a'), 'a'), dataKey);
});

test('key file: missing without create is refused, naming the path', async () => {
  const file = join(freshDir(), 'master.key');
  await assertKeyError(loadKek({ keyFile: file }), new RegExp(`key file ${file} does not exist`));
  await assertKeyError(loadKek({ keyFile: file }, { create: false }), /does not exist/);
});

test('key file: group- or world-accessible modes are refused with the path and the mode', async () => {
  const dir = freshDir();
  const file = join(dir, 'master.key');
  const kek = await loadKek({ keyFile: file }, { create: true });
  for (const mode of [0o644, 0o640, 0o604, 0o660, 0o700, 0o610, 0o4600]) {
    chmodSync(file, mode);
    const shown = mode.toString(8).padStart(4, '0');
    await assertKeyError(loadKek({ keyFile: file }), new RegExp(`key file ${file} has mode ${shown}; it must be 0600 or stricter`));
  }
  chmodSync(file, 0o400);
  assert.equal((await loadKek({ keyFile: file })).id, kek.id);
  chmodSync(file, 0o600);
  assert.equal((await loadKek({ keyFile: file }, { create: true })).id, kek.id);
});

test('key file: content that is not base64 of exactly 32 bytes is refused without echoing it', async () => {
  const good = randomKeyBytes(32).toString('base64');
  const cases: Array<string | Buffer> = [
    '',
    '\n',
    randomKeyBytes(31).toString('base64'),
    randomKeyBytes(33).toString('base64'),
    randomKeyBytes(32).toString('hex'),
    `${good}\n\n`,
    ` ${good}`,
    `${good} `,
    `${good}\r\n`,
    `${good}\nextra`,
    good.slice(0, 42) + 'B=', // non-zero unused bits: not canonical
    Buffer.concat([Buffer.from(good), Buffer.alloc(300, 0x41)]),
    Buffer.from([0xff, 0xfe, 0x00]),
  ];
  for (const content of cases) {
    const file = join(freshDir(), 'master.key');
    writeKeyFile(file, content);
    const text = Buffer.isBuffer(content) ? undefined : content.trim();
    await assertKeyError(loadKek({ keyFile: file }, { create: true }), new RegExp(`key file ${file} must hold the base64 encoding of exactly 32 bytes`), text);
  }
});

test('key file: accepted with or without the trailing newline, base64url too', async () => {
  const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xf8 + (i % 8)));
  const expected = kekFromBytes(bytes).id;
  for (const content of [bytes.toString('base64'), `${bytes.toString('base64')}\n`, bytes.toString('base64url'), bytes.toString('base64').replace(/=$/, '')]) {
    const file = join(freshDir(), 'master.key');
    writeKeyFile(file, content);
    assert.equal((await loadKek({ keyFile: file })).id, expected);
  }
});

test('key file: a folder or other non-regular file at the path is refused; a symlink to a safe file is followed', async () => {
  const dir = freshDir();
  mkdirSync(join(dir, 'master.key'), { recursive: true, mode: 0o700 });
  await assertKeyError(loadKek({ keyFile: join(dir, 'master.key') }, { create: true }), /is not a regular file/);
  const real = join(dir, 'real.key');
  const kek = await loadKek({ keyFile: real }, { create: true });
  const link = join(dir, 'link.key');
  symlinkSync(real, link);
  assert.equal((await loadKek({ keyFile: link })).id, kek.id);
  chmodSync(real, 0o644);
  await assertKeyError(loadKek({ keyFile: link }), /has mode 0644/);
});

test('key file: a file owned by another user is refused', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async () => {
  const file = join(freshDir(), 'master.key');
  await loadKek({ keyFile: file }, { create: true });
  chownSync(file, 12345, 12345);
  await assertKeyError(loadKek({ keyFile: file }), new RegExp(`key file ${file} is owned by uid 12345, not by the current user`));
});

test('key file: a relative path or no source is a TypeError', async () => {
  await assert.rejects(loadKek({ keyFile: 'relative/master.key' }, { create: true }), TypeError);
  await assert.rejects(loadKek({}), TypeError);
});

test('key file: concurrent first runs in one process agree on one key', async () => {
  const dir = join(freshDir(), 'keys');
  const file = join(dir, 'master.key');
  const keks = await Promise.all(Array.from({ length: 16 }, () => loadKek({ keyFile: file }, { create: true })));
  assert.equal(new Set(keks.map((k) => k.id)).size, 1);
  assert.equal(keks[0]!.id, (await loadKek({ keyFile: file })).id);
  assert.deepEqual(readdirSync(dir), ['master.key']);
});

test('key file: concurrent first runs in separate processes agree on one key', async () => {
  const dir = join(freshDir(), 'keys');
  const file = join(dir, 'master.key');
  const script = `import { loadKek } from ${JSON.stringify(new URL('../../src/vault/kek.ts', import.meta.url).href)};
const kek = await loadKek({ keyFile: ${JSON.stringify(file)} }, { create: true });
process.stdout.write(kek.id);`;
  const run = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
    });
  const ids = await Promise.all(Array.from({ length: 6 }, run));
  assert.equal(new Set(ids).size, 1);
  assert.match(ids[0]!, /^[0-9a-f]{16}$/);
  assert.equal((await loadKek({ keyFile: file })).id, ids[0]);
  assert.deepEqual(readdirSync(dir), ['master.key']);
});

test('env: base64 and base64url of 32 bytes, padded or not, give the same KEK', async () => {
  // Bytes chosen so that the two alphabets differ (+/ versus -_).
  const bytes = Buffer.from(Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? 0xfb : 0xff)));
  const b64 = bytes.toString('base64');
  const b64url = bytes.toString('base64url');
  assert.ok(/[+/]/.test(b64) && /[-_]/.test(b64url));
  const expected = kekFromBytes(bytes).id;
  for (const env of [b64, b64.replace(/=$/, ''), b64url, `${b64url}=`]) {
    assert.equal((await loadKek({ env })).id, expected);
  }
});

test('env: wins over the key file, which is then not created', async () => {
  const bytes = randomKeyBytes(32);
  const file = join(freshDir(), 'master.key');
  const kek = await loadKek({ env: bytes.toString('base64'), keyFile: file }, { create: true });
  assert.equal(kek.id, kekFromBytes(bytes).id);
  assert.throws(() => statSync(file), /ENOENT/);
});

test('env: anything but base64/base64url of exactly 32 bytes is refused without echoing the value', async () => {
  const good = randomKeyBytes(32).toString('base64');
  const url = Buffer.from(Array.from({ length: 32 }, () => 0xfb)).toString('base64url');
  const bad = [
    '',
    ' ',
    randomKeyBytes(31).toString('base64'),
    randomKeyBytes(33).toString('base64'),
    randomKeyBytes(64).toString('base64'),
    randomKeyBytes(32).toString('hex'),
    `${good}\n`,
    ` ${good}`,
    `${good}=`,
    good.replace(/=$/, '') + '==',
    good.slice(0, 42) + 'B', // non-zero unused bits
    `${url.slice(0, 10)}+${url.slice(11)}`, // mixed alphabets
    'correct horse battery staple, certainly not 32 bytes',
  ];
  for (const env of bad) {
    await assertKeyError(loadKek({ env }), /^BASTION_MASTER_KEY must be the base64 or base64url encoding of exactly 32 bytes$/, env.trim());
  }
});
