/**
 * The 2026-07-28 conformance fixture (test/fixtures/conformance-server-2026, official 2.x SDK),
 * run directly (no gateway) at the 2026-07-28 wire, gives its recorded baseline: every scored
 * scenario and every pending one passes; the tasks extension, which the SDK does not implement,
 * fails (see baseline.ts). This is the oracle the gateway's 2026-07-28 runs are compared with.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { fixture2026DirectFail, fixture2026DirectPass, scenarios2026 } from './baseline.ts';
import { formatReports, runConformanceDetailed, startFixture2026Http, type Fixture2026 } from '../helpers/conformance.ts';

let fixture: Fixture2026;
before(async () => {
  fixture = await startFixture2026Http();
});
after(async () => {
  await fixture.close();
});

test('2026 fixture matches its recorded 2026-07-28 baseline directly', { timeout: 120_000 }, async () => {
  const run = await runConformanceDetailed(fixture.url.href, { requirements: '2026-07-28', timeoutMs: 90_000 });
  assert.deepEqual([...run.reports.keys()].sort(), [...scenarios2026].sort(), 'scenario set changed');
  const verdicts = (v: 'pass' | 'fail'): string[] => [...run.reports.values()].filter((r) => r.verdict === v).map((r) => r.scenario).sort();
  const message = `${formatReports(run.reports)}\n\nfixture stderr:\n${fixture.stderr()}`;
  assert.deepEqual(verdicts('pass'), [...fixture2026DirectPass].sort(), message);
  assert.deepEqual(verdicts('fail'), [...fixture2026DirectFail].sort(), message);
});

test('2026 fixture rejects a forged Host before the MCP handler (DNS-rebinding protection)', { timeout: 10_000 }, async () => {
  // fetch() may not set Host (a forbidden header), so this uses node:http.
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      fixture.url,
      { method: 'POST', agent: false, headers: { host: 'evil.example.com', 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }));
  });
  assert.equal(status, 403);
});
