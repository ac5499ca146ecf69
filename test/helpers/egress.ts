/**
 * The network door in tests: a real gateway with its egress proxy on an
 * ephemeral loopback port (and the main listener for the base-URL mode), and
 * loopback origin servers with their own certificates (made by openssl) that
 * stand in for public hosts. Names reach them through `egress.staticHosts` and
 * `unsafeAllowPrivate` in the test config, never by weakening a default.
 */
import { execFile, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.ts';
import { openNetworkDoor, type NetworkDoor } from '../../src/egress/door.ts';
import { loadVaultKey } from '../../src/vault/kek.ts';
import type { EgressAlert } from '../../src/egress/proxy.ts';
import type { Lookup } from '../../src/egress/ssrf-classify.ts';
import { Gateway } from '../../src/server/gateway.ts';
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { ModelDoor } from '../../src/model/door.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { ROOT, tempDir } from './gateway.ts';
import { closeServer, listenLoopback } from './servers.ts';

/** A certificate and key (PEM) for `names`, self-signed, P-256, made by openssl. */
export function makeCert(dir: string, names: readonly string[], stem = 'origin'): { cert: string; key: string; certFile: string } {
  const keyFile = join(dir, `${stem}.key`);
  const certFile = join(dir, `${stem}.crt`);
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
    '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile };
}

/** What an origin received. Headers lower-case. */
export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

export interface Origin {
  readonly port: number;
  readonly received: Received[];
  close(): Promise<void>;
}

/**
 * An origin server on 127.0.0.1 (HTTPS when `tls` is given). Paths:
 * `/reset` destroys the connection; `/echo` answers the request's headers and
 * body as JSON; `/redirect?to=URL` answers 302; `/gzip-echo` answers the
 * echo gzip-compressed; anything else answers `{"ok":true}`.
 */
export async function startOrigin(tls?: { cert: string; key: string }): Promise<Origin> {
  const received: Received[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = (req.url ?? '').split('?')[0];
      if (path === '/reset') return void req.socket.destroy();
      if (path === '/redirect') {
        const to = new URL(req.url ?? '', 'http://x').searchParams.get('to') ?? '/';
        res.writeHead(302, { location: to });
        return void res.end();
      }
      if (path === '/echo' || path === '/gzip-echo') {
        const text = JSON.stringify({ headers: req.headers, body: body.toString('utf8'), url: req.url });
        if (path === '/gzip-echo') {
          void import('node:zlib').then(({ gzipSync }) => {
            res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
            res.end(gzipSync(text));
          });
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(text);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  };
  const server: Server = tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler) : createHttpServer(handler);
  return { port: await listenLoopback(server), received, close: () => closeServer(server) };
}

/**
 * HTTPS origins on 127.0.0.1, one for each name in `hosts`, each with its own
 * certificate for that name; `upstreamCa` holds the certificates (PEM, same
 * order) for `startEgress`.
 */
export async function startHttpsOrigins<const H extends readonly string[]>(hosts: H): Promise<{ origins: { -readonly [K in keyof H]: Origin }; upstreamCa: string[] }> {
  const certDir = tempDir();
  const certs = hosts.map((host, i) => makeCert(certDir, [host], `origin-${i}`));
  const origins = await Promise.all(certs.map((c) => startOrigin(c)));
  return { origins: origins as { -readonly [K in keyof H]: Origin }, upstreamCa: certs.map((c) => c.cert) };
}

/**
 * A YAML flow mapping for one upstream run from the misbehaving fixture
 * (test/fixtures/bad-upstream.ts), with `secretHosts` when given.
 */
export function badUpstreamYaml(secretHosts?: readonly string[]): string {
  const hosts = secretHosts === undefined ? '' : `, secretHosts: [${secretHosts.join(', ')}]`;
  return `{ command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(join(ROOT, 'test/fixtures/bad-upstream.ts'))}]${hosts} }`;
}

const runFile = promisify(execFile);

/**
 * Runs `curl -sS -i --max-time 10 <args>` and resolves with what it printed
 * (status lines, headers and body), also when curl exits non-zero.
 */
export async function curlRaw(args: readonly string[]): Promise<string> {
  try {
    return (await runFile('curl', ['-sS', '-i', '--max-time', '10', ...args], { encoding: 'utf8' })).stdout;
  } catch (err) {
    return (err as { stdout?: string }).stdout ?? '';
  }
}

export const EGRESS_KEY = 'egress-key-0123456789abcdef-agent';
export const OTHER_EGRESS_KEY = 'egress-key-0123456789abcdef-other';
/** A KEK for tests (base64 of 32 bytes), so no key file is written. */
export const TEST_MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

export interface TestEgress {
  readonly dir: string;
  readonly gateway: Gateway;
  readonly door: NetworkDoor;
  /** The egress proxy, `http://127.0.0.1:<port>`. */
  readonly proxyUrl: URL;
  /** The main listener (base-URL mode). */
  readonly running: RunningServer;
  readonly alerts: EgressAlert[];
  /** The model door (when started with `model: true`) and the admin alerts it raised. */
  readonly model?: ModelDoor;
  readonly adminAlerts: AdminAlert[];
  /** The local CA certificate (PEM) clients trust for intercepted hosts. */
  readonly caPem: string;
  readonly caFile: string;
  close(): Promise<void>;
}

/**
 * Starts a gateway from `yaml` (written into a temp folder with `files`) with
 * its network door; `upstreamCa` are the origins' certificates the proxy trusts.
 */
export async function startEgress(
  yaml: string,
  opts: { upstreamCa?: string[]; lookup?: Lookup; files?: Record<string, string>; model?: boolean; env?: Record<string, string> } = {},
): Promise<TestEgress> {
  const dir = tempDir(opts.files ?? {});
  const file = join(dir, 'bastion.yaml');
  writeFileSync(file, yaml);
  const env = { EGRESS_KEY, OTHER_EGRESS_KEY, BASTION_MASTER_KEY: TEST_MASTER_KEY, ...opts.env };
  const { config } = await loadConfig(file, { env, secrets: 'strict' });
  const kek = await loadVaultKey(config, env);
  const { gateway } = await Gateway.open(config, { kek, ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}), ...(opts.lookup ? { lookup: opts.lookup } : {}) });
  const alerts: EgressAlert[] = [];
  const door = await openNetworkDoor(gateway, {
    kek,
    ...(opts.upstreamCa ? { upstreamCa: opts.upstreamCa } : {}),
    onAlert: (a) => alerts.push(a),
  });
  const proxyUrl = await door.proxy.start('127.0.0.1', 0);
  const adminAlerts: AdminAlert[] = [];
  const model = opts.model ? await ModelDoor.open(gateway, { vault: door.vault, pasted: door.pasted, alerts: { notify: (a) => void adminAlerts.push(a) } }) : undefined;
  const running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 }, { egress: door.proxy, ...(model ? { model } : {}) });
  const caPem = door.issuer.caCertPem;
  const caFile = join(dir, 'bastion-ca.pem');
  writeFileSync(caFile, caPem);
  return {
    dir,
    gateway,
    door,
    proxyUrl,
    running,
    alerts,
    ...(model ? { model } : {}),
    adminAlerts,
    caPem,
    caFile,
    close: async () => {
      await door.proxy.close();
      await running.close();
      await model?.close();
      await gateway.close();
    },
  };
}

/** `Proxy-Authorization` for an agent key (Basic, as curl -x user:key@ sends it). */
export function proxyAuth(key: string = EGRESS_KEY, user = 'agent'): string {
  return `Basic ${Buffer.from(`${user}:${key}`).toString('base64')}`;
}

/**
 * Sends raw bytes to `port` and resolves with everything read until the peer
 * closes or `timeoutMs` passes. For malformed requests no client would send.
 */
export function rawExchange(port: number, chunks: readonly (string | Buffer)[], opts: { gapMs?: number; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const socket = netConnect({ host: '127.0.0.1', port });
    let out = '';
    const timer = setTimeout(() => socket.destroy(), opts.timeoutMs ?? 5_000);
    socket.on('data', (d: Buffer) => {
      out += d.toString('latin1');
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
    socket.on('connect', () => {
      void (async () => {
        for (const c of chunks) {
          if (socket.destroyed) return;
          socket.write(c);
          if (opts.gapMs) await new Promise((r) => setTimeout(r, opts.gapMs));
        }
      })();
    });
  });
}

/** The status code of a raw HTTP response text. */
export function statusOf(raw: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
}

/** The `bastion-reason` header of a raw HTTP response text. */
export function reasonOf(raw: string): string | undefined {
  return /\r\nbastion-reason: ([^\r\n]+)/i.exec(raw)?.[1];
}
