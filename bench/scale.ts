/**
 * `npm run bench:scale`: how Bastion scales out over one PostgreSQL store and one Redis.
 *
 * Part 1, instances: the same closed-loop load (MCP tool calls to `up__small` and egress proxy
 * requests to a loopback origin, BENCH_WORKERS workers per door per instance) on 1, 2 and 3
 * `bastion serve` processes sharing a fresh PostgreSQL schema and a private redis-server
 * (test/scale/cluster.ts, the harness of `npm run test:scale`). Per row: answered requests/s,
 * p50/p99 latency per door, CPU ms per request of the Bastion processes (utime + stime from
 * /proc/PID/stat, summed over instances), the store's commit rate (audit records/s, from the chain
 * tip), and an estimate of throughput with every core busy (cores ÷ CPU seconds per request, the
 * load generator's share excluded). Ratios are against the 1-instance row of the same invocation.
 *
 * Part 2, the store alone: `appendAudit` of BENCH_APPEND_BATCHES batches (of 1 and of 100 events)
 * straight to the store, PostgreSQL against SQLite: median and p99 ms per batch, records/s, and the
 * PostgreSQL ÷ SQLite ratio.
 *
 * Env: BENCH_SECONDS (measured seconds per row, default 10), BENCH_WARMUP_SECONDS (default 3),
 * BENCH_WORKERS (default 2), BENCH_APPEND_BATCHES (default 300), BENCH_INSTANCES (default `1,2,3`),
 * BENCH_STORE (`postgres`, default, or `sqlite`: part 1 on one SQLite file, for comparison).
 * Not a test: it prints figures. Every process and schema it makes is removed at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEvent } from '../src/audit/types.ts';
import { openPostgresStore } from '../src/store/postgres.ts';
import { openSqliteStore } from '../src/store/sqlite.ts';
import type { Store } from '../src/store/store.ts';
import { freePort, PrivateRedis, randomPrefix } from '../test/cluster/helpers.ts';
import { freshSchema } from '../test/helpers/postgres.ts';
import { BastionInstance, writeScaleConfig } from '../test/scale/cluster.ts';
import { Ledger, runWorkers, startSizedOrigin, type Door } from '../test/scale/load.ts';
import { startScaleUpstream } from '../test/scale/upstream.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 2);
const BATCHES = Number(process.env.BENCH_APPEND_BATCHES ?? 300);
const COUNTS = (process.env.BENCH_INSTANCES ?? '1,2,3').split(',').map(Number);
const CORES = cpus().length;
/** Part 1's store: `postgres` (default) or `sqlite` (one file shared by the instances), for comparison. */
const STORE = process.env.BENCH_STORE === 'sqlite' ? 'sqlite' : 'postgres';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
}

/** Own CPU ms so far (this process: the load generator, origin and upstream). */
function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Row {
  instances: number;
  rps: number;
  doors: Record<'tool' | 'network', { rps: number; p50: number; p99: number }>;
  cpuMsPerReq: number;
  /** Bastion CPU, in cores (CPU seconds per wall second). */
  bastionCores: number;
  driverCores: number;
  commitsPerS: number;
  /** Requests/s if every core ran Bastion at this CPU cost per request. */
  estimate: number;
}

async function tipSeq(url: string): Promise<number> {
  const s = STORE === 'sqlite' ? await openSqliteStore(url) : await openPostgresStore(url);
  try {
    return (await s.lastAudit())?.seq ?? 0;
  } finally {
    await s.close();
  }
}

async function instancesRow(n: number, redis: PrivateRedis, upstreamUrl: string, originPort: number): Promise<Row> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-scale-'));
  const schema = await freshSchema('benchscale');
  const instances: BastionInstance[] = [];
  try {
    const location = STORE === 'sqlite' ? join(dir, 'bastion.db') : schema.url;
    const { file, env } = writeScaleConfig({ dir, store: STORE === 'sqlite' ? { kind: 'sqlite', path: location } : { kind: 'postgres', url: location }, redis: { url: redis.url, keyPrefix: randomPrefix() }, upstreamUrl, providerUrl: 'http://127.0.0.1:9', originPort });
    instances.push(await BastionInstance.start('bastion-1', file, env));
    instances.push(...(await Promise.all(Array.from({ length: n - 1 }, (_, i) => BastionInstance.start(`bastion-${i + 2}`, file, env)))));
    const ledger = new Ledger();
    const stop = new AbortController();
    const doors: Door[] = ['tool', 'network'];
    const load = Promise.all(instances.map((instance) => runWorkers({ ledger, instance, originPort, perDoor: WORKERS, denyShare: 0, doors, signal: stop.signal })));
    ledger.phase = 'warmup';
    await sleep(WARMUP * 1000);
    const cpu0 = instances.map((i) => i.cpuMs());
    const self0 = selfCpuMs();
    const seq0 = await tipSeq(location);
    const t0 = Date.now();
    ledger.phase = 'measure';
    await sleep(SECONDS * 1000);
    ledger.phase = 'after';
    const t1 = Date.now();
    const cpu1 = instances.map((i) => i.cpuMs());
    const self1 = selfCpuMs();
    stop.abort();
    await load;
    await Promise.all(instances.map((i) => i.stop()));
    // Records of the window are committed by now (graceful stop flushes); count those appended in it.
    const seq1 = await tipSeq(location);
    const wall = (t1 - t0) / 1000;
    const measured = ledger.entries.filter((s) => s.phase === 'measure' && s.result === 'ok' && s.ackAt <= t1);
    const per = (door: 'tool' | 'network'): { rps: number; p50: number; p99: number } => {
      const xs = measured.filter((s) => s.door === door).map((s) => s.ackAt - s.sentAt);
      return { rps: xs.length / wall, p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) };
    };
    const cpuMs = cpu1.reduce((a, c, i) => a + (c - cpu0[i]!), 0);
    const requests = measured.length;
    const cpuPerReq = cpuMs / Math.max(1, requests);
    return {
      instances: n,
      rps: requests / wall,
      doors: { tool: per('tool'), network: per('network') },
      cpuMsPerReq: cpuPerReq,
      bastionCores: cpuMs / 1000 / wall,
      driverCores: (self1 - self0) / 1000 / wall,
      // The tip moved by the window's records and whatever the stop appended (a few system records).
      commitsPerS: (seq1 - seq0) / wall,
      estimate: (CORES * 1000) / cpuPerReq,
    };
  } finally {
    await Promise.all(instances.map((i) => i.crash()));
    await schema.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function event(i: number): AuditEvent {
  return { time: new Date().toISOString(), door: 'network', agent: 'bench', method: 'POST', target: 'api.example.com:443', decision: { effect: 'allow', reason: 'policy.permit', rule: 'agents.bench.network[0]' }, outcome: 'ok', durationMs: 1.5, detail: { mode: 'http', status: 200, bytesIn: 100 + i, bytesOut: 10 } };
}

async function appendRun(store: Store, batch: number): Promise<{ p50: number; p99: number; recordsPerS: number }> {
  for (let i = 0; i < 20; i++) await store.appendAudit(Array.from({ length: batch }, (_, k) => event(k)));
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < BATCHES; i++) {
    const s = performance.now();
    await store.appendAudit(Array.from({ length: batch }, (_, k) => event(k)));
    times.push(performance.now() - s);
  }
  const secs = (performance.now() - t0) / 1000;
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), recordsPerS: (BATCHES * batch) / secs };
}

async function main(): Promise<void> {
  console.log(`scale benchmark: node ${process.version}, ${CORES} cores, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`part 1: tool calls + egress requests, ${WORKERS} closed-loop workers per door per instance, ${WARMUP} s warm-up, ${SECONDS} s measured; ${STORE === 'sqlite' ? 'one SQLite file' : 'PostgreSQL (fresh schema)'} + private Redis`);
  const redis = new PrivateRedis(await freePort());
  await redis.start();
  const upstream = await startScaleUpstream();
  const origin = await startSizedOrigin();
  const rows: Row[] = [];
  try {
    for (const n of COUNTS) rows.push(await instancesRow(n, redis, upstream.url, origin.port));
  } finally {
    await origin.close();
    await upstream.close();
    await redis.kill();
  }
  const base = rows[0]!;
  console.log('instances |  req/s (×base) | tool p50   p99 | egress p50  p99 | CPU ms/req (×base) | Bastion cores | driver cores | audit rec/s | est. req/s all cores');
  for (const r of rows) {
    console.log(
      `${String(r.instances).padStart(9)} | ${r.rps.toFixed(0).padStart(6)} (${(r.rps / base.rps).toFixed(2)}x) | ${r.doors.tool.p50.toFixed(0).padStart(8)} ${r.doors.tool.p99.toFixed(0).padStart(5)} | ${r.doors.network.p50.toFixed(0).padStart(10)} ${r.doors.network.p99.toFixed(0).padStart(4)} | ${r.cpuMsPerReq.toFixed(2).padStart(10)} (${(r.cpuMsPerReq / base.cpuMsPerReq).toFixed(2)}x) | ${r.bastionCores.toFixed(2).padStart(13)} | ${r.driverCores.toFixed(2).padStart(12)} | ${r.commitsPerS.toFixed(0).padStart(11)} | ${r.estimate.toFixed(0).padStart(8)}`,
    );
  }
  console.log(`tool door req/s: ${rows.map((r) => `${r.instances}: ${r.doors.tool.rps.toFixed(0)}`).join(', ')}; egress req/s: ${rows.map((r) => `${r.instances}: ${r.doors.network.rps.toFixed(0)}`).join(', ')}`);
  console.log(`(est. = ${CORES} cores ÷ CPU per request: what the measured CPU cost allows if Bastion had every core; on this box the driver, PostgreSQL and Redis share them)`);

  console.log(`\npart 2: appendAudit straight to the store, ${BATCHES} batches after 20 warm-up batches (ms per batch)`);
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-append-'));
  const schema = await freshSchema('benchappend');
  try {
    const pg = await openPostgresStore(schema.url);
    const lite = await openSqliteStore(join(dir, 'bastion.db'));
    try {
      console.log('batch | SQLite p50   p99  rec/s | PostgreSQL p50   p99  rec/s | PG ÷ SQLite (p50 ms, rec/s)');
      for (const batch of [1, 100]) {
        const s = await appendRun(lite, batch);
        const p = await appendRun(pg, batch);
        console.log(
          `${String(batch).padStart(5)} | ${s.p50.toFixed(2).padStart(10)} ${s.p99.toFixed(2).padStart(5)} ${s.recordsPerS.toFixed(0).padStart(6)} | ${p.p50.toFixed(2).padStart(14)} ${p.p99.toFixed(2).padStart(5)} ${p.recordsPerS.toFixed(0).padStart(6)} | ${(p.p50 / s.p50).toFixed(2)}x, ${(p.recordsPerS / s.recordsPerS).toFixed(2)}x`,
        );
      }
    } finally {
      await pg.close();
      await lite.close();
    }
  } finally {
    await schema.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
