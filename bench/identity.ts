/**
 * `npm run bench:identity`: the cost of Bastion's identity.
 *
 * 1. Signing and verifying, in process, one core: Bastion's signer (context
 *    header + Content-Digest + RFC 9421 signature, and with a per-call JWT) and
 *    `bastion/verify` (signature, digest, freshness, nonce), against the
 *    independent `http-message-signatures` package doing the same RFC 9421
 *    work over the same request and key. Prints operations/s, p50 and p99.
 * 2. Ability calls end to end: an MCP client calls two abilities on one local
 *    origin through `bastion serve`, one with `signContext: false`, one with
 *    signing and a per-call token, interleaved; the added latency of signing is
 *    the difference. A direct HTTP request to the origin is the baseline.
 *
 * Bounded: BENCH_OPS (default 5000) per in-process case, BENCH_CALLS (default
 * 2000) per ability case, BENCH_WARMUP (default 200).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { httpbis } from 'http-message-signatures';
import { importJWK } from 'jose';
import { IdentityKeys } from '../src/identity/keys.ts';
import { RequestSigner } from '../src/identity/signer.ts';
import { openSqliteStore } from '../src/store/sqlite.ts';
import { ed25519Signer, type WebCryptoKey } from '../src/util/crypto.ts';
import { MemoryReplayStore, verifyParts } from '../src/verify/index.ts';
import { BenchChild, stopChildren } from './child.ts';

const ROOT = join(import.meta.dirname, '..');
const OPS = Number(process.env.BENCH_OPS ?? 5000);
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const KEY = 'bench-key-0123456789abcdefghijkl';

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

interface Stats {
  readonly opsPerS: number;
  readonly p50: number;
  readonly p99: number;
}

/** Runs `fn` `n` times one after another (after warm-up calls numbered from `n`); latency per op in ms. */
async function measure(n: number, fn: (i: number) => Promise<unknown>): Promise<Stats> {
  for (let i = 0; i < Math.min(WARMUP, n); i++) await fn(n + i);
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat.push(performance.now() - s);
  }
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  return { opsPerS: n / wall, p50: pct(lat, 50), p99: pct(lat, 99) };
}

const ms = (n: number): string => n.toFixed(3).padStart(8);
const row = (label: string, s: Stats, base?: Stats): string =>
  `${label.padEnd(44)} | ${s.opsPerS.toFixed(0).padStart(8)}/s | p50 ${ms(s.p50)} | p99 ${ms(s.p99)}${base ? ` | ${(s.opsPerS / base.opsPerS).toFixed(2)}x` : ''}`;

async function inProcess(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-id-'));
  const store = await openSqliteStore(join(dir, 'bastion.db'));
  const keys = await IdentityKeys.open(store, { rotationGraceMs: 60_000 });
  const signer = new RequestSigner(keys, { issuer: 'bench', platform: 'bench', signatureTtlS: 300, rotationGraceMs: 60_000 });
  const key = await keys.signingKey();
  const jwks = await keys.jwks();
  const body = new TextEncoder().encode(JSON.stringify({ query: 'refund policy', limit: 5, filters: { lang: 'en' } }));
  const req = { method: 'POST', url: 'https://tools.example.com/v1/kb/search?lang=en', headers: { 'content-type': 'application/json' }, body };
  const ctx = { agent: 'support', user: 'alice', conversation: 'conv-17', requestId: 'r_0123456789', tool: 'kb__search' };
  const rawSign = ed25519Signer(key.privateKeyPem);
  const sample = await signer.sign(req, ctx, { signContext: true });
  const signedHeaders = { ...req.headers, ...sample.headers };

  console.log(`identity benchmark: ${OPS} operations per in-process case after ${Math.min(WARMUP, OPS)} warm-up; node ${process.version}`);
  console.log('case                                         |     ops/s   |  latency ms  |              | vs baseline');
  const raw = await measure(OPS, async () => rawSign(body));
  console.log(row('Ed25519 sign of the body alone (baseline)', raw));
  const ours = await measure(OPS, () => signer.sign(req, ctx, { signContext: true }));
  console.log(row('Bastion signer: context + digest + RFC 9421', ours, raw));
  const withToken = await measure(OPS, () => signer.sign(req, ctx, { signContext: true, token: { lifetimeS: 30, header: 'Authorization', audience: 'kb', scope: 'kb__search' } }));
  console.log(row('Bastion signer + per-call JWT', withToken, raw));
  const peerSign = await measure(OPS, () =>
    httpbis.signMessage(
      {
        key: { id: key.kid, alg: 'ed25519', sign: async (data: Buffer) => Buffer.from(rawSign(data)) },
        name: 'bastion',
        fields: ['@method', '@target-uri', 'content-digest', 'bastion-context'],
        params: ['created', 'expires', 'nonce', 'keyid', 'alg', 'tag'],
        paramValues: { nonce: 'n', tag: 'bastion' },
      },
      { method: req.method, url: req.url, headers: signedHeaders },
    ),
  );
  console.log(row('http-message-signatures signMessage (peer)', peerSign, raw));
  console.log(`  ours vs peer signing: ${(ours.opsPerS / peerSign.opsPerS).toFixed(2)}x (the peer is given the digest and context; ours computes both)`);

  // Verification: a fresh signature per op (each nonce is accepted once).
  const pool = await Promise.all(Array.from({ length: OPS + WARMUP }, () => signer.sign(req, ctx, { signContext: true })));
  const replayStore = new MemoryReplayStore({ maxEntries: OPS * 4 });
  const verifyOpts = { keys: jwks, origin: new URL(req.url).origin, replayStore, maxAgeS: 600 };
  const verified = await measure(OPS, (i) => verifyParts({ ...req, headers: { ...req.headers, ...(pool[i] ?? sample).headers } }, verifyOpts));
  console.log(row('bastion/verify verifyParts (full checks)', verified));
  const pub = await importJWK(jwks.keys[0] ?? {}, 'EdDSA');
  const peerVerify = await measure(OPS, (i) =>
    httpbis.verifyMessage(
      {
        keyLookup: async () => ({ id: key.kid, algs: ['ed25519'], verify: async (data: Buffer, sig: Buffer) => crypto.subtle.verify({ name: 'Ed25519' }, pub as WebCryptoKey, new Uint8Array(sig), new Uint8Array(data)) }),
        requiredFields: ['@method', '@target-uri', 'content-digest', 'bastion-context'],
        tolerance: 600,
      },
      { method: req.method, url: req.url, headers: { ...req.headers, ...(pool[i] ?? sample).headers } },
    ),
  );
  console.log(row('http-message-signatures verifyMessage (peer)', peerVerify, verified));
  console.log('  (the peer checks the signature and time only: no Content-Digest against the body, no nonce store, no context parse)');
  await store.close();
}

async function abilities(): Promise<void> {
  const origin = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true,"items":[{"id":1,"title":"refund policy"}]}');
    });
  });
  origin.listen(0, '127.0.0.1');
  await once(origin, 'listening');
  const port = (origin.address() as AddressInfo).port;
  const dir = mkdtempSync(join(tmpdir(), 'bastion-bench-id-'));
  const ability = (sign: boolean): string => `    description: Search the knowledge base
    method: POST
    url: http://127.0.0.1:${port}/kb/search
    params: { type: object, properties: { q: { type: string } }, required: [q] }
    body: { query: '{q}' }
    signContext: ${sign}
${sign ? '    token: true\n' : ''}`;
  writeFileSync(
    join(dir, 'bastion.yaml'),
    `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0, sessions: { requestsPerSecondPerAgent: 1000000, burstPerAgent: 1000000, maxConcurrentCallsPerAgent: 100000 } }
store: { sqlite: ./bastion.db }
vault: { keyFile: ./vault.key }
agents:
  bench:
    keys: [env:BENCH_KEY]
    skillsets: [kb]
    unsafeAllowPrivate: { ranges: [127.0.0.0/8] }
abilities:
  kb__search_plain:
${ability(false)}  kb__search_signed:
${ability(true)}skillsets:
  kb: [kb__search_plain, kb__search_signed]
`,
  );
  const bastion = new BenchChild('bastion', process.execPath, [join(ROOT, 'src/cli/main.ts'), 'serve', '--config', join(dir, 'bastion.yaml')], {
    env: { ...process.env, BENCH_KEY: KEY },
  });
  const [, url] = await bastion.waitFor(/serving MCP at (\S+)/);
  const client = new Client({ name: 'bench', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url as string), { requestInit: { headers: { Authorization: `Bearer ${KEY}`, 'Bastion-User': 'alice' } } }));
  const call = async (name: string): Promise<void> => {
    const r = (await client.callTool({ name, arguments: { q: 'refund' } })) as { isError?: boolean };
    if (r.isError) throw new Error(`${name}: ${JSON.stringify(r).slice(0, 300)}`);
  };
  const direct = (): Promise<unknown> => fetch(`http://127.0.0.1:${port}/kb/search`, { method: 'POST', body: '{"query":"refund"}' }).then((r) => r.text());
  console.log(`\nability calls through bastion serve: ${CALLS} calls per case, interleaved halves, after ${WARMUP} warm-up calls`);
  try {
    await measure(WARMUP, () => call('kb__search_plain'));
    await measure(WARMUP, () => call('kb__search_signed'));
    const halves: Record<string, Stats[]> = { direct: [], plain: [], signed: [] };
    for (let h = 0; h < 2; h++) {
      halves.direct?.push(await measure(CALLS / 2, direct));
      halves.plain?.push(await measure(CALLS / 2, () => call('kb__search_plain')));
      halves.signed?.push(await measure(CALLS / 2, () => call('kb__search_signed')));
    }
    const merge = (s: Stats[]): Stats => ({ opsPerS: s.reduce((a, x) => a + x.opsPerS, 0) / s.length, p50: s.reduce((a, x) => a + x.p50, 0) / s.length, p99: Math.max(...s.map((x) => x.p99)) });
    const d = merge(halves.direct ?? []);
    const p = merge(halves.plain ?? []);
    const s = merge(halves.signed ?? []);
    console.log(row('direct HTTP to the origin (baseline)', d));
    console.log(row('ability through Bastion, signContext false', p, d));
    console.log(row('ability through Bastion, signed + JWT', s, d));
    console.log(`  added by signing (signed - unsigned): p50 ${(s.p50 - p.p50).toFixed(3)} ms, p99 ${(s.p99 - p.p99).toFixed(3)} ms; calls/s ratio ${(s.opsPerS / p.opsPerS).toFixed(2)}x`);
  } finally {
    await client.close();
    await stopChildren();
    origin.close();
  }
}

await inProcess();
if (process.env.BENCH_ONLY !== 'inprocess') await abilities();
