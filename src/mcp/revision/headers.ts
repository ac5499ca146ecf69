/**
 * SEP-2243 (MCP 2026-07-28, Streamable HTTP "Custom headers"): the `x-mcp-header`
 * declarations of a tool's input schema and the header value codec, shared by
 * both sides of Bastion's translation: the downstream check of a client's
 * `Mcp-Param-*` and `Mcp-Name` headers (./wire.ts) and the headers Bastion sends
 * to a 2026-07-28 upstream (./upstream.ts). Pure; never throws.
 */

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** One `x-mcp-header` declaration: where the argument sits in `arguments`, the header suffix, the declared type. */
export interface McpHeaderDeclaration {
  readonly path: readonly string[];
  readonly headerName: string;
  readonly type: 'string' | 'integer' | 'boolean' | 'number';
}

/**
 * A scan's outcome. `valid: false` with `declarations` when the only fault is a
 * `number`-typed declaration: the spec forbids those (a client must not call
 * the tool) but a server still checks their headers, as the reference SDK does.
 */
export type McpHeaderScan =
  | { readonly valid: true; readonly declarations: readonly McpHeaderDeclaration[] }
  | { readonly valid: false; readonly reason: string; readonly declarations?: readonly McpHeaderDeclaration[] };

/** RFC 9110 §5.1 `token`. */
const RFC9110_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Subschema keywords outside the `properties` chain: an `x-mcp-header` below them makes the tool invalid (SEP-2243 "Schema Extension"). */
const UNREACHABLE_KEYWORDS = ['items', 'prefixItems', 'contains', 'additionalProperties', 'unevaluatedProperties', 'unevaluatedItems', 'propertyNames', 'patternProperties', 'dependentSchemas', 'oneOf', 'anyOf', 'allOf', 'not', 'if', 'then', 'else', '$defs', 'definitions'] as const;
const MAP_KEYWORDS = new Set(['patternProperties', 'dependentSchemas', '$defs', 'definitions']);
const HEADER_TYPES = new Set(['string', 'integer', 'boolean']);
/** Deepest schema nesting scanned; deeper schemas are refused rather than walked. */
const MAX_SCHEMA_DEPTH = 64;

/**
 * Scans a tool's `inputSchema` for `x-mcp-header` declarations and checks
 * every constraint SEP-2243 ("Schema Extension") places on them: only on
 * properties reachable from the root through `properties` keys alone; value a
 * non-empty RFC 9110 token; property type `string`, `integer` or `boolean`
 * (not `number`); names unique ignoring case. Any violation makes the whole
 * tool invalid: the client MUST NOT call it. Pure; never throws.
 */
export function scanMcpHeaderDeclarations(inputSchema: unknown): McpHeaderScan {
  const declarations: McpHeaderDeclaration[] = [];
  const seen = new Map<string, string>();
  let numberFault: string | undefined;
  const visit = (node: unknown, path: string[], reachable: boolean, depth: number): string | undefined => {
    if (!isObject(node)) return undefined;
    if (depth > MAX_SCHEMA_DEPTH) return 'schema nested too deeply';
    const where = path.length === 0 ? '<root>' : path.join('.');
    if (Object.hasOwn(node, 'x-mcp-header')) {
      if (!reachable || path.length === 0) return `${where}: x-mcp-header is only allowed on properties reachable through 'properties'`;
      const name = node['x-mcp-header'];
      if (typeof name !== 'string' || !RFC9110_TOKEN.test(name)) return `${where}: x-mcp-header must be a non-empty RFC 9110 token`;
      const type = node['type'];
      if (typeof type !== 'string' || !HEADER_TYPES.has(type)) {
        const fault = `${where}: x-mcp-header is only allowed on string, integer or boolean properties`;
        if (type !== 'number') return fault;
        numberFault ??= fault;
      }
      const lower = name.toLowerCase();
      if (seen.has(lower)) return `${where}: x-mcp-header '${name}' is declared twice`;
      seen.set(lower, name);
      declarations.push({ path, headerName: name, type: type as McpHeaderDeclaration['type'] });
    }
    const props = node['properties'];
    if (isObject(props)) {
      for (const [key, child] of Object.entries(props)) {
        const fault = visit(child, [...path, key], reachable, depth + 1);
        if (fault !== undefined) return fault;
      }
    }
    for (const k of UNREACHABLE_KEYWORDS) {
      const sub = node[k];
      if (sub === undefined) continue;
      const branches = Array.isArray(sub) ? sub : MAP_KEYWORDS.has(k) && isObject(sub) ? Object.values(sub) : [sub];
      for (const b of branches) {
        const fault = visit(b, [...path, `<${k}>`], false, depth + 1);
        if (fault !== undefined) return fault;
      }
    }
    return undefined;
  };
  const fault = visit(inputSchema, [], true, 0);
  if (fault !== undefined) return { valid: false, reason: fault };
  return numberFault === undefined ? { valid: true, declarations } : { valid: false, reason: numberFault, declarations };
}

/**
 * Encodes one header value (SEP-2243 "Value Encoding"): a string that is a safe
 * plain-ASCII field value (RFC 9110 §5.5: visible ASCII, space, tab; no leading
 * or trailing whitespace; not itself shaped like the sentinel) passes as is;
 * anything else becomes `=?base64?{base64 of UTF-8}?=`.
 */
export function encodeMcpHeaderValue(value: string): string {
  const sentinel = value.startsWith('=?base64?') && value.endsWith('?=');
  const plain = value.length > 0 && !sentinel && value === value.trim() && /^[\x20-\x7e\t]*$/.test(value);
  return plain ? value : `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

const SENTINEL_PREFIX = '=?base64?';
const SENTINEL_SUFFIX = '?=';
/** Canonical padded base64 (RFC 4648 §4). */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A header value as SEP-2243 encodes it: plain visible ASCII as is, anything
 * else as `=?base64?<RFC 4648 base64 of the UTF-8 bytes>?=`. Undefined when the
 * sentinel's payload is not canonical base64 of valid UTF-8.
 */
export function decodeHeaderValue(value: string): string | undefined {
  if (!(value.startsWith(SENTINEL_PREFIX) && value.endsWith(SENTINEL_SUFFIX) && value.length >= SENTINEL_PREFIX.length + SENTINEL_SUFFIX.length)) return value;
  const b64 = value.slice(SENTINEL_PREFIX.length, value.length - SENTINEL_SUFFIX.length);
  if (!BASE64.test(b64)) return undefined;
  const bytes = Buffer.from(b64, 'base64');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

