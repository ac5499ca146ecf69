/**
 * Fuzzing the tool door over a real socket (bounded): arbitrary bodies into a
 * live session, and arbitrary arguments into tools/call. Only the known HTTP
 * statuses and JSON-RPC error shapes may come back, the process keeps serving,
 * and the audit chain still verifies.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { verifyAudit } from '../../src/audit/log.ts';
import { TEST_KEY, connect, startGateway, tempDir, type TestGateway, BAD_UPSTREAM_YAML } from '../helpers/gateway.ts';

const KNOWN_STATUS = new Set([200, 202, 400, 404, 405, 413]);
const METHODS = ['initialize', 'ping', 'tools/list', 'tools/call', 'resources/read', 'prompts/get', 'completion/complete', 'logging/setLevel', 'notifications/cancelled', 'nope/nope'];

describe('fuzzing the tool door', () => {
  let gw: TestGateway;
  let client: Client;
  let sid: string;

  before(async () => {
    gw = await startGateway(
      tempDir(),
      `version: 1
server:
  listen: 127.0.0.1:0
  maxBodyBytes: 65536
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
    tools: ["bad__echo", "bad__huge"]
${BAD_UPSTREAM_YAML}`,
      { T_KEY: TEST_KEY },
    );
    client = await connect(gw.url, TEST_KEY);
    sid = (client.transport as { sessionId?: string }).sessionId as string;
    await client.listTools();
  });
  after(async () => {
    await client?.close();
    await gw?.close();
  });

  const body = fc.oneof(
    fc.json({ maxDepth: 4 }),
    fc.string({ maxLength: 200 }),
    fc
      .record({
        jsonrpc: fc.constantFrom('2.0', '1.0', 2, undefined),
        id: fc.oneof(fc.integer(), fc.string({ maxLength: 10 }), fc.constant(null), fc.constant(undefined)),
        method: fc.oneof(fc.constantFrom(...METHODS), fc.string({ maxLength: 20 })),
        params: fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 3 }), fc.record({ name: fc.constantFrom('bad__echo', 'bad__huge', 'x'), arguments: fc.jsonValue({ maxDepth: 3 }) })),
      })
      .map((o) => JSON.stringify(o)),
  );

  test('arbitrary bodies into a live session get known answers', async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = await fetch(gw.url, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${TEST_KEY}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': sid,
            'mcp-protocol-version': '2025-11-25',
          },
          body: b,
        });
        const txt = await res.text();
        assert.ok(KNOWN_STATUS.has(res.status), `status ${res.status} for ${b.slice(0, 100)}: ${txt.slice(0, 200)}`);
        assert.ok(!/at .*\.ts:\d+|Error: /.test(txt), `no stack or raw error text: ${txt.slice(0, 200)}`);
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary tool arguments are validated, never crash', async () => {
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 4 })), async (args) => {
        const r = (await client.callTool({ name: 'bad__echo', arguments: args })) as { isError?: boolean; _meta?: Record<string, { code: string }> };
        if (r.isError) assert.equal(r._meta?.['bastion/error']?.code, 'ERR_ARGS_INVALID');
      }),
      { numRuns: 150 },
    );
  });

  test('afterwards the gateway serves and the chain verifies', async () => {
    const r = await client.callTool({ name: 'bad__echo', arguments: { text: 'still here' } });
    assert.equal((r as { content: { text: string }[] }).content[0]?.text, 'still here');
    const v = await verifyAudit(gw.gateway.store);
    assert.equal(v.ok, true, JSON.stringify(v));
    // 300 bodies and 150 calls, each exactly one record (notifications and transport-level rejections included).
    assert.ok(v.ok && v.count >= 450, `every fuzzed request was audited (${v.ok ? v.count : 0} records)`);
  });
});
