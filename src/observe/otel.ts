/**
 * OpenTelemetry export over OTLP/HTTP (JSON): one span per request, made when
 * the request's audit record is appended (its start is the arrival time, its
 * end the record's), with a child span per timed stage (src/observe/scope.ts),
 * and the access line as an OTLP log record in the span's context. A tracer
 * and logger provider of its own (never the global ones), shut down with the
 * gateway. Attributes are the access line's fields only: no argument values,
 * headers or user ids.
 */
import { ROOT_CONTEXT, SeverityNumber, SpanStatusCode, trace, type Attributes, type Context, type Logger as OtelLogger, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import type { AccessFields } from './log.ts';
import type { StageTiming } from './scope.ts';

/** Options of {@link Telemetry}. */
export interface TelemetryOptions {
  /** OTLP/HTTP base URL; traces go to `<endpoint>/v1/traces`, logs to `<endpoint>/v1/logs`. */
  readonly endpoint: string;
  /** Headers of each export (resolved secret values; never logged). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly serviceName?: string;
  readonly serviceVersion?: string;
  /** Bound of one export request, in ms (default 10 000). */
  readonly timeoutMs?: number;
  /** Replace the OTLP exporters (tests). */
  readonly exporters?: { readonly spans?: SpanExporter; readonly logs?: LogRecordExporter };
}

/** The ids of a request's span, for the access line. */
export interface SpanIds {
  readonly traceId: string;
  readonly spanId: string;
}

/** Milliseconds since the epoch of a `performance.now()` reading. */
const epochMs = (t: number): number => performance.timeOrigin + t;

/** OTLP export of request spans and access log records. */
export class Telemetry {
  readonly #traces: TracerProvider;
  readonly #logs: LoggerProvider;
  readonly #tracer: Tracer;
  readonly #logger: OtelLogger;

  constructor(opts: TelemetryOptions) {
    const base = opts.endpoint.replace(/\/+$/, '');
    const headers = { ...(opts.headers ?? {}) };
    const timeoutMillis = opts.timeoutMs ?? 10_000;
    const resource = resourceFromAttributes({ 'service.name': opts.serviceName ?? 'bastion', ...(opts.serviceVersion !== undefined ? { 'service.version': opts.serviceVersion } : {}) });
    const spans = opts.exporters?.spans ?? new OTLPTraceExporter({ url: `${base}/v1/traces`, headers, timeoutMillis });
    const logs = opts.exporters?.logs ?? new OTLPLogExporter({ url: `${base}/v1/logs`, headers, timeoutMillis });
    this.#traces = new TracerProvider({ resource, spanProcessors: [new BatchSpanProcessor({ exporter: spans, maxQueueSize: 2048 })] });
    this.#logs = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: logs, maxQueueSize: 2048 })] });
    this.#tracer = this.#traces.getTracer('bastion');
    this.#logger = this.#logs.getLogger('bastion');
  }

  /**
   * Exports the span of one request (ended `now`, a `performance.now()`
   * reading, begun `fields.durationMs` before), a child per stage, and the
   * access line as a log record. Returns the span's ids.
   */
  recordRequest(fields: AccessFields, stages: readonly StageTiming[], now: number = performance.now()): SpanIds {
    const end = epochMs(now);
    const start = end - Math.max(0, fields.durationMs);
    const attributes = spanAttributes(fields);
    const span = this.#tracer.startSpan(`bastion.${fields.door}`, { startTime: start, attributes }, ROOT_CONTEXT);
    if (fields.outcome === 'error') span.setStatus({ code: SpanStatusCode.ERROR, message: fields.reason });
    const ctx: Context = trace.setSpan(ROOT_CONTEXT, span);
    for (const s of stages) {
      const child = this.#tracer.startSpan(s.name, { startTime: epochMs(s.start), attributes: { 'bastion.door': fields.door, 'bastion.stage': s.name } }, ctx);
      if (s.failed) child.setStatus({ code: SpanStatusCode.ERROR });
      child.end(epochMs(s.end));
    }
    span.end(end);
    this.#logger.emit({
      timestamp: end,
      severityNumber: fields.outcome === 'error' ? SeverityNumber.ERROR : SeverityNumber.INFO,
      severityText: fields.outcome === 'error' ? 'ERROR' : 'INFO',
      body: 'access',
      attributes,
      context: ctx,
    });
    const { traceId, spanId } = span.spanContext();
    return { traceId, spanId };
  }

  /** Exports what is buffered. Never rejects. */
  async flush(): Promise<void> {
    await Promise.allSettled([this.#traces.forceFlush(), this.#logs.forceFlush()]);
  }

  /** Flushes and stops both providers. Never rejects. */
  async shutdown(): Promise<void> {
    await Promise.allSettled([this.#traces.shutdown(), this.#logs.shutdown()]);
  }
}

/** The access line's fields as span attributes (`bastion.*`, `http.response.status_code`). */
function spanAttributes(f: AccessFields): Attributes {
  return {
    'bastion.door': f.door,
    'bastion.method': f.method,
    ...(f.agent !== null ? { 'bastion.agent': f.agent } : {}),
    'bastion.outcome': f.outcome,
    'bastion.decision.effect': f.effect,
    'bastion.decision.reason': f.reason,
    'bastion.decision.rule': f.rule,
    'bastion.duration_ms': f.durationMs,
    ...(f.status !== undefined ? { 'http.response.status_code': f.status } : {}),
    ...(f.code !== undefined ? { 'bastion.error_code': f.code } : {}),
  };
}
