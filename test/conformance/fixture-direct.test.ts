/**
 * The conformance fixture, run directly (no gateway), passes every server scenario of the suite,
 * pending ones included, with no FAILURE and no WARNING check. This is the oracle the gateway's
 * conformance runs are compared with.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { allScenarios, conformanceVersion } from './baseline.ts';
import { formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

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

test('fixture passes every server scenario directly', { timeout: 120_000 }, async () => {
  const run = await runConformanceDetailed(fixture.url.href, { suite: 'all', timeoutMs: 90_000 });
  assert.deepEqual([...run.reports.keys()].sort(), [...allScenarios].sort(), 'scenario set changed');
  const failing = [...run.reports.values()].filter((r) => r.verdict !== 'pass');
  assert.equal(failing.length, 0, `${formatReports(run.reports)}\n\nfixture stderr:\n${fixture.stderr()}`);
});
