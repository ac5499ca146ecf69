/**
 * The upstream Streamable HTTP client transport against a raw HTTP server that
 * writes exactly the bytes each case needs, driven by the official SDK Client.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UpstreamHttpError, UpstreamHttpTransport } from '../../src/mcp/http-upstream-transport.ts';

type Handler = (msg: { id?: number; method?: string; params?: { _meta?: { progressToken?: number } } }, req: IncomingMessage, res: ServerResponse) => void;

const sse = (id: string, data: unknown): string => `event: message\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
const result = (id: number | undefined, text: string) => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text }] } });

describe('UpstreamHttpTransport', () => {
  let url: URL;
  let onCall: Handler = () => undefined;
  let onGet: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => void res.writeHead(405).end();
  const server = createServer((req, res) => {
    if (req.method === 'GET') return onGet(req, res);
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const msg = JSON.parse(body) as { id?: number; method?: string };
      if (msg.method === 'initialize') {
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sess-1' });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } } }));
      }
      if (msg.id === undefined) return void res.writeHead(202).end();
      assert.equal(req.headers['mcp-session-id'], 'sess-1', 'session id sent on later requests');
      assert.equal(req.headers['mcp-protocol-version'], '2025-11-25');
      onCall(msg as never, req, res);
    });
  });

  before(async () => {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`);
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function client(): Promise<{ c: Client; t: UpstreamHttpTransport; errors: Error[] }> {
    const t = new UpstreamHttpTransport(url, { maxBodyBytes: 4096 });
    const errors: Error[] = [];
    const c = new Client({ name: 't', version: '1' });
    await c.connect(t);
    t.onerror = (e) => errors.push(e);
    return { c, t, errors };
  }

  test('regression: a progress notification in the same chunk as its response still reaches the client', async () => {
    onCall = (msg, _req, res) => {
      const token = msg.params?._meta?.progressToken;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const note = (p: number) => sse(`e${p}`, { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: token, progress: p, total: 100 } });
      res.end(note(0) + note(50) + note(100) + sse('e-final', result(msg.id, 'done')));
    };
    const { c } = await client();
    const seen: number[] = [];
    const r = await c.callTool({ name: 'x', arguments: {} }, undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.deepEqual(seen, [0, 50, 100]);
    assert.equal((r as { content: { text: string }[] }).content[0]?.text, 'done');
    await c.close();
  });

  test('a multi-byte character split across chunks is decoded intact', async () => {
    onCall = (msg, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const bytes = Buffer.from(sse('1', result(msg.id, 'héllo €')));
      const cut = bytes.indexOf(Buffer.from('€')) + 1; // inside the 3-byte euro sign
      res.write(bytes.subarray(0, cut));
      setTimeout(() => res.end(bytes.subarray(cut)), 20);
    };
    const { c } = await client();
    const r = await c.callTool({ name: 'x', arguments: {} });
    assert.equal((r as { content: { text: string }[] }).content[0]?.text, 'héllo €');
    await c.close();
  });

  test('a stream cut before its response is resumed with GET and Last-Event-ID', async () => {
    let lastEventId: string | undefined;
    onCall = (_msg, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('id: prime-1\nretry: 10\ndata: \n\n'); // priming event, then close: poll later
    };
    const pendingIds: number[] = [];
    const originalOnCall = onCall;
    onCall = (msg, req, res) => {
      pendingIds.push(msg.id as number);
      originalOnCall(msg, req, res);
    };
    onGet = (req, res) => {
      lastEventId = req.headers['last-event-id'] as string | undefined;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse('after-1', result(pendingIds[0], 'resumed')));
    };
    const { c } = await client();
    const r = await c.callTool({ name: 'x', arguments: {} }, undefined, { timeout: 5000 });
    assert.equal(lastEventId, 'prime-1');
    assert.equal((r as { content: { text: string }[] }).content[0]?.text, 'resumed');
    onGet = (_req, res) => void res.writeHead(405).end();
    await c.close();
  });

  test('an HTTP error answer rejects the request with its status', async () => {
    onCall = (_msg, _req, res) => void res.writeHead(500, { 'content-type': 'text/plain' }).end('upstream secret stack trace');
    const { c } = await client();
    await assert.rejects(c.callTool({ name: 'x', arguments: {} }), (err: unknown) => {
      assert.ok(err instanceof UpstreamHttpError);
      assert.equal(err.status, 500);
      assert.ok(!err.message.includes('stack trace'), 'upstream body not carried');
      return true;
    });
    await c.close();
  });

  test('garbage and oversized streams are errors, never crashes', async () => {
    onCall = (_msg, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('data: {not json\n\ndata: {"jsonrpc":"2.0","id":"x","nonsense":true}\n\n');
    };
    const { c, errors } = await client();
    await assert.rejects(c.callTool({ name: 'x', arguments: {} }, undefined, { timeout: 300 }), /timed out/);
    assert.ok(errors.length >= 2, `errors: ${errors.map((e) => e.message).join('; ')}`);
    onCall = (msg, _req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse('1', result(msg.id, 'x'.repeat(10_000))));
    };
    await assert.rejects(c.callTool({ name: 'x', arguments: {} }, undefined, { timeout: 500 }), /timed out/);
    assert.ok(errors.some((e) => /too large/.test(e.message)));
    await c.close();
  });
});
