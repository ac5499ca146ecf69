/**
 * The model door's answer filter: what the provider answers passes here before
 * the agent sees it. Credentials the detector finds and the end user's known
 * secret values are redacted from the assistant's text, its reasoning text and
 * its tool calls' arguments; tool calls naming a tool the agent may not use are
 * removed (and recorded); usage is read for accounting. Whole answers
 * ({@link filterResponse}) and SSE streams ({@link StreamFilter}) of OpenAI
 * Chat Completions and Anthropic Messages.
 *
 * Shapes (OpenAI API reference "The chat completion object" and "The chat
 * completion chunk object"; Anthropic API reference "Messages" and "Streaming
 * Messages"):
 * - OpenAI: `choices[].message.{content, refusal, tool_calls[].function.{name,
 *   arguments}, function_call}`, `finish_reason`, `usage.{prompt_tokens,
 *   completion_tokens}`; streamed as `data: {chat.completion.chunk}` events with
 *   `choices[].delta` and a final `data: [DONE]`.
 * - Anthropic: `content[]` blocks (`text`, `tool_use` with `name` and `input`,
 *   `thinking`), `stop_reason`, `usage.{input_tokens, output_tokens}`; streamed
 *   as named events `message_start`, `content_block_start` / `_delta` / `_stop`,
 *   `message_delta`, `message_stop`, `ping`, `error`.
 *
 * Streams: every text channel (a choice's `content`, `refusal` and any other
 * string field of its delta; each content block; each tool call's arguments)
 * has its own streaming redactor (src/model/redact-text.ts), so a credential
 * cut across events is still found, and what the agent receives concatenates to
 * the non-streaming redaction. A channel's held text is flushed in an event
 * placed before the one that ends it (`finish_reason`, `content_block_stop`).
 * Removed tool calls vanish entirely and the indexes after them are renumbered,
 * so the client sees no gap; `finish_reason: "tool_calls"` becomes `"stop"` and
 * `stop_reason: "tool_use"` becomes `"end_turn"` when no tool call is left.
 *
 * Fail closed: an answer or event of a shape this filter does not know how to
 * redact (not JSON, no `choices`/`content`, a tool call without a name, an
 * unknown content delta type) throws `BastionError('ERR_MODEL_UPSTREAM')`
 * rather than pass unfiltered. Token log probabilities (`logprobs`) are
 * replaced by null: they spell the answer out token by token, around any
 * redaction. Object-valued fields this filter does not stream (citations,
 * annotations, provider extras) are redacted per event, string by string.
 * Anthropic server tools (`server_tool_use`, run by the provider, not the
 * agent) are redacted but not removed. Messages of the errors thrown name the
 * field at fault, never its content.
 */
import { createParser, type EventSourceMessage, type EventSourceParser } from 'eventsource-parser';
import { BastionError } from '../errors.ts';
import {
  redactJsonText,
  redactText,
  redactValue,
  StreamingJsonRedactor,
  StreamingTextRedactor,
  type TextRedaction,
  type TextRedactionOptions,
} from './redact-text.ts';
import type { ProviderKind } from './wire.ts';

export type { ProviderKind };

/** What the filter removes: known secret values, and the tools the agent may not use. */
export interface ResponseFilter {
  /** Known secret values (the end user's vaulted secrets, the provider key), redacted as `[REDACTED:vault-secret]`. */
  readonly values?: readonly string[];
  /** Whether the agent may use tool `name`; a call of any other tool is removed. A predicate that throws denies. */
  readonly allowTool: (name: string) => boolean;
  /**
   * Streams only: called with each piece of redacted text as it goes to the
   * client, and its channel (`<choice>:<field>`, `<choice>:tool:<index>`,
   * `<choice>:function_call`, `block:<index>`), e.g. to compare the answer
   * with the system prompt as it streams. Pieces of one channel concatenate to
   * what the client gets in it. An exception is the caller's own.
   */
  readonly observe?: (channel: string, text: string) => void;
}

/** What the filter saw and did, for the audit record, accounting and the supervisor. */
export interface ResponseReport {
  /** Spans redacted (credentials, known values, too-deep subtrees). */
  redactions: number;
  /** Rules of the redacted spans, each once. */
  rules: string[];
  /** Names of the tool calls removed, in order. */
  removedTools: string[];
  /** Names of the tool calls kept, in order. */
  toolCalls: string[];
  /** Tokens the provider counted, when it said: OpenAI prompt/completion tokens, Anthropic input/output tokens. */
  usage: { input: number; output: number } | null;
  /** The assistant's text as the agent got it (OpenAI: the choices' `content`, joined by newlines; Anthropic: the text blocks). */
  text: string;
  /** Whether the answer was whole: always for {@link filterResponse}; for a stream, `[DONE]` (or every choice finished) or `message_stop` arrived. */
  complete: boolean;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function upstream(message: string): BastionError {
  return new BastionError('ERR_MODEL_UPSTREAM', message);
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

/**
 * Fields passed as they are by {@link Tally.fields}: the structure a client
 * parses by (types, indexes, identifiers, roles, stop reasons) and opaque
 * signatures, which a marker would break.
 */
const OPAQUE_KEYS: ReadonlySet<string> = new Set(['type', 'index', 'id', 'object', 'role', 'created', 'signature', 'finish_reason', 'stop_reason', 'tool_call_id', 'tool_use_id']);

/** Redaction totals and tool decisions shared by the whole and streamed paths. */
class Tally {
  readonly opts: TextRedactionOptions;
  readonly #allowTool: (name: string) => boolean;
  readonly observe: ((channel: string, text: string) => void) | undefined;
  redactions = 0;
  readonly rules = new Set<string>();
  readonly removed: string[] = [];
  readonly kept: string[] = [];
  usage: { input: number; output: number } | null = null;

  constructor(filter: ResponseFilter) {
    if (typeof filter?.allowTool !== 'function') throw new TypeError('filter.allowTool must be a function');
    this.opts = { values: filter.values ?? [] };
    this.#allowTool = filter.allowTool;
    this.observe = filter.observe;
  }

  /**
   * Decides on a tool call and records it. Fails closed: a throwing or
   * non-boolean predicate denies, and so does a name holding a credential or a
   * known value (a name is passed as it is, so it cannot be redacted).
   */
  allow(name: string): boolean {
    let ok = false;
    const inName = redactText(name, this.opts);
    if (inName.count > 0) this.absorb(inName);
    else {
      try {
        ok = this.#allowTool(name) === true;
      } catch {
        ok = false;
      }
    }
    (ok ? this.kept : this.removed).push(name);
    return ok;
  }

  absorb(r: { readonly count: number; readonly rules: readonly string[] }): void {
    this.redactions += r.count;
    for (const id of r.rules) this.rules.add(id);
  }

  text(s: string): string {
    const r: TextRedaction = redactText(s, this.opts);
    this.absorb(r);
    return r.text;
  }

  json(s: string): string {
    const r = redactJsonText(s, this.opts);
    this.absorb(r);
    return r.text;
  }

  value(v: unknown): unknown {
    const r = redactValue(v, this.opts);
    this.absorb(r);
    return r.value;
  }

  /**
   * A copy of `obj` with every string of its fields redacted (nested ones
   * too), except the fields in `keep` (channels redacted on their own, tool
   * names already decided) and {@link OPAQUE_KEYS}.
   */
  fields(obj: Json, keep: readonly string[] = []): Json {
    const out: Json = {};
    for (const [k, v] of Object.entries(obj)) {
      if (keep.includes(k) || OPAQUE_KEYS.has(k)) out[k] = v;
      else if (typeof v === 'string') out[k] = this.text(v);
      else if (typeof v === 'object' && v !== null) out[k] = this.value(v);
      else out[k] = v;
    }
    return out;
  }

  report(text: string, complete: boolean): ResponseReport {
    return {
      redactions: this.redactions,
      rules: [...this.rules],
      removedTools: [...this.removed],
      toolCalls: [...this.kept],
      usage: this.usage === null ? null : { ...this.usage },
      text,
      complete,
    };
  }
}

/** The name a tool call carries (OpenAI function or custom tool), or undefined. */
function toolName(tc: Json): unknown {
  if (isObject(tc.function)) return tc.function.name;
  if (isObject(tc.custom)) return tc.custom.name;
  return undefined;
}

// ---------------------------------------------------------------------------
// Whole answers.

/**
 * Filters a whole (non-streamed) answer: `body` is the parsed JSON the
 * provider sent. Returns a new body (the input is not modified) and the report.
 * Throws `BastionError('ERR_MODEL_UPSTREAM')` when the body is not an answer of
 * the provider's shape (no `choices` / `content` array, a message or block that
 * is not an object, a tool call without a name).
 */
export function filterResponse(kind: ProviderKind, body: unknown, filter: ResponseFilter): { body: unknown; report: ResponseReport } {
  const tally = new Tally(filter);
  if (kind === 'openai') {
    if (!isObject(body) || !Array.isArray(body.choices)) throw upstream('the answer has no choices array');
    const out = structuredClone(body) as Json & { choices: unknown[] };
    const texts: string[] = [];
    out.choices.forEach((c, i) => filterOpenAiChoice(c, i, tally, texts));
    readOpenAiUsage(out.usage, tally);
    return { body: { ...tally.fields(out, ['choices']), choices: out.choices }, report: tally.report(texts.join('\n'), true) };
  }
  if (kind === 'anthropic') {
    if (!isObject(body) || !Array.isArray(body.content)) throw upstream('the answer has no content array');
    const out = structuredClone(body) as Json & { content: unknown[] };
    let text = '';
    const kept: unknown[] = [];
    let tools = 0;
    out.content.forEach((block, i) => {
      if (!isObject(block) || typeof block.type !== 'string') throw upstream(`content[${i}] is not a content block`);
      if (block.type === 'tool_use') {
        if (typeof block.name !== 'string' || block.name === '') throw upstream(`content[${i}] is a tool call without a name`);
        if (!tally.allow(block.name)) return;
        tools++;
        Object.assign(block, tally.fields(block, ['name']));
      } else if (block.type === 'text') {
        if (typeof block.text !== 'string') throw upstream(`content[${i}].text is not a string`);
        Object.assign(block, tally.fields(block));
        text += block.text as string;
      } else if (block.type === 'thinking') {
        Object.assign(block, tally.fields(block));
      } else if (block.type !== 'redacted_thinking') {
        // Encrypted thinking is opaque; any other block (server tools and their results) is redacted string by string.
        Object.assign(block, tally.value(block));
      }
      kept.push(block);
    });
    out.content = kept;
    if (out.stop_reason === 'tool_use' && tools === 0) out.stop_reason = 'end_turn';
    readAnthropicUsage(out.usage, tally, true);
    return { body: { ...tally.fields(out, ['content']), content: out.content }, report: tally.report(text, true) };
  }
  throw new TypeError(`filterResponse: unknown provider kind`);
}

/** Filters one OpenAI choice in place. */
function filterOpenAiChoice(c: unknown, i: number, tally: Tally, texts: string[]): void {
  if (!isObject(c) || !isObject(c.message)) throw upstream(`choices[${i}].message is not an object`);
  const msg = c.message;
  for (const [k, v] of Object.entries(msg)) {
    if (k === 'role' || k === 'tool_calls' || k === 'function_call') continue;
    if (typeof v === 'string') msg[k] = tally.text(v);
    else if (typeof v === 'object' && v !== null) msg[k] = tally.value(v);
  }
  if (typeof msg.content === 'string') texts.push(msg.content);
  if (msg.tool_calls !== undefined && msg.tool_calls !== null) {
    if (!Array.isArray(msg.tool_calls)) throw upstream(`choices[${i}].message.tool_calls is not an array`);
    const kept = msg.tool_calls.filter((tc: unknown, j: number) => {
      if (!isObject(tc)) throw upstream(`choices[${i}].message.tool_calls[${j}] is not an object`);
      const name = toolName(tc);
      if (typeof name !== 'string' || name === '') throw upstream(`choices[${i}].message.tool_calls[${j}] has no name`);
      if (!tally.allow(name)) return false;
      Object.assign(tc, tally.fields(tc, ['function', 'custom']));
      if (isObject(tc.function)) Object.assign(tc.function, tally.fields(tc.function, ['name', 'arguments']));
      if (isObject(tc.custom)) Object.assign(tc.custom, tally.fields(tc.custom, ['name', 'input']));
      if (isObject(tc.function)) {
        const args = tc.function.arguments;
        if (typeof args === 'string') tc.function.arguments = tally.json(args);
        else if (args !== undefined && args !== null) tc.function.arguments = tally.value(args);
      }
      if (isObject(tc.custom) && typeof tc.custom.input === 'string') tc.custom.input = tally.text(tc.custom.input);
      return true;
    });
    if (kept.length > 0) msg.tool_calls = kept;
    else delete msg.tool_calls;
    if (c.finish_reason === 'tool_calls' && kept.length === 0) c.finish_reason = 'stop';
  }
  if (msg.function_call !== undefined && msg.function_call !== null) {
    const fc = msg.function_call;
    if (!isObject(fc) || typeof fc.name !== 'string' || fc.name === '') throw upstream(`choices[${i}].message.function_call has no name`);
    if (tally.allow(fc.name)) {
      if (typeof fc.arguments === 'string') fc.arguments = tally.json(fc.arguments);
    } else {
      delete msg.function_call;
      if (c.finish_reason === 'function_call') c.finish_reason = 'stop';
    }
  }
  if (c.logprobs !== undefined && c.logprobs !== null) c.logprobs = null;
  Object.assign(c, tally.fields(c, ['message']));
}

function readOpenAiUsage(u: unknown, tally: Tally): void {
  if (isObject(u)) tally.usage = { input: count(u.prompt_tokens), output: count(u.completion_tokens) };
}

function readAnthropicUsage(u: unknown, tally: Tally, start: boolean): void {
  if (!isObject(u)) return;
  const prev = tally.usage ?? { input: 0, output: 0 };
  tally.usage = {
    input: u.input_tokens !== undefined && u.input_tokens !== null ? count(u.input_tokens) : prev.input,
    output: u.output_tokens !== undefined && u.output_tokens !== null ? count(u.output_tokens) : start ? 0 : prev.output,
  };
}

// ---------------------------------------------------------------------------
// Streams.

/** A redactor of one channel: text or JSON arguments. */
type Channel = StreamingTextRedactor | StreamingJsonRedactor;

interface OpenAiTool {
  readonly name: string;
  readonly allowed: boolean;
  /** The index the client sees (renumbered past removed calls). */
  readonly out: number;
  readonly custom: boolean;
  readonly args: Channel;
  /** Its channel name for `observe`. */
  readonly channel: string;
  ended: boolean;
}

interface OpenAiChoice {
  readonly index: number;
  readonly channels: Map<string, StreamingTextRedactor>;
  readonly tools: Map<number, OpenAiTool>;
  /** The legacy `function_call`, when one began. */
  fn: OpenAiTool | null;
  kept: number;
  finished: boolean;
  content: string;
}

interface AnthropicBlock {
  /** The index the client sees; -1 for a removed block. */
  readonly out: number;
  /** The delta type and field a redacted channel writes to, or null for blocks passed per event. */
  readonly delta: { readonly type: string; readonly field: string } | null;
  readonly channel: Channel | null;
  readonly text: boolean;
  stopped: boolean;
}

const ANTHROPIC_CHANNELS: Readonly<Record<string, { type: string; field: string; json: boolean }>> = {
  text: { type: 'text_delta', field: 'text', json: false },
  thinking: { type: 'thinking_delta', field: 'thinking', json: false },
  tool_use: { type: 'input_json_delta', field: 'partial_json', json: true },
};

/** Upstream SSE buffered at most this many characters for one unfinished event. */
const MAX_EVENT_CHARS = 16 * 1024 * 1024;

/**
 * Incremental SSE rewriter for a streamed answer: `push()` takes the raw
 * upstream bytes (or text) as they arrive and returns the SSE text to forward
 * (possibly ''); `end()` flushes what is held when the upstream ends. Bytes
 * may be cut anywhere, also inside a UTF-8 character or an event.
 *
 * Throws `BastionError('ERR_MODEL_UPSTREAM')` from `push()`/`end()` when an
 * event cannot be read or has a shape the filter cannot redact (data that is
 * not JSON, a tool call without a name, an unknown content delta type), or an
 * event exceeds 16 MiB; the caller then ends the stream with an error event.
 * After a throw the filter is spent. Throws `TypeError` on `push()` after `end()`.
 */
export class StreamFilter {
  readonly #kind: ProviderKind;
  readonly #tally: Tally;
  readonly #decoder = new TextDecoder('utf-8');
  readonly #parser: EventSourceParser;
  #out: string[] = [];
  #error: BastionError | null = null;
  #ended = false;
  #firstContentAt: number | null = null;
  #complete = false;
  // OpenAI
  readonly #choices = new Map<number, OpenAiChoice>();
  #template: Json = {};
  // Anthropic
  readonly #blocks = new Map<number, AnthropicBlock>();
  readonly #blockText = new Map<number, string>();
  #nextBlock = 0;
  #toolBlocks = 0;

  /** Throws `TypeError` for an unknown kind or a filter without `allowTool`. */
  constructor(kind: ProviderKind, filter: ResponseFilter) {
    if (kind !== 'openai' && kind !== 'anthropic') throw new TypeError('StreamFilter: unknown provider kind');
    this.#kind = kind;
    this.#tally = new Tally(filter);
    this.#parser = createParser({
      onEvent: (ev) => this.#onEvent(ev),
      onError: (err) => {
        if (err.type === 'max-buffer-size-exceeded') this.#fail(upstream('an event of the stream is too large'));
      },
      maxBufferSize: MAX_EVENT_CHARS,
    });
  }

  /** What the filter saw and did so far (final after `end()`). */
  get report(): ResponseReport {
    const text = this.#kind === 'openai' ? [...this.#choices.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c.content).join('\n') : [...this.#blockText.values()].join('');
    const complete = this.#complete || (this.#kind === 'openai' && this.#choices.size > 0 && [...this.#choices.values()].every((c) => c.finished));
    return this.#tally.report(text, complete);
  }

  /** `performance.now()` when the first text, arguments or kept tool call went out, or null. */
  get firstContentAt(): number | null {
    return this.#firstContentAt;
  }

  /** Feeds upstream bytes or text; returns the SSE text to forward now. */
  push(chunk: Uint8Array | string): string {
    if (this.#ended) throw new TypeError('StreamFilter: push after end');
    if (this.#error !== null) throw this.#error;
    const text = typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    if (text.length > 0) this.#parser.feed(text);
    return this.#drain();
  }

  /** Ends the stream: flushes every channel still open; returns the SSE text to forward. Idempotent. */
  end(): string {
    if (this.#ended) return '';
    this.#ended = true;
    if (this.#error !== null) throw this.#error;
    const tail = this.#decoder.decode();
    if (tail.length > 0) this.#parser.feed(tail);
    if (this.#error === null) {
      try {
        if (this.#kind === 'openai') this.#flushChoices(undefined);
        else for (const b of this.#blocks.values()) if (!b.stopped) this.#flushBlock(b);
      } catch (err) {
        this.#fail(err);
      }
    }
    return this.#drain();
  }

  #drain(): string {
    if (this.#error !== null) {
      this.#out = [];
      throw this.#error;
    }
    const out = this.#out.join('');
    this.#out = [];
    return out;
  }

  #fail(err: unknown): void {
    this.#error ??= err instanceof BastionError ? err : new BastionError('ERR_MODEL_UPSTREAM', 'an event of the stream could not be read', { cause: err });
  }

  #send(event: string | undefined, data: unknown): void {
    this.#out.push(`${event === undefined ? '' : `event: ${event}\n`}data: ${JSON.stringify(data)}\n\n`);
  }

  #content(piece: string): string {
    if (piece.length > 0) this.#firstContentAt ??= performance.now();
    return piece;
  }

  #onEvent(ev: EventSourceMessage): void {
    if (this.#error !== null) return;
    try {
      if (ev.event !== undefined && /[\r\n]/.test(ev.event)) throw upstream('an event name holds a line break');
      if (this.#kind === 'openai') this.#openAiEvent(ev);
      else this.#anthropicEvent(ev);
    } catch (err) {
      this.#fail(err);
    }
  }

  // --- OpenAI

  #openAiEvent(ev: EventSourceMessage): void {
    if (ev.data === '[DONE]') {
      this.#flushChoices(ev.event);
      this.#out.push(`${ev.event === undefined ? '' : `event: ${ev.event}\n`}data: [DONE]\n\n`);
      this.#complete = true;
      return;
    }
    const data = parseData(ev.data);
    if (ev.event === 'error' || data.error !== undefined) {
      this.#send(ev.event, this.#tally.value(data));
      return;
    }
    if (data.choices !== undefined && !Array.isArray(data.choices)) throw upstream('a chunk has choices that are not an array');
    readOpenAiUsage(data.usage, this.#tally);
    const { choices, usage, ...fields } = data;
    const template = this.#tally.fields(fields);
    this.#template = template;
    const pre: Json[] = [];
    const main: Json[] = [];
    for (const c of (choices as unknown[] | undefined) ?? []) {
      if (!isObject(c) || typeof c.index !== 'number' || !Number.isSafeInteger(c.index) || c.index < 0) throw upstream('a chunk has a choice without an index');
      const st = this.#choice(c.index);
      const delta = c.delta ?? {};
      if (!isObject(delta)) throw upstream('a choice delta is not an object');
      const finish = c.finish_reason;
      const ending = finish !== undefined && finish !== null;
      const nd = this.#rewriteDelta(st, delta, ending);
      const { delta: _d, ...other } = c;
      void _d;
      const rest = this.#tally.fields(other);
      if (rest.logprobs !== undefined && rest.logprobs !== null) rest.logprobs = null;
      if (ending) {
        // The flushed text goes out before the chunk that ends the choice.
        if (meaningful(nd)) pre.push({ index: c.index, delta: nd, finish_reason: null });
        if (finish === 'tool_calls' && st.kept === 0) rest.finish_reason = 'stop';
        if (finish === 'function_call' && st.fn !== null && !st.fn.allowed) rest.finish_reason = 'stop';
        st.finished = true;
        main.push({ ...rest, delta: {} });
      } else if (meaningful(nd)) main.push({ ...rest, delta: nd });
    }
    if (pre.length > 0) this.#send(ev.event, { ...template, choices: pre });
    // A chunk whose every choice came out empty is dropped, unless it carries usage.
    const hadChoices = Array.isArray(choices) && choices.length > 0;
    const withUsage = usage === undefined ? template : { ...template, usage };
    if (!hadChoices) this.#send(ev.event, choices === undefined ? withUsage : { ...withUsage, choices });
    else if (main.length > 0 || usage !== undefined) this.#send(ev.event, { ...withUsage, choices: main });
  }

  #choice(index: number): OpenAiChoice {
    let st = this.#choices.get(index);
    if (st === undefined) {
      st = { index, channels: new Map(), tools: new Map(), fn: null, kept: 0, finished: false, content: '' };
      this.#choices.set(index, st);
    }
    return st;
  }

  /** The delta as the client gets it: text channels redacted, removed tool calls dropped, the rest renumbered; `flush` also ends every channel of the choice. */
  #rewriteDelta(st: OpenAiChoice, delta: Json, flush: boolean): Json {
    const out: Json = {};
    for (const [k, v] of Object.entries(delta)) {
      if (k === 'tool_calls') out.tool_calls = this.#rewriteToolCalls(st, v);
      else if (k === 'function_call') {
        const fc = this.#rewriteFunctionCall(st, v);
        if (fc !== undefined) out.function_call = fc;
      } else if (k === 'role' || typeof v !== 'string') out[k] = typeof v === 'object' && v !== null ? this.#tally.value(v) : v;
      else {
        let r = st.channels.get(k);
        if (r === undefined) {
          r = new StreamingTextRedactor(this.#tally.opts);
          st.channels.set(k, r);
        }
        out[k] = this.#textOut(st, k, r.push(v));
      }
    }
    if (!flush) return out;
    for (const [k, r] of st.channels) {
      const rest = r.end();
      this.#tally.absorb(r);
      if (rest.length > 0) out[k] = `${typeof out[k] === 'string' ? out[k] : ''}${this.#textOut(st, k, rest)}`;
    }
    st.channels.clear();
    const calls = Array.isArray(out.tool_calls) ? (out.tool_calls as Json[]) : [];
    for (const t of st.tools.values()) {
      if (!t.allowed || t.ended) continue;
      const rest = this.#endTool(t);
      if (rest.length === 0) continue;
      const field = t.custom ? 'custom' : 'function';
      const key = t.custom ? 'input' : 'arguments';
      const entry = calls.find((e) => e.index === t.out);
      if (entry !== undefined) {
        const f = (isObject(entry[field]) ? entry[field] : {}) as Json;
        entry[field] = { ...f, [key]: `${typeof f[key] === 'string' ? f[key] : ''}${rest}` };
      } else calls.push({ index: t.out, [field]: { [key]: rest } });
    }
    if (calls.length > 0) out.tool_calls = calls;
    if (st.fn !== null && st.fn.allowed && !st.fn.ended) {
      const rest = this.#endTool(st.fn);
      if (rest.length > 0) {
        const f = isObject(out.function_call) ? out.function_call : {};
        out.function_call = { ...f, arguments: `${typeof f.arguments === 'string' ? f.arguments : ''}${rest}` };
      }
    }
    return out;
  }

  #textOut(st: OpenAiChoice, key: string, piece: string): string {
    if (key === 'content') st.content += piece;
    this.#observe(`${st.index}:${key}`, piece);
    return this.#content(piece);
  }

  #toolOut(t: OpenAiTool, piece: string): string {
    this.#observe(t.channel, piece);
    return this.#content(piece);
  }

  #observe(channel: string, piece: string): void {
    if (piece.length > 0 && this.#tally.observe !== undefined) this.#tally.observe(channel, piece);
  }

  #endTool(t: OpenAiTool): string {
    t.ended = true;
    const rest = t.args.end();
    this.#tally.absorb(t.args);
    return this.#toolOut(t, rest);
  }

  #startTool(name: unknown, custom: boolean, out: () => number, channel: string): OpenAiTool {
    if (typeof name !== 'string' || name === '') throw upstream('a tool call began without a name');
    const allowed = this.#tally.allow(name);
    const args: Channel = custom ? new StreamingTextRedactor(this.#tally.opts) : new StreamingJsonRedactor(this.#tally.opts);
    if (allowed) this.#firstContentAt ??= performance.now();
    return { name, allowed, out: allowed ? out() : -1, custom, args, channel, ended: false };
  }

  #rewriteToolCalls(st: OpenAiChoice, v: unknown): unknown {
    if (v === null) return null;
    if (!Array.isArray(v)) throw upstream('a delta has tool_calls that are not an array');
    const out: Json[] = [];
    for (const tc of v as unknown[]) {
      if (!isObject(tc) || typeof tc.index !== 'number' || !Number.isSafeInteger(tc.index) || tc.index < 0) throw upstream('a tool call delta has no index');
      const name = toolName(tc);
      let t = st.tools.get(tc.index);
      if (t === undefined) {
        t = this.#startTool(name, isObject(tc.custom), () => st.kept++, `${st.index}:tool:${tc.index}`);
        st.tools.set(tc.index, t);
      } else if (typeof name === 'string' && name !== '' && name !== t.name) throw upstream('a tool call changed its name');
      if (!t.allowed) continue;
      const copy: Json = { ...this.#tally.fields(tc, ['function', 'custom']), index: t.out };
      if (isObject(tc.function)) {
        const f = this.#tally.fields(tc.function, ['name', 'arguments']);
        if (typeof f.arguments === 'string') f.arguments = t.ended ? '' : this.#toolOut(t, t.args.push(f.arguments));
        copy.function = f;
      }
      if (isObject(tc.custom)) {
        const c = this.#tally.fields(tc.custom, ['name', 'input']);
        if (typeof c.input === 'string') c.input = t.ended ? '' : this.#toolOut(t, t.args.push(c.input));
        copy.custom = c;
      }
      out.push(copy);
    }
    return out;
  }

  #rewriteFunctionCall(st: OpenAiChoice, v: unknown): unknown {
    if (v === null) return null;
    if (!isObject(v)) throw upstream('a delta has a function_call that is not an object');
    if (st.fn === null) st.fn = this.#startTool(v.name, false, () => 0, `${st.index}:function_call`);
    else if (typeof v.name === 'string' && v.name !== '' && v.name !== st.fn.name) throw upstream('a function call changed its name');
    if (!st.fn.allowed) return undefined;
    const f = this.#tally.fields(v, ['name', 'arguments']);
    if (typeof f.arguments === 'string') f.arguments = st.fn.ended ? '' : this.#toolOut(st.fn, st.fn.args.push(f.arguments));
    return f;
  }

  /** Flushes every choice not finished yet, in one chunk (before `[DONE]`, or at the end of the stream). */
  #flushChoices(event: string | undefined): void {
    const pending: Json[] = [];
    for (const [index, st] of this.#choices) {
      if (st.finished) continue;
      const nd = this.#rewriteDelta(st, {}, true);
      if (meaningful(nd)) pending.push({ index, delta: nd, finish_reason: null });
    }
    if (pending.length > 0) this.#send(event, { ...this.#template, choices: pending });
  }

  // --- Anthropic

  #anthropicEvent(ev: EventSourceMessage): void {
    const data = parseData(ev.data);
    const type = data.type;
    if (typeof type !== 'string' || /[\r\n]/.test(type)) throw upstream('an event has no type');
    switch (type) {
      case 'message_start': {
        if (!isObject(data.message)) throw upstream('message_start has no message');
        readAnthropicUsage(data.message.usage, this.#tally, true);
        this.#send(type, this.#tally.fields(data));
        return;
      }
      case 'content_block_start':
        return this.#blockStart(data);
      case 'content_block_delta':
        return this.#blockDelta(data);
      case 'content_block_stop': {
        const b = this.#block(data);
        if (b.out < 0) return;
        if (!b.stopped) this.#flushBlock(b);
        this.#send(type, { ...this.#tally.fields(data), index: b.out });
        return;
      }
      case 'message_delta': {
        for (const b of this.#blocks.values()) if (!b.stopped) this.#flushBlock(b);
        readAnthropicUsage(data.usage, this.#tally, false);
        const delta = isObject(data.delta) ? data.delta : undefined;
        const safe = this.#tally.fields(data);
        if (delta !== undefined && delta.stop_reason === 'tool_use' && this.#toolBlocks === 0) {
          this.#send(type, { ...safe, delta: { ...(safe.delta as Json), stop_reason: 'end_turn' } });
        } else this.#send(type, safe);
        return;
      }
      case 'message_stop':
        this.#complete = true;
        this.#send(type, this.#tally.fields(data));
        return;
      case 'ping':
        this.#send(type, this.#tally.fields(data));
        return;
      default:
        // `error`, and event types added after this was written: redacted string by string.
        this.#send(type, this.#tally.value(data));
    }
  }

  #block(data: Json): AnthropicBlock {
    const i = data.index;
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0) throw upstream('a content block event has no index');
    const b = this.#blocks.get(i);
    if (b === undefined) throw upstream('a content block event names a block that did not start');
    return b;
  }

  #blockStart(data: Json): void {
    const i = data.index;
    const block = data.content_block;
    if (typeof i !== 'number' || !Number.isSafeInteger(i) || i < 0) throw upstream('content_block_start has no index');
    if (this.#blocks.has(i)) throw upstream('a content block started twice');
    if (!isObject(block) || typeof block.type !== 'string') throw upstream('content_block_start has no content block');
    if (block.type === 'tool_use') {
      if (typeof block.name !== 'string' || block.name === '') throw upstream('a tool_use block has no name');
      if (!this.#tally.allow(block.name)) {
        this.#blocks.set(i, { out: -1, delta: null, channel: null, text: false, stopped: true });
        return;
      }
      this.#toolBlocks++;
      this.#firstContentAt ??= performance.now();
    }
    const spec = ANTHROPIC_CHANNELS[block.type];
    const out = this.#nextBlock++;
    let channel: Channel | null = null;
    let first: Json;
    if (spec !== undefined) {
      channel = spec.json ? new StreamingJsonRedactor(this.#tally.opts) : new StreamingTextRedactor(this.#tally.opts);
      // The channel's own field streams; every other field (input, citations, extras) is redacted here.
      first = this.#tally.fields(block, [spec.field, 'name']);
      const initial = block[spec.field];
      if (typeof initial === 'string' && initial.length > 0) first[spec.field] = this.#blockOut(out, block.type === 'text', channel.push(initial));
    } else first = block.type === 'redacted_thinking' ? block : (this.#tally.value(block) as Json);
    this.#blocks.set(i, { out, delta: spec === undefined ? null : { type: spec.type, field: spec.field }, channel, text: block.type === 'text', stopped: false });
    this.#send('content_block_start', { ...this.#tally.fields(data, ['content_block']), index: out, content_block: first });
  }

  #blockDelta(data: Json): void {
    const b = this.#block(data);
    if (b.out < 0) return;
    const delta = data.delta;
    if (!isObject(delta) || typeof delta.type !== 'string') throw upstream('content_block_delta has no delta');
    if (b.stopped) throw upstream('a content block delta came after its stop');
    if (b.delta !== null && b.channel !== null && delta.type === b.delta.type) {
      const piece = delta[b.delta.field];
      if (typeof piece !== 'string') throw upstream('a content block delta has no text');
      const emitted = this.#blockOut(b.out, b.text, b.channel.push(piece));
      if (emitted.length > 0) this.#send('content_block_delta', { ...this.#tally.fields(data, ['delta']), index: b.out, delta: { ...this.#tally.fields(delta, [b.delta.field]), [b.delta.field]: emitted } });
      return;
    }
    if (delta.type === 'signature_delta') {
      this.#send('content_block_delta', { ...data, index: b.out });
      return;
    }
    if (delta.type === 'citations_delta') {
      this.#send('content_block_delta', { ...this.#tally.fields(data, ['delta']), index: b.out, delta: this.#tally.value(delta) });
      return;
    }
    throw upstream('a content block delta has a type Bastion cannot redact');
  }

  #blockOut(out: number, text: boolean, piece: string): string {
    if (text) this.#blockText.set(out, (this.#blockText.get(out) ?? '') + piece);
    this.#observe(`block:${out}`, piece);
    return this.#content(piece);
  }

  /** Ends a block's channel and sends what it held, as one more delta. */
  #flushBlock(b: AnthropicBlock): void {
    b.stopped = true;
    if (b.channel === null || b.delta === null) return;
    const rest = this.#blockOut(b.out, b.text, b.channel.end());
    this.#tally.absorb(b.channel);
    if (rest.length > 0) this.#send('content_block_delta', { type: 'content_block_delta', index: b.out, delta: { type: b.delta.type, [b.delta.field]: rest } });
  }
}

function parseData(data: string): Json {
  let v: unknown;
  try {
    v = JSON.parse(data);
  } catch {
    throw upstream('an event of the stream is not JSON');
  }
  if (!isObject(v)) throw upstream('an event of the stream is not a JSON object');
  return v;
}

/** Whether a rewritten delta carries anything for the client. */
function meaningful(delta: Json): boolean {
  for (const [k, v] of Object.entries(delta)) {
    if (v === undefined || v === null) continue;
    if (k === 'role') return true;
    if (typeof v === 'string') {
      if (v.length > 0) return true;
    } else if (Array.isArray(v)) {
      if (v.length > 0) return true;
    } else return true;
  }
  return false;
}
