/**
 * A local stand-in for the OpenAI and Anthropic HTTP APIs, for the model door's tests, demo and
 * benchmark. It speaks the providers' real wire formats (as typed by the installed `openai` and
 * `@anthropic-ai/sdk` clients, which the type-only imports below check at compile time), so the
 * official SDKs can be pointed straight at it:
 *
 * - `POST /v1/chat/completions`: a `chat.completion`, or with `stream: true` an SSE stream of
 *   `chat.completion.chunk` objects ending in `data: [DONE]`.
 * - `POST /v1/messages`: a Message, or with `stream: true` Anthropic's named SSE events
 *   (`message_start`, `content_block_start`, `ping`, `content_block_delta`, `content_block_stop`,
 *   `message_delta`, `message_stop`).
 * - `GET /v1/models`: the OpenAI list, or the Anthropic page when the request carries an
 *   `anthropic-version` header.
 *
 * What the model "says" comes from a script (default: {@link echoScript}); a script can also ask for
 * a provider-shaped error, a hang, a slow or cut stream. Every request is recorded, headers included,
 * so a test can assert which credential arrived upstream and what text the model saw.
 *
 * Run as a program: `node examples/model-door/provider.ts [--port N] [--api-key-env NAME]`.
 * It listens on 127.0.0.1 only, prints `mock provider listening on <url>` and stops on SIGINT/SIGTERM.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type Anthropic from '@anthropic-ai/sdk';
import type OpenAI from 'openai';
import { constantTimeEqual, randomId } from '../../src/util/crypto.ts';

/** Largest request body read, in bytes; a bigger one is answered 413 in the provider's shape. */
const maxBodyBytes = 8 * 1024 * 1024;
/** Streamed text and tool-argument delta size, in characters (code points), when a reply names none. */
const defaultChunkChars = 4;
/** Hosts the mock may bind: loopback only. */
const loopbackHosts = new Set(['127.0.0.1', '::1', 'localhost']);

const openaiModels = ['gpt-4o-mini', 'gpt-4.1'] as const;
const anthropicModels = [
  { id: 'claude-sonnet-4-6', display_name: 'Claude Sonnet 4.6' },
  { id: 'claude-haiku-4-5', display_name: 'Claude Haiku 4.5' },
] as const;

/** One request as it reached the mock provider. */
export interface ProviderRequest {
  /** The request target as sent: path plus query string, e.g. `/v1/chat/completions`. */
  readonly path: string;
  /** HTTP method, upper-case. */
  readonly method: string;
  /** Request headers with lower-case names; repeated headers joined with `, `. */
  readonly headers: Readonly<Record<string, string>>;
  /** The body parsed as JSON, or `undefined` when it is empty or not JSON. */
  readonly body: unknown;
  /** The body as UTF-8 text (empty when the body was over the size limit). */
  readonly raw: string;
}

/** A tool call the scripted model makes. */
export interface ProviderToolCall {
  readonly name: string;
  /** Sent as a JSON string (OpenAI `function.arguments`) or an object (Anthropic `input`). */
  readonly arguments: Record<string, unknown>;
}

/** What the scripted model answers to one request. Every field is optional. */
export interface ProviderReply {
  /** Assistant text. With neither text nor tool calls the reply is an empty text. */
  text?: string;
  /** Tool calls, after the text; their presence makes the stop reason `tool_calls` / `tool_use`. */
  toolCalls?: readonly ProviderToolCall[];
  /** Answer with an error in the provider's shape instead: an integer 400-599. */
  status?: number;
  /** The error's `type` (default from the status, e.g. `rate_limit_error` / `server_error`). */
  errorType?: string;
  /** The error's `message` (default: a fixed text per status). */
  errorMessage?: string;
  /** Wait this long, in ms, before answering anything (for timeout tests). Ends early on close(). */
  hangMs?: number;
  /** Streaming: text and argument delta size in characters (code points); default 4. */
  chunkChars?: number;
  /** Streaming: destroy the socket after this many SSE events (a cut stream); 0 cuts after the headers. */
  cutAfterEvents?: number;
  /** Streaming: wait this long, in ms, between events. */
  delayMs?: number;
  /** Token counts to report; default `ceil(characters / 4)` of the request's message text and of the reply. */
  usage?: { input: number; output: number };
}

/** Which wire format a request used. */
export type ProviderFormat = 'openai' | 'anthropic';

/**
 * Decides the reply to one chat request. `body` is the parsed request JSON (an object with a
 * `messages` array); `headers` has lower-case names. A script that throws is answered 500.
 */
export type ProviderScript = (req: {
  provider: ProviderFormat;
  // `any`: scripts are test code that reads provider-specific request fields freely.
  body: any;
  headers: Readonly<Record<string, string>>;
}) => ProviderReply | Promise<ProviderReply>;

/** A running mock provider. */
export interface MockProvider {
  /** Base URL without `/v1`, e.g. `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Every request received, in arrival order (including rejected ones). */
  readonly requests: ProviderRequest[];
  /** Replace the script used for the following requests. */
  setScript(script: ProviderScript): void;
  /** Stop listening, end open sockets (including hanging and streaming ones) and resolve once closed. */
  close(): Promise<void>;
}

/**
 * The text of the last `user` message of an OpenAI or Anthropic request body: its string content,
 * or its `text` parts concatenated (other parts, such as images or tool results, are skipped).
 * Returns `''` when there is none or the body is not shaped like a chat request.
 */
export function lastUserText(provider: ProviderFormat, body: unknown): string {
  void provider; // both formats keep user text in `messages[].content` as a string or `text` parts
  const messages = isRecord(body) ? body.messages : undefined;
  if (!Array.isArray(messages)) return '';
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const message: unknown = messages[i];
    if (isRecord(message) && message.role === 'user') return contentText(message.content);
  }
  return '';
}

/** Default script: replies `You said: <text of the last user message>`, so a test sees exactly what the model saw. */
export const echoScript: ProviderScript = ({ provider, body }) => ({ text: `You said: ${lastUserText(provider, body)}` });

/**
 * Start a mock provider on `host` (default `127.0.0.1`; loopback only) and `port` (default 0: an
 * ephemeral port). With `apiKey`, OpenAI-format requests must carry `Authorization: Bearer <apiKey>`
 * and Anthropic-format ones `x-api-key: <apiKey>` (or the Bearer form), else they get 401.
 * @throws RangeError when `host` is not a loopback name or address, or `port` is not an integer 0-65535.
 * @throws TypeError when `apiKey` is an empty string.
 */
export async function startMockProvider(opts: { host?: string; port?: number; apiKey?: string; script?: ProviderScript } = {}): Promise<MockProvider> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 0;
  if (!loopbackHosts.has(host)) throw new RangeError('startMockProvider: host must be a loopback address');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('startMockProvider: port must be an integer 0-65535');
  if (opts.apiKey !== undefined && opts.apiKey === '') throw new TypeError('startMockProvider: apiKey must be a non-empty string');

  const requests: ProviderRequest[] = [];
  const closing = new AbortController();
  const state: ServerState = { apiKey: opts.apiKey, script: opts.script ?? echoScript, requests, closing: closing.signal };
  const server = createServer((req, res) => {
    handleRequest(state, req, res).catch((err: unknown) => {
      // Only a bug in the mock itself lands here; answer something rather than leave the client waiting.
      if (!res.headersSent && !res.destroyed) sendJson(res, 500, { error: { message: `mock provider failed: ${errorMessage(err)}`, type: 'server_error', param: null, code: null } });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('startMockProvider: server has no TCP address');
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  let closed: Promise<void> | undefined;
  return {
    url,
    requests,
    setScript(script: ProviderScript): void {
      state.script = script;
    },
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve, reject) => {
        closing.abort();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

interface ServerState {
  readonly apiKey: string | undefined;
  script: ProviderScript;
  readonly requests: ProviderRequest[];
  readonly closing: AbortSignal;
}

type Route = 'chat-completions' | 'messages' | 'models';

interface ReadBody {
  readonly raw: string;
  readonly tooLarge: boolean;
}

async function handleRequest(state: ServerState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? '/';
  const pathname = new URL(target, 'http://mock.invalid').pathname;
  const method = (req.method ?? 'GET').toUpperCase();
  const headers = lowerCaseHeaders(req);
  const { raw, tooLarge } = await readBody(req);
  const body = parseJson(raw);
  state.requests.push(Object.freeze({ path: target, method, headers: Object.freeze(headers), body, raw }));

  const route = routeOf(method, pathname);
  const format: ProviderFormat = route === 'messages' || (route !== 'chat-completions' && headers['anthropic-version'] !== undefined) ? 'anthropic' : 'openai';
  if (route === undefined) {
    const message = format === 'openai' ? `Invalid URL (${method} ${pathname})` : 'Not Found';
    sendError(res, format, 404, undefined, message);
    return;
  }
  if (state.apiKey !== undefined && !isAuthorized(format, headers, state.apiKey)) {
    const message = format === 'openai' ? 'Incorrect API key provided.' : 'invalid x-api-key';
    sendError(res, format, 401, undefined, message);
    return;
  }
  if (route === 'models') {
    sendJson(res, 200, format === 'openai' ? openaiModelList() : anthropicModelList(), format);
    return;
  }
  if (tooLarge) {
    sendError(res, format, 413, undefined, `Request body exceeds ${maxBodyBytes} bytes.`);
    return;
  }
  const invalid = checkChatBody(format, body);
  if (invalid !== undefined) {
    sendError(res, format, 400, undefined, invalid);
    return;
  }

  // Ends waits when the server closes or the client goes away, so no timer outlives either.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const signal = AbortSignal.any([state.closing, gone.signal]);

  let reply: ProviderReply;
  try {
    reply = await state.script({ provider: format, body, headers });
  } catch (err) {
    sendError(res, format, 500, undefined, `mock script failed: ${errorMessage(err)}`);
    return;
  }
  const bad = checkReply(reply);
  if (bad !== undefined) {
    sendError(res, format, 500, undefined, `invalid mock reply: ${bad}`);
    return;
  }
  if (reply.hangMs !== undefined && reply.hangMs > 0 && !(await wait(reply.hangMs, signal))) return;
  if (reply.status !== undefined) {
    sendError(res, format, reply.status, reply.errorType, reply.errorMessage);
    return;
  }

  const chatBody = body as Record<string, unknown>;
  const model = typeof chatBody.model === 'string' ? chatBody.model : 'mock-model';
  const usage = reply.usage ?? { input: estimateTokens(requestTextLength(chatBody)), output: estimateTokens(replyTextLength(reply)) };
  const streamed = chatBody.stream === true;
  if (format === 'openai') {
    if (!streamed) sendJson(res, 200, openaiCompletion(model, reply, usage), format);
    else {
      const streamOptions = chatBody.stream_options;
      const includeUsage = isRecord(streamOptions) && streamOptions.include_usage === true;
      await sendStream(res, format, openaiChunks(model, reply, usage, includeUsage), reply, signal);
    }
  } else if (!streamed) sendJson(res, 200, anthropicMessage(model, reply, usage), format);
  else await sendStream(res, format, anthropicEvents(model, reply, usage), reply, signal);
}

function routeOf(method: string, pathname: string): Route | undefined {
  if (method === 'POST' && pathname === '/v1/chat/completions') return 'chat-completions';
  if (method === 'POST' && pathname === '/v1/messages') return 'messages';
  if (method === 'GET' && pathname === '/v1/models') return 'models';
  return undefined;
}

function isAuthorized(format: ProviderFormat, headers: Readonly<Record<string, string>>, apiKey: string): boolean {
  const bearer = headers.authorization;
  const bearerOk = bearer !== undefined && constantTimeEqual(bearer, `Bearer ${apiKey}`);
  if (format === 'openai') return bearerOk;
  const key = headers['x-api-key'];
  return bearerOk || (key !== undefined && constantTimeEqual(key, apiKey));
}

/** A request problem in the provider's words, or undefined when the body is a usable chat request. */
function checkChatBody(format: ProviderFormat, body: unknown): string | undefined {
  if (body === undefined) return format === 'openai' ? 'We could not parse the JSON body of your request.' : 'There was an error parsing the body of your request.';
  if (!isRecord(body)) return 'The request body must be a JSON object.';
  if (typeof body.model !== 'string') return 'model: field required';
  if (!Array.isArray(body.messages)) return 'messages: field required';
  if (format === 'anthropic' && !(Number.isInteger(body.max_tokens) && (body.max_tokens as number) > 0)) return 'max_tokens: field required';
  return undefined;
}

function checkReply(reply: unknown): string | undefined {
  if (!isRecord(reply)) return 'the script must return an object';
  const r = reply as ProviderReply;
  if (r.text !== undefined && typeof r.text !== 'string') return 'text must be a string';
  if (r.toolCalls !== undefined) {
    if (!Array.isArray(r.toolCalls)) return 'toolCalls must be an array';
    for (const call of r.toolCalls as unknown[]) {
      if (!isRecord(call) || typeof call.name !== 'string' || call.name === '' || !isRecord(call.arguments)) return 'each tool call needs a name and an arguments object';
    }
  }
  if (r.status !== undefined && !(Number.isInteger(r.status) && r.status >= 400 && r.status <= 599)) return 'status must be an integer 400-599';
  if (r.errorType !== undefined && typeof r.errorType !== 'string') return 'errorType must be a string';
  if (r.errorMessage !== undefined && typeof r.errorMessage !== 'string') return 'errorMessage must be a string';
  if (!isCount(r.hangMs)) return 'hangMs must be a non-negative integer (ms)';
  if (!isCount(r.delayMs)) return 'delayMs must be a non-negative integer (ms)';
  if (!isCount(r.cutAfterEvents)) return 'cutAfterEvents must be a non-negative integer';
  if (r.chunkChars !== undefined && !(Number.isInteger(r.chunkChars) && r.chunkChars > 0)) return 'chunkChars must be a positive integer';
  if (r.usage !== undefined && !(isRecord(r.usage) && isCount(r.usage.input) && isCount(r.usage.output))) return 'usage needs non-negative integer input and output';
  return undefined;
}

function isCount(v: unknown): boolean {
  return v === undefined || (Number.isInteger(v) && (v as number) >= 0);
}

// ---- OpenAI chat completions ----

interface Tokens {
  readonly input: number;
  readonly output: number;
}

function openaiUsage(usage: Tokens): OpenAI.CompletionUsage {
  return {
    prompt_tokens: usage.input,
    completion_tokens: usage.output,
    total_tokens: usage.input + usage.output,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
  };
}

function openaiCompletion(model: string, reply: ProviderReply, usage: Tokens): OpenAI.ChatCompletion {
  const calls = reply.toolCalls ?? [];
  const message: OpenAI.ChatCompletionMessage = {
    role: 'assistant',
    // OpenAI sends null content when the model only calls tools.
    content: reply.text ?? (calls.length > 0 ? null : ''),
    refusal: null,
    annotations: [],
  };
  if (calls.length > 0) {
    message.tool_calls = calls.map((call) => ({ id: `call_${randomChars(24)}`, type: 'function' as const, function: { name: call.name, arguments: JSON.stringify(call.arguments) } }));
  }
  return {
    id: `chatcmpl-${randomChars(29)}`,
    object: 'chat.completion',
    created: nowSeconds(),
    model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: calls.length > 0 ? 'tool_calls' : 'stop' }],
    usage: openaiUsage(usage),
    service_tier: 'default',
    system_fingerprint: 'fp_mock',
  };
}

/** The `data:` payloads of an OpenAI chat completion stream, in order, ending with `[DONE]`. */
function openaiChunks(model: string, reply: ProviderReply, usage: Tokens, includeUsage: boolean): string[] {
  const id = `chatcmpl-${randomChars(29)}`;
  const created = nowSeconds();
  const size = reply.chunkChars ?? defaultChunkChars;
  const calls = reply.toolCalls ?? [];
  const chunk = (choices: OpenAI.ChatCompletionChunk.Choice[], usageValue?: OpenAI.CompletionUsage): string => {
    const c: OpenAI.ChatCompletionChunk = { id, object: 'chat.completion.chunk', created, model, service_tier: 'default', system_fingerprint: 'fp_mock', choices };
    // With include_usage every chunk carries `usage: null` until the last one, as OpenAI does.
    if (includeUsage) c.usage = usageValue ?? null;
    return JSON.stringify(c);
  };
  const delta = (d: OpenAI.ChatCompletionChunk.Choice.Delta, finish: OpenAI.ChatCompletionChunk.Choice['finish_reason'] = null): string =>
    chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);

  const text = reply.text ?? (calls.length > 0 ? undefined : '');
  const out = [delta({ role: 'assistant', content: text === undefined ? null : '', refusal: null })];
  for (const piece of splitChars(text ?? '', size)) out.push(delta({ content: piece }));
  calls.forEach((call, index) => {
    out.push(delta({ tool_calls: [{ index, id: `call_${randomChars(24)}`, type: 'function', function: { name: call.name, arguments: '' } }] }));
    for (const piece of splitChars(JSON.stringify(call.arguments), size)) out.push(delta({ tool_calls: [{ index, function: { arguments: piece } }] }));
  });
  out.push(delta({}, calls.length > 0 ? 'tool_calls' : 'stop'));
  if (includeUsage) out.push(chunk([], openaiUsage(usage)));
  out.push('[DONE]');
  return out;
}

function openaiModelList(): { object: 'list'; data: OpenAI.Model[] } {
  return { object: 'list', data: openaiModels.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'system' })) };
}

// ---- Anthropic messages ----

function anthropicUsage(usage: Tokens, output: number): Anthropic.Usage {
  return {
    input_tokens: usage.input,
    output_tokens: output,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
    inference_geo: null,
    output_tokens_details: null,
    server_tool_use: null,
    service_tier: 'standard',
    speed: null,
  };
}

interface AnthropicBlocks {
  readonly text: string | undefined;
  readonly tools: readonly { readonly id: string; readonly call: ProviderToolCall }[];
  readonly stopReason: 'end_turn' | 'tool_use';
}

function anthropicBlocks(reply: ProviderReply): AnthropicBlocks {
  const calls = reply.toolCalls ?? [];
  return {
    // Anthropic sends no text block when the model goes straight to a tool call.
    text: reply.text ?? (calls.length > 0 ? undefined : ''),
    tools: calls.map((call) => ({ id: `toolu_${randomChars(24)}`, call })),
    stopReason: calls.length > 0 ? 'tool_use' : 'end_turn',
  };
}

function anthropicMessage(model: string, reply: ProviderReply, usage: Tokens): Anthropic.Message {
  const blocks = anthropicBlocks(reply);
  const content: Anthropic.ContentBlock[] = [];
  if (blocks.text !== undefined) content.push({ type: 'text', text: blocks.text, citations: null });
  for (const { id, call } of blocks.tools) content.push({ type: 'tool_use', id, name: call.name, input: call.arguments, caller: { type: 'direct' } });
  return {
    id: `msg_${randomChars(24)}`,
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: blocks.stopReason,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: anthropicUsage(usage, usage.output),
  };
}

/** The `event:`/`data:` pairs of an Anthropic message stream, in order. */
function anthropicEvents(model: string, reply: ProviderReply, usage: Tokens): [string, string][] {
  const blocks = anthropicBlocks(reply);
  const size = reply.chunkChars ?? defaultChunkChars;
  const out: [string, string][] = [];
  const push = (event: Anthropic.RawMessageStreamEvent): void => {
    out.push([event.type, JSON.stringify(event)]);
  };
  const message: Anthropic.Message = {
    id: `msg_${randomChars(24)}`,
    type: 'message',
    role: 'assistant',
    model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    stop_details: null,
    container: null,
    diagnostics: null,
    usage: anthropicUsage(usage, Math.min(1, usage.output)),
  };
  push({ type: 'message_start', message });
  let index = 0;
  const pingOnce = (): void => {
    // Anthropic sends one ping after the first content block starts.
    if (index === 0) out.push(['ping', JSON.stringify({ type: 'ping' })]);
  };
  if (blocks.text !== undefined) {
    push({ type: 'content_block_start', index, content_block: { type: 'text', text: '', citations: null } });
    pingOnce();
    for (const piece of splitChars(blocks.text, size)) push({ type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
    push({ type: 'content_block_stop', index });
    index += 1;
  }
  for (const { id, call } of blocks.tools) {
    push({ type: 'content_block_start', index, content_block: { type: 'tool_use', id, name: call.name, input: {}, caller: { type: 'direct' } } });
    pingOnce();
    // The first input_json_delta Anthropic sends is empty; the JSON text follows in fragments.
    push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: '' } });
    for (const piece of splitChars(JSON.stringify(call.arguments), size)) push({ type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
    push({ type: 'content_block_stop', index });
    index += 1;
  }
  push({
    type: 'message_delta',
    delta: { stop_reason: blocks.stopReason, stop_sequence: null, stop_details: null, container: null },
    usage: { input_tokens: usage.input, output_tokens: usage.output, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens_details: null, server_tool_use: null },
  });
  push({ type: 'message_stop' });
  return out;
}

interface AnthropicModelPage {
  readonly data: Anthropic.ModelInfo[];
  readonly has_more: boolean;
  readonly first_id: string | null;
  readonly last_id: string | null;
}

function anthropicModelList(): AnthropicModelPage {
  const data = anthropicModels.map(
    (m): Anthropic.ModelInfo => ({
      type: 'model',
      id: m.id,
      display_name: m.display_name,
      created_at: '2025-09-29T00:00:00Z',
      capabilities: null,
      deprecated_at: null,
      lifecycle: 'active',
      line: null,
      max_input_tokens: null,
      max_tokens: null,
      retires_at: null,
    }),
  );
  return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
}

// ---- errors ----

const openaiErrorDefaults: Readonly<Record<number, { type: string; code: string | null; message: string }>> = {
  400: { type: 'invalid_request_error', code: null, message: 'Invalid request.' },
  401: { type: 'invalid_request_error', code: 'invalid_api_key', message: 'Incorrect API key provided.' },
  403: { type: 'invalid_request_error', code: 'unsupported_country_region_territory', message: 'Request not allowed.' },
  404: { type: 'invalid_request_error', code: null, message: 'Not found.' },
  413: { type: 'invalid_request_error', code: null, message: 'Request too large.' },
  429: { type: 'requests', code: 'rate_limit_exceeded', message: 'Rate limit reached for requests.' },
  500: { type: 'server_error', code: null, message: 'The server had an error while processing your request. Sorry about that!' },
  503: { type: 'server_error', code: null, message: 'The engine is currently overloaded, please try again later.' },
};

const anthropicErrorDefaults: Readonly<Record<number, { type: string; message: string }>> = {
  400: { type: 'invalid_request_error', message: 'Invalid request.' },
  401: { type: 'authentication_error', message: 'invalid x-api-key' },
  403: { type: 'permission_error', message: 'Your API key does not have permission to use the specified resource.' },
  404: { type: 'not_found_error', message: 'Not Found' },
  413: { type: 'request_too_large', message: 'Request exceeds the maximum allowed number of bytes.' },
  429: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit.' },
  500: { type: 'api_error', message: 'Internal server error' },
  529: { type: 'overloaded_error', message: 'Overloaded' },
};

/** Answer `status` with the provider's error body: OpenAI `{error:{message,type,param,code}}`, Anthropic `{type:'error',error:{type,message}}`. */
function sendError(res: ServerResponse, format: ProviderFormat, status: number, type: string | undefined, message: string | undefined): void {
  if (format === 'openai') {
    const d = openaiErrorDefaults[status] ?? openaiErrorDefaults[status >= 500 ? 500 : 400];
    sendJson(res, status, { error: { message: message ?? d?.message ?? 'Error.', type: type ?? d?.type ?? 'invalid_request_error', param: null, code: type === undefined ? (d?.code ?? null) : null } }, format);
    return;
  }
  const d = anthropicErrorDefaults[status] ?? anthropicErrorDefaults[status >= 500 ? 500 : 400];
  sendJson(res, status, { type: 'error', error: { type: type ?? d?.type ?? 'api_error', message: message ?? d?.message ?? 'Error.' }, request_id: requestId() }, format);
}

// ---- HTTP plumbing ----

function sendJson(res: ServerResponse, status: number, value: unknown, format?: ProviderFormat): void {
  if (res.destroyed) return;
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...requestIdHeader(format) });
  res.end(text);
}

function requestIdHeader(format: ProviderFormat | undefined): Record<string, string> {
  if (format === undefined) return {};
  return format === 'openai' ? { 'x-request-id': requestId() } : { 'request-id': requestId() };
}

/**
 * Write SSE events: OpenAI's are bare `data:` payloads, Anthropic's `[event, data]` pairs. Honors
 * `delayMs` between events and `cutAfterEvents` (destroys the socket once that many are written).
 */
async function sendStream(res: ServerResponse, format: ProviderFormat, events: readonly (string | readonly [string, string])[], reply: ProviderReply, signal: AbortSignal): Promise<void> {
  if (res.destroyed) return;
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', ...requestIdHeader(format) });
  res.flushHeaders();
  const cut = reply.cutAfterEvents;
  for (let i = 0; i < events.length; i += 1) {
    if (cut !== undefined && i >= cut) break;
    if (i > 0 && reply.delayMs !== undefined && reply.delayMs > 0 && !(await wait(reply.delayMs, signal))) return;
    const e = events[i];
    const frame = typeof e === 'string' ? `data: ${e}\n\n` : `event: ${e?.[0]}\ndata: ${e?.[1]}\n\n`;
    if (!(await write(res, frame))) return;
  }
  // A cut stream ends the connection without the terminating chunk, as a dropped upstream would.
  if (cut !== undefined) res.socket?.destroy();
  else res.end();
}

/** Resolves true once `frame` is handed to the socket, false when the response is gone. */
function write(res: ServerResponse, frame: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    res.write(frame, (err) => resolve(err === undefined || err === null));
  });
}

/** Sleep `ms`; resolves false instead when `signal` aborts first. */
async function wait(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

function readBody(req: IncomingMessage): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > maxBodyBytes) tooLarge = true;
      else chunks.push(chunk);
    });
    req.once('end', () => resolve({ raw: tooLarge ? '' : Buffer.concat(chunks).toString('utf8'), tooLarge }));
    req.once('error', reject);
  });
}

function lowerCaseHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function parseJson(raw: string): unknown {
  if (raw.trim() === '') return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

// ---- small helpers ----

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A message's text: its string content, or its `{type:'text', text}` parts concatenated. */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content as unknown[]) {
    if (isRecord(part) && part.type === 'text' && typeof part.text === 'string') text += part.text;
  }
  return text;
}

/** Characters of text in the request's messages (any role) and Anthropic `system`. */
function requestTextLength(body: Record<string, unknown>): number {
  let n = contentText(body.system).length;
  const messages = body.messages;
  if (Array.isArray(messages)) {
    for (const m of messages as unknown[]) if (isRecord(m)) n += contentText(m.content).length;
  }
  return n;
}

function replyTextLength(reply: ProviderReply): number {
  let n = reply.text?.length ?? 0;
  for (const call of reply.toolCalls ?? []) n += call.name.length + JSON.stringify(call.arguments).length;
  return n;
}

function estimateTokens(chars: number): number {
  return Math.ceil(chars / 4);
}

/** Split into pieces of `size` code points (never inside a surrogate pair). */
function splitChars(text: string, size: number): string[] {
  const points = Array.from(text);
  const out: string[] = [];
  for (let i = 0; i < points.length; i += size) out.push(points.slice(i, i + size).join(''));
  return out;
}

function randomChars(n: number): string {
  let s = '';
  while (s.length < n) s += randomId().replaceAll('-', '');
  return s.slice(0, n);
}

function requestId(): string {
  return `req_${randomChars(24)}`;
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- CLI ----

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    options: { port: { type: 'string' }, 'api-key-env': { type: 'string' }, help: { type: 'boolean' } },
    strict: true,
  });
  if (values.help === true) {
    process.stdout.write('usage: node examples/model-door/provider.ts [--port N] [--api-key-env NAME]\n');
    return;
  }
  const port = values.port === undefined ? 0 : Number(values.port);
  let apiKey: string | undefined;
  const keyEnv = values['api-key-env'];
  if (keyEnv !== undefined) {
    apiKey = process.env[keyEnv];
    if (apiKey === undefined || apiKey === '') throw new TypeError(`--api-key-env: environment variable ${keyEnv} is not set`);
  }
  const provider = await startMockProvider({ port, ...(apiKey === undefined ? {} : { apiKey }) });
  process.stdout.write(`mock provider listening on ${provider.url}\n`);
  const stop = (): void => {
    provider.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (import.meta.main) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`mock provider: ${errorMessage(err)}\n`);
    process.exit(2);
  });
}
