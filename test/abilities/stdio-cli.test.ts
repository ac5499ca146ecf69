/**
 * Abilities from the CLI, as an operator runs them: the bound secret added
 * with `bastion secret add --header --format` (value on stdin), then
 * `bastion stdio` serving an SDK client whose ability call reaches a loopback
 * origin with the credential, while the result and `bastion audit tail` show
 * only its name.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { makeCert, startOrigin, TEST_MASTER_KEY } from '../helpers/egress.ts';
import { tempDir } from '../helpers/gateway.ts';
import { CLI, runCli } from '../helpers/processes.ts';

const VALUE = 'cli_token_' + 'U2VjcmV0VmFs'.repeat(3);

test('bastion secret add + bastion stdio: an ability call with its bound secret, audited by name', async () => {
  const dir = tempDir();
  // The CA reaches the stdio process as NODE_EXTRA_CA_CERTS, as an operator would trust a private CA.
  const cert = makeCert(dir, ['echo.acme.test'], 'echo');
  const origin = await startOrigin(cert);
  const config = join(dir, 'bastion.yaml');
  writeFileSync(
    config,
    `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./b.db }
secrets:
  echo_token: { hosts: [echo.acme.test] }
egress:
  staticHosts: { echo.acme.test: [127.0.0.1] }
abilities:
  acme__echo:
    description: Echo the request.
    url: "https://echo.acme.test:${origin.port}/echo{?q}"
    params: { type: object, properties: { q: { type: string } } }
    secret: echo_token
skillsets:
  acme: [acme__echo]
agents:
  demo:
    keys: [env:DEMO_KEY]
    skillsets: [acme]
    unsafeAllowPrivate: { hosts: [echo.acme.test], ranges: [127.0.0.1/32] }
`,
  );
  const env = { BASTION_MASTER_KEY: TEST_MASTER_KEY, DEMO_KEY: 'demo-key-0123456789abcdef-agent', NODE_EXTRA_CA_CERTS: cert.certFile };
  const added = await runCli(['secret', 'add', 'echo_token', '--hosts', 'echo.acme.test', '--header', 'X-Api-Key', '--format', 'key={}', '--config', config], { input: VALUE, env });
  assert.equal(added.code, 0, added.stderr);
  const client = new Client({ name: 'stdio-abilities', version: '1.0.0' });
  await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'stdio', '--agent', 'demo', '--config', config], env: { ...process.env, ...env } as Record<string, string>, stderr: 'ignore' }));
  try {
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['acme__echo']);
    const r = (await client.callTool({ name: 'acme__echo', arguments: { q: 'hi' } })) as { isError?: boolean; content: { text?: string }[] };
    assert.equal(r.isError, undefined, JSON.stringify(r));
    const got = origin.received.at(-1);
    assert.equal(got?.url, '/echo?q=hi');
    assert.equal(got?.headers['x-api-key'], `key=${VALUE}`);
    assert.ok(typeof got?.headers['bastion-context'] === 'string', 'signed by default');
    const echoed = r.content[0]?.text ?? '';
    assert.ok(!echoed.includes(VALUE));
    assert.match(echoed, /"x-api-key":"key=\[REDACTED:vault-secret\]"/);
  } finally {
    await client.close();
    await origin.close();
  }
  const tail = await runCli(['audit', 'tail', '--json', '--config', config], { env });
  assert.equal(tail.code, 0, tail.stderr);
  assert.ok(!tail.stdout.includes(VALUE), 'the value is in no record');
  const call = tail.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { method: string; target: string | null; detail?: Record<string, unknown> })
    .findLast((rec) => rec.method === 'tools/call');
  assert.equal(call?.target, 'acme__echo');
  assert.equal(call?.detail?.secret, 'echo_token');
  const ability = call?.detail?.ability as { method?: string; host?: string; path?: string; status?: number };
  assert.deepEqual([ability.method, ability.host, ability.path, ability.status], ['GET', 'echo.acme.test', '/echo', 200]);
});
