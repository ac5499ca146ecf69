/**
 * `npm run bench:egress`: requests/s and p50/p99 latency for a small GET and a
 * 1 MiB POST, at 1 and 16 keep-alive connections, directly to a loopback origin
 * and through proxies: Bastion's network door (plain HTTP, CONNECT tunnel, and
 * TLS interception with secret swap), squid and tinyproxy, all in one run so
 * every ratio is against a baseline measured minutes earlier on the same box.
 *
 * Processes: this driver (idle while measuring), the origin (bench/egress-origin.ts,
 * HTTP and HTTPS), the proxies, and the load generator: wrk for plain HTTP (Lua
 * script sending absolute-form requests through the proxy), and for HTTPS (wrk
 * cannot CONNECT) bench/egress-client.ts, the same undici client for the direct
 * baseline and every proxy. Without wrk, plain HTTP uses that client too.
 *
 * Env: BENCH_SECONDS (recorded seconds per row, default 3), BENCH_WARMUP_SECONDS
 * (default 1), BENCH_CONNS (default `1,16`), BENCH_ONLY (a regex over the row
 * label `mode proxy size cN`, e.g. `tunnel|swap` or `squid`; direct rows always run),
 * BENCH_NODE_FLAGS (extra node flags for Bastion, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`),
 * BENCH_KEEP_TMP=1 (keep the temp dir with configs and logs), BENCH_SKIP (e.g.
 * `squid,tinyproxy,wrk`: act as if not installed), BENCH_WRK_THREADS (default 1).
 * Not a test: it prints figures, it does not judge them beyond the summary.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ProxyAgent, request as undiciRequest } from 'undici';
import type { ClientResult, ClientSpec } from './egress-client.ts';
import { BenchChild, stopChildren } from './child.ts';
import { cpuMs } from './proc.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const CONNS = (process.env.BENCH_CONNS ?? '1,16').split(',').map(Number);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : undefined;
const AGENT_KEY = 'bench-agent-key-0123456789abcdefghijklmnop';
const SECRET = 'real-secret-value';
const UPLOAD = 1024 * 1024;
const INSTALL_HINT = 'apt-get install squid tinyproxy wrk';
/** The issue's reference for mitmproxy (not installed here): small GET, 16 connections. */
const MITMPROXY_REF = 0.017;

// ---------------------------------------------------------------------------
// BenchChild processes: output captured line by line (tail kept for error messages),
// all killed at the end, on error and on Ctrl-C.

let tempDir: string | undefined;
const stopAll = stopChildren;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`\n${sig}: stopping child processes`);
    void stopAll().finally(() => {
      if (tempDir && process.env.BENCH_KEEP_TMP !== '1') rmSync(tempDir, { recursive: true, force: true });
      process.exit(130);
    });
  });
}

// ---------------------------------------------------------------------------
// Small helpers.

/** Tools to act as if not installed (BENCH_SKIP=squid,tinyproxy,wrk), e.g. to check the fallbacks. */
const SKIP = new Set((process.env.BENCH_SKIP ?? '').split(',').map((x) => x.trim()));

function which(bin: string, extra: readonly string[] = []): string | undefined {
  if (SKIP.has(bin)) return undefined;
  for (const d of [...(process.env.PATH ?? '').split(delimiter), ...extra]) {
    const p = join(d, bin);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function waitForPort(port: number, child: BenchChild, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (child.exited !== null) throw new Error(`${child.name} exited (${child.exited}): ${child.lastLines()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${child.name}: port ${port} not open within ${timeoutMs} ms: ${child.lastLines()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}


function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

// ---------------------------------------------------------------------------
// The rows.

type Mode = 'http' | 'tunnel' | 'swap';
type Size = 'small' | '1MiB';

interface Measure {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  errors: number;
  /** Proxy CPU per request (µs) and share of one core, when a proxy process was measured. */
  cpuUsPerReq?: number;
  cpuCore?: number;
  note?: string;
}

interface Row {
  mode: Mode;
  proxy: string;
  size: Size;
  conns: number;
  m?: Measure;
  na?: string;
  base?: Row;
}

/** How a load generator reaches the origin through one proxy (or directly). */
interface Route {
  /** The proxy's port; none: direct. */
  proxyPort?: number;
  proxyPid?: number;
  proxyAuth?: string;
  /** Host (name or IP) in the absolute-form URL / CONNECT target. */
  host: string;
  /** Why this route cannot be measured. */
  na?: string;
}

interface Env {
  dir: string;
  httpPort: number;
  httpsPort: number;
  originCert: string;
  wrk?: string;
}

function label(r: Pick<Row, 'mode' | 'proxy' | 'size' | 'conns'>): string {
  return `${r.mode} ${r.proxy} ${r.size} c${r.conns}`;
}

let scriptN = 0;
function wrkScript(env: Env, route: Route, size: Size): string {
  const path = size === 'small' ? '/small' : '/upload';
  const lines = [
    `wrk.method = "${size === 'small' ? 'GET' : 'POST'}"`,
    `wrk.path = "${route.proxyPort ? `http://${route.host}:${env.httpPort}${path}` : path}"`,
    `wrk.headers["Host"] = "${route.host}:${env.httpPort}"`,
    ...(route.proxyAuth ? [`wrk.headers["Proxy-Authorization"] = "${route.proxyAuth}"`] : []),
    ...(size === '1MiB' ? [`wrk.body = string.rep("x", ${UPLOAD})`, `wrk.headers["Content-Type"] = "application/octet-stream"`] : []),
    'done = function(summary, latency, requests)',
    '  local e = summary.errors',
    '  io.write(string.format("WRKJSON {\\"requests\\":%.0f,\\"duration_us\\":%.0f,\\"p50_us\\":%.0f,\\"p99_us\\":%.0f,\\"connect\\":%.0f,\\"read\\":%.0f,\\"write\\":%.0f,\\"status\\":%.0f,\\"timeout\\":%.0f}\\n",',
    '    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), e.connect, e.read, e.write, e.status, e.timeout))',
    'end',
  ];
  const file = join(env.dir, `wrk-${scriptN++}.lua`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

async function runWrk(env: Env, route: Route, size: Size, conns: number): Promise<Measure> {
  const script = wrkScript(env, route, size);
  const target = `http://127.0.0.1:${route.proxyPort ?? env.httpPort}`;
  const threads = Math.max(1, Math.min(conns, Number(process.env.BENCH_WRK_THREADS ?? 1)));
  // wrk takes whole seconds.
  const args = (secs: number): string[] => [`-t${threads}`, `-c${conns}`, `-d${Math.max(1, Math.round(secs))}s`, '--timeout', '10s', '-s', script, target];
  const once = async (secs: number): Promise<{ out: BenchChild; cpu: number; line: RegExpMatchArray }> => {
    const c0 = cpuMs(route.proxyPid);
    const out = new BenchChild('wrk', env.wrk!, args(secs));
    const line = await out.waitFor(/^WRKJSON (.*)$/, (secs + 30) * 1000);
    await new Promise((r) => out.proc.once('exit', r));
    return { out, cpu: cpuMs(route.proxyPid) - c0, line };
  };
  if (WARMUP > 0) await once(WARMUP);
  const { cpu, line } = await once(SECONDS);
  const j = JSON.parse(line[1]!) as Record<string, number>;
  const secs = j.duration_us! / 1e6;
  // A read "error" is wrk seeing the connection closed after a response (a proxy
  // without client keep-alive): wrk reconnects, the response was complete. Noted, not failed.
  const errors = j.connect! + j.write! + j.status! + j.timeout!;
  const ok = j.requests! - j.status!;
  const closes = j.read! ? `${j.read} connection closes by the server (no keep-alive; wrk reconnects)` : '';
  return {
    rps: ok / secs,
    p50: j.p50_us! / 1000,
    p99: j.p99_us! / 1000,
    requests: j.requests!,
    errors,
    ...(route.proxyPid ? { cpuUsPerReq: (cpu * 1000) / Math.max(1, j.requests!), cpuCore: cpu / 1000 / secs } : {}),
    ...(errors ? { note: `wrk errors: connect ${j.connect} write ${j.write} status ${j.status} timeout ${j.timeout}${closes ? `; ${closes}` : ''}` } : closes ? { note: closes } : {}),
  };
}

async function runClient(spec: ClientSpec, proxyPid: number | undefined): Promise<Measure> {
  const c = new BenchChild('egress-client', process.execPath, [join(ROOT, 'bench/egress-client.ts'), JSON.stringify(spec)]);
  await c.waitFor(/^measuring$/, (spec.warmupSeconds + 30) * 1000);
  const c0 = cpuMs(proxyPid);
  const line = await c.waitFor(/^result (.*)$/, (spec.seconds + 30) * 1000);
  const cpu = cpuMs(proxyPid) - c0;
  await new Promise((r) => (c.exited === null ? c.proc.once('exit', r) : r(null)));
  const j = JSON.parse(line[1]!) as ClientResult;
  const errors = j.errors + j.badStatus;
  return {
    rps: j.requests / j.seconds,
    p50: j.p50,
    p99: j.p99,
    requests: j.requests,
    errors,
    ...(proxyPid ? { cpuUsPerReq: (cpu * 1000) / Math.max(1, j.requests), cpuCore: cpu / 1000 / j.seconds } : {}),
    ...(errors ? { note: `client: ${j.errors} errors, ${j.badStatus} bad status; first: ${j.firstError}` } : {}),
  };
}

function clientSpec(env: Env, mode: Mode, route: Route, size: Size, conns: number, swap?: { placeholder: string; caFile: string }): ClientSpec {
  const https = mode !== 'http';
  const port = https ? env.httpsPort : env.httpPort;
  return {
    origin: `${https ? 'https' : 'http'}://${route.proxyPort ? route.host : '127.0.0.1'}:${port}`,
    path: size === 'small' ? '/small' : '/upload',
    method: size === 'small' ? 'GET' : 'POST',
    bodyBytes: size === 'small' ? 0 : UPLOAD,
    // Every HTTPS row sends the same headers; the origin checks the secret on all of them.
    headers: https ? { authorization: `Bearer ${swap ? swap.placeholder : SECRET}`, 'x-bench-expect-secret': '1' } : {},
    ...(route.proxyPort ? { proxy: `http://127.0.0.1:${route.proxyPort}` } : {}),
    ...(route.proxyAuth ? { proxyAuth: route.proxyAuth } : {}),
    caFiles: swap ? [swap.caFile] : [env.originCert],
    servername: mode === 'swap' ? 'swap.bench.test' : 'tunnel.bench.test',
    ...(route.proxyPort ? {} : { dialAddress: '127.0.0.1' }),
    conns,
    seconds: SECONDS,
    warmupSeconds: WARMUP,
  };
}

/** One request through the route before measuring, so a refusal shows as `n/a (why)` instead of a row of errors. */
async function probe(spec: ClientSpec): Promise<string | undefined> {
  if (!spec.proxy) return undefined;
  const https = spec.origin.startsWith('https:');
  const agent = new ProxyAgent({
    uri: spec.proxy,
    ...(spec.proxyAuth ? { token: spec.proxyAuth } : {}),
    proxyTunnel: https,
    requestTls: { ca: spec.caFiles.map((f) => readFileSync(f, 'utf8')), servername: spec.servername },
  });
  try {
    const res = await undiciRequest(new URL(spec.path, spec.origin), {
      dispatcher: agent,
      method: spec.method,
      headers: spec.headers,
      ...(spec.bodyBytes ? { body: Buffer.alloc(spec.bodyBytes, 0x78) } : {}),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) return `probe: HTTP ${res.statusCode} ${text.replace(/\s+/g, ' ').slice(0, 120)}`;
    return undefined;
  } catch (e) {
    const cause = (e as { cause?: Error }).cause;
    return `probe: ${(e as Error).message}${cause ? ` (${cause.message})` : ''}`;
  } finally {
    await agent.destroy();
  }
}

// ---------------------------------------------------------------------------
// The servers: origin, squid, tinyproxy, Bastion.

async function startOrigin(dir: string): Promise<Env & { origin: BenchChild }> {
  const cert = join(dir, 'origin-cert.pem');
  const key = join(dir, 'origin-key.pem');
  const r = spawnSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=tunnel.bench.test', '-addext', 'subjectAltName=DNS:tunnel.bench.test,DNS:swap.bench.test',
      '-keyout', key, '-out', cert,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl could not make the origin certificate: ${r.error?.message ?? r.stderr}`);
  const origin = new BenchChild('origin', process.execPath, [join(ROOT, 'bench/egress-origin.ts'), cert, key]);
  const [, hp, sp] = await origin.waitFor(/^listening http=(\d+) https=(\d+)/, 20_000);
  const wrk = which('wrk');
  return { dir, httpPort: Number(hp), httpsPort: Number(sp), originCert: cert, origin, ...(wrk ? { wrk } : {}) };
}

/** A folder the proxies write to: when run as root, squid drops to its cache_effective_user, so it must be world-writable. */
function proxyDir(dir: string, name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o755);
    chmodSync(d, 0o777);
  }
  return d;
}

async function startSquid(env: Env): Promise<{ child?: BenchChild; route: Route }> {
  const bin = which('squid', ['/usr/sbin', '/usr/local/sbin']);
  if (!bin) return { route: { host: 'plain.bench.test', na: `squid not installed: ${INSTALL_HINT}` } };
  const d = proxyDir(env.dir, 'squid');
  const port = await freePort();
  writeFileSync(join(d, 'hosts'), '127.0.0.1 plain.bench.test tunnel.bench.test swap.bench.test\n');
  const conf = join(d, 'squid.conf');
  writeFileSync(
    conf,
    [
      `http_port 127.0.0.1:${port}`,
      `pid_filename ${join(d, 'squid.pid')}`,
      // No caching at all: no cache_dir (no disk cache), nothing kept in memory.
      'cache deny all',
      'cache_mem 0 MB',
      // An access log like Bastion's audit record, in the temp dir, not a system path.
      `access_log stdio:${join(d, 'access.log')}`,
      `cache_log ${join(d, 'cache.log')}`,
      'cache_store_log none',
      'logfile_rotate 0',
      `coredump_dir ${d}`,
      // The bench names resolve like Bastion's egress.staticHosts: from a hosts file, no DNS query.
      `hosts_file ${join(d, 'hosts')}`,
      'http_access allow all',
      'shutdown_lifetime 0 seconds',
      'max_filedescriptors 4096',
      '',
    ].join('\n'),
  );
  const child = new BenchChild('squid', bin, ['-N', '-f', conf], { cwd: d });
  try {
    await waitForPort(port, child);
  } catch (e) {
    await child.stop();
    return { route: { host: 'plain.bench.test', na: `squid did not start: ${(e as Error).message}` } };
  }
  return { child, route: { host: 'plain.bench.test', proxyPort: port, ...(child.pid ? { proxyPid: child.pid } : {}) } };
}

async function startTinyproxy(env: Env): Promise<{ child?: BenchChild; route: Route }> {
  // tinyproxy has no hosts file: its URLs and CONNECT targets use the IP literal.
  const bin = which('tinyproxy', ['/usr/sbin', '/usr/local/bin']);
  if (!bin) return { route: { host: '127.0.0.1', na: `tinyproxy not installed: ${INSTALL_HINT}` } };
  const d = proxyDir(env.dir, 'tinyproxy');
  const port = await freePort();
  const conf = join(d, 'tinyproxy.conf');
  writeFileSync(
    conf,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 600',
      'MaxClients 256',
      `LogFile "${join(d, 'tinyproxy.log')}"`,
      // Not `Connect`: tinyproxy fsyncs every log line, which makes it about 5x slower here.
      'LogLevel Warning',
      `PidFile "${join(d, 'tinyproxy.pid')}"`,
      'Allow 127.0.0.1',
      `ConnectPort ${env.httpsPort}`,
      '',
    ].join('\n'),
  );
  const child = new BenchChild('tinyproxy', bin, ['-d', '-c', conf], { cwd: d });
  try {
    await waitForPort(port, child);
  } catch (e) {
    await child.stop();
    return { route: { host: '127.0.0.1', na: `tinyproxy did not start: ${(e as Error).message}` } };
  }
  return { child, route: { host: '127.0.0.1', proxyPort: port, ...(child.pid ? { proxyPid: child.pid } : {}) } };
}

interface BastionRoutes {
  child?: BenchChild;
  http: Route;
  tunnel: Route;
  swap: Route;
  swapCreds?: { placeholder: string; caFile: string };
}

function cli(args: readonly string[], cfg: string, input?: string): { ok: boolean; out: string; why: string } {
  const env = { ...process.env };
  delete env.BASTION_MASTER_KEY;
  const r = spawnSync(process.execPath, [join(ROOT, 'src/cli/main.ts'), ...args, '--config', cfg], {
    encoding: 'utf8',
    env,
    timeout: 60_000,
    ...(input === undefined ? {} : { input }),
  });
  const why = `\`bastion ${args.join(' ')}\` exited ${r.status ?? r.signal}: ${`${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n').slice(0, 3).join(' | ').slice(0, 240)}`;
  return { ok: r.status === 0, out: r.stdout ?? '', why };
}

async function startBastion(env: Env): Promise<BastionRoutes> {
  const d = join(env.dir, 'bastion');
  mkdirSync(d, { mode: 0o700 });
  const cfg = join(d, 'bastion.yaml');
  const [listen, egress] = [await freePort(), await freePort()];
  writeFileSync(
    cfg,
    `version: 1
server: { listen: 127.0.0.1:${listen}, egress: 127.0.0.1:${egress} }
store: { sqlite: ${join(d, 'bastion.db')} }
vault: { keyFile: ${join(d, 'master.key')} }
secrets: { bench: { hosts: [swap.bench.test] } }
egress:
  staticHosts: { plain.bench.test: [127.0.0.1], tunnel.bench.test: [127.0.0.1], swap.bench.test: [127.0.0.1] }
agents:
  bench:
    keys: [env:BENCH_AGENT_KEY]
    secrets: [bench]
    network: ["plain.bench.test:${env.httpPort}", "tunnel.bench.test:${env.httpsPort}", "swap.bench.test:${env.httpsPort}"]
    unsafeAllowPrivate: { ranges: [127.0.0.0/8] }
`,
  );
  const auth = basic('bench', AGENT_KEY);
  const routes = (na?: string, swapNa?: string): BastionRoutes => ({
    http: { host: 'plain.bench.test', proxyAuth: auth, ...(na ? { na } : {}) },
    tunnel: { host: 'tunnel.bench.test', proxyAuth: auth, ...(na ? { na } : {}) },
    swap: { host: 'swap.bench.test', proxyAuth: auth, ...(na || swapNa ? { na: [swapNa, na].filter(Boolean).join('; ') } : {}) },
  });

  // The swap needs the secret stored, the agent's placeholder, and the local CA the client trusts.
  let swapNa: string | undefined;
  let swapCreds: BastionRoutes['swapCreds'];
  const added = cli(['secret', 'add', 'bench', '--hosts', 'swap.bench.test'], cfg, SECRET);
  if (!added.ok) swapNa = added.why;
  else {
    const ph = cli(['secret', 'placeholder', 'bench', '--agent', 'bench'], cfg);
    const placeholder = ph.out.match(/bst_ph_\S+/)?.[0];
    const ca = cli(['ca', 'export'], cfg);
    const pem = ca.out.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/)?.[0];
    if (!placeholder) swapNa = ph.ok ? '`bastion secret placeholder` printed no bst_ph_ placeholder' : ph.why;
    else if (!pem) swapNa = ca.ok ? '`bastion ca export` printed no PEM certificate' : ca.why;
    else {
      const caFile = join(d, 'bastion-ca.pem');
      writeFileSync(caFile, `${pem}\n`);
      swapCreds = { placeholder, caFile };
    }
  }

  const bastionEnv: NodeJS.ProcessEnv = { ...process.env, BENCH_AGENT_KEY: AGENT_KEY, NODE_EXTRA_CA_CERTS: env.originCert };
  delete bastionEnv.BASTION_MASTER_KEY; // the key file is used (created by `secret add` or on first start)
  const child = new BenchChild(
    'bastion',
    process.execPath,
    [...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean), join(ROOT, 'src/cli/main.ts'), 'serve', '--config', cfg],
    // Bastion dials the origin over TLS (tunnel: the client checks; intercept: Bastion checks): trust the origin's self-signed cert.
    { env: bastionEnv, cwd: d },
  );
  try {
    const ready = child.waitFor(/egress proxy listening on (?:http:\/\/)?\[?([0-9.:a-f]+?)\]?:(\d+)/i, 30_000);
    // Once the main listener is up, the egress line should follow promptly.
    const main = child.waitFor(/serving MCP at/, 30_000).then(async () => {
      await new Promise((r) => setTimeout(r, 5000));
      throw new Error('the main listener started but no "egress proxy listening on" line followed within 5 s');
    });
    ready.catch(() => undefined);
    main.catch(() => undefined);
    const m = await Promise.race([ready, main]);
    const port = Number(m[2]);
    const r = routes(undefined, swapNa);
    for (const route of [r.http, r.tunnel, r.swap]) {
      route.proxyPort = port;
      if (child.pid) route.proxyPid = child.pid;
    }
    return { ...r, child, ...(swapCreds ? { swapCreds } : {}) };
  } catch (e) {
    const why = `egress proxy did not start (${(e as Error).message.replace(/^bastion: /, '')}${child.lastLines(3) ? `; last output: ${child.lastLines(3).slice(0, 300)}` : ''})`;
    await child.stop();
    return routes(why, swapNa);
  }
}

// ---------------------------------------------------------------------------
// Output.

const fmt = (n: number | undefined, d = 2): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));

function printTable(rows: readonly Row[]): void {
  const head = ['mode', 'proxy', 'size', 'conns', 'req/s', 'p50 ms', 'p99 ms', 'ratio', '+p50 ms', 'proxy CPU µs/req', 'notes'];
  const body = rows.map((r) => {
    const mode = r.proxy === 'direct' && r.mode === 'tunnel' ? 'https' : r.mode;
    if (r.na) return [mode, r.proxy, r.size, String(r.conns), `n/a (${r.na})`];
    const m = r.m!;
    const ratio = r.base?.m && r.base !== r ? `${(m.rps / r.base.m.rps).toFixed(3)}x` : r.proxy === 'direct' ? '1x' : '-';
    const added = r.base?.m && r.base !== r ? fmt(m.p50 - r.base.m.p50, 3) : '';
    const cpu = m.cpuUsPerReq === undefined || Number.isNaN(m.cpuUsPerReq) ? '' : `${m.cpuUsPerReq.toFixed(0)} (${((m.cpuCore ?? 0) * 100).toFixed(0)}% core)`;
    const notes = m.errors ? `ERRORS ${m.errors}/${m.requests}${m.note ? `: ${m.note}` : ''}` : (m.note ?? '');
    return [mode, r.proxy, r.size, String(r.conns), m.rps.toFixed(0), fmt(m.p50, 3), fmt(m.p99, 3), ratio, added, cpu, notes];
  });
  // Every cell but a row's last sets its column's width (an n/a row's last cell runs on).
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (i < b.length - 1 ? (b[i] ?? '').length : 0))));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join(' | ')
      .trimEnd();
  console.log(line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const b of body) console.log(line(b));
}

function summary(rows: readonly Row[]): void {
  const find = (mode: Mode, proxy: string, size: Size, conns: number): Row | undefined =>
    rows.find((r) => r.mode === mode && r.proxy === proxy && r.size === size && r.conns === conns);
  const ratio = (r: Row | undefined): number | undefined => (r?.m && r.base?.m ? r.m.rps / r.base.m.rps : undefined);
  const x = (n: number | undefined): string => (n === undefined ? 'n/a' : `${n.toFixed(3)}x`);
  console.log('\nSummary against the issue\'s targets (ratios = req/s through the proxy ÷ req/s direct, same load generator, this run):');
  for (const [mode, what] of [
    ['http', 'plain HTTP'],
    ['tunnel', 'HTTPS tunnel (CONNECT)'],
  ] as const) {
    for (const size of ['small', '1MiB'] as const) {
      for (const conns of CONNS) {
        const b = find(mode, 'bastion', size, conns);
        const s = find(mode, 'squid', size, conns);
        const rb = ratio(b);
        const rs = ratio(s);
        const verdict = rb === undefined || rs === undefined ? 'not measured' : rb >= rs ? 'MET (≥ squid)' : `NOT MET (${((rb / rs) * 100).toFixed(0)}% of squid)`;
        const t = find(mode, 'tinyproxy', size, conns);
        if (!b && !s && !t) continue;
        console.log(`  ${what.padEnd(22)} ${size.padEnd(5)} c${String(conns).padEnd(2)}: bastion ${x(rb).padEnd(7)} squid ${x(rs).padEnd(7)} tinyproxy ${x(ratio(t)).padEnd(7)} → ${verdict}`);
      }
    }
  }
  const target = 5 * MITMPROXY_REF;
  for (const size of ['small', '1MiB'] as const) {
    for (const conns of CONNS) {
      const row = find('swap', 'bastion', size, conns);
      if (!row) continue;
      const r = ratio(row);
      const verdict = r === undefined ? 'not measured' : r >= target ? `MET (${(r / MITMPROXY_REF).toFixed(1)}x mitmproxy)` : `NOT MET (${(r / MITMPROXY_REF).toFixed(1)}x mitmproxy)`;
      console.log(`  ${'intercept + swap'.padEnd(22)} ${size.padEnd(5)} c${String(conns).padEnd(2)}: bastion ${x(r).padEnd(7)} target ≥ ${target.toFixed(3)}x (5 × the issue's mitmproxy ${MITMPROXY_REF}x; not run here) → ${verdict}`);
    }
  }
  if (!find('http', 'squid', 'small', 16) && !find('http', 'squid', 'small', 1)) return;
  const sq16 = ratio(find('http', 'squid', 'small', 16));
  const sq1 = find('http', 'squid', 'small', 1);
  const tp16 = ratio(find('http', 'tinyproxy', 'small', 16));
  console.log(
    `  For scale (issue: squid ≈0.24x at c16 and +0.12 ms/hop at c1, tinyproxy ≈0.10x): this run squid ${x(sq16)} at c16, ` +
      `+${sq1?.m && sq1.base?.m ? (sq1.m.p50 - sq1.base.m.p50).toFixed(3) : 'n/a'} ms p50 at c1; tinyproxy ${x(tp16)} at c16.`,
  );
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const load0 = loadavg()[0] ?? 0; // before any of the bench's processes run
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-egress-'));
  tempDir = dir;
  const rows: Row[] = [];
  try {
    const env = await startOrigin(dir);
    const [squid, tiny, bastion] = [await startSquid(env), await startTinyproxy(env), await startBastion(env)];
    const missing = [!env.wrk && 'wrk', squid.route.na?.includes('not installed') && 'squid', tiny.route.na?.includes('not installed') && 'tinyproxy'].filter(Boolean);
    console.log(
      `egress benchmark: ${SECONDS} s per row after ${WARMUP} s warm-up; connections ${CONNS.join(', ')}; node ${process.version}; ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? '?'})`,
    );
    console.log(
      `load: plain HTTP with ${env.wrk ? 'wrk (-t1, keep-alive)' : 'the node client (wrk not installed)'}, HTTPS with bench/egress-client.ts (undici, keep-alive); origin http :${env.httpPort}, https :${env.httpsPort}`,
    );
    if (missing.length) console.log(`missing: ${missing.join(', ')} — install with \`${INSTALL_HINT}\` (Debian/Ubuntu) for those rows`);
    const proxies = (mode: Mode): [string, Route][] => [
      ['squid', squid.route],
      ['tinyproxy', tiny.route],
      ...(mode === 'http' ? [['bastion', bastion.http] as [string, Route]] : []),
      ...(mode === 'tunnel' ? [['bastion', bastion.tunnel] as [string, Route]] : []),
    ];
    const origin = { host: '127.0.0.1' } satisfies Route;
    const probed = new Map<string, string | undefined>();
    const checks = { requests: 0, secretChecked: 0, secretMismatches: 0, bodyMismatches: 0 };
    for (const mode of ['http', 'tunnel'] as const) {
      for (const size of ['small', '1MiB'] as const) {
        for (const conns of CONNS) {
          const base: Row = { mode, proxy: 'direct', size, conns };
          const targets: [string, Route, Mode][] = [...proxies(mode).map(([p, r]): [string, Route, Mode] => [p, r, mode])];
          if (mode === 'tunnel') targets.push(['bastion', bastion.swap, 'swap']);
          const wanted = targets.filter(([p, , md]) => !ONLY || ONLY.test(label({ mode: md, proxy: p, size, conns })));
          if (wanted.length === 0) continue;
          const measure = async (md: Mode, route: Route, pid?: number): Promise<Measure> => {
            const useWrk = md === 'http' && env.wrk;
            if (useWrk) return runWrk(env, route, size, conns);
            return runClient(clientSpec(env, md, route, size, conns, md === 'swap' ? bastion.swapCreds : undefined), pid);
          };
          process.stderr.write(`${label(base)} …`);
          const direct1 = await measure(mode, origin);
          base.base = base;
          rows.push(base);
          for (const [proxy, route, md] of wanted) {
            const row: Row = { mode: md, proxy, size, conns, base };
            rows.push(row);
            if (route.na) {
              row.na = route.na;
              continue;
            }
            const spec = clientSpec(env, md, route, size, conns, md === 'swap' ? bastion.swapCreds : undefined);
            const key = `${md} ${proxy} ${size}`;
            if (!probed.has(key)) probed.set(key, await probe(spec));
            const bad = probed.get(key);
            if (bad) {
              row.na = bad;
              continue;
            }
            process.stderr.write(` ${md === mode ? '' : `${md} `}${proxy} …`);
            try {
              row.m = await measure(md, route, route.proxyPid);
            } catch (e) {
              row.na = (e as Error).message;
            }
            // A proxy that died under the load is a finding, not a slow row: say so with its last words.
            if (proxy === 'bastion' && bastion.child && bastion.child.exited !== null) {
              row.na = `bastion exited (${bastion.child.exited}) during this row; last output: ${bastion.child.lastLines(8).slice(0, 1500)}`;
              delete row.m;
            }
          }
          // The direct baseline runs before and after the proxies and is their mean, so drift
          // (another process on the box, CPU frequency) weighs on both sides alike.
          process.stderr.write(' direct …');
          const direct2 = await measure(mode, origin);
          base.m = {
            rps: (direct1.rps + direct2.rps) / 2,
            p50: (direct1.p50 + direct2.p50) / 2,
            p99: Math.max(direct1.p99, direct2.p99),
            requests: direct1.requests + direct2.requests,
            errors: direct1.errors + direct2.errors,
            note: ['direct runs before/after:', direct1.rps.toFixed(0), direct2.rps.toFixed(0), 'req/s', ...[direct1.note, direct2.note].filter(Boolean).map((n) => `; ${n}`)].join(' '),
          };
          // The origin's own checks: the secret arrived swapped, the uploads arrived whole.
          const stats = (await (await fetch(`http://127.0.0.1:${env.httpPort}/__stats`)).json()) as {
            requests: number;
            secretChecked: number;
            secretMismatches: number;
            bodyMismatches: number;
            lastMismatch: string;
          };
          for (const k of ['requests', 'secretChecked', 'secretMismatches', 'bodyMismatches'] as const) checks[k] += stats[k];
          if (stats.secretMismatches || stats.bodyMismatches) {
            console.error(`\nERROR: the origin saw ${stats.secretMismatches} secret mismatches and ${stats.bodyMismatches} incomplete uploads during "${label(base)}" rows (last: ${stats.lastMismatch})`);
            process.exitCode = 1;
          }
          process.stderr.write(' done\n');
        }
      }
    }
    console.log('');
    printTable(rows);
    console.log(
      'ratio = req/s ÷ direct req/s of the same mode, size and conns (same load generator); +p50 = p50 minus direct p50 (added latency per hop);\n' +
        'proxy CPU = CPU time of the proxy process per request (all threads), with its average share of one core; n/a rows say why they were not measured.\n' +
        'squid resolves the bench names from a hosts file (like Bastion\'s egress.staticHosts); tinyproxy has none and is given 127.0.0.1 URLs/CONNECT targets.',
    );
    summary(rows);
    console.log(
      `Origin checks: ${checks.requests} requests served; ${checks.secretChecked} HTTPS requests checked for \`Authorization: Bearer ${SECRET}\` ` +
        `(through Bastion's swap the agent sent its placeholder): ${checks.secretMismatches} mismatches; ${checks.bodyMismatches} incomplete 1 MiB uploads.`,
    );
    const load1 = loadavg()[0] ?? 0;
    console.log(
      `Load average (1 min) before the bench ${load0.toFixed(2)}, at its end ${load1.toFixed(2)} (its own load generator, proxy and origin add about 3) on ${cpus().length} CPUs` +
        `${load0 > cpus().length / 2 || load1 > 3 + cpus().length / 2 ? ' — something else was using the box; expect noisy figures' : ''}.`,
    );
    if (bastion.child?.pid) console.log(`Bastion used ${(cpuMs(bastion.child.pid) / 1000).toFixed(1)} s of CPU in all (pid ${bastion.child.pid}).`);
  } finally {
    await stopAll();
    if (process.env.BENCH_KEEP_TMP === '1') console.log(`temp dir kept: ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
