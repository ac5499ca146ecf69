/**
 * Serves one attack-suite {@link Environment} as a Streamable HTTP MCP server on 127.0.0.1
 * (official SDK 1.x, low-level `Server`, stateless: a fresh server and transport per POST, JSON
 * responses). `tools/list` lists `env.tools` with their raw JSON schemas; `tools/call` runs
 * `tool.run(state, args)` on the holder's current state, a thrown Error becoming an `isError: true`
 * result with the error's message. The runner swaps `holder.state` for a fresh state per run.
 */
import { createServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Environment } from './types.ts';

/** Largest request body read, in bytes; more is answered 413. */
const MAX_BODY_BYTES = 1024 * 1024;

/** The state a served environment's tools run on; the runner replaces `state` between runs. */
export interface StateHolder<S> {
  state: S;
}

/** A running environment server. */
export interface EnvServer {
  /** The MCP endpoint, `http://127.0.0.1:PORT/mcp`. */
  readonly url: string;
  /** Tool calls served so far (all runs). */
  readonly calls: () => number;
  close(): Promise<void>;
}

/** One MCP server over the holder's state: what a stateless POST is answered by. */
function mcpServer<S>(env: Environment<S>, holder: StateHolder<S>, count: () => void): Server {
  const server = new Server({ name: `defense-${env.name}`, version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({
    tools: env.tools.map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as { type: 'object' } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, (req): CallToolResult => {
    count();
    const tool = env.tools.find((t) => t.name === req.params.name);
    if (tool === undefined) return { content: [{ type: 'text', text: `unknown tool ${req.params.name}` }], isError: true };
    try {
      return { content: [{ type: 'text', text: tool.run(holder.state, req.params.arguments ?? {}) }] };
    } catch (err) {
      return { content: [{ type: 'text', text: err instanceof Error ? err.message : 'tool failed' }], isError: true };
    }
  });
  return server;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req) {
    n += (c as Buffer).length;
    if (n > MAX_BODY_BYTES) throw new RangeError('body too large');
    chunks.push(c as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/**
 * Starts serving `env` on 127.0.0.1 (ephemeral port) at `/mcp`. GET and DELETE (no sessions, no
 * server-initiated stream) are answered 405; a body that is not JSON, 400.
 */
export async function serveEnvironment<S>(env: Environment<S>, holder: StateHolder<S>): Promise<EnvServer> {
  let calls = 0;
  const http: HttpServer = createServer((req, res) => {
    void (async () => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') return void res.writeHead(404).end();
      if (req.method !== 'POST') return void res.writeHead(405, { allow: 'POST' }).end();
      let body: unknown;
      try {
        body = await readJson(req);
      } catch (err) {
        return void res.writeHead(err instanceof RangeError ? 413 : 400).end();
      }
      const server = mcpServer(env, holder, () => void calls++);
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void server.close();
      });
      await server.connect(transport);
      await transport.handleRequest(req, res, body);
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    calls: () => calls,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
