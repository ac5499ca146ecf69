/**
 * The signed user context Bastion sends with each tool request, in the
 * `Bastion-Context` header: an RFC 8941 Dictionary of Strings and an Integer,
 *
 *   agent="support", user="alice", conversation="c-17", platform="acme",
 *   request="r_8f3k", tool="kb__search", time=1732200000
 *
 * The header is covered by the RFC 9421 signature, so its fields are what
 * Bastion vouches for.
 */
import { parseDictionary, serializeDictionary, type Dictionary } from 'structured-headers';
import { VerifyError } from './errors.ts';

/** Name of the signed context header (lower case, as a covered component). */
export const CONTEXT_HEADER = 'bastion-context';

/** Who a tool request is for, as vouched for by Bastion. */
export interface SignedContext {
  /** Agent id (the caller in Bastion's config). */
  readonly agent: string;
  /** End user, when Bastion knows one. */
  readonly user?: string;
  /** Conversation / session id, when known. */
  readonly conversation?: string;
  /** The Bastion deployment (platform) that signed. */
  readonly platform: string;
  /** Bastion's request id (the audit record's reference). */
  readonly request: string;
  /** Exposed tool name, when the request is a tool call. */
  readonly tool?: string;
  /** When Bastion signed, in seconds since the epoch. */
  readonly time: number;
}

const STRING_FIELDS = ['agent', 'user', 'conversation', 'platform', 'request', 'tool'] as const;
const REQUIRED_STRINGS: ReadonlySet<string> = new Set(['agent', 'platform', 'request']);
/** Longest accepted field value, in characters. */
const MAX_FIELD_CHARS = 512;
/** RFC 8941 §3.3.1: Integers have at most 15 digits. */
const MAX_INTEGER = 999_999_999_999_999;

function validString(v: unknown): v is string {
  // RFC 8941 §3.3.3: Strings hold printable ASCII only (0x20-0x7E).
  return typeof v === 'string' && v.length > 0 && v.length <= MAX_FIELD_CHARS && /^[\x20-\x7e]+$/.test(v);
}

function validTime(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 && v <= MAX_INTEGER;
}

/**
 * Serializes `ctx` as the `Bastion-Context` Dictionary (RFC 8941 §4.1.2), fields in
 * the order agent, user, conversation, platform, request, tool, time; absent
 * optional fields are left out.
 * @throws VerifyError `bad_context` when a field is unknown, missing, empty, longer
 *   than 512 characters or not printable ASCII, or `time` is not a non-negative integer.
 */
export function serializeContext(ctx: SignedContext): string {
  const known = new Set<string>([...STRING_FIELDS, 'time']);
  for (const k of Object.keys(ctx)) {
    if (!known.has(k)) throw new VerifyError('bad_context', 'context: unknown field');
  }
  const dict: Dictionary = new Map();
  for (const k of STRING_FIELDS) {
    const v = ctx[k];
    if (v === undefined) {
      if (REQUIRED_STRINGS.has(k)) throw new VerifyError('bad_context', `context: missing ${k}`);
      continue;
    }
    if (!validString(v)) throw new VerifyError('bad_context', `context: ${k} is not representable`);
    dict.set(k, [v, new Map()]);
  }
  if (!validTime(ctx.time)) throw new VerifyError('bad_context', 'context: time is not an integer');
  dict.set('time', [ctx.time, new Map()]);
  try {
    return serializeDictionary(dict);
  } catch (err) {
    throw new VerifyError('bad_context', 'context: not representable', { cause: err });
  }
}

/**
 * Parses a `Bastion-Context` field value. Unknown keys, parameters, inner lists,
 * wrong types, empty strings and missing `agent`/`platform`/`request`/`time` are refused.
 * @throws VerifyError `bad_context`.
 */
export function parseContext(value: string): SignedContext {
  let dict: Dictionary;
  try {
    dict = parseDictionary(value);
  } catch (err) {
    throw new VerifyError('bad_context', 'context: not a structured dictionary', { cause: err });
  }
  const out: { -readonly [K in keyof SignedContext]?: SignedContext[K] } = {};
  for (const [k, member] of dict) {
    const [bare, params] = member;
    if (Array.isArray(bare) || params.size > 0) throw new VerifyError('bad_context', `context: ${k} is not a plain item`);
    if (k === 'time') {
      if (!validTime(bare)) throw new VerifyError('bad_context', 'context: time is not an integer');
      out.time = bare;
    } else if ((STRING_FIELDS as readonly string[]).includes(k)) {
      if (!validString(bare)) throw new VerifyError('bad_context', `context: ${k} is not a string`);
      out[k as (typeof STRING_FIELDS)[number]] = bare;
    } else {
      throw new VerifyError('bad_context', 'context: unknown field');
    }
  }
  for (const k of REQUIRED_STRINGS) {
    if (out[k as keyof SignedContext] === undefined) throw new VerifyError('bad_context', `context: missing ${k}`);
  }
  if (out.time === undefined) throw new VerifyError('bad_context', 'context: missing time');
  return out as SignedContext;
}
