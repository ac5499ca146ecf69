/**
 * A tool server that trusts only requests Bastion signed: each request's
 * RFC 9421 signature, Content-Digest and Bastion-Context are verified against
 * Bastion's JWKS before the tool runs, and the answer echoes who it is for.
 *
 * Run from the repository root: node examples/verify-server/server.ts
 *   PORT (default 8791), BASTION_JWKS_URL (default http://127.0.0.1:8790/.well-known/jwks.json),
 *   TOOL_ORIGIN: the origin Bastion calls this server at (scheme, host, port). Default:
 *     http://127.0.0.1:<bound port>, right only when Bastion calls this socket directly;
 *     behind a proxy or under a DNS name, set it to the public origin.
 *   REPLAY_DB: the SQLite file that remembers nonces across restarts
 *     (default .bastion/verify-server-nonces.db; keep it on persistent storage).
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, resolve } from 'node:path';
import { SqliteReplayStore, verifyNodeRequest, type NodeVerifyOptions } from 'bastion/verify';

const port = Number(process.env.PORT ?? 8791);
const jwksUrl = process.env.BASTION_JWKS_URL ?? 'http://127.0.0.1:8790/.well-known/jwks.json';
const replayDb = resolve(process.env.REPLAY_DB ?? '.bastion/verify-server-nonces.db');
mkdirSync(dirname(replayDb), { recursive: true, mode: 0o700 });
// Nonces on disk: a request captured before a restart is still refused after it.
// Several hosts behind a load balancer: RedisReplayStore instead.
const replayStore = new SqliteReplayStore({ path: replayDb });

// The options need the origin, known once the socket is bound (PORT=0 picks a free port).
let options: NodeVerifyOptions | undefined;

const server = createServer((req, res) => {
  void (async () => {
    if (options === undefined) return void res.writeHead(503).end();
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
  options = {
    jwksUrl,
    // The target a signature covers is checked against this origin, never against the Host header.
    origin: process.env.TOOL_ORIGIN ?? `http://127.0.0.1:${bound}`,
    replayStore,
    maxBodyBytes: 256 * 1024,
    onError: (err) => process.stderr.write(`verify-server: refused: ${err instanceof Error ? err.message : 'error'}\n`),
  };
  process.stdout.write(`verify-server: listening on http://127.0.0.1:${bound}, origin ${String(options.origin)}, keys from ${jwksUrl}\n`);
});
