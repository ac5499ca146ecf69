/**
 * `npm run bench:tool-door`: the same MCP client (official SDK, Streamable HTTP)
 * calls the same upstream tool directly and through Bastion, for small and
 * 64 KiB results, at concurrency 1 and 16, and prints median and p99 latency
 * for both, the added latency, the ratio, and calls/s.
 *
 * Three processes: this client, the upstream (bench/upstream-server.ts) and
 * Bastion (`bastion serve`, SQLite store, audit on). Bounded: CALLS per case.
 * Env: BENCH_CALLS (default 3000), BENCH_WARMUP (default 300), BENCH_NODE_FLAGS (extra node flags
 * for the Bastion process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`), BENCH_ONLY (one case, e.g. `small:1`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { cpuMs } from './proc.ts';

const ROOT = join(import.meta.dirname, '..');
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const KEY = 'bench-key-0123456789abcdefghijkl';

function waitForLine(child: ChildProcess, re: RegExp, timeoutMs = 30_000): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timeout waiting for ${re}`)), timeoutMs);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const m = line.match(re);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    });
    child.once('exit', (code) => reject(new Error(`process exited ${code}`)));
  });
}

async function client(url: URL, auth: boolean): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(url, auth ? { requestInit: { headers: { Authorization: `Bearer ${KEY}` } } } : {}));
  return c;
}


function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Stats {
  p50: number;
  p99: number;
  rps: number;
}

async function run(clients: Client[], tool: string, calls: number): Promise<Stats> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    clients.map(async (c) => {
      while (next < calls) {
        const n = next++;
        const s = performance.now();
        const r = await c.callTool({ name: tool, arguments: { n } });
        lat.push(performance.now() - s);
        if ((r as { isError?: boolean }).isError) throw new Error(`tool error: ${JSON.stringify(r).slice(0, 200)}`);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), rps: calls / wall };
}

const f = (n: number): string => n.toFixed(2).padStart(7);

async function main(): Promise<void> {
  const up = spawn(process.execPath, [join(ROOT, 'bench/upstream-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [, upPort] = await waitForLine(up, /^listening (\d+)/);
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-'));
  writeFileSync(
    join(dir, 'bastion.yaml'),
    `version: 1
server:
  listen: 127.0.0.1:0
  egress: false
store:
  sqlite: ./bastion.db
agents:
  bench:
    keys: [env:BENCH_KEY]
    tools: ["up__*"]
upstreams:
  up:
    url: http://127.0.0.1:${upPort}/mcp
`,
  );
  const bastion = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), join(ROOT, 'src/cli/main.ts'), 'serve', '--config', join(dir, 'bastion.yaml')], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, BENCH_KEY: KEY },
  });
  const [, bastionUrl] = await waitForLine(bastion, /serving MCP at (\S+)/);
  const direct = new URL(`http://127.0.0.1:${upPort}/mcp`);
  const through = new URL(bastionUrl as string);
  console.log(`tool-door benchmark: ${CALLS} calls per case after ${WARMUP} warm-up calls; node ${process.version}`);
  console.log('case                     | direct p50    p99   calls/s | bastion p50    p99   calls/s | added p50  added p99 | ratio calls/s');
  try {
    const cpuLines: string[] = [];
    const only = process.env.BENCH_ONLY; // e.g. "small:1" to run one case (profiling)
    for (const tool of ['small', 'large']) {
      for (const conc of [1, 16]) {
        if (only && only !== `${tool}:${conc}`) continue;
        const dc = await Promise.all(Array.from({ length: conc }, () => client(direct, false)));
        const bc = await Promise.all(Array.from({ length: conc }, () => client(through, true)));
        const name = tool === 'small' ? `up__small` : `up__large`;
        await run(dc, tool, WARMUP);
        await run(bc, name, WARMUP);
        // Interleave halves so drift (GC, disk) hits both sides alike.
        const d1 = await run(dc, tool, CALLS / 2);
        const b1 = await run(bc, name, CALLS / 2);
        const label = `${tool === 'small' ? 'small' : '64 KiB'} result, c=${conc}`.padEnd(24);
        const d2 = await run(dc, tool, CALLS / 2);
        const cpu0 = { bastion: cpuMs(bastion.pid), up: cpuMs(up.pid), client: process.cpuUsage() };
        const b2 = await run(bc, name, CALLS / 2);
        const clientCpu = process.cpuUsage(cpu0.client);
        cpuLines.push(
          `${label.trim()}: CPU per call through Bastion — client ${((clientCpu.user + clientCpu.system) / 1000 / (CALLS / 2)).toFixed(3)} ms, ` +
            `Bastion ${((cpuMs(bastion.pid) - cpu0.bastion) / (CALLS / 2)).toFixed(3)} ms, upstream ${((cpuMs(up.pid) - cpu0.up) / (CALLS / 2)).toFixed(3)} ms`,
        );
        const d = { p50: (d1.p50 + d2.p50) / 2, p99: Math.max(d1.p99, d2.p99), rps: (d1.rps + d2.rps) / 2 };
        const b = { p50: (b1.p50 + b2.p50) / 2, p99: Math.max(b1.p99, b2.p99), rps: (b1.rps + b2.rps) / 2 };
        console.log(
          `${label} | ${f(d.p50)} ${f(d.p99)} ${d.rps.toFixed(0).padStart(8)} | ${f(b.p50)} ${f(b.p99)} ${b.rps.toFixed(0).padStart(8)} | ${f(b.p50 - d.p50)} ${f(b.p99 - d.p99)}  | ${(b.rps / d.rps).toFixed(2)}x`,
        );
        await Promise.all([...dc, ...bc].map((c) => c.close()));
      }
    }
    console.log('latencies in ms; ratio = bastion calls/s ÷ direct calls/s');
    for (const l of cpuLines) console.log(l);
  } finally {
    bastion.kill('SIGINT');
    await new Promise((r) => bastion.once('exit', r));
    up.kill('SIGTERM');
  }
}

await main();
