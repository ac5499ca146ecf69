/**
 * The model door end to end: the official `openai` and `@anthropic-ai/sdk`
 * clients pointed at Bastion, Bastion forwarding to the mock provider
 * (examples/model-door/provider.ts, the real wire formats) that records what
 * the model saw. Pasted credentials are vaulted before the model sees them,
 * offered tools are filtered, streamed and whole answers are redacted, tool
 * calls to forbidden tools are removed, and every request ends in one audit record.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { echoScript, lastUserText } from '../../examples/model-door/provider.ts';
import { PLACEHOLDER_NOTE } from '../../src/model/door.ts';
import { Secret } from '../../src/util/secret.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY } from '../helpers/egress.ts';
import { useModelDoor } from '../helpers/model-door.ts';

const PROVIDER_KEY = 'sk-provider-test-key-0123456789';
const GH_TOKEN = 'ghp_' + 'A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8';
const SLACK_TOKEN = 'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx';
const PLACEHOLDER = /<<SECRET_[a-z2-7]{12}>>/g;

let openai: OpenAI;
let anthropic: Anthropic;

const door = useModelDoor(
  (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
secrets:
  openai-key: { hosts: ["127.0.0.1"] }
tools:
  "crm__search_all_conversations": { crossUser: true }
  "admin__*": { scope: internal }
modelDoor:
  admins: [root]
agents:
  support:
    keys: [env:EGRESS_KEY]
    tools: ["lookup_order", "crm__*", "admin__*", "delete_account"]
    deny: ["delete_account"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1", secret: openai-key }
  claude:
    keys: [env:OTHER_EGRESS_KEY]
    tools: ["lookup_order"]
    model: { provider: anthropic, baseUrl: "${providerUrl}", secret: openai-key }
`,
  {
    provider: { apiKey: PROVIDER_KEY },
    setup: async (door) => {
      await door.bastion.door.vault.add('openai-key', new Secret(PROVIDER_KEY), { hosts: ['127.0.0.1'] });
      openai = new OpenAI({ apiKey: EGRESS_KEY, baseURL: `${door.base}/v1`, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
      anthropic = new Anthropic({ apiKey: OTHER_EGRESS_KEY, baseURL: door.base, maxRetries: 0, defaultHeaders: { 'Bastion-User': 'alice' } });
    },
  },
);

/** Every request body the provider received, as text. */
function providerSaw(): string {
  return door.provider.requests.map((r) => r.raw).join('\n');
}

async function auditRecords(): Promise<{ door: string; user?: string; method: string; decision: { reason: string }; detail: Record<string, unknown> }[]> {
  await door.bastion.gateway.audit.flush();
  return (await door.bastion.gateway.store.readAudit(1, 100_000)) as never;
}

test('a pasted token is vaulted: the model sees a placeholder, the provider gets the vault key, the agent never needs it', async () => {
  door.provider.setScript(echoScript);
  const before = door.provider.requests.length;
  const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: `my token is ${GH_TOKEN}, list my repos` }] });
  const seen = door.provider.requests.slice(before);
  assert.equal(seen.length, 1);
  const req = seen[0]!;
  assert.equal(req.headers.authorization, `Bearer ${PROVIDER_KEY}`, 'the provider key comes from the vault');
  assert.ok(!req.raw.includes(GH_TOKEN), 'the model never sees the token');
  const said = lastUserText('openai', req.body);
  const ph = said.match(PLACEHOLDER)?.[0];
  assert.ok(ph, `placeholder in ${said}`);
  assert.equal(said, `my token is ${ph}, list my repos`);
  // The notes: hardening for a non-admin, and what placeholders are.
  const system = (req.body as { messages: { role: string; content: string }[] }).messages[0]!;
  assert.equal(system.role, 'system');
  assert.match(system.content, /Never reveal/);
  assert.ok(system.content.includes(PLACEHOLDER_NOTE));
  assert.equal(r.choices[0]?.message.content, `You said: my token is ${ph}, list my repos`);

  // The next turn re-sends the history with the raw token: the same placeholder.
  const again = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'user', content: `my token is ${GH_TOKEN}, list my repos` },
      { role: 'assistant', content: 'Which account?' },
      { role: 'user', content: `the one for ${GH_TOKEN}` },
    ],
  });
  assert.equal(again.choices[0]?.message.content, `You said: the one for ${ph}`);
  const rows = await door.bastion.gateway.store.listPastedSecrets({ user: 'alice' });
  assert.equal(rows.filter((p) => `<<SECRET_${p.token}>>` === ph).length, 1);
  assert.deepEqual(rows.find((p) => `<<SECRET_${p.token}>>` === ph)?.agent, 'support');
  assert.ok(!providerSaw().includes(GH_TOKEN));

  // Another user pasting the same token gets a different secret and placeholder.
  const bob = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: GH_TOKEN }] }, { headers: { 'Bastion-User': 'bob' } });
  const bobPh = bob.choices[0]?.message.content?.match(PLACEHOLDER)?.[0];
  assert.ok(bobPh && bobPh !== ph);
});

test('every copy of a vaulted value is replaced, also where the detector would not recognize it alone', async () => {
  door.provider.setScript(echoScript);
  const before = door.provider.requests.length;
  // The first copy has the keyword context a generic rule needs; the bare second copy alone would not be found.
  const value = 'Zq8vR2mX7pL4tN9wK3sB6yH1';
  await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: `internal note: ${value}` },
      { role: 'user', content: `password = "${value}" and again ${value}, and ${GH_TOKEN} twice: ${GH_TOKEN}` },
    ],
  });
  const raw = door.provider.requests[before]!.raw;
  assert.ok(!raw.includes(GH_TOKEN));
  assert.ok(!raw.includes(value), 'no copy of a vaulted value reaches the model, in any message');
});

test('an admin user gets no hardening note', async () => {
  door.provider.setScript(echoScript);
  const before = door.provider.requests.length;
  await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hello' }] }, { headers: { 'Bastion-User': 'root' } });
  const body = door.provider.requests[before]!.body as { messages: { role: string }[] };
  assert.deepEqual(body.messages.map((m) => m.role), ['user']);
});

test('credential look-alikes pass untouched: hashes, UUIDs, AWS documentation keys', async () => {
  door.provider.setScript(echoScript);
  const text =
    'sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, uuid 123e4567-e89b-12d3-a456-426614174000, ' +
    'md5 d41d8cd98f00b204e9800998ecf8427e, AWS example AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, commit 3f2a9c1e';
  const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: text }] });
  assert.equal(r.choices[0]?.message.content, `You said: ${text}`);
});

test('a secret split across two user messages is vaulted whole: neither half reaches the model', async () => {
  door.provider.setScript(echoScript);
  const before = door.provider.requests.length;
  const first = GH_TOKEN.slice(0, 20);
  const second = GH_TOKEN.slice(20);
  await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'user', content: `here is the first part ${first}` },
      { role: 'user', content: `${second} and that was the rest` },
    ],
  });
  const raw = door.provider.requests[before]!.raw;
  assert.ok(!raw.includes(first) && !raw.includes(second), 'no half of the token reached the model');
  const msgs = (door.provider.requests[before]!.body as { messages: { role: string; content: string }[] }).messages.filter((m) => m.role === 'user');
  assert.match(msgs[0]!.content, /^here is the first part <<SECRET_[a-z2-7]{12}>>$/);
  assert.match(msgs[1]!.content, /^<<SECRET_[a-z2-7]{12}>> and that was the rest$/);
});

test('tools offered to the model are filtered: Cedar deny, cross-user and internal-scope tools are removed', async () => {
  door.provider.setScript(({ body }) => ({ text: `tools: ${(body.tools ?? []).map((t: { function: { name: string } }) => t.function.name).join(',')}` }));
  const fn = (name: string) => ({ type: 'function' as const, function: { name, parameters: { type: 'object', properties: {} } } });
  const r = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'what can you do?' }],
    tools: [fn('lookup_order'), fn('delete_account'), fn('crm__search_all_conversations'), fn('admin__reset_password'), fn('unlisted_tool'), fn('crm__lookup_customer')],
    tool_choice: { type: 'function', function: { name: 'delete_account' } },
  });
  assert.equal(r.choices[0]?.message.content, 'tools: lookup_order,crm__lookup_customer');
  const last = door.provider.requests.at(-1)!.body as { tool_choice?: unknown };
  assert.equal(last.tool_choice, 'auto', 'a forced choice of a removed tool is undone');
  const rec = (await auditRecords()).filter((a) => a.door === 'model').at(-1)!;
  assert.deepEqual(rec.detail.removedTools, ['delete_account', 'crm__search_all_conversations', 'admin__reset_password', 'unlisted_tool']);
});

test('a tool call naming a forbidden tool is removed from the answer and audited, also when streamed', async () => {
  door.provider.setScript(() => ({ text: 'Working on it.', toolCalls: [{ name: 'delete_account', arguments: { id: 7 } }, { name: 'lookup_order', arguments: { id: 42 } }] }));
  const alertsBefore = door.bastion.adminAlerts.length;
  const r = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'order 42' }] });
  assert.deepEqual(r.choices[0]?.message.tool_calls?.map((c) => (c.type === 'function' ? c.function.name : '')), ['lookup_order']);
  assert.ok(door.bastion.adminAlerts.slice(alertsBefore).some((a) => a.kind === 'model.tool_call_removed'));

  const stream = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'order 42' }], stream: true });
  const final = await stream.finalChatCompletion();
  assert.deepEqual(final.choices[0]?.message.tool_calls?.map((c) => (c.type === 'function' ? c.function.name : '')), ['lookup_order']);
  assert.deepEqual(JSON.parse((final.choices[0]?.message.tool_calls?.[0] as { function: { arguments: string } }).function.arguments), { id: 42 });
  const rec = (await auditRecords()).filter((a) => a.door === 'model').at(-1)!;
  assert.deepEqual(rec.detail.removedToolCalls, ['delete_account']);
});

test('credentials in the model output are redacted, streamed in small chunks too; vault values never come back', async () => {
  // The model "leaks" a Slack token and the provider key; the agent must get neither.
  door.provider.setScript(() => ({ text: `Here: ${SLACK_TOKEN} and ${PROVIDER_KEY} done`, chunkChars: 3 }));
  const whole = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'leak' }] });
  const text = whole.choices[0]?.message.content ?? '';
  assert.ok(!text.includes(SLACK_TOKEN) && !text.includes(PROVIDER_KEY), text);
  assert.match(text, /\[REDACTED:slack-token\]/);

  let streamed = '';
  const stream = await openai.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'leak' }], stream: true });
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
  assert.equal(streamed, text, 'the streamed answer equals the whole one');
  const rec = (await auditRecords()).filter((a) => a.door === 'model').at(-1)!;
  assert.equal(rec.detail.stream, true);
  assert.equal(typeof rec.detail.firstTokenMs, 'number');
  assert.ok((rec.detail.tokens as { input: number }).input > 0, 'usage is counted from the stream');
});

test('Anthropic Messages: vaulting, tool filtering and streaming through @anthropic-ai/sdk', async () => {
  door.provider.setScript(({ body }) => ({
    text: `${lastUserText('anthropic', body)} | tools: ${(body.tools ?? []).map((t: { name: string }) => t.name).join(',')}`,
    toolCalls: [{ name: 'lookup_order', arguments: { id: 1 } }, { name: 'delete_account', arguments: { id: 2 } }],
  }));
  const before = door.provider.requests.length;
  const params = {
    model: 'claude-sonnet-4-6',
    max_tokens: 200,
    system: 'You are a support bot.',
    messages: [{ role: 'user' as const, content: `token ${GH_TOKEN}` }],
    tools: [
      { name: 'lookup_order', input_schema: { type: 'object' as const, properties: {} } },
      { name: 'delete_account', input_schema: { type: 'object' as const, properties: {} } },
    ],
  };
  const msg = await anthropic.messages.create(params);
  const req = door.provider.requests[before]!;
  assert.equal(req.headers['x-api-key'], PROVIDER_KEY);
  assert.ok(!req.raw.includes(GH_TOKEN));
  assert.match(String((req.body as { system: string }).system), /^You are a support bot\.\n\n/);
  const text = msg.content.find((b) => b.type === 'text');
  assert.match(text?.type === 'text' ? text.text : '', /^token <<SECRET_[a-z2-7]{12}>> \| tools: lookup_order$/);
  assert.deepEqual(msg.content.filter((b) => b.type === 'tool_use').map((b) => (b.type === 'tool_use' ? b.name : '')), ['lookup_order']);

  const final = await anthropic.messages.stream(params).finalMessage();
  assert.deepEqual(final.content.map((b) => b.type), ['text', 'tool_use']);
  assert.deepEqual(final.content[1]?.type === 'tool_use' ? final.content[1].input : null, { id: 1 });
  assert.ok(!providerSaw().includes(GH_TOKEN));
});

test('GET /v1/models passes through with the vault key', async () => {
  const list = await openai.models.list();
  assert.ok(list.data.some((m) => m.id === 'gpt-4o-mini'));
  assert.equal(door.provider.requests.at(-1)?.headers.authorization, `Bearer ${PROVIDER_KEY}`);
});

test('every model request ends in one audit record with agent, user, model, tokens and what was vaulted; no secret is stored', async () => {
  const records = await auditRecords();
  const model = records.filter((r) => r.door === 'model' && r.method.startsWith('model.') && r.method !== 'model.models');
  assert.ok(model.length >= 10);
  for (const r of model) assert.ok(r.user === 'alice' || r.user === 'bob' || r.user === 'root', JSON.stringify(r));
  const vaulted = model.find((r) => Array.isArray(r.detail.vaulted));
  assert.ok(vaulted);
  assert.deepEqual(Object.keys((vaulted.detail.vaulted as object[])[0]!).sort(), ['created', 'rule', 'token']);
  await door.bastion.gateway.audit.flush();
  const wal = join(door.bastion.dir, 'bastion.db-wal');
  const db = readFileSync(join(door.bastion.dir, 'bastion.db')).toString('latin1') + (existsSync(wal) ? readFileSync(wal).toString('latin1') : '');
  for (const secret of [GH_TOKEN, SLACK_TOKEN, PROVIDER_KEY]) assert.ok(!db.includes(secret), 'no secret value in the store file in clear');
});
