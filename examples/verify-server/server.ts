/**
 * A tool server that trusts only requests Bastion signed: each request's
 * RFC 9421 signature, Content-Digest and Bastion-Context are verified against
 * Bastion's JWKS before the tool runs, and the answer echoes who it is for.
 *
 * Run from the repository root: node examples/verify-server/server.ts
 *   PORT (default 8791), BASTION_JWKS_URL (default http://127.0.0.1:8790/.well-known/jwks.json),
 *   TOOL_ORIGIN: the origin Bastion calls, when a proxy in front rewrites Host (optional).
 */
import { createServer } from 'node:http';
import { MemoryReplayStore, verifyNodeRequest, type NodeVerifyOptions } from 'bastion/verify';

const port = Number(process.env.PORT ?? 8791);
const options: NodeVerifyOptions = {
  jwksUrl: process.env.BASTION_JWKS_URL ?? 'http://127.0.0.1:8790/.well-known/jwks.json',
  // One process: an in-memory replay store. Several behind a load balancer: RedisReplayStore.
  replayStore: new MemoryReplayStore(),
  maxBodyBytes: 256 * 1024,
  ...(process.env.TOOL_ORIGIN !== undefined ? { origin: process.env.TOOL_ORIGIN } : {}),
  onError: (err) => process.stderr.write(`verify-server: refused: ${err instanceof Error ? err.message : 'error'}\n`),
};

const server = createServer((req, res) => {
  void (async () => {
    // Writes 401/400/413/503 {"error": code} itself and returns undefined on refusal.
    const verified = await verifyNodeRequest(req, res, options);
    if (verified === undefined) return;
    const { agent, user, conversation, tool, request } = verified.context;
    const body = JSON.stringify({ ok: true, agent, user: user ?? null, conversation: conversation ?? null, tool: tool ?? null, request, keyid: verified.keyid });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(`${body}\n`);
  })();
});

server.listen(port, '127.0.0.1', () => {
  const { port: bound } = server.address() as { port: number };
  process.stdout.write(`verify-server: listening on http://127.0.0.1:${bound}, keys from ${String(options.jwksUrl)}\n`);
});
