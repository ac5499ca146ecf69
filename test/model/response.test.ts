/**
 * The model door's answer filter: whole answers (filterResponse) and SSE streams
 * (StreamFilter) of OpenAI Chat Completions and Anthropic Messages. Streams are
 * cut at arbitrary byte offsets (also inside UTF-8 characters) and read back
 * with the real SDK stream parsers (`openai`, `@anthropic-ai/sdk`), which are
 * the clients agents use; a streamed answer must reach the agent as the same
 * message the whole-answer filter produces.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import fc from 'fast-check';
import OpenAI from 'openai';
import { isBastionError } from '../../src/errors.ts';
import { redactJsonText, redactText, StreamingTextRedactor } from '../../src/model/redact-text.ts';
import { filterResponse, StreamFilter, type ProviderKind, type ResponseFilter, type ResponseReport } from '../../src/model/response.ts';
import { cutAt } from '../helpers/chunks.ts';
import { assertLinear } from '../helpers/complexity.ts';
import { prng } from '../helpers/prng.ts';

const rnd = prng(4242);
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function pick(alphabet: string, n: number): string {
  let out = '';
  for (let i = 0; i < n; i++) out += alphabet[Math.floor(rnd() * alphabet.length)];
  return out;
}
const gh = (): string => ['gh', 'p_', pick(ALNUM, 36)].join('');
const GH = gh();
const VALUE = 'hunter2 "x"/é';
const FILTER: ResponseFilter = { values: [VALUE], allowTool: (name) => !name.startsWith('bad') };
const SECRETS = [GH, gh(), `password = "${pick(ALNUM, 14)}"`, VALUE, ['AK', 'IA', pick('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)].join('')];
const WORDS = ['the ', 'answer ', 'is ', 'é', '😀', '\n', 'token: ', ', ', 'ok'];

const isUpstream = (err: unknown): boolean => isBastionError(err, 'ERR_MODEL_UPSTREAM');

function sse(data: unknown, event?: string): string {
  return `${event === undefined ? '' : `event: ${event}\n`}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** Runs upstream SSE text, cut at `cuts`, through a StreamFilter. */
function filterStream(kind: ProviderKind, upstream: string, cuts: readonly number[] = [], filter: ResponseFilter = FILTER): { out: string; report: ResponseReport; filter: StreamFilter } {
  const f = new StreamFilter(kind, filter);
  let out = '';
  for (const c of cutAt(Buffer.from(upstream, 'utf8'), cuts)) out += f.push(c);
  out += f.end();
  return { out, report: f.report, filter: f };
}

const sseResponse = (body: string): (() => Promise<Response>) => async () => new Response(body, { headers: { 'content-type': 'text/event-stream' } });

/** The completion the `openai` SDK assembles from `body` (its ChatCompletionStream). */
async function openAiFinal(body: string): Promise<OpenAI.ChatCompletion> {
  const client = new OpenAI({ apiKey: 'test', baseURL: 'http://bastion.invalid/v1', fetch: sseResponse(body), maxRetries: 0 });
  return client.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }).finalChatCompletion();
}

/** The message the `@anthropic-ai/sdk` SDK assembles from `body` (its MessageStream). */
async function anthropicFinal(body: string): Promise<Anthropic.Message> {
  const client = new Anthropic({ apiKey: 'test', baseURL: 'http://bastion.invalid', fetch: sseResponse(body), maxRetries: 0 });
  return client.messages.stream({ model: 'c', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }).finalMessage();
}

// ---------------------------------------------------------------------------
// An answer, as a plan both paths are built from: text pieces and tool calls with argument fragments.

interface Plan {
  readonly text: readonly string[];
  readonly tools: ReadonlyArray<{ readonly name: string; readonly args: readonly string[] }>;
}

const pieceArb = fc.array(fc.constantFrom(...SECRETS, ...WORDS), { maxLength: 8 }).map((p) => p.join(''));
const argsArb = fc.record({ cmd: pieceArb, n: fc.integer(), tags: fc.array(pieceArb, { maxLength: 2 }) }).chain((v) => {
  const json = JSON.stringify(v);
  return fc.array(fc.nat(json.length), { maxLength: 6 }).map((cuts) => {
    const points = [...new Set(cuts)].sort((a, b) => a - b);
    return [0, ...points].map((p, i) => json.slice(p, points[i] ?? json.length));
  });
});
const planArb: fc.Arbitrary<Plan> = fc.record({
  text: fc.array(pieceArb, { maxLength: 6 }),
  tools: fc.array(fc.record({ name: fc.constantFrom('good_tool', 'other_tool', 'bad_tool', 'bad_exec'), args: argsArb }), { maxLength: 3 }),
});

const OA_BASE = { id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm' };

function openAiStream(plan: Plan, opts: { done?: boolean; finish?: boolean } = {}): string {
  const chunk = (delta: object, finish: string | null = null): string => sse({ ...OA_BASE, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] });
  let s = chunk({ role: 'assistant', content: '' });
  for (const t of plan.text) s += chunk({ content: t });
  plan.tools.forEach((t, i) => {
    s += chunk({ tool_calls: [{ index: i, id: `call_${i}`, type: 'function', function: { name: t.name, arguments: '' } }] });
    for (const a of t.args) s += chunk({ tool_calls: [{ index: i, function: { arguments: a } }] });
  });
  if (opts.finish !== false) s += chunk({}, plan.tools.length > 0 ? 'tool_calls' : 'stop');
  s += sse({ ...OA_BASE, choices: [], usage: { prompt_tokens: 9, completion_tokens: 21, total_tokens: 30 } });
  if (opts.done !== false) s += 'data: [DONE]\n\n';
  return s;
}

function openAiWhole(plan: Plan): object {
  const message: Record<string, unknown> = { role: 'assistant', content: plan.text.length > 0 ? plan.text.join('') : null, refusal: null };
  if (plan.tools.length > 0) message.tool_calls = plan.tools.map((t, i) => ({ id: `call_${i}`, type: 'function', function: { name: t.name, arguments: t.args.join('') } }));
  return { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message, finish_reason: plan.tools.length > 0 ? 'tool_calls' : 'stop', logprobs: null }], usage: { prompt_tokens: 9, completion_tokens: 21, total_tokens: 30 } };
}

function anthropicStream(plan: Plan): string {
  let s = sse({ type: 'message_start', message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'c', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } } }, 'message_start');
  let index = 0;
  if (plan.text.length > 0) {
    s += sse({ type: 'content_block_start', index, content_block: { type: 'text', text: '' } }, 'content_block_start');
    s += sse({ type: 'ping' }, 'ping');
    for (const t of plan.text) s += sse({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: t } }, 'content_block_delta');
    s += sse({ type: 'content_block_stop', index }, 'content_block_stop');
    index++;
  }
  for (const t of plan.tools) {
    s += sse({ type: 'content_block_start', index, content_block: { type: 'tool_use', id: `toolu_${index}`, name: t.name, input: {} } }, 'content_block_start');
    for (const a of t.args) s += sse({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: a } }, 'content_block_delta');
    s += sse({ type: 'content_block_stop', index }, 'content_block_stop');
    index++;
  }
  s += sse({ type: 'message_delta', delta: { stop_reason: plan.tools.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: 21 } }, 'message_delta');
  s += sse({ type: 'message_stop' }, 'message_stop');
  return s;
}

function anthropicWhole(plan: Plan): object {
  const content: object[] = [];
  if (plan.text.length > 0) content.push({ type: 'text', text: plan.text.join('') });
  plan.tools.forEach((t, i) => content.push({ type: 'tool_use', id: `toolu_${i + (plan.text.length > 0 ? 1 : 0)}`, name: t.name, input: JSON.parse(t.args.join('')) }));
  return { id: 'msg_1', type: 'message', role: 'assistant', model: 'c', content, stop_reason: plan.tools.length > 0 ? 'tool_use' : 'end_turn', stop_sequence: null, usage: { input_tokens: 9, output_tokens: 21 } };
}

/** The report fields both paths must agree on. */
function summary(r: ResponseReport): object {
  return { redactions: r.redactions, rules: [...r.rules].sort(), removedTools: r.removedTools, toolCalls: r.toolCalls, usage: r.usage, text: r.text, complete: r.complete };
}

// ---------------------------------------------------------------------------

describe('filterResponse: OpenAI', () => {
  test('redacts content, refusal and tool-call arguments; removes disallowed tools; nulls logprobs; reads usage', () => {
    const body = {
      id: 'c',
      object: 'chat.completion',
      choices: [
        {
          index: 0,
          logprobs: { content: [{ token: GH.slice(0, 4) }] },
          finish_reason: 'tool_calls',
          message: {
            role: 'assistant',
            content: `use ${GH} and ${VALUE}`,
            refusal: `no ${GH}`,
            tool_calls: [
              { id: 'a', type: 'function', function: { name: 'bad_tool', arguments: '{}' } },
              { id: 'b', type: 'function', function: { name: 'good_tool', arguments: `{"key": "${GH}", "n": 12345678901234567890}` } },
            ],
          },
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 4 },
    };
    const frozen = structuredClone(body);
    const { body: out, report } = filterResponse('openai', body, FILTER);
    assert.deepEqual(body, frozen, 'input not modified');
    const choice = (out as typeof body).choices[0] as (typeof body.choices)[0];
    assert.equal(choice.message.content, 'use [REDACTED:github-token] and [REDACTED:vault-secret]');
    assert.equal(choice.message.refusal, 'no [REDACTED:github-token]');
    assert.equal(choice.message.tool_calls.length, 1);
    // The arguments keep their layout (and a number JSON.parse would round).
    assert.equal(choice.message.tool_calls[0]?.function.arguments, '{"key": "[REDACTED:github-token]", "n": 12345678901234567890}');
    assert.equal(choice.finish_reason, 'tool_calls');
    assert.equal(choice.logprobs, null);
    assert.deepEqual(summary(report), {
      redactions: 4,
      rules: ['github-token', 'vault-secret'],
      removedTools: ['bad_tool'],
      toolCalls: ['good_tool'],
      usage: { input: 3, output: 4 },
      text: 'use [REDACTED:github-token] and [REDACTED:vault-secret]',
      complete: true,
    });
  });

  test('no tool call left: finish_reason tool_calls becomes stop; a legacy function_call is removed too; a throwing predicate denies', () => {
    const body = {
      choices: [
        { index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'bad_tool', arguments: '{}' } }] } },
        { index: 1, finish_reason: 'function_call', message: { role: 'assistant', content: null, function_call: { name: 'bad_fn', arguments: '{}' } } },
      ],
    };
    const { body: out, report } = filterResponse('openai', body, FILTER);
    const choices = (out as { choices: Array<{ finish_reason: string; message: Record<string, unknown> }> }).choices;
    assert.equal(choices[0]?.finish_reason, 'stop');
    assert.ok(!('tool_calls' in (choices[0]?.message ?? {})));
    assert.equal(choices[1]?.finish_reason, 'stop');
    assert.ok(!('function_call' in (choices[1]?.message ?? {})));
    assert.deepEqual(report.removedTools, ['bad_tool', 'bad_fn']);
    assert.equal(report.usage, null);
    const throwing = filterResponse('openai', { choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'x', arguments: '{}' } }] } }] }, {
      allowTool: () => {
        throw new Error('policy down');
      },
    });
    assert.deepEqual(throwing.report.removedTools, ['x']);
  });

  test('arguments that are not JSON are redacted as text', () => {
    const args = `{"cmd": echo ${GH}`;
    const { body } = filterResponse('openai', { choices: [{ index: 0, finish_reason: 'tool_calls', message: { role: 'assistant', tool_calls: [{ type: 'function', function: { name: 'good_tool', arguments: args } }] } }] }, FILTER);
    const got = (body as { choices: [{ message: { tool_calls: [{ function: { arguments: string } }] } }] }).choices[0].message.tool_calls[0].function.arguments;
    assert.equal(got, redactText(args).text);
    assert.ok(!got.includes(GH));
  });

  test('an answer of an unknown shape throws ERR_MODEL_UPSTREAM', () => {
    for (const body of [null, 'x', {}, { choices: 'x' }, { choices: [1] }, { choices: [{ message: 'x' }] }, { choices: [{ message: { tool_calls: 'x' } }] }, { choices: [{ message: { tool_calls: [{ type: 'function', function: { arguments: '{}' } }] } }] }, { choices: [{ message: { function_call: { arguments: '{}' } } }] }]) {
      assert.throws(() => filterResponse('openai', body, FILTER), isUpstream, JSON.stringify(body));
    }
  });
});

describe('filterResponse: Anthropic', () => {
  test('redacts text, thinking and tool input; removes disallowed tool_use; reads usage', () => {
    const body = {
      id: 'm',
      type: 'message',
      role: 'assistant',
      content: [
        { type: 'thinking', thinking: `I saw ${GH}`, signature: 'sig' },
        { type: 'text', text: `here ${VALUE}` },
        { type: 'tool_use', id: 't1', name: 'bad_tool', input: {} },
        { type: 'tool_use', id: 't2', name: 'good_tool', input: { q: GH, deep: [{ v: VALUE }] } },
        { type: 'redacted_thinking', data: 'opaque' },
      ],
      stop_reason: 'tool_use',
      usage: { input_tokens: 5, output_tokens: 6 },
    };
    const frozen = structuredClone(body);
    const { body: out, report } = filterResponse('anthropic', body, FILTER);
    assert.deepEqual(body, frozen);
    assert.deepEqual((out as typeof body).content, [
      { type: 'thinking', thinking: 'I saw [REDACTED:github-token]', signature: 'sig' },
      { type: 'text', text: 'here [REDACTED:vault-secret]' },
      { type: 'tool_use', id: 't2', name: 'good_tool', input: { q: '[REDACTED:github-token]', deep: [{ v: '[REDACTED:vault-secret]' }] } },
      { type: 'redacted_thinking', data: 'opaque' },
    ]);
    assert.equal((out as typeof body).stop_reason, 'tool_use');
    assert.deepEqual(summary(report), {
      redactions: 4,
      rules: ['github-token', 'vault-secret'],
      removedTools: ['bad_tool'],
      toolCalls: ['good_tool'],
      usage: { input: 5, output: 6 },
      text: 'here [REDACTED:vault-secret]',
      complete: true,
    });
  });

  test('no tool_use left: stop_reason tool_use becomes end_turn', () => {
    const { body } = filterResponse('anthropic', { content: [{ type: 'tool_use', id: 't', name: 'bad_tool', input: {} }], stop_reason: 'tool_use' }, FILTER);
    assert.deepEqual(body, { content: [], stop_reason: 'end_turn' });
  });

  test('an answer of an unknown shape throws ERR_MODEL_UPSTREAM', () => {
    for (const body of [null, {}, { content: 'x' }, { content: [1] }, { content: [{ text: 'x' }] }, { content: [{ type: 'tool_use', input: {} }] }, { content: [{ type: 'text', text: 1 }] }]) {
      assert.throws(() => filterResponse('anthropic', body, FILTER), isUpstream, JSON.stringify(body));
    }
  });
});

describe('StreamFilter: OpenAI', () => {
  const plan: Plan = {
    text: ['Your token is ', GH.slice(0, 9), `${GH.slice(9)} é😀 and `, VALUE.slice(0, 5), `${VALUE.slice(5)} ok`],
    tools: [
      { name: 'bad_tool', args: ['{"x":', ' 1}'] },
      { name: 'good_tool', args: ['{"t": "', GH.slice(0, 7), `${GH.slice(7)}", "v": "hunter2 \\"x\\"\\/\\u00e9"}`] },
    ],
  };
  const upstream = openAiStream(plan);
  const { out: reference } = filterStream('openai', upstream);

  test('cut at any byte the output is the same, and the SDK reads the redacted answer with renumbered tool calls (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 60 }), async (cuts) => {
        const { out, report } = filterStream('openai', upstream, cuts);
        assert.equal(out, reference);
        assert.deepEqual(summary(report), {
          redactions: 4,
          rules: ['github-token', 'vault-secret'],
          removedTools: ['bad_tool'],
          toolCalls: ['good_tool'],
          usage: { input: 9, output: 21 },
          text: redactText(plan.text.join(''), { values: [VALUE] }).text,
          complete: true,
        });
      }),
      { numRuns: 150 },
    );
    const final = await openAiFinal(reference);
    const choice = final.choices[0];
    assert.equal(choice?.message.content, `Your token is [REDACTED:github-token] é😀 and [REDACTED:vault-secret] ok`);
    assert.equal(choice?.finish_reason, 'tool_calls');
    assert.equal(choice?.message.tool_calls?.length, 1);
    const call = choice?.message.tool_calls?.[0];
    assert.ok(call?.type === 'function');
    assert.equal(call.id, 'call_1');
    assert.equal(call.function.name, 'good_tool');
    assert.deepEqual(JSON.parse(call.function.arguments), { t: '[REDACTED:github-token]', v: '[REDACTED:vault-secret]' });
    assert.ok(!reference.includes(GH.slice(0, 12)) && !reference.includes('bad_tool'));
  });

  test('every tool call removed: finish_reason becomes stop and the SDK sees no tool call', async () => {
    const { out, report } = filterStream('openai', openAiStream({ text: ['hi'], tools: [{ name: 'bad_a', args: ['{}'] }, { name: 'bad_b', args: ['{}'] }] }));
    const final = await openAiFinal(out);
    assert.equal(final.choices[0]?.finish_reason, 'stop');
    assert.equal(final.choices[0]?.message.tool_calls, undefined);
    assert.deepEqual(report.removedTools, ['bad_a', 'bad_b']);
  });

  test('held text is flushed in a chunk before the finish_reason chunk, and before [DONE] when no choice finished', () => {
    const tail = `ends with ${GH}`;
    const withFinish = filterStream('openai', openAiStream({ text: [tail], tools: [] })).out;
    const events = withFinish.split('\n\n').filter((e) => e.length > 0);
    const finishAt = events.findIndex((e) => e.includes('"finish_reason":"stop"'));
    assert.ok(events[finishAt - 1]?.includes('[REDACTED:github-token]'), 'the flushed text comes right before the finish chunk');
    const noFinish = filterStream('openai', openAiStream({ text: [tail], tools: [] }, { finish: false }));
    const ev = noFinish.out.split('\n\n').filter((e) => e.length > 0);
    assert.equal(ev.at(-1), 'data: [DONE]');
    assert.ok(ev.at(-2)?.includes('"content":"[REDACTED:github-token]"'), 'the held text comes right before [DONE]');
    assert.equal(noFinish.report.complete, true);
    // Cut before [DONE]: end() still flushes, and the report says the answer was not whole.
    const cut = filterStream('openai', openAiStream({ text: [tail], tools: [] }, { finish: false, done: false }));
    assert.ok(cut.out.includes('[REDACTED:github-token]') && !cut.out.includes(GH));
    assert.equal(cut.report.complete, false);
  });

  test('other text fields of a delta (reasoning) are streamed through their own redactor; logprobs are nulled', () => {
    const chunk = (delta: object): string => sse({ ...OA_BASE, choices: [{ index: 0, delta, finish_reason: null, logprobs: { content: [{ token: 'x' }] } }] });
    const upstream = chunk({ role: 'assistant', reasoning_content: `think ${GH.slice(0, 6)}` }) + chunk({ reasoning_content: `${GH.slice(6)} done` }) + sse({ ...OA_BASE, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }) + 'data: [DONE]\n\n';
    const { out } = filterStream('openai', upstream);
    assert.ok(!out.includes(GH.slice(0, 10)) && out.includes('[REDACTED:github-token]'));
    assert.ok(!out.includes('"token"'));
  });

  test('firstContentAt is set when the first text goes out, not by the role chunk', () => {
    const f = new StreamFilter('openai', FILTER);
    f.push(sse({ ...OA_BASE, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] }));
    assert.equal(f.firstContentAt, null);
    // Text that cannot begin a known value goes out at once; a tail that could is held.
    const before = performance.now();
    assert.ok(f.push(sse({ ...OA_BASE, choices: [{ index: 0, delta: { content: 'hello ' }, finish_reason: null }] })).includes('hello'));
    assert.ok(f.firstContentAt !== null && f.firstContentAt >= before);
  });

  test('only a tail that could begin a known value is held back', () => {
    const r = new StreamingTextRedactor({ values: ['s3cr3t-value-0123'] });
    assert.equal(r.push('plain words '), 'plain words ');
    assert.equal(r.push('then s3cr'), 'then ');
    assert.equal(r.push('3t-val'), '');
    assert.equal(r.push('ue-0123 ok '), '[REDACTED:vault-secret] ok ');
    assert.equal(r.push('s3cr3tive '), 's3cr3tive ');
    assert.equal(r.end(), '');
  });

  test('an error event passes through, redacted', () => {
    const { out } = filterStream('openai', sse({ error: { message: `bad key ${GH}`, type: 'server_error' } }));
    assert.deepEqual(JSON.parse(out.slice('data: '.length)), { error: { message: 'bad key [REDACTED:github-token]', type: 'server_error' } });
  });
});

describe('StreamFilter: Anthropic', () => {
  const plan: Plan = {
    text: ['key: ', GH.slice(0, 5), `${GH.slice(5)} é😀 `, VALUE, ' done'],
    tools: [
      { name: 'bad_tool', args: ['{"a": 1}'] },
      { name: 'good_tool', args: ['{"q": "hun', 'ter2 \\"x\\"/é x"}'] },
    ],
  };
  const upstream = anthropicStream(plan);
  const { out: reference } = filterStream('anthropic', upstream);

  test('cut at any byte the output is the same, and the SDK reads the redacted message with renumbered blocks (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.nat(), { maxLength: 60 }), async (cuts) => {
        const { out, report } = filterStream('anthropic', upstream, cuts);
        assert.equal(out, reference);
        assert.deepEqual(summary(report), {
          redactions: 3,
          rules: ['github-token', 'vault-secret'],
          removedTools: ['bad_tool'],
          toolCalls: ['good_tool'],
          usage: { input: 9, output: 21 },
          text: 'key: [REDACTED:github-token] é😀 [REDACTED:vault-secret] done',
          complete: true,
        });
      }),
      { numRuns: 150 },
    );
    const msg = await anthropicFinal(reference);
    assert.deepEqual(msg.content, [
      { type: 'text', text: 'key: [REDACTED:github-token] é😀 [REDACTED:vault-secret] done' },
      { type: 'tool_use', id: 'toolu_2', name: 'good_tool', input: { q: '[REDACTED:vault-secret] x' } },
    ]);
    assert.equal(msg.stop_reason, 'tool_use');
    assert.deepEqual(msg.usage, { input_tokens: 9, output_tokens: 21 });
    assert.ok(reference.includes('"index":1') && !reference.includes('"index":2'), 'the block after the removed one is renumbered');
  });

  test('every tool_use removed: stop_reason becomes end_turn', async () => {
    const { out } = filterStream('anthropic', anthropicStream({ text: ['hi'], tools: [{ name: 'bad_tool', args: ['{}'] }] }));
    const msg = await anthropicFinal(out);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'hi' }]);
  });

  test('thinking is redacted; signature and unknown events pass; an error event is redacted', async () => {
    const up =
      sse({ type: 'message_start', message: { id: 'm', type: 'message', role: 'assistant', model: 'c', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } } }, 'message_start') +
      sse({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }, 'content_block_start') +
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: `I see ${GH.slice(0, 8)}` } }, 'content_block_delta') +
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'thinking_delta', thinking: GH.slice(8) } }, 'content_block_delta') +
      sse({ type: 'content_block_delta', index: 0, delta: { type: 'signature_delta', signature: 'c2ln' } }, 'content_block_delta') +
      sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop') +
      sse({ type: 'future_event', note: `x ${GH}` }, 'future_event') +
      sse({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 3 } }, 'message_delta') +
      sse({ type: 'message_stop' }, 'message_stop');
    const { out } = filterStream('anthropic', up);
    assert.ok(!out.includes(GH.slice(0, 12)));
    const msg = await anthropicFinal(out);
    assert.deepEqual(msg.content, [{ type: 'thinking', thinking: 'I see [REDACTED:github-token]', signature: 'c2ln' }]);
    const err = filterStream('anthropic', sse({ type: 'error', error: { type: 'overloaded_error', message: `x ${GH}` } }, 'error'));
    assert.ok(err.out.startsWith('event: error\n') && err.out.includes('[REDACTED:github-token]') && !err.out.includes(GH));
    assert.equal(err.report.complete, false);
  });
});

describe('StreamFilter: a streamed answer reaches the agent as the whole-answer filter writes it (property)', () => {
  test('OpenAI', async () => {
    await fc.assert(
      fc.asyncProperty(planArb, fc.array(fc.nat(), { maxLength: 30 }), async (plan, cuts) => {
        const whole = filterResponse('openai', openAiWhole(plan), FILTER);
        const streamed = filterStream('openai', openAiStream(plan), cuts);
        assert.deepEqual(summary(streamed.report), summary(whole.report));
        const final = await openAiFinal(streamed.out);
        const want = (whole.body as { choices: [{ message: { content: string | null; tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }> }; finish_reason: string }] }).choices[0];
        const got = final.choices[0];
        // A stream's content starts as '' (the role chunk); a whole answer without text has null.
        assert.equal(got?.message.content || null, want.message.content || null);
        assert.equal(got?.finish_reason, want.finish_reason);
        assert.deepEqual(
          (got?.message.tool_calls ?? []).map((t) => (t.type === 'function' ? [t.id, t.function.name, t.function.arguments] : [])),
          (want.message.tool_calls ?? []).map((t) => [t.id, t.function.name, t.function.arguments]),
        );
        // The streamed arguments are the same string the whole filter writes.
        for (const t of want.message.tool_calls ?? []) assert.equal(t.function.arguments, redactJsonText(plan.tools.find((p) => t.id === `call_${plan.tools.indexOf(p)}`)?.args.join('') ?? '', { values: [VALUE] }).text);
      }),
      { numRuns: 60 },
    );
  });

  test('Anthropic', async () => {
    await fc.assert(
      fc.asyncProperty(planArb, fc.array(fc.nat(), { maxLength: 30 }), async (plan, cuts) => {
        const whole = filterResponse('anthropic', anthropicWhole(plan), FILTER);
        const streamed = filterStream('anthropic', anthropicStream(plan), cuts);
        assert.deepEqual(summary(streamed.report), summary(whole.report));
        const msg = await anthropicFinal(streamed.out);
        const want = whole.body as { content: unknown[]; stop_reason: string };
        assert.deepEqual(msg.content, want.content);
        assert.equal(msg.stop_reason, want.stop_reason);
      }),
      { numRuns: 60 },
    );
  });
});

describe('StreamFilter: fail closed', () => {
  const cases: Array<[ProviderKind, string, string]> = [
    ['openai', 'data that is not JSON', 'data: {"choices": [\n\n'],
    ['openai', 'data that is a JSON array', 'data: [1]\n\n'],
    ['openai', 'choices that are not an array', sse({ ...OA_BASE, choices: 1 })],
    ['openai', 'a choice without an index', sse({ ...OA_BASE, choices: [{ delta: { content: 'x' } }] })],
    ['openai', 'a tool call without a name', sse({ ...OA_BASE, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{}' } }] } }] })],
    ['openai', 'a tool call that changes its name', sse({ ...OA_BASE, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'good_tool', arguments: '' } }] } }] }) + sse({ ...OA_BASE, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'bad_tool' } }] } }] })],
    ['anthropic', 'data that is not JSON', 'event: message_start\ndata: nope\n\n'],
    ['anthropic', 'an event without a type', sse({ index: 0 }, 'content_block_stop')],
    ['anthropic', 'a delta for a block that never started', sse({ type: 'content_block_delta', index: 3, delta: { type: 'text_delta', text: 'x' } }, 'content_block_delta')],
    ['anthropic', 'a delta type it cannot redact', sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start') + sse({ type: 'content_block_delta', index: 0, delta: { type: 'future_delta', text: 'x' } }, 'content_block_delta')],
    ['anthropic', 'a tool_use block without a name', sse({ type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 't', input: {} } }, 'content_block_start')],
  ];
  for (const [kind, name, upstream] of cases) {
    test(`${kind}: ${name} → ERR_MODEL_UPSTREAM, and the filter stays failed`, () => {
      const f = new StreamFilter(kind, FILTER);
      assert.throws(() => f.push(Buffer.from(upstream)), isUpstream);
      assert.throws(() => f.push('data: {}\n\n'), isUpstream);
    });
  }

  test('an event over 16 MiB without its end → ERR_MODEL_UPSTREAM', () => {
    const f = new StreamFilter('openai', FILTER);
    const big = 'x'.repeat(1 << 20);
    assert.throws(() => {
      f.push('data: "');
      for (let i = 0; i < 17; i++) f.push(big);
    }, isUpstream);
  });

  test('bad arguments: unknown kind or no allowTool → TypeError; push after end → TypeError', () => {
    assert.throws(() => new StreamFilter('gemini' as ProviderKind, FILTER), TypeError);
    assert.throws(() => new StreamFilter('openai', {} as ResponseFilter), TypeError);
    const f = new StreamFilter('openai', FILTER);
    f.end();
    assert.throws(() => f.push('x'), TypeError);
    assert.equal(f.end(), '');
  });
});

describe('StreamFilter: cost', () => {
  test('push() over a long stream of small chunks is linear', () => {
    const event = (i: number): string => sse({ ...OA_BASE, choices: [{ index: 0, delta: { content: i % 50 === 0 ? `${GH} ` : 'word and more words ' }, finish_reason: null }] });
    const mk = (n: number): string => Array.from({ length: n }, (_, i) => event(i)).join('');
    const work = (input: string): void => {
      const f = new StreamFilter('openai', FILTER);
      for (let i = 0; i < input.length; i += 40) f.push(input.slice(i, i + 40));
      f.end();
    };
    assertLinear('StreamFilter.push', work, mk(250), mk(1000));
  });
});
