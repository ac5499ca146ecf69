/**
 * The scale harness's MCP upstream: a Streamable HTTP server (official SDK,
 * stateful sessions) on loopback, in the harness's own process so it can tell
 * which calls it executed. Tools `small` and `large` take `{n}` (the request
 * id) and answer a short text; every `n` executed is kept in `executed`, so a
 * call the upstream ran can be checked for its audit record.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

export interface ScaleUpstream {
  /** The MCP endpoint, `http://127.0.0.1:PORT/mcp`. */
  readonly url: string;
  /** Every `n` a tool was called with. */
  readonly executed: Set<number>;
  close(): Promise<void>;
}

/** Starts the upstream on an ephemeral loopback port. */
export async function startScaleUpstream(): Promise<ScaleUpstream> {
  const executed = new Set<number>();
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const newServer = (): McpServer => {
    const s = new McpServer({ name: 'scale-upstream', version: '1.0.0' });
    for (const name of ['small', 'large']) {
      s.registerTool(name, { description: `Returns a short text (${name}).`, inputSchema: { n: z.number().int() } }, ({ n }) => {
        executed.add(n);
        return { content: [{ type: 'text', text: `ok ${n}` }] };
      });
    }
    return s;
  };
  const http = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body: unknown = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
      const sid = req.headers['mcp-session-id'];
      let t = typeof sid === 'string' ? transports.get(sid) : undefined;
      if (!t && req.method === 'POST' && isInitializeRequest(body)) {
        const created = new StreamableHTTPServerTransport({ sessionIdGenerator: randomUUID, onsessioninitialized: (id) => void transports.set(id, created) });
        created.onclose = () => void (created.sessionId && transports.delete(created.sessionId));
        await newServer().connect(created);
        t = created;
      }
      if (!t) return void res.writeHead(400).end();
      await t.handleRequest(req, res, body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  const port = (http.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    executed,
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
