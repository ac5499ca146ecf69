/**
 * MCP revision 2026-07-28 for upstreams, as a wrapper around the transport of
 * the SDK 1.x `Client`: the Client keeps speaking 2025-11-25 (handshake, ids,
 * schemas, timeouts), and this module is the one place that translates to and
 * from the stateless 2026-07-28 wire.
 *
 * What 2026-07-28 changes (spec 2026-07-28, "Lifecycle", "Transports",
 * basic/patterns/mrtr; SEP-2243, SEP-2549, SEP-2577):
 *  - no `initialize` handshake and no session: the client MAY call
 *    `server/discover` (`{supportedVersions, capabilities, instructions?,
 *    ttlMs, cacheScope}`, server info in `_meta["io.modelcontextprotocol/serverInfo"]`),
 *    and every request carries the `_meta` envelope
 *    (`io.modelcontextprotocol/protocolVersion`, `.../clientCapabilities`, `.../clientInfo`);
 *  - over HTTP every request carries `MCP-Protocol-Version`, `Mcp-Method`,
 *    `Mcp-Name` (tools/call, prompts/get: `params.name`; resources/read:
 *    `params.uri`) and `Mcp-Param-{Name}` for tool arguments declared with
 *    `x-mcp-header` (SEP-2243);
 *  - results carry `resultType`: `complete`, or `input_required` with
 *    `inputRequests` (embedded `elicitation/create`, `sampling/createMessage`,
 *    `roots/list`) and/or `requestState`; the client retries the same request
 *    on a new id with `inputResponses` (bare results) and `requestState` echoed.
 *
 * Modes (`UpstreamRevision`): `2025-11-25` passes everything through; `auto`
 * probes with `server/discover` and falls back to the legacy handshake when the
 * upstream does not speak 2026-07-28; `2026-07-28` fails closed instead.
 *
 * Failures this module produces reach the Client as JSON-RPC errors whose
 * `data` is a {@link RevisionFailure}; {@link revisionFailureOf} recovers it so
 * the caller maps it to a stable `ERR_UPSTREAM_*` code. Upstream text is never
 * put in those messages.
 */
import { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY } from '@modelcontextprotocol/server';
import { MODERN_REVISION } from './wire.ts';
import { encodeMcpHeaderValue, scanMcpHeaderDeclarations, type McpHeaderDeclaration, type McpHeaderScan } from './headers.ts';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  ErrorCode,
  ImplementationSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  SUPPORTED_PROTOCOL_VERSIONS,
  ServerCapabilitiesSchema,
  type ClientCapabilities,
  type Implementation,
  type InitializeResult,
  type JSONRPCMessage,
  type JSONRPCNotification,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import { UpstreamHttpError } from '../http-upstream-transport.ts';

/** The revision this module translates to (the one ./wire.ts serves downstream). */
export { MODERN_REVISION } from './wire.ts';
/** How Bastion talks to one upstream: `auto` probes, the others pin a revision. */
export type UpstreamRevision = 'auto' | '2025-11-25' | '2026-07-28';
export const UPSTREAM_REVISIONS: readonly UpstreamRevision[] = ['auto', '2025-11-25', '2026-07-28'];

/**
 * `_meta` keys of the 2026-07-28 request envelope and result (spec 2026-07-28, "_meta"), as the
 * official SDK names them; `LOG_LEVEL_META_KEY` is the per-request log level opt-in (SEP-2577).
 */
export { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY } from '@modelcontextprotocol/server';
/** The envelope keys the adapter owns: a caller's values for them are replaced (capabilities excepted, see {@link RevisionAdapter}). */
const ENVELOPE_META_KEYS = [PROTOCOL_VERSION_META_KEY, CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY] as const;

/**
 * Bastion-internal `params._meta` key that puts one request in pass-through
 * mode when its value is {@link INPUT_REQUIRED_PASS_THROUGH}: an
 * `input_required` result is handed to the caller instead of being resolved
 * through the Client. Set by Bastion for downstream clients that speak
 * 2026-07-28 themselves (they answer the input requests and retry); never
 * sent upstream on either revision.
 */
export const INPUT_REQUIRED_META_KEY = 'bastion/inputRequired';
/** The value of {@link INPUT_REQUIRED_META_KEY} that selects pass-through mode. */
export const INPUT_REQUIRED_PASS_THROUGH = 'return';
/** Request params that carry a 2026-07-28 retry (spec basic/patterns/mrtr). */
const RETRY_PARAM_KEYS = ['inputResponses', 'requestState'] as const;

/** Default bound on the `server/discover` probe, in ms (the caller passes half the connect timeout). */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;
/** Default bound on `input_required` rounds for one request (the reference SDK uses 10). */
export const DEFAULT_MAX_INPUT_ROUNDS = 8;
/** Default bound on one request's input rounds, from the first `input_required`, in ms. */
export const DEFAULT_MAX_INPUT_FLOW_MS = 10 * 60_000;
/** Most embedded input requests accepted in one `input_required` result. */
const MAX_INPUT_REQUESTS_PER_ROUND = 16;
/** Pause before retrying a `requestState`-only leg, in ms (reference SDK pacing for load shedding). */
const REQUEST_STATE_ONLY_PACING_MS = 250;
/** Methods whose results may be `input_required` (spec basic/patterns/mrtr). */
const MULTI_ROUND_METHODS = new Set(['tools/call', 'prompts/get', 'resources/read']);
/** Methods an embedded input request may name (spec basic/patterns/mrtr, "Input Requests"). */
const INPUT_REQUEST_METHODS = new Set(['elicitation/create', 'sampling/createMessage', 'roots/list']);
/** Which `params` field `Mcp-Name` mirrors (SEP-2243 "Standard Request Headers"). */
const MCP_NAME_SOURCE: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/** Why the adapter failed a request or the handshake (closed set; the value a test asserts). */
export type RevisionFailureReason =
  | 'revision-unsupported'
  | 'discover-invalid'
  | 'discover-timeout'
  | 'discover-failed'
  | 'result-invalid'
  | 'result-type-unknown'
  | 'input-request-invalid'
  | 'input-capability-missing'
  | 'input-failed'
  | 'input-rounds-exceeded'
  | 'input-timeout'
  | 'retry-failed'
  | 'tool-header-invalid'
  | 'server-request-refused'
  | 'closed';

const FAILURES: Readonly<Record<RevisionFailureReason, { code: RevisionFailure['code']; message: string }>> = {
  'revision-unsupported': { code: 'ERR_UPSTREAM_PROTOCOL', message: `does not support MCP revision ${MODERN_REVISION}` },
  'discover-invalid': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'sent an invalid server/discover result' },
  'discover-timeout': { code: 'ERR_UPSTREAM_TIMEOUT', message: 'did not answer server/discover in time' },
  'discover-failed': { code: 'ERR_UPSTREAM_UNAVAILABLE', message: 'server/discover failed' },
  'result-invalid': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'sent an invalid result' },
  'result-type-unknown': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'sent a result of unknown resultType' },
  'input-request-invalid': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'sent an invalid input request' },
  'input-capability-missing': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'asked for input the client did not offer' },
  'input-failed': { code: 'ERR_UPSTREAM_UNAVAILABLE', message: 'input request was not answered' },
  'input-rounds-exceeded': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'still required input after the round limit' },
  'input-timeout': { code: 'ERR_UPSTREAM_TIMEOUT', message: 'input rounds took too long' },
  'retry-failed': { code: 'ERR_UPSTREAM_UNAVAILABLE', message: 'retry with input failed' },
  'tool-header-invalid': { code: 'ERR_UPSTREAM_PROTOCOL', message: 'tool has an invalid x-mcp-header declaration' },
  'server-request-refused': { code: 'ERR_UPSTREAM_PROTOCOL', message: `sent a request, which revision ${MODERN_REVISION} does not allow` },
  closed: { code: 'ERR_UPSTREAM_UNAVAILABLE', message: 'connection closed' },
};

/**
 * A failure the adapter produced, carried as the `data` of the JSON-RPC error
 * it hands the Client. An instance can only come from this module (upstream
 * JSON never yields a class instance), so the caller can trust `code`.
 */
export class RevisionFailure {
  readonly code: 'ERR_UPSTREAM_PROTOCOL' | 'ERR_UPSTREAM_UNAVAILABLE' | 'ERR_UPSTREAM_TIMEOUT';
  readonly reason: RevisionFailureReason;
  /** Fixed text in spec vocabulary, without upstream-controlled content. */
  readonly message: string;
  constructor(reason: RevisionFailureReason) {
    const f = FAILURES[reason];
    this.code = f.code;
    this.reason = reason;
    this.message = f.message;
  }
  toJSON(): { reason: RevisionFailureReason } {
    return { reason: this.reason };
  }
}

/** The {@link RevisionFailure} behind an SDK error, or undefined when the error did not come from this module. */
export function revisionFailureOf(err: unknown): RevisionFailure | undefined {
  if (err instanceof McpError && err.data instanceof RevisionFailure) return err.data;
  return undefined;
}

// ---------------------------------------------------------------------------
// Pure helpers
// ---------------------------------------------------------------------------

export { encodeMcpHeaderValue, scanMcpHeaderDeclarations, type McpHeaderDeclaration, type McpHeaderScan } from './headers.ts';

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** SEP-2243 type conversion: strings as is, integers in decimal, booleans `true`/`false`; undefined for anything else. */
function headerString(value: unknown, type: McpHeaderDeclaration['type']): string | undefined {
  if (type === 'string') return typeof value === 'string' ? value : undefined;
  if (type === 'boolean') return typeof value === 'boolean' ? String(value) : undefined;
  return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : undefined;
}

/**
 * The `Mcp-Param-{Name}` headers (lower-cased names) for one `tools/call`, from
 * the declarations of the tool and the call's `arguments`. A null or absent
 * argument gets no header (SEP-2243: the client MUST omit it); a value that
 * does not match its declared type gets none either (the server then rejects
 * the mismatch, or its own argument validation does).
 */
export function buildMcpParamHeaders(declarations: readonly McpHeaderDeclaration[], args: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of declarations) {
    let node: unknown = args;
    for (const key of d.path) node = isObject(node) && Object.hasOwn(node, key) ? node[key] : undefined;
    if (node === undefined || node === null) continue;
    const s = headerString(node, d.type);
    if (s !== undefined) out[`mcp-param-${d.headerName.toLowerCase()}`] = encodeMcpHeaderValue(s);
  }
  return out;
}

/**
 * {@link scanMcpHeaderDeclarations} then {@link buildMcpParamHeaders}.
 * @returns `{ok: true, headers}`, or `{ok: false, reason}` when the tool's
 *   declarations are invalid (SEP-2243: the tool must not be called).
 */
export function mcpParamHeaders(inputSchema: unknown, args: unknown): { ok: true; headers: Record<string, string> } | { ok: false; reason: string } {
  const scan = scanMcpHeaderDeclarations(inputSchema);
  return scan.valid ? { ok: true, headers: buildMcpParamHeaders(scan.declarations, args) } : { ok: false, reason: scan.reason };
}

/**
 * The standard 2026-07-28 HTTP headers for one outgoing message (SEP-2243
 * "Standard Request Headers"): `mcp-protocol-version`, `mcp-method`, and
 * `mcp-name` for the methods that name a target. Tool parameter headers are
 * added by the caller. Header names are lower-cased.
 */
export function standardHeaders(message: JSONRPCMessage): Record<string, string> {
  const h: Record<string, string> = { 'mcp-protocol-version': MODERN_REVISION };
  if (!('method' in message)) return h;
  h['mcp-method'] = message.method;
  const field = Object.hasOwn(MCP_NAME_SOURCE, message.method) ? MCP_NAME_SOURCE[message.method] : undefined;
  const params: unknown = message.params;
  const value = field !== undefined && isObject(params) ? params[field] : undefined;
  if (typeof value === 'string') h['mcp-name'] = encodeMcpHeaderValue(value);
  return h;
}

/** A `server/discover` result, checked. */
export interface Discovery {
  readonly supportedVersions: readonly string[];
  readonly capabilities: InitializeResult['capabilities'];
  readonly serverInfo?: Implementation;
  readonly instructions?: string;
}

/**
 * Checks a `server/discover` result (spec 2026-07-28, "Lifecycle: Discovery"):
 * `supportedVersions` an array of strings, `capabilities` server capabilities;
 * `instructions` a string if present; server info from
 * `_meta["io.modelcontextprotocol/serverInfo"]` (or a top-level `serverInfo`)
 * when valid. `ttlMs`/`cacheScope` are read by nobody (one probe per connection).
 * @returns the discovery, or undefined when the result is not one.
 */
export function parseDiscoverResult(result: unknown): Discovery | undefined {
  if (!isObject(result)) return undefined;
  const versions = result['supportedVersions'];
  if (!Array.isArray(versions) || versions.length > 64 || !versions.every((v) => typeof v === 'string')) return undefined;
  const caps = ServerCapabilitiesSchema.safeParse(result['capabilities']);
  if (!caps.success) return undefined;
  const instructions = result['instructions'];
  if (instructions !== undefined && typeof instructions !== 'string') return undefined;
  const meta = result['_meta'];
  const info = ImplementationSchema.safeParse(isObject(meta) && meta[SERVER_INFO_META_KEY] !== undefined ? meta[SERVER_INFO_META_KEY] : result['serverInfo']);
  return {
    supportedVersions: versions as string[],
    capabilities: caps.data,
    ...(info.success ? { serverInfo: info.data } : {}),
    ...(typeof instructions === 'string' ? { instructions } : {}),
  };
}

/**
 * The InitializeResult the 1.x Client gets for a 2026-07-28 upstream:
 * `protocolVersion` the one the Client asked for when it supports it (else its
 * latest), the discovered capabilities and instructions, and the server info
 * (a placeholder when the upstream sent none: the field is required in 2025-11-25).
 */
export function discoverToInitialize(discovery: Discovery, requestedVersion: unknown): InitializeResult {
  const protocolVersion = typeof requestedVersion === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requestedVersion) ? requestedVersion : LATEST_PROTOCOL_VERSION;
  return {
    protocolVersion,
    capabilities: discovery.capabilities,
    serverInfo: discovery.serverInfo ?? { name: 'unknown', version: 'unknown' },
    ...(discovery.instructions !== undefined ? { instructions: discovery.instructions } : {}),
  };
}

/**
 * Lifts a `complete` result to the 2025-11-25 shape: removes `resultType`, the
 * cache hints `ttlMs`/`cacheScope` (SEP-2549) and the server info `_meta` key;
 * keeps everything else (including other `_meta` keys). Returns a new object.
 */
export function liftCompleteResult(result: Json): Json {
  const out = withoutServerInfo(result);
  delete out['resultType'];
  delete out['ttlMs'];
  delete out['cacheScope'];
  return out;
}

/** A copy of a result without the server info `_meta` key (and without `_meta` when nothing else was in it). */
function withoutServerInfo(result: Json): Json {
  const out: Json = { ...result };
  const meta = out['_meta'];
  if (isObject(meta) && Object.hasOwn(meta, SERVER_INFO_META_KEY)) {
    const rest: Json = { ...meta };
    delete rest[SERVER_INFO_META_KEY];
    if (Object.keys(rest).length === 0) delete out['_meta'];
    else out['_meta'] = rest;
  }
  return out;
}

/** An `input_required` result, checked: its input requests (each an object naming an allowed method) and its state. */
type InputRequiredCheck = { ok: true; entries: [string, Json][]; requestState: string | undefined } | { ok: false; reason: RevisionFailureReason };

/**
 * Checks the shape of an `input_required` result (spec basic/patterns/mrtr):
 * `inputRequests` an object if present, of at most
 * {@link MAX_INPUT_REQUESTS_PER_ROUND} entries, each `{method, params?}` with
 * `method` one of `elicitation/create`, `sampling/createMessage`, `roots/list`
 * and `params` an object when present; `requestState` a string if present;
 * at least one of the two. Pure; never throws.
 */
function checkInputRequired(result: Json): InputRequiredCheck {
  const requests = result['inputRequests'];
  const state = result['requestState'];
  if ((requests !== undefined && !isObject(requests)) || (state !== undefined && typeof state !== 'string')) return { ok: false, reason: 'result-invalid' };
  const entries = Object.entries(requests ?? {});
  if (entries.length === 0 && state === undefined) return { ok: false, reason: 'result-invalid' };
  if (entries.length > MAX_INPUT_REQUESTS_PER_ROUND) return { ok: false, reason: 'input-request-invalid' };
  const checked: [string, Json][] = [];
  for (const [key, entry] of entries) {
    if (!isObject(entry) || typeof entry['method'] !== 'string' || !INPUT_REQUEST_METHODS.has(entry['method'])) return { ok: false, reason: 'input-request-invalid' };
    if (entry['params'] !== undefined && !isObject(entry['params'])) return { ok: false, reason: 'input-request-invalid' };
    checked.push([key, entry]);
  }
  return { ok: true, entries: checked, requestState: state as string | undefined };
}

/** Client capabilities as Bastion declares them upstream: a copy without `roots` (Bastion never offers roots). */
function withoutRoots(capabilities: ClientCapabilities): ClientCapabilities {
  const out: ClientCapabilities = { ...capabilities };
  delete out.roots;
  return out;
}

/** What one caller request asks of the adapter, read from its `params._meta`, and that `_meta` without the Bastion-internal marker. */
interface CallerMeta {
  /** The caller's `_meta` without {@link INPUT_REQUIRED_META_KEY} (it may still hold envelope keys). */
  readonly meta: Json;
  readonly passThrough: boolean;
  /**
   * The per-request client capabilities the caller passed, or undefined when
   * it passed none. A value that is not an object declares nothing (`{}`):
   * the upstream must not be told of capabilities nobody declared.
   */
  readonly capabilities: ClientCapabilities | undefined;
}

function readCallerMeta(params: Json): CallerMeta {
  const meta: Json = isObject(params['_meta']) ? { ...params['_meta'] } : {};
  const passThrough = meta[INPUT_REQUIRED_META_KEY] === INPUT_REQUIRED_PASS_THROUGH;
  delete meta[INPUT_REQUIRED_META_KEY];
  const caps = meta[CLIENT_CAPABILITIES_META_KEY];
  const capabilities = caps === undefined ? undefined : isObject(caps) ? (caps as ClientCapabilities) : {};
  return { meta, passThrough, capabilities };
}

/**
 * A request as a 2025-11-25 upstream gets it: without the Bastion marker and
 * the per-request capabilities key in `_meta` (2025-11-25 negotiates
 * capabilities once, at `initialize`), and, for the multi-round methods,
 * without `inputResponses`/`requestState` (a legacy upstream never issued a
 * state, so forwarding one would mean nothing). `_meta` is dropped when
 * nothing else was in it. Other messages are returned unchanged.
 */
function toLegacyMessage(message: JSONRPCMessage): JSONRPCMessage {
  if (!('method' in message) || !isObject(message.params)) return message;
  const params: Json = { ...message.params };
  if (isObject(params['_meta'])) {
    const meta: Json = { ...params['_meta'] };
    delete meta[INPUT_REQUIRED_META_KEY];
    delete meta[CLIENT_CAPABILITIES_META_KEY];
    if (Object.keys(meta).length === 0) delete params['_meta'];
    else params['_meta'] = meta;
  }
  if (MULTI_ROUND_METHODS.has(message.method)) for (const k of RETRY_PARAM_KEYS) delete params[k];
  return { ...message, params } as JSONRPCMessage;
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

export interface RevisionAdapterOptions {
  /** Default `auto`. */
  readonly revision?: UpstreamRevision;
  /** Bound on the `server/discover` probe, in ms. Default {@link DEFAULT_PROBE_TIMEOUT_MS}. */
  readonly probeTimeoutMs?: number;
  /** Most `input_required` rounds per request. Default {@link DEFAULT_MAX_INPUT_ROUNDS}. */
  readonly maxInputRounds?: number;
  /** Bound on a request's input rounds from the first `input_required`, in ms. Default {@link DEFAULT_MAX_INPUT_FLOW_MS}. */
  readonly maxInputFlowMs?: number;
}

type Mode = 'pending' | 'legacy' | 'modern' | 'failed';

/** One Client request in modern mode: its own id, what it asked, and where its input rounds stand. */
interface Flow {
  readonly clientId: RequestId;
  readonly method: string;
  /** The params as first sent upstream (with the envelope); each retry starts from these. */
  readonly params: Json;
  /** Pass-through mode ({@link INPUT_REQUIRED_META_KEY}): an `input_required` result goes to the Client as is. */
  readonly passThrough: boolean;
  wireId: RequestId;
  rounds: number;
  timer?: NodeJS.Timeout;
  /** Ids of input requests handed to the Client and not yet answered. */
  readonly inputs: Set<RequestId>;
  done: boolean;
}

type InputOutcome = { ok: true; result: unknown } | { ok: false; code: number; message: string };
/** An input request checked and ready: answered locally (`local`) or by the Client. */
interface InputPlan {
  readonly method: string;
  readonly params: Json;
  readonly local?: unknown;
}

function positive(name: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number`);
  return v;
}

/**
 * A 1.x `Transport` around the upstream's transport that speaks 2026-07-28 on
 * the wire when the upstream does, and passes everything through when it does
 * not. Use it as the Client's transport; for HTTP, give the inner
 * `UpstreamHttpTransport` {@link RevisionAdapter.headersFor} as its per-message header hook.
 *
 * Per request (never per connection), read from the request the Client sends:
 *  - `params._meta[INPUT_REQUIRED_META_KEY] === 'return'` (pass-through mode,
 *    for downstream clients that speak 2026-07-28): an `input_required`
 *    result reaches the Client as the result (`resultType`, `inputRequests`,
 *    `requestState` kept; shape checked as in resolving mode; the server info
 *    `_meta` key dropped) and no input rounds run: the downstream client
 *    answers the input requests itself and retries. Otherwise (resolving mode,
 *    for 2025-11-25 downstream clients) the adapter asks the Client and
 *    retries, and the Client only sees the final result;
 *  - `params.inputResponses` / `params.requestState` of a downstream retry
 *    (tools/call, prompts/get, resources/read) go on the wire as given;
 *  - `params._meta["io.modelcontextprotocol/clientCapabilities"]`: the
 *    envelope declares these instead of the Client's (less `roots`); the other
 *    envelope keys are always the adapter's.
 * The marker never reaches the wire; on the 2025-11-25 wire neither do the
 * per-request capabilities nor the retry fields. A JSON-RPC error from a
 * 2026-07-28 upstream reaches the Client with its `code` and `data` (e.g.
 * -32021 MissingRequiredClientCapability with `data.requiredCapabilities`).
 */
export class RevisionAdapter implements Transport {
  readonly #inner: Transport;
  readonly #revision: UpstreamRevision;
  readonly #probeTimeoutMs: number;
  readonly #maxRounds: number;
  readonly #maxFlowMs: number;
  #mode: Mode = 'pending';
  #capabilities: ClientCapabilities = {};
  #clientInfo: Implementation | undefined;
  #logLevel: string | undefined;
  #seq = 0;
  #probe: { id: RequestId; settle: (m: JSONRPCMessage | 'closed') => void } | undefined;
  readonly #flows = new Map<RequestId, Flow>();
  readonly #inputs = new Map<RequestId, (o: InputOutcome) => void>();
  readonly #tools = new Map<string, McpHeaderScan>();

  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  constructor(inner: Transport, opts: RevisionAdapterOptions = {}) {
    const revision = opts.revision ?? 'auto';
    if (!UPSTREAM_REVISIONS.includes(revision)) throw new TypeError(`revision must be one of ${UPSTREAM_REVISIONS.join(', ')}`);
    this.#inner = inner;
    this.#revision = revision;
    this.#probeTimeoutMs = positive('probeTimeoutMs', opts.probeTimeoutMs, DEFAULT_PROBE_TIMEOUT_MS);
    this.#maxRounds = positive('maxInputRounds', opts.maxInputRounds, DEFAULT_MAX_INPUT_ROUNDS);
    this.#maxFlowMs = positive('maxInputFlowMs', opts.maxInputFlowMs, DEFAULT_MAX_INPUT_FLOW_MS);
    inner.onmessage = (m) => this.#fromUpstream(m);
    inner.onerror = (e) => this.onerror?.(e);
    inner.onclose = () => {
      this.#teardown();
      this.onclose?.();
    };
  }

  /** The revision in use: undefined until the handshake settles. */
  get revision(): '2025-11-25' | typeof MODERN_REVISION | undefined {
    return this.#mode === 'modern' ? MODERN_REVISION : this.#mode === 'legacy' ? '2025-11-25' : undefined;
  }

  get sessionId(): string | undefined {
    return this.#mode === 'modern' ? undefined : this.#inner.sessionId;
  }

  async start(): Promise<void> {
    await this.#inner.start();
  }

  setProtocolVersion(version: string): void {
    // In modern mode the wire version is MODERN_REVISION, set per message by headersFor.
    if (this.#mode === 'legacy') this.#inner.setProtocolVersion?.(version);
  }

  async close(): Promise<void> {
    this.#teardown();
    await this.#inner.close();
  }

  /**
   * Extra HTTP headers for one message the inner transport is about to send:
   * undefined on the legacy wire (the transport then keeps its session
   * handling); otherwise the SEP-2243 headers, and the transport must neither
   * send nor record `Mcp-Session-Id` nor open a GET stream for it.
   */
  headersFor(message: JSONRPCMessage): Record<string, string> | undefined {
    const probing = this.#probe !== undefined && 'id' in message && message.id === this.#probe.id;
    if (this.#mode !== 'modern' && !probing) return undefined;
    const h = standardHeaders(message);
    if ('method' in message && message.method === 'tools/call' && isObject(message.params)) {
      const name = message.params['name'];
      const scan = typeof name === 'string' ? this.#tools.get(name) : undefined;
      if (scan?.valid) Object.assign(h, buildMcpParamHeaders(scan.declarations, message.params['arguments']));
    }
    return h;
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.#mode === 'legacy') return this.#inner.send(toLegacyMessage(message), options);
    if (this.#mode === 'modern') return this.#sendModern(message, options);
    if (this.#mode === 'failed') throw new Error('upstream revision negotiation failed');
    if ('method' in message && message.method === 'initialize' && 'id' in message) return this.#initialize(message.id, message.params, options);
    throw new Error('upstream transport not initialized');
  }

  // --- handshake -----------------------------------------------------------

  async #initialize(id: RequestId, params: unknown, options: TransportSendOptions | undefined): Promise<void> {
    const p = isObject(params) ? params : {};
    this.#capabilities = isObject(p['capabilities']) ? (p['capabilities'] as ClientCapabilities) : {};
    const info = ImplementationSchema.safeParse(p['clientInfo']);
    this.#clientInfo = info.success ? info.data : undefined;
    const legacy = { jsonrpc: '2.0' as const, id, method: 'initialize', params: p };
    if (this.#revision === '2025-11-25') {
      this.#mode = 'legacy';
      return this.#inner.send(legacy, options);
    }
    const outcome = await this.#discover();
    if (outcome.kind === 'modern') {
      this.#mode = 'modern';
      this.#deliver({ jsonrpc: '2.0', id, result: discoverToInitialize(outcome.discovery, p['protocolVersion']) });
      return;
    }
    if (outcome.kind === 'unsupported' && this.#revision === 'auto') {
      this.#mode = 'legacy';
      return this.#inner.send(legacy, options);
    }
    this.#mode = 'failed';
    this.#fail(id, outcome.kind === 'unsupported' ? 'revision-unsupported' : outcome.reason);
  }

  /**
   * Sends `server/discover` and classifies the answer. "Unsupported" (the
   * upstream is not a 2026-07-28 server): a JSON-RPC error (-32601 and the
   * pre-initialize refusals of legacy servers), HTTP 400/404/405, a result
   * that is not a DiscoverResult, a version list without 2026-07-28, or no
   * answer within the probe timeout. Anything else (network failure, other
   * HTTP status) fails the handshake.
   */
  async #discover(): Promise<{ kind: 'modern'; discovery: Discovery } | { kind: 'unsupported' } | { kind: 'failed'; reason: RevisionFailureReason }> {
    const id = `bastion-discover-${++this.#seq}`;
    let timer: NodeJS.Timeout | undefined;
    const answer = new Promise<JSONRPCMessage | 'timeout' | 'closed'>((resolve) => {
      this.#probe = { id, settle: resolve };
      timer = setTimeout(() => resolve('timeout'), this.#probeTimeoutMs);
      timer.unref();
    });
    const request = { jsonrpc: '2.0' as const, id, method: 'server/discover', params: { _meta: this.#envelope() } };
    try {
      type Probe = JSONRPCMessage | 'timeout' | 'closed' | { sendError: unknown };
      const sent: Promise<Probe> = this.#inner.send(request).then(
        (): Promise<Probe> => answer,
        (err: unknown): Probe => ({ sendError: err }),
      );
      const first = await Promise.race<Probe>([answer, sent]);
      if (first === 'closed') return { kind: 'failed', reason: 'closed' };
      if (first === 'timeout') return this.#revision === 'auto' ? { kind: 'unsupported' } : { kind: 'failed', reason: 'discover-timeout' };
      if ('sendError' in first) {
        const err = first.sendError;
        if (err instanceof UpstreamHttpError && (err.status === 400 || err.status === 404 || err.status === 405)) return { kind: 'unsupported' };
        return { kind: 'failed', reason: 'discover-failed' };
      }
      if ('error' in first) return { kind: 'unsupported' };
      if (!('result' in first)) return { kind: 'unsupported' };
      const discovery = parseDiscoverResult(first.result);
      if (discovery === undefined) return this.#revision === 'auto' ? { kind: 'unsupported' } : { kind: 'failed', reason: 'discover-invalid' };
      return discovery.supportedVersions.includes(MODERN_REVISION) ? { kind: 'modern', discovery } : { kind: 'unsupported' };
    } finally {
      clearTimeout(timer);
      this.#probe = undefined;
    }
  }

  /**
   * The 2026-07-28 request envelope: version, client capabilities (the given
   * per-request ones, else those the Client declared; `roots` never), the
   * Client's info, the log level it set.
   */
  #envelope(capabilities: ClientCapabilities = this.#capabilities): Json {
    const meta: Json = { [PROTOCOL_VERSION_META_KEY]: MODERN_REVISION, [CLIENT_CAPABILITIES_META_KEY]: withoutRoots(capabilities) };
    if (this.#clientInfo !== undefined) meta[CLIENT_INFO_META_KEY] = this.#clientInfo;
    if (this.#logLevel !== undefined) meta[LOG_LEVEL_META_KEY] = this.#logLevel;
    return meta;
  }

  // --- Client → upstream (modern) ------------------------------------------

  async #sendModern(message: JSONRPCMessage, options: TransportSendOptions | undefined): Promise<void> {
    if ('result' in message || 'error' in message) {
      // The Client answering an input request this adapter handed it; nothing goes upstream.
      const settle = message.id === undefined ? undefined : this.#inputs.get(message.id);
      if (settle === undefined || message.id === undefined) return;
      this.#inputs.delete(message.id);
      settle('result' in message ? { ok: true, result: message.result } : { ok: false, code: message.error.code, message: message.error.message });
      return;
    }
    if (!('id' in message)) return this.#notifyUpstream(message, options);
    const params: Json = isObject(message.params) ? message.params : {};
    if (message.method === 'logging/setLevel') {
      // SEP-2577: the level travels per request in the envelope; there is no session to set it on.
      if (typeof params['level'] === 'string') this.#logLevel = params['level'];
      this.#deliver({ jsonrpc: '2.0', id: message.id, result: {} });
      return;
    }
    if (message.method === 'tools/call' && typeof params['name'] === 'string' && this.#tools.get(params['name'])?.valid === false) {
      this.#fail(message.id, 'tool-header-invalid');
      return;
    }
    // The caller's envelope keys give way to the adapter's, except per-request capabilities
    // (a 2026-07-28 downstream client declares its own, request by request).
    const caller = readCallerMeta(params);
    const meta: Json = { ...caller.meta };
    for (const k of ENVELOPE_META_KEYS) delete meta[k];
    // inputResponses/requestState of a downstream retry travel as given: Bastion seals and
    // unseals the upstream's requestState elsewhere, so here it is opaque and byte-exact.
    const wireParams: Json = { ...params, _meta: { ...meta, ...this.#envelope(caller.capabilities) } };
    const flow: Flow = {
      clientId: message.id,
      method: message.method,
      params: wireParams,
      passThrough: caller.passThrough,
      wireId: message.id,
      rounds: 0,
      inputs: new Set(),
      done: false,
    };
    this.#flows.set(flow.wireId, flow);
    try {
      await this.#inner.send({ jsonrpc: '2.0', id: flow.wireId, method: message.method, params: wireParams }, options);
    } catch (err) {
      this.#endFlow(flow);
      throw err;
    }
  }

  async #notifyUpstream(message: JSONRPCNotification, options: TransportSendOptions | undefined): Promise<void> {
    if (message.method === 'notifications/initialized' || message.method === 'notifications/roots/list_changed') return;
    if (message.method === 'notifications/cancelled' && isObject(message.params)) {
      const flow = this.#flowByClientId(message.params['requestId']);
      if (flow === undefined) return;
      this.#endFlow(flow);
      await this.#inner.send({ ...message, params: { ...message.params, requestId: flow.wireId } }, options);
      return;
    }
    await this.#inner.send(message, options);
  }

  #flowByClientId(id: unknown): Flow | undefined {
    for (const f of this.#flows.values()) if (f.clientId === id) return f;
    return undefined;
  }

  // --- upstream → Client -----------------------------------------------------

  #fromUpstream(message: JSONRPCMessage): void {
    if (this.#probe !== undefined && 'id' in message && message.id === this.#probe.id && !('method' in message)) {
      this.#probe.settle(message);
      return;
    }
    if (this.#mode !== 'modern') {
      this.#deliver(message);
      return;
    }
    if ('method' in message) {
      if ('id' in message) {
        // 2026-07-28 has no server-to-client requests outside input_required.
        this.onerror?.(new Error(`upstream ${FAILURES['server-request-refused'].message}`));
        return;
      }
      this.#deliver(message);
      return;
    }
    const flow = message.id === undefined ? undefined : this.#flows.get(message.id);
    if (flow === undefined || flow.done) return;
    if ('error' in message) {
      this.#endFlow(flow);
      this.#deliver({ jsonrpc: '2.0', id: flow.clientId, error: message.error });
      return;
    }
    this.#onResult(flow, message.result);
  }

  #onResult(flow: Flow, result: unknown): void {
    if (!isObject(result) || typeof result['resultType'] !== 'string') return this.#failFlow(flow, 'result-invalid');
    const type = result['resultType'];
    if (type === 'complete') {
      this.#endFlow(flow);
      let lifted = liftCompleteResult(result);
      if (flow.method === 'tools/list') lifted = this.#learnTools(lifted);
      this.#deliver({ jsonrpc: '2.0', id: flow.clientId, result: lifted });
      return;
    }
    if (type !== 'input_required') return this.#failFlow(flow, 'result-type-unknown');
    if (!MULTI_ROUND_METHODS.has(flow.method)) return this.#failFlow(flow, 'result-invalid');
    const check = checkInputRequired(result);
    if (!check.ok) return this.#failFlow(flow, check.reason);
    if (flow.passThrough) {
      // The downstream client answers the input requests itself and retries; Bastion seals
      // requestState in its own state elsewhere, so it is delivered byte-exact.
      this.#endFlow(flow);
      this.#deliver({ jsonrpc: '2.0', id: flow.clientId, result: withoutServerInfo(result) });
      return;
    }
    flow.rounds++;
    if (flow.rounds > this.#maxRounds) return this.#failFlow(flow, 'input-rounds-exceeded');
    if (flow.timer === undefined) {
      flow.timer = setTimeout(() => this.#failFlow(flow, 'input-timeout'), this.#maxFlowMs);
      flow.timer.unref();
    }
    void this.#round(flow, check.entries, check.requestState);
  }

  /** Fulfils one round of input requests through the Client, then retries upstream. */
  async #round(flow: Flow, entries: [string, Json][], requestState: string | undefined): Promise<void> {
    let responses: Json | undefined;
    if (entries.length === 0) {
      await new Promise((r) => setTimeout(r, REQUEST_STATE_ONLY_PACING_MS).unref());
    } else {
      // Check every entry before handing any to the Client: a bad round asks nobody anything.
      const planned: [string, InputPlan][] = [];
      for (const [key, entry] of entries) {
        const plan = this.#plan(entry);
        if ('reason' in plan) return this.#failFlow(flow, plan.reason);
        planned.push([key, plan]);
      }
      responses = {};
      const answers = planned.map(async ([key, plan]) => {
        const outcome = plan.local !== undefined ? ({ ok: true, result: plan.local } as const) : await this.#ask(flow, plan.method, plan.params);
        if (flow.done) return;
        if (!outcome.ok) {
          // The downstream refused or failed: the call fails with what the Client's handler said
          // (the spec has no error-shaped input response); the siblings are cancelled.
          this.#endFlow(flow);
          this.#deliver({ jsonrpc: '2.0', id: flow.clientId, error: { code: outcome.code, message: outcome.message } });
          return;
        }
        (responses as Json)[key] = outcome.result;
      });
      await Promise.all(answers);
    }
    if (flow.done) return;
    // Retry fields the caller's own request carried belong to an earlier exchange: replace them.
    const params: Json = { ...flow.params };
    for (const k of RETRY_PARAM_KEYS) delete params[k];
    if (responses !== undefined) params['inputResponses'] = responses;
    if (requestState !== undefined) params['requestState'] = requestState;
    this.#flows.delete(flow.wireId);
    flow.wireId = `bastion-retry-${++this.#seq}`;
    this.#flows.set(flow.wireId, flow);
    try {
      await this.#inner.send({ jsonrpc: '2.0', id: flow.wireId, method: flow.method, params });
    } catch {
      this.#failFlow(flow, 'retry-failed');
    }
  }

  /**
   * How one embedded input request is answered, as the 1.x world would:
   * `roots/list` locally with no roots (Bastion never offers roots);
   * `elicitation/create` and `sampling/createMessage` by the Client, as a
   * server request its handlers forward downstream. The spec defines no
   * error-shaped input response (inputResponses are bare results), so a
   * request for a capability the Client did not declare fails the whole call.
   */
  #plan(entry: unknown): InputPlan | { reason: RevisionFailureReason } {
    if (!isObject(entry) || typeof entry['method'] !== 'string') return { reason: 'input-request-invalid' };
    const method = entry['method'];
    const params = entry['params'];
    if (params !== undefined && !isObject(params)) return { reason: 'input-request-invalid' };
    if (method === 'roots/list') return { method, params: {}, local: { roots: [] } };
    if (params === undefined) return { reason: 'input-request-invalid' };
    if (method === 'elicitation/create') {
      const elicitation = this.#capabilities.elicitation as Json | undefined;
      const url = params['mode'] === 'url';
      // An empty elicitation capability means form mode (2025-11-25, "Elicitation: Capabilities").
      const offered = elicitation !== undefined && (url ? elicitation['url'] !== undefined : elicitation['form'] !== undefined || elicitation['url'] === undefined);
      if (!offered) return { reason: 'input-capability-missing' };
      // 2026-07-28 URL mode has no elicitationId; 2025-11-25 requires one.
      if (url && typeof params['elicitationId'] !== 'string') return { method, params: { ...params, elicitationId: `bastion-elicitation-${++this.#seq}` } };
      return { method, params };
    }
    if (method === 'sampling/createMessage') {
      if (this.#capabilities.sampling === undefined) return { reason: 'input-capability-missing' };
      return { method, params };
    }
    return { reason: 'input-request-invalid' };
  }

  /** Hands one request to the Client as if the upstream had sent it, and waits for the Client's answer. */
  async #ask(flow: Flow, method: string, params: Json): Promise<InputOutcome> {
    const id = `bastion-input-${++this.#seq}`;
    const answer = new Promise<InputOutcome>((resolve) => this.#inputs.set(id, resolve));
    flow.inputs.add(id);
    this.#deliver({ jsonrpc: '2.0', id, method, params });
    const outcome = await answer;
    flow.inputs.delete(id);
    return outcome;
  }

  /** Records the `x-mcp-header` declarations of listed tools; tools with invalid ones are dropped from the list (SEP-2243). */
  #learnTools(result: Json): Json {
    const tools = result['tools'];
    if (!Array.isArray(tools)) return result;
    const kept: unknown[] = [];
    for (const tool of tools) {
      if (!isObject(tool) || typeof tool['name'] !== 'string') {
        kept.push(tool); // the Client's schema rejects it
        continue;
      }
      const scan = scanMcpHeaderDeclarations(tool['inputSchema']);
      this.#tools.set(tool['name'], scan);
      if (scan.valid) kept.push(tool);
    }
    return { ...result, tools: kept };
  }

  // --- bookkeeping -----------------------------------------------------------

  #deliver(message: JSONRPCMessage): void {
    this.onmessage?.(message);
  }

  #fail(id: RequestId, reason: RevisionFailureReason): void {
    const failure = new RevisionFailure(reason);
    this.#deliver({ jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message: `upstream ${failure.message}`, data: failure } });
  }

  #failFlow(flow: Flow, reason: RevisionFailureReason): void {
    if (flow.done) return;
    this.#endFlow(flow);
    this.#fail(flow.clientId, reason);
  }

  /** Forgets a flow and cancels the input requests it still waits on. */
  #endFlow(flow: Flow): void {
    flow.done = true;
    clearTimeout(flow.timer);
    this.#flows.delete(flow.wireId);
    for (const id of flow.inputs) {
      const settle = this.#inputs.get(id);
      this.#inputs.delete(id);
      this.#deliver({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'the upstream request ended' } });
      settle?.({ ok: false, code: ErrorCode.RequestTimeout, message: 'cancelled' });
    }
    flow.inputs.clear();
  }

  #teardown(): void {
    for (const flow of [...this.#flows.values()]) this.#endFlow(flow);
    this.#probe?.settle('closed');
  }
}
