/**
 * The scale harness's traffic: closed-loop workers per instance and door that
 * send requests each carrying a unique id the audit record shows, and a ledger
 * of every request sent and what came back.
 *
 * How each request is found again in the audit chain (see ./reconcile.ts):
 * - tool door: `tools/call` with arguments `{n: id}`; the config records
 *   arguments (`audit.recordArguments: redacted`), so the record holds `args.n`.
 *   Allowed: `up__small`; denied: `up__large` (not in the agent's tools).
 * - model door: `Bastion-User: m-<id>`; the record's `user`. Denied requests
 *   come from agent `nomodel` (no model configured): counted, not named.
 * - network door: the record holds `detail.bytesOut` (the request body) and
 *   `detail.bytesIn` (the response body), so the request sends `id >> 8` bytes
 *   and asks the origin for `id & 255` bytes back (`x-reply-bytes`). Denied
 *   requests go to `deny.scale.test:<1024 + id>` (the record's target).
 */
import { Agent as HttpAgent, createServer, request, type IncomingMessage, type RequestOptions, type Server } from 'node:http';
import { once } from 'node:events';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { NOMODEL_KEY, SCALE_KEY, type BastionInstance } from './cluster.ts';

export type Door = 'tool' | 'model' | 'network';

/** What came back: `ok` (the action happened), `refused` (an answer saying no, with its reason), `none` (no answer). */
export type Result = 'ok' | 'refused' | 'none';

/** One request in the ledger. */
export interface Sent {
  readonly door: Door;
  /** What the request is meant to get: allowed, or denied by policy. */
  readonly intent: 'allow' | 'deny';
  /** Unique per door for the run. */
  readonly id: number;
  /** The key its audit record carries (./reconcile.ts `keyOf`), or null for requests only counted. */
  readonly key: string | null;
  readonly instance: string;
  /** The harness phase when it was sent and when its answer came. */
  readonly phase: string;
  ackPhase: string;
  readonly sentAt: number;
  ackAt: number;
  result: Result;
  /** The refusal's reason or error code (`audit.write_failed`, `ERR_STORE`, `tool.not_allowed`…), or the transport error. */
  reason: string;
  status: number;
}

/** Every request sent, and the current phase (set by the driver). */
export class Ledger {
  readonly entries: Sent[] = [];
  phase = 'start';
  readonly #next: Record<Door, number> = { tool: 1, model: 1, network: 1 };

  nextId(door: Door): number {
    return this.#next[door]++;
  }

  open(door: Door, intent: 'allow' | 'deny', id: number, key: string | null, instance: string): Sent {
    const s: Sent = { door, intent, id, key, instance, phase: this.phase, ackPhase: '', sentAt: Date.now(), ackAt: 0, result: 'none', reason: '', status: 0 };
    this.entries.push(s);
    return s;
  }

  close(s: Sent, result: Result, reason: string, status = 0): void {
    s.result = result;
    s.reason = reason;
    s.status = status;
    s.ackAt = Date.now();
    s.ackPhase = this.phase;
  }
}

/** The network door's id encoding: request body bytes and response body bytes (./reconcile.ts decodes it). */
export function egressSizes(id: number): { out: number; in: number } {
  return { out: id >> 8, in: id & 255 };
}

/** The port a denied network-door request names: its id, from 1024 up (ids past 64 511 wrap and show as duplicates). */
export function denyPort(id: number): number {
  return 1024 + (id % 64_511);
}

/** Most network-door ids (the body stays under 4 KiB). */
export const MAX_EGRESS_ID = 4096 * 256 - 1;

/**
 * The origin the network door forwards to: answers every request with
 * `x-reply-bytes` bytes (0-255) after reading its body.
 */
export async function startSizedOrigin(): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const n = Math.max(0, Math.min(255, Number(req.headers['x-reply-bytes'] ?? 0) | 0));
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(n) });
      res.end('b'.repeat(n));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Options of {@link runWorkers}. */
export interface LoadOptions {
  readonly ledger: Ledger;
  readonly instance: BastionInstance;
  readonly originPort: number;
  /** Closed-loop workers per door on this instance. */
  readonly perDoor: number;
  /** Share of requests meant to be denied (0-1). */
  readonly denyShare: number;
  /** Doors to load (default all). */
  readonly doors?: readonly Door[];
  /** Stops the workers: each finishes its request in flight and returns. */
  readonly signal: AbortSignal;
  /** Wait between a worker's requests, ms (default 0). */
  readonly pauseMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts the workers for one instance; resolves when `signal` aborts and every worker has returned. */
export async function runWorkers(o: LoadOptions): Promise<void> {
  const doors = o.doors ?? ['tool', 'model', 'network'];
  const agent = new HttpAgent({ keepAlive: true, maxSockets: o.perDoor * 2 });
  const workers: Promise<void>[] = [];
  for (let w = 0; w < o.perDoor; w++) {
    if (doors.includes('tool')) workers.push(toolWorker(o));
    if (doors.includes('model')) workers.push(loop(o, () => modelRequest(o, agent)));
    if (doors.includes('network')) workers.push(loop(o, () => egressRequest(o, agent)));
  }
  await Promise.all(workers);
  agent.destroy();
}

async function loop(o: LoadOptions, one: () => Promise<void>): Promise<void> {
  while (!o.signal.aborted && o.instance.alive) {
    await one();
    if (o.pauseMs) await sleep(o.pauseMs);
  }
  // A dead instance's workers idle until the end (its requests would only be refused connections).
}

const deny = (o: LoadOptions): boolean => Math.random() < o.denyShare;

/** One MCP session (1.x SDK client, MCP 2025-11-25) calling tools until stopped; reconnects after a lost session. */
async function toolWorker(o: LoadOptions): Promise<void> {
  let client: Client | undefined;
  while (!o.signal.aborted && o.instance.alive) {
    if (client === undefined) {
      const c = new Client({ name: 'scale', version: '1.0.0' });
      try {
        await c.connect(new StreamableHTTPClientTransport(new URL('/mcp', o.instance.url), { requestInit: { headers: { Authorization: `Bearer ${SCALE_KEY}` } } }), { timeout: 20_000 });
        client = c;
      } catch {
        await c.close().catch(() => undefined);
        await sleep(200);
        continue;
      }
    }
    const intent = deny(o) ? 'deny' : 'allow';
    const id = o.ledger.nextId('tool');
    const s = o.ledger.open('tool', intent, id, `tool:${id}`, o.instance.name);
    try {
      const r = await client.callTool({ name: intent === 'allow' ? 'up__small' : 'up__large', arguments: { n: id } }, undefined, { timeout: 20_000 });
      const meta = (r._meta as Record<string, { code?: string }> | undefined)?.['bastion/error'];
      if (r.isError === true) o.ledger.close(s, 'refused', meta?.code ?? 'isError');
      else o.ledger.close(s, 'ok', '');
    } catch (err) {
      if (err instanceof McpError && err.code !== ErrorCode.RequestTimeout && err.code !== ErrorCode.ConnectionClosed) {
        o.ledger.close(s, 'refused', /\((ERR_[A-Z_]+)\)/.exec(err.message)?.[1] ?? `rpc ${err.code}`);
      } else {
        const http = /HTTP (\d{3})/.exec((err as Error).message);
        // An HTTP error status is an answer too (e.g. a 503 before the JSON-RPC layer); a broken socket or timeout is not.
        if (http) o.ledger.close(s, 'refused', /"code":"(ERR_[A-Z_]+)"/.exec((err as Error).message)?.[1] ?? `http ${http[1]}`, Number(http[1]));
        else o.ledger.close(s, 'none', (err as NodeJS.ErrnoException).code ?? (err as Error).message.slice(0, 60));
        await client.close().catch(() => undefined);
        client = undefined;
      }
    }
    if (o.pauseMs) await sleep(o.pauseMs);
  }
  await client?.close().catch(() => undefined);
}

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** One HTTP request; resolves with the answer, or rejects on a socket error or after 20 s. */
function send(opts: RequestOptions, body: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ ...opts, timeout: 20_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', reject);
    req.end(body);
  });
}

/** The reason of a refusal: the `bastion-reason` header, else the body's `error.code`, else the status. */
function reasonOf(a: Answer): string {
  const h = a.headers['bastion-reason'];
  if (typeof h === 'string') return h;
  try {
    const j = JSON.parse(a.body.toString('utf8')) as { error?: { code?: unknown; reason?: unknown; type?: unknown } };
    const r = j.error?.reason ?? j.error?.code ?? j.error?.type;
    if (typeof r === 'string') return r;
  } catch {
    // not JSON
  }
  return `http ${a.status}`;
}

async function modelRequest(o: LoadOptions, agent: HttpAgent): Promise<void> {
  const intent = deny(o) ? 'deny' : 'allow';
  const id = o.ledger.nextId('model');
  const s = o.ledger.open('model', intent, id, intent === 'allow' ? `model:m-${id}` : null, o.instance.name);
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `hello ${id}` }] });
  try {
    const a = await send(
      {
        host: o.instance.url.hostname,
        port: o.instance.url.port,
        path: '/v1/chat/completions',
        method: 'POST',
        agent,
        headers: { authorization: `Bearer ${intent === 'allow' ? SCALE_KEY : NOMODEL_KEY}`, 'content-type': 'application/json', 'bastion-user': `m-${id}` },
      },
      body,
    );
    if (a.status === 200 && a.body.toString('utf8').includes(`hello ${id}`)) o.ledger.close(s, 'ok', '', 200);
    else o.ledger.close(s, 'refused', reasonOf(a), a.status);
  } catch (err) {
    o.ledger.close(s, 'none', (err as NodeJS.ErrnoException).code ?? 'error');
  }
}

async function egressRequest(o: LoadOptions, agent: HttpAgent): Promise<void> {
  const intent = deny(o) ? 'deny' : 'allow';
  const id = o.ledger.nextId('network');
  const size = egressSizes(id);
  // A denied request never connects: its port is free to carry the id (the record's target).
  const port = intent === 'allow' ? o.originPort : denyPort(id);
  const key = intent === 'allow' ? (id <= MAX_EGRESS_ID ? `network:${size.out}:${size.in}` : null) : `network-deny:${port}`;
  const s = o.ledger.open('network', intent, id, key, o.instance.name);
  const host = intent === 'allow' ? 'echo.scale.test' : 'deny.scale.test';
  try {
    const a = await send(
      {
        host: o.instance.proxy.host,
        port: o.instance.proxy.port,
        path: `http://${host}:${port}/r`,
        method: 'POST',
        agent,
        headers: {
          host: `${host}:${port}`,
          'proxy-authorization': `Basic ${Buffer.from(`scale:${SCALE_KEY}`).toString('base64')}`,
          'content-type': 'text/plain',
          'x-reply-bytes': String(size.in),
        },
      },
      'a'.repeat(size.out),
    );
    if (a.status === 200 && a.body.length === size.in) o.ledger.close(s, 'ok', '', 200);
    else o.ledger.close(s, 'refused', reasonOf(a), a.status);
  } catch (err) {
    o.ledger.close(s, 'none', (err as NodeJS.ErrnoException).code ?? 'error');
  }
}
