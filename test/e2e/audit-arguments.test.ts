/**
 * `audit.recordArguments: redacted`: the audit record carries the call's
 * arguments with credentials redacted (by default it carries only the digest).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TEST_KEY, connect, startGateway, tempDir, type TestGateway, BAD_UPSTREAM_YAML } from '../helpers/gateway.ts';

const FAKE_TOKEN = ['gh', 'p_', 'Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8'].join('');
let gw: TestGateway;

before(async () => {
  gw = await startGateway(
    tempDir(),
    `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
audit:
  recordArguments: redacted
agents:
  a:
    keys: [env:T_KEY]
    tools: ["bad__echo"]
${BAD_UPSTREAM_YAML}`,
    { T_KEY: TEST_KEY },
  );
});
after(async () => gw?.close());

test('arguments are recorded with credentials redacted, beside their digest', async () => {
  const client = await connect(gw.url, TEST_KEY);
  try {
    await client.callTool({ name: 'bad__echo', arguments: { text: `use ${FAKE_TOKEN} now` } });
  } finally {
    await client.close();
  }
  const rec = (await gw.gateway.store.readAudit(1, 1000)).findLast((r) => r.method === 'tools/call');
  const args = rec?.args as { text?: string } | undefined;
  assert.match(args?.text ?? '', /^use \[REDACTED:github-token\] now$/);
  assert.match(String(rec?.argsDigest), /^[0-9a-f]{64}$/);
  assert.ok(!JSON.stringify(await gw.gateway.store.readAudit(1, 1000)).includes(FAKE_TOKEN));
});
