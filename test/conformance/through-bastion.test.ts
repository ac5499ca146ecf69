/**
 * The MCP conformance suite (server mode) run against Bastion:
 *  1. Bastion fronting the conformance fixture (`prefix: false`, so the scenario tool names are
 *     exposed as they are) passes every active scenario, and `dns-rebinding-protection` at Bastion.
 *  2. Bastion fronting server-everything passes every scenario server-everything passes directly.
 *
 * The conformance CLI cannot send credentials, so it talks to a loopback proxy that adds the agent's
 * Authorization header and forwards Host and Origin as sent; the proxy's host:port is therefore in
 * `server.allowedHosts`, as it would be behind any reverse proxy.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { allScenarios, everythingDirectPass } from './baseline.ts';
import { startAuthProxy, type AuthProxy } from '../helpers/auth-proxy.ts';
import { formatReports, runConformanceDetailed } from '../helpers/conformance.ts';
import { freePort, startEverythingHttp, startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';
import { TEST_KEY, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

/**
 * Scenarios that pass through Bastion, recorded from runs of conformance 0.1.16 (`--suite all`).
 * Fixture direct: all 32. Fixture through Bastion: all but the pending `server-sse-polling`, in
 * which the CLI sends its hand-built requests with `mcp-protocol-version: 2025-03-26` after
 * negotiating 2025-11-25; the SDK transport Bastion serves with then (correctly for that version)
 * sends no priming event or retry field, and Bastion does not rewrite client headers to please a test.
 * server-everything direct: `everythingDirectPass` (11); through Bastion: those plus
 * `dns-rebinding-protection`, which Bastion adds.
 */
export const fixtureThroughBastionPass: readonly string[] = allScenarios.filter((s) => s !== 'server-sse-polling');
export const everythingThroughBastionPass: readonly string[] = [...everythingDirectPass, 'dns-rebinding-protection'];

async function gatewayFor(upstreamUrl: URL, prefix: boolean, proxyPort: number): Promise<TestGateway> {
  return startGateway(
    tempDir(),
    `version: 1
server:
  listen: 127.0.0.1:0
  allowedHosts: ["localhost:${proxyPort}", "127.0.0.1:${proxyPort}"]
  allowedOrigins: ["http://localhost:${proxyPort}", "http://127.0.0.1:${proxyPort}"]
store:
  sqlite: ./bastion.db
agents:
  conformance:
    keys: [env:T_KEY]
    tools: ["*"]
    resources: ["*"]
    prompts: ["*"]
upstreams:
  up:
    url: ${upstreamUrl.href}
    prefix: ${prefix}
`,
    { T_KEY: TEST_KEY },
  );
}

/** Starts gateway and proxy: the proxy's port must be known before the gateway's allowlist is written. */
async function stack(upstreamUrl: URL, prefix: boolean): Promise<{ gw: TestGateway; proxy: AuthProxy }> {
  const proxyPort = await freePort();
  const gw = await gatewayFor(upstreamUrl, prefix, proxyPort);
  const proxy = await startAuthProxy(gw.url, `Bearer ${TEST_KEY}`, { port: proxyPort });
  return { gw, proxy };
}

describe('conformance through Bastion', { timeout: 300_000 }, () => {
  let fixture: ManagedServer;
  let everything: ManagedServer;
  before(async () => {
    [fixture, everything] = await Promise.all([startFixtureHttp(), startEverythingHttp()]);
  });
  after(async () => {
    await Promise.all([fixture?.close(), everything?.close()]);
  });

  test('fronting the conformance fixture: every active scenario passes', async () => {
    const { gw, proxy } = await stack(fixture.url, false);
    try {
      const run = await runConformanceDetailed(`http://localhost:${proxy.url.port}/mcp`, { suite: 'all', timeoutMs: 120_000 });
      const passed = [...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario).sort();
      assert.deepEqual(passed, [...fixtureThroughBastionPass].sort(), formatReports(run.reports));
    } finally {
      await proxy.close();
      await gw.close();
    }
  });

  test('fronting server-everything: every scenario it passes directly passes', async () => {
    const { gw, proxy } = await stack(everything.url, false);
    try {
      const run = await runConformanceDetailed(`http://localhost:${proxy.url.port}/mcp`, { suite: 'all', timeoutMs: 120_000 });
      const passed = [...run.reports.values()].filter((r) => r.verdict === 'pass').map((r) => r.scenario).sort();
      // Every scenario server-everything passes directly also passes through Bastion, and Bastion adds dns-rebinding-protection.
      assert.deepEqual(passed, [...everythingThroughBastionPass].sort(), formatReports(run.reports));
    } finally {
      await proxy.close();
      await gw.close();
    }
  });
});
