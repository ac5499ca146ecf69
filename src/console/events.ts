/**
 * The console's live stream (`GET /console/api/events`, server-sent events,
 * WHATWG HTML §9.2): pending approvals, new alerts and isolations, pushed to
 * every open console of this instance.
 *
 * Events:
 * - `approvals`: `{approvals: [...]}`, the pending approvals (described as the
 *   approvals page shows them), sent on connect and whenever the set changes;
 * - `alert`: one new alert record;
 * - `incidents`: `{isolations}` when the isolation service exists and its list changes;
 * - `signed-out`: the session ended; the stream closes.
 *
 * A decision anywhere in the cluster arrives on the bus's `approvals` channel
 * and triggers a refresh at once; a poll every `pollMs` is the backup and
 * also finds new pending approvals (creating one publishes nothing) and new
 * alerts. The poll runs only while a stream is open.
 */
import type { ServerResponse } from 'node:http';
import type { Gateway } from '../server/gateway.ts';
import { describeApproval, isolationsOf } from './api.ts';
import { isAlertRecord } from './audit-query.ts';
import type { ConsoleSession } from './sessions.ts';

interface Client {
  readonly res: ServerResponse;
  readonly alive: () => ConsoleSession | undefined;
}

/** Options of {@link ConsoleEvents}. */
export interface ConsoleEventsOptions {
  /** Backup poll interval, ms (default 1000). */
  readonly pollMs?: number;
  /** Keep-alive comment interval, ms (default 15000). */
  readonly heartbeatMs?: number;
  /** Most open streams per instance (default 100). */
  readonly maxClients?: number;
}

/** The open event streams of one gateway's console. */
export class ConsoleEvents {
  readonly #gateway: Gateway;
  readonly #clients = new Set<Client>();
  readonly #pollMs: number;
  readonly #heartbeatMs: number;
  readonly #max: number;
  #timer: NodeJS.Timeout | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #lastApprovals = '';
  #lastIncidents = '';
  #alertTip = -1;
  #refreshing: Promise<void> | undefined;
  #again = false;

  constructor(gateway: Gateway, opts: ConsoleEventsOptions = {}) {
    this.#gateway = gateway;
    this.#pollMs = opts.pollMs ?? 1000;
    this.#heartbeatMs = opts.heartbeatMs ?? 15_000;
    this.#max = opts.maxClients ?? 100;
  }

  /** Open streams. */
  get size(): number {
    return this.#clients.size;
  }

  /**
   * Opens a stream on `res` (headers given) for a session; `alive` re-checks
   * the session before every push. False when the instance holds `maxClients` streams.
   */
  open(res: ServerResponse, headers: Record<string, string>, alive: () => ConsoleSession | undefined): boolean {
    if (this.#clients.size >= this.#max) return false;
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const client: Client = { res, alive };
    this.#clients.add(client);
    res.once('close', () => {
      this.#clients.delete(client);
      if (this.#clients.size === 0) this.#stop();
    });
    this.#start();
    // The new stream gets the current state now, whatever the others last saw.
    void this.#snapshotTo(client);
    return true;
  }

  /** Re-reads the state and pushes what changed (after a decision here, or a bus message). */
  refresh(): void {
    if (this.#clients.size === 0) return;
    if (this.#refreshing !== undefined) {
      this.#again = true;
      return;
    }
    this.#refreshing = this.#poll()
      .catch(() => undefined)
      .finally(() => {
        this.#refreshing = undefined;
        if (this.#again) {
          this.#again = false;
          this.refresh();
        }
      });
  }

  /** Ends every stream (the listener is closing). */
  close(): void {
    for (const c of this.#clients) c.res.end();
    this.#clients.clear();
    this.#stop();
  }

  #start(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => this.refresh(), this.#pollMs);
    this.#timer.unref();
    this.#heartbeat = setInterval(() => this.#broadcast(': keep-alive\n\n'), this.#heartbeatMs);
    this.#heartbeat.unref();
    this.#unsubscribe = this.#gateway.bus.subscribe('approvals', () => this.refresh());
  }

  #stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#timer = undefined;
    this.#heartbeat = undefined;
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#lastApprovals = '';
    this.#lastIncidents = '';
    this.#alertTip = -1;
  }

  async #pending(): Promise<string> {
    const list = await this.#gateway.deps.approvals.list({ status: 'pending', limit: 200 });
    const now = Date.now();
    return JSON.stringify({ approvals: list.filter((a) => a.expiresAt > now).map((a) => describeApproval(this.#gateway, a)) });
  }

  async #incidents(): Promise<string | undefined> {
    const iso = isolationsOf(this.#gateway);
    return iso === undefined ? undefined : JSON.stringify({ isolations: await iso.list() });
  }

  async #snapshotTo(client: Client): Promise<void> {
    try {
      this.#send(client, 'approvals', await this.#pending());
      const inc = await this.#incidents();
      if (inc !== undefined) this.#send(client, 'incidents', inc);
    } catch {
      // The poll tries again.
    }
  }

  async #poll(): Promise<void> {
    const approvals = await this.#pending();
    if (approvals !== this.#lastApprovals) {
      this.#lastApprovals = approvals;
      this.#broadcastEvent('approvals', approvals);
    }
    const inc = await this.#incidents();
    if (inc !== undefined && inc !== this.#lastIncidents) {
      this.#lastIncidents = inc;
      this.#broadcastEvent('incidents', inc);
    }
    const tip = (await this.#gateway.store.lastAudit())?.seq ?? 0;
    if (this.#alertTip < 0) this.#alertTip = tip;
    else if (tip > this.#alertTip) {
      // New records since the last poll, at most 1000 (an alert storm is summarized by the alerts page).
      const from = Math.max(this.#alertTip + 1, tip - 999);
      for (const r of await this.#gateway.store.readAudit(from, tip - from + 1)) if (isAlertRecord(r)) this.#broadcastEvent('alert', JSON.stringify(r));
      this.#alertTip = tip;
    }
  }

  #broadcastEvent(event: string, data: string): void {
    for (const c of this.#clients) this.#send(c, event, data);
  }

  #broadcast(raw: string): void {
    for (const c of this.#clients) if (!c.res.writableEnded) c.res.write(raw);
  }

  #send(c: Client, event: string, data: string): void {
    if (c.res.writableEnded) return;
    if (c.alive() === undefined) {
      c.res.write('event: signed-out\ndata: {}\n\n');
      c.res.end();
      this.#clients.delete(c);
      return;
    }
    // JSON has no raw newlines, so one data line carries it.
    c.res.write(`event: ${event}\ndata: ${data}\n\n`);
  }
}
