/**
 * The MCP conformance suite (server mode, requirement set 2025-11-25) run against Bastion:
 *  1. Bastion fronting the 1.x conformance fixture (`prefix: false`, so the scenario tool names are
 *     exposed as they are) passes every scenario the fixture passes directly but one (see below).
 *  2. Bastion fronting server-everything passes every scenario server-everything passes directly.
 *
 * The conformance CLI cannot send credentials, so it talks to a loopback proxy that adds the agent's
 * Authorization header and forwards Host and Origin as sent; the proxy's host:port is therefore in
 * `server.allowedHosts`, as it would be behind any reverse proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { everythingDirectPass2025, fixtureDirectPass2025, scenarios2025 } from './baseline.ts';
import { startAuthProxy, type AuthProxy } from '../helpers/auth-proxy.ts';
import { conformanceGateway, formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { freePort, startEverythingHttp, startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';
import { TEST_KEY, type TestGateway } from '../helpers/gateway.ts';

/**
 * Scenarios that pass through Bastion, measured with conformance 0.2.0-alpha.12
 * (`--requirements 2025-11-25`, 2026-12-06, 3 runs, identical verdicts).
 *
 * Fixture direct: all 33. Fixture through Bastion: all but the pending `server-sse-polling`
 * (SEP-1699 SSE polling): the tool result arrives, but with two WARNINGs, "no priming event" and
 * "no retry field". The SDK 1.x transport writes the priming event (with `retry:`) only when an
 * EventStore is configured (sdk dist/esm/server/webStandardStreamableHttp.js `writePrimingEvent`:
 * `if (!this._eventStore) return;`), and Bastion's downstream transport has none
 * (src/server/http.ts, `new StreamableHTTPServerTransport({ ..., retryInterval: 1000 })`): it does
 * not offer stream resumability. (0.1.16 failed it for another reason: it sent
 * `mcp-protocol-version: 2025-03-26` on its raw requests; 0.2.0 sends the negotiated version.)
 *
 * server-everything direct: `everythingDirectPass2025` (11); through Bastion: those plus
 * `dns-rebinding-protection` (Bastion validates Host/Origin) and `server-session-lifecycle`
 * (Bastion answers 404 to a terminated session id, server-everything 400).
 */
export const fixtureThroughBastionPass2025: readonly string[] = fixtureDirectPass2025.filter((s) => s !== 'server-sse-polling');
export const everythingThroughBastionPass2025: readonly string[] = [...everythingDirectPass2025, 'dns-rebinding-protection', 'server-session-lifecycle'];


/** Starts gateway and proxy: the proxy's port must be known before the gateway's allowlist is written. */
async function stack(upstreamUrl: URL, prefix: boolean): Promise<{ gw: TestGateway; proxy: AuthProxy }> {
  const proxyPort = await freePort();
  const gw = await conformanceGateway(upstreamUrl, prefix, proxyPort);
  const proxy = await startAuthProxy(gw.url, `Bearer ${TEST_KEY}`, { port: proxyPort });
  return { gw, proxy };
}

describe('conformance through Bastion (2025-11-25)', { timeout: 300_000 }, () => {
  let fixture: ManagedServer;
  let everything: ManagedServer;
  before(async () => {
    [fixture, everything] = await Promise.all([startFixtureHttp(), startEverythingHttp()]);
  });
  after(async () => {
    await Promise.all([fixture?.close(), everything?.close()]);
  });

  test('fronting the conformance fixture: every scenario it passes directly passes, but server-sse-polling', async () => {
    const { gw, proxy } = await stack(fixture.url, false);
    try {
      const run = await runConformanceDetailed(`http://localhost:${proxy.url.port}/mcp`, { requirements: '2025-11-25', timeoutMs: 120_000 });
      assert.deepEqual([...run.reports.keys()].sort(), [...scenarios2025].sort(), 'scenario set changed');
      const passed = [...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario).sort();
      assert.deepEqual(passed, [...fixtureThroughBastionPass2025].sort(), formatReports(run.reports));
      // The one exception fails only on the two resumability SHOULDs, never on the tool result.
      const polling = run.reports.get('server-sse-polling');
      assert.deepEqual(
        polling?.problems.map((p) => `${p.status} ${p.id}`).sort(),
        ['WARNING server-sse-priming-event', 'WARNING server-sse-retry-field'],
        formatReports(run.reports),
      );
    } finally {
      await proxy.close();
      await gw.close();
    }
  });

  test('fronting server-everything: every scenario it passes directly passes', async () => {
    const { gw, proxy } = await stack(everything.url, false);
    try {
      const run = await runConformanceDetailed(`http://localhost:${proxy.url.port}/mcp`, { requirements: '2025-11-25', timeoutMs: 120_000 });
      const passed = [...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario).sort();
      // Every scenario server-everything passes directly also passes through Bastion; Bastion adds two.
      assert.deepEqual(passed, [...everythingThroughBastionPass2025].sort(), formatReports(run.reports));
    } finally {
      await proxy.close();
      await gw.close();
    }
  });
});
