/**
 * The benchmark's upstream: a Streamable HTTP MCP server (official SDK, stateful
 * sessions) on loopback with three tools, `small` (a short text), `large`
 * (64 KiB of text) and `prose` (64 KiB of varied words, for provenance tracing): the MCP 2025-11-25 upstream of bench/tool-door.ts (its 2026-07-28 twin is
 * bench/upstream-server-2026.ts). Prints `listening <port>` when ready.
 * Usage: node bench/upstream-server.ts [port]
 */
import { createServer } from 'node:http';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const LARGE = 'x'.repeat(64 * 1024);
/** 64 KiB of prose-like text (lines of varied words, addresses and numbers), the same on every call: what provenance tracing reads word by word. */
const PROSE = (() => {
  const words = ['invoice', 'meeting', 'quarterly', 'report', 'please', 'review', 'attached', 'customer', 'shipping', 'delayed', 'contract', 'renewal', 'budget', 'team', 'offsite', 'agenda'];
  let out = '';
  for (let i = 0; out.length < 64 * 1024; i++) {
    const line = Array.from({ length: 12 }, (_, k) => words[(i * 7 + k * 5) % words.length]).join(' ');
    out += `${line} ${i} ref-${(i * 7919) % 100_000} user${i % 97}@example.com\n`;
  }
  return out.slice(0, 64 * 1024);
})();
const transports = new Map<string, StreamableHTTPServerTransport>();

function newServer(): McpServer {
  const s = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
  s.registerTool('small', { description: 'Returns a short text.', inputSchema: { n: z.number().int() } }, async ({ n }) => ({
    content: [{ type: 'text', text: `ok ${n}` }],
  }));
  s.registerTool('large', { description: 'Returns 64 KiB of text.', inputSchema: { n: z.number().int() } }, async () => ({
    content: [{ type: 'text', text: LARGE }],
  }));
  s.registerTool('prose', { description: 'Returns 64 KiB of prose-like text.', inputSchema: { n: z.number().int() } }, async () => ({
    content: [{ type: 'text', text: PROSE }],
  }));
  return s;
}

const http = createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
  const sid = req.headers['mcp-session-id'];
  let t = typeof sid === 'string' ? transports.get(sid) : undefined;
  if (!t && req.method === 'POST' && isInitializeRequest(body)) {
    const created = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void transports.set(id, created) });
    created.onclose = () => void (created.sessionId && transports.delete(created.sessionId));
    await newServer().connect(created);
    t = created;
  }
  if (!t) {
    res.writeHead(400).end();
    return;
  }
  await t.handleRequest(req, res, body);
});
http.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const a = http.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : 0}\n`);
});
