/**
 * The path guard end to end through the tool door: the official filesystem MCP
 * server (npx, as in production) and a small server that really opens files
 * (test/policy/fixtures/file-upstream.ts), the official SDK client, real
 * sockets, the SQLite store. Pins issue 11, class 3: unclassified strings
 * (nested, under names that say nothing) were not checked, `file:` URIs in
 * resources/read were not checked at all, and a decomposed é slipped past a
 * deny glob.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { AuditRecord } from '../../src/audit/types.ts';
import { ROOT, TEST_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

type ToolResult = { isError?: boolean; content: { type: string; text?: string }[]; _meta?: Record<string, unknown> };
const text = (r: unknown): string => (r as ToolResult).content.map((c) => c.text ?? '').join('');
const errorCode = (r: unknown): string | undefined => ((r as ToolResult)._meta?.['bastion/error'] as { code?: string } | undefined)?.code;

const SECRET_NFC = 'secr\u00e9t.txt';
const SECRET_NFD = 'secre\u0301t.txt';

describe('path guard through the tool door (filesystem server and a file-reading server)', () => {
  let gw: TestGateway;
  let client: Client;
  let ws: string;
  let dir: string;

  const lastRecord = async (pred: (r: AuditRecord) => boolean): Promise<AuditRecord | undefined> =>
    (await gw.gateway.store.readAudit(1, 100_000)).findLast(pred);

  before(async () => {
    dir = tempDir({
      'workspace/notes/hello.txt': 'hello from the workspace\n',
      'workspace/.env': 'DEMO=1\n',
      [`workspace/${SECRET_NFC}`]: 'accented secret\n',
      'outside/secret.txt': 'outside the workspace\n',
    });
    ws = join(dir, 'workspace');
    const yaml = `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./.bastion/bastion.db
agents:
  demo:
    keys: [env:T_DEMO_KEY]
    tools: ["files__*", "docs__*"]
    resources: ["file://*"]
    prompts: ["docs__*"]
upstreams:
  files:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]
    workspace: ./workspace
    argumentKinds:
      edit_file: { "/edits/*/newText": not-path }
  docs:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(join(ROOT, 'test/policy/fixtures/file-upstream.ts'))}, ${JSON.stringify(join(ws, 'notes/hello.txt'))}]
    workspace: ./workspace
paths:
  allow: ["./workspace/**"]
  deny: ["**/.env", "**/secr\u00e9t*"]
`;
    gw = await startGateway(dir, yaml, { T_DEMO_KEY: TEST_KEY });
    client = await connect(gw.url, TEST_KEY);
  });

  after(async () => {
    await client?.close();
    await gw?.close();
  });

  test('a denied path nested in an unclassified argument (edit_file edits[0].oldText) is refused before the server', async () => {
    const r = await client.callTool({
      name: 'files__edit_file',
      arguments: { path: join(ws, 'notes/hello.txt'), edits: [{ oldText: join(ws, '.env'), newText: 'x' }], dryRun: true },
    });
    assert.equal(errorCode(r), 'ERR_PATH_DENIED', text(r));
    assert.match(text(r), /the path in \/edits\/0\/oldText is not allowed/);
    const rec = await lastRecord((x) => x.target === 'files__edit_file');
    assert.deepEqual(rec?.decision, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.equal(rec?.detail?.pathArgument, '/edits/0/oldText');
    assert.equal(rec?.detail?.pathArgumentKind, 'unclassified');
  });

  test('an argument the config classifies not-path is not checked (argumentKinds)', async () => {
    const r = await client.callTool({
      name: 'files__edit_file',
      arguments: { path: join(ws, 'notes/hello.txt'), edits: [{ oldText: 'hello', newText: '/etc/passwd' }], dryRun: true },
    });
    assert.equal((r as ToolResult).isError ?? false, false, text(r));
    assert.equal(errorCode(r), undefined);
  });

  test('a server that opens a nested, innocently named argument cannot be pointed at a denied or outside file', async () => {
    const leak = await client.callTool({ name: 'docs__read_nested', arguments: { request: { target: join(ws, '.env') } } });
    assert.equal(errorCode(leak), 'ERR_PATH_DENIED');
    assert.ok(!text(leak).includes('DEMO=1'));
    assert.equal((await lastRecord((x) => x.target === 'docs__read_nested'))?.decision.reason, 'path.denied');
    const out = await client.callTool({ name: 'docs__read_nested', arguments: { request: { target: join(dir, 'outside/secret.txt') } } });
    assert.equal(errorCode(out), 'ERR_PATH_DENIED');
    assert.equal((await lastRecord((x) => x.target === 'docs__read_nested'))?.decision.reason, 'path.outside');
    const ok = await client.callTool({ name: 'docs__read_nested', arguments: { request: { target: join(ws, 'notes/hello.txt') } } });
    assert.equal(errorCode(ok), undefined);
    assert.match(text(ok), /hello from the workspace/);
  });

  test('resources/read with a file: URI is path-checked: denied, outside, percent-encoded traversal', async () => {
    const hello = await client.readResource({ uri: pathToFileURL(join(ws, 'notes/hello.txt')).href });
    assert.match(JSON.stringify(hello.contents), /hello from the workspace/);

    await assert.rejects(client.readResource({ uri: pathToFileURL(join(ws, '.env')).href }), /ERR_PATH_DENIED/);
    const rec = await lastRecord((x) => x.method === 'resources/read');
    assert.deepEqual(rec?.decision, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });

    // %2e%2e is `..` to the URL parser (and to the server's fileURLToPath): it lands outside.
    const encoded = `${pathToFileURL(ws).href}/notes/%2e%2e/%2E%2E/outside/secret.txt`;
    await assert.rejects(client.readResource({ uri: encoded }), /ERR_PATH_DENIED/);
    assert.equal((await lastRecord((x) => x.method === 'resources/read'))?.decision.reason, 'path.outside');
    // Encoded twice: a server that decodes twice would climb; refused as invalid.
    await assert.rejects(client.readResource({ uri: `${pathToFileURL(ws).href}/%252e%252e/outside/secret.txt` }), /ERR_PATH_DENIED/);
    assert.equal((await lastRecord((x) => x.method === 'resources/read'))?.decision.reason, 'path.invalid');
  });

  test('completing a file: resource template cannot list names outside the workspace', async () => {
    const complete = (value: string) => client.complete({ ref: { type: 'ref/resource', uri: 'file://{+path}' }, argument: { name: 'path', value } });
    const inside = await complete(`${ws}/notes/`);
    assert.deepEqual(inside.completion.values, [join(ws, 'notes/hello.txt')]);
    await assert.rejects(complete(`${dir}/outside/`), /ERR_PATH_DENIED/);
    assert.equal((await lastRecord((x) => x.method === 'completion/complete'))?.decision.reason, 'path.outside');
    await assert.rejects(complete(`${ws}/notes/../../outside/se`), /ERR_PATH_DENIED/);
    // The server proposes .env for `.en`: a name under a deny glob is dropped from the answer.
    assert.deepEqual((await complete(`${ws}/.en`)).completion.values, []);
    assert.deepEqual((await complete(`${ws}/`)).completion.values.sort(), [join(ws, 'notes')]);
    // A simple expansion encodes the slashes: no longer a file URL a careful server could open; refused.
    await assert.rejects(client.complete({ ref: { type: 'ref/resource', uri: 'file://{path}' }, argument: { name: 'path', value: '/etc/pa' } }), /ERR_PATH_DENIED/);
    assert.equal((await lastRecord((x) => x.method === 'completion/complete'))?.decision.reason, 'path.invalid');
  });

  test('prompts/get arguments are checked like tool arguments', async () => {
    const text = (r: { messages: { content: { type: string; text?: string } }[] }): string => r.messages.map((m) => m.content.text ?? '').join('');
    assert.match(text(await client.getPrompt({ name: 'docs__review', arguments: { subject: join(ws, 'notes/hello.txt') } })), /hello from the workspace/);
    await assert.rejects(client.getPrompt({ name: 'docs__review', arguments: { subject: join(ws, '.env') } }), /ERR_PATH_DENIED/);
    const rec = await lastRecord((x) => x.method === 'prompts/get');
    assert.deepEqual(rec?.decision, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[0]' });
    assert.deepEqual([rec?.detail?.pathArgument, rec?.detail?.pathArgumentKind], ['/subject', 'unclassified']);
    await assert.rejects(client.getPrompt({ name: 'docs__review', arguments: { subject: `${dir}/outside/secret.txt` } }), /ERR_PATH_DENIED/);
  });

  test('a decomposed é (NFD) does not slip past a deny glob written composed (NFC)', async () => {
    const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: join(ws, SECRET_NFD) } });
    assert.equal(errorCode(r), 'ERR_PATH_DENIED');
    assert.deepEqual((await lastRecord((x) => x.target === 'files__read_text_file'))?.decision, { effect: 'deny', reason: 'path.denied', rule: 'paths.deny[1]' });
    await assert.rejects(client.readResource({ uri: pathToFileURL(join(ws, SECRET_NFD)).href }), /ERR_PATH_DENIED/);
  });
});
