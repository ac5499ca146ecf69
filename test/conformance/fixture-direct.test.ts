/**
 * The 1.x conformance fixture, run directly (no gateway), passes every server scenario of
 * requirement set 2025-11-25, the not-scored ones included, with no FAILURE and no WARNING check.
 * This is the oracle the gateway's 2025-11-25 conformance runs are compared with.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { conformanceVersion, fixtureDirectPass2025, scenarios2025 } from './baseline.ts';
import { formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';

let fixture: ManagedServer;
before(async () => {
  fixture = await startFixtureHttp();
});
after(async () => {
  await fixture.close();
});

test('the installed conformance CLI is the version the baseline was measured with', async () => {
  const pkg = JSON.parse(
    await readFile(join(import.meta.dirname, '..', '..', 'node_modules', '@modelcontextprotocol', 'conformance', 'package.json'), 'utf8'),
  ) as { version: string };
  assert.equal(pkg.version, conformanceVersion);
});

test('fixture passes every 2025-11-25 server scenario directly', { timeout: 120_000 }, async () => {
  const run = await runConformanceDetailed(fixture.url.href, { requirements: '2025-11-25', timeoutMs: 90_000 });
  assert.deepEqual([...run.reports.keys()].sort(), [...scenarios2025].sort(), 'scenario set changed');
  const passed = [...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario).sort();
  assert.deepEqual(passed, [...fixtureDirectPass2025].sort(), `${formatReports(run.reports)}\n\nfixture stderr:\n${fixture.stderr()}`);
});
