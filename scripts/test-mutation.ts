/**
 * `npm run test:mutation`: mutation testing of the security core with Stryker
 * (its command runner: each mutant runs the test files that cover the module).
 * Not part of CI's time budget: a full run takes tens of minutes on 2 cores.
 *
 * Usage: node scripts/test-mutation.ts [group ...]   (default: every group)
 * Prints, per group, killed / survived / timed out / errors and the score
 * (killed + timed out over all valid mutants), then the total. Survivors are
 * listed with file, line and mutator in reports/mutation/<group>.txt.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LogLevel } from '@stryker-mutator/api/core';
import { Stryker } from '@stryker-mutator/core';

const root = join(import.meta.dirname, '..');

/** A module of the security core and the tests that are its evidence. */
interface Group {
  readonly mutate: readonly string[];
  readonly tests: readonly string[];
}

// Each group runs its fast unit tests only (no sockets, no child processes, no timing): the command runs once per mutant.
const GROUPS: Readonly<Record<string, Group>> = {
  // reasons.ts is a data table: its invariants are the table test's, and mutating each row's strings would cost hours.
  kernel: { mutate: ['src/door/authenticate.ts', 'src/door/audit-step.ts', 'src/door/refusal.ts', 'src/door/context.ts'], tests: ['test/door/authenticate.test.ts', 'test/door/reasons.test.ts', 'test/door/audit-step.test.ts', '--test-skip-pattern=closed.table'] },
  release: { mutate: ['src/vault/release.ts'], tests: ['test/vault/release.test.ts'] },
  hosts: { mutate: ['src/net/host-pattern.ts', 'src/vault/host-binding.ts'], tests: ['test/net/host-pattern.test.ts', 'test/vault/host-binding.test.ts'] },
  ssrf: { mutate: ['src/egress/ssrf-classify.ts'], tests: ['test/egress/ssrf-classify.test.ts'] },
  audit: { mutate: ['src/audit/chain.ts'], tests: ['test/audit/chain.test.ts', 'test/audit/density.test.ts'] },
  redact: { mutate: ['src/redact/forms.ts', 'src/redact/engine.ts'], tests: ['test/redact/forms.test.ts', 'test/redact/engine.test.ts', 'test/redact/engine-mutants.test.ts'] },
  policy: { mutate: ['src/policy/engine.ts'], tests: ['test/policy/engine.test.ts', 'test/policy/egress-policy.test.ts', 'test/policy/engine-decisions.test.ts', 'test/policy/engine-egress.test.ts', 'test/policy/engine-cedar.test.ts', 'test/policy/engine-compile.test.ts', 'test/policy/engine-authorize.test.ts'] },
  provenance: {
    mutate: ['src/provenance/facts.ts', 'src/provenance/tracker.ts', 'src/policy/guards.ts'],
    tests: ['test/provenance/facts.test.ts', 'test/provenance/tracker.test.ts', 'test/policy/guards.test.ts', 'test/mcp/provenance-stages.test.ts'],
  },
  paths: { mutate: ['src/policy/paths.ts'], tests: ['test/policy/paths.test.ts', 'test/policy/paths-rules.test.ts', 'test/policy/paths-arguments.test.ts'] },
  guard: { mutate: ['src/egress/guard.ts'], tests: ['test/egress/guard.test.ts'] },
};

const wanted = process.argv.slice(2);
const unknown = wanted.filter((g) => !Object.hasOwn(GROUPS, g));
if (unknown.length > 0) {
  console.error(`unknown group ${unknown.join(', ')}; groups: ${Object.keys(GROUPS).join(', ')}`);
  process.exit(2);
}
const names = wanted.length > 0 ? wanted : Object.keys(GROUPS);
mkdirSync(join(root, 'reports', 'mutation'), { recursive: true });

const rows: { group: string; killed: number; survived: number; timeout: number; errors: number; score: number }[] = [];
for (const group of names) {
  const g = GROUPS[group] as Group;
  const stryker = new Stryker({
    testRunner: 'command',
    // One process (no isolation): when Stryker kills a timed-out mutant's run, no test-file child is left looping.
    commandRunner: { command: `"${process.execPath}" --test --test-isolation=none --test-concurrency=1 --test-reporter=dot --test-reporter-destination=stdout --test-reporter="${join(root, 'scripts/failures-reporter.ts')}" --test-reporter-destination=stderr ${g.tests.join(' ')}` },
    mutate: [...g.mutate],
    concurrency: 2,
    // Added to 1.5x the unmutated run: a mutant that loops is cut after seconds, not a minute.
    timeoutMS: 15_000,
    reporters: ['progress'],
    tempDirName: '.stryker-tmp',
    cleanTempDir: 'always',
    // The sandbox needs the sources, tests and config; not the corpora, benches or reports.
    ignorePatterns: ['reports', 'bench', 'docs', '.bastion', 'dist'],
    logLevel: 'warn' as LogLevel,
  });
  const results = await stryker.runMutationTest();
  const count = (s: string): number => results.filter((r) => r.status === s).length;
  const killed = count('Killed');
  const timeout = count('Timeout');
  const survived = count('Survived') + count('NoCoverage');
  const errors = count('RuntimeError') + count('CompileError');
  const valid = killed + timeout + survived;
  rows.push({ group, killed, survived, timeout, errors, score: valid === 0 ? 1 : (killed + timeout) / valid });
  const lines = results
    .filter((r) => r.status === 'Survived' || r.status === 'NoCoverage')
    // A MutantResult's location is the report schema's: lines and columns count from 1.
    .map((r) => `${r.fileName}:${r.location.start.line}:${r.location.start.column} ${r.mutatorName} ${JSON.stringify(r.replacement ?? '')}`);
  writeFileSync(join(root, 'reports', 'mutation', `${group}.txt`), lines.join('\n') + '\n');
}

console.log('\ngroup     killed  survived  timeout  errors  score');
for (const r of rows) {
  console.log(`${r.group.padEnd(9)} ${String(r.killed).padStart(6)}  ${String(r.survived).padStart(8)}  ${String(r.timeout).padStart(7)}  ${String(r.errors).padStart(6)}  ${(r.score * 100).toFixed(1)}%`);
}
const sum = (k: 'killed' | 'survived' | 'timeout'): number => rows.reduce((a, r) => a + r[k], 0);
const total = sum('killed') + sum('timeout') + sum('survived');
console.log(`total     ${String(sum('killed')).padStart(6)}  ${String(sum('survived')).padStart(8)}  ${String(sum('timeout')).padStart(7)}          ${total === 0 ? '-' : (((sum('killed') + sum('timeout')) / total) * 100).toFixed(1)}%`);
