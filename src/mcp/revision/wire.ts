/**
 * The wire differences between MCP revision 2026-07-28 ("modern": stateless,
 * no initialize, a `_meta` envelope on every request) and the 2025 revisions
 * ("legacy": an initialize handshake and `Mcp-Session-Id`), for the tool
 * door's downstream side. Pure: no sockets, no state. The upstream side's
 * translation is ./upstream.ts.
 *
 * Inbound order (spec 2026-07-28, basic/transports "Streamable HTTP", SEP-2243):
 *  1. era classification and `_meta` envelope shape: the official SDK's
 *     `classifyInboundRequest` (`@modelcontextprotocol/server`), which also
 *     refuses an `MCP-Protocol-Version` / `Mcp-Method` header that disagrees
 *     with the body (-32020);
 *  2. the revision must be one Bastion serves (-32022 UnsupportedProtocolVersion,
 *     `data: {supported, requested}`);
 *  3. the standard headers a modern request must carry: `MCP-Protocol-Version`,
 *     `Mcp-Method`, and `Mcp-Name` mirroring `params.name` (tools/call,
 *     prompts/get) or `params.uri` (resources/read); -32020 HeaderMismatch on HTTP 400;
 *  4. per tool, `Mcp-Param-{Name}` headers for the arguments whose input schema
 *     declares `x-mcp-header` ({@link paramHeaderMismatch}, run by the session
 *     once it knows the tool).
 * The SDK keeps steps 3 and 4 internal to its own HTTP handler, so they are
 * written here, against the SEP's text, and checked by the conformance suite's
 * `http-header-validation` and `http-custom-header-server-validation` scenarios.
 */
import { decodeHeaderValue, scanMcpHeaderDeclarations, type McpHeaderDeclaration } from './headers.ts';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  classifyInboundRequest,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  SERVER_INFO_META_KEY,
  type JSONRPCNotification,
  type JSONRPCRequest,
} from '@modelcontextprotocol/server';

export { decodeHeaderValue } from './headers.ts';

/** The stateless revision Bastion serves. */
export const MODERN_REVISION = '2026-07-28';
/** Every revision the `/mcp` endpoint accepts: the modern one per request, the legacy ones at initialize. */
export const SUPPORTED_REVISIONS: readonly string[] = Object.freeze([MODERN_REVISION, '2025-11-25', '2025-06-18', '2025-03-26']);

/** JSON-RPC error codes of revision 2026-07-28 (schema.ts `HEADER_MISMATCH`, `MISSING_REQUIRED_CLIENT_CAPABILITY`, `UNSUPPORTED_PROTOCOL_VERSION`); the kernel's table uses the same values (src/door/reasons.ts `RPC`). */
export const MODERN_RPC = Object.freeze({ HEADER_MISMATCH: -32020, MISSING_CAPABILITY: -32021, UNSUPPORTED_VERSION: -32022 });

/** The `_meta` keys of the per-request envelope (spec 2026-07-28, basic "_meta"). */
export const ENVELOPE_KEYS: readonly string[] = Object.freeze([PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY]);

/** The methods whose results are cacheable and must carry `ttlMs` and `cacheScope` (spec 2026-07-28, server "Caching"). */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);

/**
 * The client requests Bastion serves on the 2026-07-28 path. The revision removed
 * `initialize`, `ping`, `logging/setLevel` and `resources/(un)subscribe`; those,
 * and anything unknown, are answered 404 / -32601. (`subscriptions/listen` is
 * not served yet: Bastion has no stream of upstream notifications to offer.)
 */
export const MODERN_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'completion/complete',
]);

/** The methods whose `Mcp-Name` header mirrors a body field, and that field. */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/** What the HTTP layer hands over: the method, the protocol headers (undefined when absent), the parsed body. */
export interface InboundRequest {
  readonly httpMethod: string;
  readonly protocolVersionHeader?: string | undefined;
  readonly mcpMethodHeader?: string | undefined;
  readonly mcpNameHeader?: string | undefined;
  readonly body?: unknown;
}

/** A refusal on the wire: the HTTP status, JSON-RPC code and message, and the spec's `data`. */
export interface WireRejection {
  readonly kind: 'reject';
  /** The check that refused, e.g. `header-body-version-mismatch`, `name-header-missing`, `unsupported-version`. */
  readonly cell: string;
  readonly httpStatus: number;
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}

/** A modern request or notification, with its revision. */
export interface ModernRoute {
  readonly kind: 'modern';
  readonly message: JSONRPCRequest | JSONRPCNotification;
  readonly isRequest: boolean;
  readonly revision: string;
}

/** Legacy traffic: served by the session transport as before. */
export interface LegacyRoute {
  readonly kind: 'legacy';
}

/**
 * Classifies one inbound `/mcp` request and runs the header checks of steps 1-3
 * (module doc). Never throws: anything malformed is a {@link WireRejection}.
 */
export function classify(request: InboundRequest): ModernRoute | LegacyRoute | WireRejection {
  let outcome: ReturnType<typeof classifyInboundRequest>;
  try {
    outcome = classifyInboundRequest({
      httpMethod: request.httpMethod,
      ...(request.protocolVersionHeader === undefined ? {} : { protocolVersionHeader: request.protocolVersionHeader }),
      ...(request.mcpMethodHeader === undefined ? {} : { mcpMethodHeader: request.mcpMethodHeader }),
      ...(request.mcpNameHeader === undefined ? {} : { mcpNameHeader: request.mcpNameHeader }),
      body: request.body,
    });
  } catch {
    return reject('classifier-error', 400, -32600, 'Invalid request');
  }
  if (outcome.kind === 'legacy') return { kind: 'legacy' };
  if (outcome.kind === 'reject') {
    return { kind: 'reject', cell: outcome.cell, httpStatus: outcome.httpStatus, code: outcome.code, message: outcome.message, ...(outcome.data === undefined ? {} : { data: outcome.data }) };
  }
  const revision = outcome.classification.revision ?? MODERN_REVISION;
  if (revision !== MODERN_REVISION) {
    return reject('unsupported-version', 400, MODERN_RPC.UNSUPPORTED_VERSION, `Unsupported protocol version: ${printable(revision)}`, {
      supported: [...SUPPORTED_REVISIONS],
      requested: printable(revision),
    });
  }
  const isRequest = outcome.messageKind === 'request';
  if (isRequest) {
    const refused = standardHeaderMismatch(request, outcome.message as JSONRPCRequest);
    if (refused) return refused;
  }
  return { kind: 'modern', message: outcome.message, isRequest, revision };
}

/**
 * Step 3: `MCP-Protocol-Version` and `Mcp-Method` present on every modern request,
 * `Mcp-Name` present and equal (after sentinel decoding) where the method mirrors
 * a body field (SEP-2243 "Standard headers"). Undefined when they agree.
 */
export function standardHeaderMismatch(request: InboundRequest, message: JSONRPCRequest): WireRejection | undefined {
  if (request.protocolVersionHeader === undefined) return mismatch('version-header-missing', 'MCP-Protocol-Version', '(missing)');
  if (request.mcpMethodHeader === undefined) return mismatch('method-header-missing', 'Mcp-Method', '(missing)');
  const field = NAME_SOURCE[message.method];
  if (field === undefined) return undefined;
  const params = message.params as Record<string, unknown> | undefined;
  const bodyValue = params !== undefined && typeof params[field] === 'string' ? (params[field] as string) : undefined;
  if (request.mcpNameHeader === undefined) return bodyValue === undefined ? undefined : mismatch('name-header-missing', 'Mcp-Name', '(missing)');
  const decoded = decodeHeaderValue(trimOws(request.mcpNameHeader));
  if (decoded === undefined) return mismatch('name-header-invalid-encoding', 'Mcp-Name', 'invalid base64 sentinel');
  if (bodyValue !== undefined && decoded !== bodyValue) return mismatch('name-header-mismatch', 'Mcp-Name', `params.${field}`);
  return undefined;
}

/**
 * The `x-mcp-header` declarations of a tool's input schema (SEP-2243 "Custom
 * headers", scanned by ./headers.ts). A schema that breaks a rule yields
 * `'invalid'`: conforming clients exclude such a tool, and Bastion refuses calls
 * to it rather than guess which header was meant. A `number`-typed declaration,
 * which the spec forbids to clients, still has its header checked (as the
 * reference server does).
 */
export function paramHeaderDeclarations(inputSchema: unknown): readonly McpHeaderDeclaration[] | 'invalid' {
  const scan = scanMcpHeaderDeclarations(inputSchema);
  if (scan.valid) return scan.declarations;
  return scan.declarations ?? 'invalid';
}

/** A plain number as a header value: canonical decimal. */
const DECIMAL = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$/;

/**
 * Step 4: every declared argument present in the body (not null) has its
 * `Mcp-Param-{Name}` header, decoding to the same value (numbers compared as
 * numbers). A header for an absent argument is ignored (SEP-2243). `headers`
 * gets a lower-case header name and returns its value or undefined.
 */
export function paramHeaderMismatch(
  declarations: readonly McpHeaderDeclaration[],
  args: Readonly<Record<string, unknown>>,
  headers: (lowerCaseName: string) => string | undefined,
): WireRejection | undefined {
  for (const d of declarations) {
    let value: unknown = args;
    for (const k of d.path) value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>)[k] : undefined;
    if (value === undefined || value === null) continue;
    const name = `Mcp-Param-${d.headerName}`;
    const raw = headers(name.toLowerCase());
    if (raw === undefined) return mismatch('param-header-missing', name, '(missing)');
    const decoded = decodeHeaderValue(trimOws(raw));
    if (decoded === undefined) return mismatch('param-header-invalid-encoding', name, 'invalid base64 sentinel');
    const same =
      typeof value === 'number'
        ? DECIMAL.test(decoded) && Number(decoded) === value
        : typeof value === 'boolean'
          ? decoded === String(value)
          : typeof value === 'string'
            ? decoded === value
            : false;
    if (!same) return mismatch('param-header-mismatch', name, `arguments.${d.path.join('.')}`);
  }
  return undefined;
}

/**
 * Where a stateless request's `requestState` travels inside Bastion: the SDK 1.x
 * request schemas drop unknown params, but keep `_meta`. Set only by
 * {@link toLegacyRequest} (a client's own value under this key is removed) and
 * read only by stateless sessions.
 */
export const REQUEST_STATE_META_KEY = 'bastion/requestState';
/** Where a stateless retry's `inputResponses` travel inside Bastion (as {@link REQUEST_STATE_META_KEY}). */
export const INPUT_RESPONSES_META_KEY = 'bastion/inputResponses';
/** Where a stateless request's client capabilities travel inside Bastion (the envelope itself is removed). */
export const CLIENT_CAPS_META_KEY = 'bastion/clientCapabilities';
/**
 * Where a 2026-07-28 client may name its conversation instead of the
 * `Bastion-Conversation` header (1-256 printable ASCII; equal to the header when
 * both are sent): what ties its stateless requests together (audit, approvals,
 * the pooled session), since there is no session id.
 */
export const CONVERSATION_META_KEY = 'dev.bastion/conversation';

/** Bastion's internal `_meta` keys: a client's own values under them are removed on the way in. */
const INTERNAL_KEYS: readonly string[] = [REQUEST_STATE_META_KEY, INPUT_RESPONSES_META_KEY, CLIENT_CAPS_META_KEY, 'bastion/inputRequired'];

/**
 * A modern request as the session pipeline takes it (the SDK 1.x request
 * schemas keep `_meta` but drop unknown params): the envelope keys removed from
 * `_meta` (other keys such as `progressToken` kept), the client's capabilities
 * under {@link CLIENT_CAPS_META_KEY}, and `requestState` and `inputResponses`
 * under {@link REQUEST_STATE_META_KEY} and {@link INPUT_RESPONSES_META_KEY}. A
 * client's own values under Bastion's internal keys are removed first.
 */
export function toLegacyRequest<T extends { params?: unknown }>(message: T): T {
  const params = message.params;
  if (params === undefined || params === null || typeof params !== 'object' || Array.isArray(params)) return message;
  const { _meta: meta, requestState, inputResponses, ...others } = params as Record<string, unknown>;
  const rest: Record<string, unknown> = {};
  if (meta !== null && typeof meta === 'object' && !Array.isArray(meta)) {
    for (const [k, v] of Object.entries(meta)) if (!ENVELOPE_KEYS.includes(k) && !INTERNAL_KEYS.includes(k)) rest[k] = v;
    const caps = (meta as Record<string, unknown>)[CLIENT_CAPABILITIES_META_KEY];
    if (caps !== undefined) rest[CLIENT_CAPS_META_KEY] = caps;
  }
  if (requestState !== undefined) rest[REQUEST_STATE_META_KEY] = requestState;
  if (inputResponses !== undefined) rest[INPUT_RESPONSES_META_KEY] = inputResponses;
  return { ...message, params: Object.keys(rest).length > 0 ? { ...others, _meta: rest } : others };
}

/** The client capabilities a modern request declared (`_meta`), or `{}`. */
export function clientCapabilitiesOf(message: { params?: unknown }): Record<string, unknown> {
  const meta = (message.params as { _meta?: Record<string, unknown> } | undefined)?._meta;
  const caps = meta?.[CLIENT_CAPABILITIES_META_KEY];
  return caps !== null && typeof caps === 'object' && !Array.isArray(caps) ? (caps as Record<string, unknown>) : {};
}

/** A cache hint on a cacheable result (spec 2026-07-28 "Caching"): `ttlMs` ≥ 0 ms; `cacheScope` `private` (this client only) or `public`. */
export interface CacheHint {
  readonly ttlMs: number;
  readonly cacheScope: 'private' | 'public';
}

/** The implementation Bastion names in `_meta` of every modern result. */
export const SERVER_INFO = Object.freeze({ name: 'bastion', version: '0.1.0' });

/**
 * A legacy handler's result as a modern result: `resultType: "complete"` unless
 * the handler set one, the server's identity in `_meta`, and for a cacheable
 * method the cache hint (overriding whatever an upstream said: Bastion's lists are
 * per agent and per end user, so they are never `public`).
 */
export function modernResult(method: string, result: Record<string, unknown>, hint: CacheHint): Record<string, unknown> {
  const meta = result._meta !== null && typeof result._meta === 'object' && !Array.isArray(result._meta) ? (result._meta as Record<string, unknown>) : {};
  const out: Record<string, unknown> = { ...result, resultType: result.resultType === 'input_required' ? 'input_required' : 'complete', _meta: { ...meta, [SERVER_INFO_META_KEY]: SERVER_INFO } };
  if (CACHEABLE_METHODS.has(method) && out.resultType === 'complete') {
    out.ttlMs = hint.ttlMs;
    out.cacheScope = hint.cacheScope;
  }
  return out;
}

/**
 * The `server/discover` result (spec 2026-07-28, lifecycle "Discovery"):
 * revisions served, Bastion's own capabilities, optional instructions, cache hint.
 */
export function discoverResult(capabilities: Record<string, unknown>, hint: CacheHint, instructions?: string): Record<string, unknown> {
  return {
    supportedVersions: [...SUPPORTED_REVISIONS],
    capabilities,
    ...(instructions === undefined ? {} : { instructions }),
    ttlMs: hint.ttlMs,
    cacheScope: hint.cacheScope,
    resultType: 'complete',
    _meta: { [SERVER_INFO_META_KEY]: SERVER_INFO },
  };
}

function mismatch(cell: string, header: string, body: string): WireRejection {
  return reject(cell, 400, MODERN_RPC.HEADER_MISMATCH, `Bad Request: the request headers and body disagree (${header})`, { mismatch: { header, body } });
}

function reject(cell: string, httpStatus: number, code: number, message: string, data?: unknown): WireRejection {
  return { kind: 'reject', cell, httpStatus, code, message, ...(data === undefined ? {} : { data }) };
}

/** Strips RFC 9110 optional whitespace (SP, HTAB) at both ends. */
function trimOws(v: string): string {
  let start = 0;
  let end = v.length;
  while (start < end && (v[start] === ' ' || v[start] === '\t')) start++;
  while (end > start && (v[end - 1] === ' ' || v[end - 1] === '\t')) end--;
  return v.slice(start, end);
}

/** A client-sent string as it may appear in an error: bounded, printable ASCII only. */
function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 64);
}

/** The key of Bastion's one input request: the human approval of a held call. */
export const APPROVAL_INPUT_KEY = 'bastion/approval';

/**
 * The `input_required` result of a held call (spec 2026-07-28, "Multi
 * round-trip requests"): the sealed `requestState` the client must send back,
 * and — when the client declared URL-mode elicitation — a URL elicitation
 * pointing the human to the approval. A client without it gets the state only
 * and retries on its own; asking it for a mode it did not declare would be refused (-32021).
 */
export function approvalInputRequired(requestState: string, approvalId: string, clientCapabilities: Record<string, unknown>, url: string): Record<string, unknown> {
  const elicitation = clientCapabilities.elicitation;
  const urlMode = elicitation !== null && typeof elicitation === 'object' && Object.hasOwn(elicitation, 'url');
  return {
    resultType: 'input_required',
    ...(urlMode
      ? {
          inputRequests: {
            [APPROVAL_INPUT_KEY]: {
              method: 'elicitation/create',
              params: { mode: 'url', message: `An administrator must approve this call (approval ${approvalId}; \`bastion approvals approve ${approvalId}\`). Retry it once approved.`, url },
            },
          },
        }
      : {}),
    requestState,
    _meta: { [SERVER_INFO_META_KEY]: SERVER_INFO },
  };
}
