// `bastion audit prune` and `bastion audit export` on real SQLite stores, and serve's retention task on a
// real gateway: pruning keeps `audit verify` passing, a broken chain is never pruned, exports verify
// offline (JSONL) or map to OCSF classes, and bad flags are usage errors.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { verifyChain } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import { isTombstone, type AuditRow } from '../../src/audit/retention.ts';
import type { AuditEvent, AuditRecord } from '../../src/audit/types.ts';
import { auditVerify } from '../../src/cli/commands/audit.ts';
import { auditExport, auditPrune, startServeRetention } from '../../src/cli/commands/audit-retention.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
let n = 0;
const DAY = 86_400_000;
const EVERY = 4;

function capture(cwd: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), env: {}, cwd };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

function old(i: number, daysAgo: number, denied = false): AuditEvent {
  return {
    ...sampleEvent(i * 2 + 1),
    time: new Date(Date.now() - daysAgo * DAY + i).toISOString(),
    decision: denied ? { effect: 'deny', reason: 'policy.forbid', rule: 'p' } : { effect: 'allow', reason: 'policy.permit', rule: 'p' },
    outcome: denied ? 'denied' : 'ok',
  };
}

/** A folder with a store of 14 records (1-6 and 8-10 allows 40 days old, 7 and 11 denials 40 days old, 12-14 a day old) and a config. */
async function fixture(retention = '  retention: { allows: 30d, denials: 90d, system: 365d }\n'): Promise<{ dir: string; config: string; db: string }> {
  const dir = join(tmp.dir, `c${n++}`);
  mkdirSync(dir);
  const db = join(dir, 'bastion.db');
  const store = await openSqliteStore(db);
  const log = await AuditLog.open(store, { checkpointEvery: EVERY });
  for (let i = 1; i <= 14; i++) await log.append(old(i, i <= 11 ? 40 : 1, i === 7 || i === 11));
  await log.close();
  await store.close();
  const config = join(dir, 'bastion.yaml');
  writeFileSync(config, `version: 1\nstore:\n  sqlite: ./bastion.db\nvault:\n  keyFile: ./master.key\naudit:\n  checkpointEvery: ${EVERY}\n${retention}`);
  return { dir, config, db };
}

async function rowsOf(db: string): Promise<AuditRow[]> {
  const store = await openSqliteStore(db);
  try {
    return (await store.readAudit(1, 1000)) as AuditRow[];
  } finally {
    await store.close();
  }
}

test('audit prune --dry-run changes nothing; audit prune prunes; audit verify passes afterwards', async () => {
  const f = await fixture();
  const before = await rowsOf(f.db);
  const dry = capture(f.dir);
  assert.equal(await auditPrune(['--config', f.config, '--dry-run', '--json'], dry.io), EXIT.OK, dry.stderr());
  const plan = JSON.parse(dry.stdout()) as { dryRun: boolean; changed: boolean; through: number; tombstoned: Record<string, number> };
  assert.deepEqual([plan.dryRun, plan.changed, plan.through, plan.tombstoned], [true, true, 6, { allows: 3 }]);
  assert.deepEqual(await rowsOf(f.db), before);

  const run = capture(f.dir);
  assert.equal(await auditPrune(['--config', f.config], run.io), EXIT.OK, run.stderr());
  assert.match(run.stdout(), /deleted records 1-6 \(allows 6\)/);
  assert.match(run.stdout(), /tombstoned allows 3; 3 tombstones/);
  assert.match(run.stdout(), /audit\.pruned record and signed checkpoint at seq 15/);
  const after = await rowsOf(f.db);
  assert.equal(after[0]!.seq, 7);
  assert.equal(after.filter(isTombstone).length, 3);

  const v = capture(f.dir);
  assert.equal(await auditVerify(['--config', f.config, '--json'], v.io), EXIT.OK, v.stdout() + v.stderr());
  assert.equal((JSON.parse(v.stdout()) as { ok: boolean }).ok, true);

  // Again: nothing to do.
  const again = capture(f.dir);
  assert.equal(await auditPrune(['--config', f.config], again.io), EXIT.OK);
  assert.match(again.stdout(), /nothing to prune/);
});

test('audit prune refuses a chain that does not verify (exit 1, nothing changed), and needs audit.retention (exit 3)', async () => {
  const f = await fixture();
  const db = new DatabaseSync(f.db);
  const r = JSON.parse((db.prepare('SELECT json FROM audit WHERE seq = 3').get() as { json: string }).json) as AuditRecord;
  db.prepare('UPDATE audit SET json = ? WHERE seq = 3').run(JSON.stringify({ ...r, agent: 'mallory' }));
  db.close();
  const before = await rowsOf(f.db);
  const c = capture(f.dir);
  assert.equal(await auditPrune(['--config', f.config, '--json'], c.io), EXIT.FAILED);
  const body = JSON.parse(c.stdout()) as { ok: boolean; code: string; seq: number; reason: string };
  assert.deepEqual([body.ok, body.code, body.seq, body.reason], [false, 'ERR_AUDIT_CHAIN_BROKEN', 3, 'hash_mismatch']);
  assert.deepEqual(await rowsOf(f.db), before);

  const g = await fixture('');
  const c2 = capture(g.dir);
  assert.equal(await auditPrune(['--config', g.config], c2.io), EXIT.CONFIG);
  assert.match(c2.stderr(), /audit\.retention is not set/);
});

test('a bad audit.retention duration is a config error naming the field', async () => {
  const f = await fixture('  retention: { allows: 30 days }\n');
  const c = capture(f.dir);
  assert.equal(await auditPrune(['--config', f.config], c.io), EXIT.CONFIG);
  assert.match(c.stderr(), /audit\.retention\.allows/);
  assert.match(c.stderr(), /30d or 12h/);
});

test('audit export: JSONL verifies offline after pruning; OCSF maps classes; ranges and bad flags', async () => {
  const f = await fixture();
  assert.equal(await auditPrune(['--config', f.config], capture(f.dir).io), EXIT.OK);
  const out = join(f.dir, 'export.jsonl');
  const c = capture(f.dir);
  assert.equal(await auditExport(['--config', f.config, '--out', out], c.io), EXIT.OK, c.stderr());
  const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  assert.deepEqual(lines.map((r) => r.seq), [7, 8, 9, 10, 11, 12, 13, 14, 15]);
  // Offline: the chain fields link (tombstones by their link), from the pruned head on.
  const first = lines[0]!;
  const offline = await verifyChain(lines, [], new Map(), { after: { seq: first.seq - 1, hash: first.prevHash }, acceptTombstones: true });
  assert.equal(offline.ok, true);
  // An edited line no longer verifies offline.
  const edited = lines.map((r) => (r.seq === 12 ? { ...r, agent: 'mallory' } : r));
  assert.equal((await verifyChain(edited, [], new Map(), { after: { seq: first.seq - 1, hash: first.prevHash }, acceptTombstones: true })).ok, false);

  const o = capture(f.dir);
  assert.equal(await auditExport(['--config', f.config, '--format', 'ocsf'], o.io), EXIT.OK, o.stderr());
  const events = o.stdout().trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  assert.equal(events.length, 6, 'tombstones are skipped');
  for (const e of events) {
    assert.ok([6003, 4002, 3002].includes(e['class_uid']));
    assert.equal(e['type_uid'], e['class_uid'] * 100 + e['activity_id']);
    assert.equal(e['metadata'].version, '1.3.0');
    assert.equal(typeof e['time'], 'number');
    assert.equal(typeof e['unmapped'].bastion.hash, 'string');
  }
  const denial = events.find((e) => e['metadata'].uid === '11')!;
  assert.deepEqual([denial['class_uid'], denial['action_id'], denial['disposition_id'], denial['status_id'], denial['status_detail']], [6003, 2, 2, 2, 'policy.forbid']);
  assert.equal(denial['api'].operation, 'tools/call');
  const manifest = events.find((e) => e['metadata'].uid === '15')!;
  assert.equal(manifest['activity_name'], 'audit.pruned');

  const r = capture(f.dir);
  assert.equal(await auditExport(['--config', f.config, '--from', '8', '--to', '9'], r.io), EXIT.OK);
  assert.deepEqual(r.stdout().trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditRow).seq), [8, 9]);
  const s = capture(f.dir);
  assert.equal(await auditExport(['--config', f.config, '--since', new Date(Date.now() - 2 * DAY).toISOString()], s.io), EXIT.OK);
  assert.deepEqual(s.stdout().trimEnd().split('\n').map((l) => (JSON.parse(l) as AuditRow).seq), [12, 13, 14, 15]);

  for (const [flags, message] of [
    [['--format', 'xml'], /--format must be jsonl or ocsf/],
    [['--from', '0'], /--from must be a positive integer/],
    [['--to', '1.5'], /--to must be a positive integer/],
    [['--since', 'yesterday'], /--since must be an ISO 8601/],
  ] as const) {
    const b = capture(f.dir);
    assert.equal(await auditExport(['--config', f.config, ...flags], b.io), EXIT.USAGE, flags.join(' '));
    assert.match(b.stderr(), message);
  }
  const w = capture(f.dir);
  assert.equal(await auditExport(['--config', f.config, '--out', join(f.dir, 'no', 'such', 'dir', 'x')], w.io), EXIT.USAGE);
  assert.match(w.stderr(), /cannot write --out file/);
});

test('serve retention: a gateway with audit.retention prunes at start, and verify passes', async () => {
  const f = await fixture();
  const { config } = await loadConfig(f.config, { env: {}, secrets: 'lenient' });
  const { gateway } = await Gateway.open(config, {});
  const lines: string[] = [];
  try {
    const task = startServeRetention(gateway, config.audit, (l) => lines.push(l));
    assert.ok(task !== undefined);
    await task.first;
    await task.close();
    assert.match(lines.join(''), /audit retention: pruned through seq 6, 3 tombstones/);
    // A day-old record is kept; new traffic goes on after the prune.
    await gateway.audit.append(old(50, 0));
  } finally {
    await gateway.close();
  }
  const store = await openSqliteStore(f.db);
  try {
    const rows = (await store.readAudit(1, 1000)) as AuditRow[];
    assert.ok(rows.some((r) => !isTombstone(r) && r.method === 'audit.pruned'));
    assert.equal(rows[0]!.seq, 7);
    assert.equal((await verifyAudit(store, { checkpointEvery: EVERY })).ok, true);
  } finally {
    await store.close();
  }
  // Without retention: no task.
  assert.equal(startServeRetention(gateway, { checkpointEvery: EVERY }, () => undefined), undefined);
});
