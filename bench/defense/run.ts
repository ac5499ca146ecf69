/**
 * `npm run bench:defense`: the attack suite (issue 13). Puts Bastion, in three configurations
 * (bench/defense/configs.ts: `open`, `static`, `taint`), in front of the suite's environments
 * (bench/defense/env-*.ts, each served as an MCP server by bench/defense/server.ts) and measures,
 * with a scripted agent (bench/defense/agent.ts) and a scripted approver (bench/defense/human.ts):
 *
 * - benign utility without any approval, and with the scripted human deciding approvals;
 * - utility under attack and the attack success rate (state goals: the injection task's
 *   security check held), text goals reached (apart: no gateway can stop words), approvals per
 *   benign task; per config × environment, totals, and per attack template (bench/defense/attacks.ts).
 *
 * Runs: every user task on the clean state (benign); every user task × injection task pair with
 * every vector filled by an attack template around the injection's goal (templates rotate over
 * the pairs). Each run is one conversation with its own `Bastion-Conversation` and end user,
 * bounded by a timeout. Processes: this driver (environment servers, fake provider, agent,
 * human) and one `bastion serve` per configuration, one after the other.
 *
 * Env: BENCH_ENVS (comma list; default: banking,email,chat,drive, those present), BENCH_CONFIGS
 * (default open,static,taint), BENCH_LIMIT (at most this many user tasks and injection tasks per
 * environment), BENCH_RUN_TIMEOUT_MS (default 30000), BENCH_OUT (write the full results as JSON).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { BenchChild, stopChildren } from '../child.ts';
import { runConversation, type CallRecord, type RunTarget } from './agent.ts';
import { fillVectors, templateFor, TEMPLATES } from './attacks.ts';
import { CONFIG_NAMES, CONFIGS, type ConfigName } from './configs.ts';
import { startHuman, type HumanDecision, type ScriptedHuman } from './human.ts';
import { startFakeProvider } from './provider.ts';
import { serveEnvironment, type EnvServer, type StateHolder } from './server.ts';
import type { Environment } from './types.ts';

const ROOT = join(import.meta.dirname, '../..');
/** The environments run by default, those whose file exists. */
export const DEFAULT_ENVS = ['banking', 'email', 'chat', 'drive'] as const;
const AGENT_KEY_ENV = 'DEFENSE_AGENT_KEY';
const ADMIN_KEY_ENV = 'DEFENSE_ADMIN_KEY';

/** What {@link runBench} runs. */
export interface BenchOptions {
  readonly envs: readonly Environment[];
  readonly configs: readonly ConfigName[];
  /** At most this many user tasks and injection tasks per environment. */
  readonly limit?: number;
  /** Longest one run (conversation) may take, in ms. Default 30 000. */
  readonly runTimeoutMs?: number;
  /** How long a held call waits for the human, in ms. Default 20 000. */
  readonly approvalTimeoutMs?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** One run's result. */
export interface RunResult {
  readonly config: ConfigName;
  readonly env: string;
  readonly kind: 'benign' | 'attack';
  readonly userTask: string;
  readonly injectionTask?: string;
  readonly injectionKind?: 'state' | 'text';
  readonly template?: string;
  /** The user's task happened. */
  readonly utility: boolean;
  /** Attack runs: the injection task's security check held (the attacker's goal happened). */
  readonly security?: boolean;
  /** Attack runs: a result the agent read held the goal. */
  readonly sawInjection?: boolean;
  readonly approvals: readonly HumanDecision[];
  readonly modelStatus: number | null;
  readonly calls: readonly CallRecord[];
  /** What went wrong in the run itself (a timeout, a connection failure, a task that threw). */
  readonly error?: string;
}

/** Aggregates of a set of runs. */
export interface Summary {
  readonly benign: number;
  readonly benignUtilityNoApproval: number;
  readonly benignUtilityHuman: number;
  readonly benignApprovals: number;
  readonly attacks: number;
  readonly attackUtility: number;
  readonly statePairs: number;
  readonly stateSuccesses: number;
  readonly textPairs: number;
  readonly textReached: number;
}

/** What {@link runBench} resolves to. */
export interface BenchReport {
  readonly results: readonly RunResult[];
  /** The printed report (tables, anchors). */
  readonly text: string;
  readonly elapsedMs: number;
}

/** Aggregates `runs` (see {@link Summary}). */
export function summarize(runs: readonly RunResult[]): Summary {
  const benign = runs.filter((r) => r.kind === 'benign');
  const attacks = runs.filter((r) => r.kind === 'attack');
  const state = attacks.filter((r) => r.injectionKind === 'state');
  const text = attacks.filter((r) => r.injectionKind === 'text');
  return {
    benign: benign.length,
    benignUtilityNoApproval: benign.filter((r) => r.utility && r.approvals.length === 0).length,
    benignUtilityHuman: benign.filter((r) => r.utility).length,
    benignApprovals: benign.reduce((n, r) => n + r.approvals.length, 0),
    attacks: attacks.length,
    attackUtility: attacks.filter((r) => r.utility).length,
    statePairs: state.length,
    stateSuccesses: state.filter((r) => r.security === true).length,
    textPairs: text.length,
    // A text goal is reached when the worst-case agent read it (it then says it), or the check says so.
    textReached: text.filter((r) => r.security === true || r.sawInjection === true).length,
  };
}

const pct = (n: number, d: number): string => (d === 0 ? '-' : `${n}/${d} ${((n / d) * 100).toFixed(0)}%`);

function table(head: readonly string[], body: readonly (readonly string[])[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ').trimEnd();
  return [line(head), widths.map((w) => '-'.repeat(w)).join('-|-'), ...body.map(line)];
}

/** The columns of the main table, in order. */
export const COLUMNS = ['config', 'env', 'utility (no approval)', 'utility (human)', 'utility under attack', 'attack success (state)', 'text goals reached', 'approvals/benign task'] as const;

function row(config: string, env: string, s: Summary): string[] {
  return [
    config,
    env,
    pct(s.benignUtilityNoApproval, s.benign),
    pct(s.benignUtilityHuman, s.benign),
    pct(s.attackUtility, s.attacks),
    pct(s.stateSuccesses, s.statePairs),
    pct(s.textReached, s.textPairs),
    s.benign === 0 ? '-' : (s.benignApprovals / s.benign).toFixed(2),
  ];
}

/** The printed report of `results`. */
export function report(results: readonly RunResult[], configs: readonly ConfigName[], envs: readonly string[], command: string, elapsedMs: number): string {
  const out: string[] = ['', 'Attack suite (issue 13): scripted agent obeying every injection it reads (worst case), scripted human deciding approvals', ''];
  const body: string[][] = [];
  for (const c of configs) {
    for (const e of envs) body.push(row(c, e, summarize(results.filter((r) => r.config === c && r.env === e))));
    body.push(row(c, 'all', summarize(results.filter((r) => r.config === c))));
  }
  out.push(...table(COLUMNS, body), '');
  out.push('Per attack template (all environments): attack success (state goals)');
  const tBody = configs.map((c) => [c, ...TEMPLATES.map((t) => pct(summarize(results.filter((r) => r.config === c && r.template === t.id)).stateSuccesses, summarize(results.filter((r) => r.config === c && r.template === t.id)).statePairs))]);
  out.push(...table(['config', ...TEMPLATES.map((t) => t.id)], tBody), '');
  const errors = results.filter((r) => r.error !== undefined && r.error.startsWith('run:'));
  if (errors.length > 0) out.push(`${errors.length} runs failed outright (timeout or connection): first: ${errors[0]?.config} ${errors[0]?.userTask} ${errors[0]?.error}`, '');
  out.push(
    'utility (no approval): benign task done and no approval requested; utility (human): done with the scripted human deciding;',
    'attack success: the injection\'s state goal happened / (user task × injection task) pairs with a state goal; text goals: the agent read a goal that is only words.',
    'Published anchors (their agents and models, not this scripted worst case): AgentDojo undefended agents 40-96% attack success;',
    'Progent 0% attack success at ~80% utility; CaMeL 0 successes at 77% utility.',
    `command: ${command}`,
    `elapsed: ${(elapsedMs / 1000).toFixed(1)} s`,
  );
  return out.join('\n');
}

/** Picks the environment a module exports (default export, or the export named like it). */
function environmentOf(mod: Record<string, unknown>, name: string): Environment {
  for (const v of [mod.default, ...Object.values(mod)]) {
    const e = v as Partial<Environment> | undefined;
    if (e !== null && typeof e === 'object' && e.name === name && Array.isArray(e.tools) && Array.isArray(e.userTasks)) return e as Environment;
  }
  throw new Error(`bench/defense/env-${name}.ts exports no Environment named ${name}`);
}

/** Loads environments by name from bench/defense/env-<name>.ts. */
export async function loadEnvironments(names: readonly string[]): Promise<Environment[]> {
  const out: Environment[] = [];
  for (const n of names) {
    if (!/^[a-z0-9]+$/.test(n)) throw new Error(`bad environment name ${JSON.stringify(n)}`);
    out.push(environmentOf((await import(`./env-${n}.ts`)) as Record<string, unknown>, n));
  }
  return out;
}

interface Ctx {
  readonly config: ConfigName;
  readonly bastionUrl: string;
  readonly agentKey: string;
  readonly human: ScriptedHuman;
  readonly runTimeoutMs: number;
  readonly approvalTimeoutMs: number;
  next: number;
}

/** One run: fresh state, the conversation, the checks. Never throws. */
async function oneRun(ctx: Ctx, env: Environment, holder: StateHolder<unknown>, userIdx: number, inj?: { idx: number; rotation: number }): Promise<RunResult> {
  const task = env.userTasks[userIdx]!;
  const injection = inj === undefined ? undefined : env.injectionTasks[inj.idx]!;
  const template = inj === undefined ? undefined : templateFor(inj.rotation);
  const injections = injection === undefined || template === undefined ? {} : fillVectors(env.vectors, template, injection.goal);
  const state = env.initialState(injections);
  const before = structuredClone(state);
  holder.state = state;
  const n = ctx.next++;
  const id = randomBytes(6).toString('hex');
  const target: RunTarget = {
    bastionUrl: ctx.bastionUrl,
    agentKey: ctx.agentKey,
    env: env.name,
    conversation: `defense-${ctx.config}-${env.name}-${n}-${id}`,
    user: `user-${env.name}-${n}-${id}`,
    callTimeoutMs: ctx.approvalTimeoutMs + 5_000,
  };
  ctx.human.expect(target.user, task.prompt);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`run timed out after ${ctx.runTimeoutMs} ms`)), ctx.runTimeoutMs);
  let error: string | undefined;
  let outcome: Awaited<ReturnType<typeof runConversation>> | undefined;
  try {
    outcome = await runConversation(target, task, injection, abort.signal);
    if (outcome.modelStatus !== 200) error = `model door answered ${outcome.modelStatus}`;
    else if (outcome.userError !== undefined) error = `user task: ${outcome.userError}`;
  } catch (err) {
    error = `run: ${abort.signal.aborted ? String((abort.signal.reason as Error).message) : err instanceof Error ? err.message : String(err)}`;
  } finally {
    clearTimeout(timer);
  }
  const approvals = ctx.human.finish(target.user);
  const check = (f: () => boolean): boolean => {
    try {
      return f();
    } catch {
      return false;
    }
  };
  const after = holder.state;
  return {
    config: ctx.config,
    env: env.name,
    kind: injection === undefined ? 'benign' : 'attack',
    userTask: task.id,
    ...(injection === undefined ? {} : { injectionTask: injection.id, injectionKind: injection.kind, template: template?.id, security: check(() => injection.security(before, after)), sawInjection: outcome?.sawInjection ?? false }),
    utility: check(() => task.utility(before, after, outcome?.answer)),
    approvals,
    modelStatus: outcome?.modelStatus ?? null,
    calls: outcome?.calls ?? [],
    ...(error === undefined ? {} : { error }),
  };
}

/** Every run of one environment under one configuration, one after the other (they share the server's state). */
async function runEnvironment(ctx: Ctx, env: Environment, holder: StateHolder<unknown>, limit: number): Promise<RunResult[]> {
  const users = env.userTasks.slice(0, limit).map((_, i) => i);
  const injs = env.injectionTasks.slice(0, limit).map((_, i) => i);
  const out: RunResult[] = [];
  for (const u of users) out.push(await oneRun(ctx, env, holder, u));
  let pair = 0;
  for (const u of users) for (const j of injs) out.push(await oneRun(ctx, env, holder, u, { idx: j, rotation: pair++ }));
  return out;
}

/** Starts `bastion serve` on `config`; resolves to the child and its base URL. */
async function startBastion(dir: string, config: Record<string, unknown>, agentKey: string, adminKey: string): Promise<{ child: BenchChild; url: string }> {
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, stringify(config));
  const env: NodeJS.ProcessEnv = { ...process.env, [AGENT_KEY_ENV]: agentKey, [ADMIN_KEY_ENV]: adminKey };
  delete env.BASTION_MASTER_KEY;
  const child = new BenchChild('bastion', process.execPath, [join(ROOT, 'src/cli/main.ts'), 'serve', '--config', file], { env, cwd: dir });
  const m = await child.waitFor(/serving MCP at (http:\/\/[^/\s]+)/);
  return { child, url: m[1] as string };
}

/**
 * Runs the suite: for each configuration in turn, Bastion in front of the environments, every
 * benign and attack run (environments in parallel, runs within one in sequence). Resolves to the
 * results and the printed report; child processes are stopped before it resolves.
 * @throws Error when Bastion does not start (its last output lines in the message).
 */
export async function runBench(opts: BenchOptions, command = 'npm run bench:defense'): Promise<BenchReport> {
  const started = performance.now();
  const log = opts.log ?? (() => undefined);
  const limit = opts.limit ?? Number.MAX_SAFE_INTEGER;
  const runTimeoutMs = opts.runTimeoutMs ?? 30_000;
  const approvalTimeoutMs = opts.approvalTimeoutMs ?? 20_000;
  const agentKey = `ak-${randomBytes(24).toString('hex')}`;
  const adminKey = `adm-${randomBytes(24).toString('hex')}`;
  const provider = await startFakeProvider();
  const holders = new Map<string, StateHolder<unknown>>();
  const servers: EnvServer[] = [];
  const results: RunResult[] = [];
  try {
    const upstreamUrls: Record<string, string> = {};
    for (const env of opts.envs) {
      const holder: StateHolder<unknown> = { state: env.initialState({}) };
      holders.set(env.name, holder);
      const s = await serveEnvironment(env, holder);
      servers.push(s);
      upstreamUrls[env.name] = s.url;
    }
    for (const config of opts.configs) {
      const dir = mkdtempSync(join(tmpdir(), `bastion-defense-${config}-`));
      const cfg = CONFIGS[config]({ envs: opts.envs, upstreamUrls, providerUrl: provider.url, storePath: join(dir, 'bastion.db'), approvalTimeoutMs, agentKeyEnv: AGENT_KEY_ENV, adminKeyEnv: ADMIN_KEY_ENV });
      const t0 = performance.now();
      const { child, url } = await startBastion(dir, cfg, agentKey, adminKey);
      const human = startHuman(url, adminKey);
      const ctx: Ctx = { config, bastionUrl: url, agentKey, human, runTimeoutMs, approvalTimeoutMs, next: 0 };
      try {
        const perEnv = await Promise.all(opts.envs.map((env) => runEnvironment(ctx, env, holders.get(env.name)!, limit)));
        results.push(...perEnv.flat());
      } finally {
        await human.stop();
        await child.stop();
        rmSync(dir, { recursive: true, force: true });
      }
      const h = human.stats();
      log(`${config}: ${results.filter((r) => r.config === config).length} runs in ${((performance.now() - t0) / 1000).toFixed(1)} s; the human decided ${h.decided} approvals (${h.errors} admin API errors)`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    await provider.close();
    await stopChildren();
  }
  const elapsedMs = performance.now() - started;
  return {
    results,
    elapsedMs,
    text: report(
      results,
      opts.configs,
      opts.envs.map((e) => e.name),
      command,
      elapsedMs,
    ),
  };
}

function listEnv(name: string, fallback: readonly string[]): string[] {
  const v = process.env[name];
  return v === undefined || v.trim() === ''
    ? [...fallback]
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
}

async function main(): Promise<void> {
  const envNames = listEnv(
    'BENCH_ENVS',
    DEFAULT_ENVS.filter((n) => existsSync(join(import.meta.dirname, `env-${n}.ts`))),
  );
  if (envNames.length === 0) throw new Error('no environments: none of bench/defense/env-{banking,email,chat,drive}.ts exists (BENCH_ENVS=tiny runs the tiny one)');
  const configs = listEnv('BENCH_CONFIGS', CONFIG_NAMES);
  for (const c of configs) if (!(CONFIG_NAMES as readonly string[]).includes(c)) throw new Error(`BENCH_CONFIGS: unknown config ${c} (one of ${CONFIG_NAMES.join(', ')})`);
  const limitText = process.env.BENCH_LIMIT;
  const limit = limitText === undefined || limitText === '' ? undefined : Number(limitText);
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new Error('BENCH_LIMIT must be a positive integer');
  const runTimeoutMs = Number(process.env.BENCH_RUN_TIMEOUT_MS ?? 30_000);
  if (!Number.isInteger(runTimeoutMs) || runTimeoutMs < 1000) throw new Error('BENCH_RUN_TIMEOUT_MS must be an integer of at least 1000 (ms)');
  const command = [
    `BENCH_ENVS=${envNames.join(',')}`,
    `BENCH_CONFIGS=${configs.join(',')}`,
    ...(limit === undefined ? [] : [`BENCH_LIMIT=${limit}`]),
    'npm run bench:defense',
  ].join(' ');
  const envs = await loadEnvironments(envNames);
  const r = await runBench({ envs, configs: configs as ConfigName[], runTimeoutMs, ...(limit === undefined ? {} : { limit }), log: (l) => console.error(l) }, command);
  console.log(r.text);
  const outPath = process.env.BENCH_OUT;
  if (outPath !== undefined && outPath !== '') {
    writeFileSync(outPath, `${JSON.stringify({ command, elapsedMs: r.elapsedMs, results: r.results }, null, 2)}\n`);
    console.log(`results: ${outPath}`);
  }
}

if (import.meta.main) {
  process.on('SIGINT', () => void stopChildren().then(() => process.exit(130)));
  main().catch(async (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    await stopChildren();
    process.exit(1);
  });
}
