/**
 * Bad input at the model door, each answered in the provider's error shape with
 * Bastion's stable code, audited, and never hanging: a body that is not JSON or
 * not the provider's shape, a giant message, no end user, a wrong key, the wrong
 * endpoint for the agent's provider, an upstream 5xx, an upstream that hangs,
 * and a stream the upstream cuts mid-way.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { echoScript } from '../../examples/model-door/provider.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY } from '../helpers/egress.ts';
import { useModelDoor } from '../helpers/model-door.ts';


const door = useModelDoor(
  (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
modelDoor: { maxBodyBytes: 65536 }
agents:
  support:
    keys: [env:EGRESS_KEY]
    model: { provider: openai, baseUrl: "${providerUrl}/v1", timeoutMs: 1500 }
  claude:
    keys: [env:OTHER_EGRESS_KEY]
    model: { provider: anthropic, baseUrl: "${providerUrl}", timeoutMs: 1500 }
`,
);

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(`${door.base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${EGRESS_KEY}`, 'bastion-user': 'alice', ...headers }, body });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) as Record<string, unknown> };
}

const codeOf = (json: Record<string, unknown>): unknown => (json.error as { code?: unknown } | undefined)?.code;

test('not JSON, not the provider shape, no user, wrong key, wrong endpoint: specific errors in the provider shape', async () => {
  const notJson = await post('/v1/chat/completions', '{"model": "x", "messages": [');
  assert.equal(notJson.status, 400);
  assert.equal(codeOf(notJson.json), 'ERR_MODEL_REQUEST_INVALID');
  assert.equal((notJson.json.error as { type: string }).type, 'invalid_request_error');

  const shape = await post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'hi' }] }));
  assert.equal(shape.status, 400);
  assert.match((shape.json.error as { message: string }).message, /messages\[0\]\.role/);

  const noMessages = await post('/v1/chat/completions', JSON.stringify({ model: 'gpt-4o-mini' }));
  assert.equal(noMessages.status, 400);

  const noUser = await post('/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), { 'bastion-user': '' });
  assert.equal(noUser.status, 400);
  assert.equal(codeOf(noUser.json), 'ERR_USER_REQUIRED');

  const ambiguous = await post('/v1/chat/completions', JSON.stringify({ model: 'm', user: 'bob', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(ambiguous.status, 400);
  assert.equal(codeOf(ambiguous.json), 'ERR_USER_REQUIRED');

  const wrongKey = await post('/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), { authorization: 'Bearer not-a-bastion-key-at-all' });
  assert.equal(wrongKey.status, 401);
  assert.equal(codeOf(wrongKey.json), 'ERR_AUTH_INVALID');

  const wrongDoor = await post('/v1/messages', JSON.stringify({ model: 'm', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(wrongDoor.status, 400);
  assert.equal(codeOf(wrongDoor.json), 'ERR_MODEL_NOT_CONFIGURED');

  // Anthropic's shape for an Anthropic agent.
  const r = await fetch(`${door.base}/v1/messages`, { method: 'POST', headers: { 'x-api-key': OTHER_EGRESS_KEY, 'bastion-user': 'alice', 'content-type': 'application/json' }, body: '[]' });
  const j = (await r.json()) as { type: string; error: { type: string; code: string } };
  assert.equal(r.status, 400);
  assert.equal(j.type, 'error');
  assert.equal(j.error.type, 'invalid_request_error');
  assert.equal(j.error.code, 'ERR_MODEL_REQUEST_INVALID');

  await door.bastion.gateway.audit.flush();
  const reasons = (await door.bastion.gateway.store.readAudit(1, 1000)).filter((x) => x.door === 'model').map((x) => x.decision.reason);
  for (const reason of ['request.json', 'request.shape', 'user.missing', 'user.ambiguous', 'auth.invalid', 'model.wrong_provider']) assert.ok(reasons.includes(reason), `${reason} audited`);
});

test('a giant message is refused with 413 before it is read whole, and the provider never sees it', async () => {
  const before = door.provider.requests.length;
  const big = await post('/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] }));
  assert.equal(big.status, 413);
  assert.equal(codeOf(big.json), 'ERR_BODY_TOO_LARGE');
  assert.equal(door.provider.requests.length, before);
});

test('an upstream 5xx reaches the SDK as the provider\'s error; a hanging upstream is a 504, not a hang', async () => {
  const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
  door.provider.setScript(() => ({ status: 503, errorMessage: 'overloaded' }));
  await assert.rejects(openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => err instanceof OpenAI.APIError && err.status === 503);

  door.provider.setScript(() => ({ hangMs: 10_000, text: 'late' }));
  const t0 = performance.now();
  await assert.rejects(openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => err instanceof OpenAI.APIError && err.status === 504 && err.code === 'ERR_MODEL_UPSTREAM_TIMEOUT');
  assert.ok(performance.now() - t0 < 8_000, 'bounded by the configured timeout');

  const anthropic = new Anthropic({ apiKey: OTHER_EGRESS_KEY, baseURL: door.base, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
  door.provider.setScript(() => ({ status: 500 }));
  await assert.rejects(anthropic.messages.create({ model: 'claude-sonnet-4-6', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }), (err: unknown) => err instanceof Anthropic.APIError && err.status === 500);
  door.provider.setScript(echoScript);
});

test('a stream the upstream cuts mid-way ends with an error event the SDK raises; the audit says so', async () => {
  const openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
  door.provider.setScript(() => ({ text: 'a long answer that will not arrive whole', chunkChars: 2, cutAfterEvents: 4 }));
  let got = '';
  await assert.rejects(
    (async () => {
      const s = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const c of s) got += c.choices[0]?.delta.content ?? '';
    })(),
    (err: unknown) => err instanceof OpenAI.APIError && /ERR_MODEL_UPSTREAM/.test(err.message),
  );
  assert.ok(got.length < 'a long answer that will not arrive whole'.length);

  const anthropic = new Anthropic({ apiKey: OTHER_EGRESS_KEY, baseURL: door.base, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
  await assert.rejects(anthropic.messages.stream({ model: 'claude-sonnet-4-6', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }).finalMessage());

  // A stream that stalls past the timeout is cut the same way.
  door.provider.setScript(() => ({ text: 'slow', delayMs: 3_000 }));
  await assert.rejects(
    (async () => {
      const s = await openai.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
      for await (const c of s) void c;
    })(),
    (err: unknown) => err instanceof OpenAI.APIError,
  );
  door.provider.setScript(echoScript);
  await door.bastion.gateway.audit.flush();
  const reasons = (await door.bastion.gateway.store.readAudit(1, 1000)).filter((x) => x.door === 'model').map((x) => x.decision.reason);
  assert.ok(reasons.includes('upstream.cut'));
  assert.ok(reasons.includes('upstream.timeout'));
  // Still serving.
  assert.equal((await post('/v1/chat/completions', JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }))).status, 200);
});
