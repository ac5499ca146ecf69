/**
 * Building one ability request from the model's (validated) parameters: the
 * method and headers come from config only, the parameters fill the URL
 * template (./template.ts) and the JSON body template, nothing else. A
 * parameter cannot name a header, and its value never reaches one.
 *
 * Pure: no I/O.
 */
import type { ResolvedAbility } from '../config/types.ts';
import { expandUrl, type UnsafeReason, type UrlTemplate } from './template.ts';

/**
 * Headers an ability's config may not set (lower case): framing and hop-by-hop
 * headers the HTTP client owns, and those Bastion sets itself (signature,
 * context, the credential). The bound secret's header is only known from the
 * vault, so it is checked per call.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'content-digest',
  'signature',
  'signature-input',
  'bastion-context',
]);

/** Methods whose requests may carry the body template. */
export const BODY_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A body template string that stands for one parameter: exactly `{name}`. */
export const BODY_PARAM = /^\{([A-Za-z0-9_.$-]+)\}$/;

/** One request, ready for the credential and the signature. Header names lower case. */
export interface AbilityRequest {
  readonly method: string;
  readonly url: URL;
  /** The expanded path, without the query (for the audit record). */
  readonly path: string;
  readonly headers: Record<string, string>;
  /** Exact body bytes; empty when none. */
  readonly body: Uint8Array;
}

/** Why the parameters could not make a request: the parameter (a config name, never a value) and the reason. */
export interface ParamRefusal {
  readonly param: string | null;
  readonly reason: UnsafeReason | 'origin' | 'normalized' | 'missing';
}

const DROP: unique symbol = Symbol('drop');

/** The body template with `{name}` strings replaced by typed parameter values; absent parameters drop their key or item. */
export function fillBody(template: unknown, args: Readonly<Record<string, unknown>>, depth = 0): unknown {
  if (depth > 64) return template;
  if (typeof template === 'string') {
    const m = BODY_PARAM.exec(template);
    if (m === null) return template;
    const name = m[1] as string;
    if (!Object.hasOwn(args, name)) return DROP;
    const v = args[name];
    return v === undefined ? DROP : v;
  }
  if (Array.isArray(template)) return template.map((t) => fillBody(t, args, depth + 1)).filter((v) => v !== DROP);
  if (template !== null && typeof template === 'object') {
    const out: [string, unknown][] = [];
    for (const [k, t] of Object.entries(template)) {
      const v = fillBody(t, args, depth + 1);
      if (v !== DROP) out.push([k, v]);
    }
    return Object.fromEntries(out);
  }
  return template;
}

/** The names of parameters whose schema allows an array (only those may be lists in the URL). */
export function arrayParams(params: Readonly<Record<string, unknown>>): Set<string> {
  const out = new Set<string>();
  const props = params.properties;
  if (props === null || typeof props !== 'object') return out;
  for (const [name, schema] of Object.entries(props)) {
    const type = (schema as { type?: unknown } | null)?.type;
    if (type === 'array' || (Array.isArray(type) && type.includes('array'))) out.add(name);
  }
  return out;
}

/**
 * The request for `args` (already validated against `ability.params`), or the
 * parameter that cannot be placed. Default headers `accept: application/json`,
 * `accept-encoding: identity` and `user-agent: Bastion` yield to configured ones.
 */
export function buildAbilityRequest(ability: ResolvedAbility, template: UrlTemplate, args: Readonly<Record<string, unknown>>, arrays: ReadonlySet<string>): AbilityRequest | ParamRefusal {
  const expanded = expandUrl(template, args, ability.origin, arrays);
  if (!expanded.ok) return { param: expanded.param, reason: expanded.reason };
  const headers: Record<string, string> = { accept: 'application/json', 'accept-encoding': 'identity', 'user-agent': 'Bastion' };
  for (const [k, v] of Object.entries(ability.headers)) headers[k.toLowerCase()] = v;
  let body: Uint8Array = new Uint8Array(0);
  if (ability.body !== undefined && BODY_METHODS.has(ability.method)) {
    const filled = fillBody(ability.body, args);
    if (filled !== DROP) {
      body = Buffer.from(JSON.stringify(filled), 'utf8');
      headers['content-type'] ??= 'application/json';
    }
  }
  return { method: ability.method, url: expanded.url, path: expanded.path, headers, body };
}
