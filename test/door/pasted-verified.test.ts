/**
 * Pasted secrets need a proven owner once user tokens are configured (issue 11,
 * class 5): an agent that merely asserts `Bastion-User: alice` cannot have
 * alice's pasted credential swapped in, at the tool door or the network door;
 * with alice's token (users.token, verified with jose against a JWKS served on
 * a real socket) it can, and the token header is never forwarded.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import OpenAI from 'openai';
import { echoScript, startMockProvider, type MockProvider } from '../../examples/model-door/provider.ts';
import { EGRESS_KEY, makeCert, startEgress, startOrigin, type Origin, type TestEgress } from '../helpers/egress.ts';
import { ROOT, tempDir } from '../helpers/gateway.ts';

type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
const run = promisify(execFile);
const GH_TOKEN = 'ghp_' + 'V3r1f13dT0k3n'.repeat(3) + 'x';

let provider: MockProvider;
let github: Origin;
let jwks: Server;
let priv: PrivateKey;
let bastion: TestEgress;
let ph: string;

const tokenFor = (sub: string): Promise<string> =>
  new SignJWT({ sub }).setProtectedHeader({ alg: 'EdDSA', kid: 'idp' }).setIssuer('https://idp.example').setAudience('bastion').setIssuedAt().setExpirationTime('5m').sign(priv);

before(async () => {
  provider = await startMockProvider({ script: echoScript });
  const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
  priv = pair.privateKey;
  const pub = { ...(await exportJWK(pair.publicKey)), kid: 'idp', alg: 'EdDSA' };
  jwks = createServer((_req, res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [pub] })));
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  const certDir = tempDir();
  const githubCert = makeCert(certDir, ['api.github.com'], 'github');
  github = await startOrigin(githubCert);
  const fixture = JSON.stringify(join(ROOT, 'test/fixtures/bad-upstream.ts'));
  bastion = await startEgress(
    `version: 1
store: { sqlite: ./bastion.db }
users:
  token: { issuer: "https://idp.example", audience: bastion, jwksUrl: "http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks", algorithms: [EdDSA] }
egress:
  intercept: all
  staticHosts: { api.github.com: [127.0.0.1] }
upstreams:
  gh:
    command: ${JSON.stringify(process.execPath)}
    args: [${fixture}]
    secretHosts: [api.github.com]
agents:
  support:
    keys: [env:EGRESS_KEY]
    tools: ["gh__*"]
    model: { provider: openai, baseUrl: "${provider.url}/v1" }
    network: ["api.github.com:${github.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
    { model: true, upstreamCa: [githubCert.cert] },
  );
  const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `http://127.0.0.1:${bastion.running.url.port}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice', 'Bastion-User-Token': await tokenFor('alice') } });
  const r = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `use ${GH_TOKEN}` }] });
  ph = /<<SECRET_[a-z2-7]{12}>>/.exec(r.choices[0]?.message.content ?? '')?.[0] as string;
  assert.ok(ph);
});

after(async () => {
  await bastion?.close();
  await provider?.close();
  await github?.close();
  await new Promise<void>((r) => jwks.close(() => r()));
});

async function mcp(headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'verified-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(bastion.running.url, { requestInit: { headers: { Authorization: `Bearer ${EGRESS_KEY}`, ...headers } } }));
  return client;
}

test('tool door: an asserted owner is refused (user.unverified); the proven owner gets the swap', async () => {
  const asserted = await mcp({ 'Bastion-User': 'alice' });
  try {
    const r = (await asserted.callTool({ name: 'gh__fingerprint', arguments: { text: ph } })) as { isError?: boolean };
    assert.equal(r.isError, true);
  } finally {
    await asserted.close();
  }
  await bastion.gateway.audit.flush();
  const last = (await bastion.gateway.store.readAudit(1, 100_000)).filter((x) => x.method === 'tools/call').at(-1)!;
  assert.equal(last.decision.reason, 'user.unverified');

  const proven = await mcp({ 'Bastion-User': 'alice', 'Bastion-User-Token': await tokenFor('alice') });
  try {
    const r = (await proven.callTool({ name: 'gh__fingerprint', arguments: { text: ph } })) as { isError?: boolean };
    assert.notEqual(r.isError, true);
  } finally {
    await proven.close();
  }
});

async function curl(args: string[]): Promise<string> {
  try {
    return (await run('curl', ['-sS', '-i', '--max-time', '10', ...args], { encoding: 'utf8' })).stdout;
  } catch (err) {
    return (err as { stdout?: string }).stdout ?? '';
  }
}

test('network door: an asserted owner is refused (user.unverified); the proven owner gets the swap, the token is not forwarded', async () => {
  const proxy = `http://agent:${EGRESS_KEY}@127.0.0.1:${bastion.proxyUrl.port}`;
  const url = `https://api.github.com:${github.port}/echo`;
  const refused = await curl(['-x', proxy, '--cacert', bastion.caFile, '-H', `Authorization: Bearer ${ph}`, '-H', 'Bastion-User: alice', url]);
  assert.match(refused, /\r\n\r\nHTTP\/1\.1 401 /, refused.slice(0, 300));
  assert.match(refused, /user\.unverified/);

  const before = github.received.length;
  const token = await tokenFor('alice');
  const ok = await curl(['-x', proxy, '--cacert', bastion.caFile, '-H', `Authorization: Bearer ${ph}`, '-H', 'Bastion-User: alice', '-H', `Bastion-User-Token: ${token}`, url]);
  assert.match(ok, /\r\n\r\nHTTP\/1\.1 200 /, ok.slice(0, 300));
  const got = github.received[before]!;
  assert.equal(got.headers.authorization, `Bearer ${GH_TOKEN}`);
  assert.equal(got.headers['bastion-user-token'], undefined, 'the user token is not forwarded');
  assert.ok(!ok.includes(GH_TOKEN));
});
