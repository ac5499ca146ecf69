/**
 * Signed user context to an HTTP MCP upstream (`signContext: true`, `token:
 * true`): a real tool server verifies every request with `bastion/verify`
 * against the gateway's published JWKS. The context names the session's agent,
 * end user and conversation whatever the client or model sends; captured
 * requests cannot be replayed or altered; a key that left the JWKS stops
 * verifying.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { MemoryReplayStore, verifyParts, VerifyError, type VerifyOptions } from '../../src/verify/index.ts';
import { startSignedToolServer, type ArrivedRequest, type SignedToolServer } from '../fixtures/signed-tool-server.ts';
import { startGateway, tempDir, TEST_KEY, type TestGateway } from '../helpers/gateway.ts';

let tools: SignedToolServer;
let gw: TestGateway;
let jwksUrl: URL;
const replayStore = new MemoryReplayStore();

before(async () => {
  tools = await startSignedToolServer(() => ({ jwksUrl, replayStore, jwksCooldownMs: 0 }), 'urn:tools');
  const dir = tempDir();
  gw = await startGateway(
    dir,
    `version: 1
store: { sqlite: ./bastion.db }
identity: { issuer: https://bastion.test, platform: acme-support, rotationGraceMs: 1 }
agents:
  support:
    keys: [env:AGENT_KEY]
    tools: ['tools__*']
upstreams:
  tools:
    url: ${tools.url.href}
    signContext: true
    token: { audience: 'urn:tools', lifetimeS: 20 }
`,
    { AGENT_KEY: TEST_KEY },
  );
  jwksUrl = new URL('/.well-known/jwks.json', gw.url);
});

after(async () => {
  await gw.close();
  await tools.close();
});

async function client(headers: Record<string, string>): Promise<Client> {
  const c = new Client({ name: 'signed-test', version: '1.0.0' });
  await c.connect(new StreamableHTTPClientTransport(new URL('/mcp', gw.url), { requestInit: { headers: { Authorization: `Bearer ${TEST_KEY}`, ...headers } } }));
  return c;
}

interface Whoami {
  context: { agent: string; user?: string; conversation?: string; platform: string; request: string; tool?: string; time: number };
  keyid: string;
  token: { iss: string; sub: string; act: { sub: string }; aud: string; scope: string; jti: string; iat: number; exp: number } | null;
  arguments: Record<string, unknown>;
}

function whoami(result: unknown): Whoami {
  const r = result as CallToolResult;
  assert.notEqual(r.isError, true, JSON.stringify(r));
  const first = r.content[0];
  assert.ok(first && first.type === 'text');
  return JSON.parse(first.text) as Whoami;
}

/** Sends an arrived request again, as given, straight to the tool server. */
async function resend(a: ArrivedRequest, change: Partial<ArrivedRequest> = {}): Promise<{ status: number; error: string | undefined }> {
  const r = { ...a, ...change };
  const headers = { ...r.headers };
  delete headers['content-length'];
  delete headers.host;
  delete headers.connection;
  const res = await fetch(new URL(r.path, tools.url), { method: r.method, headers, ...(r.method === 'POST' ? { body: new Uint8Array(r.body) } : {}) });
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  return { status: res.status, error: body.error };
}

test('the tool server verifies who is calling: agent, end user, conversation, platform, request and tool', async () => {
  const c = await client({ 'Bastion-User': 'alice', 'Bastion-Conversation': 'conv-7' });
  try {
    const { tools: list } = await c.listTools();
    assert.deepEqual(list.map((t) => t.name), ['tools__whoami']);
    const w = whoami(await c.callTool({ name: 'tools__whoami', arguments: { note: 'hi' } }));
    assert.equal(w.context.agent, 'support');
    assert.equal(w.context.user, 'alice');
    assert.equal(w.context.conversation, 'conv-7');
    assert.equal(w.context.platform, 'acme-support');
    assert.equal(w.context.tool, 'tools__whoami');
    assert.ok(Math.abs(w.context.time - Date.now() / 1000) < 30);
    assert.equal(w.keyid, (await gw.gateway.identity.signingKey()).kid);
    // The per-call token, checked by the tool server with jose via bastion/verify.
    assert.ok(w.token);
    assert.equal(w.token.iss, 'https://bastion.test');
    assert.equal(w.token.sub, 'alice');
    assert.deepEqual(w.token.act, { sub: 'support' });
    assert.equal(w.token.aud, 'urn:tools');
    assert.equal(w.token.scope, 'tools__whoami');
    assert.equal(w.token.exp - w.token.iat, 20);
    // The request id is the audit record's ref, and the record names what was signed and minted.
    await gw.gateway.audit.flush();
    const records = (await gw.gateway.store.readAudit(0, 1000)).filter((r) => r.method === 'tools/call');
    const rec = records.at(-1);
    assert.ok(rec);
    assert.equal(rec.detail?.ref, w.context.request);
    const sig = rec.detail?.signature as { kid: string; nonce: string; components: string[] };
    assert.equal(sig.kid, w.keyid);
    assert.deepEqual(sig.components, ['@method', '@target-uri', 'content-digest', 'bastion-context', 'authorization']);
    const tok = rec.detail?.token as { jti: string; aud: string; lifetimeS: number };
    assert.deepEqual({ jti: tok.jti, aud: tok.aud, lifetimeS: tok.lifetimeS }, { jti: w.token.jti, aud: 'urn:tools', lifetimeS: 20 });
    // Every request Bastion made was signed and accepted: handshake, listing, call.
    assert.deepEqual(tools.refused, []);
    assert.ok(tools.arrived.length >= 4);
  } finally {
    await c.close();
  }
});

test('neither the client nor the model can set the context: headers and arguments do not reach it', async () => {
  const forged = { 'Bastion-User': 'bob', 'Bastion-Context': 'agent="admin", user="root", platform="x", request="r", time=1', Signature: 'bastion=:AAAA:', 'Signature-Input': 'bastion=("@method");created=1;keyid="x"' };
  const c = await client(forged);
  try {
    const w = whoami(await c.callTool({ name: 'tools__whoami', arguments: { user: 'root', note: 'agent="admin"' } }));
    assert.equal(w.context.user, 'bob');
    assert.equal(w.context.agent, 'support');
    assert.equal(w.context.conversation !== undefined && w.context.conversation.length > 0, true, 'without Bastion-Conversation: the MCP session id');
    assert.deepEqual(w.arguments, { user: 'root', note: 'agent="admin"' }, 'arguments pass as arguments, nothing more');
    assert.equal(w.token?.sub, 'bob');
  } finally {
    await c.close();
  }
});

test('a captured request cannot be replayed, nor its body, context, method or target altered', async () => {
  const c = await client({ 'Bastion-User': 'carol' });
  try {
    whoami(await c.callTool({ name: 'tools__whoami', arguments: { note: 'capture me' } }));
  } finally {
    await c.close();
  }
  const call = tools.arrived.findLast((a) => a.body.includes('capture me'));
  assert.ok(call);
  assert.deepEqual(await resend(call), { status: 401, error: 'replayed' });
  const body = Buffer.from(call.body.toString('utf8').replace('capture me', 'capture ME'));
  assert.deepEqual(await resend(call, { body }), { status: 401, error: 'digest_mismatch' });
  const context = call.headers['bastion-context']?.replace('user="carol"', 'user="admin"');
  assert.deepEqual(await resend(call, { headers: { ...call.headers, 'bastion-context': context ?? '' } }), { status: 401, error: 'bad_signature' });
  assert.deepEqual(await resend(call, { path: '/mcp?admin=1' }), { status: 401, error: 'bad_signature' });
  assert.deepEqual(await resend(call, { method: 'PUT' }), { status: 401, error: 'bad_signature' });
  const unsigned = { ...call.headers };
  delete unsigned.signature;
  delete unsigned['signature-input'];
  assert.deepEqual(await resend(call, { headers: unsigned }), { status: 401, error: 'missing_signature' });
});

test('after rotation the old key signs nothing, and once out of the JWKS its signatures fail as unknown_key', async () => {
  const c = await client({ 'Bastion-User': 'dave' });
  try {
    const before = whoami(await c.callTool({ name: 'tools__whoami', arguments: { note: 'old key' } }));
    const old = tools.arrived.findLast((a) => a.body.includes('old key'));
    assert.ok(old);
    await gw.gateway.identity.rotate();
    await new Promise((r) => setTimeout(r, 5));
    const afterRotate = whoami(await c.callTool({ name: 'tools__whoami', arguments: { note: 'new key' } }));
    assert.notEqual(afterRotate.keyid, before.keyid);
    const jwks = (await (await fetch(jwksUrl)).json()) as { keys: { kid: string }[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid), [afterRotate.keyid], 'grace (1 ms) is over: only the new key is published');
    // A fresh verifier (own cache and replay store) meets the old request: its key is gone.
    const fresh: VerifyOptions = { origin: tools.url.origin, jwksUrl, jwksCacheMaxAgeMs: 1, jwksCooldownMs: 0, replayStore: new MemoryReplayStore(), maxAgeS: 300 };
    await assert.rejects(
      verifyParts({ method: old.method, url: new URL(old.path, tools.url).href, headers: old.headers, body: new Uint8Array(old.body) }, fresh),
      (err: unknown) => err instanceof VerifyError && err.code === 'unknown_key',
    );
  } finally {
    await c.close();
  }
});

test('no JWT and no private key is ever written to the store', async () => {
  await gw.gateway.audit.flush();
  const bytes = readFileSync(join(gw.dir, 'bastion.db'));
  assert.equal(bytes.includes(Buffer.from('eyJhbGciOiJFZERTQSI')), false, 'no JWS header in the store');
  for (const a of tools.arrived) {
    const auth = a.headers.authorization?.replace('Bearer ', '') ?? '';
    if (auth.length > 20) assert.equal(bytes.includes(Buffer.from(auth.split('.')[2] ?? 'x')), false);
  }
});
