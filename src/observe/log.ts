/**
 * Bastion's structured log: pino, JSON lines (or pino-pretty's human format on
 * a terminal), written to stderr by `bastion serve` so its stdout keeps the
 * human start-up lines. One access line per request, made from the request's
 * audit record: fixed field names (door, method, agent, outcome, status,
 * effect, reason, rule, durationMs), never argument values or headers; every
 * free-text field passes through the log redaction (src/redact/log.ts).
 */
import { pino, type DestinationStream, type Level, type Logger } from 'pino';
import pinoPretty from 'pino-pretty';
import type { AuditEvent } from '../audit/types.ts';
import { redactLogLine } from '../redact/log.ts';

/** A level of `observability.logs.level` (`silent`: nothing). */
export type LogLevel = Level | 'silent';
/** `observability.logs.format`. */
export type LogFormat = 'auto' | 'json' | 'pretty';

/** The log levels accepted (config and `BASTION_LOG_LEVEL`). */
export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Where lines go (default: stderr, fd 2). */
  readonly destination?: DestinationStream;
  /** Whether the destination is a terminal (`auto` picks pretty then). Default: `process.stderr.isTTY`. */
  readonly isTTY?: boolean;
}

/**
 * A pino logger writing JSON lines, or pino-pretty's format when `format` is
 * `pretty` (or `auto` on a terminal). It writes access lines only, each made by
 * {@link accessFields} from fixed fields whose free text is redacted there; so
 * it has no key-based redaction (pino's `redact` found nothing in such a line
 * and was a measurable share of a network-door request's CPU).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const pretty = opts.format === 'pretty' || (opts.format === 'auto' && (opts.isTTY ?? process.stderr.isTTY === true));
  const dest: DestinationStream = opts.destination ?? pino.destination({ dest: 2, sync: true });
  const stream: DestinationStream = pretty ? pinoPretty({ destination: dest, colorize: opts.isTTY ?? process.stderr.isTTY === true, sync: true }) : dest;
  return pino(
    {
      level: opts.level,
      base: { service: 'bastion' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stream,
  );
}

/** The fields of one access line (docs/observability.md). */
export interface AccessFields {
  readonly door: AuditEvent['door'];
  readonly method: string;
  readonly agent: string | null;
  readonly outcome: AuditEvent['outcome'];
  /** The HTTP status, when the record names one. */
  readonly status?: number;
  readonly effect: AuditEvent['decision']['effect'];
  readonly reason: string;
  readonly rule: string;
  readonly durationMs: number;
  /** The error code, when the record names one (`ERR_POLICY_DENIED`). */
  readonly code?: string;
  /** Trace and span id of the request's span, when traces are exported. */
  readonly traceId?: string;
  readonly spanId?: string;
}

/** Longest free-text field kept in an access line. */
const MAX_FIELD_CHARS = 128;

/** Cleaned fields by their text: the same few methods, rules and reasons recur on every line. Bounded; emptied when full. */
const cleaned = new Map<string, string>();
const MAX_CLEANED = 1024;

function clean(text: string): string {
  const cut = text.length > MAX_FIELD_CHARS ? text.slice(0, MAX_FIELD_CHARS) : text;
  let out = cleaned.get(cut);
  if (out === undefined) {
    out = redactLogLine(cut);
    if (cleaned.size >= MAX_CLEANED) cleaned.clear();
    cleaned.set(cut, out);
  }
  return out;
}

/** The access line of a request's audit record: fixed fields, free text redacted and bounded, nothing else from the record. */
export function accessFields(event: AuditEvent): AccessFields {
  const status = event.detail?.status;
  const code = event.detail?.code;
  return {
    door: event.door,
    method: clean(event.method),
    agent: event.agent === null ? null : clean(event.agent),
    outcome: event.outcome,
    ...(typeof status === 'number' && Number.isInteger(status) ? { status } : {}),
    effect: event.decision.effect,
    reason: clean(event.decision.reason),
    rule: clean(event.decision.rule),
    durationMs: Number.isFinite(event.durationMs) ? event.durationMs : 0,
    ...(typeof code === 'string' && /^[A-Z0-9_]{1,48}$/.test(code) ? { code } : {}),
  };
}
