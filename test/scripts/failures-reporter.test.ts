/**
 * scripts/failures-reporter.ts: the runner scripts' guard against a node:test
 * run that exits 0 although a suite failed (a `describe` whose body throws).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const REPORTER = join(import.meta.dirname, '..', '..', 'scripts', 'failures-reporter.ts');
const dir = mkdtempSync(join(tmpdir(), 'bastion-reporter-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs `node --test` on `path` with the dot reporter, with or without the failures reporter; returns the exit status. */
function run(path: string, withReporter: boolean): { status: number | null; stderr: string } {
  const reporters = withReporter ? ['--test-reporter=dot', '--test-reporter-destination=stdout', `--test-reporter=${REPORTER}`, '--test-reporter-destination=stderr'] : ['--test-reporter=dot'];
  const r = spawnSync(process.execPath, ['--test', ...reporters, path], { encoding: 'utf8', env: { ...process.env, NODE_TEST_CONTEXT: undefined } });
  return { status: r.status, stderr: r.stderr };
}

const SUITE_THROWS = `import { describe, test } from 'node:test';
describe('fixture that fails to build', () => { throw new Error('boom'); });
test('ok', () => {});
`;

test('a suite whose body throws fails the run with the reporter', () => {
  const path = file('suite-throws.test.mjs', SUITE_THROWS);
  const r = run(path, true);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /failures reporter: 1 test\(s\) or suite\(s\) failed/);
});

test('a run that passes, with a skipped and a todo test, still exits 0', () => {
  const path = file('passes.test.mjs', `import { test } from 'node:test';
test('ok', () => {});
test('skipped', { skip: true }, () => { throw new Error('never'); });
test('todo', { todo: true }, () => { throw new Error('known'); });
`);
  assert.equal(run(path, true).status, 0);
});

test('a failing test fails the run, as without the reporter', () => {
  const path = file('test-fails.test.mjs', `import { test } from 'node:test';
test('bad', () => { throw new Error('no'); });
`);
  assert.equal(run(path, true).status, 1);
  assert.equal(run(path, false).status, 1);
});

