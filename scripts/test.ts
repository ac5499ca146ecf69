/**
 * `npm test`: build `bastion/verify` (dist/verify), type-check, lint (type-aware promise rules), then run every test file under test/ with node's test
 * runner. Test files may start PostgreSQL/Redis themselves; none is skipped.
 * Usage: node scripts/test.ts [file-or-substring ...]
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');

function collect(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) collect(full, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, full));
  }
  return out;
}

const filters = process.argv.slice(2);
const files = collect(join(root, 'test'), []).sort().filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(2);
}

// The `bastion/verify` package entry is built JavaScript (dist/verify): rebuild it so tests never run a stale copy.
const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.verify.json')], { stdio: 'inherit', cwd: root });
if (build.status !== 0) {
  console.error('building bastion/verify failed');
  process.exit(build.status ?? 1);
}

if (filters.length === 0 || process.env.CI) {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--noEmit', '-p', root], { stdio: 'inherit', cwd: root });
  if (tsc.status !== 0) {
    console.error('type check failed');
    process.exit(tsc.status ?? 1);
  }
  const lint = spawnSync(process.execPath, [join(root, 'node_modules/eslint/bin/eslint.js'), 'src', 'test', 'scripts', 'bench'], { stdio: 'inherit', cwd: root });
  if (lint.status !== 0) {
    console.error('lint failed');
    process.exit(lint.status ?? 1);
  }
}

const res = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=240000', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${join(root, 'scripts/failures-reporter.ts')}`, '--test-reporter-destination=stderr', ...files],
  { stdio: 'inherit', cwd: root, env: { ...process.env, BASTION_TEST: '1' } },
);
process.exit(res.status ?? 1);
