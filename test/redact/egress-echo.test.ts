/**
 * End to end over real sockets: an upstream on a secret's own host answers
 * with the credential it was sent, transformed the ways an agent could undo
 * (base64 and base64url at each alignment, hex, HTML character references,
 * partial JSON `\u` escaping, percent-encoding, a Basic-auth echo, a value
 * split across JSON fields). Before the
 * one redaction engine (src/redact/), the egress proxy searched only the raw,
 * JSON-escaped and percent-encoded forms, and each of these passed to the
 * agent.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { after, before, describe, test } from 'node:test';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import { Secret } from '../../src/util/secret.ts';
import { makeCert, proxyAuth, startEgress, type TestEgress } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

/** Shaped like an API key; never a real one. */
const VALUE = 'sk-echo-' + 'Q9wZ3xY7vU5tS1rP'.repeat(2);

/** What the upstream does with the Authorization header value it received (`token <value>`). */
const TRANSFORMS: Record<string, { type: string; body: (auth: string, value: string) => string }> = {
  'base64, alignment 0': { type: 'text/plain', body: (_a, v) => Buffer.from(v).toString('base64') },
  'base64, alignment 1': { type: 'text/plain', body: (_a, v) => Buffer.from(`x${v}yz`).toString('base64') },
  'base64 of the whole header (alignment 0 after "token ")': { type: 'text/plain', body: (a) => Buffer.from(a).toString('base64') },
  'base64url, alignment 2': { type: 'application/json', body: (_a, v) => JSON.stringify({ blob: Buffer.from(`ab${v}`).toString('base64url') }) },
  'Basic-auth echo (user:value)': { type: 'text/plain', body: (_a, v) => `Basic ${Buffer.from(`user:${v}`).toString('base64')}` },
  'hex': { type: 'text/plain', body: (_a, v) => Buffer.from(v).toString('hex') },
  'HTML decimal character references': { type: 'text/html', body: (_a, v) => `<p>${[...v].map((c) => `&#${c.charCodeAt(0)};`).join('')}</p>` },
  'JSON with every other character \\u-escaped': {
    type: 'application/json',
    body: (_a, v) => `{"echo":"${[...v].map((c, i) => (i % 2 ? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}` : c)).join('')}"}`,
  },
  'percent-encoding of every byte': { type: 'text/plain', body: (_a, v) => [...Buffer.from(v)].map((b) => `%${b.toString(16).toUpperCase()}`).join('') },
  'split across two JSON fields': { type: 'application/json; charset=utf-8', body: (_a, v) => JSON.stringify({ a: v.slice(0, 12), b: v.slice(12), n: 1 }) },
  'split across two MCP-style content items': {
    type: 'application/json',
    body: (_a, v) => JSON.stringify({ content: [{ type: 'text', text: v.slice(0, 9) }, { type: 'text', text: v.slice(9) }] }),
  },
};

/** The string values of a JSON text joined in order, all together and per property name ('' for a text that is not JSON): where a split value would read whole. */
function joinedLeaves(text: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return '';
  }
  const all: string[] = [];
  const byField = new Map<string, string[]>();
  const walk = (v: unknown, field: string): void => {
    if (typeof v === 'string') {
      all.push(v);
      byField.set(field, [...(byField.get(field) ?? []), v]);
    } else if (Array.isArray(v)) for (const x of v) walk(x, field);
    else if (typeof v === 'object' && v !== null) for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(doc, '');
  return [all.join(''), ...[...byField.values()].map((l) => l.join(''))].join('\n');
}

describe('egress: a secret echoed by its own host comes back redacted in every encoding', () => {
  let eg: TestEgress;
  let port: number;
  let close: () => Promise<void>;
  let ph: string;
  const certDir = tempDir();
  const cert = makeCert(certDir, ['api.echo.test'], 'echo');

  before(async () => {
    const server = createServer({ cert: cert.cert, key: cert.key }, (req: IncomingMessage, res: ServerResponse) => {
      const auth = String(req.headers.authorization ?? '');
      const value = auth.replace(/^token /, '');
      const t = TRANSFORMS[decodeURIComponent((req.url ?? '/').slice(1))];
      req.resume();
      req.on('end', () => {
        res.writeHead(t ? 200 : 404, { 'content-type': t?.type ?? 'text/plain' });
        res.end(t ? t.body(auth, value) : 'unknown');
      });
    });
    port = await listenLoopback(server);
    close = () => closeServer(server);
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
secrets:
  echo: { hosts: [api.echo.test] }
egress:
  staticHosts: { api.echo.test: [127.0.0.1] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    secrets: [echo]
    network: ["api.echo.test:${port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [cert.cert] },
    );
    await eg.door.vault.add('echo', new Secret(VALUE), { hosts: ['api.echo.test'], header: 'Authorization', format: 'token {}' });
    ph = await eg.door.vault.placeholder('echo', 'demo');
  });

  after(async () => {
    await eg?.close();
    await close?.();
  });

  for (const [name, t] of Object.entries(TRANSFORMS)) {
    test(name, async () => {
      const agent = new ProxyAgent({ uri: eg.proxyUrl.href, token: proxyAuth(), requestTls: { ca: eg.caPem } });
      try {
        const res = await undiciFetch(`https://api.echo.test:${port}/${encodeURIComponent(name)}`, { headers: { authorization: ph }, dispatcher: agent });
        assert.equal(res.status, 200);
        const got = await res.text();
        const unredacted = t.body(`token ${VALUE}`, VALUE);
        assert.notEqual(got, unredacted, 'the response was redacted');
        assert.ok(got.includes('[REDACTED:vault-secret]'), got);
        // What the agent could decode from the answer does not hold the value.
        for (const decoded of [got, Buffer.from(got.replace(/^Basic /, ''), 'base64').toString('latin1'), Buffer.from(got, 'hex').toString('latin1'), decodeURIComponentSafe(got), joinedLeaves(got)]) {
          assert.ok(!decoded.includes(VALUE), `${name}: the value is readable in ${JSON.stringify(got)}`);
        }
      } finally {
        await agent.close();
      }
    });
  }
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
