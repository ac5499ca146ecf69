/**
 * Runs the MCP conformance suite (@modelcontextprotocol/conformance, server scenarios) against a
 * URL and reads the per-scenario verdicts from the `checks.json` files the CLI writes with `-o`.
 *
 * Revisions: since 0.2.0 the CLI runs each scenario at one protocol revision's wire (2025-11-25 and
 * earlier: stateful `initialize`; 2026-07-28: stateless, `_meta` per request). Pass `requirements`
 * to run exactly the scenarios a revision requires (`--requirements REV`: the scored list plus its
 * `not_scored` entries, all at that revision's wire); with `scenarios`, each runs as
 * `--scenario S --spec-version REV --force`, the same wire selection. Without `requirements` the
 * CLI picks each scenario's wire itself and `--suite all` mixes revisions.
 *
 * Verdict: a scenario passes when it produced at least one SUCCESS check and none has status
 * FAILURE or WARNING. Counting WARNING as a failure is what the CLI itself does in
 * `--expected-failures` (baseline) mode; its plain summary line (✓/✗) counts FAILURE only. Pass
 * `allowWarnings: true` for the plain-summary reading. SKIPPED (new in 0.2.0: a check that does
 * not apply at the run's revision, or that the server gave it nothing to exercise) and INFO checks
 * neither pass nor fail a scenario, so a scenario made only of them fails: nothing was shown to
 * work. A scenario that was started but wrote no result (crash, timeout) fails.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAnnouncingServer, type ManagedServer } from './mcp.ts';
import { TEST_KEY, startGateway, tempDir, type TestGateway } from './gateway.ts';

export type ScenarioVerdict = 'pass' | 'fail';
/** Requirement sets shipped with the CLI (`conformance list --requirements REV`). */
export type ConformanceRevision = '2025-11-25' | '2026-07-28';
export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';

export interface ConformanceOptions {
  /** Scenario names to run, one CLI process each. Default: the CLI's `active` suite in one process. */
  scenarios?: string[];
  /** Keep the CLI's result folders under this directory (a fresh `conformance-*` folder per call). */
  outDir?: string;
  /** Wall-clock limit for one CLI process: the whole suite, or one scenario. Default 120 000 / 30 000. */
  timeoutMs?: number;
  /** Suite to run when neither `scenarios` nor `requirements` is given. Default `active` (the CLI's default; excludes pending and draft). */
  suite?: 'active' | 'all';
  /** Run at this revision's wire: the revision's requirement set, or `scenarios` at that revision. */
  requirements?: ConformanceRevision;
  /** Treat WARNING checks as passing. Default false. */
  allowWarnings?: boolean;
}

export interface CheckRecord {
  id: string;
  status: CheckStatus;
  description: string;
  errorMessage?: string;
}

export interface ScenarioReport {
  scenario: string;
  verdict: ScenarioVerdict;
  counts: Record<CheckStatus, number>;
  /** Checks whose status is FAILURE or WARNING. */
  problems: CheckRecord[];
  /** Set when the scenario produced no checks.json (crash, timeout, unknown scenario) or no SUCCESS check. */
  missing?: string;
}

export interface ConformanceRun {
  reports: Map<string, ScenarioReport>;
  /** Combined stdout and stderr of the CLI, ANSI escapes removed, bounded to the last 256 KiB per process. */
  output: string;
  /** Folder holding the CLI's per-scenario result folders; removed unless `outDir` was given. */
  resultDir?: string;
  durationMs: number;
}

const repoRoot = join(import.meta.dirname, '..', '..');
export const conformanceCli = join(repoRoot, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
export const fixture2026Path = join(repoRoot, 'test', 'fixtures', 'conformance-server-2026', 'server.ts');

const defaultSuiteTimeoutMs = 120_000;
const defaultScenarioTimeoutMs = 30_000;
const maxOutputChars = 256 * 1024;
const scenarioNamePattern = /^[a-z0-9][a-z0-9/_.-]*$/;
// `<outDir>/server-<scenario>-<ISO timestamp with ':' and '.' replaced by '-'>/checks.json`
const resultFolderPattern = /^server-(.+)-(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z)$/;
const ansiPattern = /\x1b\[[0-9;]*m/g;

/** Runs the suite and returns pass/fail per scenario. See {@link runConformanceDetailed}. */
export async function runConformance(url: string, opts: ConformanceOptions = {}): Promise<Map<string, ScenarioVerdict>> {
  const run = await runConformanceDetailed(url, opts);
  return new Map([...run.reports].map(([name, r]) => [name, r.verdict]));
}

/** Runs the suite and returns every scenario's check counts and problem checks. */
export async function runConformanceDetailed(url: string, opts: ConformanceOptions = {}): Promise<ConformanceRun> {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new TypeError(`url: expected http(s), got ${parsed.protocol}`);
  for (const s of opts.scenarios ?? []) {
    if (!scenarioNamePattern.test(s)) throw new TypeError(`scenarios: invalid scenario name ${JSON.stringify(s)}`);
  }
  if (opts.requirements !== undefined && opts.requirements !== '2025-11-25' && opts.requirements !== '2026-07-28') {
    throw new TypeError(`requirements: expected 2025-11-25 or 2026-07-28, got ${JSON.stringify(opts.requirements)}`);
  }
  const started = performance.now();
  if (opts.outDir !== undefined) await mkdir(opts.outDir, { recursive: true });
  const resultDir = await mkdtemp(join(opts.outDir ?? tmpdir(), 'conformance-'));
  try {
    const outputs: string[] = [];
    const attempted: string[] = [];
    if (opts.scenarios === undefined) {
      const selection = opts.requirements !== undefined ? ['--requirements', opts.requirements] : ['--suite', opts.suite ?? 'active'];
      const res = await runCli(['server', '--url', url, ...selection, '-o', resultDir], opts.timeoutMs ?? defaultSuiteTimeoutMs);
      outputs.push(res.output);
      for (const m of res.output.matchAll(/^=== Running scenario: (\S+) ===$/gm)) if (m[1] !== undefined) attempted.push(m[1]);
      if (attempted.length === 0) throw new Error(`conformance CLI ran no scenario (exit ${res.exitCode}${res.timedOut ? ', timed out' : ''}):\n${res.output.slice(-4000)}`);
    } else {
      for (const scenario of opts.scenarios) {
        const wire = opts.requirements !== undefined ? ['--spec-version', opts.requirements, '--force'] : [];
        const res = await runCli(['server', '--url', url, '--scenario', scenario, ...wire, '-o', resultDir], opts.timeoutMs ?? defaultScenarioTimeoutMs);
        outputs.push(res.output);
        attempted.push(scenario);
      }
    }
    const found = await readResults(resultDir, opts.allowWarnings ?? false);
    const reports = new Map<string, ScenarioReport>();
    for (const scenario of attempted) {
      reports.set(
        scenario,
        found.get(scenario) ?? {
          scenario,
          verdict: 'fail',
          counts: { SUCCESS: 0, FAILURE: 0, WARNING: 0, INFO: 0, SKIPPED: 0 },
          problems: [],
          missing: 'no checks.json written (CLI crashed, timed out, or the scenario is unknown)',
        },
      );
    }
    return {
      reports,
      output: outputs.join('\n'),
      ...(opts.outDir !== undefined ? { resultDir } : {}),
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (opts.outDir === undefined) await rm(resultDir, { recursive: true, force: true });
  }
}

interface CliResult {
  exitCode: number | null;
  timedOut: boolean;
  output: string;
}

function runCli(args: string[], timeoutMs: number): Promise<CliResult> {
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) return Promise.reject(new RangeError('timeoutMs: expected a positive integer'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [conformanceCli, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    let output = '';
    const append = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.length > 2 * maxOutputChars) output = output.slice(-maxOutputChars);
    };
    child.stdout.on('data', append);
    child.stderr.on('data', append);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    // A test process that exits while the CLI runs must not leave it behind.
    const killOnExit = (): void => {
      child.kill('SIGKILL');
    };
    process.once('exit', killOnExit);
    child.once('error', (err) => {
      clearTimeout(timer);
      process.removeListener('exit', killOnExit);
      reject(err);
    });
    child.once('close', (exitCode) => {
      clearTimeout(timer);
      process.removeListener('exit', killOnExit);
      resolve({ exitCode, timedOut, output: output.slice(-maxOutputChars).replace(ansiPattern, '') });
    });
  });
}

async function readResults(dir: string, allowWarnings: boolean): Promise<Map<string, ScenarioReport>> {
  const latest = new Map<string, { stamp: string; folder: string }>();
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const m = resultFolderPattern.exec(entry.name);
    if (m?.[1] === undefined || m[2] === undefined) continue;
    const prev = latest.get(m[1]);
    if (prev === undefined || prev.stamp < m[2]) latest.set(m[1], { stamp: m[2], folder: entry.name });
  }
  const out = new Map<string, ScenarioReport>();
  for (const [scenario, { folder }] of latest) {
    let checks: unknown;
    try {
      checks = JSON.parse(await readFile(join(dir, folder, 'checks.json'), 'utf8'));
    } catch {
      continue;
    }
    out.set(scenario, summarise(scenario, checks, allowWarnings));
  }
  return out;
}

function summarise(scenario: string, checks: unknown, allowWarnings: boolean): ScenarioReport {
  const counts: Record<CheckStatus, number> = { SUCCESS: 0, FAILURE: 0, WARNING: 0, INFO: 0, SKIPPED: 0 };
  const problems: CheckRecord[] = [];
  if (!Array.isArray(checks)) {
    return { scenario, verdict: 'fail', counts, problems, missing: 'checks.json is not an array' };
  }
  for (const raw of checks as unknown[]) {
    const c = raw as Partial<Record<string, unknown>>;
    // An unknown status is a problem, not a pass.
    const status: CheckStatus =
      c.status === 'SUCCESS' || c.status === 'WARNING' || c.status === 'INFO' || c.status === 'SKIPPED' ? c.status : 'FAILURE';
    counts[status]++;
    if (status === 'FAILURE' || status === 'WARNING') {
      problems.push({
        id: String(c.id),
        status,
        description: String(c.description ?? ''),
        ...(typeof c.errorMessage === 'string' ? { errorMessage: c.errorMessage } : {}),
      });
    }
  }
  const failed = counts.FAILURE > 0 || (!allowWarnings && counts.WARNING > 0) || counts.SUCCESS === 0;
  return {
    scenario,
    verdict: failed ? 'fail' : 'pass',
    counts,
    problems,
    ...(counts.SUCCESS === 0 && problems.length === 0 ? { missing: `no SUCCESS check (${checks.length} checks, all INFO or SKIPPED)` } : {}),
  };
}

/** One line per scenario, for assertion messages. */
export function formatReports(reports: Map<string, ScenarioReport>): string {
  return [...reports.values()]
    .map((r) => {
      const skipped = r.counts.SKIPPED > 0 ? `, ${r.counts.SKIPPED} skipped` : '';
      const head = `${r.verdict === 'pass' ? 'PASS' : 'FAIL'} ${r.scenario} (${r.counts.SUCCESS} ok, ${r.counts.FAILURE} failed, ${r.counts.WARNING} warnings${skipped})`;
      const why = r.missing !== undefined ? [`    ${r.missing}`] : r.problems.map((p) => `    ${p.status} ${p.id}: ${p.errorMessage ?? p.description}`);
      return [head, ...why].join('\n');
    })
    .join('\n');
}

/** The 2026-07-28 fixture, as {@link startAnnouncingServer} manages it. */
export type Fixture2026 = ManagedServer;

/**
 * Starts test/fixtures/conformance-server-2026/server.ts (`--http 0`), waits for the
 * `{"listening": url}` line it prints once bound and for it to answer; it dies with the test process.
 */
export function startFixture2026Http(): Promise<Fixture2026> {
  return startAnnouncingServer(fixture2026Path);
}

/**
 * A gateway fronting `upstreamUrl` for the conformance suite: one agent (key {@link TEST_KEY})
 * with every tool, resource and prompt; the loopback proxy's `host:port` in the Host and Origin
 * allowlists (the CLI cannot send credentials, so it talks to test/helpers/auth-proxy.ts, which
 * forwards Host and Origin as sent, as any reverse proxy would).
 */
export function conformanceGateway(upstreamUrl: URL, prefix: boolean, proxyPort: number): Promise<TestGateway> {
  return startGateway(
    tempDir(),
    `version: 1
server:
  listen: 127.0.0.1:0
  allowedHosts: ["localhost:${proxyPort}", "127.0.0.1:${proxyPort}"]
  allowedOrigins: ["http://localhost:${proxyPort}", "http://127.0.0.1:${proxyPort}"]
store:
  sqlite: ./bastion.db
agents:
  conformance:
    keys: [env:T_KEY]
    tools: ["*"]
    resources: ["*"]
    prompts: ["*"]
upstreams:
  up:
    url: ${upstreamUrl.href}
    prefix: ${prefix}
`,
    { T_KEY: TEST_KEY },
  );
}
