/**
 * The scale harness's cluster: several real `bastion serve` processes on one
 * config (one shared store, SQLite file or PostgreSQL schema; optionally one
 * Redis), each on ephemeral loopback ports, plus the faults the harness injects:
 * `kill -9` of an instance, and a TCP proxy that stands between Bastion and a
 * backing service (PostgreSQL) and can refuse connections to simulate an
 * outage without touching the machine's own server, which other tests use.
 *
 * Used by scripts/test-scale.ts and bench/scale.ts; not a test file itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'src', 'cli', 'main.ts');

/** The agent keys the instances accept (secret references `env:SCALE_KEY`, `env:SCALE_KEY_NOMODEL`). */
export const SCALE_KEY = 'scale-key-0123456789abcdef-agent';
export const NOMODEL_KEY = 'scale-key-0123456789abcdef-nomodel';
/** A KEK (base64 of 32 bytes) shared by every instance, so the vault and the signing key open everywhere. */
export const MASTER_KEY = Buffer.alloc(32, 11).toString('base64');

/** Where the instances' store lives: a SQLite file, or a PostgreSQL URL (usually through a {@link FaultProxy}). */
export type StoreSpec = { readonly kind: 'sqlite'; readonly path: string } | { readonly kind: 'postgres'; readonly url: string };

/** What the config points at. Ports are loopback ports of the harness's servers. */
export interface ScaleConfigSpec {
  readonly dir: string;
  readonly store: StoreSpec;
  /** Redis URL and key prefix; omitted: no Redis (the instances share only the store). */
  readonly redis?: { readonly url: string; readonly keyPrefix: string };
  /** The MCP upstream (Streamable HTTP), e.g. `http://127.0.0.1:PORT/mcp`. */
  readonly upstreamUrl: string;
  /** The mock model provider's base, without `/v1`. */
  readonly providerUrl: string;
  /** The loopback origin the network door allows (`echo.scale.test:<port>`; `deny.scale.test` is not allowed). */
  readonly originPort: number;
}

/**
 * Writes `dir/bastion.yaml`: agent `scale` (tool `up__small`, the model door to
 * the mock provider, network `echo.scale.test:<originPort>`), agent `nomodel`
 * (no model: its model requests are refused), arguments recorded (redacted) so
 * a tool call's record names its request id. Returns the file and the env the
 * instances need (keys, KEK, the PostgreSQL URL as `SCALE_PG_URL`).
 */
export function writeScaleConfig(spec: ScaleConfigSpec): { file: string; env: Record<string, string> } {
  const file = join(spec.dir, 'bastion.yaml');
  const big = 1_000_000_000;
  const yaml = [
    'version: 1',
    'server:',
    '  listen: 127.0.0.1:0',
    '  egress: 127.0.0.1:0',
    // Load from one agent: the per-agent caps (429) are tested elsewhere, not what this run measures.
    '  sessions: { requestsPerSecondPerAgent: 1000000, burstPerAgent: 1000000, maxConcurrentCallsPerAgent: 100000 }',
    'store:',
    spec.store.kind === 'sqlite' ? `  sqlite: ${JSON.stringify(spec.store.path)}` : '  postgres: env:SCALE_PG_URL',
    ...(spec.redis ? ['redis:', `  url: ${JSON.stringify(spec.redis.url)}`, `  keyPrefix: ${JSON.stringify(spec.redis.keyPrefix)}`] : []),
    'audit:',
    '  recordArguments: redacted',
    'egress:',
    '  staticHosts: { echo.scale.test: [127.0.0.1], deny.scale.test: [127.0.0.1] }',
    'modelDoor:',
    '  rateLimits:',
    `    perUser: { requests: { points: ${big}, windowS: 60 }, tokens: { points: ${big}, windowS: 3600 } }`,
    `    perAgent: { requests: { points: ${big}, windowS: 60 } }`,
    'agents:',
    '  scale:',
    '    keys: [env:SCALE_KEY]',
    '    tools: ["up__small"]',
    `    network: ["echo.scale.test:${spec.originPort}"]`,
    '    unsafeAllowPrivate: { ranges: [127.0.0.0/8] }',
    `    model: { provider: openai, baseUrl: ${JSON.stringify(`${spec.providerUrl}/v1`)} }`,
    '  nomodel:',
    '    keys: [env:SCALE_KEY_NOMODEL]',
    '    tools: ["up__small"]',
    'upstreams:',
    '  up:',
    `    url: ${JSON.stringify(spec.upstreamUrl)}`,
    '',
  ].join('\n');
  writeFileSync(file, yaml);
  const env: Record<string, string> = { SCALE_KEY, SCALE_KEY_NOMODEL: NOMODEL_KEY, BASTION_MASTER_KEY: MASTER_KEY };
  if (spec.store.kind === 'postgres') env.SCALE_PG_URL = spec.store.url;
  return { file, env };
}

/** One `bastion serve` process. */
export class BastionInstance {
  readonly name: string;
  readonly child: ChildProcess;
  /** The main listener (MCP at `/mcp`, the model door at `/v1`, `/readyz`). */
  readonly url: URL;
  /** The egress proxy, `host:port`. */
  readonly proxy: { host: string; port: number };
  /** Every line it printed (stdout and stderr), the last 400 kept. */
  readonly lines: string[];
  /** Resolves with the exit code (or signal name) once it exited. */
  readonly exited: Promise<number | string>;

  private constructor(name: string, child: ChildProcess, url: URL, proxy: { host: string; port: number }, lines: string[], exited: Promise<number | string>) {
    this.name = name;
    this.child = child;
    this.url = url;
    this.proxy = proxy;
    this.lines = lines;
    this.exited = exited;
  }

  /**
   * Starts `node src/cli/main.ts serve --config FILE --listen 127.0.0.1:0 --egress-listen 127.0.0.1:0`
   * and resolves once both listeners are up (the egress proxy's line comes last). Every line it
   * prints goes to `logFile` when given; access-log lines are not kept in {@link BastionInstance.lines}.
   * @throws Error when it exits or is not serving within `timeoutMs` (default 60 000), with its last lines.
   */
  static start(name: string, file: string, env: Record<string, string>, opts: { timeoutMs?: number; logFile?: string } = {}): Promise<BastionInstance> {
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const out = opts.logFile === undefined ? undefined : createWriteStream(opts.logFile);
    const child = spawn(process.execPath, [CLI, 'serve', '--config', file, '--listen', '127.0.0.1:0', '--egress-listen', '127.0.0.1:0'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines: string[] = [];
    const keep = (l: string): void => {
      out?.write(`${l}\n`);
      if (l.includes('"msg":"access"')) return;
      lines.push(l);
      if (lines.length > 400) lines.shift();
    };
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, sig) => {
        out?.end();
        resolve(code ?? sig ?? -1);
      }),
    );
    createInterface({ input: child.stderr! }).on('line', keep);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${name}: not serving after ${timeoutMs} ms:\n${lines.slice(-20).join('\n')}`));
      }, timeoutMs);
      let url: URL | undefined;
      createInterface({ input: child.stdout! }).on('line', (line) => {
        keep(line);
        const m = /^Bastion is serving MCP at (http:\/\/\S+)$/.exec(line);
        if (m) url = new URL(m[1]!);
        const p = /^Bastion egress proxy listening on (127\.0\.0\.1):(\d+) /.exec(line);
        if (p && url !== undefined) {
          clearTimeout(timer);
          resolve(new BastionInstance(name, child, url, { host: p[1]!, port: Number(p[2]) }, lines, exited));
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${name}: exited ${code} before serving:\n${lines.slice(-20).join('\n')}`));
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resident set size in KiB (VmRSS from /proc/PID/status), NaN once it exited. */
  rssKiB(): number {
    try {
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      return m ? Number(m[1]) : NaN;
    } catch {
      return NaN;
    }
  }

  /** CPU ms (user + system, all threads) used so far, from /proc/PID/stat (USER_HZ 100); NaN once it exited. */
  cpuMs(): number {
    try {
      const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    } catch {
      return NaN;
    }
  }

  /** `kill -9`: a crash, no clean shutdown. Resolves once it is gone. */
  async crash(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /**
   * SIGTERM (the graceful stop: listeners closed, audit flushed, `serve.stop` recorded) and waits up
   * to `timeoutMs` (default 30 000); past it SIGKILL. Resolves with the exit code (0: clean).
   */
  async stop(timeoutMs = 30_000): Promise<number | string> {
    if (!this.alive) return this.exited;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(t);
    return code;
  }

  /** GET /readyz: the status (0 when it did not answer within 2 s) and the body. */
  readyz(): Promise<{ status: number; body: string }> {
    return this.#get('/readyz');
  }

  /**
   * GET /metrics (served without a key on loopback) and sums the samples of the named families
   * by name (labels dropped except `door`/`durability`, kept as `name{label}`). Empty when it did not answer.
   */
  async metrics(): Promise<Record<string, number>> {
    const r = await this.#get('/metrics');
    const out: Record<string, number> = {};
    if (r.status !== 200) return out;
    for (const line of r.body.split('\n')) {
      const m = /^(bastion_audit_[a-z_]+|bastion_requests_total)(?:\{([^}]*)\})? ([0-9.e+-]+)$/.exec(line);
      if (!m) continue;
      const label = /(?:door|durability)="([^"]+)"/.exec(m[2] ?? '')?.[1];
      const k = label === undefined ? m[1]! : `${m[1]}{${label}}`;
      out[k] = (out[k] ?? 0) + Number(m[3]);
    }
    return out;
  }

  #get(path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
      const req = request({ host: this.url.hostname, port: this.url.port, path, timeout: 2_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: 0, body }));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve({ status: 0, body: '' }));
      req.end();
    });
  }
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target`: while {@link FaultProxy.up}
 * it pipes each connection through; {@link FaultProxy.cut} destroys every open
 * connection and resets each new one until {@link FaultProxy.restore}. To the
 * client this is the service going away and coming back on the same address.
 */
export class FaultProxy {
  readonly #server: Server;
  readonly #target: { host: string; port: number };
  readonly #open = new Set<Socket>();
  #up = true;
  /** Connections accepted and reset while cut. */
  refused = 0;

  private constructor(server: Server, target: { host: string; port: number }) {
    this.#server = server;
    this.#target = target;
  }

  /** Starts a proxy to `target` on an ephemeral loopback port. */
  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const accept: { to?: (client: Socket) => void } = {};
    const server = createServer((client) => accept.to?.(client));
    const self = new FaultProxy(server, target);
    accept.to = (client) => self.#accept(client);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return self;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  get up(): boolean {
    return this.#up;
  }

  #accept(client: Socket): void {
    client.on('error', () => undefined);
    if (!this.#up) {
      this.refused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.#target.port, this.#target.host);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    this.#open.add(client);
    this.#open.add(upstream);
    client.once('close', () => this.#open.delete(client));
    upstream.once('close', () => this.#open.delete(upstream));
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** The outage: open connections reset, new ones reset on accept. */
  cut(): void {
    this.#up = false;
    for (const s of this.#open) s.resetAndDestroy();
    this.#open.clear();
  }

  /** The service is back: new connections go through again. */
  restore(): void {
    this.#up = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
