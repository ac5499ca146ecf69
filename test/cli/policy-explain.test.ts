import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { policyExplain } from '../../src/cli/commands/policy-explain.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';

const dir = mkdtempSync(join(tmpdir(), 'bastion-policy-explain-'));
after(() => rmSync(dir, { recursive: true, force: true }));

mkdirSync(join(dir, 'policies'));
writeFileSync(
  join(dir, 'policies', 'guard.cedar'),
  'forbid(principal, action == Bastion::Action::"tools/call", resource) when { context.args has path && context.args.path like "*secret*" };\n',
);
const CONFIG = `version: 1
agents:
  demo:
    tools: ["files__*", "ws__*"]
    deny: ["files__write_file"]
    approve: ["files__move_file"]
    resources: ["file:///work/*"]
    prompts: ["files__*"]
upstreams:
  files:
    command: node
    args: ["server.js"]
  ws:
    command: node
    args: ["server.js"]
    workspace: /work
    argumentKinds:
      search: { "/opts/text": not-path }
policies: ["policies/*.cedar"]
paths:
  allow: ["/work/**"]
  deny: ["**/.env"]
`;
writeFileSync(join(dir, 'bastion.yaml'), CONFIG);
writeFileSync(join(dir, 'bad-policy.yaml'), CONFIG.replace('policies/*.cedar', 'bad/*.cedar'));
mkdirSync(join(dir, 'bad'));
writeFileSync(join(dir, 'bad', 'x.cedar'), 'forbid(principal, action, resource) when { context.args.nosuch == 1 };\n');

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: {}, cwd: dir };
  const code = await policyExplain(argv, io);
  return { code, stdout, stderr };
}

describe('bastion policy explain', () => {
  test('allow: exit 0, prints effect, reason, rule and the policy text', async () => {
    const r = await run(['--agent', 'demo', '--tool', 'files__read_text_file']);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.match(r.stdout, /^effect: allow\nreason: policy\.permit\nrule: {3}agents\.demo\.tools\[0\]\n/);
    assert.match(r.stdout, /resource\.name like "files__\*"/);
  });

  test('deny and approve exit 1', async () => {
    const deny = await run(['--agent', 'demo', '--tool', 'files__write_file']);
    assert.equal(deny.code, EXIT.FAILED);
    assert.match(deny.stdout, /rule: {3}agents\.demo\.deny\[0\]/);
    const approve = await run(['--agent', 'demo', '--tool', 'files__move_file', '--json']);
    assert.equal(approve.code, EXIT.FAILED);
    const parsed = JSON.parse(approve.stdout) as { effect: string; rule: string; policies: { id: string; text: string }[] };
    assert.equal(parsed.effect, 'approve');
    assert.deepEqual(parsed.policies.map((p) => p.id), ['agents.demo.approve[0]']);
  });

  test('--args reaches context.args; hand-written policies decide with their file ids', async () => {
    const r = await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/work/top-secret.txt"}', '--json']);
    assert.equal(r.code, EXIT.FAILED);
    const parsed = JSON.parse(r.stdout) as { effect: string; reason: string; rule: string };
    assert.deepEqual([parsed.effect, parsed.reason, parsed.rule], ['deny', 'policy.forbid', 'guard.cedar#0']);
  });

  // Issue 11, class 3: explain answered "allow" for a call the door refuses on its path guard.
  test('the path guard decides after Cedar, with the door\'s own code: a denied .env is denied with reason and rule', async () => {
    const r = await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/work/.env"}']);
    assert.equal(r.code, EXIT.FAILED, r.stdout);
    assert.match(r.stdout, /^effect: deny\nreason: path\.denied\nrule: {3}paths\.deny\[0\]\n/);
    assert.match(r.stdout, /\ncedar: {2}allow policy\.permit \(agents\.demo\.tools\[0\]\)\n/);
    assert.match(r.stdout, /\npaths: {2}deny path\.denied \(paths\.deny\[0\], \/path \(path\)\); pathGuard named, 1 checked; tool schema not known here/);
    const json = JSON.parse((await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/work/.env"}', '--json'])).stdout) as Record<string, unknown>;
    assert.deepEqual([json.effect, json.reason, json.rule], ['deny', 'path.denied', 'paths.deny[0]']);
    assert.deepEqual(json.cedar, { effect: 'allow', reason: 'policy.permit', rule: 'agents.demo.tools[0]' });
    assert.deepEqual(json.paths, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]', mode: 'named', checked: 1, argument: '/path', argumentKind: 'path', schemaKnown: false });
    const ok = await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/work/notes.txt"}']);
    assert.equal(ok.code, EXIT.OK, ok.stdout);
    assert.match(ok.stdout, /^effect: allow\nreason: policy\.permit\n/);
    const outside = await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/etc/passwd"}', '--json']);
    assert.equal((JSON.parse(outside.stdout) as { reason: string }).reason, 'path.outside');
  });

  test('an upstream with a workspace is strict: a nested unclassified string is checked; argumentKinds are honoured', async () => {
    const r = await run(['--agent', 'demo', '--tool', 'ws__search', '--args', '{"opts":{"q":".env","text":"/etc/passwd"}}', '--json']);
    assert.equal(r.code, EXIT.FAILED);
    const json = JSON.parse(r.stdout) as { reason: string; rule: string; paths: { mode: string; argument: string; argumentKind: string } };
    assert.deepEqual([json.reason, json.rule, json.paths.mode, json.paths.argument, json.paths.argumentKind], ['path.denied', 'paths.deny[0]', 'strict', '/opts/q', 'unclassified']);
    const classified = await run(['--agent', 'demo', '--tool', 'ws__search', '--args', '{"opts":{"q":"notes","text":"/etc/passwd"}}']);
    assert.equal(classified.code, EXIT.OK, classified.stdout);
  });

  test('a file: resource is path-checked; a Cedar denial still comes first', async () => {
    const r = await run(['-a', 'demo', '--resource', 'file:///work/%2e%2e/work/.env', '--json']);
    assert.equal(r.code, EXIT.FAILED);
    assert.deepEqual((JSON.parse(r.stdout) as { reason: string; rule: string }).rule, 'paths.deny[0]');
    const forbid = await run(['--agent', 'demo', '--tool', 'files__read_text_file', '--args', '{"path":"/work/secret/.env"}', '--json']);
    const f = JSON.parse(forbid.stdout) as { reason: string; paths: { reason: string } };
    assert.deepEqual([f.reason, f.paths.reason], ['policy.forbid', 'path.denied']);
  });

  test('--resource and --prompt', async () => {
    assert.equal((await run(['-a', 'demo', '--resource', 'file:///work/a.txt'])).code, EXIT.OK);
    assert.equal((await run(['-a', 'demo', '--resource', 'file:///etc/passwd'])).code, EXIT.FAILED);
    assert.equal((await run(['-a', 'demo', '--prompt', 'files__summary'])).code, EXIT.OK);
  });

  test('usage errors exit 2; bad --args names the flag', async () => {
    const bad = await run(['--agent', 'demo', '--tool', 'x', '--args', '{nope']);
    assert.equal(bad.code, EXIT.USAGE);
    assert.match(bad.stderr, /--args is not valid JSON/);
    assert.equal((await run(['--agent', 'demo', '--tool', 'x', '--args', '[1]'])).code, EXIT.USAGE);
    assert.equal((await run(['--tool', 'x'])).code, EXIT.USAGE);
    assert.equal((await run(['--agent', 'demo', '--tool', 'x', '--prompt', 'y'])).code, EXIT.USAGE);
    assert.equal((await run(['--agent', 'demo', '--tool', 'x', '--bogus'])).code, EXIT.USAGE);
    const help = await run(['--help']);
    assert.equal(help.code, EXIT.OK);
    assert.match(help.stdout, /1 deny or approve/);
  });

  test('config problems exit 3: missing file, invalid policy file', async () => {
    assert.equal((await run(['--agent', 'demo', '--tool', 'x', '--config', 'nope.yaml'])).code, EXIT.CONFIG);
    const bad = await run(['--agent', 'demo', '--tool', 'x', '--config', 'bad-policy.yaml']);
    assert.equal(bad.code, EXIT.CONFIG);
    assert.match(bad.stderr, /x\.cedar:1:\d+: /);
  });
});
