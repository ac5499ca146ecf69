/**
 * The egress benchmark's HTTPS load client (wrk cannot CONNECT): `conns`
 * workers, each with its own keep-alive connection (undici, pipelining off),
 * send requests back to back for `warmupSeconds` (not recorded) and then for
 * `seconds`, directly or through an HTTP proxy with CONNECT (undici
 * `ProxyAgent`). Every row of the HTTPS table uses this same client, so ratios
 * compare like with like.
 *
 * Input: one JSON argument ({@link ClientSpec}). Output on stdout: `measuring`
 * when the recorded part starts (the driver samples CPU there), then one line
 * `result <json>` ({@link ClientResult}).
 */
import { readFileSync } from 'node:fs';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';

export interface ClientSpec {
  /** Origin URL, e.g. `https://tunnel.bench.test:8443`. */
  readonly origin: string;
  readonly path: string;
  readonly method: 'GET' | 'POST';
  /** Request body size in bytes (POST). */
  readonly bodyBytes: number;
  readonly headers: Record<string, string>;
  /** Proxy URL (`http://127.0.0.1:3128`); none: direct. */
  readonly proxy?: string;
  /** Proxy-Authorization value for the CONNECT. */
  readonly proxyAuth?: string;
  /** PEM files the client trusts for the origin (or for the interceptor's CA). */
  readonly caFiles: readonly string[];
  /** TLS server name (SNI and certificate check). */
  readonly servername: string;
  /** Address to dial for a direct request (no DNS); ignored through a proxy. */
  readonly dialAddress?: string;
  readonly conns: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
}

export interface ClientResult {
  requests: number;
  seconds: number;
  p50: number;
  p99: number;
  errors: number;
  badStatus: number;
  firstError: string;
}

function pct(sorted: Float64Array, n: number, p: number): number {
  return n === 0 ? NaN : (sorted[Math.min(n - 1, Math.floor((p / 100) * n))] ?? NaN);
}

async function main(spec: ClientSpec): Promise<void> {
  const ca = spec.caFiles.map((f) => readFileSync(f, 'utf8'));
  const tls = { ca, servername: spec.servername };
  const common = { connections: spec.conns, pipelining: 1, keepAliveTimeout: 120_000, keepAliveMaxTimeout: 120_000, bodyTimeout: 30_000, headersTimeout: 30_000 };
  const https = spec.origin.startsWith('https:');
  // Plain HTTP through a proxy: absolute-form requests (no tunnel); HTTPS: CONNECT.
  const dispatcher: Dispatcher = spec.proxy
    ? new ProxyAgent({ uri: spec.proxy, ...(spec.proxyAuth ? { token: spec.proxyAuth } : {}), proxyTunnel: https, requestTls: tls, ...common })
    : new Agent({
        ...common,
        connect: {
          ...tls,
          ...(spec.dialAddress
            ? {
                lookup: (_h: string, _o: unknown, cb: (e: Error | null, a: string, f: number) => void) => cb(null, spec.dialAddress as string, 4),
              }
            : {}),
        },
      });
  const body = spec.method === 'POST' ? Buffer.alloc(spec.bodyBytes, 0x78) : undefined;
  const headers = { ...spec.headers, ...(body ? { 'content-type': 'application/octet-stream' } : {}) };
  const url = new URL(spec.path, spec.origin);

  let recording = false;
  let stop = false;
  const lat = new Float64Array(2_000_000);
  let n = 0;
  let errors = 0;
  let badStatus = 0;
  let firstError = '';

  async function worker(): Promise<void> {
    while (!stop) {
      const s = performance.now();
      try {
        const res = await request(url, { dispatcher, method: spec.method, headers, ...(body ? { body } : {}) });
        await res.body.text();
        const ms = performance.now() - s;
        if (res.statusCode !== 200) {
          if (recording) badStatus++;
          if (!firstError) firstError = `HTTP ${res.statusCode}`;
        } else if (recording && n < lat.length) lat[n++] = ms;
      } catch (e) {
        if (recording) errors++;
        if (!firstError) firstError = `${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`;
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  }

  const workers = Array.from({ length: spec.conns }, () => worker());
  await new Promise((r) => setTimeout(r, spec.warmupSeconds * 1000));
  process.stdout.write('measuring\n');
  recording = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, spec.seconds * 1000));
  recording = false;
  const wall = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(workers);
  const sorted = lat.subarray(0, n).sort();
  const result: ClientResult = { requests: n, seconds: wall, p50: pct(sorted, n, 50), p99: pct(sorted, n, 99), errors, badStatus, firstError };
  process.stdout.write(`result ${JSON.stringify(result)}\n`);
  await dispatcher.destroy();
}

if (import.meta.main) await main(JSON.parse(process.argv[2] ?? '{}') as ClientSpec);
