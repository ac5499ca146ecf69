/**
 * Helpers for end-to-end tests over real sockets: start MCP servers as child processes on loopback,
 * find free ports, connect an SDK client with a bearer key.
 *
 * Every child process started here is killed by its `close()`, when the test process exits, and,
 * should the test process be killed outright, by itself: it gets a stdin pipe and a preload
 * (exit-on-stdin-eof.ts) that exits on EOF. Call `close()` from `t.after()` / `after()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';

const repoRoot = join(import.meta.dirname, '..', '..');
export const fixtureServerPath = join(repoRoot, 'test', 'fixtures', 'conformance-server', 'server.ts');
export const everythingServerPath = join(repoRoot, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
const loopbackPreloadPath = join(import.meta.dirname, 'loopback-listen.ts');
const exitWithParentPreloadPath = join(import.meta.dirname, 'exit-on-stdin-eof.ts');

const startTimeoutMs = 15_000;
const stopGraceMs = 3_000;
const probeTimeoutMs = 1_000;
const probeIntervalMs = 50;
const stderrTailChars = 16 * 1024;
const portAttempts = 3;

export interface ManagedServer {
  /** The MCP endpoint, e.g. http://127.0.0.1:PORT/mcp. */
  url: URL;
  process: ChildProcess;
  /** Last 16 KiB the server wrote to stderr, for assertion messages. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. Idempotent. */
  close(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A TCP port on 127.0.0.1 that was free a moment ago (another process may still take it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Starts test/fixtures/conformance-server/server.ts in Streamable HTTP mode. The fixture binds port 0
 * itself and announces the port, so there is no window in which another process can take it.
 */
export function startFixtureHttp(): Promise<ManagedServer> {
  return startAnnouncingServer(fixtureServerPath);
}

/**
 * Starts a fixture script with `--http 0` that binds port 0 itself and announces
 * `{"listening": url}` on stdout (the 1.x and the 2026-07-28 conformance fixtures), and waits
 * until it answers. It dies with the test process.
 */
export async function startAnnouncingServer(script: string): Promise<ManagedServer> {
  const child = spawn(process.execPath, ['--import', exitWithParentPreloadPath, script, '--http', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const managed = manage(child);
  try {
    const url = await readAnnouncedUrl(child, managed.stderr);
    await waitUntilAnswering(url, child, managed.stderr);
    return { ...managed, url };
  } catch (err) {
    await managed.close();
    throw err;
  }
}

/**
 * Starts @modelcontextprotocol/server-everything as `mcp-server-everything streamableHttp` with
 * `PORT` from the environment (its only setting), endpoint /mcp. It listens on all interfaces by
 * itself; a preload pins it to 127.0.0.1.
 */
export async function startEverythingHttp(): Promise<ManagedServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < portAttempts; attempt++) {
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', loopbackPreloadPath, '--import', exitWithParentPreloadPath, everythingServerPath, 'streamableHttp'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, PORT: String(port) },
    });
    const managed = manage(child);
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    try {
      await waitUntilAnswering(url, child, managed.stderr);
      return { ...managed, url };
    } catch (err) {
      // Most likely the port was taken between freePort() and listen(): try another.
      lastError = err;
      await managed.close();
    }
  }
  throw lastError;
}

export interface ConnectOptions {
  /** Client capabilities to declare, e.g. `{ sampling: {}, elicitation: {} }`. Default none. */
  capabilities?: ClientCapabilities;
  name?: string;
}

/** An SDK client connected over Streamable HTTP, sending `Authorization: Bearer <key>` on every request. */
export async function connectClient(url: URL, key: string, opts: ConnectOptions = {}): Promise<Client> {
  const client = new Client({ name: opts.name ?? 'bastion-e2e-client', version: '0.0.0' }, { capabilities: opts.capabilities ?? {} });
  const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  await client.connect(transport);
  return client;
}

function manage(child: ChildProcess): Omit<ManagedServer, 'url'> {
  live.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-stderrTailChars);
  });
  // Keep draining stdout so a chatty server never blocks on a full pipe. Flowing data is only
  // emitted on a later tick, so a reader attached in the same tick as spawn() misses nothing.
  child.stdout?.resume();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  void exited.then(() => live.delete(child));
  let closing: Promise<void> | undefined;
  return {
    process: child,
    stderr: () => stderr,
    close() {
      closing ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), stopGraceMs);
          await exited;
          clearTimeout(timer);
        }
        live.delete(child);
      })();
      return closing;
    },
  };
}

function readAnnouncedUrl(child: ChildProcess, stderr: () => string): Promise<URL> {
  return new Promise((resolve, reject) => {
    if (child.stdout === null) return reject(new Error('fixture: no stdout pipe'));
    const lines = createInterface({ input: child.stdout });
    const done = (err: Error | undefined, url?: URL): void => {
      clearTimeout(timer);
      child.removeListener('exit', onExit);
      lines.close();
      // Closing readline may pause the stream; later output must keep draining.
      child.stdout?.resume();
      if (err !== undefined) reject(err);
      else resolve(url as URL);
    };
    const onExit = (code: number | null): void => done(new Error(`fixture exited (${code}) before listening:\n${stderr()}`));
    const timer = setTimeout(() => done(new Error(`fixture did not announce its port within ${startTimeoutMs} ms:\n${stderr()}`)), startTimeoutMs);
    child.once('exit', onExit);
    lines.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { listening?: unknown };
        if (typeof msg.listening === 'string') done(undefined, new URL(msg.listening));
      } catch {
        // not the announcement
      }
    });
  });
}

/** Resolves once an HTTP request to `url` gets any response; rejects if the child exits first. */
async function waitUntilAnswering(url: URL, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + startTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before answering ${url.href}:\n${stderr()}`);
    }
    if (await probe(url)) return;
    await new Promise((r) => setTimeout(r, probeIntervalMs));
  }
  throw new Error(`server did not answer ${url.href} within ${startTimeoutMs} ms:\n${stderr()}`);
}

function probe(url: URL): Promise<boolean> {
  return new Promise((resolve) => {
    // agent: false, so no keep-alive socket outlives the probe.
    const req = request(url, { method: 'GET', agent: false, timeout: probeTimeoutMs, headers: { accept: 'text/event-stream' } }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
