/**
 * RFC 9421 §2: component values and the signature base of a request.
 * Component identifiers and `@signature-params` are Structured Fields, read and
 * written with `structured-headers` only.
 */
import {
  parseDictionary,
  parseItem,
  parseList,
  serializeByteSequence,
  serializeDictionary,
  serializeInnerList,
  serializeItem,
  serializeList,
  serializeString,
  Token,
  type InnerList,
  type Item,
  type Parameters,
} from 'structured-headers';
import { CONTEXT_HEADER } from './context.ts';
import { VerifyError } from './errors.ts';

/**
 * What a signature is computed over: a request. `url` is the absolute target URI
 * as the client targeted it; `headers` has lower- or mixed-case names, and a
 * header sent on several field lines is a `string[]` (joined with ", ", RFC 9421 §2.1).
 */
export interface SignableRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
}

/** RFC 9421 §2.3 signature parameters. Times are seconds since the epoch. */
export interface SignatureParams {
  /** `created`: when the signature was made, in seconds. */
  readonly created: number;
  /** `expires`: after this, in seconds, the signature is refused. */
  readonly expires?: number;
  /** `nonce`: unique per signature; verifiers refuse a repeat. */
  readonly nonce?: string;
  /** `keyid`: the `kid` of the signing key in the signer's JWKS. */
  readonly keyid: string;
  /** `alg`: `ed25519` (RFC 9421 §3.3.6) when present. */
  readonly alg?: string;
  /** `tag`: application tag; Bastion uses `bastion`. */
  readonly tag?: string;
}

/** A parsed component identifier: the name (an sf-string) and its parameters (RFC 9421 §2). */
export type ComponentId = Item;

const DERIVED = new Set(['@method', '@target-uri', '@authority', '@scheme', '@request-target', '@path', '@query', '@query-param']);

/**
 * Fields whose Structured Fields type is known, for the `sf` and `key` parameters
 * (RFC 9421 §2.1.1, §2.1.2); `sf` on any other field is refused.
 */
const DICTIONARY_FIELDS = new Set([
  'signature',
  'signature-input',
  'content-digest',
  'repr-digest',
  'want-content-digest',
  'want-repr-digest',
  'bastion-context',
  'example-dict',
]);
const LIST_FIELDS = new Set(['accept-ch', 'example-list', 'cache-status', 'proxy-status']);

function malformed(message: string, cause?: unknown): VerifyError {
  return new VerifyError('malformed', message, cause === undefined ? {} : { cause });
}

/**
 * Checks a component identifier and its parameters: a lower-case field name or a
 * supported derived component; parameters `sf`, `key`, `bs` on fields and `name` on
 * `@query-param` only.
 * @throws VerifyError `malformed`.
 */
export function checkComponentId(id: ComponentId): void {
  const [name, params] = id;
  if (typeof name !== 'string' || name.length === 0) throw malformed('component: name is not a string');
  if (name.startsWith('@')) {
    if (!DERIVED.has(name)) throw malformed('component: unsupported derived component');
    for (const [k, v] of params) {
      if (name === '@query-param' && k === 'name' && typeof v === 'string') continue;
      throw malformed('component: unsupported parameter');
    }
    if (name === '@query-param' && !params.has('name')) throw malformed('component: @query-param without name');
    return;
  }
  // RFC 9110 §5.1 token characters, lower case (RFC 9421 §2.1).
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(name)) throw malformed('component: bad field name');
  for (const [k, v] of params) {
    if ((k === 'sf' || k === 'bs') && v === true) continue;
    if (k === 'key' && typeof v === 'string') continue;
    throw malformed('component: unsupported parameter');
  }
  if (params.has('bs') && (params.has('sf') || params.has('key'))) throw malformed('component: bs with sf or key');
}

/**
 * Parses one component as written by a signer's configuration: either the
 * Structured Fields form (`"@query-param";name="Pet"`) or the bare form
 * (`@query-param;name=Pet`, `Content-Type`). Field names are lower-cased.
 * @throws VerifyError `malformed`.
 */
export function parseComponentId(text: string): ComponentId {
  let item: Item;
  try {
    if (text.startsWith('"')) {
      item = parseItem(text);
    } else {
      const i = text.indexOf(';');
      const name = i < 0 ? text : text.slice(0, i);
      const rest = i < 0 ? '' : text.slice(i);
      item = parseItem(serializeString(name.startsWith('@') ? name : name.toLowerCase()) + rest);
    }
  } catch (err) {
    throw malformed('component: not a structured item', err);
  }
  const params: Parameters = new Map();
  // The bare form may write `name=Pet` / `key=a` as Tokens; identifiers hold Strings.
  for (const [k, v] of item[1]) params.set(k, v instanceof Token ? v.toString() : v);
  const id: ComponentId = [item[0], params];
  checkComponentId(id);
  return id;
}

/** The serialized component identifier, e.g. `"@query-param";name="Pet"` (RFC 9421 §2). */
export function serializeComponentId(id: ComponentId): string {
  return serializeItem(id);
}

// application/x-www-form-urlencoded percent-encode set (WHATWG URL §1.3): all but ASCII alphanumerics and *-._
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function parseUrl(url: string): URL {
  try {
    return new URL(url);
  } catch (err) {
    throw malformed('target uri: not an absolute url', err);
  }
}

function headerValues(req: SignableRequest, name: string): string[] | undefined {
  for (const [k, v] of Object.entries(req.headers)) {
    if (k.toLowerCase() !== name || v === undefined) continue;
    return typeof v === 'string' ? [v] : [...v];
  }
  return undefined;
}

function missing(name: string): VerifyError {
  return new VerifyError('missing_component', `component ${name} is absent`);
}

function derivedValues(req: SignableRequest, name: string, params: Parameters, url: URL): string[] {
  switch (name) {
    case '@method':
      return [req.method];
    case '@target-uri':
      return [url.href];
    case '@authority':
      return [url.host];
    case '@scheme':
      return [url.protocol.slice(0, -1)];
    case '@request-target':
      return [url.pathname + url.search];
    case '@path':
      return [url.pathname === '' ? '/' : url.pathname];
    case '@query':
      return [`?${url.search.slice(1)}`];
    case '@query-param': {
      // §2.2.8: parse the query as application/x-www-form-urlencoded, re-encode name and value.
      const want = params.get('name') as string;
      const out: string[] = [];
      for (const [k, v] of new URLSearchParams(url.search)) if (formEncode(k) === want) out.push(formEncode(v));
      if (out.length === 0) throw missing('@query-param');
      return out;
    }
    default:
      throw malformed('component: unsupported derived component');
  }
}

function reserialize(field: string, joined: string): string {
  try {
    if (DICTIONARY_FIELDS.has(field)) return serializeDictionary(parseDictionary(joined));
    if (LIST_FIELDS.has(field)) return serializeList(parseList(joined));
  } catch (err) {
    throw malformed(`component ${field}: not a structured field`, err);
  }
  throw malformed(`component ${field}: structured type unknown`);
}

function fieldValue(req: SignableRequest, name: string, params: Parameters): string {
  const lines = headerValues(req, name);
  if (lines === undefined) throw missing(name);
  // §2.1: strip leading/trailing whitespace per line, replace obs-fold, join with ", ".
  const clean = lines.map((l) => l.replace(/\r?\n[ \t]*/g, ' ').trim());
  if (params.has('bs')) return clean.map((l) => serializeByteSequence(new TextEncoder().encode(l))).join(', ');
  const joined = clean.join(', ');
  if (params.has('key')) {
    let dict;
    try {
      dict = parseDictionary(joined);
    } catch (err) {
      throw malformed(`component ${name}: not a structured dictionary`, err);
    }
    const member = dict.get(params.get('key') as string);
    if (member === undefined) throw missing(`${name};key`);
    return Array.isArray(member[0]) ? serializeInnerList(member as InnerList) : serializeItem(member as Item);
  }
  if (params.has('sf')) return reserialize(name, joined);
  return joined;
}

/**
 * Builds the signature base (RFC 9421 §2.5) for `components` (parsed identifiers)
 * and the already serialized `@signature-params` value.
 * @throws VerifyError `missing_component` (a covered header or query parameter is absent),
 *   `malformed` (duplicate or unsupported component, bad URL, non-ASCII value),
 *   `bad_context` (a non-ASCII `bastion-context`).
 */
export function buildSignatureBase(req: SignableRequest, components: readonly ComponentId[], signatureParams: string): string {
  const url = parseUrl(req.url);
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const id of components) {
    checkComponentId(id);
    const key = serializeComponentId(id);
    if (seen.has(key)) throw malformed('component: listed twice');
    seen.add(key);
    const [name, params] = id as [string, Parameters];
    const values = name.startsWith('@') ? derivedValues(req, name, params, url) : [fieldValue(req, name, params)];
    for (const v of values) {
      // The base is ASCII (§2.5); a field value with other bytes cannot be signed faithfully.
      if (!/^[\x20-\x7e\t]*$/.test(v)) {
        throw new VerifyError(name === CONTEXT_HEADER ? 'bad_context' : 'malformed', `component ${name}: not ascii`);
      }
      lines.push(`${key}: ${v}`);
    }
  }
  lines.push(`"@signature-params": ${signatureParams}`);
  return lines.join('\n');
}

/** The @signature-params parameters in the order Bastion writes them. */
export function signatureParamsMap(params: SignatureParams): Parameters {
  const map: Parameters = new Map();
  const int = (k: string, v: number): void => {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`signature params: ${k} must be a non-negative integer (seconds)`);
    map.set(k, v);
  };
  int('created', params.created);
  if (params.expires !== undefined) int('expires', params.expires);
  for (const k of ['nonce', 'keyid', 'alg', 'tag'] as const) {
    const v = params[k];
    if (v !== undefined) map.set(k, v);
  }
  return map;
}

/**
 * RFC 9421 §2.5 signature base of `req` for `components` (e.g.
 * `['@method', '@target-uri', 'content-digest', 'bastion-context']`, bare or
 * Structured Fields form, see {@link parseComponentId}) and `params`.
 * Returns the base (lines joined with "\n", no trailing newline) and the
 * serialized `@signature-params` value, which is also the Signature-Input member.
 * Supported components: @method, @target-uri, @authority, @scheme, @request-target,
 * @path, @query, @query-param;name=..., and header fields with `sf`, `key`, `bs`.
 * @throws VerifyError `missing_component` when a covered header is absent; `malformed`
 *   for an unsupported or duplicate component; TypeError for non-integer times.
 */
export function signatureBase(req: SignableRequest, components: readonly string[], params: SignatureParams): { base: string; signatureParams: string } {
  const ids = components.map(parseComponentId);
  let signatureParams: string;
  try {
    signatureParams = serializeInnerList([ids, signatureParamsMap(params)]);
  } catch (err) {
    throw malformed('signature params: not representable', err);
  }
  return { base: buildSignatureBase(req, ids, signatureParams), signatureParams };
}
