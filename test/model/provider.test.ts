/**
 * The mock LLM provider (examples/model-door/provider.ts) against the official `openai` and
 * `@anthropic-ai/sdk` clients: if these clients parse what it sends, the model door is tested
 * against the real wire formats. Also the raw wire (SSE framing, error bodies) and the CLI.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { echoScript, lastUserText, startMockProvider, type MockProvider, type ProviderScript } from '../../examples/model-door/provider.ts';

const KEY = 'sk-mock-upstream-key';
const GPT = 'gpt-4o-mini';
const CLAUDE = 'claude-sonnet-4-6';

async function withProvider(script: ProviderScript | undefined, fn: (p: MockProvider, openai: OpenAI, anthropic: Anthropic) => Promise<void>): Promise<void> {
  const p = await startMockProvider({ apiKey: KEY, ...(script ? { script } : {}) });
  try {
    const openai = new OpenAI({ apiKey: KEY, baseURL: `${p.url}/v1`, maxRetries: 0 });
    const anthropic = new Anthropic({ apiKey: KEY, baseURL: p.url, maxRetries: 0 });
    await fn(p, openai, anthropic);
  } finally {
    await p.close();
  }
}

const weather = { name: 'get_weather', arguments: { city: 'Zürich', units: 'metric', days: [1, 2], nested: { ok: true } } };
const search = { name: 'search', arguments: { q: 'a "quoted" term' } };

/** Parse an SSE body into `{event, data}` frames (frames end in a blank line). */
function sseFrames(body: string): { event: string | undefined; data: string }[] {
  assert.ok(body.endsWith('\n\n'), 'SSE body ends with a blank line');
  return body
    .slice(0, -2)
    .split('\n\n')
    .map((frame) => {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
        else assert.fail(`unexpected SSE line ${JSON.stringify(line)}`);
      }
      return { event, data: data.join('\n') };
    });
}

describe('OpenAI chat completions', () => {
  test('non-streaming text echoes the last user message and the request is recorded', async () => {
    await withProvider(undefined, async (p, openai) => {
      const res = await openai.chat.completions.create({
        model: GPT,
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: [{ type: 'text', text: 'hello ' }, { type: 'text', text: 'world' }] },
        ],
      });
      assert.equal(res.object, 'chat.completion');
      assert.match(res.id, /^chatcmpl-/);
      assert.equal(res.model, GPT);
      assert.equal(res.choices.length, 1);
      assert.equal(res.choices[0]?.message.role, 'assistant');
      assert.equal(res.choices[0]?.message.content, 'You said: hello world');
      assert.equal(res.choices[0]?.finish_reason, 'stop');
      assert.equal(res.choices[0]?.message.tool_calls, undefined);
      assert.deepEqual(
        { p: res.usage?.prompt_tokens, c: res.usage?.completion_tokens, t: res.usage?.total_tokens },
        // ceil(chars/4) over every message's text (8+5+2+11 = 26) and the reply (21)
        { p: 7, c: 6, t: 13 },
      );
      assert.equal(p.requests.length, 1);
      const r = p.requests[0];
      assert.equal(r?.method, 'POST');
      assert.equal(r?.path, '/v1/chat/completions');
      assert.equal(r?.headers.authorization, `Bearer ${KEY}`);
      assert.equal((r?.body as { model: string }).model, GPT);
      assert.equal((JSON.parse(r?.raw ?? '') as { model: string }).model, GPT);
    });
  });

  test('a streamed reply accumulates to the full text in chunkChars-sized deltas', async () => {
    const text = 'Streaming 🚀 works, one small piece at a time.';
    await withProvider(() => ({ text, chunkChars: 3 }), async (_p, openai) => {
      const stream = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'go' }], stream: true });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      assert.deepEqual(chunks[0]?.choices[0]?.delta, { role: 'assistant', content: '', refusal: null });
      const deltas = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? '')).filter((s) => s !== '');
      assert.equal(deltas.join(''), text);
      for (const d of deltas) assert.ok(Array.from(d).length <= 3, `delta ${JSON.stringify(d)} is at most 3 code points`);
      assert.equal(deltas.length, Math.ceil(Array.from(text).length / 3));
      const last = chunks.at(-1);
      assert.deepEqual(last?.choices[0]?.delta, {});
      assert.equal(last?.choices[0]?.finish_reason, 'stop');
      assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === GPT && c.id === chunks[0]?.id));
      assert.ok(chunks.every((c) => !('usage' in c)), 'no usage field without include_usage');
    });
  });

  test('chat.completions.stream().finalChatCompletion() assembles the message', async () => {
    await withProvider(undefined, async (_p, openai) => {
      const seen: string[] = [];
      const stream = openai.chat.completions.stream({ model: GPT, messages: [{ role: 'user', content: 'say something long enough to split' }] });
      stream.on('content', (delta) => seen.push(delta));
      const final = await stream.finalChatCompletion();
      assert.equal(final.choices[0]?.message.content, 'You said: say something long enough to split');
      assert.equal(final.choices[0]?.finish_reason, 'stop');
      assert.equal(seen.join(''), 'You said: say something long enough to split');
      assert.ok(seen.length > 5);
    });
  });

  test('tool calls round-trip with parsed arguments (non-streaming)', async () => {
    await withProvider(() => ({ toolCalls: [weather, search] }), async (_p, openai) => {
      const res = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'weather?' }] });
      const choice = res.choices[0];
      assert.equal(choice?.finish_reason, 'tool_calls');
      assert.equal(choice?.message.content, null);
      const calls = choice?.message.tool_calls ?? [];
      assert.equal(calls.length, 2);
      for (const [i, want] of [weather, search].entries()) {
        const call = calls[i];
        assert.ok(call?.type === 'function');
        assert.match(call.id, /^call_/);
        assert.equal(call.function.name, want.name);
        assert.equal(typeof call.function.arguments, 'string');
        assert.deepEqual(JSON.parse(call.function.arguments), want.arguments);
      }
    });
  });

  test('tool calls round-trip when streamed, through finalChatCompletion and the raw deltas', async () => {
    await withProvider(() => ({ text: 'Checking.', toolCalls: [weather, search], chunkChars: 5 }), async (_p, openai) => {
      const final = await openai.chat.completions.stream({ model: GPT, messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion();
      const msg = final.choices[0]?.message;
      assert.equal(final.choices[0]?.finish_reason, 'tool_calls');
      assert.equal(msg?.content, 'Checking.');
      const calls = msg?.tool_calls ?? [];
      assert.equal(calls.length, 2);
      for (const [i, want] of [weather, search].entries()) {
        const call = calls[i];
        assert.ok(call?.type === 'function');
        assert.equal(call.function.name, want.name);
        assert.deepEqual(JSON.parse(call.function.arguments), want.arguments);
      }

      const raw = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true });
      const toolDeltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
      for await (const chunk of raw) toolDeltas.push(...(chunk.choices[0]?.delta.tool_calls ?? []));
      const first = toolDeltas[0];
      assert.equal(first?.index, 0);
      assert.match(first?.id ?? '', /^call_/);
      assert.equal(first?.type, 'function');
      assert.deepEqual(first?.function, { name: 'get_weather', arguments: '' });
      const fragments = toolDeltas.filter((d) => d.index === 0 && d.id === undefined);
      assert.ok(fragments.length > 1, 'arguments arrive in several fragments');
      assert.deepEqual(JSON.parse(fragments.map((d) => d.function?.arguments ?? '').join('')), weather.arguments);
      assert.equal(toolDeltas.filter((d) => d.id !== undefined).length, 2, 'one header delta per call');
    });
  });

  test('stream_options.include_usage adds a final usage chunk with no choices', async () => {
    await withProvider(() => ({ text: 'counted', usage: { input: 11, output: 3 } }), async (_p, openai) => {
      const stream = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true, stream_options: { include_usage: true } });
      const chunks: OpenAI.ChatCompletionChunk[] = [];
      for await (const chunk of stream) chunks.push(chunk);
      const last = chunks.at(-1);
      assert.deepEqual(last?.choices, []);
      assert.equal(last?.usage?.prompt_tokens, 11);
      assert.equal(last?.usage?.completion_tokens, 3);
      assert.equal(last?.usage?.total_tokens, 14);
      assert.ok(chunks.slice(0, -1).every((c) => c.usage === null), 'earlier chunks carry usage: null');
      const final = await openai.chat.completions.stream({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } }).finalChatCompletion();
      assert.equal(final.usage?.total_tokens, 14);
    });
  });

  test('scripted 429 and 500 surface as the SDK APIError subclasses with that status', async () => {
    await withProvider(undefined, async (p, openai) => {
      p.setScript(() => ({ status: 429 }));
      await assert.rejects(openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.status, 429);
        assert.equal(err.code, 'rate_limit_exceeded');
        assert.match(err.requestID ?? '', /^req_/);
        return true;
      });
      p.setScript(() => ({ status: 500, errorType: 'server_error', errorMessage: 'upstream exploded' }));
      await assert.rejects(openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true }), (err: unknown) => {
        assert.ok(err instanceof OpenAI.InternalServerError);
        assert.equal(err.status, 500);
        assert.equal(err.type, 'server_error');
        assert.match(err.message, /upstream exploded/);
        return true;
      });
    });
  });

  test('a cut stream makes the SDK throw after the events that were sent', async () => {
    await withProvider(() => ({ text: 'abcdefghijklmnop', cutAfterEvents: 3 }), async (_p, openai) => {
      const stream = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true });
      const got: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const chunk of stream) got.push(chunk.choices[0]?.delta.content ?? '');
        })(),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, 'undici reports the dropped body as TypeError');
          assert.equal(err.message, 'terminated');
          return true;
        },
      );
      assert.deepEqual(got, ['', 'abcd', 'efgh']);
      await assert.rejects(openai.chat.completions.stream({ model: GPT, messages: [{ role: 'user', content: 'x' }] }).finalChatCompletion(), /terminated/);
    });
  });

  test('delayMs spaces the events out and they arrive as they are sent', async () => {
    await withProvider(() => ({ text: 'abcdefgh', delayMs: 40 }), async (_p, openai) => {
      const stream = await openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true });
      const at: number[] = [];
      for await (const chunk of stream) {
        void chunk;
        at.push(Date.now());
      }
      // role chunk, 'abcd', 'efgh', finish chunk (+ [DONE]): four delays of 40 ms after the first event
      assert.equal(at.length, 4);
      const first = at[0] ?? 0;
      const last = at.at(-1) ?? 0;
      assert.ok(last - first >= 100, `events spread over ${last - first} ms`);
    });
  });

  test('a hanging reply trips the client timeout', async () => {
    await withProvider(() => ({ hangMs: 30_000 }), async (p, openai) => {
      const started = Date.now();
      await assert.rejects(openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }] }, { timeout: 150 }), OpenAI.APIConnectionTimeoutError);
      assert.ok(Date.now() - started < 2000);
      assert.equal(p.requests.length, 1);
    });
  });
});

describe('Anthropic messages', () => {
  test('non-streaming text echoes the last user message', async () => {
    await withProvider(undefined, async (p, _openai, anthropic) => {
      const msg = await anthropic.messages.create({
        model: CLAUDE,
        max_tokens: 100,
        system: 'be brief',
        messages: [
          { role: 'user', content: 'first' },
          { role: 'assistant', content: 'ok' },
          { role: 'user', content: [{ type: 'text', text: 'bonjour ' }, { type: 'text', text: 'monde' }] },
        ],
      });
      assert.equal(msg.type, 'message');
      assert.equal(msg.role, 'assistant');
      assert.match(msg.id, /^msg_/);
      assert.equal(msg.model, CLAUDE);
      assert.equal(msg.stop_reason, 'end_turn');
      assert.equal(msg.stop_sequence, null);
      assert.deepEqual(msg.content, [{ type: 'text', text: 'You said: bonjour monde', citations: null }]);
      assert.equal(msg.usage.input_tokens, Math.ceil((8 + 5 + 2 + 13) / 4));
      assert.equal(msg.usage.output_tokens, Math.ceil('You said: bonjour monde'.length / 4));
      const r = p.requests[0];
      assert.equal(r?.path, '/v1/messages');
      // @anthropic-ai/sdk 1.11 sends `apiKey` as a Bearer token, not as x-api-key.
      assert.equal(r?.headers.authorization, `Bearer ${KEY}`);
      assert.equal(r?.headers['x-api-key'], undefined);
      assert.ok(r?.headers['anthropic-version'] !== undefined);
    });
  });

  test('streamed text accumulates through the raw events and finalMessage()', async () => {
    const text = 'Anthropic streams named events, 🚀 included.';
    await withProvider(() => ({ text, chunkChars: 6 }), async (_p, _openai, anthropic) => {
      const stream = await anthropic.messages.create({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'go' }], stream: true });
      const types: string[] = [];
      let acc = '';
      for await (const event of stream) {
        types.push(event.type);
        if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') acc += event.delta.text;
        if (event.type === 'message_delta') assert.equal(event.delta.stop_reason, 'end_turn');
      }
      assert.equal(acc, text);
      const deltas = Math.ceil(Array.from(text).length / 6);
      assert.deepEqual(types, ['message_start', 'content_block_start', ...Array<string>(deltas).fill('content_block_delta'), 'content_block_stop', 'message_delta', 'message_stop']);

      const final = await anthropic.messages.stream({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'go' }] }).finalMessage();
      assert.deepEqual(final.content, [{ type: 'text', text, citations: null }]);
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.usage.output_tokens, Math.ceil(text.length / 4));
    });
  });

  test('tool_use round-trips with parsed input (streaming and not)', async () => {
    await withProvider(() => ({ text: 'Let me look.', toolCalls: [weather, search], chunkChars: 4 }), async (_p, _openai, anthropic) => {
      const check = (msg: Anthropic.Message): void => {
        assert.equal(msg.stop_reason, 'tool_use');
        assert.equal(msg.content.length, 3);
        assert.deepEqual(msg.content[0], { type: 'text', text: 'Let me look.', citations: null });
        for (const [i, want] of [weather, search].entries()) {
          const block = msg.content[i + 1];
          assert.ok(block?.type === 'tool_use');
          assert.match(block.id, /^toolu_/);
          assert.equal(block.name, want.name);
          assert.deepEqual(block.input, want.arguments);
        }
      };
      check(await anthropic.messages.create({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }));
      check(await anthropic.messages.stream({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage());

      const stream = await anthropic.messages.create({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'x' }], stream: true });
      const partials: string[] = [];
      for await (const event of stream) {
        if (event.type === 'content_block_start' && event.index === 1) assert.deepEqual(event.content_block, { type: 'tool_use', id: (event.content_block as { id: string }).id, name: 'get_weather', input: {}, caller: { type: 'direct' } });
        if (event.type === 'content_block_delta' && event.index === 1 && event.delta.type === 'input_json_delta') partials.push(event.delta.partial_json);
      }
      assert.equal(partials[0], '', 'the first input_json_delta is empty, as Anthropic sends it');
      assert.ok(partials.length > 2);
      assert.deepEqual(JSON.parse(partials.join('')), weather.arguments);
    });
  });

  test('a reply with only tool calls has no text block', async () => {
    await withProvider(() => ({ toolCalls: [search] }), async (_p, _openai, anthropic) => {
      const msg = await anthropic.messages.stream({ model: CLAUDE, max_tokens: 100, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
      assert.deepEqual(
        msg.content.map((b) => b.type),
        ['tool_use'],
      );
    });
  });

  test('scripted 529 and 429 surface as APIError with that status and error type', async () => {
    await withProvider(undefined, async (p, _openai, anthropic) => {
      p.setScript(() => ({ status: 529 }));
      await assert.rejects(anthropic.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
        assert.ok(err instanceof Anthropic.InternalServerError);
        assert.equal(err.status, 529);
        assert.equal(err.type, 'overloaded_error');
        assert.match(err.requestID ?? '', /^req_/);
        return true;
      });
      p.setScript(() => ({ status: 429, errorMessage: 'slow down' }));
      await assert.rejects(anthropic.messages.stream({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage(), (err: unknown) => {
        assert.ok(err instanceof Anthropic.RateLimitError);
        assert.equal(err.status, 429);
        assert.equal(err.type, 'rate_limit_error');
        assert.equal(err.apiMessage, 'slow down');
        return true;
      });
    });
  });

  test('a cut stream makes the SDK throw', async () => {
    await withProvider(() => ({ text: 'abcdefghijklmnop', cutAfterEvents: 4 }), async (_p, _openai, anthropic) => {
      const stream = await anthropic.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }], stream: true });
      const types: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const event of stream) types.push(event.type);
        })(),
        (err: unknown) => {
          assert.ok(err instanceof TypeError);
          assert.equal(err.message, 'terminated');
          return true;
        },
      );
      // message_start, content_block_start, ping (skipped by the SDK), one text delta
      assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta']);
      await assert.rejects(anthropic.messages.stream({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }).finalMessage(), (err: unknown) => {
        assert.ok(err instanceof Anthropic.AnthropicError);
        assert.match(err.message, /terminated/);
        return true;
      });
    });
  });
});

describe('models, auth and the raw wire', () => {
  test('GET /v1/models answers in each provider shape', async () => {
    await withProvider(undefined, async (p, openai, anthropic) => {
      const o = await openai.models.list();
      assert.ok(o.data.length > 0);
      for (const m of o.data) {
        assert.equal(m.object, 'model');
        assert.equal(typeof m.id, 'string');
        assert.equal(typeof m.created, 'number');
        assert.equal(typeof m.owned_by, 'string');
      }
      const a = await anthropic.models.list();
      assert.ok(a.data.length > 0);
      assert.equal(a.has_more, false);
      assert.equal(a.first_id, a.data[0]?.id);
      assert.equal(a.last_id, a.data.at(-1)?.id);
      for (const m of a.data) {
        assert.equal(m.type, 'model');
        assert.equal(typeof m.display_name, 'string');
        assert.ok(!Number.isNaN(Date.parse(m.created_at)));
      }
      const raw = await fetch(`${p.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
      assert.deepEqual(Object.keys((await raw.json()) as object).sort(), ['data', 'object']);
    });
  });

  test('a wrong key is 401 in each provider shape; Anthropic takes x-api-key or Bearer', async () => {
    await withProvider(undefined, async (p) => {
      const openai = new OpenAI({ apiKey: 'sk-wrong', baseURL: `${p.url}/v1`, maxRetries: 0 });
      await assert.rejects(openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
        assert.ok(err instanceof OpenAI.AuthenticationError);
        assert.equal(err.status, 401);
        assert.equal(err.code, 'invalid_api_key');
        assert.ok(!err.message.includes('sk-wrong'), 'the presented key is not echoed');
        return true;
      });
      const anthropic = new Anthropic({ apiKey: 'sk-wrong', baseURL: p.url, maxRetries: 0 });
      await assert.rejects(anthropic.models.list(), (err: unknown) => {
        assert.ok(err instanceof Anthropic.AuthenticationError);
        assert.equal(err.status, 401);
        assert.equal(err.type, 'authentication_error');
        return true;
      });
      // An OpenAI-format request is not let in by x-api-key.
      const viaXKey = await fetch(`${p.url}/v1/chat/completions`, { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(viaXKey.status, 401);
      const wrongXKey = new Anthropic({ apiKey: null, defaultHeaders: { 'x-api-key': 'sk-wrong' }, baseURL: p.url, maxRetries: 0 });
      await assert.rejects(wrongXKey.models.list(), (err: unknown) => err instanceof Anthropic.AuthenticationError && err.status === 401);
      const xKey = new Anthropic({ apiKey: null, defaultHeaders: { 'x-api-key': KEY }, baseURL: p.url, maxRetries: 0 });
      const msg = await xKey.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'via x-api-key' }] });
      assert.deepEqual(msg.content, [{ type: 'text', text: 'You said: via x-api-key', citations: null }]);
      assert.equal(p.requests.at(-1)?.headers['x-api-key'], KEY);
      assert.equal(p.requests.at(-1)?.headers.authorization, undefined);
      const bearer = new Anthropic({ authToken: KEY, apiKey: null, baseURL: p.url, maxRetries: 0 });
      const viaBearer = await bearer.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'via bearer' }] });
      assert.deepEqual(viaBearer.content, [{ type: 'text', text: 'You said: via bearer', citations: null }]);
      assert.equal(p.requests.at(-1)?.headers.authorization, `Bearer ${KEY}`);
      assert.equal(p.requests.length, 6, 'rejected requests are recorded too');
    });
  });

  test('bad JSON is 400 and an unknown path is 404, each in the provider shape', async () => {
    await withProvider(undefined, async (p) => {
      const post = (path: string, body: string, headers: Record<string, string>): Promise<Response> =>
        fetch(`${p.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body });
      const o400 = await post('/v1/chat/completions', '{"model":', { authorization: `Bearer ${KEY}` });
      assert.equal(o400.status, 400);
      const ob = (await o400.json()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(ob.error).sort(), ['code', 'message', 'param', 'type']);
      assert.equal(ob.error.type, 'invalid_request_error');
      assert.equal(ob.error.param, null);

      const a400 = await post('/v1/messages', 'not json', { 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
      assert.equal(a400.status, 400);
      const ab = (await a400.json()) as { type: string; error: { type: string; message: string } };
      assert.equal(ab.type, 'error');
      assert.equal(ab.error.type, 'invalid_request_error');
      assert.equal(typeof ab.error.message, 'string');

      const noMaxTokens = await post('/v1/messages', JSON.stringify({ model: CLAUDE, messages: [] }), { 'x-api-key': KEY });
      assert.equal(noMaxTokens.status, 400);
      assert.match(((await noMaxTokens.json()) as { error: { message: string } }).error.message, /max_tokens/);

      const o404 = await post('/v1/embeddings', '{}', { authorization: `Bearer ${KEY}` });
      assert.equal(o404.status, 404);
      assert.equal(((await o404.json()) as { error: { type: string } }).error.type, 'invalid_request_error');
      const a404 = await fetch(`${p.url}/v1/files`, { headers: { 'anthropic-version': '2023-06-01' } });
      assert.equal(a404.status, 404);
      assert.deepEqual(await a404.json().then((b) => (b as { error: unknown }).error), { type: 'not_found_error', message: 'Not Found' });
    });
  });

  test('SSE framing on the wire: bare data events ending in [DONE]; Anthropic named events with a ping', async () => {
    await withProvider(() => ({ text: 'hi there', toolCalls: [search], chunkChars: 4 }), async (p) => {
      const o = await fetch(`${p.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: GPT, messages: [{ role: 'user', content: 'x' }], stream: true }),
      });
      assert.equal(o.status, 200);
      assert.match(o.headers.get('content-type') ?? '', /^text\/event-stream/);
      const of = sseFrames(await o.text());
      assert.ok(of.every((f) => f.event === undefined));
      assert.equal(of.at(-1)?.data, '[DONE]');
      const finals = of.slice(0, -1).map((f) => JSON.parse(f.data) as OpenAI.ChatCompletionChunk);
      assert.equal(finals.at(-1)?.choices[0]?.finish_reason, 'tool_calls');

      const a = await fetch(`${p.url}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }], stream: true }),
      });
      const af = sseFrames(await a.text());
      for (const f of af) assert.equal((JSON.parse(f.data) as { type: string }).type, f.event, 'event name matches data.type');
      assert.deepEqual(
        af.map((f) => f.event),
        [
          'message_start',
          'content_block_start',
          'ping',
          'content_block_delta',
          'content_block_delta',
          'content_block_stop',
          'content_block_start',
          'content_block_delta',
          ...Array<string>(Math.ceil(JSON.stringify(search.arguments).length / 4)).fill('content_block_delta'),
          'content_block_stop',
          'message_delta',
          'message_stop',
        ],
      );
    });
  });

  test('close() ends a hanging request promptly', async () => {
    const p = await startMockProvider({ script: () => ({ hangMs: 60_000 }) });
    const pending = fetch(`${p.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ model: GPT, messages: [] }) });
    while (p.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await p.close();
    await assert.rejects(pending, TypeError);
    assert.ok(Date.now() - started < 1000);
  });

  test('a hanging reply does not keep the process alive after close()', async () => {
    const providerUrl = new URL('../../examples/model-door/provider.ts', import.meta.url).href;
    const program = `
      import { startMockProvider } from ${JSON.stringify(providerUrl)};
      const p = await startMockProvider({ script: () => ({ hangMs: 60_000, delayMs: 60_000 }) });
      const body = JSON.stringify({ model: 'm', messages: [] });
      const pending = fetch(p.url + '/v1/chat/completions', { method: 'POST', body }).catch(() => 'rejected');
      while (p.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      await p.close();
      console.log(await pending);
    `;
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', program], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 4000);
    const [code] = (await once(child, 'exit')) as [number | null];
    clearTimeout(killer);
    assert.equal(code, 0, 'exited by itself, not killed');
    assert.equal(out.trim(), 'rejected');
    assert.ok(Date.now() - started < 3000, 'the process exits on its own');
  });

  test('a script that throws or returns a bad reply is a 500 in the provider shape', async () => {
    await withProvider(undefined, async (p, openai, anthropic) => {
      p.setScript(() => {
        throw new Error('boom');
      });
      await assert.rejects(openai.chat.completions.create({ model: GPT, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
        assert.ok(err instanceof OpenAI.InternalServerError);
        assert.match(err.message, /mock script failed: boom/);
        return true;
      });
      p.setScript(() => ({ chunkChars: 0 }));
      await assert.rejects(anthropic.messages.create({ model: CLAUDE, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (err: unknown) => {
        assert.ok(err instanceof Anthropic.InternalServerError);
        assert.equal(err.status, 500);
        assert.equal(err.type, 'api_error');
        assert.match(err.message, /chunkChars/);
        return true;
      });
    });
  });

  test('options are validated', async () => {
    await assert.rejects(startMockProvider({ host: '0.0.0.0' }), RangeError);
    await assert.rejects(startMockProvider({ port: 70000 }), RangeError);
    await assert.rejects(startMockProvider({ apiKey: '' }), TypeError);
  });
});

describe('helpers and CLI', () => {
  test('lastUserText reads strings and text parts of the last user message', () => {
    assert.equal(lastUserText('openai', { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] }), 'a');
    assert.equal(
      lastUserText('anthropic', { messages: [{ role: 'user', content: [{ type: 'image', source: {} }, { type: 'text', text: 'x' }, { type: 'text', text: 'y' }] }] }),
      'xy',
    );
    assert.equal(lastUserText('openai', { messages: [{ role: 'system', content: 's' }] }), '');
    assert.equal(lastUserText('openai', null), '');
    assert.equal(lastUserText('anthropic', { messages: 'nope' }), '');
    assert.deepEqual(echoScript({ provider: 'openai', body: { messages: [{ role: 'user', content: 'q' }] }, headers: {} }), { text: 'You said: q' });
  });

  test('the CLI listens, enforces the key from the named env variable and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../examples/model-door/provider.ts'), '--port', '0', '--api-key-env', 'MOCK_PROVIDER_KEY'], {
      env: { ...process.env, MOCK_PROVIDER_KEY: KEY },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: child.stdout });
      const [line] = (await once(lines, 'line')) as [string];
      const m = /^mock provider listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      assert.ok(m, `banner: ${line}`);
      const url = m[1] ?? '';
      assert.equal((await fetch(`${url}/v1/models`)).status, 401);
      assert.equal((await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } })).status, 200);
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = (await exited) as [number | null];
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
