/**
 * Stage timing in every door (issue 14): real requests over sockets through
 * the tool door (MCP), the model door, the network door's own proxy listener
 * (which now opens a request scope of its own) and the agent-to-agent door;
 * then `/metrics` shows `bastion_stage_duration_seconds` samples for each
 * door's stages. Before the doors imported their stages through
 * `timedStages`, the histogram had no sample at all.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { connect } from '../helpers/gateway.ts';
import { badUpstreamYaml, EGRESS_KEY, proxyAuth, startOrigin, type Origin } from '../helpers/egress.ts';
import { startModelDoor, type TestModelDoor } from '../helpers/model-door.ts';
import { post, startInstance, textMessage, type Instance } from '../a2a/helpers.ts';

const ALICE = 'alice-agent-key-0123456789abcdef';

/** `bastion_stage_duration_seconds_count` samples of `door`, by stage. */
async function stageCounts(base: string, door: string): Promise<Map<string, number>> {
  const res = await fetch(new URL('/metrics', base));
  assert.equal(res.status, 200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^bastion_stage_duration_seconds_count\{(.*)\} (\S+)$/.exec(line);
    if (m === null) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/([a-z_]+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (labels.door === door) out.set(labels.stage!, Number(m[2]));
  }
  return out;
}

function assertStages(counts: Map<string, number>, door: string, stages: readonly string[]): void {
  for (const s of stages) assert.ok((counts.get(s) ?? 0) > 0, `${door}: no sample for stage ${s} (have: ${[...counts.keys()].join(', ') || 'none'})`);
}

let door: TestModelDoor;
let origin: Origin;
let a2a: Instance;

before(async () => {
  origin = await startOrigin();
  door = await startModelDoor(
    (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
upstreams:
  bad: ${badUpstreamYaml()}
agents:
  support:
    keys: [env:EGRESS_KEY]
    tools: ["bad__echo"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
    network: ["127.0.0.1:${origin.port}"]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`,
  );
  a2a = await startInstance({ issuer: 'https://a.bastion.test', agents: { alice: { key: ALICE, peers: ['b'] } } });
});

after(async () => {
  await door?.close();
  await origin?.close();
  await a2a?.close();
});

test('tool door: a tools/call is timed stage by stage', async () => {
  const client = await connect(new URL('/mcp', door.base), EGRESS_KEY);
  try {
    const r = await client.callTool({ name: 'bad__echo', arguments: { text: 'hi' } });
    assert.notEqual(r.isError, true, JSON.stringify(r));
  } finally {
    await client.close();
  }
  await door.bastion.gateway.audit.flush();
  assertStages(await stageCounts(door.base, 'tool'), 'tool', ['resolveTool', 'decide', 'validateArguments', 'forward']);
});

test('model door: a chat completion is timed stage by stage', async () => {
  const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0 });
  const answer = await openai.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hello' }] }, { headers: { 'bastion-user': 'alice' } });
  assert.ok(answer.choices.length > 0);
  await door.bastion.gateway.audit.flush();
  assertStages(await stageCounts(door.base, 'model'), 'model', ['authenticate', 'route', 'readRequest', 'screenPrompt', 'releaseKey', 'forward']);
});

test('network door: a request on the proxy\'s own listener is timed stage by stage', async () => {
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: door.bastion.proxyUrl.port, method: 'GET', path: `http://127.0.0.1:${origin.port}/hello`, headers: { 'proxy-authorization': proxyAuth(EGRESS_KEY, 'support') } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 200);
  assert.equal(origin.received.length, 1);
  await door.bastion.gateway.audit.flush();
  assertStages(await stageCounts(door.base, 'network'), 'network', ['readForwardBody', 'releasePlaceholders', 'outboundDlp', 'swapReleased', 'forward']);
});

test('agent-to-agent door: a send refused for its peer is timed up to the refusing stage', async () => {
  const res = await post(`${a2a.base}/a2a/send`, { peer: 'nobody', message: textMessage('hi') }, ALICE);
  assert.equal(res.status, 403, JSON.stringify(res.json));
  await a2a.gateway.audit.flush();
  assertStages(await stageCounts(a2a.base, 'a2a'), 'a2a', ['mayContact']);
});
