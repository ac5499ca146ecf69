/**
 * Prometheus metrics of one gateway, in a registry of its own (never
 * prom-client's global one), so several gateways in one process (tests) do not
 * collide. Every label value comes from a closed set: doors and outcomes from
 * the audit record's types, reasons from the table in src/door/reasons.ts (other
 * code-defined reasons up to a fixed count, then `other`), agents and upstreams
 * only when configured by name; never a user id, a host or a tool argument.
 * The metric list is in docs/observability.md.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { AuditEvent } from '../audit/types.ts';
import { isReason } from '../door/reasons.ts';
import type { ReadinessReport } from './health.ts';
import type { StageTiming } from './scope.ts';

/** Request latency buckets, in seconds (1 ms to 2 min: approvals hold calls for minutes). */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120];
/** Stage and audit-write buckets, in seconds. */
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];
/** Most distinct reasons outside the closed table kept as label values (allow reasons, alert kinds); the rest are `other`. */
export const MAX_EXTRA_REASONS = 128;
/** Most distinct stage names kept as label values; the rest are `other`. */
export const MAX_STAGE_NAMES = 64;

/** Where the gauges read their values at scrape time. All optional; each read is bounded by the caller. */
export interface MetricSources {
  /** Events appended to the audit log and not yet durable (queued or being committed). */
  readonly auditQueued?: () => number;
  /** The backlog bound: from this depth on, batched writers wait for durability. */
  readonly auditCapacity?: () => number;
  /** Failed audit writes so far, by durability (the audit step's counts). */
  readonly auditFailures?: () => { readonly durable: number; readonly batched: number };
  /** Approvals waiting for a decision (a bounded store read). */
  readonly approvalsPending?: () => Promise<number>;
  /** The readiness report (`/readyz`): gives `bastion_ready`, `bastion_readiness_check` and `bastion_upstream_up`. */
  readonly readiness?: () => Promise<ReadinessReport>;
}

/** The metrics of one gateway. */
export class GatewayMetrics {
  /** The registry `/metrics` serializes. */
  readonly registry = new Registry();
  readonly #isAgent: (name: string) => boolean;
  readonly #extraReasons = new Set<string>();
  readonly #stageNames = new Set<string>();
  readonly #requests: Counter<'door' | 'outcome' | 'agent'>;
  readonly #decisions: Counter<'door' | 'effect' | 'reason'>;
  readonly #duration: Histogram<'door'>;
  readonly #stages: Histogram<'door' | 'stage'>;
  readonly #records: Counter<'door'>;
  readonly #auditWrite: Histogram<'result'>;
  readonly #errors: Counter<'component' | 'code'>;

  /**
   * @param isAgent true for a configured agent's name (the only values of the `agent` label besides `admin`, `none` and `other`)
   * @param opts `defaultMetrics`: also Node's process metrics (default true here; the observer passes false unless asked)
   */
  constructor(isAgent: (name: string) => boolean, sources: MetricSources = {}, opts: { defaultMetrics?: boolean } = {}) {
    this.#isAgent = isAgent;
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({ name: 'bastion_requests_total', help: 'Requests through a door, each counted once at its audit record.', labelNames: ['door', 'outcome', 'agent'], registers });
    this.#decisions = new Counter({ name: 'bastion_decisions_total', help: 'Decisions recorded, by door, effect and reason (src/door/reasons.ts).', labelNames: ['door', 'effect', 'reason'], registers });
    this.#duration = new Histogram({ name: 'bastion_request_duration_seconds', help: 'Time from arrival to the response, per door.', labelNames: ['door'], buckets: LATENCY_BUCKETS, registers });
    this.#stages = new Histogram({ name: 'bastion_stage_duration_seconds', help: 'Time spent in each stage of a door.', labelNames: ['door', 'stage'], buckets: FAST_BUCKETS, registers });
    this.#records = new Counter({ name: 'bastion_audit_records_total', help: 'Audit records appended (requests and side events such as alerts).', labelNames: ['door'], registers });
    this.#auditWrite = new Histogram({ name: 'bastion_audit_write_seconds', help: 'Time to commit one batch of audit records.', labelNames: ['result'], buckets: FAST_BUCKETS, registers });
    this.#errors = new Counter({ name: 'bastion_errors_total', help: 'Errors of backing services: component store or redis, with the error code.', labelNames: ['component', 'code'], registers });
    if (sources.auditFailures) {
      const read = sources.auditFailures;
      new Counter({
        name: 'bastion_audit_write_failures_total',
        help: 'Audit records whose write failed, by durability (durable: the request was refused).',
        labelNames: ['durability'],
        registers,
        collect() {
          const f = read();
          this.reset();
          this.inc({ durability: 'durable' }, f.durable);
          this.inc({ durability: 'batched' }, f.batched);
        },
      });
    }
    if (sources.auditQueued) {
      const read = sources.auditQueued;
      new Gauge({ name: 'bastion_audit_queue_depth', help: 'Audit events appended and not yet durable (queued or being committed).', registers, collect() { this.set(read()); } });
    }
    if (sources.auditCapacity) {
      const read = sources.auditCapacity;
      new Gauge({ name: 'bastion_audit_queue_capacity', help: 'The audit backlog bound: from this depth on, batched writers wait for durability.', registers, collect() { this.set(read()); } });
    }
    if (sources.approvalsPending) {
      const read = sources.approvalsPending;
      new Gauge({
        name: 'bastion_approvals_pending',
        help: 'Approvals waiting for a decision.',
        registers,
        async collect() {
          this.set(await read().catch(() => Number.NaN));
        },
      });
    }
    if (sources.readiness) {
      // One readiness report per scrape feeds the three gauges below.
      const read = sources.readiness;
      let pending: Promise<ReadinessReport> | undefined;
      const report = (): Promise<ReadinessReport> => {
        pending ??= read().finally(() => queueMicrotask(() => (pending = undefined)));
        return pending;
      };
      new Gauge({ name: 'bastion_ready', help: '1 when every readiness check passes (/readyz answers 200).', registers, async collect() { this.set((await report()).ready ? 1 : 0); } });
      new Gauge({
        name: 'bastion_readiness_check',
        help: '1 when the named readiness check passes.',
        labelNames: ['check'],
        registers,
        async collect() {
          this.reset();
          for (const [name, r] of Object.entries((await report()).checks)) this.set({ check: name }, r.ok ? 1 : 0);
        },
      });
      new Gauge({
        name: 'bastion_upstream_up',
        help: '1 when the upstream\'s readiness check (upstream:NAME) passes.',
        labelNames: ['upstream'],
        registers,
        async collect() {
          this.reset();
          for (const [name, r] of Object.entries((await report()).checks)) if (name.startsWith('upstream:')) this.set({ upstream: name.slice('upstream:'.length) }, r.ok ? 1 : 0);
        },
      });
    }
  }

  /** Counts one audit record: a decision always; a request (count, latency, stages) when `request`. */
  observeRecord(event: AuditEvent, request: boolean, stages: readonly StageTiming[] = []): void {
    this.#records.inc({ door: event.door });
    this.#decisions.inc({ door: event.door, effect: event.decision.effect, reason: this.#reasonLabel(event.decision.reason) });
    if (!request) return;
    this.#requests.inc({ door: event.door, outcome: event.outcome, agent: this.agentLabel(event.agent) });
    if (Number.isFinite(event.durationMs) && event.durationMs >= 0) this.#duration.observe({ door: event.door }, event.durationMs / 1000);
    for (const s of stages) this.#stages.observe({ door: event.door, stage: this.#stageLabel(s.name) }, Math.max(0, s.end - s.start) / 1000);
  }

  /** Records one audit batch commit (`ms` elapsed). */
  observeAuditCommit(records: number, ms: number, ok: boolean): void {
    this.#auditWrite.observe({ result: ok ? 'ok' : 'error' }, ms / 1000);
    if (!ok) this.countError('store', 'ERR_AUDIT_WRITE', records);
  }

  /** Counts an error of a backing service (`code`: a short error code such as `ECONNREFUSED`, `ERR_STORE`). */
  countError(component: 'store' | 'redis', code: string, n = 1): void {
    this.#errors.inc({ component, code: /^[A-Za-z0-9_]{1,32}$/.test(code) ? code : 'other' }, n);
  }

  /** The `agent` label of a principal: a configured agent's name, `admin`, `none` or `other`. */
  agentLabel(agent: string | null): string {
    if (agent === null) return 'none';
    if (agent === 'admin' || (/^[A-Za-z0-9_-]{1,64}$/.test(agent) && this.#isAgent(agent))) return agent;
    return 'other';
  }

  /** The text exposition (Prometheus 0.0.4) and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #reasonLabel(reason: string): string {
    if (isReason(reason) || this.#extraReasons.has(reason)) return reason;
    if (this.#extraReasons.size < MAX_EXTRA_REASONS && /^[a-z0-9_]+(\.[a-z0-9_]+){0,3}$/.test(reason) && reason.length <= 64) {
      this.#extraReasons.add(reason);
      return reason;
    }
    return 'other';
  }

  #stageLabel(name: string): string {
    if (this.#stageNames.has(name)) return name;
    if (this.#stageNames.size < MAX_STAGE_NAMES && /^[A-Za-z0-9_.-]{1,48}$/.test(name)) {
      this.#stageNames.add(name);
      return name;
    }
    return 'other';
  }
}
