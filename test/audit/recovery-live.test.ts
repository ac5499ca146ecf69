// Scale test finding (three `bastion serve` instances on one store): each start wrote `audit.recovery` with
// `uncleanShutdown: true` naming the other instances, which had not closed because they were still running.
// Now each open instance's liveness is decided (cluster registry, else its pid on this host, else unknown)
// and only crashed instances make an unclean shutdown. docs/audit.md "Crash recovery".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { AuditLog, verifyAudit } from '../../src/audit/log.ts';
import { decideLiveness, localProcessInfo, openMarkerDetail, REGISTRY_GRACE_MS } from '../../src/audit/recovery.ts';
import { openSqliteStore } from '../../src/store/sqlite.ts';
import type { Store } from '../../src/store/store.ts';
import { sampleEvent, tempDir } from './fixtures.ts';

const tmp = tempDir();
after(tmp.cleanup);
const EVERY = 10;
let n = 0;

function dbPath(): string {
  return join(tmp.dir, `live-${++n}.db`);
}

async function recoveries(store: Store): Promise<number> {
  return (await store.readAudit(1, 10_000)).filter((r) => r.method === 'audit.recovery').length;
}

/** An `audit.open` marker as another instance would have written it, appended by a log with no instance of its own. */
async function foreignOpen(store: Store, detail: Record<string, unknown>, time = new Date()): Promise<void> {
  const log = await AuditLog.open(store, { checkpointEvery: EVERY });
  await log.append({ ...sampleEvent(1), time: time.toISOString(), door: 'system', agent: null, method: 'audit.open', detail });
  await log.close();
}

test('two instances running on one store: the second start reports the first live, not crashed, and writes no recovery record', async () => {
  const db = dbPath();
  const [a, b] = [await openSqliteStore(db), await openSqliteStore(db)];
  const logA = await AuditLog.open(a, { checkpointEvery: EVERY, instance: 'A' });
  await logA.append(sampleEvent(1));
  const logB = await AuditLog.open(b, { checkpointEvery: EVERY, instance: 'B' });
  assert.equal(logB.recovery!.uncleanShutdown, false);
  assert.deepEqual(logB.recovery!.openInstances, ['A']);
  assert.deepEqual(logB.recovery!.crashedInstances, []);
  assert.deepEqual(logB.recovery!.instances, [{ instance: 'A', status: 'live', by: 'process', openSeq: 1 }]);
  await logB.append(sampleEvent(2));
  // A third start, both running: still nothing to recover.
  const logC = await AuditLog.open(b, { checkpointEvery: EVERY, instance: 'C' });
  assert.equal(logC.recovery!.uncleanShutdown, false);
  assert.deepEqual(
    logC.recovery!.instances.map((i) => [i.instance, i.status]),
    [
      ['A', 'live'],
      ['B', 'live'],
    ],
  );
  await logC.close();
  await logB.close();
  await logA.close();
  assert.equal(await recoveries(a), 0);
  assert.equal((await verifyAudit(a, { checkpointEvery: EVERY })).ok, true);
  await b.close();
  await a.close();
});

test('one instance killed (SIGKILL) while another runs: the next start reports only the killed one, once', async () => {
  const db = dbPath();
  const store = await openSqliteStore(db);
  const live = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'L' });
  // Instance K in a child process: opens, appends, is killed.
  const child = spawn(process.execPath, [join(import.meta.dirname, 'recovery-writer.ts'), db, join(tmp.dir, `w-${n}.witness`), '3', String(EVERY)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => line.startsWith('ready ') && resolve());
    child.once('exit', (code) => reject(new Error(`writer exited ${code}`)));
  });
  child.kill('SIGKILL');
  await exited;
  await live.append(sampleEvent(9));
  const m = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'M' });
  // recovery-writer.ts names its instance 'A'.
  assert.equal(m.recovery!.uncleanShutdown, true);
  assert.deepEqual(m.recovery!.crashedInstances, ['A']);
  assert.deepEqual(
    m.recovery!.instances.map((i) => [i.instance, i.status, i.by]),
    [
      ['L', 'live', 'process'],
      ['A', 'crashed', 'no_process'],
    ],
  );
  await m.close();
  const record = (await store.readAudit(1, 1000)).find((r) => r.method === 'audit.recovery')!;
  assert.deepEqual(record.detail?.['crashedInstances'], ['A']);
  // The crash was reported: the next start (L still running) finds nothing to recover.
  const next = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'N' });
  assert.equal(next.recovery!.uncleanShutdown, false);
  assert.deepEqual(next.recovery!.crashedInstances, []);
  await next.close();
  await live.close();
  assert.equal(await recoveries(store), 1);
  await store.close();
});

test('an instance on another host: unknown without a registry (no crash claimed), live when registered, crashed when the registry lacks it long after', async () => {
  const db = dbPath();
  const store = await openSqliteStore(db);
  const opened = new Date();
  await foreignOpen(store, { instance: 'R', pid: 4242, host: 'other-host.invalid', started: opened.toISOString() }, opened);
  const unknown = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'U' });
  assert.equal(unknown.recovery!.uncleanShutdown, false);
  assert.deepEqual(unknown.recovery!.instances.map((i) => [i.instance, i.status, i.by]), [['R', 'unknown', 'other_host']]);
  await unknown.close();
  const failing = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'F', liveInstances: () => Promise.reject(new Error('redis down')) });
  assert.deepEqual(failing.recovery!.instances.map((i) => i.status), ['unknown']);
  await failing.close();
  const registered = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'G', liveInstances: () => Promise.resolve(new Set(['R'])) });
  assert.deepEqual(registered.recovery!.instances.map((i) => [i.instance, i.status, i.by]), [['R', 'live', 'registry']]);
  await registered.close();
  assert.equal(await recoveries(store), 0);
  // Just opened and not yet registered (it registers once serving): not enough to call it crashed.
  assert.deepEqual(decideLiveness({ instance: 'R', pid: 4242, host: 'other-host.invalid' }, opened.getTime(), { registered: new Set() }), { status: 'unknown', by: 'other_host' });
  assert.deepEqual(decideLiveness({ instance: 'R', pid: 4242, host: 'other-host.invalid' }, opened.getTime(), { registered: new Set(), nowMs: opened.getTime() + REGISTRY_GRACE_MS + 1 }), {
    status: 'crashed',
    by: 'registry_absent',
  });
  await store.close();
});

test('a marker whose pid now belongs to another process (started later) is a crash; an old marker without pid or host is unknown', async () => {
  const db = dbPath();
  const store = await openSqliteStore(db);
  // This process's pid, as a process started in 2001 recorded it: a restart reusing the pid (pid 1 in a container).
  await foreignOpen(store, { instance: 'P', pid: process.pid, host: hostname(), started: '2001-01-01T00:00:00.000Z' });
  await foreignOpen(store, { instance: 'O' });
  const log = await AuditLog.open(store, { checkpointEvery: EVERY, instance: 'Q' });
  const byInstance = Object.fromEntries(log.recovery!.instances.map((i) => [i.instance, [i.status, i.by]]));
  if (localProcessInfo(process.pid).startedMs !== undefined) assert.deepEqual(byInstance['P'], ['crashed', 'pid_reused']);
  assert.deepEqual(byInstance['O'], ['unknown', 'no_detail']);
  await log.close();
  await store.close();
});

test('decideLiveness: this host by pid (alive, gone, reused), start time within tolerance is the same process', () => {
  const host = 'h1';
  const started = '2026-01-01T00:00:00.000Z';
  const t = Date.parse(started);
  const marker = { instance: 'x', pid: 7, host, started };
  assert.deepEqual(decideLiveness(marker, t, { host, processInfo: () => ({ alive: false }) }), { status: 'crashed', by: 'no_process' });
  assert.deepEqual(decideLiveness(marker, t, { host, processInfo: () => ({ alive: true, startedMs: t + 2_000 }) }), { status: 'live', by: 'process' });
  assert.deepEqual(decideLiveness(marker, t, { host, processInfo: () => ({ alive: true, startedMs: t + 3_600_000 }) }), { status: 'crashed', by: 'pid_reused' });
  // Start time unknown (no /proc): the pid is trusted.
  assert.deepEqual(decideLiveness(marker, t, { host, processInfo: () => ({ alive: true }) }), { status: 'live', by: 'process' });
  // The registry wins over the pid.
  assert.deepEqual(decideLiveness(marker, t, { host, registered: new Set(['x']), processInfo: () => ({ alive: false }) }), { status: 'live', by: 'registry' });
  // Our own marker's start time matches this process's.
  const own = openMarkerDetail('me');
  const info = localProcessInfo(process.pid);
  assert.equal(info.alive, true);
  assert.deepEqual(decideLiveness(own, Date.now()), { status: 'live', by: 'process' });
});
