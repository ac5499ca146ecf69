/**
 * server-everything, run directly, still gives the recorded baseline: a second, independent
 * upstream whose verdicts a gateway run must reproduce.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { everythingDirectFail, everythingDirectPass } from './baseline.ts';
import { formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { startEverythingHttp } from '../helpers/mcp.ts';

test('server-everything matches its recorded conformance baseline', { timeout: 120_000 }, async (t) => {
  const everything = await startEverythingHttp();
  t.after(() => everything.close());
  const run = await runConformanceDetailed(everything.url.href, { suite: 'all', timeoutMs: 90_000 });
  const verdicts = (v: 'pass' | 'fail'): string[] => [...run.reports.values()].filter((r) => r.verdict === v).map((r) => r.scenario).sort();
  const message = formatReports(run.reports);
  assert.deepEqual(verdicts('pass'), [...everythingDirectPass].sort(), message);
  assert.deepEqual(verdicts('fail'), [...everythingDirectFail].sort(), message);
});
