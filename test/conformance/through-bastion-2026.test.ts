/**
 * The MCP conformance suite (server mode, requirement set 2026-07-28: stateless wire, `_meta`
 * envelope per request, server/discover, Mcp-Method/Mcp-Name/Mcp-Param headers, input_required
 * round trips, caching hints) run against Bastion fronting the 2026 fixture
 * (test/fixtures/conformance-server-2026, official 2.x SDK). The rule is the 2025-11-25 one: every
 * scenario the fixture passes directly (`fixture2026DirectPass`) must pass through Bastion, and
 * Bastion itself must pass dns-rebinding-protection.
 *
 * Measured 2026-12-06 (conformance 0.2.0-alpha.12, SDK 2.4.0): every direct pass passes through
 * Bastion except the two scenarios whose upstream asks the client for its roots
 * (`input-required-result-basic-list-roots`, `input-required-result-multiple-input-requests`):
 * Bastion never offers roots to an upstream (an upstream's reach is set by config and enforced by
 * the path guard, and a client's local paths are not an untrusted server's business), so the
 * upstream answers -32021 as the spec asks of it. Roots are deprecated in 2026-07-28.
 *
 * Setup as in through-bastion.test.ts: the CLI cannot send credentials, so it talks to a loopback
 * proxy that adds the agent's Authorization header and forwards Host, Origin and the Mcp-* headers
 * as sent (auth-proxy.test.ts shows the proxy leaves 2026-07-28 verdicts unchanged).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixture2026DirectPass, rootsScenarios2026, scenarios2026 } from './baseline.ts';
import { startAuthProxy, type AuthProxy } from '../helpers/auth-proxy.ts';
import { conformanceGateway, formatReports, runConformanceDetailed, startFixture2026Http, type Fixture2026 } from '../helpers/conformance.ts';
import { freePort } from '../helpers/mcp.ts';
import { TEST_KEY, type TestGateway } from '../helpers/gateway.ts';



describe('conformance through Bastion (2026-07-28)', { timeout: 300_000 }, () => {
  let fixture: Fixture2026;
  let gw: TestGateway;
  let proxy: AuthProxy;
  before(async () => {
    fixture = await startFixture2026Http();
    // The proxy's port must be known before the gateway's allowlist is written.
    const proxyPort = await freePort();
    gw = await conformanceGateway(fixture.url, false, proxyPort);
    proxy = await startAuthProxy(gw.url, `Bearer ${TEST_KEY}`, { port: proxyPort });
  });
  after(async () => {
    await proxy?.close();
    await gw?.close();
    await fixture?.close();
  });

  test('fronting the 2026 fixture: every scenario it passes directly passes, but those that need roots', async () => {
    const run = await runConformanceDetailed(`http://localhost:${proxy.url.port}/mcp`, { requirements: '2026-07-28', timeoutMs: 120_000 });
    assert.deepEqual([...run.reports.keys()].sort(), [...scenarios2026].sort(), 'scenario set changed');
    const passed = new Set([...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario));
    const expected = fixture2026DirectPass.filter((s) => !rootsScenarios2026.includes(s));
    const lost = expected.filter((s) => !passed.has(s));
    assert.deepEqual(lost, [], `passes directly but not through Bastion: ${lost.join(', ')}\n\n${formatReports(run.reports)}`);
    // Bastion adds nothing the fixture lacks: the only direct failures are the tasks extension, which Bastion cannot supply.
    assert.deepEqual([...passed].sort(), [...expected].sort(), formatReports(run.reports));
  });
});
