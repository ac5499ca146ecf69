/**
 * Complexity tests for the shell-line parser: pathological lines are refused within the limits,
 * and the work grows about linearly with the input. Growth is judged by a ratio of times for an
 * input and one twice its size, best of several runs, against a generous bound (8x where linear
 * work gives about 2x and quadratic about 4x): the bound catches exponential or worse-than-
 * quadratic blow-ups without depending on how fast or busy the machine is.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadShellParser, parseShellLine, type ShellParseOptions } from '../../src/sandbox/shell.ts';

const open = { maxBytes: 1_000_000, maxCommands: 1_000_000, maxDepth: 1_000_000 } satisfies ShellParseOptions;

function bestOf(runs: number, fn: () => void): number {
  let best = Infinity;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    best = Math.min(best, performance.now() - t);
  }
  return best;
}

function growth(make: (n: number) => string, n: number): number {
  const small = make(n);
  const large = make(2 * n);
  for (let i = 0; i < 3; i++) {
    parseShellLine(small, open);
    parseShellLine(large, open);
  }
  // Repeat each parse enough for the small input to take ~20 ms, so timer and GC noise stay small.
  const once = bestOf(3, () => parseShellLine(small, open));
  const reps = Math.min(200, Math.max(1, Math.ceil(20 / Math.max(once, 0.01))));
  const run = (line: string) => () => {
    for (let i = 0; i < reps; i++) parseShellLine(line, open);
  };
  const a = bestOf(5, run(small));
  const b = bestOf(5, run(large));
  return b / Math.max(a, 0.05);
}

test('pathological lines are refused within the default limits', () => {
  loadShellParser();
  const cases: readonly (readonly [string, string, RegExp])[] = [
    ['10k open parentheses', '('.repeat(10_000), /nested too deeply|nesting deeper/],
    ['8k nested parentheses', '('.repeat(8_000) + 'ls' + ')'.repeat(8_000), /nested too deeply|nesting deeper/],
    ['4k nested subshells', '( '.repeat(4_000) + 'ls' + ' )'.repeat(4_000), /nested too deeply|nesting deeper/],
    ['100 KB of quotes', "'".repeat(100_000), /longer than 16384 bytes/],
    ['3k nested substitutions', '$('.repeat(3_000) + 'ls' + ')'.repeat(3_000), /nested too deeply|nesting deeper/],
    ['2k nested arithmetic', '$(('.repeat(2_000) + '1' + '))'.repeat(2_000), /nested too deeply|nesting deeper/],
    ['500 here-documents', Array.from({ length: 500 }, (_, i) => `cat <<E${i}`).join(';') + '\n' + Array.from({ length: 500 }, (_, i) => `x\nE${i}`).join('\n'), /more than 256 commands/],
    ['5k commands', 'ls;'.repeat(5_000), /longer than|more than 256 commands/],
  ];
  for (const [name, line, reason] of cases) {
    const r = parseShellLine(line);
    assert.equal(r.ok, false, name);
    if (!r.ok) {
      assert.equal(r.code, 'ERR_SHELL_UNSUPPORTED', `${name}: ${r.reason}`);
      assert.match(r.reason, reason, name);
    }
  }
  // Many here-documents within the limits parse, listing every substitution in their bodies.
  const docs = Array.from({ length: 100 }, (_, i) => `cat <<E${i}`).join(';') + '\n' + Array.from({ length: 100 }, (_, i) => `$(id)\nE${i}`).join('\n');
  const r = parseShellLine(docs);
  assert.equal(r.ok, true);
  if (r.ok) assert.equal(r.commands.length, 200);
});

test('work grows about linearly with the size of the line', () => {
  loadShellParser();
  const families: readonly (readonly [string, (n: number) => string, number])[] = [
    ['quoted parts in one word', (n) => 'echo ' + "'a'".repeat(n), 400],
    ['arguments', (n) => 'echo ' + 'a '.repeat(n), 400],
    ['escapes', (n) => 'echo ' + 'a\\ '.repeat(n), 800],
    ['commands', (n) => 'ls;'.repeat(n), 300],
    ['pipelines', (n) => 'a|'.repeat(n) + 'b', 150],
    ['here-documents', (n) => Array.from({ length: n }, (_, i) => `cat <<E${i}`).join(';') + '\n' + Array.from({ length: n }, (_, i) => `x\nE${i}`).join('\n'), 150],
    ['brace expansions', (n) => 'echo ' + '{a,b}'.repeat(n), 300],
    ['nested subshells', (n) => '( '.repeat(n) + 'ls' + ' )'.repeat(n), 50],
    ['nested substitutions', (n) => 'echo ' + '"$(echo '.repeat(n) + 'x' + ')"'.repeat(n), 40],
    ['double-quoted expansions', (n) => 'echo "' + '$a${b}'.repeat(n) + '"', 200],
  ];
  for (const [name, make, n] of families) {
    const ratio = growth(make, n);
    assert.ok(ratio < 8, `${name}: doubling the input multiplied the time by ${ratio.toFixed(1)}`);
  }
});
