/**
 * Issue 11, class 8 (model door, answer side): the answer filter covers every
 * field of an answer, whole or streamed, not only the text channels: OpenAI
 * chunks without choices, chunk- and choice-level fields, tool-call fields
 * beside the arguments; Anthropic `message_delta` (a `stop_sequence`),
 * `message_start` without content, extra fields of content blocks and deltas,
 * `message_stop`; and whole answers' top-level fields. A known value (a
 * secret the user vaulted) or a credential the detector finds in any of them
 * is redacted; identifiers, types and indexes are left as they are.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { filterResponse, StreamFilter, type ResponseFilter } from '../../src/model/response.ts';

const VALUE = 'vaulted-Zq9vLm2xTr8wPk4n';
const GH = 'ghp_' + 'Pq7Rs6Tu5Vw4Xy3Za2Bc1De0Fg9Hi8Jk7Lm6';
const FILTER: ResponseFilter = { values: [VALUE], allowTool: () => true };

function sse(data: unknown, event?: string): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`;
}

function run(kind: 'openai' | 'anthropic', upstream: string): string {
  const f = new StreamFilter(kind, FILTER);
  return f.push(upstream) + f.end();
}

function clean(out: string, what: string): void {
  assert.ok(!out.includes(VALUE), `${what}: the vaulted value passed`);
  assert.ok(!out.includes(GH), `${what}: the credential passed`);
  assert.match(out, /\[REDACTED:/, `${what}: a marker stands in`);
}

describe('OpenAI streams: every field of a chunk', () => {
  const chunk = (over: Record<string, unknown>): Record<string, unknown> => ({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', ...over });
  test('a chunk without choices (the usage chunk) with an extra field', () => {
    const out = run('openai', sse(chunk({ choices: [], usage: { prompt_tokens: 1, completion_tokens: 1 }, note: `see ${VALUE}` })) + 'data: [DONE]\n\n');
    clean(out, 'usage chunk');
  });
  test('a chunk-level field beside the choices', () => {
    const out = run('openai', sse(chunk({ system_fingerprint: GH, choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: null }] })) + 'data: [DONE]\n\n');
    clean(out, 'chunk field');
  });
  test('a choice-level field beside the delta', () => {
    const out = run('openai', sse(chunk({ choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: 'stop', extra: { why: VALUE } }] })) + 'data: [DONE]\n\n');
    clean(out, 'choice field');
  });
  test('a tool call field beside the arguments', () => {
    const out = run(
      'openai',
      sse(chunk({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}', description: VALUE } }] }, finish_reason: null }] })) +
        sse(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })) +
        'data: [DONE]\n\n',
    );
    clean(out, 'tool call field');
    assert.match(out, /"id":"call_1"/, 'ids are left as they are');
  });
});

describe('Anthropic streams: every event', () => {
  const start = sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'm', usage: { input_tokens: 1, output_tokens: 0 } } }, 'message_start');
  const stop = sse({ type: 'message_stop' }, 'message_stop');
  test('message_delta with a stop_sequence', () => {
    const out = run('anthropic', start + sse({ type: 'message_delta', delta: { stop_reason: 'stop_sequence', stop_sequence: VALUE }, usage: { output_tokens: 3 } }, 'message_delta') + stop);
    clean(out, 'message_delta');
  });
  test('message_start without content, with an extra field', () => {
    const out = run('anthropic', sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'm', container: { note: GH } } }, 'message_start') + stop);
    clean(out, 'message_start');
  });
  test('an extra field of a text block start and of a text delta', () => {
    const out = run(
      'anthropic',
      start +
        sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '', note: VALUE } }, 'content_block_start') +
        sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hi', note: GH } }, 'content_block_delta') +
        sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
        stop,
    );
    clean(out, 'block fields');
  });
  test('an extra field of message_stop', () => {
    const out = run('anthropic', start + sse({ type: 'message_stop', note: VALUE }, 'message_stop'));
    clean(out, 'message_stop');
  });
});

describe('whole answers: every field', () => {
  test('OpenAI top-level and choice-level fields, tool call fields', () => {
    const body = {
      id: 'c1',
      object: 'chat.completion',
      system_fingerprint: GH,
      choices: [{ index: 0, finish_reason: 'stop', extra: VALUE, message: { role: 'assistant', content: 'hi', tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}', description: VALUE } }] } }],
    };
    clean(JSON.stringify(filterResponse('openai', body, FILTER).body), 'openai whole');
  });
  test('Anthropic top-level fields and block fields', () => {
    const body = { id: 'msg_1', type: 'message', role: 'assistant', stop_sequence: VALUE, content: [{ type: 'text', text: 'hi', note: GH }, { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {}, note: VALUE }] };
    const out = JSON.stringify(filterResponse('anthropic', body, FILTER).body);
    clean(out, 'anthropic whole');
    assert.match(out, /"id":"toolu_1"/);
  });
});

describe('tool names', () => {
  test('a tool call whose name holds a known value or a credential is removed, whole and streamed, even when the tool predicate allows it', () => {
    const whole = filterResponse(
      'openai',
      { choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: `x_${VALUE}`, arguments: '{}' } }] } }] },
      FILTER,
    );
    assert.ok(!JSON.stringify(whole.body).includes(VALUE));
    assert.deepEqual(whole.report.removedTools.length, 1);
    const out = run(
      'anthropic',
      sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'm' } }, 'message_start') +
        sse({ type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 't', name: GH, input: {} } }, 'content_block_start') +
        sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
        sse({ type: 'message_stop' }, 'message_stop'),
    );
    assert.ok(!out.includes(GH), 'streamed name');
  });
});
