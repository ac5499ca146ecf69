import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { configCheck, resolveConfigPath } from '../../src/cli/commands/config-check.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';

const root = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'bastion-config-check-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], env: Record<string, string | undefined> = {}, cwd = dir): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, cwd };
  const code = await configCheck(argv, io);
  return { code, stdout, stderr };
}

function write(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

describe('bastion config check', () => {
  test('a Cedar file that does not parse, or does not validate, fails the check naming file and line', async () => {
    const base = `version: 1\nagents:\n  a:\n    tools: ["x__*"]\npolicies: ["./POLICY"]\n`;
    write('bad-parse.cedar', 'permit (principal, action, resource);\nforbid (principal action, resource);\n');
    const parse = await run(['--config', write('cedar-parse.yaml', base.replace('POLICY', 'bad-parse.cedar'))]);
    assert.equal(parse.code, EXIT.FAILED);
    assert.match(parse.stderr, /bad-parse\.cedar:2:\d+: .*parse/);
    write('bad-validate.cedar', 'forbid (principal, action == Bastion::Action::"tools/call", resource) when { context.args.nosuch == "x" };\n');
    const validate = await run(['--config', write('cedar-validate.yaml', base.replace('POLICY', 'bad-validate.cedar')), '--json']);
    assert.equal(validate.code, EXIT.FAILED);
    const out = JSON.parse(validate.stdout) as { ok: boolean; code: string; issues: { file: string; line: number }[] };
    assert.equal(out.code, 'ERR_POLICY_INVALID');
    assert.match(out.issues[0]?.file ?? '', /bad-validate\.cedar$/);
    assert.equal(out.issues[0]?.line, 1);
  });

  test('a valid config: ok line on stdout, warnings on stderr, exit 0', async () => {
    const r = await run(['--config', join(root, 'examples/quickstart/bastion.yaml')]);
    assert.equal(r.code, EXIT.OK);
    assert.equal(
      r.stdout,
      `ok: ${join(root, 'examples/quickstart/bastion.yaml')} (1 agent, 1 upstream)\n` +
        'path guard:\n' +
        `  upstream files: strict (workspace ${join(root, 'examples/quickstart/workspace')}): unclassified string arguments are checked as paths; 0 argumentKinds\n` +
        '    tools: tool schemas are not known without starting the upstream (bastion config check --probe lists them)\n' +
        'labels:\n' +
        '  upstream tools not known (see the path guard above; bastion config check --probe lists them): their unlabelled tools are not listed\n',
    );
    assert.equal(r.stderr, '');
  });

  test('unresolved secret references are warnings, not failures; key references are errors', async () => {
    const file = write('secrets.yaml', 'version: 1\nalerts:\n  webhook:\n    url: https://alerts.example.com/hook\n    headers:\n      Authorization: env:NOT_SET_ANYWHERE\n');
    const r = await run(['-c', file]);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.match(r.stderr, /alerts\.webhook\.headers\.Authorization: env:NOT_SET_ANYWHERE is not set/);
    const keys = write('keys.yaml', 'version: 1\nadmin:\n  keys: [env:NOT_SET_ANYWHERE]\n');
    const k = await run(['-c', keys]);
    assert.equal(k.code, EXIT.FAILED);
    assert.match(k.stderr, /admin\.keys\[0\]: env:NOT_SET_ANYWHERE is not set/);
  });

  test('an invalid config: every issue on stderr, exit 1', async () => {
    const file = write('bad.yaml', 'version: 1\nagents:\n  demo:\n    toolz: []\n    tools: ["files__["]\n');
    const r = await run(['--config', file]);
    assert.equal(r.code, EXIT.FAILED);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${file}:4:5: agents.demo.toolz: unknown key\n${file}:5:13: agents.demo.tools[0]: bad glob: a name pattern may hold letters, digits, _ - . / and * (the only wildcard)\n`);
  });

  test('--json reports issues on stdout', async () => {
    const file = write('bad-json.yaml', 'version: 1\nbogus: true\n');
    const r = await run(['--config', file, '--json']);
    assert.equal(r.code, EXIT.FAILED);
    assert.deepEqual(JSON.parse(r.stdout), {
      ok: false,
      code: 'ERR_CONFIG_INVALID',
      issues: [{ path: 'bogus', line: 2, col: 1, message: 'unknown key' }],
    });
    const ok = await run(['--json', '--config', write('good.yaml', 'version: 1\n')]);
    assert.equal(ok.code, EXIT.OK);
    assert.deepEqual(JSON.parse(ok.stdout), { ok: true, file: join(dir, 'good.yaml'), agents: 0, upstreams: 0, warnings: [], pathGuard: [], labels: { unlabelled: {}, unused: [], partial: false } });
  });

  // Issue 11, class 3: which tool arguments the path guard checks only because nothing classifies them.
  test('--probe starts each upstream once and lists the unclassified tool arguments; failures say why', async () => {
    const fixture = join(root, 'test/policy/fixtures/file-upstream.ts');
    const yaml =
      'version: 1\nupstreams:\n' +
      `  docs:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(fixture)}]\n    workspace: .\n` +
      `  classified:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(fixture)}]\n    pathGuard: named\n` +
      '    argumentKinds:\n      read_nested: { "/request/target": not-path, "/request": path }\n' +
      '  broken:\n    command: /nonexistent/bastion-no-such-server\n    connectTimeoutMs: 5000\n';
    const file = write('probe.yaml', yaml);
    const text = await run(['--config', file, '--probe']);
    assert.equal(text.code, EXIT.OK, text.stderr);
    assert.match(text.stdout, /\n {2}upstream docs: strict \(workspace [^)]+\): unclassified string arguments are checked as paths; 0 argumentKinds\n {4}unclassified in read_nested: \/request\/target\n/);
    assert.match(text.stdout, /\n {2}upstream classified: named: only arguments classified as paths \(and file: URIs\) are checked; 2 argumentKinds\n {4}every string argument of its tools is classified\n/);
    assert.match(text.stdout, /\n {2}upstream broken: named: .*\n {4}tools: not known: the upstream did not start \(ERR_UPSTREAM_\w+\)\n/);
    const json = JSON.parse((await run(['--config', file, '--probe', '--json'])).stdout) as { pathGuard: { upstream: string; mode: string; unclassified?: Record<string, string[]>; toolsUnknown?: string }[] };
    assert.deepEqual(json.pathGuard.find((u) => u.upstream === 'docs')?.unclassified, { read_nested: ['/request/target'] });
    const without = JSON.parse((await run(['--config', file, '--json'])).stdout) as typeof json;
    assert.deepEqual(without.pathGuard.map((u) => [u.upstream, u.mode, u.toolsUnknown]), [
      ['docs', 'strict', 'tool schemas are not known without starting the upstream'],
      ['classified', 'named', 'tool schemas are not known without starting the upstream'],
      ['broken', 'named', 'tool schemas are not known without starting the upstream'],
    ]);
  });

  // Issue 13: unlabelled tools are read strictly; config check lists them per agent.
  test('--probe lists, per agent, the tools no label pattern labels, and label patterns that name no tool', async () => {
    const fixture = join(root, 'test/policy/fixtures/file-upstream.ts');
    const yaml =
      'version: 1\nupstreams:\n' +
      `  docs:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(fixture)}]\n    workspace: .\n` +
      'agents:\n  reader:\n    tools: ["docs__*"]\n  labelled:\n    tools: ["docs__*"]\n    labels:\n      "docs__read_nested": { source: untrusted, effect: [read] }\n  none:\n    tools: []\n' +
      'tools:\n  "docs__nothing_like_this": { source: trusted, effect: [read] }\n';
    const file = write('labels.yaml', yaml);
    const json = JSON.parse((await run(['--config', file, '--probe', '--json'])).stdout) as { labels: { unlabelled: Record<string, string[]>; unused: string[]; partial: boolean } };
    assert.equal(json.labels.partial, false);
    assert.deepEqual(json.labels.unlabelled.reader, ['docs__read_nested']);
    assert.equal(json.labels.unlabelled.labelled, undefined, 'the agent whose own pattern labels the tool has nothing unlabelled');
    assert.equal(json.labels.unlabelled.none, undefined, 'an agent that may call nothing has nothing to label');
    assert.deepEqual(json.labels.unused, ['tools.docs__nothing_like_this']);
    const text = await run(['--config', file, '--probe']);
    assert.match(text.stdout, /\nlabels:\n {2}agent reader: unlabelled \(read strictly: untrusted results, every side effect\): docs__read_nested\n/);
    assert.match(text.stdout, /\n {2}tools\.docs__nothing_like_this names no listed tool\n/);
  });

  test('a missing file exits 3', async () => {
    const r = await run(['--config', 'missing.yaml']);
    assert.equal(r.code, EXIT.CONFIG);
    assert.match(r.stderr, /missing\.yaml not found/);
    const j = await run(['--config', 'missing.yaml', '--json']);
    assert.equal(j.code, EXIT.CONFIG);
    assert.equal(JSON.parse(j.stdout).code, 'ERR_CONFIG_NOT_FOUND');
  });

  test('an unknown flag or a positional is a usage error', async () => {
    const r = await run(['--bogus']);
    assert.equal(r.code, EXIT.USAGE);
    assert.match(r.stderr, /--bogus/);
    assert.equal((await run(['extra.yaml'])).code, EXIT.USAGE);
    assert.equal((await run(['--config'])).code, EXIT.USAGE);
  });

  test('--help prints usage and exits 0', async () => {
    const r = await run(['--help']);
    assert.equal(r.code, EXIT.OK);
    assert.match(r.stdout, /^Usage: bastion config check/);
  });

  test('the config path: --config, else $BASTION_CONFIG, else ./bastion.yaml, against cwd', async () => {
    const io = (env: Record<string, string | undefined>): CliIO => ({ stdout: () => {}, stderr: () => {}, env, cwd: '/srv/app' });
    assert.equal(resolveConfigPath('conf/b.yaml', io({ BASTION_CONFIG: '/etc/x.yaml' })), '/srv/app/conf/b.yaml');
    assert.equal(resolveConfigPath(undefined, io({ BASTION_CONFIG: '/etc/x.yaml' })), '/etc/x.yaml');
    assert.equal(resolveConfigPath(undefined, io({ BASTION_CONFIG: '' })), '/srv/app/bastion.yaml');
    assert.equal(resolveConfigPath(undefined, io({})), '/srv/app/bastion.yaml');
    write('bastion.yaml', 'version: 1\n');
    assert.equal((await run([])).code, EXIT.OK);
  });
});
