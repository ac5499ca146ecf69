import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../../src/audit/log.ts';
import { auditKey, auditTail, auditVerify, followAudit, formatRecord } from '../../src/cli/commands/audit.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { generateEd25519 } from '../../src/util/crypto.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const freshPath = (): string => join(tmp.dir, `cli${n++}.db`);

function capture(cwd = tmp.dir, env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env, cwd };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

let template = '';

before(async () => {
  template = freshPath();
  const store = await openSqliteStore(template);
  const log = await AuditLog.open(store, { checkpointEvery: 10 });
  for (let i = 1; i <= 25; i++) {
    await log.append(sampleEvent(i, i === 25 ? { target: 'evil\u001b[2J\nname\u202e', agent: 'demo' } : {}));
  }
  await log.close();
  await store.close();
});

function copy(): string {
  const path = freshPath();
  copyFileSync(template, path);
  return path;
}

describe('bastion audit verify', () => {
  test('an intact chain: exit 0 and a summary', async () => {
    const c = capture();
    assert.equal(await auditVerify(['--store', template], c.io), EXIT.OK);
    assert.equal(c.stdout(), 'ok: 25 records, 4 checkpoints, chain intact\n');
  });

  test('--json, and a relative --store resolved against cwd', async () => {
    const c = capture(join(template, '..'));
    assert.equal(await auditVerify(['--store', template.split('/').at(-1)!, '--json'], c.io), EXIT.OK);
    assert.deepEqual(JSON.parse(c.stdout()), { ok: true, records: 25, checkpoints: 4, lastSeq: 25 });
  });

  test('a tampered record: exit 1 naming the record and reason', async () => {
    const path = copy();
    const db = new DatabaseSync(path);
    db.exec(`UPDATE audit SET json = json_set(json, '$.durationMs', 1) WHERE seq = 7`);
    db.close();
    const c = capture();
    assert.equal(await auditVerify(['--store', path], c.io), EXIT.FAILED);
    assert.equal(c.stdout(), 'audit chain broken at record 7: hash_mismatch\n');
    const j = capture();
    assert.equal(await auditVerify(['--store', path, '--json'], j.io), EXIT.FAILED);
    const body = JSON.parse(j.stdout());
    assert.deepEqual({ ...body, message: undefined }, { ok: false, code: 'ERR_AUDIT_CHAIN_BROKEN', seq: 7, reason: 'hash_mismatch', message: undefined });
  });

  test('--public-key: the exported key verifies; an unrelated key fails', async () => {
    const k = capture();
    assert.equal(await auditKey(['--store', template], k.io), EXIT.OK);
    const keyFile = join(tmp.dir, 'audit.pem');
    writeFileSync(keyFile, k.stdout());
    const ok = capture();
    assert.equal(await auditVerify(['--store', template, '--public-key', keyFile], ok.io), EXIT.OK);

    const otherFile = join(tmp.dir, 'other.pem');
    writeFileSync(otherFile, generateEd25519().publicKeyPem);
    const bad = capture();
    assert.equal(await auditVerify(['--store', template, '--public-key', otherFile], bad.io), EXIT.FAILED);
    assert.equal(bad.stdout(), 'audit chain broken at record 1: checkpoint_key_unknown\n');
  });

  test('--public-key that is unreadable or not a key: usage error', async () => {
    const c = capture();
    assert.equal(await auditVerify(['--store', template, '--public-key', join(tmp.dir, 'missing.pem')], c.io), EXIT.USAGE);
    const junk = join(tmp.dir, 'junk.pem');
    writeFileSync(junk, 'hello');
    const d = capture();
    assert.equal(await auditVerify(['--store', template, '--public-key', junk], d.io), EXIT.USAGE);
  });

  test('a store that does not exist: EXIT.STORE, and it is not created', async () => {
    const c = capture();
    const missing = join(tmp.dir, 'nowhere', 'x.db');
    assert.equal(await auditVerify(['--store', missing], c.io), EXIT.STORE);
    assert.match(c.stderr(), /store: open failed/);
    const again = capture();
    assert.equal(await auditVerify(['--store', missing], again.io), EXIT.STORE);
  });

  test('a file that is not a database: EXIT.STORE', async () => {
    const junk = join(tmp.dir, 'junk.db');
    writeFileSync(junk, 'x'.repeat(4096));
    const c = capture();
    assert.equal(await auditVerify(['--store', junk], c.io), EXIT.STORE);
  });

  test('usage errors: unknown flag, positional, --config with --store; --help', async () => {
    for (const argv of [['--nope'], ['extra'], ['--config', 'a.yaml', '--store', template], ['--store']]) {
      const c = capture();
      assert.equal(await auditVerify(argv, c.io), EXIT.USAGE, argv.join(' '));
      assert.match(c.stderr(), /^bastion audit verify: /);
    }
    const h = capture();
    assert.equal(await auditVerify(['--help'], h.io), EXIT.OK);
    assert.match(h.stdout(), /^Usage: bastion audit verify/);
  });

  test('--config: the store path comes from the config file', async () => {
    const dir = join(tmp.dir, 'cfg');
    mkdirSync(join(dir, 'data'), { recursive: true });
    copyFileSync(template, join(dir, 'data', 'b.db'));
    writeFileSync(join(dir, 'bastion.yaml'), 'version: 1\nstore:\n  sqlite: ./data/b.db\n');
    const c = capture(dir);
    assert.equal(await auditVerify([], c.io), EXIT.OK, c.stderr());
    assert.equal(c.stdout(), 'ok: 25 records, 4 checkpoints, chain intact\n');
    const d = capture(tmp.dir);
    assert.equal(await auditVerify(['--config', join(dir, 'bastion.yaml')], d.io), EXIT.OK, d.stderr());
    const e = capture(tmp.dir);
    assert.equal(await auditVerify(['--config', join(dir, 'missing.yaml')], e.io), EXIT.CONFIG);
  });
});

describe('bastion audit tail', () => {
  test('prints the last n records, one line each, with terminal-unsafe characters escaped', async () => {
    const c = capture();
    assert.equal(await auditTail(['--store', template, '-n', '3'], c.io), EXIT.OK);
    const lines = c.stdout().trimEnd().split('\n');
    assert.equal(lines.length, 3);
    const first = lines[0]!.split(' ');
    assert.equal(first.length, 8);
    assert.equal(first[0], sampleEvent(23).time);
    assert.equal(first[2], 'tools/call');
    assert.equal(
      lines[2],
      `${sampleEvent(25).time} demo tools/call evil\\u{1b}[2J\\u{a}name\\u{202e} allow policy.permit ok 25ms`,
    );
    assert.doesNotMatch(c.stdout(), /\u001b/);
  });

  test('defaults to 20; -n 0 prints nothing; more than exist prints all', async () => {
    const a = capture();
    assert.equal(await auditTail(['--store', template], a.io), EXIT.OK);
    assert.equal(a.stdout().trimEnd().split('\n').length, 20);
    const b = capture();
    assert.equal(await auditTail(['--store', template, '-n', '0'], b.io), EXIT.OK);
    assert.equal(b.stdout(), '');
    const c = capture();
    assert.equal(await auditTail(['--store', template, '-n', '1000'], c.io), EXIT.OK);
    assert.equal(c.stdout().trimEnd().split('\n').length, 25);
  });

  test('--json prints JSON lines of whole records', async () => {
    const c = capture();
    assert.equal(await auditTail(['--store', template, '-n', '2', '--json'], c.io), EXIT.OK);
    const records = c.stdout().trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    assert.deepEqual(records.map((r) => r.seq), [24, 25]);
    assert.equal(typeof records[0]!.hash, 'string');
  });

  test('bad -n and unknown flags are usage errors; missing store is EXIT.STORE', async () => {
    for (const argv of [['-n', 'x'], ['-n', '-1'], ['-n', '1.5'], ['-n', '1e3'], ['--lines=999999999'], ['--bogus']]) {
      const c = capture();
      assert.equal(await auditTail(['--store', template, ...argv], c.io), EXIT.USAGE, argv.join(' '));
    }
    const m = capture();
    assert.equal(await auditTail(['--store', join(tmp.dir, 'none.db')], m.io), EXIT.STORE);
  });

  test('an empty store prints nothing', async () => {
    const path = freshPath();
    await (await openSqliteStore(path)).close();
    const c = capture();
    assert.equal(await auditTail(['--store', path], c.io), EXIT.OK);
    assert.equal(c.stdout(), '');
  });

  test('-f prints records appended later, until SIGINT', async () => {
    const path = copy();
    const c = capture();
    const running = auditTail(['--store', path, '-n', '1', '-f', '--json'], c.io);
    const writer = await openSqliteStore(path);
    await new Promise((r) => setTimeout(r, 100));
    await writer.appendAudit([sampleEvent(100), sampleEvent(101)]);
    const deadline = Date.now() + 5000;
    while (c.stdout().trimEnd().split('\n').length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    process.emit('SIGINT');
    assert.equal(await running, EXIT.OK);
    assert.deepEqual(c.stdout().trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditRecord).seq), [25, 26, 27]);
    assert.equal(process.listenerCount('SIGINT'), 0);
    await writer.close();
  });

  test('followAudit pages through a backlog and stops on abort', async () => {
    const store = await openSqliteStore(template, { create: false });
    const seen: number[] = [];
    const stop = new AbortController();
    const done = followAudit(store, 3, (r) => {
      seen.push(r.seq);
      if (r.seq === 25) setTimeout(() => stop.abort(), 20);
    }, stop.signal, 10);
    await done;
    assert.deepEqual(seen, Array.from({ length: 23 }, (_, i) => i + 3));
    await store.close();
  });

  test('formatRecord shows - for missing fields', () => {
    const line = formatRecord({ ...sampleEvent(3), target: null, seq: 1, prevHash: '', hash: '' });
    assert.equal(line, '2026-01-01T00:00:00.003Z - tools/call - allow policy.permit ok 3ms');
  });
});

describe('bastion audit key', () => {
  test('prints the PEM public key; --json gives id, alg, current', async () => {
    const c = capture();
    assert.equal(await auditKey(['--store', template], c.io), EXIT.OK);
    assert.match(c.stdout(), /^-----BEGIN PUBLIC KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/);
    assert.doesNotMatch(c.stdout(), /PRIVATE/);
    const j = capture();
    assert.equal(await auditKey(['--store', template, '--json'], j.io), EXIT.OK);
    const { keys } = JSON.parse(j.stdout()) as { keys: { keyId: string; alg: string; current: boolean; publicKeyPem: string }[] };
    assert.equal(keys.length, 1);
    assert.equal(keys[0]!.alg, 'Ed25519');
    assert.equal(keys[0]!.current, true);
    assert.equal(keys[0]!.publicKeyPem, c.stdout());
    assert.doesNotMatch(j.stdout(), /PRIVATE/);
  });

  test('a store without a key: EXIT.NOT_FOUND; usage errors', async () => {
    const path = freshPath();
    await (await openSqliteStore(path)).close();
    const c = capture();
    assert.equal(await auditKey(['--store', path], c.io), EXIT.NOT_FOUND);
    const u = capture();
    assert.equal(await auditKey(['--store', path, 'x'], u.io), EXIT.USAGE);
  });
});
