/**
 * `npm run test:scale`: scale and fault test with real processes (issue 14).
 *
 * Three `bastion serve` processes share one store (PostgreSQL in a fresh schema
 * by default, through a TCP fault proxy; `SCALE_STORE=sqlite` for one SQLite
 * file) and one private `redis-server` on a free port (never the machine's
 * 6379; `SCALE_REDIS=0` for none). Clients spread over the three send mixed
 * traffic: MCP tool calls (allowed and denied), model chat completions (to a
 * mock OpenAI-compatible provider) and egress proxy requests (to a loopback
 * origin, allowed and denied), each request findable in the audit chain
 * (test/scale/load.ts). Phases, in order, under continuous load:
 *
 * 1. `steady` (SCALE_SECONDS, default 90): RSS of each instance sampled every
 *    2 s; after the first 20 % (warm-up) the median of the last third must stay
 *    ≤ 1.5× the median of the first third.
 * 2. `redis-outage` (SCALE_FAULT_SECONDS, default 8): the private redis-server
 *    is killed, then restarted on the same port. `/readyz` must say not ready
 *    during it and ready again after; every door must succeed again after it.
 * 3. `pg-outage` (PostgreSQL only, same length): the fault proxy resets every
 *    connection and refuses new ones, then accepts again. Same checks.
 * 4. `kill`: `kill -9` of the third instance; load goes on against the others.
 *
 * Then the survivors stop gracefully (exit 0), `bastion audit verify` must
 * exit 0, no tool call the upstream executed may lack its record (except one
 * in flight on the killed instance, and calls already past the audit write gate
 * when the store died, told ERR_AUDIT_WRITE: at most one per tool worker), no `audit.recovery` record may name an
 * instance that was running, and every request is reconciled with the chain
 * (test/scale/reconcile.ts): an answered request has exactly one record (none
 * lost, none duplicated, none unknown). Records of batched doors (model,
 * network) the killed instance had not committed are the documented crash
 * window (docs/audit.md) and are reported, not failed (more than that
 * document's bound fails); batched records lost in
 * the store outage ([cut − SCALE_OUTAGE_LEAD_MS (5 s), restore + 5 s]) are reported,
 * not failed (more than the documented bound per instance fails), unless
 * SCALE_STRICT_OUTAGE=1; a success answered during the outage without a record fails.
 *
 * Prints a summary table and exits 1 on any violation, 2 on a harness failure.
 * Env: SCALE_SECONDS, SCALE_FAULT_SECONDS, SCALE_STORE (postgres|sqlite),
 * SCALE_REDIS (1|0), SCALE_WORKERS (closed-loop workers per door per instance,
 * default 2), SCALE_KEEP_TMP=1 (keep the temp dir: instance logs, ledger, records),
 * SCALE_STRICT_OUTAGE=1, SCALE_KNOWN (violation kinds, comma-separated, reported but not failed:
 * reconcile, rss, readyz, recovery, outage-unrecorded-success, outage-bound, crash-bound,
 * recovery-markers, executed-unrecorded, stop, verify, internal-error; each violation prints its kind).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMockProvider } from '../examples/model-door/provider.ts';
import type { AuditRecord } from '../src/audit/types.ts';
import { openStore, storeFromFlag } from '../src/store/open.ts';
import { freePort, PrivateRedis, randomPrefix } from '../test/cluster/helpers.ts';
import { freshSchema } from '../test/helpers/postgres.ts';
import { BastionInstance, CLI, FaultProxy, MASTER_KEY, ROOT, writeScaleConfig, type StoreSpec } from '../test/scale/cluster.ts';
import { Ledger, runWorkers, startSizedOrigin, type Door } from '../test/scale/load.ts';
import { keyOf, reconcile, type Window } from '../test/scale/reconcile.ts';
import { startScaleUpstream } from '../test/scale/upstream.ts';

const SECONDS = Number(process.env.SCALE_SECONDS ?? 90);
const FAULT_SECONDS = Number(process.env.SCALE_FAULT_SECONDS ?? 8);
const WORKERS = Number(process.env.SCALE_WORKERS ?? 2);
const INSTANCES = 3;
const USE_REDIS = process.env.SCALE_REDIS !== '0';
/** PostgreSQL once the config schema has `store.postgres` (it has since issue 14), unless SCALE_STORE says otherwise. */
const STORE: 'postgres' | 'sqlite' = process.env.SCALE_STORE === 'sqlite' ? 'sqlite' : process.env.SCALE_STORE === 'postgres' || hasPostgresStore() ? 'postgres' : 'sqlite';
const STRICT_OUTAGE = process.env.SCALE_STRICT_OUTAGE === '1';
/** Violation kinds reported but not failed (SCALE_KNOWN=kind,kind): for known Bastion issues while they are fixed. */
const KNOWN = new Set((process.env.SCALE_KNOWN ?? '').split(',').map((k) => k.trim()).filter(Boolean));
/** After a store outage ends, batched records queued before it may still fail for this long (ms). */
const OUTAGE_GRACE_MS = 5_000;
/**
 * Batched records answered this long before a store outage began may still be queued when it begins (ms;
 * SCALE_OUTAGE_LEAD_MS). Measured under load: up to ~3 s of commit lag with 3 instances on PostgreSQL.
 * How many such records an outage may cost is bounded separately, like a crash (DOCUMENTED_CRASH_BOUND).
 */
const OUTAGE_LEAD_MS = Number(process.env.SCALE_OUTAGE_LEAD_MS ?? 5_000);
/** docs/audit.md "Crash window": a crash loses at most the backlog bound (maxPendingRecords, 512) plus one record per waiting request. */
const DOCUMENTED_CRASH_BOUND = 512;

function hasPostgresStore(): boolean {
  return /\bpostgres: PostgresRef\b/.test(readFileSync(join(ROOT, 'src/config/schema.ts'), 'utf8'));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => console.log(`[${((performance.now() - T0) / 1000).toFixed(1).padStart(6)} s] ${line}`);
const T0 = performance.now();

function median(xs: readonly number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Cleanup steps, run in reverse on exit (also after a failure). */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // best effort
    }
  }
}

interface Fault {
  readonly name: string;
  from: number;
  to: number;
  /** `/readyz` answers seen during the outage and after recovery, by status. */
  readonly readyDuring: Record<string, number>;
  readyAfterMs: number;
  /** Answered refusals during the outage (+ grace), by door and reason. */
  readonly codes: Record<string, number>;
  /** Doors (per live instance) with no success after recovery. */
  notRecovered: string[];
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-scale-'));
  if (process.env.SCALE_KEEP_TMP !== '1') cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  log(`scale test: ${INSTANCES} instances, store ${STORE}, redis ${USE_REDIS ? 'private' : 'none'}, steady ${SECONDS} s, outages ${FAULT_SECONDS} s, ${WORKERS} workers per door per instance; dir ${dir}`);

  // Backing services.
  let store: StoreSpec;
  let direct: string;
  let pgProxy: FaultProxy | undefined;
  if (STORE === 'postgres') {
    const schema = await freshSchema('scale');
    cleanups.push(() => schema.drop());
    pgProxy = await FaultProxy.start({ host: '127.0.0.1', port: 5432 });
    cleanups.push(() => pgProxy?.close());
    direct = schema.url;
    store = { kind: 'postgres', url: schema.url.replace('@127.0.0.1:5432/', `@127.0.0.1:${pgProxy.port}/`) };
  } else {
    direct = join(dir, 'bastion.db');
    store = { kind: 'sqlite', path: direct };
  }
  let redis: PrivateRedis | undefined;
  if (USE_REDIS) {
    redis = new PrivateRedis(await freePort());
    await redis.start();
    cleanups.push(() => redis?.kill());
  }
  const upstream = await startScaleUpstream();
  cleanups.push(() => upstream.close());
  const provider = await startMockProvider();
  cleanups.push(() => provider.close());
  // The mock provider keeps every request it saw; the scale run does not need them.
  setInterval(() => void provider.requests.splice(0), 5_000).unref();
  const origin = await startSizedOrigin();
  cleanups.push(() => origin.close());

  const { file, env } = writeScaleConfig({
    dir,
    store,
    ...(redis ? { redis: { url: redis.url, keyPrefix: randomPrefix() } } : {}),
    upstreamUrl: upstream.url,
    providerUrl: provider.url,
    originPort: origin.port,
  });

  // The first instance creates the schema; the others join it.
  const logOf = (name: string): { logFile: string } => ({ logFile: join(dir, `${name}.log`) });
  const instances: BastionInstance[] = [await BastionInstance.start('bastion-1', file, env, logOf('bastion-1'))];
  instances.push(...(await Promise.all(Array.from({ length: INSTANCES - 1 }, (_, i) => BastionInstance.start(`bastion-${i + 2}`, file, env, logOf(`bastion-${i + 2}`))))));
  cleanups.push(() => Promise.all(instances.map((i) => i.crash())));
  log(`serving: ${instances.map((i) => `${i.name} pid ${i.pid} ${i.url.host} proxy ${i.proxy.port}`).join(', ')}`);

  // Load.
  const ledger = new Ledger();
  const stop = new AbortController();
  const load = Promise.all(instances.map((instance) => runWorkers({ ledger, instance, originPort: origin.port, perDoor: WORKERS, denyShare: 0.2, signal: stop.signal })));

  // RSS and the audit backlog (bastion_audit_queue_depth) every 2 s.
  const rss = new Map<string, { phase: string; kib: number }[]>(instances.map((i) => [i.name, []]));
  const backlog = new Map<string, number[]>(instances.map((i) => [i.name, []]));
  const sampler = setInterval(() => {
    for (const i of instances) {
      if (!i.alive) continue;
      rss.get(i.name)!.push({ phase: ledger.phase, kib: i.rssKiB() });
      void i.metrics().then((m) => {
        const q = m.bastion_audit_queue_depth;
        if (q !== undefined) backlog.get(i.name)!.push(q);
      });
    }
  }, 2_000);

  ledger.phase = 'steady';
  log(`phase steady: ${SECONDS} s`);
  await sleep(SECONDS * 1000);

  const faults: Fault[] = [];
  const live = (): BastionInstance[] => instances.filter((i) => i.alive);
  /** Runs one outage: `down()`, readyz polled for FAULT_SECONDS, `up()`, then waits for readiness and checks each door recovers. */
  const outage = async (name: string, down: () => Promise<void> | void, up: () => Promise<void> | void): Promise<void> => {
    const f: Fault = { name, from: 0, to: 0, readyDuring: {}, readyAfterMs: NaN, codes: {}, notRecovered: [] };
    faults.push(f);
    ledger.phase = `${name}-outage`;
    log(`phase ${ledger.phase}: ${FAULT_SECONDS} s`);
    f.from = Date.now();
    await down();
    const end = Date.now() + FAULT_SECONDS * 1000;
    while (Date.now() < end) {
      // Give the instances a moment to notice before the first look.
      await sleep(500);
      if (Date.now() - f.from < 1_500) continue;
      for (const r of await Promise.all(live().map((i) => i.readyz()))) f.readyDuring[r.status] = (f.readyDuring[r.status] ?? 0) + 1;
    }
    await up();
    f.to = Date.now();
    ledger.phase = `${name}-recovery`;
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const rs = await Promise.all(live().map((i) => i.readyz()));
      if (rs.every((r) => r.status === 200)) break;
      await sleep(200);
    }
    f.readyAfterMs = Date.now() - f.to;
    ledger.phase = `${name}-after`;
    const afterFrom = Date.now();
    // Every door of every live instance must succeed again (bounded: 30 s; at least 5 s of load after recovery either way).
    const missing = (): string[] =>
      live().flatMap((i) =>
        (['tool', 'model', 'network'] as Door[]).filter((door) => !ledger.entries.some((s) => s.instance === i.name && s.door === door && s.result === 'ok' && s.sentAt >= afterFrom)).map((door) => `${i.name} ${door}`),
      );
    while (Date.now() - afterFrom < 30_000 && missing().length > 0) await sleep(250);
    f.notRecovered.push(...missing());
    await sleep(Math.max(0, 5_000 - (Date.now() - afterFrom)));
    for (const s of ledger.entries) {
      if (s.result === 'refused' && s.intent === 'allow' && s.ackAt >= f.from && s.ackAt <= f.to + OUTAGE_GRACE_MS) f.codes[`${s.door} ${s.reason}`] = (f.codes[`${s.door} ${s.reason}`] ?? 0) + 1;
      if (s.result === 'none' && s.sentAt >= f.from && s.sentAt <= f.to + OUTAGE_GRACE_MS) f.codes[`${s.door} (no answer: ${s.reason})`] = (f.codes[`${s.door} (no answer: ${s.reason})`] ?? 0) + 1;
    }
  };
  if (redis) {
    const r = redis;
    await outage('redis', () => r.kill(), () => r.start());
  }
  if (pgProxy) {
    const p = pgProxy;
    await outage('pg', () => p.cut(), () => p.restore());
  }

  ledger.phase = 'kill';
  const victim = instances[INSTANCES - 1]!;
  await victim.crash();
  // Taken once the process is gone: nothing it answered can come later.
  const killedAt = Date.now();
  log(`phase kill: kill -9 ${victim.name} (pid ${victim.pid}); load goes on against the others for 8 s`);
  await sleep(8_000);

  ledger.phase = 'stopping';
  stop.abort();
  await load;
  clearInterval(sampler);
  // Each survivor's own count of audit records appended and writes failed, before it stops.
  const metrics = new Map(await Promise.all(live().map(async (i) => [i.name, await i.metrics()] as const)));
  const stopCodes = await Promise.all(live().map(async (i) => [i.name, await i.stop()] as const));
  log(`stopped: ${stopCodes.map(([n, c]) => `${n} exit ${c}`).join(', ')}`);

  // The chain, as the CLI verifies it (through the direct URL: the proxy is not part of this).
  const verify = spawnSync(process.execPath, [CLI, 'audit', 'verify', '--config', file], { env: { ...process.env, ...env, BASTION_MASTER_KEY: MASTER_KEY, ...(STORE === 'postgres' ? { SCALE_PG_URL: direct } : {}) }, encoding: 'utf8', timeout: 120_000 });
  log(`bastion audit verify: exit ${verify.status}: ${(verify.stdout + verify.stderr).trim().split('\n').slice(-3).join(' | ')}`);

  // Every record, for reconciliation.
  const reader = await openStore(storeFromFlag(direct));
  const records: AuditRecord[] = [];
  for (let from = 1; ; ) {
    const page = await reader.readAudit(from, 5_000);
    if (page.length === 0) break;
    records.push(...page);
    from = page[page.length - 1]!.seq + 1;
  }
  await reader.close();

  const storeOutages: Window[] = faults.filter((f) => f.name === 'pg').map((f) => ({ name: f.name, from: f.from - OUTAGE_LEAD_MS, to: f.to + OUTAGE_GRACE_MS }));
  const rec = reconcile(ledger.entries, records, { originPort: origin.port, killed: { instance: victim.name, at: killedAt }, storeOutages, acceptOutageLoss: !STRICT_OUTAGE });
  const recordKeys = new Set(records.map((r) => keyOf(r, origin.port)));

  if (process.env.SCALE_KEEP_TMP === '1') {
    writeFileSync(join(dir, 'ledger.jsonl'), ledger.entries.map((e) => JSON.stringify(e)).join('\n'));
    writeFileSync(join(dir, 'records.jsonl'), records.map((r) => JSON.stringify(r)).join('\n'));
    log(`kept: ${dir} (instance logs, ledger.jsonl, records.jsonl)`);
  }

  // ---------------------------------------------------------------- the summary
  const violations: string[] = [];
  const known: string[] = [];
  /** Records a violation; one whose kind SCALE_KNOWN lists is printed as a known issue and does not fail the run. */
  const violate = (kind: string, text: string): void => void (KNOWN.has(kind) ? known : violations).push(`[${kind}] ${text}`);
  console.log('\n== requests (answered = ok + refused; lost: violation / crash window / outage window)');
  console.log('door     |   sent |     ok | refused | no answer | audited | lost v/c/o | dup | mismatch');
  for (const door of ['tool', 'model', 'network'] as const) {
    const d = rec.doors[door];
    console.log(
      `${door.padEnd(8)} | ${String(d.sent).padStart(6)} | ${String(d.ok).padStart(6)} | ${String(d.refused).padStart(7)} | ${String(d.unanswered).padStart(9)} | ${String(d.audited).padStart(7)} | ${`${d.lost.violation}/${d.lost.crash}/${d.lost.outage}`.padStart(10)} | ${String(d.duplicates).padStart(3)} | ${String(d.mismatched).padStart(8)}`,
    );
  }
  for (const door of ['tool', 'model', 'network'] as const) {
    console.log(`  ${door} refusals: ${Object.entries(rec.doors[door].reasons).map(([r, n]) => `${r} ${n}`).join(', ') || 'none'}`);
  }
  console.log(`  audit records: ${records.length} in the chain; unknown to the ledger: ${rec.unknown}`);
  const steadyMs = SECONDS * 1000;
  const steadyOk = ledger.entries.filter((s) => s.phase === 'steady' && s.result !== 'none').length;
  console.log(`  steady throughput: ${(steadyOk / (steadyMs / 1000)).toFixed(0)} answered requests/s over ${INSTANCES} instances`);
  for (const v of rec.violations) violate('reconcile', v);
  console.log('  steady-phase latency (ms, answered requests):');
  for (const door of ['tool', 'model', 'network'] as const) {
    const xs = ledger.entries.filter((s) => s.door === door && s.phase === 'steady' && s.result !== 'none').map((s) => s.ackAt - s.sentAt).sort((a, b) => a - b);
    console.log(`    ${door.padEnd(8)} n ${String(xs.length).padStart(6)}  p50 ${String(xs[xs.length >> 1] ?? NaN).padStart(5)}  p99 ${String(xs[Math.floor(xs.length * 0.99)] ?? NaN).padStart(5)}  max ${String(xs[xs.length - 1] ?? NaN).padStart(5)}`);
  }
  console.log(`  audit backlog (bastion_audit_queue_depth, sampled every 2 s): ${instances.map((i) => `${i.name} max ${Math.max(0, ...backlog.get(i.name)!)} median ${median(backlog.get(i.name)!)}`).join('; ')}`);

  console.log('\n== the instances\' own audit metrics at the end (survivors)');
  for (const [n, m] of metrics) {
    const pick = Object.entries(m).filter(([k]) => /records_total|failures_total|queue_depth/.test(k));
    console.log(`  ${n}: ${pick.map(([k, v]) => `${k.replace('bastion_audit_', '')} ${v}`).join(', ')}`);
  }

  console.log('\n== memory (VmRSS, MiB; steady phase after 20 % warm-up: median of first third → last third)');
  for (const i of instances) {
    const samples = rss.get(i.name)!.filter((s) => s.phase === 'steady').map((s) => s.kib);
    const warm = samples.slice(Math.ceil(samples.length * 0.2));
    const third = Math.max(1, Math.floor(warm.length / 3));
    const first = median(warm.slice(0, third)) / 1024;
    const last = median(warm.slice(-third)) / 1024;
    const all = rss.get(i.name)!.map((s) => s.kib / 1024);
    const ratio = last / first;
    console.log(`  ${i.name}: ${first.toFixed(1)} → ${last.toFixed(1)} (×${ratio.toFixed(2)}); max over the run ${Math.max(...all).toFixed(1)}; ${samples.length} steady samples`);
    if (warm.length < 6) violate('rss', `${i.name}: too few RSS samples (${warm.length}) to judge memory; raise SCALE_SECONDS`);
    else if (!(ratio <= 1.5)) violate('rss', `${i.name}: RSS grew ×${ratio.toFixed(2)} in the steady phase (${first.toFixed(1)} → ${last.toFixed(1)} MiB)`);
  }

  console.log('\n== faults');
  for (const f of faults) {
    console.log(`  ${f.name} outage ${((f.to - f.from) / 1000).toFixed(1)} s: /readyz during ${JSON.stringify(f.readyDuring)}; ready again ${f.readyAfterMs} ms after recovery`);
    console.log(`    refusals and failures of allowed requests: ${Object.entries(f.codes).map(([c, n]) => `${c} ×${n}`).join(', ') || 'none'}`);
    if (!Object.keys(f.readyDuring).some((s) => s !== '200')) violate('readyz', `${f.name} outage: /readyz never said not ready (${JSON.stringify(f.readyDuring)})`);
    if (!(f.readyAfterMs < 30_000)) violate('readyz', `${f.name} outage: /readyz not ready 30 s after recovery`);
    if (f.notRecovered.length > 0) violate('recovery', `${f.name} outage: no success within 30 s after recovery on ${f.notRecovered.join(', ')}`);
  }
  for (const f of faults.filter((x) => x.name === 'pg')) {
    // Fail closed: once the store is gone (after 1 s for requests already past their store reads), no door may answer success without a record.
    const unrecorded = ledger.entries.filter((s) => s.result === 'ok' && s.sentAt > f.from + 1_000 && s.ackAt < f.to && s.key !== null && !recordKeys.has(s.key));
    const answered = ledger.entries.filter((s) => s.result === 'ok' && s.sentAt > f.from + 1_000 && s.ackAt < f.to).length;
    console.log(`    successes answered during the outage (sent ≥ 1 s after the cut): ${answered}, of them without a record: ${unrecorded.length}`);
    if (unrecorded.length > 0) violate('outage-unrecorded-success', `pg outage: ${unrecorded.length} success(es) answered during the outage have no audit record (e.g. ${unrecorded.slice(0, 3).map((s) => `${s.key} on ${s.instance}`).join(', ')})`);
    // Successes answered before the cut whose records were still queued: what the outage cost, per instance.
    const before = ledger.entries.filter((s) => s.result === 'ok' && s.key !== null && s.ackAt < f.from && s.ackAt >= f.from - OUTAGE_LEAD_MS && !recordKeys.has(s.key));
    for (const i of instances) {
      const mine = before.filter((s) => s.instance === i.name);
      if (mine.length === 0) continue;
      const ago = mine.map((s) => f.from - s.ackAt);
      console.log(`    ${i.name}: ${mine.length} successes answered before the cut lost their records (answered up to ${Math.max(...ago)} ms before it)`);
      if (mine.length > DOCUMENTED_CRASH_BOUND + WORKERS * 2) violate('outage-bound', `pg outage: ${i.name} lost ${mine.length} records of successes answered before the cut, more than the documented window (${DOCUMENTED_CRASH_BOUND} + ${WORKERS * 2})`);
    }
  }
  const crashLost = rec.doors.model.lost.crash + rec.doors.network.lost.crash;
  const crashBound = DOCUMENTED_CRASH_BOUND + WORKERS * 2;
  const lastOutageEnd = Math.max(0, ...storeOutages.map((w) => w.to));
  const lostTimes = ledger.entries.filter((s) => s.instance === victim.name && s.key !== null && s.result === 'ok' && s.ackAt <= killedAt && s.ackAt > lastOutageEnd && !recordKeys.has(s.key)).map((s) => killedAt - s.ackAt);
  if (lostTimes.length > 0) console.log(`    the killed instance's lost records were answered up to ${Math.max(...lostTimes)} ms before the kill (median ${median(lostTimes)} ms)`);
  if (crashLost > crashBound) violate('crash-bound', `kill -9: ${crashLost} batched records lost, more than the documented crash window (docs/audit.md: backlog bound ${DOCUMENTED_CRASH_BOUND} + ${WORKERS * 2} waiting requests)`);
  // Crash recovery: an instance that starts while others run must not record them as crashed.
  const falseRecoveries = records.filter((r) => r.method === 'audit.recovery' && Date.parse(r.time) < killedAt && Array.isArray(r.detail?.openInstances) && (r.detail.openInstances as unknown[]).length > 0);
  if (falseRecoveries.length > 0) {
    console.log(`  audit.recovery records written before any crash: ${falseRecoveries.length} (seq ${falseRecoveries.map((r) => r.seq).join(', ')}): they name running instances as unclean shutdowns`);
    violate('recovery-markers', `crash recovery: ${falseRecoveries.length} audit.recovery record(s) at start-up name instances that were running, not crashed (seq ${falseRecoveries.map((r) => r.seq).join(', ')}; detail ${JSON.stringify(falseRecoveries[0]!.detail).slice(0, 160)})`);
  }
  // The tool door records after the upstream answered: a call the upstream executed must have its record,
  // even when the agent was told ERR_AUDIT_WRITE (an action that cannot be recorded must not happen).
  // A call in flight on the killed instance (never answered) may die with it: reported, not failed.
  const inFlightAtKill = (s: (typeof ledger.entries)[number]): boolean => s.instance === victim.name && s.result === 'none' && s.sentAt <= killedAt;
  const executedUnrecorded = ledger.entries.filter((s) => s.door === 'tool' && upstream.executed.has(s.id) && !recordKeys.has(s.key ?? '') && !inFlightAtKill(s));
  const diedInFlight = ledger.entries.filter((s) => s.door === 'tool' && upstream.executed.has(s.id) && !recordKeys.has(s.key ?? '') && inFlightAtKill(s)).length;
  const byReason: Record<string, number> = {};
  for (const s of executedUnrecorded) byReason[`${s.result}${s.reason ? ` ${s.reason}` : ''} (${s.ackPhase})`] = (byReason[`${s.result}${s.reason ? ` ${s.reason}` : ''} (${s.ackPhase})`] ?? 0) + 1;
  console.log(`  tool calls the upstream executed: ${upstream.executed.size}; in flight on the killed instance, executed, unrecorded: ${diedInFlight}; otherwise executed without an audit record: ${executedUnrecorded.length}${executedUnrecorded.length > 0 ? ` (${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')})` : ''}`);
  // The residual window of the audit write gate (docs/audit.md, "Store outage"): a call already past the
  // gate when the store dies runs, and its agent is told ERR_AUDIT_WRITE. At most one per tool worker can
  // be past the gate at the cut; any other executed-unrecorded call (or one answered ok) is a violation.
  const inGateWindow = executedUnrecorded.filter((s) => s.ackPhase === 'pg-outage' && s.result === 'refused' && s.reason === 'ERR_AUDIT_WRITE');
  const gateBound = WORKERS * INSTANCES;
  if (inGateWindow.length > 0) console.log(`    of them in the audit gate's residual window (in flight when the store died, told ERR_AUDIT_WRITE): ${inGateWindow.length} (bound ${gateBound})`);
  const inDoubt = rec.doors.tool.inDoubt + rec.doors.model.inDoubt + rec.doors.network.inDoubt;
  if (inDoubt > 0) console.log(`    commits in doubt (the store died mid-commit: recorded allow/ok, told ERR_AUDIT_WRITE): ${inDoubt} (bound ${gateBound})`);
  if (inDoubt > gateBound) violate('in-doubt', `${inDoubt} records committed while their requests were told ERR_AUDIT_WRITE; at most ${gateBound} can be mid-commit when the store dies`);
  const beyondWindow = executedUnrecorded.length - (inGateWindow.length <= gateBound ? inGateWindow.length : 0);
  if (beyondWindow > 0) violate('executed-unrecorded', `tool door: ${executedUnrecorded.length} call(s) executed by the upstream have no audit record (answered: ${Object.entries(byReason).map(([k, n]) => `${k} ×${n}`).join(', ')}); the gate's residual window allows ${gateBound}`);
  const killedTool = ledger.entries.filter((s) => s.instance === victim.name && s.door === 'tool' && s.result === 'ok').length;
  console.log(`  kill -9 ${victim.name}: ${killedTool} tool calls it had answered ok (all must be audited); batched records lost in its crash window: model ${rec.doors.model.lost.crash}, network ${rec.doors.network.lost.crash}`);
  if (pgProxy) console.log(`  pg proxy refused ${pgProxy.refused} connections while cut`);

  for (const [n, c] of stopCodes) if (c !== 0) violate('stop', `${n}: graceful stop exited ${c}, not 0`);
  if (verify.status !== 0) violate('verify', `bastion audit verify exited ${verify.status}: ${(verify.stdout + verify.stderr).trim().slice(-400)}`);
  for (const i of instances) {
    const fatal = i.lines.filter((l) => /internal error|Unhandled|uncaught/i.test(l));
    if (fatal.length > 0) violate('internal-error', `${i.name} printed ${fatal.length} internal error line(s), e.g. ${fatal[0]}`);
  }

  console.log(`\n== ${violations.length === 0 ? 'PASS' : `FAIL: ${violations.length} violation(s)`}`);
  for (const v of violations) console.log(`  - ${v}`);
  if (known.length > 0) console.log(`known issues (SCALE_KNOWN), not failed:\n${known.map((v) => `  - ${v}`).join('\n')}`);
  if (violations.length > 0 || process.env.SCALE_VERBOSE === '1') {
    for (const i of instances) console.log(`\n-- last lines of ${i.name}:\n${i.lines.slice(-15).join('\n')}`);
  }
  return violations.length === 0 ? 0 : 1;
}

let code = 2;
try {
  code = await main();
} catch (err) {
  console.error(`test:scale: harness failure: ${(err as Error).stack ?? String(err)}`);
} finally {
  await cleanup();
}
if (!existsSync(ROOT)) code = 2;
process.exit(code);
