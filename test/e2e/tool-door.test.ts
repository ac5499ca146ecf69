/**
 * End to end through the tool door: the official filesystem MCP server started
 * by the gateway with npx (as in production), the official SDK client, real
 * sockets, the SQLite store, and the audit chain verified at the end.
 */
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { verifyAudit } from '../../src/audit/log.ts';
import type { AuditRecord } from '../../src/audit/types.ts';
import { ROOT, TEST_KEY, OTHER_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

const FAKE_TOKEN = ['gh', 'p_', 'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2'].join('');

function config(badUpstream: string): string {
  return `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./.bastion/bastion.db
agents:
  demo:
    keys: [env:T_DEMO_KEY]
    tools: ["files__*", "bad__*"]
    deny: ["files__write_file", "files__edit_file"]
    approve: ["files__move_file"]
  other:
    keys: [env:T_OTHER_KEY]
    tools: ["bad__echo"]
upstreams:
  files:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]
    workspace: ./workspace
  bad:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(badUpstream)}]
    env: { GIVEN_TO_UPSTREAM: env:T_UPSTREAM_VALUE }
    timeoutMs: 1500
paths:
  allow: ["./workspace/**"]
  deny: ["**/.env", "**/*.pem", "**/id_*"]
approvals:
  timeoutMs: 1500
  reuseTtlMs: 60000
output:
  maxResultBytes: 65536
# The bad upstream's tool "sneaky" hides characters in its description on purpose (stripping and flagging are
# tested here); first-use pinning would withhold it as flagged. Pinning has its own test: test/e2e/pins.test.ts.
pinning:
  mode: "off"
`;
}

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');
const errorCode = (r: unknown): string | undefined => ((r as ToolResult)._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

async function records(gw: TestGateway): Promise<AuditRecord[]> {
  return gw.gateway.store.readAudit(1, 100_000);
}

describe('tool door end to end (filesystem server via npx)', () => {
  let gw: TestGateway;
  let client: Client;
  let ws: string;

  before(async () => {
    const dir = tempDir({
      'workspace/notes/hello.txt': 'hello from the workspace\n',
      'workspace/.env': 'DEMO=1\n',
      'workspace/token.txt': `token=${FAKE_TOKEN}\n`,
      'outside/secret.txt': 'outside the workspace\n',
      'workspace/a.txt': 'to be moved\n',
    });
    ws = join(dir, 'workspace');
    symlinkSync(join(dir, 'outside'), join(ws, 'escape'));
    // A canary in Bastion's own environment: a stdio upstream must not inherit it.
    process.env.BASTION_LEAK_CANARY = 'must-not-reach-upstreams';
    gw = await startGateway(dir, config(join(ROOT, 'test/fixtures/bad-upstream.ts')), { T_DEMO_KEY: TEST_KEY, T_OTHER_KEY: OTHER_KEY, T_UPSTREAM_VALUE: 'configured' });
    client = await connect(gw.url, TEST_KEY);
  });

  after(async () => {
    await client?.close();
    await gw?.close();
  });

  test('tools/list shows only what the policy allows, prefixed by upstream', async () => {
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name).sort();
    assert.ok(names.includes('files__read_text_file'), names.join(','));
    assert.ok(names.includes('files__move_file'), 'approval-gated tools are listed');
    assert.ok(!names.includes('files__write_file'));
    assert.ok(!names.includes('files__edit_file'));
    assert.ok(names.every((n) => /^(files|bad)__[A-Za-z0-9_.-]+$/.test(n)));
    for (const n of names) assert.match(n, /^[A-Za-z0-9_-]{1,64}$/, 'valid as an OpenAI function name');
    const sneaky = tools.find((t) => t.name === 'bad__sneaky');
    assert.ok(sneaky && !/[\u200b]/.test(sneaky.description ?? ''), 'hidden characters stripped from descriptions');
  });

  test('another agent sees only its own catalogue', async () => {
    const other = await connect(gw.url, OTHER_KEY);
    try {
      const { tools } = await other.listTools();
      assert.deepEqual(tools.map((t) => t.name), ['bad__echo']);
    } finally {
      await other.close();
    }
  });

  test('an allowed call runs, and credentials in the result are redacted', async () => {
    const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(ws, 'notes/hello.txt') } });
    assert.equal((r as ToolResult).isError ?? false, false);
    assert.match(text(r), /hello from the workspace/);
    const leak = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(ws, 'token.txt') } });
    assert.ok(!text(leak).includes(FAKE_TOKEN), 'token must not reach the agent');
    assert.match(text(leak), /REDACTED/);
  });

  test('relative paths resolve against the upstream workspace, exactly as the upstream resolves them', async () => {
    const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: 'notes/hello.txt' } });
    assert.equal((r as ToolResult).isError ?? false, false, text(r));
    assert.match(text(r), /hello from the workspace/, 'Bastion checked the file the server read');
    for (const path of ['.env', '../outside/secret.txt', 'escape/secret.txt', 'notes/../../outside/secret.txt']) {
      const denied = await client.callTool({ name: 'files__read_text_file', arguments: { path } });
      assert.equal(errorCode(denied), 'ERR_PATH_DENIED', path);
      assert.ok(!text(denied).includes('outside the workspace'));
    }
  });

  test('deny globs win inside the workspace', async () => {
    const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(ws, '.env') } });
    assert.equal((r as ToolResult).isError, true);
    assert.equal(errorCode(r), 'ERR_PATH_DENIED');
    assert.ok(!text(r).includes('DEMO=1'));
  });

  test('.. and symlink escapes are refused', async () => {
    for (const path of [join(ws, '../outside/secret.txt'), join(ws, 'escape/secret.txt'), '/etc/passwd', `${ws}/notes/../../outside/secret.txt`]) {
      const r = await client.callTool({ name: 'files__read_text_file', arguments: { path } });
      assert.equal(errorCode(r), 'ERR_PATH_DENIED', path);
      assert.ok(!text(r).includes('outside the workspace'));
    }
    const list = await client.callTool({ name: 'files__list_directory', arguments: { path: join(ws, 'escape') } });
    assert.equal(errorCode(list), 'ERR_PATH_DENIED');
  });

  test('a forbidden tool, a hidden tool and an unknown tool get the same refusal', async () => {
    const forbidden = await client.callTool({ name: 'files__write_file', arguments: { path: join(ws, 'x.txt'), content: 'x' } });
    const unknown = await client.callTool({ name: 'files__no_such_tool', arguments: {} });
    const otherUpstream = await client.callTool({ name: 'nope__echo', arguments: {} });
    for (const r of [forbidden, unknown, otherUpstream]) {
      assert.equal(errorCode(r), 'ERR_POLICY_DENIED');
      assert.equal((r as ToolResult).isError, true);
    }
    const strip = (r: unknown): string => text(r).replace(/ref [\w-]+/, 'ref');
    assert.equal(strip(forbidden), strip(unknown));
    const recs = await records(gw);
    const forbiddenRec = recs.findLast((r) => r.target === 'files__write_file');
    assert.equal(forbiddenRec?.decision.effect, 'deny');
    assert.equal(forbiddenRec?.decision.rule, 'agents.demo.deny[0]');
    assert.equal(recs.findLast((r) => r.target === 'files__no_such_tool')?.decision.reason, 'tool.unknown');
  });

  test('arguments that fail the tool schema are refused before the upstream', async () => {
    const r = await client.callTool({ name: 'bad__echo', arguments: { text: 42, extra: true } });
    assert.equal(errorCode(r), 'ERR_ARGS_INVALID');
    assert.ok(!text(r).includes('42'), 'values are not echoed');
    const missing = await client.callTool({ name: 'files__read_text_file', arguments: {} });
    assert.equal(errorCode(missing), 'ERR_ARGS_INVALID');
  });

  test('a held call runs after approval through the queue', async () => {
    const pending = client.callTool({ name: 'files__move_file', arguments: { source: join(ws, 'a.txt'), destination: join(ws, 'b.txt') } });
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id = (await gw.gateway.deps.approvals.list({ status: 'pending' }))[0]?.id;
    }
    assert.ok(id, 'approval created');
    await gw.gateway.deps.approvals.decide(id, 'approved', 'test', null);
    const r = await pending;
    assert.equal((r as ToolResult).isError ?? false, false, text(r));
    const rec = (await records(gw)).findLast((x) => x.target === 'files__move_file');
    assert.equal(rec?.decision.effect, 'approve');
    assert.equal(rec?.outcome, 'ok');
  });

  test('a denied approval is a tool error that says so', async () => {
    const pending = client.callTool({ name: 'files__move_file', arguments: { source: join(ws, 'b.txt'), destination: join(ws, 'c.txt') } });
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id = (await gw.gateway.deps.approvals.list({ status: 'pending' }))[0]?.id;
    }
    assert.ok(id);
    await gw.gateway.deps.approvals.decide(id, 'denied', 'test', 'not today');
    const r = await pending;
    assert.equal(errorCode(r), 'ERR_APPROVAL_DENIED');
    assert.match(text(r), /not today/);
  });

  test('a timed-out approval, approved later, runs once for the same call without asking again', async () => {
    const args = { source: join(ws, 'b.txt'), destination: join(ws, 'd.txt') };
    const r1 = await client.callTool({ name: 'files__move_file', arguments: args });
    assert.equal(errorCode(r1), 'ERR_APPROVAL_TIMEOUT');
    const [expired] = await gw.gateway.deps.approvals.list({ status: 'expired' });
    assert.ok(expired);
    // A new pending approval for the same call is created on the next try; approve that while nobody waits.
    const again = client.callTool({ name: 'files__move_file', arguments: args });
    let id: string | undefined;
    for (let i = 0; i < 100 && id === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id = (await gw.gateway.deps.approvals.list({ status: 'pending' }))[0]?.id;
    }
    assert.ok(id);
    assert.equal(errorCode(await again), 'ERR_APPROVAL_TIMEOUT', 'this caller gave up');
    // Decide directly on the store: the caller is gone. Only an unexpired pending approval can be decided,
    // so create one more and approve it without a waiter.
    const third = client.callTool({ name: 'files__move_file', arguments: args }, undefined, { timeout: 300 }).catch(() => 'client gave up');
    let id3: string | undefined;
    for (let i = 0; i < 100 && id3 === undefined; i++) {
      await new Promise((r) => setTimeout(r, 20));
      id3 = (await gw.gateway.deps.approvals.list({ status: 'pending' }))[0]?.id;
    }
    assert.ok(id3);
    assert.equal(await third, 'client gave up');
    // The client's cancellation must reach the server before the decision, or the still-waiting
    // handler would (rightly) consume the grant: wait for the cancelled call's audit record.
    for (let i = 0; i < 200; i++) {
      if ((await records(gw)).some((r) => r.detail?.approvalId === id3 && r.detail?.approval === 'cancelled')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    await gw.gateway.deps.approvals.decide(id3, 'approved', 'test', null);
    const claimed = await client.callTool({ name: 'files__move_file', arguments: args });
    assert.equal((claimed as ToolResult).isError ?? false, false, text(claimed));
    const rec = (await records(gw)).findLast((x) => x.target === 'files__move_file');
    assert.equal(rec?.decision.reason, 'approval.claimed');
    // Single use: the same call now needs a new approval.
    const once = await client.callTool({ name: 'files__move_file', arguments: args });
    assert.equal(errorCode(once), 'ERR_APPROVAL_TIMEOUT');
  });

  test('an upstream that hangs past its timeout is a tool error, and the gateway keeps serving', async () => {
    const r = await client.callTool({ name: 'bad__hang', arguments: {} });
    assert.equal(errorCode(r), 'ERR_UPSTREAM_TIMEOUT');
    const ok = await client.callTool({ name: 'bad__echo', arguments: { text: 'still here' } });
    assert.equal(text(ok), 'still here');
  });

  test('an upstream that answers garbage is a tool error', async () => {
    const r = await client.callTool({ name: 'bad__garbage', arguments: {} });
    assert.equal((r as ToolResult).isError, true);
    assert.match(String(errorCode(r)), /^ERR_UPSTREAM_/);
  });

  test('an upstream that crashes is a tool error, and the next call restarts it', async () => {
    const r = await client.callTool({ name: 'bad__crash', arguments: {} });
    assert.equal(errorCode(r), 'ERR_UPSTREAM_UNAVAILABLE');
    const ok = await client.callTool({ name: 'bad__echo', arguments: { text: 'restarted' } });
    assert.equal(text(ok), 'restarted');
  });

  test('cancellation passes through: the upstream hears the client cancel', async () => {
    const before = Number(text(await client.callTool({ name: 'bad__cancellations', arguments: {} })));
    const ac = new AbortController();
    const call = client.callTool({ name: 'bad__hang', arguments: {} }, undefined, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 200));
    ac.abort();
    await assert.rejects(call);
    let after = before;
    for (let i = 0; i < 50 && after === before; i++) {
      await new Promise((r) => setTimeout(r, 20));
      after = Number(text(await client.callTool({ name: 'bad__cancellations', arguments: {} })));
    }
    assert.equal(after, before + 1);
    const rec = (await records(gw)).findLast((x) => x.target === 'bad__hang');
    assert.equal(rec?.detail?.cancelled, true, 'the cancelled call is audited');
  });

  test('list_changed passes through, and the new tool becomes callable', async () => {
    let changed = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
    assert.ok(!(await client.listTools()).tools.some((t) => t.name === 'bad__late'));
    await client.callTool({ name: 'bad__add_tool', arguments: {} });
    for (let i = 0; i < 50 && changed === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(changed, 1);
    assert.ok((await client.listTools()).tools.some((t) => t.name === 'bad__late'));
    assert.equal(text(await client.callTool({ name: 'bad__late', arguments: {} })), 'late tool');
  });

  test("a stdio upstream gets only the default variables and its configured env, not Bastion's environment", async () => {
    const has = async (name: string): Promise<string> => text(await client.callTool({ name: 'bad__env_has', arguments: { name } }));
    assert.equal(await has('BASTION_LEAK_CANARY'), 'no');
    assert.equal(await has('GIVEN_TO_UPSTREAM'), 'yes');
    assert.equal(await has('PATH'), 'yes');
  });

  test('credentials from an upstream are redacted and large results withheld', async () => {
    const r = await client.callTool({ name: 'bad__leak', arguments: {} });
    assert.ok(!/gh[p]_[A-Za-z0-9]{30,}/.test(text(r)));
    const big = await client.callTool({ name: 'bad__huge', arguments: { kib: 100 } });
    assert.equal(errorCode(big), 'ERR_RESULT_TOO_LARGE');
    const small = await client.callTool({ name: 'bad__huge', arguments: { kib: 1 } });
    assert.equal((small as ToolResult).isError ?? false, false);
  });

  test('hidden characters in a result are flagged in the audit record', async () => {
    await client.callTool({ name: 'bad__sneaky', arguments: {} });
    const rec = (await records(gw)).findLast((x) => x.target === 'bad__sneaky');
    assert.deepEqual(rec?.detail?.hiddenCharacters, ['bidi']);
    const list = (await records(gw)).findLast((x) => x.method === 'tools/list' && x.agent === 'demo');
    assert.ok(JSON.stringify(list?.detail).includes('bad__sneaky:hidden_characters'));
  });

  test('every request is audited once and the chain verifies', async () => {
    const before = (await records(gw)).length;
    await client.ping();
    await client.listTools();
    await client.callTool({ name: 'bad__echo', arguments: { text: 'count me' } });
    const after = await records(gw);
    assert.equal(after.length - before, 3);
    const last = after.at(-1);
    assert.equal(last?.method, 'tools/call');
    assert.equal(last?.agent, 'demo');
    assert.match(String(last?.argsDigest), /^[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(after).includes('count me'), 'argument values are not recorded by default');
    assert.ok(!JSON.stringify(after).includes(FAKE_TOKEN));
    const v = await verifyAudit(gw.gateway.store);
    assert.equal(v.ok, true, JSON.stringify(v));
  });
});
