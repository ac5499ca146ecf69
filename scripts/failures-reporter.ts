/**
 * A node:test reporter that makes any failure fail the run: it counts
 * `test:fail` events, suites included, and sets a non-zero exit code.
 *
 * Why: Node 24.9's runner reports a `describe` whose body throws (a fixture
 * that fails to build, say) as failed, yet exits 0, so the tests inside it
 * silently never run and CI stays green. Every runner script (npm test,
 * test:corpora, test:mutation) adds this reporter beside its visible one.
 * Prints one line to its destination: how many tests or suites failed.
 */
import type { TestEvent } from 'node:test/reporters';

export default async function* failures(source: AsyncIterable<TestEvent>): AsyncGenerator<string> {
  let failed = 0;
  for await (const event of source) {
    // A todo or skip never fails; a failing test or suite does, wherever it sits.
    if (event.type === 'test:fail' && event.data.todo === undefined && event.data.skip === undefined) failed++;
  }
  if (failed > 0) process.exitCode = 1;
  yield failed > 0 ? `failures reporter: ${failed} test(s) or suite(s) failed\n` : '';
}
