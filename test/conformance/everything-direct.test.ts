/**
 * server-everything, run directly at the 2025-11-25 wire, still gives the recorded baseline: a
 * second, independent upstream whose verdicts a gateway run must reproduce.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { everythingDirectFail2025, everythingDirectPass2025, scenarios2025 } from './baseline.ts';
import { formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { startEverythingHttp } from '../helpers/mcp.ts';

test('server-everything matches its recorded 2025-11-25 conformance baseline', { timeout: 120_000 }, async (t) => {
  const everything = await startEverythingHttp();
  t.after(() => everything.close());
  const run = await runConformanceDetailed(everything.url.href, { requirements: '2025-11-25', timeoutMs: 90_000 });
  assert.deepEqual([...run.reports.keys()].sort(), [...scenarios2025].sort(), 'scenario set changed');
  const verdicts = (v: 'pass' | 'fail'): string[] => [...run.reports.values()].filter((r) => r.verdict === v).map((r) => r.scenario).sort();
  const message = formatReports(run.reports);
  assert.deepEqual(verdicts('pass'), [...everythingDirectPass2025].sort(), message);
  assert.deepEqual(verdicts('fail'), [...everythingDirectFail2025].sort(), message);
});
