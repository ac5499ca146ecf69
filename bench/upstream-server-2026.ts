/**
 * The benchmark's MCP 2026-07-28 upstream: the same two tools as bench/upstream-server.ts, `small`
 * (a short text) and `large` (64 KiB of text), served statelessly by the official 2.x SDK
 * (`McpServer` + `createMcpHandler` from @modelcontextprotocol/server, on node:http through
 * `toNodeHandler` from @modelcontextprotocol/node) on loopback. Modern-only (`legacy: 'reject'`):
 * a 2025-era request (initialize, no `_meta` envelope) is refused, so a bench call that succeeds
 * was served on the 2026-07-28 wire. Prints `listening <port>` when ready.
 * Usage: node bench/upstream-server-2026.ts [port]
 */
import { createServer } from 'node:http';
import { createMcpHandler, McpServer } from '@modelcontextprotocol/server';
import { toNodeHandler } from '@modelcontextprotocol/node';
import * as z from 'zod';

const LARGE = 'x'.repeat(64 * 1024);

/** One server instance per request (the stateless factory createMcpHandler calls). */
function newServer(): McpServer {
  const s = new McpServer({ name: 'bench-upstream-2026', version: '1.0.0' });
  s.registerTool('small', { description: 'Returns a short text.', inputSchema: z.object({ n: z.number().int() }) }, async ({ n }) => ({
    content: [{ type: 'text', text: `ok ${n}` }],
  }));
  s.registerTool('large', { description: 'Returns 64 KiB of text.', inputSchema: z.object({ n: z.number().int() }) }, async () => ({
    content: [{ type: 'text', text: LARGE }],
  }));
  return s;
}

const handler = createMcpHandler(newServer, { legacy: 'reject', onerror: (err) => console.error('upstream-2026:', err.message) });
const serve = toNodeHandler(handler, { onerror: (err) => console.error('upstream-2026: adapter:', err.message) });

const http = createServer((req, res) => {
  serve(req, res).catch((err: unknown) => {
    console.error('upstream-2026: request failed:', err);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
http.listen(Number(process.argv[2] ?? 0), '127.0.0.1', () => {
  const a = http.address();
  process.stdout.write(`listening ${typeof a === 'object' && a ? a.port : 0}\n`);
});
process.once('SIGTERM', () => {
  void handler.close();
  http.closeAllConnections();
  http.close(() => process.exit(0));
});
