/**
 * `bin/bastion.js`, the command users run. Regression: the bin imported
 * src/cli/main.ts, whose entry check compares its own file name with argv[1]
 * (the bin), so every command through the bin exited 0 having done nothing.
 *
 * Two ways in: the bin of this checkout, and the packed package (`npm pack`)
 * installed into an empty folder outside the repository, where Node refuses to
 * strip types under node_modules and the bin must still run the CLI. The install
 * takes its dependencies from npm's cache when it can (`--prefer-offline`) and runs
 * no install scripts.
 */
import assert from 'node:assert/strict';
import { execFile, type ExecFileException } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT } from '../helpers/gateway.ts';

const VERSION = (JSON.parse((await import('node:fs')).readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** This Node first on PATH (the bin's `#!/usr/bin/env node` must find Node 24), and no npm_* variables of an enclosing `npm test`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.PATH = `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`;
  return { ...env, ...extra };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: readonly string[], cwd: string, extraEnv: Record<string, string> = {}, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: childEnv(extraEnv), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err: ExecFileException | null, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

const CONFIG = `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./bastion.db }
agents:
  demo:
    keys: [env:BIN_TEST_AGENT_KEY]
`;
const KEY = { BIN_TEST_AGENT_KEY: 'bin-test-agent-key-0123456789abcdefghijkl' };

/** The checks both ways in share: version, usage, config check on a good, a bad and a missing file. */
async function assertCliWorks(bin: string, cwd: string): Promise<void> {
  const version = await run(bin, ['version'], cwd);
  assert.deepEqual(version, { code: 0, stdout: `bastion ${VERSION}\n`, stderr: '' });

  const usage = await run(bin, [], cwd);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^Usage: bastion <command>/);

  writeFileSync(join(cwd, 'bastion.yaml'), CONFIG);
  const ok = await run(bin, ['config', 'check'], cwd, KEY);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^ok: .*bastion\.yaml \(1 agent, 0 upstreams\)\n$/);

  writeFileSync(join(cwd, 'bad.yaml'), 'version: 1\nbogus: 1\n');
  const bad = await run(bin, ['config', 'check', '--config', 'bad.yaml'], cwd);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.yaml:2:1: bogus: unknown key/);

  const missing = await run(bin, ['config', 'check', '--config', 'nope.yaml'], cwd);
  assert.equal(missing.code, 3, missing.stderr);
  assert.doesNotMatch(`${ok.stderr}${bad.stderr}${missing.stderr}`, /ExperimentalWarning|internal error/);
}

describe('bin/bastion.js', () => {
  const dirs: string[] = [];
  const temp = (prefix: string): string => {
    const d = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(d);
    return d;
  };
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  test('from the checkout: runs the command and exits with its code', async () => {
    await assertCliWorks(join(ROOT, 'bin', 'bastion.js'), temp('bastion-bin-'));
  });

  test('node src/cli/main.ts still runs the CLI directly', async () => {
    const r = await run(process.execPath, [join(ROOT, 'src', 'cli', 'main.ts'), 'version'], temp('bastion-main-'));
    assert.deepEqual(r, { code: 0, stdout: `bastion ${VERSION}\n`, stderr: '' });
  });

  describe('the packed package, installed into an empty folder', () => {
    let app = '';
    let packed: string[] = [];
    before(async () => {
      const out = temp('bastion-pack-');
      const pack = await run('npm', ['pack', '--pack-destination', out, '--json', '--silent'], ROOT, {}, 180_000);
      assert.equal(pack.code, 0, pack.stderr);
      const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
      assert.ok(info);
      packed = info.files.map((f) => f.path);
      app = temp('bastion-app-');
      writeFileSync(join(app, 'package.json'), '{ "name": "app", "private": true }\n');
      const install = await run('npm', ['install', join(out, info.filename), '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', '--silent'], app, {}, 240_000);
      assert.equal(install.code, 0, install.stderr);
    });

    test('the tarball holds what the bin needs, and no tests or corpora', () => {
      for (const f of ['bin/bastion.js', 'bin/strip-types.js', 'src/cli/main.ts', 'src/store/sqlite-audit-worker.ts', 'dist/verify/index.js', 'package.json']) {
        assert.ok(packed.includes(f), `${f} missing from the tarball`);
      }
      assert.deepEqual(packed.filter((f) => /^(?:test|bench|\.ci|scripts)\//.test(f)), []);
    });

    test('node_modules/.bin/bastion: version, usage and config check, with their exit codes', async () => {
      const bin = join(app, 'node_modules', '.bin', 'bastion');
      assert.ok(existsSync(bin));
      await assertCliWorks(bin, app);
    });
  });
});
