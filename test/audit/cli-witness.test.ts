// `bastion audit verify` against real SQLite stores tampered with as an attacker with write access to the
// store (but not to the witness file, and without the checkpoint signing key) would (issue 11, class 4).
// Before this issue: deleting checkpoints and re-chaining verified ok, and there was no --witness, so a
// truncated, emptied or re-chained store went unnoticed.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, test } from 'node:test';
import { chainRecord, checkpointPayload } from '../../src/audit/chain.ts';
import { AuditLog } from '../../src/audit/log.ts';
import type { AuditEvent, AuditRecord } from '../../src/audit/types.ts';
import { auditVerify } from '../../src/cli/commands/audit.ts';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { generateEd25519, keyIdOf, signEd25519 } from '../../src/util/crypto.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const EVERY = 10;

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd: tmp.dir };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

/** A witness file as `audit.witness.file` holds it: one JSON checkpoint per line. */
function witnessText(cps: readonly { seq: number; hash: string; time: string; keyId: string; signature: string }[]): string {
  return cps.map((c) => `${JSON.stringify({ seq: c.seq, hash: c.hash, time: c.time, keyId: c.keyId, signature: c.signature })}\n`).join('');
}

let template = '';
let witness = '';
let small = '';

before(async () => {
  template = join(tmp.dir, 'template.db');
  const store = await openSqliteStore(template);
  const log = await AuditLog.open(store, { checkpointEvery: EVERY });
  for (let i = 1; i <= 95; i++) await log.append(sampleEvent(i));
  await log.close();
  witness = join(tmp.dir, 'witness.log');
  writeFileSync(witness, witnessText(await store.listCheckpoints()));
  await store.close();

  small = join(tmp.dir, 'small.db');
  const s2 = await openSqliteStore(small);
  const log2 = await AuditLog.open(s2, { checkpointEvery: EVERY });
  for (let i = 1; i <= 5; i++) await log2.append(sampleEvent(i));
  await log2.close();
  await s2.close();
});

/** A copy of `from` in its own folder with a config naming it (checkpointEvery 10), tampered by `tamper`. */
function tampered(tamper: (db: DatabaseSync) => void, from = template): { config: string; store: string } {
  const dir = join(tmp.dir, `case${n++}`);
  mkdirSync(dir);
  const store = join(dir, 'bastion.db');
  copyFileSync(from, store);
  const db = new DatabaseSync(store);
  tamper(db);
  db.close();
  const config = join(dir, 'bastion.yaml');
  writeFileSync(config, `version: 1\nstore:\n  sqlite: ./bastion.db\naudit:\n  checkpointEvery: ${EVERY}\n`);
  return { config, store };
}

/** Rewrites record `from` (agent → mallory) and re-chains every later record with correct hashes, as anyone can. */
function rechainFrom(db: DatabaseSync, from: number): AuditRecord[] {
  const rows = db.prepare('SELECT json FROM audit ORDER BY seq').all() as { json: string }[];
  const records = rows.map((r) => JSON.parse(r.json) as AuditRecord);
  const out: AuditRecord[] = records.slice(0, from - 1);
  for (const r of records.slice(from - 1)) {
    const { seq: _s, prevHash: _p, hash: _h, ...event } = r;
    const next = chainRecord(out.at(-1), (r.seq === from ? { ...event, agent: 'mallory' } : event) as AuditEvent);
    db.prepare('UPDATE audit SET json = ?, hash = ? WHERE seq = ?').run(JSON.stringify(next), next.hash, next.seq);
    out.push(next);
  }
  return out;
}

/** Runs `audit verify --config C --json [extra]`; returns the exit code and the parsed JSON line. */
async function verify(config: string, extra: string[] = []): Promise<{ code: number; body: Record<string, unknown>; stderr: string }> {
  const c = capture();
  const code = await auditVerify(['--config', config, '--json', ...extra], c.io);
  return { code, body: c.stdout() === '' ? {} : (JSON.parse(c.stdout()) as Record<string, unknown>), stderr: c.stderr() };
}

function assertBroken(r: { code: number; body: Record<string, unknown> }, seq: number, reason: string): void {
  assert.equal(r.code, EXIT.FAILED, JSON.stringify(r.body));
  assert.equal(r.body['ok'], false);
  assert.equal(r.body['code'], 'ERR_AUDIT_CHAIN_BROKEN');
  assert.equal(r.body['reason'], reason);
  assert.equal(r.body['seq'], seq);
}

describe('audit verify: checkpoint density', () => {
  test('the untouched store verifies, alone and with its witness', async () => {
    const { config } = tampered(() => undefined);
    const plain = await verify(config);
    assert.equal(plain.code, EXIT.OK, plain.stderr);
    assert.equal(plain.body['records'], 95);
    const w = await verify(config, ['--witness', witness]);
    assert.equal(w.code, EXIT.OK, w.stderr);
    assert.equal(w.body['witnessed'], 11);
  });

  test('two checkpoints deleted from the middle → exit 1, checkpoint_gap at the first record past the allowance', async () => {
    const { config, store } = tampered((db) => db.exec('DELETE FROM audit_checkpoints WHERE seq IN (40, 50)'));
    assertBroken(await verify(config), 41, 'checkpoint_gap');
    // --checkpoint-every instead of the config, on the bare store file.
    const c = capture();
    assert.equal(await auditVerify(['--store', store, '--checkpoint-every', '10'], c.io), EXIT.FAILED);
    assert.equal(c.stdout(), 'audit chain broken at record 41: checkpoint_gap\n');
    assert.match(c.stderr(), /records 31-41 carry no checkpoint/);
  });

  test('every checkpoint deleted from a store below checkpointEvery records → exit 1, checkpoint_missing at seq 1', async () => {
    const { config } = tampered((db) => db.exec('DELETE FROM audit_checkpoints'), small);
    assertBroken(await verify(config), 1, 'checkpoint_missing');
  });

  test('records rewritten from seq 30 and re-chained with recomputed hashes, the stale checkpoints deleted → exit 1 without a witness', async () => {
    const { config } = tampered((db) => {
      rechainFrom(db, 30);
      db.exec('DELETE FROM audit_checkpoints WHERE seq >= 30');
    });
    assertBroken(await verify(config), 31, 'checkpoint_gap');
    assertBroken(await verify(config, ['--witness', witness]), 30, 'witness_mismatch');
  });
});

describe('audit verify --witness', () => {
  test('a truncated store (records and checkpoints past 60 deleted): verify alone cannot tell; --witness → witness_truncated', async () => {
    const { config } = tampered((db) => db.exec('DELETE FROM audit WHERE seq > 60; DELETE FROM audit_checkpoints WHERE seq > 60'));
    assert.equal((await verify(config)).code, EXIT.OK);
    assertBroken(await verify(config, ['--witness', witness]), 95, 'witness_truncated');
  });

  test('an emptied store: verify alone cannot tell; --witness → witness_truncated, saying it is empty', async () => {
    const { config } = tampered((db) => db.exec('DELETE FROM audit; DELETE FROM audit_checkpoints'));
    assert.equal((await verify(config)).code, EXIT.OK);
    const r = await verify(config, ['--witness', witness]);
    assertBroken(r, 95, 'witness_truncated');
    assert.match(String(r.body['message']), /emptied/);
  });

  test('the tail re-chained after the last position checkpoint: verify alone cannot tell; --witness → witness_mismatch', async () => {
    const { config } = tampered((db) => {
      rechainFrom(db, 92);
      db.exec('DELETE FROM audit_checkpoints WHERE seq = 95');
    });
    assert.equal((await verify(config)).code, EXIT.OK);
    assertBroken(await verify(config, ['--witness', witness]), 95, 'witness_mismatch');
  });

  test('re-chained from seq 30 and re-signed with a key planted in the store: verify alone passes; --witness → witness_mismatch, or key_unknown once the real key is deleted too', async () => {
    const attacker = generateEd25519();
    const attackerId = keyIdOf(attacker.publicKeyPem);
    const rewrite = (dropRealKey: boolean) => (db: DatabaseSync): void => {
      const records = rechainFrom(db, 30);
      db.exec('DELETE FROM audit_checkpoints WHERE seq >= 30');
      if (dropRealKey) db.exec(`DELETE FROM keys WHERE purpose = 'audit'`);
      db.prepare(`UPDATE keys SET current = 0 WHERE purpose = 'audit'`).run();
      db.prepare('INSERT INTO keys (id, purpose, alg, public_pem, private_pem, created_at, current) VALUES (?, ?, ?, ?, ?, ?, 1)').run(
        attackerId, 'audit', 'Ed25519', attacker.publicKeyPem, attacker.privateKeyPem, 0,
      );
      const resign = dropRealKey ? records : records.slice(29);
      for (const r of resign.filter((x) => x.seq === 1 || x.seq % EVERY === 0 || x.seq === 95)) {
        const unsigned = { seq: r.seq, hash: r.hash, time: '2026-01-02T00:00:00.000Z', keyId: attackerId };
        if (dropRealKey && r.seq < 30) db.prepare('DELETE FROM audit_checkpoints WHERE seq = ?').run(r.seq);
        db.prepare('INSERT INTO audit_checkpoints (seq, hash, time, key_id, signature) VALUES (?, ?, ?, ?, ?)').run(
          r.seq, r.hash, unsigned.time, attackerId, signEd25519(attacker.privateKeyPem, checkpointPayload(unsigned)),
        );
      }
    };
    const kept = tampered(rewrite(false));
    assert.equal((await verify(kept.config)).code, EXIT.OK, 'the store\'s own keys vouch for the forgery');
    assertBroken(await verify(kept.config, ['--witness', witness]), 30, 'witness_mismatch');
    const dropped = tampered(rewrite(true));
    assert.equal((await verify(dropped.config)).code, EXIT.OK);
    assertBroken(await verify(dropped.config, ['--witness', witness]), 1, 'checkpoint_key_unknown');
  });

  test('a malformed witness line → exit 1 naming the line; a missing witness file → usage error', async () => {
    const { config } = tampered(() => undefined);
    const bad = join(tmp.dir, 'bad-witness.log');
    writeFileSync(bad, '{"seq":1}\n');
    const r = await verify(config, ['--witness', bad]);
    assert.equal(r.code, EXIT.FAILED);
    assert.deepEqual({ code: r.body['code'], reason: r.body['reason'], line: r.body['line'] }, { code: 'ERR_AUDIT_WITNESS', reason: 'witness_malformed', line: 1 });
    const c = capture();
    assert.equal(await auditVerify(['--config', config, '--witness', join(tmp.dir, 'nope.log')], c.io), EXIT.USAGE);
    assert.match(c.stderr(), /cannot read --witness file/);
  });

  test('--checkpoint-every out of range is a usage error', async () => {
    for (const v of ['0', '-1', '1.5', 'x', '1000001']) {
      const c = capture();
      assert.equal(await auditVerify(['--store', template, '--checkpoint-every', v], c.io), EXIT.USAGE, v);
    }
  });
});

describe('audit.witness in the config', () => {
  test('the gateway writes the configured witness file (relative to the config); verify --config notes it; a truncation is then caught', async () => {
    const dir = join(tmp.dir, 'gw');
    mkdirSync(dir);
    const config = join(dir, 'bastion.yaml');
    writeFileSync(config, 'version: 1\nstore:\n  sqlite: ./bastion.db\naudit:\n  checkpointEvery: 4\n  witness:\n    file: ./witness.jsonl\n');
    const { config: resolved } = await loadConfig(config, { env: {}, secrets: 'strict' });
    assert.equal(resolved.audit.witness?.file, join(dir, 'witness.jsonl'));
    const { gateway } = await Gateway.open(resolved);
    for (let i = 1; i <= 10; i++) await gateway.audit.append(sampleEvent(i));
    await gateway.close();
    const store = await openSqliteStore(join(dir, 'bastion.db'), { create: false });
    const stored = await store.listCheckpoints();
    const last = (await store.lastAudit())!.seq;
    await store.close();
    assert.ok(stored.length >= 4, `checkpoints ${stored.map((c) => c.seq).join()}`);
    assert.equal(readFileSync(join(dir, 'witness.jsonl'), 'utf8'), witnessText(stored));

    const c = capture();
    assert.equal(await auditVerify(['--config', config], c.io), EXIT.OK, c.stderr());
    assert.match(c.stderr(), /note: the config names a witness file; add --witness .*witness\.jsonl/);
    const db = new DatabaseSync(join(dir, 'bastion.db'));
    db.exec('DELETE FROM audit WHERE seq > 4; DELETE FROM audit_checkpoints WHERE seq > 4');
    db.close();
    assert.equal((await verify(config)).code, EXIT.OK);
    assertBroken(await verify(config, ['--witness', join(dir, 'witness.jsonl')]), last, 'witness_truncated');
  });
});
