/**
 * Issue 11, class 8 (model door): every credential path is scanned. A
 * credential in any role and any field of a request (system, developer,
 * assistant, tool messages; `name`; every content part; tool-call arguments;
 * Anthropic `system` and `tool_result` content) is vaulted before the provider
 * sees it; one split across adjacent fields is vaulted whole; and a value the
 * same end user vaulted in an earlier request is redacted from later answers
 * even where the detector would not recognize it alone.
 *
 * Real sockets: Bastion's model door in front of the mock provider
 * (examples/model-door/provider.ts), requests sent with fetch so the test
 * controls every field of the wire format.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { echoScript } from '../../examples/model-door/provider.ts';
import { EGRESS_KEY, OTHER_EGRESS_KEY } from '../helpers/egress.ts';
import { useModelDoor } from '../helpers/model-door.ts';

const GH_TOKEN = 'ghp_' + 'Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa98';
const PLACEHOLDER = /<<SECRET_[a-z2-7]{12}>>/;


const door = useModelDoor(
  (providerUrl) => `version: 1
store: { sqlite: ./bastion.db }
agents:
  oa:
    keys: [env:EGRESS_KEY]
    tools: ["lookup"]
    model: { provider: openai, baseUrl: "${providerUrl}/v1" }
  an:
    keys: [env:OTHER_EGRESS_KEY]
    tools: ["lookup"]
    model: { provider: anthropic, baseUrl: "${providerUrl}" }
`,
);

async function send(kind: 'openai' | 'anthropic', user: string, body: Record<string, unknown>): Promise<{ status: number; text: string }> {
  const r = await fetch(kind === 'openai' ? `${door.base}/v1/chat/completions` : `${door.base}/v1/messages`, {
    method: 'POST',
    headers: kind === 'openai' ? { authorization: `Bearer ${EGRESS_KEY}`, 'content-type': 'application/json', 'bastion-user': user } : { 'x-api-key': OTHER_EGRESS_KEY, 'content-type': 'application/json', 'bastion-user': user },
    body: JSON.stringify(kind === 'openai' ? { model: 'm', ...body } : { model: 'm', max_tokens: 64, ...body }),
  });
  return { status: r.status, text: await r.text() };
}

/** Sends `body` and returns what the provider received (raw), asserting the request was forwarded. */
async function providerSees(kind: 'openai' | 'anthropic', body: Record<string, unknown>, user = 'alice'): Promise<string> {
  const n = door.provider.requests.length;
  const r = await send(kind, user, body);
  assert.equal(r.status, 200, r.text);
  const req = door.provider.requests[n];
  assert.ok(req !== undefined, 'the request reached the provider');
  return req.raw;
}

test('a credential in any role and field of an OpenAI request is vaulted: system, developer, assistant, tool, name, content parts, tool-call arguments', async () => {
  const cases: [string, Record<string, unknown>[]][] = [
    ['system message', [{ role: 'system', content: `deploy key ${GH_TOKEN}` }, { role: 'user', content: 'hi' }]],
    ['developer message', [{ role: 'developer', content: [{ type: 'text', text: `token ${GH_TOKEN}` }] }, { role: 'user', content: 'hi' }]],
    ['assistant message', [{ role: 'user', content: 'hi' }, { role: 'assistant', content: `I used ${GH_TOKEN}` }, { role: 'user', content: 'ok' }]],
    [
      'assistant tool call arguments',
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: JSON.stringify({ token: GH_TOKEN }) } }] },
        { role: 'tool', tool_call_id: 'c1', content: 'done' },
      ],
    ],
    ['tool result', [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'calling' }, { role: 'tool', tool_call_id: 'c1', content: `result: ${GH_TOKEN}` }]],
    ['name field', [{ role: 'user', name: GH_TOKEN, content: 'hi' }]],
    ['input_text part', [{ role: 'user', content: [{ type: 'input_text', text: `key ${GH_TOKEN}` }] }]],
    ['refusal part', [{ role: 'user', content: 'hi' }, { role: 'assistant', content: [{ type: 'refusal', refusal: `no ${GH_TOKEN}` }] }, { role: 'user', content: 'ok' }]],
  ];
  for (const [name, messages] of cases) {
    const raw = await providerSees('openai', { messages });
    assert.ok(!raw.includes(GH_TOKEN), `${name}: the provider saw the token`);
    assert.match(raw, PLACEHOLDER, `${name}: replaced by a placeholder`);
  }
});

test('a credential in Anthropic system (string and blocks), tool_result content and tool_use input is vaulted', async () => {
  const cases: [string, Record<string, unknown>][] = [
    ['system string', { system: `key ${GH_TOKEN}`, messages: [{ role: 'user', content: 'hi' }] }],
    ['system blocks', { system: [{ type: 'text', text: `key ${GH_TOKEN}` }], messages: [{ role: 'user', content: 'hi' }] }],
    [
      'tool_result string',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: `found ${GH_TOKEN}` }] },
        ],
      },
    ],
    [
      'tool_result blocks',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: `found ${GH_TOKEN}` }] }] },
        ],
      },
    ],
    [
      'tool_use input under a key named data',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: { data: `token ${GH_TOKEN}` } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] },
        ],
      },
    ],
    [
      'tool_use input',
      {
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'lookup', input: { auth: GH_TOKEN } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: 'ok' }] },
        ],
      },
    ],
  ];
  for (const [name, body] of cases) {
    const raw = await providerSees('anthropic', body);
    assert.ok(!raw.includes(GH_TOKEN), `${name}: the provider saw the token`);
    assert.match(raw, PLACEHOLDER, `${name}: replaced by a placeholder`);
  }
});

test('a credential split across adjacent fields is vaulted whole: two parts of one message, three messages, an assistant and a user message', async () => {
  const [a, b, c] = [GH_TOKEN.slice(0, 14), GH_TOKEN.slice(14, 18), GH_TOKEN.slice(18)];
  const cases: [string, Record<string, unknown>[]][] = [
    ['two text parts', [{ role: 'user', content: [{ type: 'text', text: `first half ${a}${b}` }, { type: 'text', text: `${c} is the rest` }] }]],
    ['three messages, a short middle one', [{ role: 'user', content: `here: ${a}` }, { role: 'user', content: b }, { role: 'user', content: `${c} end` }]],
    ['assistant then user', [{ role: 'assistant', content: `the key starts ${a}${b}` }, { role: 'user', content: `${c} and ends so` }]],
    ['system then user', [{ role: 'system', content: `key: ${a}` }, { role: 'user', content: `${b}${c}` }]],
  ];
  for (const [name, messages] of cases) {
    const raw = await providerSees('openai', { messages });
    // No piece long enough to identify the token survives next to another.
    assert.ok(!raw.includes(a) && !raw.includes(c), `${name}: a piece of the token reached the provider`);
    assert.match(raw, PLACEHOLDER, name);
  }
});

test('a value the user vaulted in an earlier request is redacted from a later answer, whole and streamed, though the detector would not find it alone', async () => {
  const password = 'Zq9vLm2xTr8wPk4n';
  // Request 1: found by its keyword, vaulted as bob's.
  const raw = await providerSees('openai', { messages: [{ role: 'user', content: `password = "${password}"` }] }, 'bob');
  assert.ok(!raw.includes(password));
  // Request 2, another conversation: the model says the bare value.
  door.provider.setScript(() => ({ text: `it was ${password}, right?`, chunkChars: 3 }));
  try {
    const whole = await send('openai', 'bob', { messages: [{ role: 'user', content: 'what was it?' }] });
    assert.equal(whole.status, 200);
    assert.ok(!whole.text.includes(password), 'whole answer');
    assert.match(whole.text, /\[REDACTED:vault-secret\]/);
    const streamed = await send('openai', 'bob', { messages: [{ role: 'user', content: 'what was it?' }], stream: true });
    const text = streamed.text
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => (JSON.parse(l.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
      .join('');
    assert.ok(!text.includes(password), 'streamed answer');
    assert.match(text, /\[REDACTED:vault-secret\]/);
    // Another user's answer is not affected (the value is bob's, not carol's).
    const other = await send('openai', 'carol', { messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(other.text.includes(password), 'values are per user');
  } finally {
    door.provider.setScript(echoScript);
  }
});

test('a copy of an earlier vaulted value in a later request is replaced by its placeholder', async () => {
  const password = 'Hq2wEr5tYu8iOp1a';
  await providerSees('openai', { messages: [{ role: 'user', content: `password: "${password}"` }] }, 'dave');
  const raw = await providerSees('openai', { messages: [{ role: 'user', content: `is ${password} still valid?` }] }, 'dave');
  assert.ok(!raw.includes(password), 'the bare value reached the provider');
  assert.match(raw, PLACEHOLDER);
});
