/**
 * Static checks of an ability's definition, run by the config loader: the URL
 * template keeps scheme, host and port literal, so no parameter can move the
 * request to another origin; it parses (RFC 6570, the operators of
 * ./template.ts) and names only declared parameters; the parameters are an
 * object schema that compiles; the headers leave Bastion's own alone; a body
 * goes only with a method that carries one.
 */
import type { RawAbility } from '../config/schema.ts';
import { ArgumentValidator } from '../mcp/validate.ts';
import { BODY_METHODS, BODY_PARAM, RESERVED_HEADERS } from './request.ts';
import { parseUrlTemplate } from './template.ts';

/** A problem in one ability's definition: `path` is relative to the ability (`['url']`). */
export interface AbilityProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

/**
 * The literal origin (`https://host[:port]`) of an ability URL template, or
 * undefined when the scheme or authority holds a template expression or the URL
 * is not absolute http(s).
 */
export function abilityOrigin(template: string): string | undefined {
  const m = /^(https?):\/\/([^/?#{}]+)(?=[/?#{]|$)/.exec(template);
  if (!m) return undefined;
  const rest = template.slice(m[0].length);
  // The authority must end before the first expression: `https://api.example.com{/x}` is fine, `https://{host}/` is not.
  if (m[2]?.includes('@')) return undefined;
  let url: URL;
  try {
    url = new URL(`${m[1]}://${m[2]}/`);
  } catch {
    return undefined;
  }
  if (rest.length > 0 && !/^[/?#{]/.test(rest)) return undefined;
  // `https://host:{port}` (an empty port) and `https://host{x}` / `{.x}` would let a value extend the authority.
  if (m[2]?.endsWith(':') || (rest.startsWith('{') && !/^\{[/?]/.test(rest))) return undefined;
  return url.origin;
}

/** Compiles parameter schemas for the check; shares ajv's dialect handling with the tool door. */
const validator = new ArgumentValidator();

/** Types a URL parameter's schema may declare: the value must become text. */
const URL_TYPES: ReadonlySet<string> = new Set(['string', 'number', 'integer', 'boolean', 'array']);

/** Problems of one ability's definition; empty when sound. */
export function abilityDefinitionProblems(a: RawAbility): AbilityProblem[] {
  const problems: AbilityProblem[] = [];
  const params = a.params;
  const props = params.properties;
  const declared = props !== null && typeof props === 'object' && !Array.isArray(props) ? (props as Record<string, unknown>) : undefined;
  const required = Array.isArray(params.required) ? params.required.filter((r): r is string => typeof r === 'string') : [];

  if (params.type !== 'object') problems.push({ path: ['params', 'type'], message: 'must be "object": the parameters are one object of named values' });
  if (props !== undefined && declared === undefined) problems.push({ path: ['params', 'properties'], message: 'must be an object of property schemas' });
  if (!validator.compiles({ ...params, additionalProperties: false })) problems.push({ path: ['params'], message: 'is not a JSON Schema that compiles (ajv, draft 2020-12 unless $schema says draft-07)' });

  if (abilityOrigin(a.url) === undefined) {
    problems.push({ path: ['url'], message: 'must be an absolute http(s) URL template whose scheme, host and port are literal (no {expressions} and no credentials before the path)' });
  } else {
    const parsed = parseUrlTemplate(a.url);
    if ('error' in parsed) problems.push({ path: ['url'], message: `is not a usable URL template: ${parsed.error}` });
    else {
      for (const name of parsed.names) {
        if (declared === undefined || !Object.hasOwn(declared, name)) {
          problems.push({ path: ['url'], message: `{${name}} is not a property declared in params` });
          continue;
        }
        const type = (declared[name] as { type?: unknown } | null)?.type;
        const types = Array.isArray(type) ? type : [type];
        if (types.length === 0 || !types.every((t) => typeof t === 'string' && URL_TYPES.has(t))) {
          problems.push({ path: ['params', 'properties', name, 'type'], message: 'must be string, number, integer, boolean or array (the parameter fills the URL)' });
        }
      }
      for (const part of parsed.parts) {
        if (part.kind !== 'expression' || part.inQuery || part.operator !== '') continue;
        for (const name of part.names) {
          if (declared !== undefined && Object.hasOwn(declared, name) && !required.includes(name)) {
            problems.push({ path: ['params', 'required'], message: `must include ${name}: {${name}} fills a path segment, which cannot be left empty` });
          }
        }
      }
    }
  }

  const tokenHeader = a.token === undefined || a.token === false ? undefined : a.token === true ? 'authorization' : a.token.header.toLowerCase();
  for (const name of Object.keys(a.headers)) {
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) problems.push({ path: ['headers', name], message: 'is set by Bastion or the HTTP client and cannot be configured' });
    else if (lower === tokenHeader) problems.push({ path: ['headers', name], message: 'carries the per-call token (token.header) and cannot be configured' });
  }
  if (tokenHeader !== undefined && RESERVED_HEADERS.has(tokenHeader)) {
    problems.push({ path: ['token', 'header'], message: 'is set by Bastion or the HTTP client; choose another header' });
  }

  // As at the network door: a credential never crosses the network in clear, whatever the host.
  if (a.secret !== undefined && /^http:/i.test(a.url)) problems.push({ path: ['secret'], message: 'would be sent over plain http; use an https URL' });

  if (a.body !== undefined) {
    if (!BODY_METHODS.has(a.method)) problems.push({ path: ['body'], message: `a ${a.method} request carries no body; use POST, PUT, PATCH or DELETE` });
    for (const name of bodyParams(a.body)) {
      if (declared === undefined || !Object.hasOwn(declared, name)) problems.push({ path: ['body'], message: `{${name}} is not a property declared in params` });
    }
  }
  return problems;
}

/** The parameter names a body template refers to (`"{name}"` strings), in order. */
function bodyParams(t: unknown, out: string[] = [], depth = 0): string[] {
  if (depth > 64) return out;
  if (typeof t === 'string') {
    const m = BODY_PARAM.exec(t);
    if (m && !out.includes(m[1] as string)) out.push(m[1] as string);
  } else if (Array.isArray(t)) for (const x of t) bodyParams(x, out, depth + 1);
  else if (t !== null && typeof t === 'object') for (const x of Object.values(t)) bodyParams(x, out, depth + 1);
  return out;
}
