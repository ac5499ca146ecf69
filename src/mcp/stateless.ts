/**
 * The tool door for MCP revision 2026-07-28 clients: every request stands
 * alone (authenticated, decided and audited on its own, no `Mcp-Session-Id`),
 * and is answered by the same {@link GatewaySession} pipeline legacy sessions
 * use, through an in-process transport.
 *
 * Why a pool of sessions at all: a session holds caches only — the agent's
 * catalogue and the connections to upstreams (a stdio upstream is a process) —
 * never a security decision. Decisions are taken per request; what must hold
 * across requests lives in the store (approvals) or travels sealed with the
 * client (`requestState`, src/mcp/request-state.ts), so any instance can serve
 * any request. Sessions are pooled per (agent, end user, conversation) so one
 * user's upstream connections (signed with that user's context) never serve
 * another's request; the pool is bounded and idle entries are closed.
 *
 * The client's request id is replaced by a pool-unique id on the way in and
 * restored on the way out, so two clients that reuse the same id never see
 * each other's answers.
 */
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import { isJSONRPCErrorResponse, isJSONRPCRequest, isJSONRPCResultResponse, type JSONRPCMessage, type JSONRPCNotification, type JSONRPCRequest, type MessageExtraInfo, type RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { GatewaySession } from './session.ts';

/** What a pooled session is keyed by: the request's authenticated agent, its end user, and its conversation. */
export interface StatelessIdentity {
  readonly agent: string;
  readonly user: string | null;
  readonly userVerified: boolean;
  readonly conversation: string | null;
}

/** The answer to one request: the JSON-RPC response, or `undefined` when the request was cancelled (no response is due). */
export type StatelessAnswer = JSONRPCMessage | undefined;

/** A response with the id the session saw (to look up what the session kept for it). */
export interface LocalAnswer {
  readonly message: StatelessAnswer;
  readonly localId: number;
}

/**
 * An in-process MCP transport for one pooled session: requests go in through
 * {@link LocalTransport.request}, the session's response comes back as the
 * promise's value. Server-to-client requests (sampling, elicitation) cannot be
 * answered by a stateless client on this path and are refused at once;
 * a server notification goes to the stream of the request it relates to
 * (progress), and is dropped when it relates to none.
 */
export class LocalTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;
  sessionId?: string;
  /** Told the local id of a request whose HTTP client went away, before it is cancelled (its record says `client_closed`). */
  onClientGone?: (localId: number) => void;
  readonly #waiting = new Map<number, (message: StatelessAnswer) => void>();
  readonly #listeners = new Map<number, (notification: JSONRPCNotification) => void>();
  #next = 0;
  #closed = false;

  async start(): Promise<void> {}

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    if (!('id' in message) && 'method' in message) {
      const related = options?.relatedRequestId;
      if (typeof related === 'number') this.#listeners.get(related)?.(message as JSONRPCNotification);
      return;
    }
    if ((isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && typeof message.id === 'number') {
      const resolve = this.#waiting.get(message.id);
      if (resolve) {
        this.#waiting.delete(message.id);
        resolve(message);
      }
      return;
    }
    if (isJSONRPCRequest(message)) {
      // No channel back to a stateless client: refuse the server's request so its caller fails fast.
      const id = message.id;
      queueMicrotask(() => this.onmessage?.({ jsonrpc: '2.0', id, error: { code: -32601, message: 'the client cannot be asked on this path' } }));
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const resolve of this.#waiting.values()) resolve(undefined);
    this.#waiting.clear();
    this.onclose?.();
  }

  /** Requests in flight. */
  get inflight(): number {
    return this.#waiting.size;
  }

  /**
   * Delivers one request under a fresh id and resolves with the response, its id
   * restored. Aborting `signal` (the HTTP client went away) sends
   * `notifications/cancelled` to the session, which stops the handler and audits the request.
   */
  request(message: JSONRPCRequest, extra: MessageExtraInfo, signal?: AbortSignal, onNotification?: (n: JSONRPCNotification) => void): Promise<LocalAnswer> {
    const id = ++this.#next;
    if (this.#closed) return Promise.resolve({ message: undefined, localId: id });
    const original: RequestId = message.id;
    if (onNotification) this.#listeners.set(id, onNotification);
    return new Promise<LocalAnswer>((resolve) => {
      const onAbort = (): void => {
        this.#listeners.delete(id);
        if (!this.#waiting.delete(id)) return;
        this.onClientGone?.(id);
        this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'client disconnected' } });
        resolve({ message: undefined, localId: id });
      };
      this.#waiting.set(id, (answer) => {
        this.#listeners.delete(id);
        signal?.removeEventListener('abort', onAbort);
        resolve({ message: answer === undefined ? undefined : ({ ...answer, id: original } as JSONRPCMessage), localId: id });
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.onmessage?.({ ...message, id }, extra);
    });
  }

  /** Delivers one notification. */
  notify(message: JSONRPCNotification, extra: MessageExtraInfo): void {
    if (!this.#closed) this.onmessage?.(message, extra);
  }
}

interface PoolEntry {
  readonly session: GatewaySession;
  readonly transport: LocalTransport;
  /** Settles when the session is connected to its transport. */
  readonly ready: Promise<void>;
  lastUsed: number;
}

/** Options of {@link StatelessSessions}. */
export interface StatelessSessionsOptions {
  /** Most pooled sessions (each may hold upstream connections). */
  readonly max: number;
  /** A session unused for this long, in ms, with nothing in flight, is closed. */
  readonly idleMs: number;
  readonly now?: () => number;
}

/** The pool of sessions that serve 2026-07-28 requests (module doc). */
export class StatelessSessions {
  readonly #open: (id: StatelessIdentity) => GatewaySession;
  readonly #opts: Required<StatelessSessionsOptions>;
  readonly #pool = new Map<string, PoolEntry>();
  readonly #reaper: NodeJS.Timeout;

  /** `open` makes the session for an identity (the gateway's `newSession` in stateless mode). */
  constructor(open: (id: StatelessIdentity) => GatewaySession, opts: StatelessSessionsOptions) {
    this.#open = open;
    this.#opts = { now: Date.now, ...opts };
    this.#reaper = setInterval(() => this.sweep(), Math.max(1000, Math.min(60_000, opts.idleMs)));
    this.#reaper.unref();
  }

  get size(): number {
    return this.#pool.size;
  }

  /**
   * The session for an identity, opened on first use. Undefined when the pool is
   * full and no entry is idle (the caller refuses with `session.limit`).
   */
  async sessionFor(id: StatelessIdentity): Promise<{ session: GatewaySession; transport: LocalTransport } | undefined> {
    const key = JSON.stringify([id.agent, id.user, id.userVerified, id.conversation]);
    const now = this.#opts.now();
    const existing = this.#pool.get(key);
    if (existing) {
      existing.lastUsed = now;
      // Re-insert: the map's order is least recently used first.
      this.#pool.delete(key);
      this.#pool.set(key, existing);
      await existing.ready;
      return existing;
    }
    if (this.#pool.size >= this.#opts.max && !this.#evictOne()) return undefined;
    const session = this.#open(id);
    const transport = new LocalTransport();
    transport.onClientGone = (localId) => session.clientGone(localId);
    transport.onclose = () => {
      if (this.#pool.get(key) === entry) this.#pool.delete(key);
    };
    const entry: PoolEntry = { session, transport, ready: session.connect(transport), lastUsed: now };
    this.#pool.set(key, entry);
    await entry.ready;
    return entry;
  }

  /** Closes sessions idle for `idleMs` with nothing in flight. */
  sweep(): void {
    const cutoff = this.#opts.now() - this.#opts.idleMs;
    for (const [key, e] of this.#pool) {
      if (e.lastUsed < cutoff && e.transport.inflight === 0 && !e.session.busy) this.#drop(key, e);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.#reaper);
    const all = [...this.#pool.entries()];
    this.#pool.clear();
    await Promise.all(all.map(async ([, e]) => {
      await e.transport.close();
      await e.session.close();
    }));
  }

  /** Closes every pooled session of `agent`, in flight or not (an isolated agent, src/incidents/isolation.ts). Returns how many. */
  closeAgent(agent: string): number {
    let n = 0;
    for (const [key, e] of this.#pool) {
      if (e.session.agent.name === agent) {
        this.#drop(key, e);
        n++;
      }
    }
    return n;
  }

  #evictOne(): boolean {
    for (const [key, e] of this.#pool) {
      if (e.transport.inflight === 0 && !e.session.busy) {
        this.#drop(key, e);
        return true;
      }
    }
    return false;
  }

  #drop(key: string, e: PoolEntry): void {
    this.#pool.delete(key);
    void e.transport.close().then(() => e.session.close()).catch(() => undefined);
  }
}
