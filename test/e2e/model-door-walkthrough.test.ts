/**
 * The model door walkthrough (docs/model-door.md) with real processes: the demo model
 * (examples/model-door/demo-model.ts, OpenAI wire format) as the provider,
 * `bastion secret add` for its key, `bastion serve` on a copy of
 * examples/model-door (ports 0), and the demo agent (the official `openai`
 * package and MCP SDK): a hidden cross-user tool, a pasted token vaulted and
 * used by a tool, a supervisor correction, and an extraction attempt that bans
 * the user; then `bastion bans list | lift` and `audit verify`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { ROOT, tempDir } from '../helpers/gateway.ts';
import { CLI, runCli, startProcess, stopAll, type Started } from '../helpers/processes.ts';

const KEY = 'model-walkthrough-key-0123456789abcdef';
const PROVIDER_KEY = 'sk-demo-provider-0123456789abcdef';
const TOKEN = 'ghp_' + 'W4lkThr0ughT0k3n'.repeat(2) + 'wxyz';
// `command: node` in the example must find Node 24, as it does under `npm run`.
const ENV = { PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`, BASTION_DEMO_KEY: KEY, DEMO_PROVIDER_KEY: PROVIDER_KEY };

const cli = (args: string[], opts: { input?: string } = {}) => runCli(args, { ...opts, env: ENV });
const start = startProcess;

const dir = tempDir();
const config = join(dir, 'bastion.yaml');
let model: Started;
let served: Started;

before(async () => {
  for (const f of ['bastion.yaml', 'tools.ts']) cpSync(join(ROOT, 'examples/model-door', f), join(dir, f));
  model = await start([join(ROOT, 'examples/model-door/demo-model.ts'), '--port', '0'], ENV, /demo model listening on (http:\/\/\S+)/);
  const yaml = readFileSync(config, 'utf8').replaceAll('http://127.0.0.1:8800', model.match[1] as string).replace('127.0.0.1:8790', '127.0.0.1:0').replace('127.0.0.1:8791', '127.0.0.1:0');
  writeFileSync(config, yaml);
  const added = await cli(['secret', 'add', 'demo-provider', '--hosts', '127.0.0.1', '--config', config], { input: PROVIDER_KEY });
  assert.equal(added.code, 0, added.stderr);
  served = await start([CLI, 'serve', '--config', config], ENV, /serving MCP at (http:\/\/\S+)\/mcp/);
});

after(async () => {
  await stopAll([served?.child, model?.child]);
});

test('the demo agent: tool hidden, token vaulted and used by its tool, supervisor correction, extraction banned; bans lifted; chain verifies', async () => {
  const agent = await new Promise<{ code: number; out: string }>((resolve) => {
    execFile(process.execPath, [join(ROOT, 'examples/model-door/agent.ts'), served.match[1] as string], { env: { ...process.env, ...ENV, DEMO_GITHUB_TOKEN: TOKEN }, encoding: 'utf8' }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: stdout + stderr }),
    );
  });
  assert.equal(agent.code, 0, agent.out);
  const out = agent.out;
  assert.match(out, /^1 tools: I was given these tools: github__get_user\. You said: What can you do\?$/m, out);
  assert.match(out, /^2 model calls: github__get_user\(\{"token":"<<SECRET_[a-z2-7]{12}>>"\}\)$/m);
  assert.match(out, new RegExp(`^2 tool result: \\{"login":"octocat","tokenReceived":"ghp_…${TOKEN.slice(-4)}"\\}$`, 'm'), 'the tool received the real token');
  assert.match(out, /^3 answer: I cannot see your issues from here, so I do not know how many are open\.$/m);
  assert.match(out, /^4 mallory: 403 ERR_USER_BANNED retry-after \d+$/m);
  assert.equal(out.match(/^4 mallory: 403 ERR_USER_BANNED/gm)?.length, 2, 'the retry is refused too');
  assert.ok(served.lines.some((l) => /ALERT model\.extraction_ban/.test(l)), 'an alert was raised');

  const bans = await cli(['bans', 'list', '--config', config]);
  assert.equal(bans.code, 0, bans.stderr);
  assert.match(bans.stdout, /"mallory" {2}agent support {2}level 1 {2}until /);
  const lift = await cli(['bans', 'lift', 'mallory', '--config', config]);
  assert.equal(lift.code, 0, lift.stderr);
  const pasted = await cli(['secret', 'pasted', 'list', '--config', config]);
  assert.match(pasted.stdout, /agent support {2}user "alice" {2}github-token {2}hosts github\.com,\*\.github\.com/);
  assert.ok(!pasted.stdout.includes(TOKEN));

  const exited = new Promise((r) => served.child.once('exit', r));
  served.child.kill('SIGINT');
  await exited;
  const verify = await cli(['audit', 'verify', '--config', config]);
  assert.equal(verify.code, 0, verify.stdout + verify.stderr);
  const tail = await cli(['audit', 'tail', '-n', '200', '--json', '--config', config]);
  assert.ok(!tail.stdout.includes(TOKEN) && !tail.stdout.includes(PROVIDER_KEY), 'no secret in the audit chain');
});
