/**
 * Upstreams that fail to start: probed once at serve start, the OS error on stderr, a failing
 * readiness check `upstream:NAME` with the error code as detail (flipping back once the upstream
 * starts), an audit record, and calls to the upstream's tools refused as ERR_UPSTREAM_UNAVAILABLE
 * (not a misleading policy refusal).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { connect, startGateway, tempDir, TEST_KEY } from '../helpers/gateway.ts';
import { CLI, startProcess, stopAll } from '../helpers/processes.ts';
import { probeUpstream, type UpstreamProbe } from '../../src/mcp/upstream.ts';
import { UpstreamHealth } from '../../src/server/upstream-health.ts';

const MISSING = 'npx-missing-bastion-test';
const YAML = `version: 1
server:
  listen: 127.0.0.1:0
  egress: false
agents:
  demo:
    keys: [env:UPSTART_KEY]
    tools: ["files__*"]
upstreams:
  files:
    command: ${MISSING}
    args: ["-y", "nothing"]
`;
const ENV = { UPSTART_KEY: TEST_KEY };

async function until(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('condition not reached');
}

describe('upstreams that fail to start', () => {
  test('the probe reports the OS error of a missing command', async () => {
    const gw = await startGateway(tempDir(), YAML, ENV);
    try {
      const r = await probeUpstream(gw.gateway.config.upstreams.get('files')!);
      assert.equal(r.ok, false);
      assert.ok(!r.ok);
      assert.equal(r.code, 'ERR_UPSTREAM_UNAVAILABLE');
      assert.equal(r.os?.code, 'ENOENT');
      assert.match(r.message, new RegExp(`spawn ${MISSING} ENOENT`));
    } finally {
      await gw.close();
    }
  });

  test('readiness check upstream:NAME fails with the code, then flips once the upstream starts', async () => {
    const gw = await startGateway(tempDir(), YAML, ENV);
    const lines: string[] = [];
    let healthy = false;
    const probe = async (): Promise<UpstreamProbe> => (healthy ? { ok: true } : { ok: false, code: 'ERR_UPSTREAM_UNAVAILABLE', os: { code: 'ENOENT', message: `spawn ${MISSING} ENOENT` }, message: `spawn ${MISSING} ENOENT` });
    const health = new UpstreamHealth(gw.gateway, { log: (l) => lines.push(l), retryMs: 20, probe });
    try {
      await health.sync(gw.gateway.config);
      const down = await gw.gateway.readiness.report();
      assert.equal(down.ready, false);
      assert.deepEqual(down.checks['upstream:files'], { ok: false, detail: 'ENOENT' });
      assert.match(lines.join(''), new RegExp(`upstream files: spawn ${MISSING} ENOENT`));
      healthy = true;
      await until(async () => (await gw.gateway.readiness.report()).checks['upstream:files']?.ok === true);
      assert.match(lines.join(''), /upstream files: started/);
    } finally {
      health.close();
      await gw.close();
    }
  });

  test("a call to the upstream's tools is ERR_UPSTREAM_UNAVAILABLE, not a policy refusal", async () => {
    const gw = await startGateway(tempDir(), YAML, ENV);
    const client = await connect(gw.url, TEST_KEY);
    try {
      const r = (await client.callTool({ name: 'files__read_text_file', arguments: { path: 'x' } })) as { _meta?: Record<string, { code?: string }> };
      assert.equal(r._meta?.['bastion/error']?.code, 'ERR_UPSTREAM_UNAVAILABLE', JSON.stringify(r));
      // A name the agent may not call stays an ordinary refusal (no upstream enumeration).
      const other = (await client.callTool({ name: 'secret__tool', arguments: {} })) as { _meta?: Record<string, { code?: string }> };
      assert.equal(other._meta?.['bastion/error']?.code, 'ERR_POLICY_DENIED');
    } finally {
      await client.close();
      await gw.close();
    }
  });

  test('bastion serve logs the failure with the OS error and keeps serving', async () => {
    const dir = tempDir();
    const file = join(dir, 'bastion.yaml');
    writeFileSync(file, YAML);
    const s = await startProcess([CLI, 'serve', '--config', file], ENV, /serving MCP at (\S+)/);
    try {
      await until(async () => s.lines.some((l) => l.includes(`upstream files: spawn ${MISSING} ENOENT`)));
      const res = await fetch(new URL('/mcp', s.match[1]), { method: 'GET' });
      assert.ok(res.status >= 400 && res.status < 500, 'still serving');
    } finally {
      await stopAll([s.child]);
    }
  });
});
