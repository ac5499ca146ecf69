/**
 * Pinned tool definitions end to end: a real gateway (HTTP on loopback, SQLite
 * file store), the official SDK client, and a real MCP server that changes its
 * tool's definition and sends tools/list_changed (test/fixtures/rug-pull-server.ts).
 * The changed tool disappears and is refused, one audit record and one alert say
 * why, `bastion tools diff|approve` (the CLI, in-process, on the same store)
 * brings it back, and the audit chain still verifies.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { AdminAlert } from '../../src/alerts/notifier.ts';
import { verifyAudit } from '../../src/audit/log.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { EXIT, type CliIO } from '../../src/cli/io.ts';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config/load.ts';
import { Gateway } from '../../src/server/gateway.ts';
import { startHttpServer, type RunningServer } from '../../src/server/http.ts';
import { ROOT, TEST_KEY, connect, tempDir } from '../helpers/gateway.ts';

const CONFIG = `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
agents:
  demo:
    keys: [env:T_DEMO_KEY]
    tools: ["rug__*"]
upstreams:
  rug:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(join(ROOT, 'test/fixtures/rug-pull-server.ts'))}]
`;

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');
const errorCode = (r: unknown): string | undefined => ((r as ToolResult)._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

describe('pinned tool definitions end to end (rug pull)', () => {
  let dir: string;
  let configFile: string;
  let gateway: Gateway;
  let running: RunningServer;
  let client: Client;
  const alerts: AdminAlert[] = [];
  const env = { T_DEMO_KEY: TEST_KEY };

  before(async () => {
    dir = tempDir();
    configFile = join(dir, 'bastion.yaml');
    writeFileSync(configFile, CONFIG);
    const { config } = await loadConfig(configFile, { env: { ...process.env, ...env }, secrets: 'strict' });
    ({ gateway } = await Gateway.open(config, { alerts: { notify: (a) => void alerts.push(a) } }));
    running = await startHttpServer(gateway, { host: '127.0.0.1', port: 0 });
    client = await connect(running.url, TEST_KEY);
  });
  after(async () => {
    await client?.close();
    await running?.close();
    await gateway?.close();
  });

  const records = (): Promise<AuditRecord[]> => gateway.store.readAudit(1, 100_000);
  const cli = async (argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const io: CliIO = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, cwd: dir };
    const code = await main([...argv, '--config', configFile], io);
    return { code, stdout, stderr };
  };
  const listed = async (): Promise<string[]> => (await client.listTools()).tools.map((t) => t.name).sort();

  test('first use: the tools are listed and pinned', async () => {
    assert.deepEqual(await listed(), ['rug__read', 'rug__rug_pull']);
    assert.equal(text(await client.callTool({ name: 'rug__read', arguments: { name: 'a' } })), 'note a');
    const r = await cli(['tools', 'list', '--agent', 'demo', '--json']);
    assert.equal(r.code, EXIT.OK, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { tools: { tool: string; state: string }[] }).tools.map((t) => [t.tool, t.state]), [['rug__read', 'pinned'], ['rug__rug_pull', 'pinned']]);
  });

  test('after list_changed the changed tool is withheld, refused like an unknown one, audited and alerted once', async () => {
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
    assert.equal(text(await client.callTool({ name: 'rug__rug_pull', arguments: {} })), 'pulled');
    for (let i = 0; i < 100 && changed === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(changed, 1, 'list_changed reached the client');
    assert.deepEqual(await listed(), ['rug__rug_pull']);
    const refused = await client.callTool({ name: 'rug__read', arguments: { name: 'a', extra: 'x' } });
    assert.equal(refused.isError, true);
    assert.equal(errorCode(refused), 'ERR_POLICY_DENIED');
    const unknown = await client.callTool({ name: 'rug__nosuch', arguments: {} });
    assert.equal(text(refused).replace(/ref [^)]+/, ''), text(unknown).replace(/ref [^)]+/, ''), 'indistinguishable from an unknown tool');
    await listed();
    const pins = (await records()).filter((x) => x.method === 'tools/pin' && x.decision.effect === 'deny');
    assert.equal(pins.length, 1, 'one record per detection');
    assert.deepEqual([pins[0]?.target, pins[0]?.decision.reason, pins[0]?.outcome, pins[0]?.agent], ['rug__read', 'tool.pin_changed', 'denied', 'demo']);
    assert.deepEqual(alerts.map((a) => [a.kind, a.severity]), [['tool.pin_changed', 'critical']]);
    const call = (await records()).findLast((x) => x.method === 'tools/call' && x.target === 'rug__read');
    assert.equal(call?.decision.reason, 'tool.unknown');
  });

  test('bastion tools diff shows the change; approve with the shown hash brings the tool back', async () => {
    const d = await cli(['tools', 'diff', '--agent', 'demo', '--tool', 'rug__read', '--json']);
    assert.equal(d.code, EXIT.OK, d.stderr);
    const pending = (JSON.parse(d.stdout) as { pending: { hash: string; kind: string; changes: { path: string; op: string }[] }[] }).pending[0];
    assert.equal(pending?.kind, 'changed');
    assert.deepEqual(pending?.changes.map((c) => [c.path, c.op]), [['/description', 'changed'], ['/inputSchema/properties/extra/type', 'added']]);
    const stale = await cli(['tools', 'approve', '--agent', 'demo', '--tool', 'rug__read', '--hash', '0'.repeat(64)]);
    assert.equal(stale.code, EXIT.FAILED);
    assert.deepEqual(await listed(), ['rug__rug_pull'], 'a refused approval pins nothing');
    const ok = await cli(['tools', 'approve', '--agent', 'demo', '--tool', 'rug__read', '--hash', pending?.hash ?? '']);
    assert.equal(ok.code, EXIT.OK, ok.stderr);
    assert.deepEqual(await listed(), ['rug__read', 'rug__rug_pull']);
    assert.equal(text(await client.callTool({ name: 'rug__read', arguments: { name: 'b' } })), 'note b (pulled)');
    const v = await verifyAudit(gateway.store);
    assert.equal(v.ok, true, JSON.stringify(v));
  });

  test('a new session of the agent sees the approved definition pinned, and nothing new is recorded', async () => {
    const before = (await records()).filter((x) => x.method === 'tools/pin').length;
    const second = await connect(running.url, TEST_KEY);
    try {
      // A fresh session starts a fresh upstream process: its `read` is harmless again, which is not the pinned one now.
      assert.deepEqual((await second.listTools()).tools.map((t) => t.name).sort(), ['rug__rug_pull']);
    } finally {
      await second.close();
    }
    const pins = (await records()).filter((x) => x.method === 'tools/pin');
    assert.equal(pins.length, before + 1);
    assert.equal(pins.at(-1)?.decision.reason, 'tool.pin_changed');
  });
});
