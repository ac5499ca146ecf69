/**
 * `npm run bench:sandbox`: what the sandbox costs, each row against its baseline in the same
 * invocation, with medians and p99:
 *
 * 1. Start-to-exit of `/bin/true`, `python3 -c pass` and `node -e 0` in the sandbox (bubblewrap,
 *    every namespace, seccomp, the run's cgroup, limits) against the same spawned directly, and
 *    `/bin/true` with the egress forwarder too (bench/sandbox-runner.ts). Target: ≤ 30 ms added p50
 *    for `/bin/true`.
 * 2. A `sandbox__run` tool call of `/bin/true` end to end through the tool door (`bastion serve` in
 *    its own process, the official SDK client, policy, the audit record) against the runner alone
 *    and a direct spawn.
 * 3. The in-process QuickJS path (bench/sandbox-quickjs.ts): one evaluation with a warm worker
 *    against the same expression through `new Function`. Target: ≤ 1 ms p50.
 *
 * Bounded: BENCH_RUNS (default 50) runs per sandbox row, BENCH_CALLS (default 50) tool calls,
 * BENCH_EVALS (default 3000) evaluations. Figures vary with the machine's load: read the ratios.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { benchQuickJs } from './sandbox-quickjs.ts';
import { benchRunner, type Percentiles } from './sandbox-runner.ts';

const ROOT = join(import.meta.dirname, '..');
const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const CALLS = Number(process.env.BENCH_CALLS ?? 50);
const EVALS = Number(process.env.BENCH_EVALS ?? 3000);
const KEY = 'bench-sandbox-key-0123456789abcdef';

function percentiles(samples: number[]): Percentiles {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

const fmt = (ms: number): string => `${ms.toFixed(2).padStart(8)} ms`;
function row(name: string, p: Percentiles, base?: Percentiles): void {
  const ratio = base === undefined ? '' : `   ${(p.p50 / base.p50).toFixed(2)}x p50, +${(p.p50 - base.p50).toFixed(1)} ms`;
  console.log(`${name.padEnd(40)} p50 ${fmt(p.p50)}  p99 ${fmt(p.p99)}${ratio}`);
}

/** Starts `bastion serve` on a temp config with the sandbox on; resolves with the MCP URL. */
async function serve(): Promise<{ url: URL; child: ChildProcess }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sandbox-'));
  const config = join(dir, 'bastion.yaml');
  writeFileSync(
    config,
    `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./b.db }
sandbox: { enabled: true, network: false }
agents:
  bench:
    keys: [env:BENCH_KEY]
    tools: [sandbox__run]
    sandbox: { commands: { allow: ["true"] } }
`,
  );
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'serve', '--config', config], {
    env: { ...process.env, BENCH_KEY: KEY, BASTION_MASTER_KEY: Buffer.alloc(32, 9).toString('base64'), BASTION_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<URL>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('bastion serve did not start')), 30_000);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const m = /serving MCP at (\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(new URL(m[1] as string));
      }
    });
    child.once('exit', (code) => reject(new Error(`bastion serve exited ${String(code)}`)));
  });
  return { url, child };
}

async function toolDoor(calls: number): Promise<Percentiles> {
  const { url, child } = await serve();
  const client = new Client({ name: 'bench', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${KEY}` } } }));
    const once = async (): Promise<number> => {
      const t0 = performance.now();
      const r = (await client.callTool({ name: 'sandbox__run', arguments: { argv: ['true'] } })) as CallToolResult;
      const ms = performance.now() - t0;
      if (r.isError === true) throw new Error(`sandbox__run failed: ${JSON.stringify(r.content).slice(0, 300)}`);
      return ms;
    };
    for (let i = 0; i < 5; i++) await once();
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) samples.push(await once());
    return percentiles(samples);
  } finally {
    await client.close().catch(() => undefined);
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
}

console.log(`bench:sandbox — ${cpus().length} CPUs, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ${RUNS} runs per row, ${CALLS} tool calls, ${EVALS} evaluations\n`);

const runner = await benchRunner({ iterations: RUNS });
console.log('start to exit, sandboxed vs direct:');
for (const program of ['/bin/true', 'python3 -c pass', 'node -e 0']) {
  const direct = runner[`${program} direct`] as Percentiles;
  row(`  ${program} direct`, direct);
  row(`  ${program} sandbox`, runner[`${program} sandbox`] as Percentiles, direct);
  const egress = runner[`${program} sandbox+egress`];
  if (egress !== undefined) row(`  ${program} sandbox + egress forwarder`, egress, direct);
}

const door = await toolDoor(CALLS);
console.log('\nsandbox__run of /bin/true through the tool door (bastion serve, SDK client, audit on):');
const trueDirect = runner['/bin/true direct'] as Percentiles;
const trueSandbox = runner['/bin/true sandbox'] as Percentiles;
row('  tool call vs direct spawn', door, trueDirect);
row('  tool call vs the runner alone', door, trueSandbox);

const js = await benchQuickJs({ iterations: EVALS });
console.log('\nin-process JavaScript (QuickJS in a warm worker) vs new Function:');
row('  new Function', { p50: js.baselineP50Ms, p99: js.baselineP99Ms });
row('  QuickJS, warm worker', { p50: js.warmP50Ms, p99: js.warmP99Ms }, { p50: js.baselineP50Ms, p99: js.baselineP99Ms });
console.log(`  cold start (worker + first evaluation): ${js.coldStartMs.toFixed(0)} ms`);

const added = trueSandbox.p50 - trueDirect.p50;
console.log(`\ntargets: /bin/true added p50 ${added.toFixed(1)} ms (≤ 30: ${added <= 30 ? 'met' : 'not met'}); QuickJS warm p50 ${js.warmP50Ms.toFixed(2)} ms (≤ 1: ${js.warmP50Ms <= 1 ? 'met' : 'not met'})`);
