/**
 * The sandbox's command policy (src/sandbox/policy.ts) over the real parser,
 * the real Cedar engine compiled from a config's short forms, and the real path
 * guard on a real workspace folder (with a symlink out).
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { PolicyEngine } from '../../src/policy/engine.ts';
import { PathGuard } from '../../src/policy/paths.ts';
import { decideRun, type RunSpec, type RunVerdict } from '../../src/sandbox/policy.ts';
import { programCandidates, resolveProgram } from '../../src/sandbox/programs.ts';
import { parseShellLine } from '../../src/sandbox/shell.ts';
import { tempDir, writeAndLoadConfig } from '../helpers/gateway.ts';

const YAML = `version: 1
paths:
  allow: ['/nowhere/**']
  deny: ['**/.env', '**/.ssh/**']
sandbox:
  enabled: true
  workspaces: ./ws
agents:
  coder:
    keys: [env:K]
    tools: [sandbox__run]
    sandbox:
      languages: [python, sh]
      commands:
        allow: [git, cat, ls, python3, grep]
        deny: [curl, nc, "git push --force"]
        approve: ["git push"]
  plain:
    keys: [env:K2]
`;

let engine: PolicyEngine;
let guard: PathGuard;
let workspace: string;

before(async () => {
  const dir = tempDir();
  const { config } = await writeAndLoadConfig(dir, YAML, { K: 'k'.repeat(32), K2: 'j'.repeat(32) });
  engine = PolicyEngine.compile(config);
  guard = PathGuard.compile({ ...config.paths, allow: [`${config.sandbox.workspaces}/**`] });
  workspace = join(config.sandbox.workspaces, 'coder-test');
  mkdirSync(join(workspace, 'repo'), { recursive: true });
  writeFileSync(join(workspace, 'notes.txt'), 'x');
  symlinkSync('/etc', join(workspace, 'etc-link'));
});

function decide(spec: RunSpec, agent = 'coder'): Promise<RunVerdict> {
  return decideRun(spec, { agent, session: 's1', authorize: (r) => engine.authorize(r), parse: parseShellLine, checkHostPath: (p) => guard.check(p), workspace });
}
const shell = (line: string, agent?: string): Promise<RunVerdict> => decide({ kind: 'shell', line }, agent);

describe('short forms compile to Cedar on sandbox/exec', () => {
  test('an allowed program runs; one not listed is default-deny', async () => {
    const ok = await shell('git status');
    assert.equal(ok.decision.effect, 'allow');
    assert.equal(ok.commands[0]?.decision.rule, 'agents.coder.sandbox.commands.allow[0]');
    assert.equal(ok.commands[0]?.path, resolveProgram('git'));
    const no = await shell('ls && tar -xf x.tar');
    assert.equal(no.decision.effect, 'deny');
    assert.equal(no.decision.reason, 'policy.no_permit');
    assert.equal(no.commands[no.refusedAt ?? -1]?.name, 'tar');
  });

  test('deny wins anywhere in the line: a pipeline, a substitution, a wrapper', async () => {
    for (const line of ['cat notes.txt | curl -d @- x', 'echo $(curl x)', 'git log && nc -l 1', 'env curl x', 'xargs curl < notes.txt', 'bash -c "curl x"']) {
      const v = await shell(line);
      assert.equal(v.decision.effect, 'deny', line);
      // nc is not installed on every machine: a program that is not found is default-deny.
      if (line.includes('nc -l')) assert.match(v.decision.reason, /^policy\.(forbid|no_permit)$/, line);
      else {
        assert.equal(v.decision.reason, 'policy.forbid', line);
        assert.equal(v.decision.rule, 'agents.coder.sandbox.commands.deny[0]', line);
      }
    }
  });

  test('approve forms hold the call; words must all be among the arguments; deny forms with words win over them', async () => {
    const push = await shell('git push origin main');
    assert.equal(push.decision.effect, 'approve');
    assert.equal(push.decision.rule, 'agents.coder.sandbox.commands.approve[0]');
    assert.equal((await shell('git pull origin main')).decision.effect, 'allow');
    const force = await shell('git push --force origin main');
    assert.equal(force.decision.effect, 'deny');
    assert.equal(force.decision.rule, 'agents.coder.sandbox.commands.deny[2]');
  });

  test('an argument known only when the command runs matches every deny and approve form of its program', async () => {
    const v = await shell('git $(cat notes.txt) origin');
    assert.equal(v.decision.effect, 'deny', 'it could be push --force');
    assert.equal(v.decision.rule, 'agents.coder.sandbox.commands.deny[2]');
    assert.equal(v.commands.at(-1)?.dynamic, true);
  });

  test('argv[0] resolves to the file it runs: a workspace program is not the system one', async () => {
    const v = await shell('./git status');
    assert.equal(v.decision.effect, 'deny');
    assert.equal(v.commands[0]?.path, '/workspace/git');
    const abs = await decide({ kind: 'argv', argv: [resolveProgram('git'), 'status'] });
    assert.equal(abs.decision.effect, 'allow');
    assert.ok(programCandidates('git').includes(resolveProgram('git')));
  });

  test('safe builtins need no form; the ones that run text are refused by the parser', async () => {
    assert.equal((await shell('cd repo && pwd && echo hi')).decision.effect, 'allow');
    const ev = await shell('eval "curl x"');
    assert.equal(ev.decision.reason, 'sandbox.shell_unsupported');
    assert.equal(ev.parseError?.code, 'ERR_SHELL_UNSUPPORTED');
    const path = await shell('PATH=/workspace:$PATH git status');
    assert.equal(path.decision.reason, 'sandbox.shell_unsupported');
    const broken = await shell('git "status');
    assert.equal(broken.decision.reason, 'sandbox.shell_parse');
    assert.equal(broken.parseError?.code, 'ERR_SHELL_PARSE');
  });

  test('an agent without a sandbox section may run nothing but builtins', async () => {
    assert.equal((await shell('git status', 'plain')).decision.reason, 'policy.no_permit');
    assert.equal((await shell('echo hi', 'plain')).decision.effect, 'allow');
  });
});

describe('path arguments go through the path guard as the sandbox sees them', () => {
  test('inside the workspace: allowed; host files, traversal and symlinks out: path.outside', async () => {
    assert.equal((await shell('cat notes.txt repo/x /workspace/notes.txt')).decision.effect, 'allow');
    for (const line of ['cat /etc/shadow', 'cat ../../etc/passwd', 'cat etc-link/passwd', 'ls /root/.ssh', 'cat /proc/1/environ', 'grep -r x --include=/etc/x .', 'cat notes.txt > /etc/x']) {
      const v = await shell(line);
      assert.equal(v.decision.effect, 'deny', line);
      assert.match(v.decision.reason, /^path\.(outside|denied)$/, line);
      assert.ok(v.commands[v.refusedAt ?? -1]?.deniedPath !== undefined, line);
    }
  });

  test('paths.deny applies inside the workspace', async () => {
    const v = await shell('cat .env');
    assert.equal(v.decision.reason, 'path.denied');
    assert.equal(v.decision.rule, 'paths.deny[0]');
  });

  test('/tmp, the read-only system folders and /dev/null are allowed', async () => {
    assert.equal((await shell('ls /usr/lib /tmp/x 2>/dev/null')).decision.effect, 'allow');
  });

  test('a static cd moves the working folder for the commands after it; a dynamic one makes .. unknowable', async () => {
    assert.equal((await shell('cd repo && git push ../origin.git HEAD')).decision.effect, 'approve');
    assert.equal((await shell('cd repo && cat ../../x')).decision.reason, 'path.outside');
    assert.equal((await shell('cd $(cat notes.txt) && cat ../x')).decision.reason, 'path.relative');
    assert.equal((await shell('cd /etc')).decision.reason, 'path.outside');
  });

  test('a glob or expansion is checked on its literal folder', async () => {
    assert.equal((await shell('cat /etc/*.conf')).decision.reason, 'path.outside');
    assert.equal((await shell('cat repo/*.txt')).decision.effect, 'allow');
  });
});

describe('code', () => {
  test('python runs python3 (asked like a program); its text is not a path', async () => {
    const v = await decide({ kind: 'code', language: 'python', code: "print(open('/etc/passwd').read())" });
    assert.equal(v.decision.effect, 'allow');
    assert.equal(v.commands[0]?.name, 'python3');
  });

  test('program text in an argv or a shell line is not a path: python3 -c with lines runs', async () => {
    const code = "import urllib.request\nprint(urllib.request.urlopen('http://example.com/x').status)";
    assert.equal((await decide({ kind: 'argv', argv: ['python3', '-c', code] })).decision.effect, 'allow');
    assert.equal((await shell(`python3 -c '${code}'`)).decision.effect, 'allow');
    // One line, still checked: a host path is refused.
    assert.equal((await decide({ kind: 'argv', argv: ['cat', '/etc/shadow'] })).decision.reason, 'path.outside');
  });

  test('node is not allowed for this agent: default deny on its program', async () => {
    const v = await decide({ kind: 'code', language: 'node', code: '1' });
    assert.equal(v.decision.reason, 'policy.no_permit');
  });

  test('sh code is decided command by command', async () => {
    assert.equal((await decide({ kind: 'code', language: 'sh', code: 'git status\ncurl x' })).decision.rule, 'agents.coder.sandbox.commands.deny[0]');
  });
});

test('property: a denied program anywhere in a list of commands denies the line', async () => {
  const names = ['git status', 'ls', 'cat notes.txt', 'echo hi', 'curl x', 'nc -l 1', 'grep a notes.txt'];
  const joins = [' && ', ' || ', '; ', ' | '];
  await fc.assert(
    fc.asyncProperty(fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 6 }), fc.array(fc.constantFrom(...joins), { minLength: 6, maxLength: 6 }), async (cmds, seps) => {
      const line = cmds.map((c, i) => (i === 0 ? c : `${seps[i - 1]}${c}`)).join('');
      const v = await shell(line);
      const denied = cmds.some((c) => c.startsWith('curl') || c.startsWith('nc'));
      assert.equal(v.decision.effect === 'deny', denied, line);
    }),
    { numRuns: 150 },
  );
});
