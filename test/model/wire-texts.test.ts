/**
 * requestTexts (src/model/wire.ts): every string of a request the model reads,
 * with who wrote it, so vaulting covers every role and field and the
 * extraction detector reads only the user's own text as the user's. Also the
 * user's new turn with a trailing assistant prefill.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBastionError } from '../../src/errors.ts';
import { MAX_TEXT_DEPTH, newTurnStart, primingAssistantMessage, requestTexts, type ModelRequest } from '../../src/model/wire.ts';

const B64 = 'iVBORw0KGgo'.repeat(200);

test('every string of every role and field, with its author; a tool result inside a user message is the tool\'s', () => {
  const body = {
    model: 'm',
    max_tokens: 10,
    system: [{ type: 'text', text: 'sys', cache_control: { type: 'ephemeral' } }],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'u1' }, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: B64 } }] },
      { role: 'assistant', content: [{ type: 'thinking', thinking: 'hmm', signature: 'sig' }, { type: 'tool_use', id: 't1', name: 'lookup', input: { q: 'a1', data: 'short' } }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: 'r1' }] }, { type: 'text', text: 'u2' }] },
    ],
  } as unknown as ModelRequest;
  const slots = requestTexts('anthropic', body).map((s) => [s.message, s.author, s.field, s.get()]);
  assert.deepEqual(slots, [
    [-1, 'system', 'system[0].text', 'sys'],
    [0, 'user', 'content[0].text', 'u1'],
    [0, 'user', 'content[1].source.media_type', 'image/png'],
    [1, 'assistant', 'content[0].thinking', 'hmm'],
    [1, 'assistant', 'content[1].id', 't1'],
    [1, 'assistant', 'content[1].name', 'lookup'],
    [1, 'assistant', 'content[1].input.q', 'a1'],
    [1, 'assistant', 'content[1].input.data', 'short'],
    [2, 'tool', 'content[0].tool_use_id', 't1'],
    [2, 'tool', 'content[0].content[0].text', 'r1'],
    [2, 'user', 'content[1].text', 'u2'],
  ]);
});

test('OpenAI: name, tool_calls arguments, data: URLs skipped; set() writes back', () => {
  const body = {
    model: 'm',
    messages: [
      { role: 'developer', content: 'dev' },
      { role: 'user', name: 'nm', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'input_text', text: 'it' }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] },
      { role: 'tool', tool_call_id: 'c1', content: 'out' },
    ],
  } as unknown as ModelRequest;
  const slots = requestTexts('openai', body);
  assert.deepEqual(
    slots.map((s) => [s.author, s.field]),
    [
      ['system', 'content'],
      ['user', 'name'],
      ['user', 'content[1].text'],
      ['assistant', 'tool_calls[0].id'],
      ['assistant', 'tool_calls[0].function.name'],
      ['assistant', 'tool_calls[0].function.arguments'],
      ['tool', 'tool_call_id'],
      ['tool', 'content'],
    ],
  );
  slots[5]?.set('{"a":2}');
  assert.equal((body.messages[2] as { tool_calls: { function: { arguments: string } }[] }).tool_calls[0]?.function.arguments, '{"a":2}');
});

test(`a message nested deeper than ${MAX_TEXT_DEPTH} is refused with ERR_MODEL_REQUEST_INVALID`, () => {
  let deep: unknown = 'x';
  for (let i = 0; i < MAX_TEXT_DEPTH + 2; i++) deep = { k: deep };
  const body = { model: 'm', messages: [{ role: 'user', content: 'hi', extra: deep }] } as unknown as ModelRequest;
  assert.throws(() => requestTexts('openai', body), (err: unknown) => isBastionError(err, 'ERR_MODEL_REQUEST_INVALID'));
});

test('a trailing assistant prefill does not end the user\'s turn; the priming assistant message is found', () => {
  const m = (...roles: string[]): ModelRequest => ({ model: 'm', messages: roles.map((role) => ({ role, content: 'x' })) }) as ModelRequest;
  assert.equal(newTurnStart(m('user', 'assistant')), 0);
  assert.equal(newTurnStart(m('user', 'assistant', 'user')), 2);
  assert.equal(newTurnStart(m('user', 'assistant', 'user', 'assistant')), 2);
  assert.equal(primingAssistantMessage(m('user', 'assistant', 'user')), 1);
  assert.equal(primingAssistantMessage(m('user')), -1);
});
