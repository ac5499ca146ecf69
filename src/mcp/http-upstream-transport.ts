/**
 * The client side of MCP Streamable HTTP (spec 2025-11-25, "Transports") for
 * upstreams, as an SDK `Transport`: the SDK `Client` keeps the protocol logic
 * (handshake, ids, timeouts, schemas); this class only moves messages.
 *
 * Why not the SDK's StreamableHTTPClientTransport: it runs on fetch and WHATWG
 * streams, which measured as the largest share of Bastion's CPU per proxied call
 * (bench/tool-door.ts prints CPU per call). This one uses undici's `request` on a
 * keep-alive dispatcher shared by all upstreams, and eventsource-parser on Node streams.
 *
 * Behaviour, as the spec asks of a client:
 *  - POST every message with `Accept: application/json, text/event-stream`; 202 for
 *    notifications and responses; a JSON body or an SSE stream for requests.
 *  - Remember `Mcp-Session-Id` from the initialize response and send it, with
 *    `Mcp-Protocol-Version`, on every later request; DELETE the session on close.
 *  - After `notifications/initialized`, open the GET stream for server-initiated
 *    messages (405 means the server offers none).
 *  - If an SSE stream ends before the response it carries, and the server gave an
 *    event id, resume with GET and `Last-Event-ID` after the server's `retry` delay.
 *  - For a message the `messageHeaders` hook answers (the stateless 2026-07-28 wire,
 *    see src/mcp/revision/upstream.ts): its headers instead of the session ones.
 *
 * Bounds: response bodies over `maxBodyBytes` abort the request; resumption is
 * attempted at most `MAX_RESUMES` times per stream. Upstream bytes are untrusted:
 * every message is validated with the SDK's JSON-RPC schema before it is passed on.
 */
import { StringDecoder } from 'node:string_decoder';
import { createParser } from 'eventsource-parser';
import { Agent, type Dispatcher } from 'undici';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { JSONRPCMessageSchema, isJSONRPCRequest, isJSONRPCResultResponse, isJSONRPCErrorResponse, type JSONRPCMessage, type RequestId } from '@modelcontextprotocol/sdk/types.js';

/** Most resumptions of one SSE stream before giving up on it. */
const MAX_RESUMES = 5;
/** Largest upstream response body accepted, in bytes (a result is capped far lower later, by `output.maxResultBytes`). */
const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
/**
 * One keep-alive dispatcher for every upstream. No per-origin connection cap:
 * GET streams and held calls keep connections open for long, and a capped pool
 * would let them starve ordinary requests. Connections are bounded by sessions
 * (server.maxSessions) times their concurrency instead.
 */
const dispatcher = new Agent({ pipelining: 1, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 10_000 });

/** Error for a non-2xx answer from the upstream; the body text is not kept (it is upstream-controlled). */
export class UpstreamHttpError extends Error {
  readonly status: number;
  constructor(status: number) {
    super(`upstream answered HTTP ${status}`);
    this.name = 'UpstreamHttpError';
    this.status = status;
  }
}

/**
 * Adds signature headers to one outbound request (RFC 9421 signed context,
 * per-call token): gets the request as it will be sent and the JSON-RPC message
 * it carries (undefined for GET and DELETE), returns headers to set. A rejection
 * stops the request (fail closed).
 */
export type UpstreamRequestSigner = (
  req: { readonly method: string; readonly url: string; readonly headers: Readonly<Record<string, string>>; readonly body: Uint8Array },
  message: JSONRPCMessage | undefined,
) => Promise<Readonly<Record<string, string>>>;

export interface UpstreamHttpTransportOptions {
  readonly headers?: Readonly<Record<string, string>>;
  readonly maxBodyBytes?: number;
  /** Signs every request (upstreams with `signContext` or `token`). */
  readonly sign?: UpstreamRequestSigner;
  /**
   * Per-message headers for the stateless 2026-07-28 wire (src/mcp/revision/upstream.ts):
   * undefined keeps 2025-11-25 behaviour; otherwise the headers are set on that POST, and
   * no `Mcp-Session-Id` is sent or recorded and no GET stream is opened for it.
   */
  readonly messageHeaders?: (message: JSONRPCMessage) => Readonly<Record<string, string>> | undefined;
}

const NO_BODY = new Uint8Array(0);

const noop = (): void => undefined;

/**
 * Reads and discards a body the transport does not use (an error status, a
 * 202, a content type it does not read). The no-op 'error' listener comes
 * first: a connection reset mid-body, or undici's abort error, must not become
 * an unhandled 'error' event, which would end the process.
 */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', noop);
  body.resume();
}

/** Destroys a body read only in part (over the size limit), with the same no-op 'error' listener as {@link discard}. */
function drop(body: Dispatcher.ResponseData['body']): void {
  body.on('error', noop);
  body.destroy();
}

export class UpstreamHttpTransport implements Transport {
  readonly #url: URL;
  readonly #path: string;
  readonly #headers: Record<string, string>;
  readonly #maxBodyBytes: number;
  readonly #sign: UpstreamRequestSigner | undefined;
  readonly #messageHeaders: UpstreamHttpTransportOptions['messageHeaders'];
  readonly #abort = new AbortController();
  #protocolVersion: string | undefined;
  #retryMs = 1000;
  #closed = false;

  sessionId?: string;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;

  constructor(url: URL, opts: UpstreamHttpTransportOptions = {}) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new TypeError(`upstream url must be http(s), got ${url.protocol}`);
    this.#url = url;
    this.#path = `${url.pathname}${url.search}`;
    this.#headers = { ...opts.headers };
    this.#maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    this.#sign = opts.sign;
    this.#messageHeaders = opts.messageHeaders;
  }

  async start(): Promise<void> {
    // Nothing to open: connections are made per request from the shared pool.
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  /** `stateless`: headers of the 2026-07-28 wire for this message (no session, no connection-level version). */
  #requestHeaders(accept: string, extra: Record<string, string> = {}, stateless?: Readonly<Record<string, string>>): Record<string, string> {
    const h: Record<string, string> = { ...this.#headers, accept, ...extra };
    if (stateless !== undefined) return Object.assign(h, stateless);
    if (this.sessionId !== undefined) h['mcp-session-id'] = this.sessionId;
    if (this.#protocolVersion !== undefined) h['mcp-protocol-version'] = this.#protocolVersion;
    return h;
  }

  /** {@link #requestHeaders}, signed when the upstream signs its requests. */
  async #signedHeaders(
    method: string,
    accept: string,
    extra: Record<string, string> = {},
    body?: string,
    message?: JSONRPCMessage,
    stateless?: Readonly<Record<string, string>>,
  ): Promise<Record<string, string>> {
    const h = this.#requestHeaders(accept, extra, stateless);
    if (this.#sign === undefined) return h;
    const added = await this.#sign({ method, url: this.#url.href, headers: h, body: body === undefined ? NO_BODY : Buffer.from(body, 'utf8') }, message);
    for (const k of Object.keys(h)) if (Object.hasOwn(added, k.toLowerCase())) delete h[k];
    return Object.assign(h, added);
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (this.#closed) throw new Error('transport closed');
    if (options?.resumptionToken) {
      void this.#resume(options.resumptionToken, isJSONRPCRequest(message) ? message.id : undefined, 0);
      return;
    }
    const body = JSON.stringify(message);
    const stateless = this.#messageHeaders?.(message);
    const res = await dispatcher.request({ origin: this.#url.origin,
      method: 'POST',
      path: this.#path,
      headers: await this.#signedHeaders('POST', 'application/json, text/event-stream', { 'content-type': 'application/json' }, body, message, stateless),
      body,
      signal: this.#abort.signal,
    });
    const sid = res.headers['mcp-session-id'];
    if (stateless === undefined && typeof sid === 'string' && sid.length > 0) this.sessionId = sid;
    if (stateless !== undefined && isJSONRPCRequest(message) && res.statusCode >= 400 && res.statusCode < 500 && this.#isJson(res)) {
      // 2026-07-28 answers request-level rejections (header mismatch, missing capability,
      // unsupported version) with a 4xx and a JSON-RPC error body: pass the error on as the response.
      if (await this.#deliverErrorBody(res.body, message.id)) return;
      throw new UpstreamHttpError(res.statusCode);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      discard(res.body);
      throw new UpstreamHttpError(res.statusCode);
    }
    if (res.statusCode === 202 || !isJSONRPCRequest(message)) {
      discard(res.body);
      if (stateless === undefined && res.statusCode === 202 && (message as { method?: string }).method === 'notifications/initialized') void this.#openGetStream();
      return;
    }
    const type = String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    if (type === 'text/event-stream') {
      // Read in the background: the response arrives on the stream, as do notifications before it.
      void this.#readSse(res.body, message.id, 0);
      return;
    }
    if (type === 'application/json') {
      const text = await this.#readAll(res.body);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        this.onerror?.(err as Error);
        return;
      }
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) this.#deliver(m);
      return;
    }
    discard(res.body);
    throw new Error(`upstream answered with content-type ${type ?? 'none'}`);
  }

  #isJson(res: Dispatcher.ResponseData): boolean {
    return String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() === 'application/json';
  }

  /** Reads a 4xx body (at most 64 KiB) and delivers it when it is a JSON-RPC error for `id`; false otherwise. */
  async #deliverErrorBody(body: Dispatcher.ResponseData['body'], id: RequestId): Promise<boolean> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await this.#readAll(body, 64 * 1024));
    } catch {
      return false;
    }
    const checked = JSONRPCMessageSchema.safeParse(parsed);
    if (!checked.success || !isJSONRPCErrorResponse(checked.data) || checked.data.id !== id) return false;
    this.onmessage?.(checked.data);
    return true;
  }

  /** Validates and passes on one message; garbage goes to onerror (the request then times out). */
  #deliver(raw: unknown, replayId?: RequestId): boolean {
    const parsed = JSONRPCMessageSchema.safeParse(raw);
    if (!parsed.success) {
      this.onerror?.(new Error('upstream sent an invalid JSON-RPC message'));
      return false;
    }
    const message = parsed.data;
    const isResponse = isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message);
    if (isResponse && replayId !== undefined) (message as { id: RequestId }).id = replayId;
    this.onmessage?.(message);
    return isResponse;
  }

  async #readAll(body: Dispatcher.ResponseData['body'], maxBytes = this.#maxBodyBytes): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBytes) {
        drop(body);
        throw new Error('upstream response body too large');
      }
      chunks.push(chunk);
    }
    return Buffer.concat(chunks, size).toString('utf8');
  }

  /**
   * Reads an SSE stream, passing each `message` event on. `waitingFor`: the id of
   * the request whose response this stream carries (undefined for the GET stream).
   */
  async #readSse(body: Dispatcher.ResponseData['body'], waitingFor: RequestId | undefined, resumes: number): Promise<void> {
    let lastEventId: string | undefined;
    let answered = false;
    let size = 0;
    const parsed: unknown[] = [];
    const parser = createParser({
      onEvent: (event) => {
        if (event.id) lastEventId = event.id;
        if (!event.data || (event.event !== undefined && event.event !== 'message')) return;
        try {
          parsed.push(JSON.parse(event.data));
        } catch (err) {
          this.onerror?.(err as Error);
        }
      },
      onRetry: (ms) => {
        if (Number.isFinite(ms) && ms >= 0) this.#retryMs = Math.min(ms, 60_000);
      },
    });
    // The SDK runs notification handlers a microtask after delivery but handles a response at
    // once: yield between messages, or a progress notification just before its response (in the
    // same chunk) would find its handler already gone.
    const deliverParsed = async (): Promise<void> => {
      for (const raw of parsed.splice(0)) {
        await Promise.resolve();
        if (this.#deliver(raw, resumes > 0 ? waitingFor : undefined)) answered = true;
      }
    };
    // A multi-byte character may be split across chunks: decode with state.
    const decoder = new StringDecoder('utf8');
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > this.#maxBodyBytes) {
          drop(body);
          throw new Error('upstream SSE stream too large');
        }
        parser.feed(decoder.write(chunk));
        await deliverParsed();
      }
      parser.feed(decoder.end());
      await deliverParsed();
    } catch (err) {
      if (this.#closed) return;
      this.onerror?.(err as Error);
    }
    if (this.#closed) return;
    // The stream ended without its response: resume it if the server made it resumable.
    if (!answered && lastEventId !== undefined && (waitingFor !== undefined || resumes < MAX_RESUMES)) {
      if (resumes >= MAX_RESUMES) return;
      await new Promise((r) => setTimeout(r, this.#retryMs).unref());
      await this.#resume(lastEventId, waitingFor, resumes + 1);
    } else if (waitingFor === undefined && !this.#closed && resumes < MAX_RESUMES) {
      // The GET stream closed: reopen it after the retry delay.
      await new Promise((r) => setTimeout(r, this.#retryMs).unref());
      await this.#openGetStream(resumes + 1);
    }
  }

  async #resume(lastEventId: string, waitingFor: RequestId | undefined, resumes: number): Promise<void> {
    if (this.#closed) return;
    try {
      const res = await dispatcher.request({ origin: this.#url.origin,
        method: 'GET',
        path: this.#path,
        headers: await this.#signedHeaders('GET', 'text/event-stream', { 'last-event-id': lastEventId }),
        signal: this.#abort.signal,
      });
      if (res.statusCode !== 200) {
        discard(res.body);
        throw new UpstreamHttpError(res.statusCode);
      }
      await this.#readSse(res.body, waitingFor, resumes);
    } catch (err) {
      if (!this.#closed) this.onerror?.(err as Error);
    }
  }

  async #openGetStream(attempt = 0): Promise<void> {
    if (this.#closed) return;
    try {
      const res = await dispatcher.request({ origin: this.#url.origin, method: 'GET', path: this.#path, headers: await this.#signedHeaders('GET', 'text/event-stream'), signal: this.#abort.signal });
      if (res.statusCode === 405 || res.statusCode === 404) {
        discard(res.body);
        return; // the server offers no standalone stream
      }
      if (res.statusCode !== 200) {
        discard(res.body);
        throw new UpstreamHttpError(res.statusCode);
      }
      await this.#readSse(res.body, undefined, attempt);
    } catch (err) {
      if (!this.#closed) this.onerror?.(err as Error);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const sid = this.sessionId;
    this.#abort.abort();
    if (sid !== undefined) {
      // Best effort: tell the server the session is over (spec: client SHOULD send DELETE).
      await this.#signedHeaders('DELETE', 'application/json')
        .then((headers) => dispatcher.request({ origin: this.#url.origin, method: 'DELETE', path: this.#path, headers, headersTimeout: 2_000, bodyTimeout: 2_000 }))
        .then((r) => discard(r.body))
        .catch(() => undefined);
    }
    this.onclose?.();
  }
}
