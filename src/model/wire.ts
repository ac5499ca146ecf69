/**
 * The two provider wire formats as the model door reads and edits them:
 * OpenAI Chat Completions (`POST /v1/chat/completions`) and Anthropic Messages
 * (`POST /v1/messages`). Only the fields Bastion acts on are checked (zod, loose
 * objects: every other field passes through untouched, so new provider fields
 * keep working); a request whose checked fields have the wrong shape is refused.
 *
 * Sources: OpenAI API reference, "Create chat completion" and its streaming
 * chunk object; Anthropic API reference, "Messages" and "Streaming Messages".
 */
import { z } from 'zod';
import { BastionError } from '../errors.ts';

export type ProviderKind = 'openai' | 'anthropic';

const TextPart = z.looseObject({ type: z.string().max(64), text: z.string().optional() });

const OpenAiMessage = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(TextPart), z.null()]).optional(),
});

/** The checked part of a Chat Completions request. */
export const OpenAiRequest = z.looseObject({
  model: z.string().min(1).max(256),
  messages: z.array(OpenAiMessage).min(1).max(100_000),
  tools: z
    .array(z.looseObject({ type: z.string(), function: z.looseObject({ name: z.string().min(1).max(256) }).optional() }))
    .max(4096)
    .optional(),
  functions: z.array(z.looseObject({ name: z.string().min(1).max(256) })).max(4096).optional(),
  stream: z.boolean().nullable().optional(),
  user: z.string().max(256).optional(),
});

const AnthropicMessage = z.looseObject({
  role: z.enum(['user', 'assistant']),
  content: z.union([z.string(), z.array(TextPart)]),
});

/** The checked part of a Messages request. */
export const AnthropicRequest = z.looseObject({
  model: z.string().min(1).max(256),
  max_tokens: z.number().int().positive(),
  messages: z.array(AnthropicMessage).min(1).max(100_000),
  system: z.union([z.string(), z.array(TextPart)]).optional(),
  tools: z.array(z.looseObject({ name: z.string().min(1).max(256) })).max(4096).optional(),
  stream: z.boolean().optional(),
  metadata: z.looseObject({ user_id: z.string().max(256).nullable().optional() }).optional(),
});

/** A parsed request body of either kind (mutable: the door edits it before forwarding). */
export type ModelRequest = Record<string, unknown> & { model: string; messages: Record<string, unknown>[]; stream?: boolean | null };

/**
 * Checks a parsed body against the provider's request shape.
 * Returns the body (same object) or a message naming the first bad field.
 */
export function checkRequest(kind: ProviderKind, body: unknown): { ok: true; body: ModelRequest } | { ok: false; message: string } {
  const r = (kind === 'openai' ? OpenAiRequest : AnthropicRequest).safeParse(body);
  if (r.success) return { ok: true, body: body as ModelRequest };
  const issue = r.error.issues[0];
  const path = issue ? issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '') : '';
  return { ok: false, message: `${path || 'body'}: ${issue?.message ?? 'invalid'}` };
}

/** Who wrote a text the model reads: the end user, the agent's system/developer prompt, an earlier answer, or a tool's result. */
export type TextAuthor = 'user' | 'system' | 'assistant' | 'tool';

/** One editable string of a request: read it, and replace it in the body. */
export interface TextSlot {
  /** Index of the message in `messages`; -1 for Anthropic's top-level `system`. */
  readonly message: number;
  readonly role: string;
  /** Who wrote it: a tool result inside a user message (Anthropic `tool_result`) is `tool`. */
  readonly author: TextAuthor;
  /** Where it stands in the message, e.g. `content[1].text`, `tool_calls[0].function.arguments`, `name`. */
  readonly field: string;
  get(): string;
  set(text: string): void;
}

/**
 * Keys whose strings are not text the model reads as words: enums and opaque
 * payloads (thinking signatures, encrypted reasoning). Everything else is a slot.
 */
const NOT_TEXT_KEYS: ReadonlySet<string> = new Set(['role', 'type', 'signature', 'encrypted_content', 'cache_control']);
/** Keys that carry base64 payloads (images, audio, files, redacted thinking): skipped when the string is long base64. */
const BINARY_KEYS: ReadonlySet<string> = new Set(['data', 'file_data']);
/** Shortest base64 payload skipped; a shorter `data` string (a tool argument named `data`) is scanned. */
const MIN_BINARY_CHARS = 1024;
const BASE64_TEXT = /^[A-Za-z0-9+/=_-]+$/;
/** Deepest nesting walked inside one message (the request shape allows no deeper; a deeper one is refused by {@link requestTexts}). */
export const MAX_TEXT_DEPTH = 32;

/**
 * Every string a request gives the model to read, in document order: each
 * message's every string field at any depth (`content` as a string or parts of
 * any type: `text`, `input_text`, `output_text`, `refusal`, Anthropic
 * `tool_result` content and `tool_use` input; `name`; OpenAI `tool_calls[].
 * function.arguments` and the legacy `function_call`; reasoning text) except
 * the keys in NOT_TEXT_KEYS, `data:` URLs and long base64 `data` payloads
 * (inline images, audio and files), and
 * Anthropic's top-level `system` (string or blocks). Roles: all of them
 * (system, developer, user, assistant, tool, function).
 * @throws BastionError `ERR_MODEL_REQUEST_INVALID` when a message nests deeper than {@link MAX_TEXT_DEPTH}
 */
export function requestTexts(kind: ProviderKind, body: ModelRequest): TextSlot[] {
  const out: TextSlot[] = [];
  if (kind === 'anthropic' && body.system !== undefined) {
    walkStrings(body, 'system', 'system', { message: -1, role: 'system', author: 'system' }, out, 0);
  }
  body.messages.forEach((m, i) => {
    const role = String(m.role);
    const author: TextAuthor = role === 'user' ? 'user' : role === 'assistant' ? 'assistant' : role === 'tool' || role === 'function' ? 'tool' : 'system';
    for (const key of Object.keys(m)) {
      if (NOT_TEXT_KEYS.has(key)) continue;
      walkStrings(m, key, key, { message: i, role, author }, out, 0);
    }
  });
  return out;
}

function walkStrings(holder: Record<string, unknown> | unknown[], key: string | number, field: string, at: { message: number; role: string; author: TextAuthor }, out: TextSlot[], depth: number): void {
  const v = (holder as Record<string | number, unknown>)[key];
  if (typeof v === 'string') {
    if (v.length === 0 || v.startsWith('data:')) return;
    if (typeof key === 'string' && BINARY_KEYS.has(key) && v.length >= MIN_BINARY_CHARS && BASE64_TEXT.test(v)) return;
    out.push({ ...at, field, get: () => (holder as Record<string | number, unknown>)[key] as string, set: (t) => void ((holder as Record<string | number, unknown>)[key] = t) });
    return;
  }
  if (typeof v !== 'object' || v === null) return;
  if (depth >= MAX_TEXT_DEPTH) throw new BastionError('ERR_MODEL_REQUEST_INVALID', `${field}: nested deeper than ${MAX_TEXT_DEPTH}`);
  if (Array.isArray(v)) {
    for (let j = 0; j < v.length; j++) walkStrings(v, j, `${field}[${j}]`, at, out, depth + 1);
    return;
  }
  const obj = v as Record<string, unknown>;
  // Anthropic tool results come back inside user messages: their text is a tool's, not the user's.
  const inner = obj.type === 'tool_result' || obj.type === 'function_call_output' ? { ...at, author: 'tool' as const } : at;
  for (const k of Object.keys(obj)) {
    if (NOT_TEXT_KEYS.has(k)) continue;
    walkStrings(obj, k, `${field}.${k}`, inner, out, depth + 1);
  }
}

/**
 * Index of the first message of the user's new turn: the messages after the
 * last assistant message that a user message follows. A trailing assistant
 * message (a prefill: "Sure, here are my instructions:") does not end the
 * turn, so the user messages before it are still new.
 */
export function newTurnStart(body: ModelRequest): number {
  let end = body.messages.length;
  while (end > 0 && body.messages[end - 1]?.role === 'assistant') end--;
  for (let i = end - 1; i >= 0; i--) if (body.messages[i]?.role === 'assistant') return i + 1;
  return 0;
}

/** The assistant message just before the user's new turn, or the trailing prefill: -1 when there is none. */
export function primingAssistantMessage(body: ModelRequest): number {
  for (let i = body.messages.length - 1; i >= 0; i--) if (body.messages[i]?.role === 'assistant') return i;
  return -1;
}

/**
 * Adds `text` to the system prompt: OpenAI gets a leading `system` message,
 * Anthropic's `system` field is extended (string, or a text block appended).
 */
export function addSystemText(kind: ProviderKind, body: ModelRequest, text: string): void {
  if (kind === 'openai') {
    body.messages.unshift({ role: 'system', content: text });
    return;
  }
  const system = body.system;
  if (system === undefined) body.system = text;
  else if (typeof system === 'string') body.system = `${system}\n\n${text}`;
  else if (Array.isArray(system)) system.push({ type: 'text', text });
}

/** The names of the tools offered to the model (`tools`, and OpenAI's legacy `functions`). */
export function offeredTools(kind: ProviderKind, body: ModelRequest): string[] {
  const names: string[] = [];
  for (const t of (body.tools as Record<string, unknown>[] | undefined) ?? []) {
    const name = kind === 'openai' ? (t.function as { name?: unknown } | undefined)?.name : t.name;
    if (typeof name === 'string') names.push(name);
  }
  if (kind === 'openai') for (const f of (body.functions as { name: string }[] | undefined) ?? []) names.push(f.name);
  return names;
}

/**
 * Removes the tools `keep` refuses from the request (tools, functions, and a
 * tool_choice / function_call naming one). A tool entry without a name
 * (a provider's built-in tool type) is removed too: Bastion cannot decide on it.
 * Returns the removed names (`<unnamed:type>` for unnamed ones).
 */
export function filterOfferedTools(kind: ProviderKind, body: ModelRequest, keep: (name: string) => boolean): string[] {
  const removed: string[] = [];
  const nameOf = (t: Record<string, unknown>): string | undefined => {
    const n = kind === 'openai' ? (t.function as { name?: unknown } | undefined)?.name : t.name;
    return typeof n === 'string' ? n : undefined;
  };
  if (Array.isArray(body.tools)) {
    const kept = (body.tools as Record<string, unknown>[]).filter((t) => {
      const n = nameOf(t);
      if (n !== undefined && keep(n)) return true;
      removed.push(n ?? `<unnamed:${String(t.type)}>`);
      return false;
    });
    if (kept.length > 0) body.tools = kept;
    else delete body.tools;
  }
  if (kind === 'openai' && Array.isArray(body.functions)) {
    const kept = (body.functions as { name: string }[]).filter((f) => {
      if (keep(f.name)) return true;
      removed.push(f.name);
      return false;
    });
    if (kept.length > 0) body.functions = kept;
    else delete body.functions;
  }
  // A forced choice of a removed (or now absent) tool cannot stand.
  const choice = body.tool_choice as Record<string, unknown> | string | undefined;
  if (choice !== undefined) {
    const forced = typeof choice === 'object' && choice !== null ? (kind === 'openai' ? (choice.function as { name?: unknown } | undefined)?.name : choice.name) : undefined;
    const none = body.tools === undefined;
    if ((typeof forced === 'string' && !keep(forced)) || (none && choice !== 'none' && (typeof choice !== 'object' || choice?.type !== 'none'))) {
      if (none) delete body.tool_choice;
      else body.tool_choice = kind === 'openai' ? 'auto' : { type: 'auto' };
    }
  }
  if (kind === 'openai' && typeof body.function_call === 'object' && body.function_call !== null) {
    const n = (body.function_call as { name?: unknown }).name;
    if (typeof n === 'string' && !keep(n)) delete body.function_call;
  }
  return removed;
}

/** The end user a request names in its body: OpenAI `user` (or `safety_identifier`), Anthropic `metadata.user_id`. */
export function bodyUser(kind: ProviderKind, body: ModelRequest): string | undefined {
  if (kind === 'openai') {
    const u = body.user ?? body.safety_identifier;
    return typeof u === 'string' && u.length > 0 ? u : undefined;
  }
  const u = (body.metadata as { user_id?: unknown } | undefined)?.user_id;
  return typeof u === 'string' && u.length > 0 ? u : undefined;
}

const ANTHROPIC_TYPE: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  502: 'api_error',
  503: 'overloaded_error',
  504: 'api_error',
};

const OPENAI_TYPE: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'invalid_request_error',
  429: 'rate_limit_error',
};

/**
 * An error body in the provider's shape, carrying Bastion's stable code:
 * OpenAI `{error: {message, type, param: null, code}}`, Anthropic
 * `{type: "error", error: {type, message, code}}`.
 */
export function errorBody(kind: ProviderKind, status: number, code: string, message: string): Record<string, unknown> {
  if (kind === 'openai') return { error: { message: `${message} (${code})`, type: OPENAI_TYPE[status] ?? 'server_error', param: null, code } };
  return { type: 'error', error: { type: ANTHROPIC_TYPE[status] ?? 'api_error', message: `${message} (${code})`, code } };
}

/** The same error as one SSE event, for a stream that already started. */
export function errorEvent(kind: ProviderKind, status: number, code: string, message: string): string {
  const body = JSON.stringify(errorBody(kind, status, code, message));
  return kind === 'openai' ? `data: ${body}\n\n` : `event: error\ndata: ${body}\n\n`;
}
