/**
 * Connections from Bastion to the MCP servers it fronts. One `UpstreamConnection`
 * per (downstream session, upstream): an upstream session serves exactly one
 * downstream session, so server-to-client requests (sampling, elicitation) and
 * notifications (progress, logging, list_changed) have one place to go.
 *
 * Upstreams are untrusted: every result is schema-checked by the SDK, every
 * request is bounded by `timeoutMs`, and failures surface as `BastionError`s
 * with `ERR_UPSTREAM_*` codes (never the upstream's own error text to the agent).
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { getDefaultEnvironment, StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ErrorCode,
  LoggingMessageNotificationSchema,
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
  type CreateMessageRequest,
  type ElicitRequest,
  type LoggingMessageNotification,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { ResolvedUpstream } from '../config/types.ts';
import { BastionError, type BastionErrorCode } from '../errors.ts';
import { UpstreamHttpTransport, type UpstreamRequestSigner } from './http-upstream-transport.ts';
import { RevisionAdapter, revisionFailureOf, type UpstreamRevision } from './revision/upstream.ts';

/** Options of {@link UpstreamConnection.connect} beyond the config. */
export interface UpstreamConnectOptions {
  /**
   * MCP revision spoken to the upstream: `auto` (default) probes with
   * `server/discover` and falls back to 2025-11-25; a pinned revision fails
   * closed when the upstream does not speak it (src/mcp/revision/upstream.ts).
   */
  readonly revision?: UpstreamRevision;
}

/** What the owning session does with traffic that flows from the upstream toward the client. */
export interface UpstreamEvents {
  onListChanged(kind: 'tools' | 'resources' | 'prompts'): void;
  onResourceUpdated(uri: string): void;
  onLog(params: LoggingMessageNotification['params']): void;
  /** Forwards a sampling request to the client; rejects when the client cannot or will not. */
  onSampling?(request: CreateMessageRequest, signal: AbortSignal): Promise<unknown>;
  onElicitation?(request: ElicitRequest, signal: AbortSignal): Promise<unknown>;
  /** The connection closed or the process exited. */
  onClose(): void;
}

/** Upper bound on pages fetched from one list call (a hostile upstream could page forever). */
const MAX_LIST_PAGES = 50;

export class UpstreamConnection {
  readonly config: ResolvedUpstream;
  readonly client: Client;
  #closed = false;

  private constructor(config: ResolvedUpstream, client: Client) {
    this.config = config;
    this.client = client;
  }

  /**
   * Starts (stdio) or connects to (HTTP) the upstream and completes the MCP
   * initialize handshake within `connectTimeoutMs`. `sign`, for an HTTP upstream,
   * signs every request it is sent (from the handshake on). `opts.revision`
   * picks the MCP revision (default `auto`).
   * @throws BastionError `ERR_UPSTREAM_UNAVAILABLE` when it cannot be started or reached,
   *   `ERR_UPSTREAM_TIMEOUT` when the handshake takes too long, `ERR_UPSTREAM_PROTOCOL`
   *   when it does not speak a pinned revision.
   */
  static async connect(
    config: ResolvedUpstream,
    clientCapabilities: { sampling: boolean; elicitation: boolean },
    events: UpstreamEvents,
    extraEnv: Readonly<Record<string, string>> = {},
    sign?: UpstreamRequestSigner,
    opts: UpstreamConnectOptions = {},
  ): Promise<UpstreamConnection> {
    // Roots are deliberately not offered: an upstream's reach is set by config, not by the client.
    const capabilities: ClientCapabilities = {};
    if (clientCapabilities.sampling && events.onSampling) capabilities.sampling = {};
    if (clientCapabilities.elicitation && events.onElicitation) capabilities.elicitation = { form: {} };
    const client = new Client({ name: 'bastion', version: '0.1.0' }, { capabilities });
    const conn = new UpstreamConnection(config, client);

    client.setNotificationHandler(ToolListChangedNotificationSchema, () => events.onListChanged('tools'));
    client.setNotificationHandler(ResourceListChangedNotificationSchema, () => events.onListChanged('resources'));
    client.setNotificationHandler(PromptListChangedNotificationSchema, () => events.onListChanged('prompts'));
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => events.onResourceUpdated(n.params.uri));
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => events.onLog(n.params));
    if (capabilities.sampling && events.onSampling) {
      const onSampling = events.onSampling;
      client.setRequestHandler(CreateMessageRequestSchema, async (req, extra) => (await onSampling(req, extra.signal)) as never);
    }
    if (capabilities.elicitation && events.onElicitation) {
      const onElicitation = events.onElicitation;
      client.setRequestHandler(ElicitRequestSchema, async (req, extra) => (await onElicitation(req, extra.signal)) as never);
    }
    client.onclose = () => {
      conn.#closed = true;
      events.onClose();
    };
    client.onerror = () => {
      // Transport-level garbage (unparsable lines, bad frames) is dropped by the SDK;
      // pending requests then fail by timeout. Nothing to forward.
    };

    let inner: Transport;
    // The HTTP transport asks the adapter for per-message headers; the adapter wraps it.
    let adapter: RevisionAdapter | undefined;
    if (config.kind === 'stdio') {
      const env: Record<string, string> = { ...getDefaultEnvironment() };
      for (const [k, v] of Object.entries(config.env)) env[k] = v.reveal();
      Object.assign(env, extraEnv);
      inner = new StdioClientTransport({
        command: config.command ?? '',
        args: [...config.args],
        cwd: config.cwd,
        env,
        stderr: 'ignore',
      });
    } else {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(config.headers)) headers[k] = v.reveal();
      inner = new UpstreamHttpTransport(config.url as URL, { headers, ...(sign ? { sign } : {}), messageHeaders: (m) => adapter?.headersFor(m) });
    }
    adapter = new RevisionAdapter(inner, { revision: opts.revision ?? 'auto', probeTimeoutMs: Math.max(1, Math.floor(config.connectTimeoutMs / 2)) });
    const transport: Transport = adapter;
    try {
      await client.connect(transport, { timeout: config.connectTimeoutMs });
    } catch (err) {
      await client.close().catch(() => undefined);
      throw upstreamError(config.name, err, 'connect');
    }
    return conn;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get capabilities(): ReturnType<Client['getServerCapabilities']> {
    return this.client.getServerCapabilities();
  }

  /** Every tool, across pages. */
  async listTools(signal?: AbortSignal): Promise<Tool[]> {
    if (!this.capabilities?.tools) return [];
    return this.#paged('tools/list', (cursor) => this.client.listTools(cursor ? { cursor } : {}, this.#opts(signal)), (r) => r.tools);
  }

  async listResources(signal?: AbortSignal): Promise<Resource[]> {
    if (!this.capabilities?.resources) return [];
    return this.#paged('resources/list', (cursor) => this.client.listResources(cursor ? { cursor } : {}, this.#opts(signal)), (r) => r.resources);
  }

  async listResourceTemplates(signal?: AbortSignal): Promise<ResourceTemplate[]> {
    if (!this.capabilities?.resources) return [];
    return this.#paged(
      'resources/templates/list',
      (cursor) => this.client.listResourceTemplates(cursor ? { cursor } : {}, this.#opts(signal)),
      (r) => r.resourceTemplates,
    );
  }

  async listPrompts(signal?: AbortSignal): Promise<Prompt[]> {
    if (!this.capabilities?.prompts) return [];
    return this.#paged('prompts/list', (cursor) => this.client.listPrompts(cursor ? { cursor } : {}, this.#opts(signal)), (r) => r.prompts);
  }

  /**
   * Runs one upstream request with the upstream's timeout, mapping failures to
   * `ERR_UPSTREAM_*`. A protocol error the upstream returned on purpose (McpError
   * with a JSON-RPC code) is re-thrown as is, so the agent sees the same code.
   */
  async request<T>(what: string, fn: (opts: { signal?: AbortSignal; timeout: number }) => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await fn(this.#opts(signal));
    } catch (err) {
      if (err instanceof McpError && err.code !== ErrorCode.RequestTimeout && err.code !== ErrorCode.ConnectionClosed && err.code !== ErrorCode.InternalError) throw err;
      throw upstreamError(this.config.name, err, what);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.client.close().catch(() => undefined);
  }

  #opts(signal?: AbortSignal): { signal?: AbortSignal; timeout: number } {
    return signal ? { signal, timeout: this.config.timeoutMs } : { timeout: this.config.timeoutMs };
  }

  async #paged<R extends { nextCursor?: string | undefined }, I>(
    what: string,
    call: (cursor: string | undefined) => Promise<R>,
    items: (r: R) => I[],
  ): Promise<I[]> {
    const out: I[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const res = await this.request(what, () => call(cursor));
      out.push(...items(res));
      cursor = res.nextCursor;
      if (!cursor) return out;
    }
    throw new BastionError('ERR_UPSTREAM_PROTOCOL', `upstream ${this.config.name}: ${what} exceeded ${MAX_LIST_PAGES} pages`);
  }
}

/** What {@link probeUpstream} found. `os` is the operating system's error, when one caused the failure. */
export type UpstreamProbe =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: BastionErrorCode; readonly os?: { readonly code: string; readonly message: string }; readonly message: string };

/**
 * True when the upstream can be started outside a session: not one that needs a
 * session's agent (vault placeholders in its environment), end user (per-user
 * OAuth) or signed context (`signContext`, per-call tokens).
 */
export function probeable(config: ResolvedUpstream): boolean {
  return Object.keys(config.placeholderEnv).length === 0 && config.oauth === undefined && !config.signContext && config.token === undefined;
}

/**
 * Starts (stdio) or connects to (HTTP) the upstream once, completes the MCP
 * handshake within its `connectTimeoutMs`, and stops it again. Never throws: a
 * failure comes back with its `ERR_UPSTREAM_*` code and, when the OS refused
 * (`spawn npx ENOENT`, `connect ECONNREFUSED …`), that error's code and message.
 */
export async function probeUpstream(config: ResolvedUpstream): Promise<UpstreamProbe> {
  const none = (): void => undefined;
  try {
    const conn = await UpstreamConnection.connect(config, { sampling: false, elicitation: false }, { onListChanged: none, onResourceUpdated: none, onLog: none, onClose: none }, {}, undefined, { revision: config.revision });
    await conn.close();
    return { ok: true };
  } catch (err) {
    const e = upstreamError(config.name, err, 'connect');
    const os = osErrorOf(err);
    return { ok: false, code: e.code, ...(os !== undefined ? { os } : {}), message: os?.message ?? e.message };
  }
}

/** The first error with an errno-style code (`ENOENT`, `ECONNREFUSED`) along the cause chain. */
function osErrorOf(err: unknown): { code: string; message: string } | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e instanceof Error; depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code) && !code.startsWith('ERR_')) return { code, message: e.message.slice(0, 200) };
    e = e.cause;
  }
  return undefined;
}

/** Maps an SDK/transport failure to a BastionError with an `ERR_UPSTREAM_*` code. */
export function upstreamError(upstream: string, err: unknown, what: string): BastionError {
  if (err instanceof BastionError) return err;
  const detail = { upstream, operation: what };
  const revision = revisionFailureOf(err);
  if (revision !== undefined) {
    return new BastionError(revision.code, `upstream ${upstream}: ${what}: ${revision.message}`, { cause: err, detail: { ...detail, reason: revision.reason } });
  }
  if (err instanceof McpError) {
    if (err.code === ErrorCode.RequestTimeout) return new BastionError('ERR_UPSTREAM_TIMEOUT', `upstream ${upstream}: ${what} timed out`, { cause: err, detail });
    if (err.code === ErrorCode.ConnectionClosed) return new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${upstream}: connection closed`, { cause: err, detail });
  }
  if (err instanceof Error && err.name === 'AbortError') return new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${upstream}: ${what} aborted`, { cause: err, detail });
  // Zod validation failures of upstream results, JSON parse errors: the upstream spoke garbage.
  if (err instanceof Error && (err.name === 'ZodError' || err.name === '$ZodError' || err instanceof SyntaxError)) {
    return new BastionError('ERR_UPSTREAM_PROTOCOL', `upstream ${upstream}: invalid ${what} response`, { cause: err, detail });
  }
  return new BastionError('ERR_UPSTREAM_UNAVAILABLE', `upstream ${upstream}: ${what} failed`, { cause: err, detail });
}
