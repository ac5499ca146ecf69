/**
 * `npm run bench:tool-door`: the same MCP client calls the same upstream tool directly and through
 * Bastion, for small and 64 KiB results, at concurrency 1 and 16, and prints median and p99 latency
 * for both, the added latency, the ratio, calls/s, and CPU per call.
 *
 * Two MCP revisions, in one invocation so their figures are comparable:
 * - `2025` rows (MCP 2025-11-25, sessions): the 1.x SDK client (initialize, Mcp-Session-Id) against
 *   bench/upstream-server.ts (1.x SDK, stateful sessions), Bastion upstream `up`.
 * - `2026` rows (MCP 2026-07-28, stateless): the 2.x SDK client (@modelcontextprotocol/client,
 *   version pinned to 2026-07-28: no initialize, a `_meta` envelope on every request) against
 *   bench/upstream-server-2026.ts (2.x SDK `createMcpHandler`, modern-only), Bastion upstream `up26`
 *   (`revision: auto`). Before timing, one probe client per target checks the wire really is
 *   stateless: era `modern` at 2026-07-28, no `initialize` sent, no Mcp-Session-Id in either
 *   direction, and a `resultType` in the tools/list result; the run stops if not.
 * After the table, one line compares the stateless path with the session path through Bastion:
 * Bastion p50 (2026) ÷ Bastion p50 (2025) per case, ≤ 1.00x meaning the stateless path is at least
 * as fast; the added p50 of each path is shown beside it, since the two SDKs differ on their own.
 *
 * Four processes: this client, the two upstreams and Bastion (`bastion serve`, SQLite store, audit
 * on). Bounded: CALLS per case. Env: BENCH_CALLS (default 3000), BENCH_WARMUP (default 300),
 * BENCH_NODE_FLAGS (extra node flags for the Bastion process, e.g. `--cpu-prof
 * --cpu-prof-dir=/tmp/prof`), BENCH_ONLY (comma-separated cases `[2025|2026|traced:]small|large|prose:1|16`,
 * e.g. `small:1` (a 2025 case, as before) or `2026:small:1,2025:small:1`). `traced` rows: the 2025
 * cases for a second agent whose calls are traced for provenance (issue 13: its results recorded as
 * untrusted values, facts computed for every call), compared with the 2025 rows at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Client as ModernClient, StreamableHTTPClientTransport as ModernTransport } from '@modelcontextprotocol/client';
import { cpuMs } from './proc.ts';

const ROOT = join(import.meta.dirname, '..');
const CALLS = Number(process.env.BENCH_CALLS ?? 3000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const KEY = 'bench-key-0123456789abcdefghijkl';
const TRACED_KEY = 'bench-traced-key-0123456789abcdef';
const MODERN = '2026-07-28';

type Era = '2025' | '2026' | 'traced';
type Tool = 'small' | 'large' | 'prose';

/** What the timing loop needs of either SDK's client. */
interface Caller {
  callTool(params: { name: string; arguments: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

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

const authInit = (auth: boolean): { requestInit?: RequestInit } => (auth ? { requestInit: { headers: { Authorization: `Bearer ${KEY}` } } } : {});

/** A 2025-11-25 session client (1.x SDK): initialize, then Mcp-Session-Id on every request. */
async function client(url: URL, auth: boolean): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(url, authInit(auth)));
  return c;
}

/** A 2025-11-25 session client of the traced agent (`tracer`): its own key, and a conversation name. */
async function tracedClient(url: URL, auth: boolean): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1.0.0' });
  const headers = auth ? { Authorization: `Bearer ${TRACED_KEY}`, 'Bastion-Conversation': `bench-${Math.random().toString(36).slice(2)}` } : {};
  await c.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  return c;
}

/** A 2026-07-28 stateless client (2.x SDK, revision pinned); throws if it did not negotiate it. */
async function modernClient(url: URL, auth: boolean, fetchImpl?: typeof fetch): Promise<ModernClient> {
  const c = new ModernClient({ name: 'bench', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN } } });
  await c.connect(new ModernTransport(url, { ...authInit(auth), ...(fetchImpl ? { fetch: fetchImpl } : {}) }));
  if (c.getProtocolEra() !== 'modern' || c.getNegotiatedProtocolVersion() !== MODERN) {
    throw new Error(`${url.href}: negotiated ${c.getProtocolEra()} ${c.getNegotiatedProtocolVersion()}, not ${MODERN}`);
  }
  return c;
}

/**
 * Checks, over one probe client, that talking to `url` uses the 2026-07-28 stateless wire: no
 * `initialize` request, no Mcp-Session-Id header sent or received, and a tools/list result that
 * carries `resultType` (MCP 2026-07-28). Throws an Error naming what was seen otherwise.
 */
async function checkStatelessWire(url: URL, auth: boolean): Promise<void> {
  const seen = { initialize: false, sessionHeader: false, listResultType: false, listSeen: false };
  const spy: typeof fetch = async (input, init) => {
    const method = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }).method : undefined;
    if (method === 'initialize') seen.initialize = true;
    if (new Headers(init?.headers).has('mcp-session-id')) seen.sessionHeader = true;
    const res = await fetch(input, init);
    if (res.headers.has('mcp-session-id')) seen.sessionHeader = true;
    if (method === 'tools/list') {
      seen.listSeen = true;
      // The body is one JSON object or an SSE stream of them; either way the result is JSON text.
      seen.listResultType = (await res.clone().text()).includes('"resultType"');
    }
    return res;
  };
  const c = await modernClient(url, auth, spy);
  try {
    await c.listTools();
    await c.callTool({ name: auth ? 'up26__small' : 'small', arguments: { n: 0 } });
    const transportSession = (c.transport as ModernTransport | undefined)?.sessionId;
    if (seen.initialize || seen.sessionHeader || transportSession !== undefined || !seen.listSeen || !seen.listResultType) {
      throw new Error(`${url.href}: not the stateless ${MODERN} wire: ${JSON.stringify({ ...seen, transportSession })}`);
    }
  } finally {
    await c.close();
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Stats {
  p50: number;
  p99: number;
  rps: number;
}

async function run(clients: Caller[], tool: string, calls: number): Promise<Stats> {
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

/** Whether BENCH_ONLY (unset: all) selects this case; a case without an era prefix is a 2025 case. */
function selected(era: Era, tool: Tool, conc: number): boolean {
  const only = process.env.BENCH_ONLY;
  if (!only) return true;
  return only
    .split(',')
    .map((s) => s.trim())
    .some((s) => s === `${era}:${tool}:${conc}` || (era === '2025' && s === `${tool}:${conc}`));
}

async function main(): Promise<void> {
  const up = spawn(process.execPath, [join(ROOT, 'bench/upstream-server.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const up26 = spawn(process.execPath, [join(ROOT, 'bench/upstream-server-2026.ts')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [[, upPort], [, up26Port]] = await Promise.all([waitForLine(up, /^listening (\d+)/), waitForLine(up26, /^listening (\d+)/)]);
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-'));
  writeFileSync(
    join(dir, 'bastion.yaml'),
    `version: 1
server:
  listen: 127.0.0.1:0
  egress: false
  # One agent drives every client: the per-agent caps would measure themselves instead of the door.
  sessions: { requestsPerSecondPerAgent: 1000000, burstPerAgent: 1000000, maxConcurrentCallsPerAgent: 100000 }
store:
  sqlite: ./bastion.db
agents:
  bench:
    keys: [env:BENCH_KEY]
    tools: ["up__*", "up26__*"]
  # The same calls with provenance traced (issue 13): results recorded as untrusted, every call decided on its facts.
  tracer:
    keys: [env:BENCH_TRACED_KEY]
    tools: ["up__*"]
    approveWhen:
      - effect: [pay]
        argsFrom: untrusted
    labels:
      "up__*": { source: untrusted, effect: [read] }
upstreams:
  up:
    url: http://127.0.0.1:${upPort}/mcp
  up26:
    url: http://127.0.0.1:${up26Port}/mcp
    revision: auto
`,
  );
  const bastion = spawn(process.execPath, [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), join(ROOT, 'src/cli/main.ts'), 'serve', '--config', join(dir, 'bastion.yaml')], {
    // Its log (one access line per call) goes to a file, as to an operator's log shipper: written, not printed here.
    stdio: ['ignore', 'pipe', openSync(join(dir, 'bastion.log'), 'w')],
    env: { ...process.env, BENCH_KEY: KEY, BENCH_TRACED_KEY: TRACED_KEY },
  });
  const [, bastionUrl] = await waitForLine(bastion, /serving MCP at (\S+)/);
  const targets = {
    '2025': { direct: new URL(`http://127.0.0.1:${upPort}/mcp`), prefix: 'up__', connect: client },
    '2026': { direct: new URL(`http://127.0.0.1:${up26Port}/mcp`), prefix: 'up26__', connect: modernClient },
    traced: { direct: new URL(`http://127.0.0.1:${upPort}/mcp`), prefix: 'up__', connect: (url: URL, auth: boolean) => tracedClient(url, auth) },
  } satisfies Record<Era, { direct: URL; prefix: string; connect: (url: URL, auth: boolean) => Promise<Caller> }>;
  const through = new URL(bastionUrl as string);
  try {
    const eras = (['2025', '2026', 'traced'] as const).filter((era) => (['small', 'large', 'prose'] as const).some((t) => [1, 16].some((c) => selected(era, t, c))));
    if (eras.includes('2026')) await Promise.all([checkStatelessWire(targets['2026'].direct, false), checkStatelessWire(through, true)]);
    console.log(`tool-door benchmark: ${CALLS} calls per case after ${WARMUP} warm-up calls; node ${process.version}`);
    console.log('2025 = MCP 2025-11-25, sessions (1.x SDK client and upstream); 2026 = MCP 2026-07-28, stateless (2.x SDK client and upstream)');
    console.log('traced = the 2025 case for an agent whose calls are traced (results recorded as untrusted, provenance facts on every call)');
    console.log('case                     | direct p50    p99   calls/s | bastion p50    p99   calls/s | added p50  added p99 | ratio calls/s');
    const cpuLines: string[] = [];
    const bastionStats = new Map<string, { era: Era; label: string; b: Stats; d: Stats }>();
    for (const era of eras) {
      const t = targets[era];
      for (const tool of ['small', 'large', 'prose'] as const) {
        for (const conc of [1, 16]) {
          // The 2026 upstream has no prose tool; prose rows compare tracing, so they are 2025 and traced only.
          if (!selected(era, tool, conc) || (tool === 'prose' && era === '2026')) continue;
          const dc: Caller[] = await Promise.all(Array.from({ length: conc }, () => t.connect(t.direct, false)));
          const bc: Caller[] = await Promise.all(Array.from({ length: conc }, () => t.connect(through, true)));
          const name = `${t.prefix}${tool}`;
          await run(dc, tool, WARMUP);
          await run(bc, name, WARMUP);
          // Interleave halves so drift (GC, disk) hits both sides alike.
          const d1 = await run(dc, tool, CALLS / 2);
          const b1 = await run(bc, name, CALLS / 2);
          const caseName = `${tool === 'small' ? 'small' : tool === 'large' ? '64 KiB' : '64 KiB prose'} result, c=${conc}`;
          const label = `${era} ${caseName}`.padEnd(24);
          const d2 = await run(dc, tool, CALLS / 2);
          const cpu0 = { bastion: cpuMs(bastion.pid), up: cpuMs(era === '2026' ? up26.pid : up.pid), client: process.cpuUsage() };
          const b2 = await run(bc, name, CALLS / 2);
          const clientCpu = process.cpuUsage(cpu0.client);
          cpuLines.push(
            `${label.trim()}: CPU per call through Bastion — client ${((clientCpu.user + clientCpu.system) / 1000 / (CALLS / 2)).toFixed(3)} ms, ` +
              `Bastion ${((cpuMs(bastion.pid) - cpu0.bastion) / (CALLS / 2)).toFixed(3)} ms, upstream ${((cpuMs(era === '2026' ? up26.pid : up.pid) - cpu0.up) / (CALLS / 2)).toFixed(3)} ms`,
          );
          const d = { p50: (d1.p50 + d2.p50) / 2, p99: Math.max(d1.p99, d2.p99), rps: (d1.rps + d2.rps) / 2 };
          const b = { p50: (b1.p50 + b2.p50) / 2, p99: Math.max(b1.p99, b2.p99), rps: (b1.rps + b2.rps) / 2 };
          bastionStats.set(`${era} ${caseName}`, { era, label: caseName, b, d });
          console.log(
            `${label} | ${f(d.p50)} ${f(d.p99)} ${d.rps.toFixed(0).padStart(8)} | ${f(b.p50)} ${f(b.p99)} ${b.rps.toFixed(0).padStart(8)} | ${f(b.p50 - d.p50)} ${f(b.p99 - d.p99)}  | ${(b.rps / d.rps).toFixed(2)}x`,
          );
          await Promise.all([...dc, ...bc].map((c) => c.close()));
        }
      }
    }
    console.log('latencies in ms; ratio = bastion calls/s ÷ direct calls/s');
    for (const l of cpuLines) console.log(l);
    const pairs: string[] = [];
    for (const [key, s26] of bastionStats) {
      const s25 = s26.era === '2026' ? bastionStats.get(key.replace(/^2026/, '2025')) : undefined;
      if (!s25) continue;
      pairs.push(`${s26.label} ${(s26.b.p50 / s25.b.p50).toFixed(2)}x (added ${(s26.b.p50 - s26.d.p50).toFixed(2)} vs ${(s25.b.p50 - s25.d.p50).toFixed(2)} ms)`);
    }
    if (pairs.length > 0) console.log(`stateless vs session through Bastion, p50 2026 ÷ p50 2025 (≤ 1.00x: stateless at least as fast): ${pairs.join('; ')}`);
    const traced: string[] = [];
    for (const [key, st] of bastionStats) {
      const s25 = st.era === 'traced' ? bastionStats.get(key.replace(/^traced/, '2025')) : undefined;
      if (!s25) continue;
      traced.push(`${st.label} ${(st.b.p50 / s25.b.p50).toFixed(2)}x (added ${(st.b.p50 - st.d.p50).toFixed(2)} vs ${(s25.b.p50 - s25.d.p50).toFixed(2)} ms)`);
    }
    if (traced.length > 0) console.log(`provenance traced vs not, through Bastion, p50 traced ÷ p50 2025: ${traced.join('; ')}`);
  } finally {
    bastion.kill('SIGINT');
    await new Promise((r) => bastion.once('exit', r));
    up.kill('SIGTERM');
    up26.kill('SIGTERM');
  }
}

await main();
