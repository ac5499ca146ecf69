// Issue 14, finding 1: a crash left no trace, and the next start signed the records no checkpoint covered yet,
// so a cut or rewrite of the store made while Bastion was down ended up under a valid signature. Now the audit
// log checks the tail against the last checkpoint and the witness before signing anything, refuses to start
// when the store was cut or rewritten (ERR_AUDIT_CHAIN_BROKEN, nothing signed), and records what it found after
// an unclean shutdown (`audit.recovery`), told apart from a clean stop by per-instance open/close markers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { chainRecord } from '../../src/audit/chain.ts';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import { readWitnessFile, FileWitness } from '../../src/audit/witness.ts';
import { openMarkerDetail } from '../../src/audit/recovery.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { isBastionError } from '../../src/errors.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
const EVERY = 10;
const WRITER = join(import.meta.dirname, 'recovery-writer.ts');
let n = 0;

/**
 * Runs recovery-writer.ts (instance A: `audit.open` at seq 1, then `count` records), waits for its ready line
 * and kills it with SIGKILL. Returns the store and witness paths and the tip seq it reported.
 */
async function crashedWriter(count: number): Promise<{ db: string; witness: string; tip: number }> {
  const db = join(tmp.dir, `crash-${++n}.db`);
  const witness = join(tmp.dir, `crash-${n}.witness`);
  const child = spawn(process.execPath, [WRITER, db, witness, String(count), String(EVERY)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const errors: string[] = [];
  createInterface({ input: child.stderr }).on('line', (l) => errors.push(l));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const tip = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`writer not ready: ${errors.join('\n')}`)), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = /^ready (\d+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`writer exited ${code}: ${errors.join('\n')}`)));
  });
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  return { db, witness, tip };
}

async function records(db: string): Promise<AuditRecord[]> {
  const store = await openSqliteStore(db, { create: false, auditWorker: false });
  try {
    return await store.readAudit(1, 100_000);
  } finally {
    await store.close();
  }
}

test('after a SIGKILL, the next start records what it found (unclean, unsigned seq range, witness consistent) before signing', async () => {
  const { db, witness, tip } = await crashedWriter(25);
  // Instance A's marker at seq 1, its 25 records at 2-26; checkpoints at 1, 10, 20 (store and witness).
  assert.equal(tip, 26);
  const store = await openSqliteStore(db, { create: false });
  const log = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'B', witness: await FileWitness.open(witness) });
  const found = log.recovery!;
  assert.deepEqual(found, {
    uncleanShutdown: true,
    openInstances: ['A'],
    crashedInstances: ['A'],
    // The writer's pid is gone from this host.
    instances: [{ instance: 'A', status: 'crashed', by: 'no_process', openSeq: 1 }],
    tipSeq: 26,
    lastCheckpointSeq: 20,
    unsigned: { count: 6, fromSeq: 21, toSeq: 26 },
    witness: 'consistent',
    witnessLastSeq: 20,
  });
  await log.close();
  const all = await store.readAudit(1, 1000);
  const [recovery, open] = [all[26]!, all[27]!];
  assert.equal(recovery.method, 'audit.recovery');
  assert.equal(recovery.door, 'system');
  assert.deepEqual(recovery.detail, { instance: 'B', ...found });
  assert.deepEqual([open.method, open.detail], ['audit.open', openMarkerDetail('B')]);
  assert.deepEqual([all.at(-1)!.method, all.at(-1)!.detail], ['audit.close', { instance: 'B' }]);
  // The marker was checkpointed at once, and the whole chain verifies against the witness.
  assert.ok((await store.listCheckpoints()).some((cp) => cp.seq === 28));
  const result = await verifyAudit(store, { checkpointEvery: EVERY, witness: (await readWitnessFile(witness)).checkpoints });
  assert.equal(result.ok, true, JSON.stringify(result));
  await store.close();

  // After that clean close, the next start finds nothing to recover and writes no recovery record.
  const s2 = await openSqliteStore(db, { create: false });
  const log2 = await AuditLog.open(s2, { checkpointEvery: EVERY, instance: 'C', witness: await FileWitness.open(witness) });
  assert.equal(log2.recovery!.uncleanShutdown, false);
  assert.deepEqual(log2.recovery!.openInstances, []);
  assert.deepEqual(log2.recovery!.unsigned, { count: 0 });
  await log2.close();
  await s2.close();
  assert.equal((await records(db)).filter((r) => r.method === 'audit.recovery').length, 1);
});

/** Opens the log over a tampered store and returns the refusal; asserts nothing was signed or appended. */
async function refusedStart(db: string, witness: string): Promise<{ reason: unknown; seq: unknown; message: string }> {
  const probe = new DatabaseSync(db);
  const before = probe.prepare('SELECT (SELECT count(*) FROM audit) AS records, (SELECT count(*) FROM audit_checkpoints) AS checkpoints').get();
  probe.close();
  const witnessBefore = readFileSync(witness, 'utf8');
  const store = await openSqliteStore(db, { create: false });
  let refusal: unknown;
  try {
    await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'B', witness: await FileWitness.open(witness) });
  } catch (err) {
    refusal = err;
  } finally {
    await store.close();
  }
  assert.ok(isBastionError(refusal, 'ERR_AUDIT_CHAIN_BROKEN'), `expected ERR_AUDIT_CHAIN_BROKEN, got ${String(refusal)}`);
  const after = new DatabaseSync(db);
  assert.deepEqual(after.prepare('SELECT (SELECT count(*) FROM audit) AS records, (SELECT count(*) FROM audit_checkpoints) AS checkpoints').get(), before, 'nothing appended or signed');
  after.close();
  assert.equal(readFileSync(witness, 'utf8'), witnessBefore, 'nothing sent to the witness');
  return { reason: refusal.detail?.['reason'], seq: refusal.detail?.['seq'], message: refusal.message };
}

test('the store cut behind the witness while down (records and checkpoints past 15 deleted): start refused, nothing signed', async () => {
  const { db, witness } = await crashedWriter(25);
  const sql = new DatabaseSync(db);
  sql.exec('DELETE FROM audit WHERE seq > 15; DELETE FROM audit_checkpoints WHERE seq > 15');
  sql.close();
  const r = await refusedStart(db, witness);
  assert.deepEqual([r.reason, r.seq], ['witness_truncated', 20]);
  assert.match(r.message, /refusing to start/);
  assert.match(r.message, /bastion audit verify --witness/);
});

test('the tail rewritten and re-chained from seq 18, its checkpoint deleted, while down: start refused (witness_mismatch)', async () => {
  const { db, witness, tip } = await crashedWriter(25);
  let prev = (await records(db))[16]!;
  const sql = new DatabaseSync(db);
  sql.exec('DELETE FROM audit WHERE seq >= 18; DELETE FROM audit_checkpoints WHERE seq >= 18');
  sql.close();
  // Re-chained rows stored through the store's own row port, as someone with write access to the store could.
  const forged: AuditRecord[] = [];
  for (let seq = 18; seq <= tip; seq++) forged.push((prev = chainRecord(prev, sampleEvent(1000 + seq))));
  const store = await openSqliteStore(db, { create: false, auditWorker: false });
  await store.appendAuditRecords(forged, []);
  await store.close();
  const r = await refusedStart(db, witness);
  assert.deepEqual([r.reason, r.seq], ['witness_mismatch', 20]);
});

test('records deleted under a signed checkpoint while down, no witness: start refused (truncated)', async () => {
  const { db } = await crashedWriter(25);
  const sql = new DatabaseSync(db);
  sql.exec('DELETE FROM audit WHERE seq > 15');
  sql.close();
  const store = await openSqliteStore(db, { create: false });
  await assert.rejects(AuditLog.open(store, { checkpointEvery: EVERY, instance: 'B' }), (err: unknown) => isBastionError(err, 'ERR_AUDIT_CHAIN_BROKEN') && err.detail?.['reason'] === 'truncated');
  assert.equal((await store.lastAudit())!.seq, 15);
  await store.close();
});

test('`serve.stop` naming the instance is its clean-close marker: no `audit.close` after it, and the next start is clean', async () => {
  const db = join(tmp.dir, 'serve-stop.db');
  const store = await openSqliteStore(db);
  const log = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'S' });
  await log.append(sampleEvent(1));
  await log.append({ ...sampleEvent(2), door: 'system', method: 'serve.stop', detail: { instance: 'S' } });
  await log.close();
  assert.equal((await store.lastAudit())!.method, 'serve.stop');
  const log2 = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'T' });
  assert.equal(log2.recovery!.uncleanShutdown, false);
  await log2.close();
  await store.close();
});
