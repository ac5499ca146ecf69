/**
 * What `bastion serve` builds from `observability` before it opens the gateway:
 * the logger (level: `BASTION_LOG_LEVEL`, else the config) and, when an OTLP
 * endpoint is configured (or `OTEL_EXPORTER_OTLP_ENDPOINT` is set), the
 * OTLP export. See docs/observability.md.
 */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ResolvedObservability } from '../config/types.ts';
import { createLogger, LOG_LEVELS, type LogLevel } from './log.ts';
import { Telemetry } from './otel.ts';

/** Most log lines held before they are written (they are written at the end of the event-loop turn anyway). */
const LOG_BATCH_LINES = 256;

/** The logger and the export `bastion serve` hands to the gateway. */
export interface ServeObservability {
  readonly logger: Logger;
  readonly accessLog: boolean;
  readonly telemetry?: Telemetry;
  /** Problems with the environment's settings (an unknown level, a bad endpoint): print them, they are not fatal. */
  readonly warnings: readonly string[];
}

/**
 * Builds the logger writing through `write` (serve's stderr) and the OTLP export.
 * @param env the environment (`BASTION_LOG_LEVEL`, `OTEL_EXPORTER_OTLP_ENDPOINT`)
 * @param isTTY whether `write` reaches a terminal (`format: auto` is pretty then)
 */
export function openServeObservability(
  cfg: ResolvedObservability,
  env: Readonly<Record<string, string | undefined>>,
  write: (text: string) => void,
  isTTY: boolean,
  version?: string,
): ServeObservability {
  const warnings: string[] = [];
  let level: LogLevel = cfg.logs.level;
  const fromEnv = env.BASTION_LOG_LEVEL;
  if (fromEnv !== undefined && fromEnv !== '') {
    if ((LOG_LEVELS as readonly string[]).includes(fromEnv)) level = fromEnv as LogLevel;
    else warnings.push(`BASTION_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}; using ${level}`);
  }
  // A stream (pino-pretty pipes into one) that hands `write` the lines of one event-loop turn at once:
  // stderr on a pipe or file is a synchronous write(2) per call, which cost about 0.3 ms per request
  // under load when every access line had its own. At most LOG_BATCH_LINES wait; a crash loses at most
  // the lines of the current turn (the audit chain, not the log, is the record).
  let pending: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    write(text);
  };
  const destination = new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      pending.push(typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
      if (pending.length >= LOG_BATCH_LINES) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      done();
    },
    final(done) {
      flush();
      done();
    },
  });
  const logger = createLogger({ level, format: cfg.logs.format, destination, isTTY });
  let telemetry: Telemetry | undefined;
  const endpoint = cfg.otlp?.endpoint ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (endpoint !== undefined && endpoint !== '') {
    if (/^https?:\/\/[^\s]+$/.test(endpoint) && URL.canParse(endpoint)) {
      const headers = Object.fromEntries(Object.entries(cfg.otlp?.headers ?? {}).map(([k, s]) => [k, s.reveal()]));
      telemetry = new Telemetry({ endpoint, headers, serviceName: cfg.otlp?.serviceName ?? env.OTEL_SERVICE_NAME ?? 'bastion', ...(version !== undefined ? { serviceVersion: version } : {}) });
    } else {
      warnings.push('OTEL_EXPORTER_OTLP_ENDPOINT is not an http(s) URL; traces are not exported');
    }
  }
  return { logger, accessLog: cfg.logs.access, ...(telemetry !== undefined ? { telemetry } : {}), warnings };
}
