/**
 * The README's sandbox walkthrough with real processes: the echo server standing
 * in for api.github.com, `bastion serve` on a copy of examples/sandbox (ports
 * 0), `bastion secret add` from stdin, then examples/sandbox/agent.ts (the
 * official SDK client) exactly as the README runs it. Its Python script calls
 * the approved API with the placeholder (the API receives the real value), the
 * host file and the unapproved host are refused and audited, and `git push`
 * waits until `bastion approvals approve` lets it run. Finally `bastion audit
 * verify` passes.
 */
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';

const KEY = 'sandbox-walkthrough-key-0123456789';
const VALUE = 'ghp_' + 'S4ndb0xW4lk'.repeat(3) + 'ab';

const dir = tempDir();
const config = join(dir, 'bastion.yaml');
let echo: Started;
let served: Started;
let agent: Started | undefined;
let mcpUrl = '';

before(async () => {
  cpSync(join(ROOT, 'examples/sandbox/bastion.yaml'), config);
  echo = await startProcess([join(ROOT, 'examples/network-door/echo-server.ts')], { PORT: '0', ECHO_CA_FILE: join(dir, 'echo-ca.pem') }, /listening on 127\.0\.0\.1:(\d+)/);
  const port = echo.match[1] as string;
  const yaml = readFileSync(config, 'utf8').replaceAll(':8443', `:${port}`).replace('127.0.0.1:8790', '127.0.0.1:0').replace('127.0.0.1:8791', '127.0.0.1:0');
  writeFileSync(config, yaml);
  const added = await runCli(['secret', 'add', 'github', '--hosts', 'api.github.com', '--config', config], { input: `${VALUE}\n` });
  assert.equal(added.code, 0, added.stderr);
  served = await startProcess([CLI, 'serve', '--config', config], { BASTION_CODER_KEY: KEY, NODE_EXTRA_CA_CERTS: join(dir, 'echo-ca.pem') }, /egress proxy listening on (\S+)/);
  mcpUrl = (served.lines.find((l) => l.startsWith('Bastion is serving MCP at')) ?? '').replace('Bastion is serving MCP at ', '');
});

after(async () => {
  await stopAll([agent?.child, served?.child, echo?.child]);
});

test('the walkthrough: the placeholder reaches the API as the value, the host file and the other host are refused, git push waits for approval', async () => {
  const port = echo.match[1] as string;
  const url = mcpUrl;
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
  agent = await startProcess([join(ROOT, 'examples/sandbox/agent.ts')], { BASTION_CODER_KEY: KEY, BASTION_URL: url, API_PORT: port }, /== 4b\. git push is held for approval/);
  // Listened for now: once approved, the agent may finish before the approving CLI returns.
  const child = agent.child;
  const exited = new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
  // The push is held: approve it as the README says.
  let id: string | undefined;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline && id === undefined; ) {
    const list = await runCli(['approvals', 'list', '--json', '--config', config]);
    id = (JSON.parse(list.stdout || '{"approvals":[]}') as { approvals: { id: string; tool: string }[] }).approvals.find((a) => a.tool === 'sandbox__run')?.id;
    if (id === undefined) await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(id !== undefined, `git push is pending approval\n${agent.lines.join('\n')}`);
  assert.ok(!agent.lines.some((l) => l.includes('pushed')), 'nothing was pushed before the approval');
  const approved = await runCli(['approvals', 'approve', id, '--reason', 'walkthrough', '--config', config]);
  assert.equal(approved.code, 0, approved.stderr);
  const exit = await exited;
  const out = agent.lines.join('\n');
  assert.equal(exit, 0, out);

  // 1. The API received the real value; the sandbox held the placeholder; the echo came back redacted.
  assert.ok(echo.lines.some((l) => l.includes(`received Authorization: Bearer ${VALUE}`)), 'the API received the real value');
  assert.match(out, /the sandbox holds: bst_ph_\.\.\./);
  assert.match(out, /api answered 200/);
  assert.ok(!out.includes(VALUE), 'the value never reached the agent');
  // 2. The host file: refused before anything ran.
  assert.match(out, /== 2\.[^\n]*\n\(error\) Bastion refused this command line: cat may not touch \/etc\/shadow \(path\.outside\)/);
  // 3. The other host: refused by the network door.
  assert.match(out, /refused: .*403/);
  assert.ok(!echo.lines.some((l) => l.includes('/steal')), 'nothing reached the other host');
  // 4. Pushed only after the approval.
  assert.match(out, /pushed/);

  const tail = await runCli(['audit', 'tail', '-n', '100', '--config', config]);
  assert.match(tail.stdout, /coder tools\/call sandbox__run deny path\.outside/);
  assert.match(tail.stdout, /coder CONNECT evil\.example\.com:\d+ deny policy\.no_permit/);
  assert.match(tail.stdout, /coder tools\/call sandbox__run allow approval\.approved|coder tools\/call sandbox__run approve/);
  assert.ok(!tail.stdout.includes(VALUE));

  const stopped = new Promise((r) => served.child.once('exit', r));
  served.child.kill('SIGINT');
  await stopped;
  const verify = await runCli(['audit', 'verify', '--config', config]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
});
