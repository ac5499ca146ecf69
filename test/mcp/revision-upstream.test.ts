/**
 * MCP revision 2026-07-28 behind Bastion: UpstreamConnection (SDK 1.x Client +
 * RevisionAdapter) against a stateless 2026-07-28 server built here with the
 * 2.x server SDK, against the 1.x legacy fixture, and against a raw loopback
 * server that sends what no SDK server would.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CLIENT_CAPABILITIES_META_KEY, McpServer, acceptedContent, createMcpHandler, fromJsonSchema, inputRequired } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, ResultSchema } from '@modelcontextprotocol/sdk/types.js';
import * as z from 'zod/v4';
import type { ResolvedUpstream } from '../../src/config/types.ts';
import { BastionError } from '../../src/errors.ts';
import { UpstreamHttpTransport } from '../../src/mcp/http-upstream-transport.ts';
import { UpstreamConnection, type UpstreamEvents } from '../../src/mcp/upstream.ts';
import {
  INPUT_REQUIRED_META_KEY,
  RevisionAdapter,
  discoverToInitialize,
  encodeMcpHeaderValue,
  liftCompleteResult,
  mcpParamHeaders,
  parseDiscoverResult,
  scanMcpHeaderDeclarations,
  type UpstreamRevision,
} from '../../src/mcp/revision/upstream.ts';
import { fixtureServerPath, startFixtureHttp, type ManagedServer } from '../helpers/mcp.ts';

const SERVER_INFO = 'io.modelcontextprotocol/serverInfo';

/** Run with this variable set, the file serves {@link modernFactory} over stdio (2026-07-28 only) instead of testing. */
const STDIO_FLAG = 'REVISION_UPSTREAM_TEST_SERVE_STDIO';

function stdioConfig(args: string[]): ResolvedUpstream {
  return {
    name: 'stdio-up',
    kind: 'stdio',
    command: process.execPath,
    args,
    cwd: process.cwd(),
    env: {},
    placeholderEnv: {},
    headers: {},
    prefix: false,
    signContext: false,
    secretHosts: [],
    timeoutMs: 10_000,
    connectTimeoutMs: 10_000,
    revision: 'auto',
  };
}

function upstreamConfig(url: URL, name = 'up'): ResolvedUpstream {
  return {
    name,
    kind: 'http',
    args: [],
    cwd: process.cwd(),
    env: {},
    placeholderEnv: {},
    url,
    headers: {},
    prefix: false,
    signContext: false,
    secretHosts: [url.host],
    timeoutMs: 10_000,
    connectTimeoutMs: 5_000,
    revision: 'auto',
  };
}

function events(over: Partial<UpstreamEvents> = {}): UpstreamEvents {
  return { onListChanged: () => undefined, onResourceUpdated: () => undefined, onLog: () => undefined, onClose: () => undefined, ...over };
}

async function listen(server: Server): Promise<URL> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
}

async function rejectsWith(p: Promise<unknown>, code: string, reason?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BastionError, `expected BastionError, got ${String(err)}`);
    assert.equal(err.code, code);
    if (reason !== undefined) assert.equal(err.detail?.['reason'], reason);
    return true;
  });
}

const text = (r: unknown): string => ((r as { content: { text: string }[] }).content[0]?.text ?? '');

const CAPS = 'io.modelcontextprotocol/clientCapabilities';
/** The `_meta` that puts one request in pass-through mode. */
const PASS = { [INPUT_REQUIRED_META_KEY]: 'return' };
type Loose = Record<string, unknown>;

/** tools/call through the 1.x Client with a loose result schema: an input_required result is no CallToolResult. */
async function rawCall(c: UpstreamConnection, params: Loose): Promise<Loose> {
  return c.request('tools/call', (o) => c.client.request({ method: 'tools/call', params } as never, ResultSchema, o));
}

/** What the `caps` tool of {@link modernFactory} saw, one entry per call: the envelope's capabilities and the other `_meta` keys. */
const capsSeen: { caps: unknown; metaKeys: string[] }[] = [];

/** The 2026-07-28 upstream: one fresh McpServer per HTTP request (stateless). */
function modernFactory(): McpServer {
  const s = new McpServer({ name: 'modern', version: '2.0.0' }, { instructions: 'modern instructions' });
  s.registerTool('echo', { description: 'echo', inputSchema: z.object({ text: z.string() }) }, ({ text: t }) => ({ content: [{ type: 'text', text: t }] }));
  s.registerTool(
    'regional',
    { inputSchema: fromJsonSchema({ type: 'object', properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, n: { type: 'integer', 'x-mcp-header': 'Count' } }, required: ['region'] } as never) },
    (args: unknown) => {
      const a = args as { region: string; n?: number };
      return { content: [{ type: 'text', text: `region=${a.region} n=${String(a.n)}` }] };
    },
  );
  // SEP-2243: `number` may not carry x-mcp-header, so this tool is invalid and never offered.
  s.registerTool('bad-header', { inputSchema: fromJsonSchema({ type: 'object', properties: { x: { type: 'number', 'x-mcp-header': 'X' } } } as never) }, () => ({ content: [] }));
  s.registerTool('confirm', { inputSchema: z.object({ what: z.string() }) }, ({ what }, ctx) => {
    const answer = acceptedContent(ctx.mcpReq.inputResponses, 'ok');
    if (answer === undefined) {
      return inputRequired({
        inputRequests: {
          ok: inputRequired.elicit({ message: `really ${what}?`, requestedSchema: { type: 'object', properties: { yes: { type: 'boolean' } }, required: ['yes'] } }),
        },
        requestState: 'state-1',
      });
    }
    return { content: [{ type: 'text', text: `yes=${String(answer['yes'])} state=${String(ctx.mcpReq.requestState())}` }] };
  });
  // Reads the per-request capabilities from the envelope and asks for elicitation; when the request
  // did not declare it, the SDK's inputRequired check answers -32021 with data.requiredCapabilities.
  s.registerTool('caps', { inputSchema: z.object({}) }, (_args, ctx) => {
    const caps = (ctx.mcpReq.envelope as Loose | undefined)?.[CLIENT_CAPABILITIES_META_KEY] as Loose | undefined;
    capsSeen.push({ caps, metaKeys: Object.keys(ctx.mcpReq._meta ?? {}).sort() });
    const answer = acceptedContent(ctx.mcpReq.inputResponses, 'ok');
    if (answer !== undefined) return { content: [{ type: 'text', text: `answered state=${String(ctx.mcpReq.requestState())}` }] };
    const declared = caps?.['elicitation'] !== undefined;
    return inputRequired({
      inputRequests: { ok: inputRequired.elicit({ message: declared ? 'declared' : 'undeclared', requestedSchema: { type: 'object', properties: { yes: { type: 'boolean' } } } }) },
      requestState: 'caps-state',
    });
  });
  s.registerTool('forever', { inputSchema: z.object({}) }, () =>
    inputRequired({ inputRequests: { again: inputRequired.elicit({ message: 'again', requestedSchema: { type: 'object', properties: { yes: { type: 'boolean' } } } }) } }),
  );
  s.registerPrompt('greet', { argsSchema: z.object({ who: z.string() }) }, ({ who }) => ({ messages: [{ role: 'user', content: { type: 'text', text: `hello ${who}` } }] }));
  s.registerResource('motd', 'memo://motd', { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, text: 'message of the day' }] }));
  return s;
}

if (process.env[STDIO_FLAG] === '1') {
  const { serveStdio } = await import('@modelcontextprotocol/server/stdio');
  serveStdio(modernFactory, { legacy: 'reject' });
  process.stdin.once('end', () => process.exit(0));
} else {
  registerTests();
}

function registerTests(): void {
  describe('RevisionAdapter against a 2026-07-28 upstream', () => {
    const seen: IncomingHttpHeaders[] = [];
    const handler = createMcpHandler(modernFactory, { legacy: 'reject' });
    const node = toNodeHandler(handler);
    const server = createServer((req, res) => {
      seen.push(req.headers);
      void node(req, res);
    });
    let url: URL;
    let elicited: unknown[] = [];
    let conn: UpstreamConnection;

    before(async () => {
      url = await listen(server);
      conn = await UpstreamConnection.connect(
        upstreamConfig(url),
        { sampling: false, elicitation: true },
        events({
          onElicitation: (req) => {
            elicited.push(req.params);
            return Promise.resolve({ action: 'accept', content: { yes: true } });
          },
        }),
      );
    });
    after(async () => {
      await conn.close();
      await handler.close();
      await new Promise<void>((r) => server.close(() => r()));
    });

    test('auto mode discovers 2026-07-28 and answers the handshake from server/discover', () => {
      assert.equal((conn.client.transport as RevisionAdapter).revision, '2026-07-28');
      assert.deepEqual(conn.client.getServerVersion(), { name: 'modern', version: '2.0.0' });
      assert.equal(conn.client.getInstructions(), 'modern instructions');
      assert.ok(conn.capabilities?.tools);
      const discover = seen[0];
      assert.equal(discover?.['mcp-method'], 'server/discover');
      assert.equal(discover?.['mcp-protocol-version'], '2026-07-28');
    });

    test('tools/list: wire-only fields lifted, a tool with an invalid x-mcp-header left out', async () => {
      const tools = await conn.listTools();
      assert.deepEqual(tools.map((t) => t.name).sort(), ['caps', 'confirm', 'echo', 'forever', 'regional']);
      const raw = (await conn.client.listTools()) as Record<string, unknown>;
      for (const k of ['resultType', 'ttlMs', 'cacheScope', '_meta']) assert.equal(k in raw, false, `${k} lifted`);
    });

    test('tools/call carries the envelope headers and no session id', async () => {
      seen.length = 0;
      const r = await conn.request('tools/call', (o) => conn.client.callTool({ name: 'echo', arguments: { text: 'hi' } }, undefined, o));
      assert.equal(text(r), 'hi');
      assert.equal('resultType' in (r as object), false);
      const h = seen.at(-1);
      assert.equal(h?.['mcp-method'], 'tools/call');
      assert.equal(h?.['mcp-name'], 'echo');
      assert.equal(h?.['mcp-protocol-version'], '2026-07-28');
      assert.equal(h?.['mcp-session-id'], undefined);
    });

    test('x-mcp-header arguments travel as Mcp-Param headers (the server checks them against the body)', async () => {
      seen.length = 0;
      const r = await conn.request('tools/call', (o) => conn.client.callTool({ name: 'regional', arguments: { region: 'Zürich', n: 3 } }, undefined, o));
      assert.equal(text(r), 'region=Zürich n=3');
      assert.equal(seen.at(-1)?.['mcp-param-region'], encodeMcpHeaderValue('Zürich'));
      assert.equal(seen.at(-1)?.['mcp-param-count'], '3');
      const r2 = await conn.request('tools/call', (o) => conn.client.callTool({ name: 'regional', arguments: { region: 'eu' } }, undefined, o));
      assert.equal(text(r2), 'region=eu n=undefined');
      assert.equal(seen.at(-1)?.['mcp-param-count'], undefined, 'absent argument: no header');
    });

    test('a tool with an invalid x-mcp-header declaration is not called', async () => {
      await rejectsWith(
        conn.request('tools/call', (o) => conn.client.callTool({ name: 'bad-header', arguments: { x: 1 } }, undefined, o)),
        'ERR_UPSTREAM_PROTOCOL',
        'tool-header-invalid',
      );
    });

    test('prompts/get and resources/read', async () => {
      const p = await conn.request('prompts/get', (o) => conn.client.getPrompt({ name: 'greet', arguments: { who: 'ada' } }, o));
      assert.deepEqual(p.messages[0]?.content, { type: 'text', text: 'hello ada' });
      assert.equal(seen.at(-1)?.['mcp-name'], 'greet');
      const res = await conn.request('resources/read', (o) => conn.client.readResource({ uri: 'memo://motd' }, o));
      assert.equal((res.contents[0] as { text: string }).text, 'message of the day');
      assert.equal(seen.at(-1)?.['mcp-name'], 'memo://motd');
      for (const k of ['resultType', 'ttlMs', 'cacheScope']) assert.equal(k in res, false);
    });

    test('input_required: elicitation answered through the Client handler, state echoed', async () => {
      elicited = [];
      const r = await conn.request('tools/call', (o) => conn.client.callTool({ name: 'confirm', arguments: { what: 'deploy' } }, undefined, o));
      assert.equal(text(r), 'yes=true state=state-1');
      assert.equal(elicited.length, 1);
      assert.equal((elicited[0] as { message: string }).message, 'really deploy?');
    });

    test('input_required rounds are bounded', async () => {
      elicited = [];
      await rejectsWith(conn.request('tools/call', (o) => conn.client.callTool({ name: 'forever', arguments: {} }, undefined, o)), 'ERR_UPSTREAM_PROTOCOL', 'input-rounds-exceeded');
      assert.equal(elicited.length, 8, 'one elicitation per allowed round');
    });

    test('the envelope declares only what the Client offers: the server refuses input it may not ask for', async () => {
      const bare = await UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation: false }, events());
      try {
        // The server's 400 carries a JSON-RPC error (-32021 MissingRequiredClientCapability), passed on as is.
        await assert.rejects(
          bare.request('tools/call', (o) => bare.client.callTool({ name: 'confirm', arguments: { what: 'x' } }, undefined, o)),
          (err: unknown) => err instanceof McpError && err.code === -32021 && (err.data as Loose)['requiredCapabilities'] !== undefined,
        );
      } finally {
        await bare.close();
      }
    });

    test('pass-through: input_required reaches the caller with requestState, no rounds run; the retry completes', async () => {
      elicited = [];
      const r = await rawCall(conn, { name: 'confirm', arguments: { what: 'ship' }, _meta: PASS });
      assert.equal(r['resultType'], 'input_required');
      assert.equal(r['requestState'], 'state-1');
      const ok = (r['inputRequests'] as Record<string, { method: string; params: Loose }>)['ok'];
      assert.equal(ok?.method, 'elicitation/create');
      assert.equal(ok?.params['message'], 'really ship?');
      assert.equal(((r['_meta'] ?? {}) as Loose)[SERVER_INFO], undefined, 'server info dropped');
      assert.equal(elicited.length, 0, 'the Client was asked nothing');
      const done = await rawCall(conn, {
        name: 'confirm',
        arguments: { what: 'ship' },
        inputResponses: { ok: { action: 'accept', content: { yes: true } } },
        requestState: r['requestState'],
        _meta: PASS,
      });
      assert.equal(text(done), 'yes=true state=state-1');
      assert.equal('resultType' in done, false, 'complete result lifted');
      assert.equal(elicited.length, 0);
    });

    test('per-request capabilities decide what the upstream may ask; roots never declared; the marker stays off the wire', async () => {
      capsSeen.length = 0;
      // The connection declared elicitation, the request declares nothing: the upstream refuses (-32021), code and data intact.
      await assert.rejects(rawCall(conn, { name: 'caps', arguments: {}, _meta: { ...PASS, [CAPS]: {}, 'keep/me': 1 } }), (err: unknown) => {
        assert.ok(err instanceof McpError, String(err));
        assert.equal(err.code, -32021);
        assert.deepEqual(Object.keys((err.data as { requiredCapabilities: Loose }).requiredCapabilities), ['elicitation']);
        return true;
      });
      assert.deepEqual(capsSeen[0], { caps: {}, metaKeys: ['keep/me'] });
      // A connection without elicitation, a request that declares it (and roots): the upstream asks, the caller gets the question.
      const bare = await UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation: false }, events());
      try {
        const r = await rawCall(bare, { name: 'caps', arguments: {}, _meta: { ...PASS, [CAPS]: { elicitation: { form: {} }, roots: { listChanged: true } } } });
        assert.equal(r['resultType'], 'input_required');
        assert.equal((r['inputRequests'] as Record<string, { params: Loose }>)['ok']?.params['message'], 'declared');
        assert.equal(r['requestState'], 'caps-state');
        assert.deepEqual(capsSeen[1], { caps: { elicitation: { form: {} } }, metaKeys: [] });
        const done = await rawCall(bare, { name: 'caps', arguments: {}, inputResponses: { ok: { action: 'accept', content: { yes: true } } }, requestState: 'caps-state', _meta: { ...PASS, [CAPS]: { elicitation: { form: {} } } } });
        assert.equal(text(done), 'answered state=caps-state');
      } finally {
        await bare.close();
      }
    });

    test('resolving mode (no marker) with per-request capabilities still answers through the Client', async () => {
      elicited = [];
      capsSeen.length = 0;
      const r = await rawCall(conn, { name: 'caps', arguments: {}, _meta: { [CAPS]: { elicitation: {} } } });
      assert.equal(text(r), 'answered state=caps-state');
      assert.equal(elicited.length, 1);
      assert.deepEqual(capsSeen.map((c) => c.caps), [{ elicitation: {} }, { elicitation: {} }], 'the retry keeps the request capabilities');
    });

    test('an elicitation the downstream fails ends the call with that failure', async () => {
      const c = await UpstreamConnection.connect(
        upstreamConfig(url),
        { sampling: false, elicitation: true },
        events({ onElicitation: () => Promise.reject(new Error('user went away')) }),
      );
      try {
        // The Client's handler answered with an error; there is no error-shaped input response to retry with.
        await rejectsWith(c.request('tools/call', (o) => c.client.callTool({ name: 'confirm', arguments: { what: 'x' } }, undefined, o)), 'ERR_UPSTREAM_UNAVAILABLE');
      } finally {
        await c.close();
      }
    });

    test("'2025-11-25' mode against a 2026-only upstream fails closed", async () => {
      await rejectsWith(UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation: false }, events(), {}, undefined, { revision: '2025-11-25' }), 'ERR_UPSTREAM_UNAVAILABLE');
    });
  });

  describe('RevisionAdapter against a 2025-11-25 (SDK 1.x) upstream', () => {
    let fixture: ManagedServer;
    before(async () => {
      fixture = await startFixtureHttp();
    });
    after(async () => {
      await fixture.close();
    });

    for (const revision of ['auto', '2025-11-25'] as UpstreamRevision[]) {
      test(`${revision} mode speaks the legacy handshake with sessions`, async () => {
        const conn = await UpstreamConnection.connect(upstreamConfig(fixture.url), { sampling: false, elicitation: false }, events(), {}, undefined, { revision });
        try {
          assert.equal((conn.client.transport as RevisionAdapter).revision, '2025-11-25');
          const tools = await conn.listTools();
          assert.ok(tools.length > 0);
          assert.equal(typeof conn.client.transport?.sessionId, 'string');
        } finally {
          await conn.close();
        }
      });
    }

    test("'2026-07-28' mode fails closed", async () => {
      await rejectsWith(
        UpstreamConnection.connect(upstreamConfig(fixture.url), { sampling: false, elicitation: false }, events(), {}, undefined, { revision: '2026-07-28' }),
        'ERR_UPSTREAM_PROTOCOL',
        'revision-unsupported',
      );
    });
  });

  describe('RevisionAdapter against a raw 2026-07-28 upstream', () => {
    type Msg = { id?: number | string; method: string; params?: Record<string, unknown> };
    let answer: (msg: Msg) => Record<string, unknown> = () => ({});
    let discoverResult: Record<string, unknown> = {};
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const msg = JSON.parse(body) as Msg;
        if (msg.id === undefined) return void res.writeHead(202).end();
        const result = msg.method === 'server/discover' ? discoverResult : answer(msg);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      });
    });
    let url: URL;
    before(async () => {
      url = await listen(server);
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    const goodDiscover = { resultType: 'complete', supportedVersions: ['2026-07-28'], capabilities: { tools: {} }, ttlMs: 0, cacheScope: 'private', _meta: { [SERVER_INFO]: { name: 'raw', version: '1' } } };
    const connect = (elicitation: boolean, onElicitation?: UpstreamEvents['onElicitation']) =>
      UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation }, events(onElicitation ? { onElicitation } : {}));

    const cases: [string, Record<string, unknown>, string][] = [
      ['a result without resultType', { tools: [], ttlMs: 0, cacheScope: 'private' }, 'result-invalid'],
      ['a result of unknown resultType', { resultType: 'eventually', tools: [] }, 'result-type-unknown'],
      ['input_required on tools/list', { resultType: 'input_required', requestState: 's' }, 'result-invalid'],
    ];
    for (const [name, result, reason] of cases) {
      test(`${name} is rejected`, async () => {
        discoverResult = goodDiscover;
        answer = () => result;
        const conn = await connect(false);
        try {
          await rejectsWith(conn.listTools(), 'ERR_UPSTREAM_PROTOCOL', reason);
        } finally {
          await conn.close();
        }
      });
    }

    test('a complete result the 1.x schema rejects is rejected', async () => {
      discoverResult = goodDiscover;
      answer = () => ({ resultType: 'complete', tools: [{ inputSchema: { type: 'object' } }], ttlMs: 0, cacheScope: 'private' });
      const conn = await connect(false);
      try {
        await assert.rejects(conn.listTools(), (err: unknown) => err instanceof BastionError && err.code.startsWith('ERR_UPSTREAM_'));
      } finally {
        await conn.close();
      }
    });

    test('retry carries inputResponses (bare results, roots empty) and the requestState byte for byte, on a new id', async () => {
      discoverResult = goodDiscover;
      const calls: Msg[] = [];
      answer = (msg) => {
        calls.push(msg);
        if (msg.params?.['requestState'] === undefined) {
          return {
            resultType: 'input_required',
            requestState: 'opaque/state==',
            inputRequests: {
              ok: { method: 'elicitation/create', params: { mode: 'form', message: 'go?', requestedSchema: { type: 'object', properties: { go: { type: 'boolean' } } } } },
              r: { method: 'roots/list' },
            },
          };
        }
        return { resultType: 'complete', content: [{ type: 'text', text: 'done' }] };
      };
      const conn = await connect(true, () => Promise.resolve({ action: 'accept', content: { go: true } }));
      try {
        const r = await conn.request('tools/call', (o) => conn.client.callTool({ name: 't', arguments: { a: 1 } }, undefined, o));
        assert.equal(text(r), 'done');
        assert.equal(calls.length, 2);
        const [first, retry] = calls as [Msg, Msg];
        assert.notEqual(first.id, retry.id);
        assert.equal(retry.params?.['requestState'], 'opaque/state==');
        assert.deepEqual(retry.params?.['inputResponses'], { ok: { action: 'accept', content: { go: true } }, r: { roots: [] } });
        assert.deepEqual(retry.params?.['arguments'], { a: 1 });
        assert.equal((retry.params?.['_meta'] as Record<string, unknown>)['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
      } finally {
        await conn.close();
      }
    });

    test('input for a capability the Client did not declare fails the call (no error-shaped input response exists)', async () => {
      discoverResult = goodDiscover;
      answer = () => ({ resultType: 'input_required', inputRequests: { s: { method: 'sampling/createMessage', params: { messages: [], maxTokens: 5 } } } });
      const conn = await connect(true, () => Promise.resolve({ action: 'decline' }));
      try {
        await rejectsWith(conn.request('tools/call', (o) => conn.client.callTool({ name: 't', arguments: {} }, undefined, o)), 'ERR_UPSTREAM_PROTOCOL', 'input-capability-missing');
      } finally {
        await conn.close();
      }
    });

    test('an unknown input request method fails the call', async () => {
      discoverResult = goodDiscover;
      answer = () => ({ resultType: 'input_required', inputRequests: { x: { method: 'tools/call', params: {} } } });
      const conn = await connect(true);
      try {
        await rejectsWith(conn.request('tools/call', (o) => conn.client.callTool({ name: 't', arguments: {} }, undefined, o)), 'ERR_UPSTREAM_PROTOCOL', 'input-request-invalid');
      } finally {
        await conn.close();
      }
    });

    test('pass-through: retry fields and per-request capabilities travel as given, the marker and roots do not', async () => {
      discoverResult = goodDiscover;
      const calls: Msg[] = [];
      const pending = { resultType: 'input_required', requestState: 'sealed/state==', inputRequests: { r: { method: 'roots/list' } }, ttlMs: 0, _meta: { [SERVER_INFO]: { name: 'raw', version: '1' }, other: 1 } };
      answer = (msg) => {
        calls.push(msg);
        return pending;
      };
      const conn = await connect(true, () => Promise.reject(new Error('must not be asked')));
      try {
        const params = {
          name: 't',
          arguments: { a: 1 },
          inputResponses: { x: { action: 'decline' } },
          requestState: 'from/downstream==',
          _meta: { ...PASS, [CAPS]: { sampling: {}, roots: {} }, 'io.modelcontextprotocol/protocolVersion': '1999-01-01', progressToken: 7 },
        };
        const r = await rawCall(conn, params);
        assert.deepEqual(r, { resultType: 'input_required', requestState: 'sealed/state==', inputRequests: { r: { method: 'roots/list' } }, ttlMs: 0, _meta: { other: 1 } });
        assert.equal(calls.length, 1, 'no rounds run');
        const wire = calls[0]?.params as Loose;
        assert.deepEqual(wire['inputResponses'], { x: { action: 'decline' } });
        assert.equal(wire['requestState'], 'from/downstream==');
        const meta = wire['_meta'] as Loose;
        assert.equal(INPUT_REQUIRED_META_KEY in meta, false);
        assert.deepEqual(meta[CAPS], { sampling: {} });
        assert.equal(meta['io.modelcontextprotocol/protocolVersion'], '2026-07-28');
        assert.deepEqual(meta['io.modelcontextprotocol/clientInfo'], { name: 'bastion', version: '0.1.0' });
        assert.equal(meta['progressToken'], 7);
      } finally {
        await conn.close();
      }
    });

    const badPassThrough: [string, Record<string, unknown>, string][] = [
      ['too many input requests', { resultType: 'input_required', inputRequests: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, { method: 'roots/list' }])) }, 'input-request-invalid'],
      ['an input request of a method outside the set', { resultType: 'input_required', inputRequests: { x: { method: 'tools/call', params: {} } } }, 'input-request-invalid'],
      ['an input request whose params are no object', { resultType: 'input_required', inputRequests: { x: { method: 'elicitation/create', params: 'p' } } }, 'input-request-invalid'],
      ['a requestState that is no string', { resultType: 'input_required', requestState: 5 }, 'result-invalid'],
      ['neither input requests nor state', { resultType: 'input_required', inputRequests: {} }, 'result-invalid'],
    ];
    for (const [name, result, reason] of badPassThrough) {
      test(`pass-through: ${name} is rejected`, async () => {
        discoverResult = goodDiscover;
        answer = () => result;
        const conn = await connect(true);
        try {
          await rejectsWith(rawCall(conn, { name: 't', arguments: {}, _meta: PASS }), 'ERR_UPSTREAM_PROTOCOL', reason);
        } finally {
          await conn.close();
        }
      });
    }

    test('the envelope never declares roots, even when the Client does', async () => {
      discoverResult = goodDiscover;
      const calls: Msg[] = [];
      answer = (msg) => {
        calls.push(msg);
        return { resultType: 'complete', content: [] };
      };
      let adapter: RevisionAdapter | undefined;
      const inner = new UpstreamHttpTransport(url, { messageHeaders: (m) => adapter?.headersFor(m) });
      adapter = new RevisionAdapter(inner, { revision: '2026-07-28' });
      const client = new Client({ name: 'c', version: '1' }, { capabilities: { roots: { listChanged: true }, elicitation: { form: {} } } });
      await client.connect(adapter);
      try {
        await client.callTool({ name: 't', arguments: {} });
        assert.deepEqual((calls[0]?.params?.['_meta'] as Loose)[CAPS], { elicitation: { form: {} } });
      } finally {
        await client.close();
      }
    });

    test("an invalid server/discover result fails '2026-07-28' mode closed", async () => {
      discoverResult = { resultType: 'complete', supportedVersions: 'all', capabilities: {} };
      await rejectsWith(
        UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation: false }, events(), {}, undefined, { revision: '2026-07-28' }),
        'ERR_UPSTREAM_PROTOCOL',
        'discover-invalid',
      );
    });
  });

  describe('RevisionAdapter against a raw 2025-11-25 upstream (bodies recorded)', () => {
    type Msg = { id?: number | string; method: string; params?: Loose };
    const bodies: Msg[] = [];
    const server = createServer((req, res) => {
      // No GET stream, no session to DELETE: a stateless legacy server.
      if (req.method !== 'POST') return void res.writeHead(405).end();
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const msg = JSON.parse(body) as Msg;
        bodies.push(msg);
        if (msg.id === undefined) return void res.writeHead(202).end();
        const result =
          msg.method === 'initialize'
            ? { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'legacy-raw', version: '1' } }
            : { content: [{ type: 'text', text: 'legacy done' }] };
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      });
    });
    let url: URL;
    before(async () => {
      url = await listen(server);
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    test('the marker, per-request capabilities and retry fields never reach the legacy wire', async () => {
      const conn = await UpstreamConnection.connect(upstreamConfig(url), { sampling: false, elicitation: false }, events(), {}, undefined, { revision: '2025-11-25' });
      try {
        assert.equal((conn.client.transport as RevisionAdapter).revision, '2025-11-25');
        bodies.length = 0;
        const r = await rawCall(conn, {
          name: 't',
          arguments: { a: 1 },
          inputResponses: { x: { action: 'accept' } },
          requestState: 's',
          _meta: { ...PASS, [CAPS]: { elicitation: {} }, 'keep/me': 1 },
        });
        assert.equal(text(r), 'legacy done');
        await rawCall(conn, { name: 't', arguments: {}, _meta: PASS });
        assert.deepEqual(
          bodies.map((b) => b.params),
          [
            { name: 't', arguments: { a: 1 }, _meta: { 'keep/me': 1 } },
            { name: 't', arguments: {} },
          ],
        );
      } finally {
        await conn.close();
      }
    });
  });

  describe('revision helpers', () => {
    test('scanMcpHeaderDeclarations: valid and invalid vectors (SEP-2243)', () => {
      const ok = scanMcpHeaderDeclarations({
        type: 'object',
        properties: { a: { type: 'string', 'x-mcp-header': 'A' }, o: { type: 'object', properties: { b: { type: 'boolean', 'x-mcp-header': 'B-2' } } } },
      });
      assert.deepEqual(ok, {
        valid: true,
        declarations: [
          { path: ['a'], headerName: 'A', type: 'string' },
          { path: ['o', 'b'], headerName: 'B-2', type: 'boolean' },
        ],
      });
      const bad: unknown[] = [
        { type: 'object', properties: { a: { type: 'number', 'x-mcp-header': 'A' } } },
        { type: 'object', properties: { a: { type: 'object', 'x-mcp-header': 'A' } } },
        { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': '' } } },
        { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'has space' } } },
        { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'Dup' }, b: { type: 'string', 'x-mcp-header': 'dup' } } },
        { type: 'object', properties: { a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'A' } } } },
        { type: 'object', anyOf: [{ properties: { a: { type: 'string', 'x-mcp-header': 'A' } } }] },
        { type: 'object', $defs: { d: { type: 'string', 'x-mcp-header': 'A' } } },
        { type: 'string', 'x-mcp-header': 'Root' },
      ];
      for (const schema of bad) assert.equal(scanMcpHeaderDeclarations(schema).valid, false, JSON.stringify(schema));
    });

    test('mcpParamHeaders: type conversion, omission, encoding', () => {
      const schema = {
        type: 'object',
        properties: { s: { type: 'string', 'x-mcp-header': 'S' }, i: { type: 'integer', 'x-mcp-header': 'I' }, b: { type: 'boolean', 'x-mcp-header': 'B' }, n: { type: 'string', 'x-mcp-header': 'N' } },
      };
      assert.deepEqual(mcpParamHeaders(schema, { s: ' padded', i: 42, b: false, n: null }), {
        ok: true,
        headers: { 'mcp-param-s': `=?base64?${Buffer.from(' padded').toString('base64')}?=`, 'mcp-param-i': '42', 'mcp-param-b': 'false' },
      });
      assert.deepEqual(mcpParamHeaders(schema, { i: 1.5, s: 7 }), { ok: true, headers: {} }, 'values of the wrong type get no header');
      assert.equal(mcpParamHeaders({ type: 'object', properties: { x: { type: 'number', 'x-mcp-header': 'X' } } }, { x: 1 }).ok, false);
      assert.equal(encodeMcpHeaderValue('plain-ascii value'), 'plain-ascii value');
      assert.equal(encodeMcpHeaderValue('=?base64?abc?='), `=?base64?${Buffer.from('=?base64?abc?=').toString('base64')}?=`);
      assert.equal(encodeMcpHeaderValue('a\r\nb').startsWith('=?base64?'), true);
      assert.equal(encodeMcpHeaderValue(''), '=?base64??=');
    });

    test('discoverToInitialize and parseDiscoverResult', () => {
      const d = parseDiscoverResult({ supportedVersions: ['2026-07-28'], capabilities: { tools: { listChanged: true } }, instructions: 'i', ttlMs: 5, cacheScope: 'public', _meta: { [SERVER_INFO]: { name: 'n', version: '1' } } });
      assert.ok(d);
      assert.deepEqual(discoverToInitialize(d, '2025-06-18'), { protocolVersion: '2025-06-18', capabilities: { tools: { listChanged: true } }, serverInfo: { name: 'n', version: '1' }, instructions: 'i' });
      assert.equal(discoverToInitialize(d, '2099-01-01').protocolVersion, '2025-11-25');
      assert.equal(parseDiscoverResult({ supportedVersions: [1], capabilities: {} }), undefined);
      assert.equal(parseDiscoverResult({ supportedVersions: [], capabilities: 'x' }), undefined);
      assert.deepEqual(discoverToInitialize(parseDiscoverResult({ supportedVersions: [], capabilities: {} })!, undefined).serverInfo, { name: 'unknown', version: 'unknown' });
    });

    test('liftCompleteResult keeps foreign _meta keys and drops wire-only ones', () => {
      assert.deepEqual(liftCompleteResult({ resultType: 'complete', ttlMs: 1, cacheScope: 'private', content: [], _meta: { [SERVER_INFO]: {}, other: 1 } }), { content: [], _meta: { other: 1 } });
    });

    test('RevisionAdapter validates its options', () => {
      assert.throws(() => new RevisionAdapter({} as never, { revision: 'latest' as never }), TypeError);
      assert.throws(() => new RevisionAdapter({} as never, { maxInputRounds: 0 }), RangeError);
    });
  });

  describe('RevisionAdapter over stdio', () => {
    test('auto mode against a 2026-07-28-only stdio server: discover, call, input_required', async () => {
      const conn = await UpstreamConnection.connect(
        stdioConfig([import.meta.filename]),
        { sampling: false, elicitation: true },
        events({ onElicitation: () => Promise.resolve({ action: 'accept', content: { yes: true } }) }),
        { [STDIO_FLAG]: '1' },
      );
      try {
        assert.equal((conn.client.transport as RevisionAdapter).revision, '2026-07-28');
        assert.ok((await conn.listTools()).some((t) => t.name === 'echo'));
        assert.equal(text(await conn.request('tools/call', (o) => conn.client.callTool({ name: 'echo', arguments: { text: 'over stdio' } }, undefined, o))), 'over stdio');
        assert.equal(text(await conn.request('tools/call', (o) => conn.client.callTool({ name: 'confirm', arguments: { what: 'x' } }, undefined, o))), 'yes=true state=state-1');
      } finally {
        await conn.close();
      }
    });

    test('auto mode against the 1.x stdio fixture falls back to the legacy handshake', async () => {
      const conn = await UpstreamConnection.connect(stdioConfig([fixtureServerPath, '--stdio']), { sampling: false, elicitation: false }, events());
      try {
        assert.equal((conn.client.transport as RevisionAdapter).revision, '2025-11-25');
        assert.ok((await conn.listTools()).length > 0);
      } finally {
        await conn.close();
      }
    });
  });
}
