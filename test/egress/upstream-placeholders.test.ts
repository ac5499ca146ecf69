/**
 * A stdio upstream's environment gets the session agent's placeholder for
 * `vault:NAME`, never the value; an agent not granted the secret gets no
 * upstream at all (fail closed).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Secret } from '../../src/util/secret.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY, startEgress, type TestEgress } from '../helpers/egress.ts';
import { connect, ROOT } from '../helpers/gateway.ts';

let eg: TestEgress;
const VALUE = 'upstream-secret-value-0123456789';

before(async () => {
  eg = await startEgress(`version: 1
server: { listen: 127.0.0.1:0, egress: 127.0.0.1:0 }
store: { sqlite: ./b.db }
secrets:
  github: { hosts: [api.github.com] }
agents:
  demo:
    keys: [env:EGRESS_KEY]
    tools: ["bad__env_placeholder"]
    secrets: [github]
  other:
    keys: [env:OTHER_EGRESS_KEY]
    tools: ["bad__env_placeholder"]
upstreams:
  bad:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(join(ROOT, 'test/fixtures/bad-upstream.ts'))}]
    env: { GITHUB_TOKEN: "vault:github" }
`);
  await eg.door.vault.add('github', new Secret(VALUE), { hosts: ['api.github.com'] });
});
after(async () => {
  await eg?.close();
});

test('the upstream sees the calling agent’s placeholder in its environment, not the value', async () => {
  const client = await connect(eg.running.url, EGRESS_KEY);
  try {
    const r = (await client.callTool({ name: 'bad__env_placeholder', arguments: { name: 'GITHUB_TOKEN' } })) as { content: { text: string }[] };
    assert.equal(r.content[0]?.text, await eg.door.vault.placeholder('github', 'demo'));
  } finally {
    await client.close();
  }
});

test('an agent not granted the secret gets no upstream: the call fails closed', async () => {
  const client = await connect(eg.running.url, OTHER_EGRESS_KEY);
  try {
    const r = (await client.callTool({ name: 'bad__env_placeholder', arguments: { name: 'GITHUB_TOKEN' } })) as { isError?: boolean; content: { text: string }[] };
    assert.equal(r.isError, true);
    assert.doesNotMatch(JSON.stringify(r), /bst_ph_|upstream-secret-value/);
  } finally {
    await client.close();
  }
});
