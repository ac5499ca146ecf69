/**
 * The downstream wire of MCP 2026-07-28 (src/mcp/revision/wire.ts), without
 * sockets: classification and header checks, SEP-2243 `x-mcp-header`
 * declarations and `Mcp-Param-*` checks, the translation to the session's
 * request shape, and modern results.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  approvalInputRequired,
  classify,
  decodeHeaderValue,
  discoverResult,
  MODERN_RPC,
  modernResult,
  paramHeaderDeclarations,
  paramHeaderMismatch,
  REQUEST_STATE_META_KEY,
  toLegacyRequest,
  type WireRejection,
} from '../../src/mcp/revision/wire.ts';
import { assertLinear } from '../helpers/complexity.ts';

const PV = 'io.modelcontextprotocol/protocolVersion';
const CC = 'io.modelcontextprotocol/clientCapabilities';
const env = { [PV]: '2026-07-28', [CC]: {} };
const req = (method: string, params: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id: 7, method, params: { ...params, _meta: env } });
const b64 = (s: string): string => `=?base64?${Buffer.from(s, 'utf8').toString('base64')}?=`;

describe('classify', () => {
  test('legacy traffic stays legacy: initialize, no envelope, GET', () => {
    assert.equal(classify({ httpMethod: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'c', version: '1' } } } }).kind, 'legacy');
    assert.equal(classify({ httpMethod: 'POST', body: { jsonrpc: '2.0', id: 1, method: 'tools/list' } }).kind, 'legacy');
    assert.equal(classify({ httpMethod: 'GET' }).kind, 'legacy');
  });

  test('a modern request with consistent headers is routed modern', () => {
    const r = classify({ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', mcpNameHeader: 'echo', body: req('tools/call', { name: 'echo' }) });
    assert.equal(r.kind, 'modern');
  });

  test('each header rule refuses with -32020 and names the header', () => {
    const cases: [Parameters<typeof classify>[0], string][] = [
      [{ httpMethod: 'POST', mcpMethodHeader: 'tools/list', body: req('tools/list') }, 'version-header-missing'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', body: req('tools/list') }, 'method-header-missing'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', body: req('tools/call', { name: 'a' }) }, 'name-header-missing'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', mcpNameHeader: 'b', body: req('tools/call', { name: 'a' }) }, 'name-header-mismatch'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'prompts/get', mcpNameHeader: 'b', body: req('prompts/get', { name: 'a' }) }, 'name-header-mismatch'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'resources/read', mcpNameHeader: 'file:///b', body: req('resources/read', { uri: 'file:///a' }) }, 'name-header-mismatch'],
      [{ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', mcpNameHeader: '=?base64?!!!?=', body: req('tools/call', { name: 'a' }) }, 'name-header-invalid-encoding'],
    ];
    for (const [input, cell] of cases) {
      const r = classify(input) as WireRejection;
      assert.equal(r.kind, 'reject', cell);
      assert.equal(r.cell, cell);
      assert.equal(r.code, MODERN_RPC.HEADER_MISMATCH);
      assert.equal(r.httpStatus, 400);
    }
  });

  test('Mcp-Name may carry the base64 sentinel and optional whitespace', () => {
    const name = 'héllo tool';
    assert.equal(classify({ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', mcpNameHeader: ` ${b64(name)}\t`, body: req('tools/call', { name }) }).kind, 'modern');
  });

  test('a revision Bastion does not serve: -32022 with supported and requested', () => {
    const body = { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { [PV]: '2099-01-01', [CC]: {} } } };
    const r = classify({ httpMethod: 'POST', protocolVersionHeader: '2099-01-01', mcpMethodHeader: 'tools/list', body }) as WireRejection;
    assert.equal(r.code, MODERN_RPC.UNSUPPORTED_VERSION);
    assert.deepEqual((r.data as { requested: string }).requested, '2099-01-01');
    assert.ok((r.data as { supported: string[] }).supported.includes('2026-07-28'));
  });

  test('a missing client-capabilities key: -32602 (envelope)', () => {
    const r = classify({ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/list', body: { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: { [PV]: '2026-07-28' } } } }) as WireRejection;
    assert.equal(r.code, -32602);
  });

  test('notifications need no standard headers', () => {
    const body = { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1, _meta: env } };
    assert.equal(classify({ httpMethod: 'POST', body }).kind, 'modern');
  });
});

describe('x-mcp-header declarations (SEP-2243)', () => {
  test('primitive properties reachable through `properties` are declarations', () => {
    const d = paramHeaderDeclarations({
      type: 'object',
      properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, opts: { type: 'object', properties: { n: { type: 'integer', 'x-mcp-header': 'N' } } } },
    });
    assert.deepEqual(d, [
      { headerName: 'Region', path: ['region'], type: 'string' },
      { headerName: 'N', path: ['opts', 'n'], type: 'integer' },
    ]);
  });

  test('invalid declarations make the tool unusable', () => {
    const bad: unknown[] = [
      { type: 'object', 'x-mcp-header': 'Root' },
      { type: 'object', properties: { a: { type: 'object', 'x-mcp-header': 'A' } } },
      { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'has space' } } },
      { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': '' } } },
      { type: 'object', properties: { a: { type: 'string', 'x-mcp-header': 'X' }, b: { type: 'string', 'x-mcp-header': 'x' } } },
      { type: 'object', properties: { a: { type: 'array', items: { type: 'string', 'x-mcp-header': 'I' } } } },
      { type: 'object', properties: { a: { anyOf: [{ type: 'string', 'x-mcp-header': 'Y' }] } } },
      { type: 'object', $defs: { d: { type: 'string', 'x-mcp-header': 'D' } } },
      { type: 'object', properties: { a: { 'x-mcp-header': 'NoType' } } },
    ];
    for (const schema of bad) assert.equal(paramHeaderDeclarations(schema), 'invalid', JSON.stringify(schema));
  });

  test('Mcp-Param-* must mirror present arguments, decoded and compared by type', () => {
    const decls = paramHeaderDeclarations({
      type: 'object',
      properties: { region: { type: 'string', 'x-mcp-header': 'Region' }, n: { type: 'number', 'x-mcp-header': 'N' }, flag: { type: 'boolean', 'x-mcp-header': 'Flag' } },
    });
    assert.ok(Array.isArray(decls));
    const headers = (h: Record<string, string>) => (name: string) => h[name];
    assert.equal(paramHeaderMismatch(decls, { region: 'eu', n: 42, flag: true }, headers({ 'mcp-param-region': 'eu', 'mcp-param-n': '42.0', 'mcp-param-flag': 'true' })), undefined);
    assert.equal(paramHeaderMismatch(decls, { region: 'zürich' }, headers({ 'mcp-param-region': b64('zürich') })), undefined);
    // Absent or null arguments need no header; a header for them is ignored.
    assert.equal(paramHeaderMismatch(decls, { region: null }, headers({ 'mcp-param-region': 'anything' })), undefined);
    const cell = (args: Record<string, unknown>, h: Record<string, string>) => paramHeaderMismatch(decls, args, headers(h))?.cell;
    assert.equal(cell({ region: 'eu' }, {}), 'param-header-missing');
    assert.equal(cell({ region: 'eu' }, { 'mcp-param-region': 'us' }), 'param-header-mismatch');
    assert.equal(cell({ region: 'eu' }, { 'mcp-param-region': '=?base64?ZXU?=' }), 'param-header-invalid-encoding');
    assert.equal(cell({ n: 42 }, { 'mcp-param-n': '0x2a' }), 'param-header-mismatch');
    assert.equal(cell({ flag: true }, { 'mcp-param-flag': 'TRUE' }), 'param-header-mismatch');
    assert.equal(paramHeaderMismatch(decls, { region: 'eu' }, headers({ 'mcp-param-region': 'us' }))?.code, MODERN_RPC.HEADER_MISMATCH);
  });

  test('decodeHeaderValue: plain values as they are; the sentinel only with canonical base64 of UTF-8', () => {
    assert.equal(decodeHeaderValue('plain'), 'plain');
    assert.equal(decodeHeaderValue(b64('ünïcode')), 'ünïcode');
    assert.equal(decodeHeaderValue('=?base64?/w==?='), undefined, 'invalid UTF-8');
    assert.equal(decodeHeaderValue('=?base64?YQ?='), undefined, 'unpadded');
    assert.equal(decodeHeaderValue('=?base64?=?='), undefined);
  });

  test('the sentinel decoder and the scan stay linear on long hostile input', () => {
    const sentinel = (n: number): string => `=?base64?${'A'.repeat(n)}!?=`;
    assertLinear('sentinel', (s) => decodeHeaderValue(s), sentinel(4000), sentinel(16000));
    const spaced = (n: number): string => `${' '.repeat(n)}x${'\t '.repeat(n)}y`;
    const name = (s: string): void => void classify({ httpMethod: 'POST', protocolVersionHeader: '2026-07-28', mcpMethodHeader: 'tools/call', mcpNameHeader: s, body: req('tools/call', { name: 'x' }) });
    assertLinear('Mcp-Name whitespace', name, spaced(2000), spaced(8000));
  });
});

describe('translation', () => {
  test('toLegacyRequest removes the envelope and any client copy of the internal keys, and carries state, responses and capabilities', () => {
    const planted = { [REQUEST_STATE_META_KEY]: 'forged', 'bastion/inputResponses': { x: 1 }, 'bastion/clientCapabilities': { sampling: {} }, 'bastion/inputRequired': 'return' };
    const m = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'a', arguments: {}, requestState: 'S', inputResponses: { k: {} }, _meta: { ...env, progressToken: 3, ...planted } } };
    assert.deepEqual(toLegacyRequest(m).params, {
      name: 'a',
      arguments: {},
      _meta: { progressToken: 3, [REQUEST_STATE_META_KEY]: 'S', 'bastion/inputResponses': { k: {} }, 'bastion/clientCapabilities': {} },
    });
    const noState = { ...m, params: { name: 'a', _meta: { [PV]: '2026-07-28', ...planted } } };
    assert.deepEqual(toLegacyRequest(noState).params, { name: 'a' });
  });

  test('property: the internal key only ever carries the request\'s own requestState', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.option(fc.string(), { nil: undefined }), fc.jsonValue(), (meta, state, planted) => {
        const params: Record<string, unknown> = { name: 'x', _meta: { ...meta, [REQUEST_STATE_META_KEY]: planted } };
        if (state !== undefined) params.requestState = state;
        const out = toLegacyRequest({ jsonrpc: '2.0', id: 1, method: 'tools/call', params }).params as { _meta?: Record<string, unknown>; requestState?: unknown };
        assert.equal(out.requestState, undefined);
        assert.equal(out._meta?.[REQUEST_STATE_META_KEY], state);
        assert.equal(out._meta?.[PV], undefined);
        assert.equal(out._meta?.[CC], undefined);
      }),
    );
  });

  test('modernResult: complete, server info, private cache hint on cacheable methods only (an upstream\'s public hint is overridden)', () => {
    const hint = { ttlMs: 100, cacheScope: 'private' as const };
    const list = modernResult('tools/list', { tools: [], ttlMs: 999999, cacheScope: 'public' }, hint);
    assert.equal(list.resultType, 'complete');
    assert.equal(list.ttlMs, 100);
    assert.equal(list.cacheScope, 'private');
    assert.equal((list._meta as Record<string, { name: string }>)['io.modelcontextprotocol/serverInfo']?.name, 'bastion');
    const callResult = modernResult('tools/call', { content: [] }, hint);
    assert.equal(callResult.ttlMs, undefined);
    assert.equal(callResult.cacheScope, undefined);
    const d = discoverResult({ tools: {} }, hint);
    assert.ok((d.supportedVersions as string[]).includes('2026-07-28'));
    assert.equal(d.cacheScope, 'private');
  });

  test('approvalInputRequired: a URL elicitation only for clients that declared URL mode', () => {
    const withUrl = approvalInputRequired('S', 'ap1', { elicitation: { url: {} } }, 'http://127.0.0.1:1/api/approvals/ap1');
    assert.equal(withUrl.resultType, 'input_required');
    assert.equal(withUrl.requestState, 'S');
    const ask = (withUrl.inputRequests as Record<string, { params: { mode: string; url: string } }>)['bastion/approval'];
    assert.equal(ask?.params.mode, 'url');
    const formOnly = approvalInputRequired('S', 'ap1', { elicitation: { form: {} } }, 'http://x/');
    assert.equal(formOnly.inputRequests, undefined);
    assert.equal(approvalInputRequired('S', 'ap1', {}, 'http://x/').inputRequests, undefined);
  });
});
