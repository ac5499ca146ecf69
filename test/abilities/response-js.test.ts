/**
 * `response.js` end to end: a real gateway (tool door, network door, ability
 * runner) calls a local HTTP API on 127.0.0.1, and the answer is transformed
 * by a JavaScript expression in the QuickJS sandbox. Failures of the
 * expression fail the call with their `ERR_JS_*` code; the audit record says
 * why, the agent gets a fixed text.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { AuditRecord } from '../../src/audit/types.ts';
import { EGRESS_KEY, startEgress, type TestEgress } from '../helpers/egress.ts';
import { closeServer, listenLoopback } from '../helpers/servers.ts';

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');
const errorCode = (r: unknown): string | undefined => ((r as ToolResult)._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

const ISSUES = [
  { number: 1, title: 'First', state: 'open', body: 'x'.repeat(100) },
  { number: 2, title: 'Second', state: 'closed', body: 'y'.repeat(100) },
  { number: 3, title: 'Third', state: 'open', body: 'z'.repeat(100) },
];

function api(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '').split('?')[0];
  if (path === '/text') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    return void res.end('plain words');
  }
  const status = path === '/broken' ? 500 : 200;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(path === '/broken' ? { message: 'it broke' } : ISSUES));
}

function config(port: number): string {
  const base = `http://127.0.0.1:${port}`;
  const ability = (name: string, path: string, js: string, select?: string): string =>
    `  ${name}:\n    description: ${name}.\n    url: "${base}${path}"\n    signContext: false\n    response:\n      js: ${JSON.stringify(js)}\n${select ? `      select: ${select}\n` : ''}`;
  return `version: 1
server: { listen: 127.0.0.1:0 }
store: { sqlite: ./b.db }
abilities:
${ability('js__titles', '/issues', "response.filter((i) => i.state === 'open').map((i) => '#' + i.number + ' ' + i.title)", '[number, title, state]')}${ability('js__object', '/issues', '{ count: response.length, first: response[0].title }')}${ability('js__script_like', '/issues', 'response.map((i) => i.number) // a trailing comment')}${ability('js__text', '/text', 'response.toUpperCase()')}${ability('js__throws', '/issues', 'response.nope.deeper')}${ability('js__syntax', '/issues', 'response.map(')}${ability('js__loop', '/issues', '(() => { for (;;); })()')}${ability('js__undefined', '/issues', 'undefined')}${ability('js__host', '/issues', '[typeof require, typeof process, typeof fetch, typeof setTimeout]')}${ability('js__mutate', '/issues', '(response[0].title = "changed", response[0].title)')}${ability('js__broken', '/broken', 'response.message.toUpperCase()')}
agents:
  demo:
    keys: [env:EGRESS_KEY]
    tools: [js__titles, js__object, js__script_like, js__text, js__throws, js__syntax, js__loop, js__undefined, js__host, js__mutate, js__broken]
    unsafeAllowPrivate: { ranges: [127.0.0.1/32] }
`;
}

describe('abilities: response.js', () => {
  let server: ReturnType<typeof createServer>;
  let eg: TestEgress;
  let client: Client;
  const call = (name: string) => client.callTool({ name, arguments: {} });
  async function lastCall(tool: string): Promise<AuditRecord> {
    await eg.gateway.audit.flush();
    const rec = (await eg.gateway.store.readAudit(1, 100_000)).findLast((r) => r.method === 'tools/call' && r.target === tool);
    assert.ok(rec, `a tools/call record for ${tool}`);
    return rec;
  }

  before(async () => {
    server = createServer(api);
    const port = await listenLoopback(server);
    eg = await startEgress(config(port));
    client = new Client({ name: 'response-js-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(eg.running.url, { requestInit: { headers: { Authorization: `Bearer ${EGRESS_KEY}` } } }));
  });

  after(async () => {
    await client.close();
    await eg.close();
    await closeServer(server);
  });

  test('the expression runs over the selected JSON, and its value is the answer', async () => {
    const r = await call('js__titles');
    assert.equal((r as ToolResult).isError, undefined, text(r));
    assert.deepEqual(JSON.parse(text(r)), ['#1 First', '#3 Third']);
    assert.deepEqual(JSON.parse(text(await call('js__object'))), { count: 3, first: 'First' });
    assert.deepEqual(JSON.parse(text(await call('js__script_like'))), [1, 2, 3]);
  });

  test('a text answer is bound as a string', async () => {
    assert.equal(JSON.parse(text(await call('js__text'))), 'PLAIN WORDS');
  });

  test('no host capability inside, and the response is frozen', async () => {
    assert.deepEqual(JSON.parse(text(await call('js__host'))), ['undefined', 'undefined', 'undefined', 'undefined']);
    assert.equal(errorCode(await call('js__mutate')), 'ERR_JS_ERROR');
  });

  test('failures fail the call with their code; the message goes to the audit record only', async () => {
    const threw = await call('js__throws');
    assert.equal(errorCode(threw), 'ERR_JS_ERROR');
    assert.doesNotMatch(text(threw), /nope|TypeError/);
    const rec = await lastCall('js__throws');
    assert.equal(rec.detail?.code, 'ERR_JS_ERROR');
    const ability = rec.detail?.ability as { error?: string; jsError?: string } | undefined;
    assert.equal(ability?.error, 'ERR_JS_ERROR');
    assert.match(ability?.jsError ?? '', /TypeError/);
    assert.equal(errorCode(await call('js__syntax')), 'ERR_JS_ERROR');
    assert.equal(errorCode(await call('js__undefined')), 'ERR_JS_RESULT');
    const loop = await call('js__loop');
    assert.equal(errorCode(loop), 'ERR_JS_TIMEOUT');
    assert.equal((await lastCall('js__loop')).outcome, 'timeout');
    // The sandbox still answers after a timeout.
    assert.deepEqual(JSON.parse(text(await call('js__script_like'))), [1, 2, 3]);
  });

  test('an HTTP error answer is not transformed', async () => {
    const r = await call('js__broken');
    assert.equal(errorCode(r), 'ERR_ABILITY_REQUEST');
    assert.match(text(r), /HTTP 500/);
    assert.match(text(r), /it broke/);
  });
});
