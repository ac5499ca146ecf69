/**
 * Abilities end to end: a real gateway with its network door and vault, the
 * official MCP SDK client over Streamable HTTP, and a loopback HTTPS origin
 * (its own certificate, reached as `api.acme.test` through `egress.staticHosts`
 * and the agent's `unsafeAllowPrivate`) that records every request.
 *
 * Covered: catalogues per agent (skillsets, `tools`, `deny`), Cedar and
 * approvals, argument schemas, every URL attack of the issue, the bound secret
 * (only to its host, never in a result or an audit record), parameters that try
 * to set a header or the signed context, signatures and per-call tokens checked
 * with the verifier library and jose, the response transform, redirects, API
 * errors, timeouts, oversized answers and the SSRF guard — each with its error
 * code and audit record.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { verifyAudit } from '../../src/audit/log.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { Secret } from '../../src/util/secret.ts';
import { MemoryReplayStore, verifyParts } from '../../src/verify/index.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY, makeCert, startEgress, startOrigin, type Origin, type TestEgress } from '../helpers/egress.ts';
import { BAD_UPSTREAM_YAML, TEST_KEY, connect, startGateway, tempDir } from '../helpers/gateway.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

const NONE_KEY = 'none-key-0123456789abcdef-agent';
/** The bound secret's value: it must reach the origin and nothing else. */
const ACME_VALUE = 'acme_live_' + 'Qm9uZFZhbHVl'.repeat(3);

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');
const errorCode = (r: unknown): string | undefined => ((r as ToolResult)._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

const ISSUES = [
  { number: 1, title: 'First', state: 'open', user: { login: 'octo', id: 1 }, labels: [{ name: 'bug', color: 'f00' }], body: 'x'.repeat(200) },
  { number: 2, title: 'Second', state: 'open', user: { login: 'cat', id: 2 }, labels: [], body: 'y'.repeat(200) },
];

/** The stand-in API: HTTPS on 127.0.0.1, every request recorded. */
async function startAcme(tls: { cert: string; key: string }): Promise<{ port: number; seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = (req.url ?? '').split('?')[0] ?? '';
      const json = (status: number, value: unknown, extra: Record<string, string> = {}): void => {
        res.writeHead(status, { 'content-type': 'application/json', ...extra });
        res.end(JSON.stringify(value));
      };
      if (/^\/repos\/[^/]+\/[^/]+\/issues$/.test(path)) return req.method === 'POST' ? json(201, { created: true, received: JSON.parse(body.toString('utf8')) as unknown }) : json(200, ISSUES);
      if (path.startsWith('/echo/') || path.startsWith('/plain/')) return json(200, { method: req.method, url: req.url, headers: req.headers, body: body.toString('utf8') });
      if (path === '/whoami') return json(200, { login: 'octo', seen: req.headers.authorization ?? null });
      if (path === '/slow') return void setTimeout(() => json(200, { late: true }), 2_000);
      if (path.startsWith('/status/')) return json(Number(path.slice(8)), { message: 'it broke', trace: 'z'.repeat(10_000) });
      if (path === '/redirect') {
        res.writeHead(302, { location: `https://api.acme.test:${(server.address() as AddressInfo).port}/echo/followed` });
        return void res.end();
      }
      if (path === '/big') return json(200, { blob: 'b'.repeat(1_100_000) });
      if (path === '/many') return json(200, Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item ${i}`, extra: 'e'.repeat(40) })));
      if (path === '/text') {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        return void res.end('plain words');
      }
      if (path === '/gzip') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        return void res.end(gzipSync(JSON.stringify({ zipped: true, n: 7 })));
      }
      json(404, { message: 'Not Found' });
    });
  };
  const server = createServer({ cert: tls.cert, key: tls.key }, handler);
  return {
    port: await listenLoopback(server),
    seen,
    close: () => closeServer(server),
  };
}

function config(port: number, plainPort: number): string {
  const api = `https://api.acme.test:${port}`;
  const str = '{ type: string }';
  return `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./b.db }
policies: ["./policies/*.cedar"]
approvals: { timeoutMs: 10000 }
secrets:
  acme_token: { hosts: [api.acme.test] }
  acme_stray: { hosts: [api.acme.test] }
  acme_bare: { hosts: [api.acme.test] }
egress:
  staticHosts: { api.acme.test: [127.0.0.1] }
abilities:
  acme__issues_list:
    description: List the issues of a repository.
    url: "${api}/repos/{owner}/{repo}/issues{?state,labels}"
    params:
      type: object
      properties:
        owner: { type: string, maxLength: 100 }
        repo: { type: string, maxLength: 100 }
        state: { type: string, enum: [open, closed, all] }
        labels: { type: array, items: { type: string } }
      required: [owner, repo]
    headers: { X-Api-Version: "2024-01-01" }
    response: { select: [number, title, user.login, labels.name] }
  acme__issue_create:
    description: Open an issue.
    method: POST
    url: "${api}/repos/{owner}/{repo}/issues"
    params:
      type: object
      properties: { owner: ${str}, repo: ${str}, title: ${str}, body: ${str} }
      required: [owner, repo, title]
    body: { title: "{title}", body: "{body}", labels: [from-bastion] }
  acme__whoami:
    description: Who the token belongs to.
    url: "${api}/whoami"
    secret: acme_token
    signContext: false
  acme__echo:
    description: Echo with a signed context and a call token.
    method: POST
    url: "${api}/echo/{id}{?q}"
    params:
      type: object
      properties: { id: ${str}, q: ${str}, user: ${str}, agent: ${str}, authorization: ${str}, note: ${str} }
      required: [id]
    body: { user: "{user}", agent: "{agent}", authorization: "{authorization}", note: "{note}" }
    token: true
  acme__plain:
    description: Echo, unsigned.
    url: "${api}/plain/x"
    signContext: false
  acme__stray:
    description: A secret whose vault hosts do not cover this host.
    url: "${api}/echo/stray"
    secret: acme_stray
  acme__bare:
    description: A secret added without a header.
    url: "${api}/echo/bare"
    secret: acme_bare
  acme__slow:
    description: Slow.
    url: "${api}/slow"
    timeoutMs: 300
  acme__status:
    description: Answers the given status.
    url: "${api}/status/{code}"
    params: { type: object, properties: { code: { type: integer } }, required: [code] }
    response: { maxBytes: 512 }
  acme__redirect:
    description: Redirects.
    url: "${api}/redirect"
  acme__big:
    description: Too big.
    url: "${api}/big"
  acme__many:
    description: Many items.
    url: "${api}/many"
    response: { select: [id, name], maxBytes: 1024 }
  acme__text:
    description: Text.
    url: "${api}/text"
  acme__gzip:
    description: Compressed.
    url: "${api}/gzip"
  acme__danger:
    description: Denied to demo.
    method: DELETE
    url: "${api}/echo/danger"
  meta__read:
    description: Cloud metadata.
    url: http://169.254.169.254/latest/meta-data/
  private__read:
    description: A private address.
    url: http://10.1.2.3:9/x
  loopback__read:
    description: Loopback, covered by demo's exception.
    url: http://127.0.0.1:${plainPort}/x
skillsets:
  acme: [acme__issues_list, acme__issue_create, acme__whoami, acme__echo, acme__plain, acme__stray, acme__bare, acme__slow, acme__status, acme__redirect, acme__big, acme__many, acme__text, acme__gzip, acme__danger]
  infra: [meta__read, private__read, loopback__read]
agents:
  demo:
    keys: [env:EGRESS_KEY]
    skillsets: [acme, infra]
    deny: [acme__danger]
    approve: [acme__issue_create]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
  other:
    keys: [env:OTHER_EGRESS_KEY]
    tools: [acme__issues_list]
  none:
    keys: [env:NONE_KEY]
`;
}

const CEDAR = `@id("no-blocked-owner")
forbid (principal, action == Bastion::Action::"tools/call", resource is Bastion::Tool)
when { resource.name == "acme__issues_list" && context.args has owner && context.args.owner == "blocked" };
`;

/** An SDK client for `key`, acting for `user` in `conversation`. */
async function connectAs(url: URL, key: string, headers: Record<string, string> = {}): Promise<Client> {
  const client = new Client({ name: 'abilities-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { Authorization: `Bearer ${key}`, ...headers } } }));
  return client;
}

describe('abilities through the tool door', () => {
  const certDir = tempDir();
  const cert = makeCert(certDir, ['api.acme.test'], 'acme');
  let acme: Awaited<ReturnType<typeof startAcme>>;
  let plain: Origin;
  let eg: TestEgress;
  let demo: Client;
  let other: Client;
  let none: Client;

  async function records(): Promise<AuditRecord[]> {
    await eg.gateway.audit.flush();
    return eg.gateway.store.readAudit(1, 100_000);
  }
  async function lastCall(tool: string): Promise<AuditRecord> {
    const rec = (await records()).findLast((r) => r.method === 'tools/call' && r.target === tool);
    assert.ok(rec, `a tools/call record for ${tool}`);
    return rec;
  }
  function since(n: number): Seen[] {
    return acme.seen.slice(n);
  }
  const call = (name: string, args: Record<string, unknown> = {}, client: Client = demo) => client.callTool({ name, arguments: args });

  before(async () => {
    acme = await startAcme(cert);
    plain = await startOrigin();
    eg = await startEgress(config(acme.port, plain.port), { upstreamCa: [cert.cert], env: { NONE_KEY }, files: { 'policies/abilities.cedar': CEDAR } });
    await eg.door.vault.add('acme_token', new Secret(ACME_VALUE), { hosts: ['api.acme.test'], header: 'Authorization', format: 'Bearer {}' });
    await eg.door.vault.add('acme_stray', new Secret('stray-value-0123456789'), { hosts: ['elsewhere.acme.test'], header: 'X-Key' });
    await eg.door.vault.add('acme_bare', new Secret('bare-value-0123456789'), { hosts: ['api.acme.test'] });
    demo = await connectAs(eg.running.url, EGRESS_KEY, { 'Bastion-User': 'alice', 'Bastion-Conversation': 'conv-7' });
    other = await connectAs(eg.running.url, OTHER_EGRESS_KEY);
    none = await connectAs(eg.running.url, NONE_KEY);
  });

  after(async () => {
    await Promise.all([demo.close(), other.close(), none.close()]);
    await eg.close();
    await acme.close();
    await plain.close();
  });

  test('catalogues: skillsets and tools grant, deny hides, other agents see nothing', async () => {
    const names = (await demo.listTools()).tools.map((t) => t.name).sort();
    assert.ok(names.includes('acme__issues_list') && names.includes('acme__issue_create') && names.includes('loopback__read'));
    assert.ok(!names.includes('acme__danger'), 'a denied ability is not listed');
    const list = (await demo.listTools()).tools.find((t) => t.name === 'acme__issues_list');
    assert.equal(list?.description, 'List the issues of a repository.');
    assert.equal(list?.inputSchema.additionalProperties, false);
    assert.deepEqual(list?.inputSchema.required, ['owner', 'repo']);
    assert.equal(list?.annotations?.readOnlyHint, true);
    assert.deepEqual((await other.listTools()).tools.map((t) => t.name), ['acme__issues_list']);
    assert.deepEqual((await none.listTools()).tools, []);
    const r = await call('acme__issues_list', { owner: 'o', repo: 'r' }, none);
    assert.equal(errorCode(r), 'ERR_POLICY_DENIED');
  });

  test('a call: path and query filled, fields selected, the audit record says what went where', async () => {
    const n = acme.seen.length;
    const r = await call('acme__issues_list', { owner: 'octo', repo: 'hello', state: 'open', labels: ['bug', 'p 1'] });
    assert.equal((r as ToolResult).isError, undefined, text(r));
    assert.deepEqual(JSON.parse(text(r)), [
      { number: 1, title: 'First', user: { login: 'octo' }, labels: [{ name: 'bug' }] },
      { number: 2, title: 'Second', user: { login: 'cat' }, labels: [] },
    ]);
    const [got] = since(n);
    assert.equal(got?.method, 'GET');
    assert.equal(got?.url, '/repos/octo/hello/issues?state=open&labels=bug,p%201');
    assert.equal(got?.headers['x-api-version'], '2024-01-01');
    assert.equal(got?.headers.host, `api.acme.test:${acme.port}`);
    const rec = await lastCall('acme__issues_list');
    assert.equal(rec.decision.effect, 'allow');
    assert.equal(rec.outcome, 'ok');
    assert.equal(rec.detail?.upstream, '@abilities');
    const ability = rec.detail?.ability as Record<string, unknown>;
    assert.deepEqual(
      { method: ability.method, host: ability.host, path: ability.path, status: ability.status, truncated: ability.truncated, address: ability.address },
      { method: 'GET', host: 'api.acme.test', path: '/repos/octo/hello/issues', status: 200, truncated: false, address: '127.0.0.1' },
    );
    assert.equal(typeof ability.bytes, 'number');
    assert.ok(!JSON.stringify(rec).includes('state=open'), 'no query values in the record');
    const sig = rec.detail?.signature as { kid?: string; nonce?: string } | undefined;
    assert.ok(sig?.kid && sig.nonce, 'the signature is audited by kid and nonce');
  });

  test('schema violations and unknown properties: ERR_ARGS_INVALID before anything is sent', async () => {
    const n = acme.seen.length;
    for (const args of [{ owner: 'o' }, { owner: 'o', repo: 'r', state: 'weird' }, { owner: 'o', repo: 'r', extra: 1 }, { owner: 1, repo: 'r' }, { owner: 'o', repo: 'r', labels: 'bug' }]) {
      const r = await call('acme__issues_list', args);
      assert.equal(errorCode(r), 'ERR_ARGS_INVALID', JSON.stringify(args));
    }
    assert.equal(since(n).length, 0);
    const rec = await lastCall('acme__issues_list');
    assert.equal(rec.decision.reason, 'args.schema');
  });

  test('every URL attack is refused with ERR_ARGS_INVALID and ability.param_unsafe, and nothing is sent', async () => {
    const n = acme.seen.length;
    const attacks = ['../admin', '..', '.', 'a/b', 'a%2Fb', 'a%252Fb', 'a%5cb', '%2e%2e', 'evil.com@', '@evil.com', 'x?y=1', 'x#f', '\\evil', 'a\r\nHost: evil.example', 'a\nb'];
    for (const value of attacks) {
      for (const args of [{ owner: value, repo: 'r' }, { owner: 'o', repo: value }]) {
        const r = await call('acme__issues_list', args);
        assert.equal(errorCode(r), 'ERR_ARGS_INVALID', JSON.stringify(args));
        if (value.length > 2) assert.ok(!text(r).includes(value), 'the value is not echoed');
        const rec = await lastCall('acme__issues_list');
        assert.equal(rec.decision.effect, 'deny');
        assert.equal(rec.decision.reason, 'ability.param_unsafe', JSON.stringify(args));
        assert.equal((rec.detail?.unsafeParam as { param?: string }).param, 'owner' in args && args.owner === value ? 'owner' : 'repo');
      }
    }
    assert.equal(since(n).length, 0, 'no attack reached the origin');
  });

  test('Cedar decides on the ability like on any tool (a forbid on an argument)', async () => {
    const n = acme.seen.length;
    const r = await call('acme__issues_list', { owner: 'blocked', repo: 'r' });
    assert.equal(errorCode(r), 'ERR_POLICY_DENIED');
    const rec = await lastCall('acme__issues_list');
    assert.equal(rec.decision.effect, 'deny');
    assert.equal(rec.decision.rule, 'no-blocked-owner');
    assert.equal(since(n).length, 0);
  });

  test('the deny list refuses an ability of a skillset', async () => {
    const r = await call('acme__danger');
    assert.equal(errorCode(r), 'ERR_POLICY_DENIED');
    const rec = await lastCall('acme__danger');
    assert.equal(rec.decision.effect, 'deny');
    assert.ok(!acme.seen.some((s) => s.url.includes('danger')));
  });

  test('an approval-required ability is held, then sent once approved, with the body template filled', async () => {
    const n = acme.seen.length;
    const pending = call('acme__issue_create', { owner: 'octo', repo: 'hello', title: 'From the agent' });
    let id: string | undefined;
    for (let i = 0; i < 200 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id = (await eg.gateway.deps.approvals.list({ status: 'pending' }))[0]?.id;
    }
    assert.ok(id, 'approval created');
    assert.equal(since(n).length, 0, 'nothing is sent while held');
    await eg.gateway.deps.approvals.decide(id, 'approved', 'test', null);
    const r = await pending;
    assert.equal((r as ToolResult).isError, undefined, text(r));
    const [got] = since(n);
    assert.equal(got?.method, 'POST');
    assert.equal(got?.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(got?.body.toString('utf8') ?? ''), { title: 'From the agent', labels: ['from-bastion'] });
    const rec = await lastCall('acme__issue_create');
    assert.equal(rec.decision.effect, 'approve');
    assert.equal(rec.decision.reason, 'approval.granted');
    assert.equal((rec.detail?.ability as { status?: number }).status, 201);
  });

  test('the bound secret goes to its host in its header, and never into a result or the audit', async () => {
    const n = acme.seen.length;
    const r = await call('acme__whoami');
    assert.equal((r as ToolResult).isError, undefined, text(r));
    const [got] = since(n);
    assert.equal(got?.headers.authorization, `Bearer ${ACME_VALUE}`, 'the origin got the credential');
    assert.ok(!text(r).includes(ACME_VALUE), 'the echoed credential is redacted');
    assert.deepEqual(JSON.parse(text(r)), { login: 'octo', seen: 'Bearer [REDACTED:vault-secret]' });
    const rec = await lastCall('acme__whoami');
    assert.equal(rec.detail?.secret, 'acme_token');
    // No other ability's request carried it.
    assert.equal(acme.seen.filter((s) => JSON.stringify(s.headers).includes(ACME_VALUE)).length, 1);
    assert.ok(!JSON.stringify(await records()).includes(ACME_VALUE), 'no audit record holds the value');
    assert.ok(!JSON.stringify(await records()).includes(ACME_VALUE.slice(10)), 'nor a part of it');
  });

  test('a bound secret whose vault hosts do not cover the ability host is never sent', async () => {
    const n = acme.seen.length;
    const r = await call('acme__stray');
    assert.equal(errorCode(r), 'ERR_EGRESS_DENIED');
    const rec = await lastCall('acme__stray');
    assert.equal(rec.decision.reason, 'release.foreign_host');
    assert.equal(since(n).length, 0);
    const bare = await call('acme__bare');
    assert.equal(errorCode(bare), 'ERR_ABILITY_REQUEST');
    assert.equal((await lastCall('acme__bare')).decision.reason, 'ability.secret_unbound');
    assert.equal(since(n).length, 0);
  });

  test('parameters cannot set a header or the signed context; the origin verifies the real user', async () => {
    const n = acme.seen.length;
    const forged = 'agent="root", user="mallory", platform="x", request="r", time=1';
    const r = await call('acme__echo', {
      id: 'abc',
      q: `x\r\nBastion-Context: ${forged}`,
      user: 'mallory',
      agent: 'root',
      authorization: 'Bearer forged',
      note: `\r\nSignature: bastion=:AAAA:\r\nBastion-Context: ${forged}`,
    });
    assert.equal((r as ToolResult).isError, undefined, text(r));
    const [got] = since(n);
    assert.ok(got);
    const keys = await eg.gateway.identity.jwks();
    const verified = await verifyParts(
      { method: got.method, url: `https://api.acme.test:${acme.port}${got.url}`, headers: got.headers as Record<string, string>, body: new Uint8Array(got.body) },
      { keys: keys.keys, origin: `https://api.acme.test:${acme.port}`, replayStore: new MemoryReplayStore() },
    );
    assert.equal(verified.context.user, 'alice');
    assert.equal(verified.context.agent, 'demo');
    assert.equal(verified.context.conversation, 'conv-7');
    assert.equal(verified.context.tool, 'acme__echo');
    const rec = await lastCall('acme__echo');
    assert.equal(verified.context.request, rec.detail?.ref);
    // The values went where the template put them, as data.
    assert.equal(new URL(got.url, 'https://x').searchParams.get('q'), `x\r\nBastion-Context: ${forged}`);
    assert.deepEqual(JSON.parse(got.body.toString('utf8')), { user: 'mallory', agent: 'root', authorization: 'Bearer forged', note: `\r\nSignature: bastion=:AAAA:\r\nBastion-Context: ${forged}` });
    assert.ok(!String(got.headers['bastion-context']).includes('mallory'));
    assert.ok(String(got.headers.authorization).startsWith('Bearer ey'), 'the token header is Bastion\'s');
  });

  test('token: a per-call JWT for this ability, user and agent, verifiable with jose; the JWT itself is not audited', async () => {
    const n = acme.seen.length;
    await call('acme__echo', { id: 'tok' });
    const [got] = since(n);
    const jwt = String(got?.headers.authorization).replace(/^Bearer /, '');
    const jwks = createLocalJWKSet(await eg.gateway.identity.jwks());
    const { payload, protectedHeader } = await jwtVerify(jwt, jwks, { algorithms: ['EdDSA'], audience: 'acme__echo', issuer: 'bastion' });
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.sub, 'alice');
    assert.deepEqual(payload.act, { sub: 'demo' });
    assert.equal(payload.scope, 'acme__echo');
    assert.ok(typeof payload.jti === 'string' && typeof payload.exp === 'number');
    const rec = await lastCall('acme__echo');
    const token = rec.detail?.token as { jti?: string; aud?: string; kid?: string };
    assert.equal(token.jti, payload.jti);
    assert.equal(token.aud, 'acme__echo');
    assert.ok(!JSON.stringify(await records()).includes(jwt), 'the JWT is never in the audit log');
  });

  test('a pasted <<SECRET_…>> is swapped only on the ability host it is bound to, and its echo redacted', async () => {
    const value = 'pasted-' + 'VmFsdWVPZlBhc3Rl'.repeat(2);
    const good = await eg.door.pasted.vault('demo', 'alice', new Secret(value), 'generic');
    assert.ok(await eg.door.pasted.bind(good.secret.token, ['api.acme.test']));
    const n = acme.seen.length;
    const r = await call('acme__echo', { id: 'p', note: `key=${good.placeholder}` });
    assert.equal((r as ToolResult).isError, undefined, text(r));
    assert.equal(JSON.parse(since(n)[0]?.body.toString('utf8') ?? '').note, `key=${value}`, 'the origin got the value');
    assert.ok(!text(r).includes(value), 'the echo is redacted');
    assert.ok(text(r).includes('[REDACTED:vault-secret]'));
    const foreign = await eg.door.pasted.vault('demo', 'alice', new Secret(`${value}-2`), 'generic');
    assert.ok(await eg.door.pasted.bind(foreign.secret.token, ['elsewhere.example']));
    const refused = await call('acme__echo', { id: 'p', note: foreign.placeholder });
    assert.equal(errorCode(refused), 'ERR_PLACEHOLDER_DENIED');
    const rec = await lastCall('acme__echo');
    assert.equal(rec.decision.reason, 'release.foreign_host');
    assert.equal(rec.decision.rule, 'abilities.acme__echo.url');
    assert.equal(since(n).length, 1);
    assert.ok(!JSON.stringify(await records()).includes(value));
  });

  test('an answer from a secret\'s host is redacted of the live values of every secret bound to it, not only the one the call sent', async () => {
    // acme_bare is bound to api.acme.test and sent by no ability here; an API that stored it can hand it back.
    const r = await call('acme__echo', { id: 'stored', note: 'kept bare-value-0123456789 for later' });
    assert.equal((r as ToolResult).isError, undefined, text(r));
    assert.ok(!text(r).includes('bare-value-0123456789'), text(r));
    assert.ok(!text(r).includes(Buffer.from('bare-value-0123456789').toString('base64').slice(0, 20)));
    assert.ok(text(r).includes('[REDACTED:vault-secret]'));
  });

  test('signContext false: no signature, digest or context headers', async () => {
    const n = acme.seen.length;
    const r = await call('acme__plain');
    assert.equal((r as ToolResult).isError, undefined, text(r));
    const [got] = since(n);
    for (const h of ['signature', 'signature-input', 'bastion-context', 'content-digest']) assert.equal(got?.headers[h], undefined, h);
    const rec = await lastCall('acme__plain');
    assert.equal(rec.detail?.signature, undefined);
  });

  test('maxBytes: a long array keeps whole items and is marked truncated', async () => {
    const r = await call('acme__many');
    const [json, marker] = text(r).split('\n');
    const items = JSON.parse(json as string) as { id: number; name: string }[];
    assert.ok(items.length > 5 && items.length < 300);
    assert.deepEqual(items[0], { id: 0, name: 'item 0' });
    assert.match(marker ?? '', /^\[truncated by Bastion: \d+ of 300 items\]$/);
    assert.ok(Buffer.byteLength(text(r)) <= 1024);
    assert.deepEqual((r as ToolResult)._meta?.['bastion/ability'], { status: 200, truncated: true });
    assert.equal(((await lastCall('acme__many')).detail?.ability as { truncated?: boolean }).truncated, true);
  });

  test('text and compressed answers', async () => {
    assert.equal(text(await call('acme__text')), 'plain words');
    assert.deepEqual(JSON.parse(text(await call('acme__gzip'))), { zipped: true, n: 7 });
  });

  test('an API error is a tool error with the status and a capped answer', async () => {
    const r = await call('acme__status', { code: 500 });
    assert.equal((r as ToolResult).isError, true);
    assert.equal(errorCode(r), 'ERR_ABILITY_REQUEST');
    assert.match(text(r), /^The API answered HTTP 500:\n\{"message":"it broke"/);
    assert.ok(Buffer.byteLength(text(r)) < 700, 'capped at response.maxBytes');
    const rec = await lastCall('acme__status');
    assert.equal(rec.outcome, 'error');
    assert.equal(rec.decision.effect, 'allow');
    assert.equal((rec.detail?.ability as { status?: number }).status, 500);
    assert.equal(rec.detail?.code, 'ERR_ABILITY_REQUEST');
  });

  test('a redirect is not followed', async () => {
    const n = acme.seen.length;
    const r = await call('acme__redirect');
    assert.equal(errorCode(r), 'ERR_ABILITY_REQUEST');
    assert.match(text(r), /redirect \(HTTP 302\)/);
    assert.equal(since(n).length, 1, 'only the first request was made');
    const rec = await lastCall('acme__redirect');
    assert.equal((rec.detail?.ability as { status?: number }).status, 302);
    assert.equal(rec.outcome, 'error');
  });

  test('a slow API times out: ERR_ABILITY_REQUEST, outcome timeout', async () => {
    const started = Date.now();
    const r = await call('acme__slow');
    assert.equal(errorCode(r), 'ERR_ABILITY_REQUEST');
    assert.ok(Date.now() - started < 1_800, 'the timeout cut the wait');
    const rec = await lastCall('acme__slow');
    assert.equal(rec.outcome, 'timeout');
    assert.equal((rec.detail?.ability as { error?: string }).error, 'timeout');
  });

  test('an answer over the response cap is refused', async () => {
    const r = await call('acme__big');
    assert.equal(errorCode(r), 'ERR_ABILITY_REQUEST');
    assert.equal(((await lastCall('acme__big')).detail?.ability as { error?: string }).error, 'response_too_large');
  });

  test('SSRF: metadata and private addresses are refused; the agent\'s exception still applies', async () => {
    const meta = await call('meta__read');
    assert.equal(errorCode(meta), 'ERR_EGRESS_SSRF');
    assert.match((await lastCall('meta__read')).decision.reason, /^ssrf\./);
    const priv = await call('private__read');
    assert.equal(errorCode(priv), 'ERR_EGRESS_SSRF');
    assert.match((await lastCall('private__read')).decision.reason, /^ssrf\./);
    // demo's unsafeAllowPrivate covers 127.0.0.1: the ability's own origin needs no network rule.
    const n = plain.received.length;
    const loop = await call('loopback__read');
    assert.equal((loop as ToolResult).isError, undefined, text(loop));
    assert.equal(plain.received.length, n + 1);
    const rec = await lastCall('loopback__read');
    assert.equal((rec.detail?.ability as { exception?: boolean }).exception, true);
    // other holds acme__issues_list but has no exception for the loopback address api.acme.test resolves to.
    const before = acme.seen.length;
    const r = await call('acme__issues_list', { owner: 'o', repo: 'r' }, other);
    assert.equal(errorCode(r), 'ERR_EGRESS_SSRF');
    assert.equal(acme.seen.length, before);
  });

  test('the audit chain verifies', async () => {
    await eg.gateway.audit.flush();
    const v = await verifyAudit(eg.gateway.store);
    assert.equal(v.ok, true);
  });
});

describe('abilities without the network door', () => {
  test('calls fail closed (ability.unavailable), and a name an upstream also offers is a collision', async () => {
    const gw = await startGateway(
      tempDir(),
      `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./b.db }
abilities:
  acme__ping: { description: Ping., url: "https://api.acme.test/ping" }
  echo: { description: Shadows the upstream's echo., url: "https://api.acme.test/echo" }
agents:
  demo:
    keys: [env:T_KEY]
    tools: [acme__ping, echo]
${BAD_UPSTREAM_YAML}    prefix: false
`,
      { T_KEY: TEST_KEY },
    );
    const client = await connect(gw.url, TEST_KEY);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.deepEqual(names, ['acme__ping']);
      const r = await client.callTool({ name: 'acme__ping', arguments: {} });
      assert.equal(errorCode(r), 'ERR_UPSTREAM_UNAVAILABLE');
      const echo = await client.callTool({ name: 'echo', arguments: { text: 'x' } });
      assert.equal(errorCode(echo), 'ERR_POLICY_DENIED');
      const recs = await gw.gateway.store.readAudit(1, 1000);
      const rec = recs.findLast((x) => x.method === 'tools/call' && x.target === 'acme__ping');
      assert.equal(rec?.decision.reason, 'ability.unavailable');
      const list = recs.find((x) => x.method === 'tools/list');
      assert.deepEqual(list?.detail?.catalogueProblems, [{ kind: 'collision', name: 'echo', upstreams: ['bad', '@abilities'] }]);
    } finally {
      await client.close();
      await gw.close();
    }
  });
});
