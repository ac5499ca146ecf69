/**
 * The gateway's observer: every request through every door ends in one audit
 * record, and every record passes `AuditLog.append` (the kernel's audit step,
 * the tool door's session, the listener's own refusals). One observer there
 * feeds the decision and latency metrics, writes the access line and exports
 * the request span, so no door is edited per request. Records that are side
 * events of a request (alerts, rate-limit charges, pin changes, OAuth token
 * events, `system` records) count as decisions only.
 *
 * Also here: who may read `/metrics` ({@link metricsAccess}).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { AuditEvent } from '../audit/types.ts';
import type { AuditObserver } from '../audit/log.ts';
import { authenticateAgent, type KeyIndex } from '../door/authenticate.ts';
import { accessFields } from './log.ts';
import { GatewayMetrics, type MetricSources } from './metrics.ts';
import type { Telemetry } from './otel.ts';
import { currentScope } from './scope.ts';

/** Methods of records that accompany a request rather than end one. */
const SIDE_METHODS: ReadonlySet<string> = new Set(['alert', 'alert.failed', 'ratelimit.charge', 'tools/pin']);

/** True when `event` is the record that ends a request (not a side event or a system record). */
export function isRequestRecord(event: Pick<AuditEvent, 'door' | 'method'>): boolean {
  return event.door !== 'system' && !SIDE_METHODS.has(event.method) && !event.method.startsWith('oauth.');
}

/** Options of {@link Observer}. */
export interface ObserverOptions {
  /** True for a configured agent's name (the `agent` label's values). */
  readonly isAgent: (name: string) => boolean;
  readonly sources?: MetricSources;
  /** Where access lines go; none: no access lines. */
  readonly logger?: Logger;
  /** Write one access line per request (config `observability.logs.access`, default true). */
  readonly accessLog?: boolean;
  /** OTLP export; none: no spans. */
  readonly telemetry?: Telemetry;
  /** Process metrics (CPU, memory, event loop, GC) too (default false: `bastion serve` turns them on; a process holds one set). */
  readonly defaultMetrics?: boolean;
}

/** Metrics, access log and spans of one gateway, fed from its audit log. */
export class Observer implements AuditObserver {
  readonly metrics: GatewayMetrics;
  readonly logger: Logger | undefined;
  readonly telemetry: Telemetry | undefined;
  readonly #access: boolean;

  constructor(opts: ObserverOptions) {
    this.metrics = new GatewayMetrics(opts.isAgent, opts.sources ?? {}, { defaultMetrics: opts.defaultMetrics ?? false });
    this.logger = opts.logger;
    this.telemetry = opts.telemetry;
    this.#access = opts.accessLog ?? true;
  }

  /** {@link AuditObserver}: one record appended, in the async context of the request that wrote it. */
  appended(event: AuditEvent): void {
    const request = isRequestRecord(event);
    const scope = currentScope();
    // The request's stages belong to its first request record; a later one in the same scope has none.
    const stages = request && scope !== undefined && !scope.recorded ? scope.stages.splice(0) : [];
    if (request && scope !== undefined) scope.recorded = true;
    this.metrics.observeRecord(event, request, stages);
    const log = this.#access && this.logger !== undefined && this.logger.isLevelEnabled('info');
    if (!request || (!log && this.telemetry === undefined)) return;
    const fields = accessFields(event);
    const ids = this.telemetry?.recordRequest(fields, stages);
    if (log) this.logger!.info({ ...fields, ...(ids ?? {}) }, 'access');
  }

  /** {@link AuditObserver}: one batch committed. */
  committed(records: number, ms: number, ok: boolean): void {
    this.metrics.observeAuditCommit(records, ms, ok);
  }

  /** Exports buffered spans and log records, flushes the log. Never rejects. */
  async flush(): Promise<void> {
    await this.telemetry?.flush();
    try {
      this.logger?.flush();
    } catch {
      // A log that cannot flush must not stop the shutdown.
    }
  }

  /** Flushes, then stops the OTLP export. Never rejects. */
  async close(): Promise<void> {
    await this.flush();
    await this.telemetry?.shutdown();
  }
}

/** True for a loopback address (`127.0.0.0/8`, `::1`, IPv4-mapped loopback). */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, '');
  if (a === '::1') return true;
  const v4 = a.startsWith('::ffff:') ? a.slice(7) : a;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** The verdict of {@link metricsAccess}: serve, refuse for a missing or wrong key, or not found (off, or on another listener). */
export type MetricsAccess = 'serve' | 'auth.missing' | 'auth.invalid' | 'off';

/**
 * Who may read `/metrics` on the main listener: nobody when metrics are off or
 * served on their own listener (`observability.metrics.listen`); anyone when
 * `access` is `auto` and the listener is bound to a loopback address; else only
 * a request with an admin key (`Authorization: Bearer <key>`, or Basic with the
 * key as password, as the admin API accepts).
 */
export function metricsAccess(
  cfg: { readonly enabled: boolean; readonly access: 'auto' | 'admin-key'; readonly listen?: string },
  boundAddress: string,
  headers: IncomingHttpHeaders,
  adminKeys: KeyIndex,
): MetricsAccess {
  if (!cfg.enabled || cfg.listen !== undefined) return 'off';
  if (cfg.access === 'auto' && isLoopback(boundAddress)) return 'serve';
  // The kernel's authenticator, as the admin API uses: Bearer or Basic in Authorization, keys compared by digest.
  const authn = authenticateAgent(headers, adminKeys, ['authorization']);
  // Admin keys are never isolated (only agents are): a refusal is a missing or invalid key.
  return authn.ok ? 'serve' : authn.reason === 'agent.isolated' ? 'auth.invalid' : authn.reason;
}
