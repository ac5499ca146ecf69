/**
 * Several upstreams behind one gateway: tools and prompts exposed as
 * `<upstream>__<name>`, resources routed to the upstream that lists them,
 * completions mapped back to the original prompt name, and names that two
 * unprefixed upstreams both expose hidden (and reported in the audit record).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { startEverythingHttp, startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';
import { TEST_KEY, connect, startGateway, tempDir, type TestGateway } from '../helpers/gateway.ts';

const text = (r: unknown): string => (r as { content: { text?: string }[] }).content.map((c) => c.text ?? '').join('');

function config(upstreams: string): string {
  return `version: 1
server:
  listen: 127.0.0.1:0
store:
  sqlite: ./bastion.db
agents:
  a:
    keys: [env:T_KEY]
    tools: ["*"]
    resources: ["*"]
    prompts: ["*"]
upstreams:
${upstreams}`;
}

describe('aggregation of several upstreams', () => {
  let fixture: ManagedServer;
  let everything: ManagedServer;
  before(async () => {
    [fixture, everything] = await Promise.all([startFixtureHttp(), startEverythingHttp()]);
  });
  after(async () => {
    await Promise.all([fixture?.close(), everything?.close()]);
  });

  describe('prefixed (the default)', () => {
    let gw: TestGateway;
    let client: Client;
    before(async () => {
      gw = await startGateway(tempDir(), config(`  conf:\n    url: ${fixture.url.href}\n  every:\n    url: ${everything.url.href}\n`), { T_KEY: TEST_KEY });
      client = await connect(gw.url, TEST_KEY);
    });
    after(async () => {
      await client?.close();
      await gw?.close();
    });

    test('tools from both upstreams, each under its prefix, each callable', async () => {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('conf__test_simple_text'));
      assert.ok(names.includes('every__echo'));
      assert.ok(names.every((n) => n.startsWith('conf__') || n.startsWith('every__')), names.join(','));
      assert.match(text(await client.callTool({ name: 'conf__test_simple_text', arguments: {} })), /simple text/i);
      assert.match(text(await client.callTool({ name: 'every__echo', arguments: { message: 'through bastion' } })), /through bastion/);
      const bare = await client.callTool({ name: 'test_simple_text', arguments: {} });
      assert.equal((bare as { isError?: boolean }).isError, true, 'the unprefixed name does not exist');
    });

    test('prompts are prefixed, and get and complete reach the right upstream under the original name', async () => {
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      assert.ok(prompts.includes('conf__test_simple_prompt'), prompts.join(','));
      assert.ok(prompts.some((p) => p.startsWith('every__')));
      const got = await client.getPrompt({ name: 'conf__test_simple_prompt' });
      assert.ok(got.messages.length > 0);
      const completion = await client.complete({ ref: { type: 'ref/prompt', name: 'conf__test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'p' } });
      assert.ok(Array.isArray(completion.completion.values));
    });

    test('resources keep their URIs and are read from the upstream that lists them', async () => {
      const uris = (await client.listResources()).resources.map((r) => r.uri);
      assert.ok(uris.includes('test://static-text'));
      const read = await client.readResource({ uri: 'test://static-text' });
      assert.ok(read.contents.length > 0);
      await assert.rejects(client.readResource({ uri: 'nobody://owns-this' }), /ERR_POLICY_DENIED/);
    });
  });

  describe('two unprefixed upstreams exposing the same names', () => {
    let gw: TestGateway;
    let client: Client;
    before(async () => {
      gw = await startGateway(
        tempDir(),
        config(`  one:\n    url: ${fixture.url.href}\n    prefix: false\n  two:\n    url: ${fixture.url.href}\n    prefix: false\n`),
        { T_KEY: TEST_KEY },
      );
      client = await connect(gw.url, TEST_KEY);
    });
    after(async () => {
      await client?.close();
      await gw?.close();
    });

    test('every shared name is hidden from both, refused when called, and reported', async () => {
      assert.deepEqual((await client.listTools()).tools, []);
      assert.deepEqual((await client.listPrompts()).prompts, []);
      assert.ok(!(await client.listResources()).resources.some((r) => r.uri === 'test://static-text'));
      const r = await client.callTool({ name: 'test_simple_text', arguments: {} });
      assert.equal((r as { _meta?: Record<string, { code: string }> })._meta?.['bastion/error']?.code, 'ERR_POLICY_DENIED');
      await assert.rejects(client.readResource({ uri: 'test://static-text' }), /ERR_POLICY_DENIED/);
      const list = (await gw.gateway.store.readAudit(1, 1000)).find((x) => x.method === 'tools/list');
      const problems = list?.detail?.catalogueProblems as { kind: string; name: string; upstreams: string[] }[];
      assert.ok(problems.some((p) => p.kind === 'collision' && p.name === 'test_simple_text' && p.upstreams.join() === 'one,two'));
    });
  });
});
