/**
 * The benchmark's upstream: a Streamable HTTP MCP server (official SDK, stateful
 * sessions) on loopback with two tools, `small` (a short text) and `large`
 * (64 KiB of text): the MCP 2025-11-25 upstream of bench/tool-door.ts (its 2026-07-28 twin is
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
const transports = new Map<string, StreamableHTTPServerTransport>();

function newServer(): McpServer {
  const s = new McpServer({ name: 'bench-upstream', version: '1.0.0' });
  s.registerTool('small', { description: 'Returns a short text.', inputSchema: { n: z.number().int() } }, async ({ n }) => ({
    content: [{ type: 'text', text: `ok ${n}` }],
  }));
  s.registerTool('large', { description: 'Returns 64 KiB of text.', inputSchema: { n: z.number().int() } }, async () => ({
    content: [{ type: 'text', text: LARGE }],
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
